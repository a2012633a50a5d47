"""A container whose cgroup the kernel's freezer stops: runc refuses it (`container's
cgroup unexpectedly frozen`) and leaves nothing; an init placed in it would stop at once
and create would wait for it forever.  pyrunc refuses it too, also when an ancestor is
frozen (runc waits forever then) or when the cgroup is frozen after the check, and
leaves the frozen cgroup as it found it: never thawed, never removed."""

import os
import shutil
import subprocess

import pytest
from cg_util import V2, freeze_command, freezer_dir, hierarchy_dirs, set_frozen

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

FROZEN = "container's cgroup unexpectedly frozen"


@pytest.fixture
def frozen(pyrunc, bundle, test_id):
    """make(path): the freezer directory of `path` (and its parents) made by the test and
    frozen; afterwards the container goes, then the test's directories, thawed."""
    made = []

    def make(path):
        d = freezer_dir(path)
        parents = []
        while not os.path.isdir(d):
            parents.append(d)
            d = os.path.dirname(d)
        for level in reversed(parents):
            os.mkdir(level)
            made.append(level)
        set_frozen(freezer_dir(path), True)
        return freezer_dir(path)

    try:
        yield make
    finally:
        pyrunc("delete", "--force", test_id)
        for d in sorted(made, key=len, reverse=True):
            if os.path.isdir(d):
                set_frozen(d, False)
        for d in sorted(made, key=len, reverse=True):
            if os.path.isdir(d):
                os.rmdir(d)


def _is_frozen(d):
    if V2:
        with open(os.path.join(d, "cgroup.freeze")) as f:
            return f.read().strip() == "1"
    with open(os.path.join(d, "freezer.state")) as f:
        return f.read().strip() == "FROZEN"


def _pending(pid):
    """The signals pending for a process (the thread's and the process's), as a mask."""
    mask = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("SigPnd:", "ShdPnd:")):
                mask |= int(line.split()[1], 16)
    return mask


def _left(cgpath, own):
    """The container's cgroup directories that exist, beside the test's own."""
    parent = os.path.dirname(cgpath)
    return sorted(d for path in (parent, cgpath) for d in hierarchy_dirs(path) if os.path.isdir(d) and d not in own)


def test_a_frozen_cgroup_is_refused_and_left_as_it_was(pyrunc, bundle, test_id, frozen, tmp_path):
    cgpath = bundle.config["linux"]["cgroupsPath"]
    leaf = frozen(cgpath)
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id, timeout=30)  # without the check: forever
    assert r.code == 1, r
    assert r.err == f'pyrunc: create {test_id}: {FROZEN} (linux.cgroupsPath "{cgpath}")\n', r
    assert pyrunc("list", "-q").out == ""
    assert _is_frozen(leaf)
    assert _left(cgpath, {leaf, os.path.dirname(leaf)}) == []
    if shutil.which("runc"):  # what runc does with the same bundle
        root = str(tmp_path / "runc")
        rr = subprocess.run(
            ["runc", "--root", root, "create", "--bundle", bundle.path, test_id],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert rr.returncode == 1 and FROZEN in rr.stderr, rr
        assert _is_frozen(leaf)


def test_a_frozen_cgroup_with_processes_of_others_keeps_them(pyrunc, bundle, test_id, frozen):
    """runc warns that the cgroup is not empty, then refuses it: the processes there are
    not the container's, and pyrunc neither kills nor thaws them."""
    cgpath = bundle.config["linux"]["cgroupsPath"]
    leaf = frozen(cgpath)
    sleep = subprocess.Popen(["sleep", "600"])
    try:
        with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
            f.write(str(sleep.pid))
        bundle.write()
        r = pyrunc("create", "--bundle", bundle.path, test_id, timeout=30)
        assert r.code == 1 and "container's cgroup is not empty: 1 process(es)" in r.err and FROZEN in r.err, r
        assert _is_frozen(leaf)
        assert not _pending(sleep.pid) & (1 << 8), "SIGKILL pending for a process not the container's"
        assert sleep.poll() is None
    finally:
        set_frozen(leaf, False)  # a frozen v1 process dies only once thawed
        sleep.kill()
        sleep.wait()


def test_run_under_a_frozen_parent_is_refused(pyrunc, bundle, test_id, frozen):
    """runc reads the container's own freezer.state before it makes it: under a frozen
    parent it goes on, and waits for the frozen init forever."""
    cgpath = bundle.config["linux"]["cgroupsPath"]
    parent = frozen(os.path.dirname(cgpath))
    bundle.write()
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id, timeout=30)
    assert (r.code, FROZEN in r.err) == (1, True), r
    assert pyrunc("list", "-q").out == ""
    assert _is_frozen(parent)
    assert _left(cgpath, {parent}) == []  # the leaf pyrunc made is gone


