"""Attributes of the container process: user, rlimits, oom score, personality,
scheduler, I/O priority, keyring, no_new_privs and LSM labels."""

import errno
import os
import stat

from pyrunc.errors import KernelError
from pyrunc.linux import kernel
from pyrunc.linux.tables import RLIMITS

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pyrunc.config.model import JsonObject, Process, Rlimit, User
    from pyrunc.linux.kernel import Kernel

PERSONALITY = {"LINUX": 0x0000, "LINUX32": 0x0008}

SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}


def set_rlimits(k: "Kernel", rlimits: "Iterable[Rlimit]") -> None:
    for r in rlimits:
        k.setrlimit(RLIMITS[r.type], r.soft, r.hard, r.type)


def set_oom_score_adj(k: "Kernel", value: int) -> None:
    from pyrunc.linux.proc_writes import write_procfs

    write_procfs(k, "/proc/self/oom_score_adj", str(value), f"set oom_score_adj {value}")


def set_personality(k: "Kernel", pers: "JsonObject") -> None:
    domain = pers.get("domain", "LINUX")
    k.personality(PERSONALITY[domain])


def set_scheduler(k: "Kernel", sched: "JsonObject") -> None:
    flags = 0
    for f in sched.get("flags") or ():
        flags |= SCHED_FLAGS[f]
    k.sched_setattr(
        SCHED_POLICIES[sched["policy"]],
        flags,
        sched.get("nice", 0),
        sched.get("priority", 0),
        sched.get("runtime", 0),
        sched.get("deadline", 0),
        sched.get("period", 0),
    )


def set_io_priority(k: "Kernel", ioprio: "JsonObject") -> None:
    k.ioprio_set(IOPRIO_CLASSES[ioprio["class"]], ioprio.get("priority", 0))


def new_session_keyring(k: "Kernel", container_id: str) -> None:
    try:
        k.join_session_keyring(f"_ses.{container_id}")
    except KernelError as e:
        # Kernels without keyrings (or with them hidden by seccomp) run containers all the same.
        if e.errno not in (errno.ENOSYS, errno.EPERM):
            raise


def switch_user(k: "Kernel", user: "User") -> None:
    """Groups, then gid, then uid: each later step needs the privilege the earlier kept."""
    k.prctl(kernel.PR_SET_KEEPCAPS, 1)
    _set_groups(k, user.additional_gids)
    k.setresgid(user.gid)
    k.setresuid(user.uid)
    k.prctl(kernel.PR_SET_KEEPCAPS, 0)
    # A uid change sets dumpability from fs.suid_dumpable, which a host may set to 1: we
    # still run the runtime's code with its fds until the exec (CVE-2016-9962).
    k.prctl(kernel.PR_SET_DUMPABLE, 0)


def _set_groups(k: "Kernel", gids: "Sequence[int]") -> None:
    """A user namespace whose creator wrote "deny" to setgroups (unshare -r does) forbids
    setgroups(2): skip it then, unless the config asks for groups we cannot give."""
    if _setgroups_denied():
        if gids:
            raise KernelError(errno.EPERM, f"setgroups {list(gids)}: denied in this user namespace")
        return
    k.setgroups(list(gids))


def _setgroups_denied() -> bool:
    try:
        with open("/proc/self/setgroups", "rb") as f:  # bytes: no text layer to build
            return f.read().strip() == b"deny"
    except OSError:
        return False


def new_session() -> None:
    """Make the init a session leader, as runc does, so the caller's terminal signals
    (^C, ^Z) reach the runtime, which forwards them, and not the container directly."""
    try:
        os.setsid()
    except OSError as e:
        raise KernelError(e.errno, "setsid") from None


def open_cwd(k: "Kernel", cwd: str, verb: str = "open cwd") -> int:
    """An O_PATH fd of the cwd.  Called after pivot_root, so symlinks resolve inside the
    container's root; a /proc magic link (/proc/self/fd/N, /proc/1/cwd) could name a
    directory of the host that some fd holds, and is refused (CVE-2024-21626)."""
    try:
        fd: int = k.openat2(kernel.AT_FDCWD, cwd, os.O_PATH | os.O_DIRECTORY, kernel.RESOLVE_NO_MAGICLINKS)
        return fd
    except KernelError as e:
        if e.errno == errno.ELOOP:
            raise KernelError(e.errno, f"{verb} {cwd!r}: a /proc magic link on the way") from None
        raise KernelError(e.errno, f"{verb} {cwd!r}") from None


def make_cwd(k: "Kernel", cwd: str) -> int:
    """Create a missing cwd (0755) as runc does, inside the container's root; an O_PATH
    fd of it, for change_to_cwd."""
    from pyrunc.linux import paths

    try:
        return open_cwd(k, cwd, "create cwd")
    except KernelError as e:
        if e.errno != errno.ENOENT:
            raise
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # Magic links refused here too: /proc/self/fd/N names whatever fd N is by now,
        # this very root fd among them.
        fd: int = paths.mkdir_all(k, root, cwd, no_magiclinks=True)
        return fd
    except KernelError as e:
        if e.errno == errno.ELOOP:
            raise KernelError(e.errno, f"create cwd {cwd!r}: a /proc magic link on the way") from None
        raise KernelError(e.errno, f"create cwd {cwd!r}") from None
    finally:
        os.close(root)


