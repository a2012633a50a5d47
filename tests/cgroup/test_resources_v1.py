"""Every linux.resources field on a v1 or hybrid host, read back from the host's cgroup
files while the container runs (limits seen at work are in test_cgroup_lifecycle.py)."""

import os

import pytest
from cg_util import MODE, V2, any_left, start_detached

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(V2, reason="cgroup v1 files: this host is pure cgroup v2"),
]

ROOT = "/sys/fs/cgroup"
MiB = 1 << 20


def v1(controller, cgpath, name):
    with open(os.path.join(ROOT, controller, cgpath.lstrip("/"), name)) as f:
        return f.read().strip()


def block_device():
    """major:minor of a real disk of this host, for the per-device blkio settings."""
    for name in sorted(os.listdir("/sys/block")):
        if name.startswith(("vd", "sd", "nvme", "xvd")):
            with open(f"/sys/block/{name}/dev") as f:
                return tuple(int(x) for x in f.read().split(":"))
    pytest.skip("no disk device on this host for the per-device blkio settings")


@pytest.fixture
def running(pyrunc, bundle, test_id):
    """Start the container with the resources the test put in the config."""

    def start(resources):
        bundle.config["linux"]["resources"].update(resources)
        start_detached(pyrunc, bundle, test_id, "sleep 600")
        return bundle.config["linux"]["cgroupsPath"]

    yield start
    pyrunc("delete", "--force", test_id)
    assert any_left(bundle.config["linux"]["cgroupsPath"]) == []


def test_memory(running):
    cg = running(
        {
            "memory": {
                "limit": 64 * MiB,
                "swap": 96 * MiB,
                "reservation": 32 * MiB,
                "swappiness": 7,
                "disableOOMKiller": True,
                "useHierarchy": True,
                "kernelTCP": 8 * MiB,
            }
        }
    )
    assert v1("memory", cg, "memory.limit_in_bytes") == str(64 * MiB)
    assert v1("memory", cg, "memory.memsw.limit_in_bytes") == str(96 * MiB)
    assert v1("memory", cg, "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert v1("memory", cg, "memory.swappiness") == "7"
    assert "oom_kill_disable 1" in v1("memory", cg, "memory.oom_control")
    assert v1("memory", cg, "memory.use_hierarchy") == "1"
    assert v1("memory", cg, "memory.kmem.tcp.limit_in_bytes") == str(8 * MiB)


def test_cpu(running):
    cg = running(
        {
            "cpu": {
                "shares": 512,
                "quota": 30000,
                "period": 60000,
                "burst": 1000,
                "realtimePeriod": 100000,
                "realtimeRuntime": 1000,
                "idle": 0,
                "cpus": "0",
                "mems": "0",
            }
        }
    )
    assert v1("cpu", cg, "cpu.shares") == "512"
    assert (v1("cpu", cg, "cpu.cfs_quota_us"), v1("cpu", cg, "cpu.cfs_period_us")) == ("30000", "60000")
    assert v1("cpu", cg, "cpu.cfs_burst_us") == "1000"
    assert (v1("cpu", cg, "cpu.rt_runtime_us"), v1("cpu", cg, "cpu.rt_period_us")) == ("1000", "100000")
    assert v1("cpu", cg, "cpu.idle") == "0"
    assert (v1("cpuset", cg, "cpuset.cpus"), v1("cpuset", cg, "cpuset.mems")) == ("0", "0")


def test_pids(running):
    assert v1("pids", running({"pids": {"limit": 42}}), "pids.max") == "42"


def test_unlimited_pids(running):
    assert v1("pids", running({"pids": {"limit": -1}}), "pids.max") == "max"


def test_blkio_throttles(running):
    major, minor = block_device()
    dev = {"major": major, "minor": minor}
    cg = running(
        {
            "blockIO": {
                "throttleReadBpsDevice": [dict(dev, rate=1048576)],
                "throttleWriteBpsDevice": [dict(dev, rate=2097152)],
                "throttleReadIOPSDevice": [dict(dev, rate=100)],
                "throttleWriteIOPSDevice": [dict(dev, rate=200)],
            }
        }
    )
    d = f"{major}:{minor}"
    assert v1("blkio", cg, "blkio.throttle.read_bps_device") == f"{d} 1048576"
    assert v1("blkio", cg, "blkio.throttle.write_bps_device") == f"{d} 2097152"
    assert v1("blkio", cg, "blkio.throttle.read_iops_device") == f"{d} 100"
    assert v1("blkio", cg, "blkio.throttle.write_iops_device") == f"{d} 200"


def test_blkio_weight(running, pyrunc, bundle, test_id):
    """Applied where the kernel has a weight file (CFQ's, or BFQ's); refused in one line
    naming the field where it has neither (no BFQ built, as on some cloud kernels)."""
    names = [n for n in ("blkio.weight", "blkio.bfq.weight") if os.path.exists(os.path.join(ROOT, "blkio", n))]
    if not names:
        bundle.config["linux"]["resources"]["blockIO"] = {"weight": 500}
        bundle.config["process"]["args"] = ["true"]
        bundle.write()
        r = pyrunc("run", "--bundle", bundle.path, test_id)
        assert r.code == 1 and "linux.resources.blockIO.weight" in r.err, r
        assert len(r.err.splitlines()) == 1, r
        assert not any_left(bundle.config["linux"]["cgroupsPath"]), r
        return
    cg = running({"blockIO": {"weight": 500}})
    assert v1("blkio", cg, names[0]).split()[-1] == "500"


def test_blkio_weight_device_needs_a_scheduler_with_weights(pyrunc, bundle, test_id):
    major, minor = block_device()
    bundle.config["linux"]["resources"]["blockIO"] = {"weightDevice": [{"major": major, "minor": minor, "weight": 300}]}
    with open(f"/sys/dev/block/{major}:{minor}/queue/scheduler") as f:
        bfq = "[bfq]" in f.read()
    bundle.config["process"]["args"] = ["true"]
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    if bfq:
        assert r.code == 0, r
    else:
        assert r.code == 1 and "linux.resources.blockIO.weightDevice[0].weight" in r.err, r


def test_devices_list_is_the_configs_then_the_defaults(running):
    cg = running(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 4, "minor": 64, "access": "r"},
            ]
        }
    )
    rules = v1("devices", cg, "devices.list").splitlines()
    assert "c 4:64 r" in rules and "c 1:3 rwm" in rules and "c 136:* rwm" in rules
    assert "a *:* rwm" not in rules