def test_a_cgroup_frozen_after_the_check_fails_create(pyrunc, bundle, test_id):
    """A createRuntime hook freezes the cgroup once the init is in it: the init stops
    where it waits for the parent's answer; create gives up instead of waiting on it."""
    cgpath = bundle.config["linux"]["cgroupsPath"]
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", freeze_command(cgpath)]}]}
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id, timeout=30)
    assert (r.code, FROZEN in r.err) == (1, True), r
    assert pyrunc("list", "-q").out == ""
    assert _left(cgpath, set()) == []  # pyrunc made this cgroup: it is gone, its init killed


@pytest.fixture
def thaw_after(pyrunc, test_id):
    """The container's cgroup thawed (it is the container's own) before it is deleted."""
    dirs = []
    yield dirs.append
    for d in dirs:
        if os.path.isdir(d):
            set_frozen(d, False)


def test_exec_in_a_container_frozen_by_someone_else_is_refused_as_paused(pyrunc, running, bundle, thaw_after):
    """runc reads the cgroup: a container frozen behind its back is paused to it."""
    d = freezer_dir(bundle.config["linux"]["cgroupsPath"])
    thaw_after(d)
    set_frozen(d, True)
    r = pyrunc("exec", running, "true", timeout=30)
    assert r.code == 255 and "cannot exec in a paused container" in r.err, r


def test_start_of_a_container_frozen_by_someone_else_is_refused(pyrunc, bundle, test_id, thaw_after):
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.write()
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    d = freezer_dir(bundle.config["linux"]["cgroupsPath"])
    thaw_after(d)
    set_frozen(d, True)
    r = pyrunc("start", test_id, timeout=30)
    assert (r.code, r.err) == (1, f"pyrunc: cannot start container {test_id}: it is paused, not created\n"), r
    assert pyrunc.state(test_id)["status"] == "created"  # nothing changed


def test_a_container_frozen_while_start_waits_is_paused_and_resume_runs_it(pyrunc, bundle, test_id, thaw_after):
    """A startContainer hook (in the container, after start has given the go) freezes
    the container's cgroup, itself and the waiting init with it: start gives up waiting
    and says so; the container has its go and is paused; resume runs it."""
    cgpath = bundle.config["linux"]["cgroupsPath"]
    d = freezer_dir(cgpath)
    thaw_after(d)
    # The container sees the host's freezer directory of its cgroup at /frz.
    bundle.config["mounts"].append({"destination": "/frz", "type": "bind", "source": d, "options": ["rbind", "rw"]})
    os.makedirs(os.path.join(bundle.rootfs, "frz"))
    freeze = "echo 1 > /frz/cgroup.freeze" if V2 else "echo FROZEN > /frz/freezer.state"
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", freeze]}]}
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.write()
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    r = pyrunc("start", test_id, timeout=30)  # without the guard: forever
    assert r.code == 1 and FROZEN in r.err and "the container is paused" in r.err, r
    assert pyrunc.state(test_id)["status"] == "paused"
    assert pyrunc("resume", test_id).code == 0
    assert pyrunc.state(test_id)["status"] == "running"
    pid = pyrunc.state(test_id)["pid"]
    from cg_util import wait_for

    wait_for(lambda: open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep"), "the init to exec sleep")
