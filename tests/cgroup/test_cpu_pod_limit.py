"""`update` of the CPU period and quota of a container whose pod cgroup has a CPU limit.
On v1 the kernel checks each of cpu.cfs_period_us and cpu.cfs_quota_us against the
parent's limit with the other file as it stands, so one order of the two writes can be
refused where the other passes; runc then writes them the other way round.  On v2
cpu.max is one write of both.  The same steps with runc, where it is installed."""

import os
import shutil
import subprocess

import pytest
from cg_util import V2, cgroup_file, hierarchy_dirs, read

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

POD_QUOTA, POD_PERIOD = 50000, 100000  # the pod may use half a CPU


@pytest.fixture
def pod(pyrunc, bundle, test_id):
    """The container's parent cgroup, made by the test with a CPU limit; afterwards the
    container goes, then the pod in every hierarchy (runc leaves the levels it made above
    the container)."""
    path = os.path.dirname(bundle.config["linux"]["cgroupsPath"])
    d = os.path.dirname(cgroup_file(path, "cpu.quota"))
    os.mkdir(d)
    try:
        if V2:
            if not os.path.exists(os.path.join(d, "cpu.max")):
                pytest.skip("no cpu controller delegated to the pod cgroup")
            with open(os.path.join(d, "cpu.max"), "w") as f:
                f.write(f"{POD_QUOTA} {POD_PERIOD}")
        else:
            for name, value in (("cpu.cfs_period_us", POD_PERIOD), ("cpu.cfs_quota_us", POD_QUOTA)):
                with open(os.path.join(d, name), "w") as f:
                    f.write(str(value))
        yield path
    finally:
        pyrunc("delete", "--force", test_id)
        for level in hierarchy_dirs(path):
            if os.path.isdir(level):
                os.rmdir(level)


def _cpu(cgpath):
    """(quota, period) as the container's cgroup has them."""
    if V2:
        quota, period = read(cgroup_file(cgpath, "cpu.quota")).split()
        return quota, period
    d = os.path.dirname(cgroup_file(cgpath, "cpu.quota"))
    return read(os.path.join(d, "cpu.cfs_quota_us")), read(os.path.join(d, "cpu.cfs_period_us"))


# (update flags, whether it passes): a lower period with a quota that fits it, back up
# again, then a quota over the pod's limit (v1 refuses it; v2 takes it, the pod's limit
# still holding).
STEPS = [
    (("--cpu-period", "50000", "--cpu-quota", "25000"), True, ("25000", "50000")),
    (("--cpu-period", "100000", "--cpu-quota", "50000"), True, ("50000", "100000")),
    (("--cpu-period", "100000", "--cpu-quota", "60000"), V2, ("60000", "100000") if V2 else ("50000", "100000")),
]


def _steps(run, cgpath, cid):
    """What each step gives: (exit status 0 or not, the cgroup's quota and period)."""
    got = []
    for flags, _, _ in STEPS:
        code = run("update", *flags, cid)
        got.append((code == 0, _cpu(cgpath)))
    return got


def test_update_period_and_quota_under_a_pod_limit(pyrunc, bundle, test_id, pod, tmp_path):
    cgpath = bundle.config["linux"]["cgroupsPath"]
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.config["linux"]["resources"]["cpu"] = {"quota": POD_QUOTA, "period": POD_PERIOD}
    bundle.write()
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    got = _steps(lambda *a: pyrunc(*a).code, cgpath, test_id)
    assert got == [(ok, want) for _, ok, want in STEPS]
    assert pyrunc("delete", "--force", test_id).code == 0
    if shutil.which("runc"):
        root = str(tmp_path / "runc")

        def runc(*args):
            # No pipes: the container would hold them open.
            return subprocess.run(
                ["runc", "--root", root, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            ).returncode

        assert runc("run", "-d", "--bundle", bundle.path, test_id) == 0
        try:
            assert _steps(runc, cgpath, test_id) == got
        finally:
            runc("delete", "--force", test_id)


def test_create_in_an_existing_cgroup_whose_quota_needs_the_other_order(pyrunc, bundle, test_id, pod):
    """The container's own cgroup exists with the pod's whole share; the config asks for
    the same share over half the period: the period first would be refused."""
    if V2:
        pytest.skip("cgroup v2 writes period and quota at once")
    cgpath = bundle.config["linux"]["cgroupsPath"]
    d = os.path.dirname(cgroup_file(cgpath, "cpu.quota"))
    os.mkdir(d)
    try:
        for name, value in (("cpu.cfs_quota_us", POD_QUOTA), ("cpu.cfs_period_us", POD_PERIOD)):
            with open(os.path.join(d, name), "w") as f:
                f.write(str(value))
        bundle.config["process"]["args"] = ["sleep", "600"]
        bundle.config["linux"]["resources"]["cpu"] = {"quota": 25000, "period": 50000}
        bundle.write()
        r = pyrunc("create", "--bundle", bundle.path, test_id)
        assert r.code == 0, r
        assert _cpu(cgpath) == ("25000", "50000")
    finally:
        pyrunc("delete", "--force", test_id)
        os.rmdir(d)
