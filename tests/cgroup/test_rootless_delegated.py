"""A rootless container in a cgroup v2 subtree delegated to its user (the `make
test-cgroup2` guest): pyrunc, run by that user, makes the container's cgroup there and
sets its limits, as it would as root; nothing is skipped.  (Without delegation, the
rootless tests on the host show cgroups skipped with a warning: tests/rootless.)

The user is a bare uid (the guest's /etc is read-only: no useradd), its home and
XDG_RUNTIME_DIR under a tmp directory; the delegated cgroup is /pyrunc-test-deleg-<hex>,
made, chowned as systemd delegates (the directory, cgroup.procs, cgroup.subtree_control,
cgroup.threads) and removed by the test."""

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import uuid

import pytest
from cg_util import V2

from pyrunc.linux.cgroups import CGROUP_MOUNT_ROOT
from tests import rootless_user as kit
from tests.conftest import make_rootfs
from tests.rootless.rl_util import chown_tree

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not V2, reason="needs a pure cgroup v2 host (run make test-cgroup2)"),
]

UID = 61000 + os.getpid() % 1000
MiB = 1 << 20


@pytest.fixture
def delegated():
    """(user, the delegated cgroup's name, its directory)."""
    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv")
    base = tempfile.mkdtemp(prefix="pyrunc-test-deleg-", dir="/tmp")  # pytest's tmp_path is 0700
    os.chmod(base, 0o755)
    user = kit.bare_user(UID, base)
    name = f"pyrunc-test-deleg-{uuid.uuid4().hex[:8]}"
    top = os.path.join(CGROUP_MOUNT_ROOT, name)
    os.mkdir(top)
    try:
        with open(os.path.join(top, "cgroup.subtree_control"), "w") as f:
            f.write("+memory +pids")
        for entry in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
            os.chown(os.path.join(top, entry), user.uid, user.gid)
        # The user's commands start in a leaf of the subtree, as under systemd's user@.service:
        # moving the init needs write access to the common ancestor's cgroup.procs.
        os.mkdir(os.path.join(top, "session"))
        os.chown(os.path.join(top, "session"), user.uid, user.gid)
        os.chown(os.path.join(top, "session", "cgroup.procs"), user.uid, user.gid)
        yield user, name, top
    finally:
        kit.remove(user)
        shutil.rmtree(base, ignore_errors=True)
        for d, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
            if os.path.isdir(d):
                os.rmdir(d)


def _in_chroot():
    return not os.path.samestat(os.stat("/"), os.stat("/proc/1/root"))


# The guest runs the tests chrooted into the host's tree (scripts/vm/init), and the kernel
# lets no process in a chroot make a user namespace (clone(2), EPERM: its root is not its
# mount namespace's).  So, there, the tree is bound once on top of the namespace's root
# (PID 1's root, the initramfs; PID 1 and every running process keep theirs), and the
# user's command starts from PID 1's root, steps up onto that bind (`cd /..` crosses onto
# a mount stacked on the root) and chroots there: its root is then the namespace's.
_unchrooted = []


def _unchroot_prefix():
    if not _in_chroot():
        return []
    if not _unchrooted:
        # --no-canonicalize: mount(8) would resolve /proc/1/root to our own "/".
        subprocess.run(["mount", "--no-canonicalize", "--rbind", "/", "/proc/1/root"], check=True)
        _unchrooted.append(True)
    return ["nsenter", "--target", "1", "--root", "/bin/sh", "-c", 'exec chroot /.. "$@"', "unchroot"]


def _as_user_in_subtree(user, top, pyrunc_argv):
    """pyrunc as the user, started inside the delegated subtree's session leaf."""
    inner = " ".join(shlex.quote(a) for a in user.argv(pyrunc_argv))
    script = f"cd {shlex.quote(user.home)} && echo $$ > {top}/session/cgroup.procs && exec {inner}"
    argv = [*_unchroot_prefix(), "/bin/sh", "-c", script]
    # Output through files: a created container holds its stdio, a pipe would never end.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = subprocess.run(argv, env=user.env(), cwd=user.home, stdout=out, stderr=err, timeout=300).returncode
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, code, out.read().decode(), err.read().decode())


def test_a_delegated_subtree_is_used_fully(delegated):
    user, name, top = delegated
    pyrunc = kit.users_pyrunc_path()
    bundle = os.path.join(user.home, "bundle")
    os.mkdir(bundle)
    make_rootfs(os.path.join(bundle, "rootfs"))
    chown_tree(bundle, user.uid, user.gid)
    r = _as_user_in_subtree(user, top, [pyrunc, "spec", "--rootless", "--bundle", bundle])
    assert r.returncode == 0, r
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["root"]["readonly"] = False
    cfg["linux"]["cgroupsPath"] = f"/{name}/ctr"
    cfg["linux"]["resources"] = {"memory": {"limit": 32 * MiB}, "pids": {"limit": 64}}
    cfg["process"]["args"] = ["sleep", "1000"]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    r = _as_user_in_subtree(user, top, [pyrunc, "features"])
    assert json.loads(r.stdout)["annotations"]["io.github.pyrunc.rootless.cgroups"] == "delegated", r
    log = os.path.join(user.home, "pyrunc.log")
    r = _as_user_in_subtree(user, top, [pyrunc, "--log", log, "create", "--bundle", bundle, "pyrunc-test-deleg"])
    assert r.returncode == 0, r
    with open(log) as f:
        assert "cgroups ignored" not in f.read()  # nothing skipped
    ctr = os.path.join(top, "ctr")
    with open(os.path.join(ctr, "memory.max")) as f:
        assert int(f.read()) == 32 * MiB
    with open(os.path.join(ctr, "pids.max")) as f:
        assert f.read().strip() == "64"
    with open(os.path.join(ctr, "cgroup.procs")) as f:
        procs = [int(p) for p in f.read().split()]
    assert len(procs) == 1 and os.stat(f"/proc/{procs[0]}").st_uid == user.uid
    r = _as_user_in_subtree(user, top, [pyrunc, "--log", log, "delete", "--force", "pyrunc-test-deleg"])
    assert r.returncode == 0, r
    assert not os.path.exists(ctr)
    # The limit takes effect: a shell that holds 64 MiB in a 32 MiB cgroup is OOM-killed.
    cfg["process"]["args"] = ["sh", "-c", 'x="$(head -c 67108864 /dev/zero | tr "\\0" a)"; echo survived']
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    r = _as_user_in_subtree(user, top, [pyrunc, "--log", log, "run", "--bundle", bundle, "pyrunc-test-deleg"])
    assert r.returncode == 137 and "survived" not in r.stdout, r