def enter_cwd_as_root(cwd: str, cwd_fd: int) -> int | None:
    """Enter the cwd make_cwd found or made (`cwd_fd`) while still root, as runc does, so
    that a cwd the user cannot search (a 0700 directory of root's) works all the same.
    By the fd, not by name: nothing is looked up again, and so no name swapped since
    can lead elsewhere.  Returns None once entered, else the fd for change_to_cwd: root
    may be refused where the user is not (a directory whose owner a user namespace does
    not map), and runc tries again as the user then."""
    try:
        os.fchdir(cwd_fd)
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            os.close(cwd_fd)
            raise KernelError(e.errno, f"chdir to cwd {cwd!r}") from None
        return cwd_fd
    os.close(cwd_fd)
    return None


def change_to_cwd(cwd: str, cwd_fd: int) -> None:
    """chdir, as the container's user, to the cwd root could not enter (`cwd_fd`).
    A seccomp filter loaded before this may deny fchdir: then by name, and the result
    must be the very directory of the fd, or a name swapped since (a /proc magic link
    among them) would have taken us elsewhere (CVE-2024-21626)."""
    try:
        try:
            os.fchdir(cwd_fd)
            return
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOSYS):
                raise KernelError(e.errno, f"chdir to cwd {cwd!r}") from None
        try:
            os.chdir(cwd)
            now, want = os.stat("."), os.fstat(cwd_fd)
        except OSError as e:
            raise KernelError(e.errno, f"chdir to cwd {cwd!r}") from None
        if (now.st_dev, now.st_ino) != (want.st_dev, want.st_ino):
            raise KernelError(errno.EXDEV, f"chdir to cwd {cwd!r}: the path changed meanwhile")
    finally:
        os.close(cwd_fd)


def user_home(uid: int) -> str:
    """The HOME runc gives a process whose env sets none: the user's entry in the
    container's /etc/passwd, else "/".  Read after pivot_root, so every path resolves
    inside the container; a FIFO or a huge file in a hostile image must not hang the init."""
    try:
        fd = os.open("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "/"
        data = os.read(fd, 1 << 20)
    except OSError:
        return "/"
    finally:
        os.close(fd)
    for line in data.decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2] == str(uid) and fields[5]:
            return fields[5]
    return "/"


def exec_env(proc: "Process", listen_fds: int = 0) -> dict[str, str]:
    """process.env as a dict for execve, with HOME added when absent, as runc does; with
    socket activation fds, LISTEN_FDS and LISTEN_PID=1 for the container's init (runc's)."""
    env = dict(e.partition("=")[::2] for e in proc.env)
    if "HOME" not in env:
        env["HOME"] = user_home(proc.user.uid)
    if listen_fds:
        env["LISTEN_FDS"] = str(listen_fds)
        env["LISTEN_PID"] = "1"
    return env


def set_no_new_privileges(k: "Kernel") -> None:
    k.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)


def lsm_enabled(name: str) -> bool:
    """Whether the host runs an LSM ("apparmor" or "selinux"): the files runc's libraries
    look at.  `features` reports the same answer."""
    if name == "apparmor":
        return (
            os.path.isdir("/sys/kernel/security/apparmor")
            or _read_flag("/sys/module/apparmor/parameters/enabled") == "Y"
        )
    return os.path.exists("/sys/fs/selinux/enforce")


def _read_flag(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def check_lsm_support(proc: "Process | None") -> None:
    """Fail early, while the host's /sys is in view, on a label the host cannot apply."""
    if proc is None:
        return
    if proc.apparmor_profile and not lsm_enabled("apparmor"):
        raise KernelError(
            errno.EOPNOTSUPP, f"apparmor profile {proc.apparmor_profile!r}: AppArmor is not enabled on this host"
        )
    if proc.selinux_label and not lsm_enabled("selinux"):
        raise KernelError(
            errno.EOPNOTSUPP, f"selinux label {proc.selinux_label!r}: SELinux is not enabled on this host"
        )


def check_mount_label(label: str | None) -> None:
    """linux.mountLabel labels new filesystems for SELinux: refused where it is off, as
    process.selinuxLabel is, rather than mounted unlabeled."""
    if label and not lsm_enabled("selinux"):
        raise KernelError(errno.EOPNOTSUPP, f"linux.mountLabel {label!r}: SELinux is not enabled on this host")


def _write_attr(k: "Kernel", attr: str, value: str, what: str) -> None:
    from pyrunc.linux.proc_writes import write_procfs

    write_procfs(k, f"/proc/thread-self/attr/{attr}", value, what)


def set_apparmor_profile(k: "Kernel", profile: str) -> None:
    """Takes effect at the exec of the user's program.  check_lsm_support ran before."""
    _write_attr(k, "apparmor/exec", f"exec {profile}", f"apparmor profile {profile!r}")


def set_selinux_label(k: "Kernel", label: str) -> None:
    _write_attr(k, "exec", label, f"selinux label {label!r}")