def test_hugepage_limits(pyrunc, bundle, test_id):
    """Enforced where the host has a v1 hugetlb hierarchy, or delegates hugetlb on its
    unified hierarchy; refused naming the field where it has neither (this machine)."""
    if not os.path.isdir("/sys/kernel/mm/hugepages") or not os.listdir("/sys/kernel/mm/hugepages"):
        pytest.skip("this kernel has no huge page sizes")
    page, limit = "2MB", 8 * MiB
    bundle.config["linux"]["resources"]["hugepageLimits"] = [{"pageSize": page, "limit": limit}]
    cg = bundle.config["linux"]["cgroupsPath"]
    v1_file = os.path.join(ROOT, "hugetlb", cg.lstrip("/"), f"hugetlb.{page}.limit_in_bytes")
    v2_file = os.path.join(ROOT, "unified", cg.lstrip("/"), f"hugetlb.{page}.max")
    unified_delegates = (
        "hugetlb" in open(os.path.join(ROOT, "unified", "cgroup.subtree_control")).read().split()
        if os.path.exists(os.path.join(ROOT, "unified"))
        else False
    )
    try:
        pid = (
            start_detached(pyrunc, bundle, test_id, "sleep 600")
            if (os.path.isdir(os.path.join(ROOT, "hugetlb")) or unified_delegates)
            else None
        )
        if pid is None:
            bundle.write()
            r = pyrunc("run", "--bundle", bundle.path, test_id)
            assert r.code == 1 and "linux.resources.hugepageLimits[0]" in r.err and "hugetlb" in r.err, (MODE, r)
            return
        with open(v1_file if os.path.exists(v1_file) else v2_file) as f:
            assert f.read().strip() == str(limit)
    finally:
        pyrunc("delete", "--force", test_id)
        assert any_left(cg) == []
