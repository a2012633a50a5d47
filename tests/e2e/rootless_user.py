"""An unprivileged user made for a test run, and the commands run as that user.

`TestUser` adds a `pyrunc-test-...` user with useradd, which gives it a subordinate uid and
gid range in /etc/subuid and /etc/subgid (login.defs SUB_UID_*), its home where the caller
says, and a private XDG_RUNTIME_DIR (no logind here to make /run/user/<uid>).  `argv()`
prefixes a command with setpriv so that it runs as the user (no PAM, no login), `env()` is
the user's clean environment.  `remove()` kills every process left running as the user
(by PID: the user is ours, so are its processes), deletes the user (userdel also drops its
subordinate ranges) and `leftovers()` says what is still there.

`TunGrant` lets the user open /dev/net/tun where the host leaves it root-only (0600, no udev
rule), as rootless networking (slirp4netns, pasta) needs: an ACL entry naming only this user,
taken out again afterwards, the mode restored.
"""

import os
import pwd
import signal
import struct
import subprocess
import time
import uuid

from tests.e2e.harness import alive

USER_PREFIX = "pyrunc-test-"
TUN = "/dev/net/tun"
ACL_XATTR = "system.posix_acl_access"
# posix_acl_xattr: a u32 version, then (u16 tag, u16 perm, u32 id) entries sorted by tag.
ACL_VERSION = 2
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 1, 2, 4, 8, 0x10, 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF


def subid_range(path, name):
    """(start, count) of name's first range in /etc/subuid or /etc/subgid, or None."""
    try:
        with open(path) as f:
            for line in f:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[0] == name:
                    return int(fields[1]), int(fields[2])
    except OSError:
        pass
    return None


def user_pids(uid):
    """Live processes (not zombies) whose real uid is uid."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/status") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
        except (OSError, StopIteration):
            continue
        if int(uids[0]) == uid and alive(int(p)):
            found.append(int(p))
    return found


class TestUser:
    """A fresh unprivileged user with subordinate ids, home `home`, runtime dir `run_dir`."""

    __test__ = False  # not a pytest test class

    def __init__(self, home, run_dir, tag="rl"):
        self.name = f"{USER_PREFIX}{tag}-{uuid.uuid4().hex[:8]}"
        self.home, self.run_dir = home, run_dir
        subprocess.run(
            ["useradd", "--create-home", "--home-dir", home, "--shell", "/bin/sh", self.name],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(self.name)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        os.mkdir(run_dir, 0o700)
        os.chown(run_dir, self.uid, self.gid)
        self.subuid = subid_range("/etc/subuid", self.name)
        self.subgid = subid_range("/etc/subgid", self.name)
        self.removed = False

    def env(self, **extra):
        """The user's environment: nothing of ours but PATH."""
        return {
            "HOME": self.home,
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "XDG_RUNTIME_DIR": self.run_dir,
            **extra,
        }

    def argv(self, *argv):
        """argv run as the user, its primary group only."""
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--", *argv]

    def chown(self, path):
        os.chown(path, self.uid, self.gid)

    def remove(self):
        """Kill what still runs as the user (podman's pause process holds its user namespace
        for ever), then delete the user and its subordinate ranges.  Idempotent."""
        if self.removed:
            return
        self.removed = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = user_pids(self.uid)
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while user_pids(self.uid) and time.monotonic() < deadline:
                time.sleep(0.05)
        subprocess.run(["userdel", self.name], capture_output=True)

    def leftovers(self):
        left = [f"process {pid} of {self.name}" for pid in user_pids(self.uid)]
        try:
            pwd.getpwnam(self.name)
            left.append(f"user {self.name}")
        except KeyError:
            pass
        for path in ("/etc/subuid", "/etc/subgid"):
            if subid_range(path, self.name):
                left.append(f"{path} range of {self.name}")
        return left


def _acl_entries(blob):
    version = struct.unpack_from("<I", blob)[0]
    if version != ACL_VERSION:
        raise ValueError(f"{TUN}: unknown ACL version {version}")
    return [struct.unpack_from("<HHI", blob, off) for off in range(4, len(blob), 8)]


def _acl_blob(entries):
    return struct.pack("<I", ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in sorted(entries))


def tun_usable_by_all():
    try:
        return (os.stat(TUN).st_mode & 0o006) == 0o006
    except OSError:
        return False


class TunGrant:
    """rw on /dev/net/tun for one uid through an ACL entry, when others may not open it."""

    def __init__(self, uid):
        self.uid = uid
        self.mode = None  # the mode before, when we changed the ACL
        if not os.path.exists(TUN) or tun_usable_by_all():
            return
        st = os.stat(TUN)
        try:
            entries = _acl_entries(os.getxattr(TUN, ACL_XATTR))
        except OSError:
            owner = (st.st_mode >> 6) & 7
            group = (st.st_mode >> 3) & 7
            entries = [
                (ACL_USER_OBJ, owner, ACL_UNDEFINED_ID),
                (ACL_GROUP_OBJ, group, ACL_UNDEFINED_ID),
                (ACL_OTHER, st.st_mode & 7, ACL_UNDEFINED_ID),
            ]
        entries = [e for e in entries if e[0] != ACL_MASK]
        entries.append((ACL_USER, 6, uid))
        mask = 0
        for tag, perm, _ in entries:
            if tag in (ACL_USER, ACL_GROUP_OBJ, ACL_GROUP):
                mask |= perm
        entries.append((ACL_MASK, mask, ACL_UNDEFINED_ID))
        self.mode = st.st_mode & 0o7777
        os.setxattr(TUN, ACL_XATTR, _acl_blob(entries))

    def _ours(self, entries):
        return [e for e in entries if e[0] == ACL_USER and e[2] == self.uid]

    def release(self):
        """Take our entry out; with no other named entry left, drop the ACL and the mode."""
        if self.mode is None:
            return
        try:
            entries = _acl_entries(os.getxattr(TUN, ACL_XATTR))
        except OSError:
            return
        rest = [e for e in entries if e not in self._ours(entries)]
        if any(t in (ACL_USER, ACL_GROUP) for t, _, _ in rest):
            os.setxattr(TUN, ACL_XATTR, _acl_blob(rest))
        else:
            os.removexattr(TUN, ACL_XATTR)
            os.chmod(TUN, self.mode)
        self.mode = None

    def leftovers(self):
        try:
            entries = _acl_entries(os.getxattr(TUN, ACL_XATTR))
        except OSError:
            return []
        return [f"{TUN} ACL entry for uid {self.uid}"] if self._ours(entries) else []
