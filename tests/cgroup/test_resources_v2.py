"""linux.resources on a pure cgroup v2 host (the `make test-cgroup2` guest), two ways:
the V2Manager driven directly on a cgroup of our own with a process we start, and real
busybox containers through the CLI, their limits read from inside and seen at work.

Every cgroup here is under /pyrunc-test-v2-<random>, removed after each test, even a
failed one (processes left in it are ours: they are killed first)."""

import json
import os
import signal
import subprocess
import sys
import uuid

import pytest
from cg_util import V2, wait_for

from pyrunc.linux.cgroups import CGROUP_MOUNT_ROOT, convert
from pyrunc.linux.cgroups.v2 import V2Manager

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not V2, reason="needs a pure cgroup v2 host (run make test-cgroup2)"),
]

MiB = 1 << 20


def cat(path):
    with open(path) as f:
        return f.read().strip()


def controllers():
    return set(cat(os.path.join(CGROUP_MOUNT_ROOT, "cgroup.controllers")).split())


def need(controller):
    if controller not in controllers():
        pytest.skip(f"this kernel has no {controller} controller")


def block_device():
    """major:minor of a real disk, for io.max; the guest may have none (its / is 9p)."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("vd", "sd", "nvme", "xvd", "hd")):
            return cat(f"/sys/block/{name}/dev")
    pytest.skip("no disk in /sys/block for the per-device io settings")


def remove_tree(top):
    """Remove a test parent cgroup and whatever a failed test left in it, deepest first,
    killing the processes left there first (they are this test's)."""
    if not os.path.isdir(top):
        return
    kill = os.path.join(top, "cgroup.kill")
    if os.path.exists(kill):
        with open(kill, "w") as f:
            f.write("1")
    for d, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
        wait_for(lambda: _rmdir(d), f"removing {d}", timeout=10)  # noqa: B023 -- called at once


def _rmdir(d):
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


@pytest.fixture
def parent():
    """/pyrunc-test-v2-<random>: the test's cgroups go under it; removed afterwards."""
    name = f"/pyrunc-test-v2-{uuid.uuid4().hex[:8]}"
    yield name
    remove_tree(os.path.join(CGROUP_MOUNT_ROOT, name.lstrip("/")))


# -- the manager on its own --------------------------------------------------------------


class Child:
    """A Python process we start, put in the cgroup, then let go on with `code`."""

    def __init__(self, mgr, code):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.readline()\n" + code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        mgr.add(self.proc.pid)

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self

    def finish(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def box(parent):
    """A V2Manager for parent/box, created; destroyed afterwards."""
    mgr = V2Manager(parent + "/box")
    mgr.create()
    yield mgr
    mgr.destroy()


@pytest.fixture
def start(box):
    """start(code): a Child in the box; every one is killed before the box goes."""
    children = []

    def spawn(code):
        children.append(Child(box, code))
        return children[-1]

    yield spawn
    for c in children:
        c.stop()


def cgfile(mgr, name):
    return os.path.join(CGROUP_MOUNT_ROOT, mgr.dir.lstrip("/"), name)


def test_create_makes_the_levels_enables_controllers_and_destroy_removes_them(parent):
    mgr = V2Manager(parent + "/mid/box")
    mgr.create()
    assert mgr.to_dict()["made"] == [parent, parent + "/mid", parent + "/mid/box"]
    have = set(cat(cgfile(mgr, "cgroup.controllers")).split())
    assert {"memory", "pids", "cpu", "io"} & controllers() <= have
    mgr.destroy()
    assert not os.path.exists(os.path.join(CGROUP_MOUNT_ROOT, parent.lstrip("/")))


def test_a_joined_cgroup_stays(parent):
    top = os.path.join(CGROUP_MOUNT_ROOT, parent.lstrip("/"))
    os.mkdir(top)
    mgr = V2Manager(parent)
    mgr.create()
    assert not mgr.made_any()
    mgr.destroy()
    assert os.path.isdir(top)


def test_the_files_each_resource_writes(box):
    need("memory")
    need("cpu")
    need("pids")
    box.set(
        {
            "memory": {"limit": 64 * MiB, "reservation": 16 * MiB, "swap": 96 * MiB},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000, "burst": 5000, "idle": 0},
            "pids": {"limit": 42},
            "unified": {"memory.high": str(48 * MiB)},
        }
    )
    assert cat(cgfile(box, "memory.max")) == str(64 * MiB)
    assert cat(cgfile(box, "memory.low")) == str(16 * MiB)
    assert cat(cgfile(box, "memory.high")) == str(48 * MiB)
    if os.path.exists(cgfile(box, "memory.swap.max")):
        assert cat(cgfile(box, "memory.swap.max")) == str(32 * MiB)
    assert cat(cgfile(box, "cpu.max")) == "20000 100000"
    assert cat(cgfile(box, "cpu.weight")) == str(convert.shares_to_weight(512))
    if os.path.exists(cgfile(box, "cpu.max.burst")):
        assert cat(cgfile(box, "cpu.max.burst")) == "5000"
    assert cat(cgfile(box, "cpu.idle")) == "0"
    assert cat(cgfile(box, "pids.max")) == "42"


def test_cpuset(box):
    need("cpuset")
    box.set({"cpu": {"cpus": "0", "mems": "0"}})
    assert (cat(cgfile(box, "cpuset.cpus")), cat(cgfile(box, "cpuset.mems"))) == ("0", "0")


def test_io_weight(box):
    need("io")
    box.set({"blockIO": {"weight": 500}})
    if os.path.exists(cgfile(box, "io.bfq.weight")):
        assert "default 500" in cat(cgfile(box, "io.bfq.weight"))
    elif os.path.exists(cgfile(box, "io.weight")):
        assert cat(cgfile(box, "io.weight")).splitlines()[0] == "default 4950"
    else:
        pytest.skip("this kernel has neither io.weight (iocost) nor io.bfq.weight")


def test_io_max(box):
    need("io")
    dev = block_device()
    major, minor = (int(x) for x in dev.split(":"))
    box.set(
        {
            "blockIO": {
                "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 120}],
            }
        }
    )
    line = [x for x in cat(cgfile(box, "io.max")).splitlines() if x.startswith(dev + " ")]
    assert line == [f"{dev} rbps=1048576 wbps=max riops=max wiops=120"]


def test_hugetlb(box):
    need("hugetlb")
    sizes = sorted(
        n[len("hugetlb.") : -len(".max")]
        for n in os.listdir(cgfile(box, ""))
        if n.startswith("hugetlb.") and n.endswith(".max") and ".rsvd." not in n
    )
    if not sizes:
        pytest.skip("no huge page sizes on this kernel")
    box.set({"hugepageLimits": [{"pageSize": s, "limit": 0} for s in sizes]})
    for s in sizes:
        assert cat(cgfile(box, f"hugetlb.{s}.max")) == "0"


def test_a_limit_below_the_usage_is_refused_on_update_with_check_before_update(box, start):
    need("memory")
    child = start(
        "b = bytearray(32 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        "print('ready', flush=True)\nsys.stdin.readline()"
    ).go()
    assert child.proc.stdout.readline().strip() == "ready"
    usage = int(cat(cgfile(box, "memory.current")))
    from pyrunc.errors import CgroupError

    with pytest.raises(CgroupError, match="below the current usage"):
        box.set({"memory": {"limit": usage // 2, "checkBeforeUpdate": True}}, update=True)
    assert cat(cgfile(box, "memory.max")) == "max"


def test_an_allocation_past_memory_max_is_oom_killed(box, start):
    need("memory")
    box.set({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})  # and no swap at all
    child = start("b = bytearray(200 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1").go()
    code, _, _ = child.finish()
    assert code == -signal.SIGKILL
    assert box.oom_kills() >= 1


def test_pids_max_stops_a_fork_bomb(box, start):
    need("pids")
    box.set({"pids": {"limit": 5}})
    child = start("""
import os, signal
kids = []
while len(kids) < 50:
    try:
        pid = os.fork()
    except BlockingIOError:
        break
    if pid == 0:
        signal.pause()
    kids.append(pid)
print(len(kids), flush=True)
for k in kids:
    os.kill(k, signal.SIGKILL)
""").go()
    code, out, err = child.finish()
    assert (code, err) == (0, "")
    assert int(out) == 4  # the parent and four children make five tasks


def test_a_cpu_quota_throttles_a_busy_loop(box, start):
    need("cpu")
    box.set({"cpu": {"quota": 10000, "period": 100000}})
    start("while True: pass").go()
    throttled = wait_for(lambda: box.stats()["cpu"]["throttling"]["throttledPeriods"], "throttled periods")
    assert throttled > 0


def test_freeze_thaw_and_kill_all_on_real_processes(box, start):
    child = start("import time\nprint('up', flush=True)\nwhile True: time.sleep(0.01)").go()
    assert child.proc.stdout.readline().strip() == "up"
    box.freeze()
    assert box.is_frozen() and "frozen 1" in cat(cgfile(box, "cgroup.events"))
    box.thaw()
    assert not box.is_frozen() and "frozen 0" in cat(cgfile(box, "cgroup.events"))
    assert box.pids() == [child.proc.pid]
    box.kill_all(signal.SIGKILL)
    assert child.proc.wait(timeout=30) == -signal.SIGKILL


def test_stats_of_a_running_process(box, start):
    need("memory")
    need("pids")
    box.set({"pids": {"limit": 9}})
    child = start("x = sum(range(3_000_000))\nprint('done', flush=True)\nsys.stdin.readline()").go()
    assert child.proc.stdout.readline().strip() == "done"
    s = box.stats()
    assert s["pids"] == {"current": 1, "limit": 9}
    assert s["memory"]["usage"]["usage"] > 0 and s["memory"]["usage"]["limit"] == convert.MAX_UINT64
    assert s["cpu"]["usage"]["total"] > 0
    json.dumps(s)


def test_unified_refuses_a_controller_that_is_not_there(box):
    from pyrunc.errors import CgroupError

    with pytest.raises(CgroupError, match=r'unified\["nosuch.max"\]: the host has no nosuch cgroup controller'):
        box.set({"unified": {"nosuch.max": "1"}})


# -- containers through the CLI ----------------------------------------------------------


@pytest.fixture
def container(pyrunc, bundle, test_id, parent):
    """Run a container with resources and a script; returns the CLI result.  Its cgroup
    is parent/<test id>."""
    cgpath = f"{parent}/{test_id}"
    bundle.config["linux"]["cgroupsPath"] = cgpath

    def run(resources, script, detach=False):
        bundle.config["linux"]["resources"].update(resources)
        bundle.config["process"]["args"] = ["sh", "-c", script]
        bundle.write()
        if detach:
            return pyrunc("run", "-d", "--bundle", bundle.path, test_id)
        return pyrunc("run", "--bundle", bundle.path, test_id)

    run.cgpath = cgpath
    yield run
    pyrunc("delete", "--force", test_id)


def inside(r):
    """The container's stdout as {file: value} from `for f in ...; do echo f=$(cat f)`."""
    assert r.code == 0, r
    return dict(line.split("=", 1) for line in r.out.splitlines() if "=" in line)


def show(*names):
    return "; ".join(f"echo {n}=$(cat /sys/fs/cgroup/{n})" for n in names)


def test_container_sees_its_limits(container):
    need("memory")
    need("cpu")
    need("pids")
    got = inside(
        container(
            {
                "memory": {"limit": 64 * MiB, "reservation": 16 * MiB},
                "cpu": {"shares": 512, "quota": 20000, "period": 100000},
                "pids": {"limit": 20},
                "unified": {"memory.high": str(48 * MiB)},
            },
            show("memory.max", "memory.low", "memory.high", "cpu.max", "cpu.weight", "pids.max"),
        )
    )
    assert got == {
        "memory.max": str(64 * MiB),
        "memory.low": str(16 * MiB),
        "memory.high": str(48 * MiB),
        "cpu.max": "20000 100000",
        "cpu.weight": str(convert.shares_to_weight(512)),
        "pids.max": "20",
    }


def test_container_io_weight(container):
    need("io")
    r = container(
        {"blockIO": {"weight": 500}}, "cat /sys/fs/cgroup/io.weight /sys/fs/cgroup/io.bfq.weight 2>/dev/null; true"
    )
    assert r.code == 0, r
    if not r.out.strip():
        pytest.skip("this kernel has neither io.weight (iocost) nor io.bfq.weight")
    assert "default 4950" in r.out or "default 500" in r.out


def test_container_hugetlb(container):
    need("hugetlb")
    sizes = sorted(
        n[len("hugetlb.") : -len(".max")]
        for n in os.listdir(CGROUP_MOUNT_ROOT)
        if n.startswith("hugetlb.") and n.endswith(".max") and ".rsvd." not in n
    )
    if not sizes:
        # The root has no limit files: look at what a child gets.
        probe = os.path.join(CGROUP_MOUNT_ROOT, f"pyrunc-test-v2-probe-{uuid.uuid4().hex[:6]}")
        os.mkdir(probe)
        try:
            sizes = sorted(
                n[len("hugetlb.") : -len(".max")]
                for n in os.listdir(probe)
                if n.startswith("hugetlb.") and n.endswith(".max") and ".rsvd." not in n
            )
        finally:
            os.rmdir(probe)
    if not sizes:
        pytest.skip("no huge page sizes on this kernel")
    got = inside(container({"hugepageLimits": [{"pageSize": sizes[0], "limit": 0}]}, show(f"hugetlb.{sizes[0]}.max")))
    assert got == {f"hugetlb.{sizes[0]}.max": "0"}


def test_container_past_its_memory_is_oom_killed(container):
    need("memory")
    # dd fills a 64 MiB buffer from /dev/zero: twice the limit, and no swap to spill to.
    # It is the container's init (exec), so its SIGKILL is the container's exit: 128 + 9.
    r = container({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}, "exec dd if=/dev/zero of=/dev/null bs=64M count=1")
    assert r.code == 137, r


def test_container_fork_bomb_stops_at_pids_max(container):
    need("pids")
    r = container({"pids": {"limit": 10}}, "n=0; while [ $n -lt 50 ]; do sleep 60 & n=$((n+1)); echo $n; done")
    started = [int(x) for x in r.out.split()]
    assert "can't fork" in r.err, r
    assert 1 <= max(started) < 10


def test_container_update_keeps_memory_plus_swap(container, pyrunc, test_id):
    need("memory")
    r = container({"memory": {"limit": 64 * MiB, "swap": 96 * MiB}}, "sleep 600", detach=True)
    assert r.code == 0, r
    cg = os.path.join(CGROUP_MOUNT_ROOT, container.cgpath.lstrip("/"))
    if not os.path.exists(os.path.join(cg, "memory.swap.max")):
        pytest.skip("this kernel does not account swap per cgroup")
    assert cat(os.path.join(cg, "memory.swap.max")) == str(32 * MiB)
    r = pyrunc("update", "--memory", "80m", test_id)
    assert r.code == 0, r
    assert cat(os.path.join(cg, "memory.max")) == str(80 * MiB)
    assert cat(os.path.join(cg, "memory.swap.max")) == str(16 * MiB)


def test_container_with_net_cls_is_refused_naming_the_field(container):
    r = container({"network": {"classID": 1048577}}, "true")
    assert r.code != 0
    assert "linux.resources.network.classID: cgroup v2 has no net_cls controller" in r.err
    assert not os.path.exists(os.path.join(CGROUP_MOUNT_ROOT, container.cgpath.lstrip("/")))
