"""The systemd cgroup driver against a real systemd (the `make test-systemd` guest): a
busybox container with --systemd-cgroup is a transient scope in its slice, with the
properties asked for, its cgroup files agreeing; the commands work on it; delete, a failed
create and a refused one leave no unit and no cgroup."""

import json
import os
import subprocess
import uuid

import pytest

from tests.integration.cli_util import pyrunc_cmd, runc, wait_for  # noqa: F401  (runc: the fixture)

SD = ("--systemd-cgroup",)
CGROUP_ROOT = "/sys/fs/cgroup"
MiB = 1 << 20


def run(*argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}"
    return proc.stdout


def show(unit, *names):
    """{property: value} of a unit as `systemctl show` prints them; a property shown on
    several lines (DeviceAllow) has its values sorted and joined by "; "."""
    out = run("systemctl", "show", "--property=" + ",".join(names), unit)
    found = {}
    for line in out.splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            found.setdefault(name, []).append(value)
    return {name: "; ".join(sorted(values)) for name, values in found.items()}


def gone(unit):
    """systemd has no such unit, loaded or listed."""
    listed = run("systemctl", "list-units", "--all", "--plain", "--no-legend", unit)
    return show(unit, "LoadState")["LoadState"] == "not-found" and unit not in listed


def read(path):
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def slices():
    """Slices a test names (pyrunc-test-<hex>.slice), stopped afterwards."""
    made = []

    def name():
        s = f"pyrunc-test-{uuid.uuid4().hex[:8]}.slice"
        made.append(s)
        return s

    yield name
    for s in made:
        subprocess.run(["systemctl", "stop", s], capture_output=True, timeout=60)


def sleeper(bundle, cgroups_path, resources=None):
    bundle.config["process"]["args"] = ["sleep", "1000"]
    bundle.config["linux"]["cgroupsPath"] = cgroups_path
    if resources is not None:
        bundle.config["linux"]["resources"] = resources
    bundle.write()


def test_a_container_is_a_scope_in_system_slice_with_its_limits(pyrunc, bundle, test_id):
    unit = f"pyrunc-{test_id}.scope"
    resources = {
        "memory": {"limit": 64 * MiB, "swap": 64 * MiB},
        "cpu": {"shares": 1024, "quota": 1234, "period": 100000},
        "pids": {"limit": 50},
        "devices": [{"allow": False, "access": "rwm"}],
    }
    sleeper(bundle, f"system.slice:pyrunc:{test_id}", resources)
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id, extra=SD)
    assert r.code == 0, r
    props = show(
        unit,
        "ActiveState",
        "Slice",
        "Delegate",
        "ControlGroup",
        "MemoryMax",
        "MemorySwapMax",
        "CPUWeight",
        "CPUQuotaPerSecUSec",
        "CPUQuotaPeriodUSec",
        "TasksMax",
        "DevicePolicy",
        "DefaultDependencies",
    )
    assert props["ActiveState"] == "active" and props["Slice"] == "system.slice", props
    assert props["Delegate"] == "yes" and props["ControlGroup"] == f"/system.slice/{unit}", props
    assert props["MemoryMax"] == str(64 * MiB) and props["MemorySwapMax"] == "0", props
    assert props["CPUWeight"] == "39" and props["TasksMax"] == "50", props
    assert props["CPUQuotaPerSecUSec"] == "20ms" and props["CPUQuotaPeriodUSec"] == "100ms", props
    assert props["DevicePolicy"] == "strict", props
    # The files say the same: the quota rounded as systemd holds it.
    cg = os.path.join(CGROUP_ROOT, "system.slice", unit)
    assert read(f"{cg}/memory.max") == str(64 * MiB) and read(f"{cg}/memory.swap.max") == "0"
    assert read(f"{cg}/cpu.max") == "2000 100000" and read(f"{cg}/pids.max") == "50"
    assert read(f"{cg}/cpu.weight") == "39"
    pid = pyrunc.state(test_id)["pid"]
    assert read(f"/proc/{pid}/cgroup") == f"0::/system.slice/{unit}"
    assert str(pid) in read(f"{cg}/cgroup.procs").split()

    # update: the unit's property and the file
    assert pyrunc("update", "--memory", "32M", "--memory-swap", "32M", test_id, extra=SD).code == 0
    assert show(unit, "MemoryMax")["MemoryMax"] == str(32 * MiB)
    assert read(f"{cg}/memory.max") == str(32 * MiB)
    # pause / resume through the scope's cgroup.freeze
    assert pyrunc("pause", test_id, extra=SD).code == 0
    assert pyrunc.state(test_id)["status"] == "paused" and read(f"{cg}/cgroup.freeze") == "1"
    assert pyrunc("resume", test_id, extra=SD).code == 0
    assert pyrunc.state(test_id)["status"] == "running"
    ps = pyrunc("ps", "--format", "json", test_id, extra=SD)
    assert ps.code == 0 and pid in json.loads(ps.out), ps
    stats = pyrunc("events", "--stats", test_id, extra=SD)
    assert stats.code == 0 and json.loads(stats.out)["data"]["pids"]["current"] >= 1, stats
    assert pyrunc("kill", "--all", test_id, "KILL", extra=SD).code == 0
    assert pyrunc("delete", "--force", test_id, extra=SD).code == 0
    assert gone(unit) and not os.path.exists(cg)


def test_a_nested_slice_holds_the_scope_below_its_parents(pyrunc, bundle, test_id, slices):
    parent = slices()  # pyrunc-test-HEX.slice: /pyrunc.slice/pyrunc-test.slice/pyrunc-test-HEX.slice
    unit = f"pyrunc-{test_id}.scope"
    sleeper(bundle, f"{parent}:pyrunc:{test_id}", {"pids": {"limit": 20}})
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id, extra=SD)
    assert r.code == 0, r
    want = f"/pyrunc.slice/pyrunc-test.slice/{parent}/{unit}"
    assert show(unit, "ControlGroup", "Slice") == {"ControlGroup": want, "Slice": parent}
    pid = pyrunc.state(test_id)["pid"]
    assert read(f"/proc/{pid}/cgroup") == f"0::{want}"
    assert read(f"{CGROUP_ROOT}{want}/pids.max") == "20"
    assert pyrunc("delete", "--force", test_id, extra=SD).code == 0
    assert gone(unit) and not os.path.exists(CGROUP_ROOT + want)


def test_a_failed_create_leaves_no_unit(pyrunc, bundle, test_id):
    unit = f"pyrunc-{test_id}.scope"
    # Refused by the v2 files after the scope started: create must stop it again.
    sleeper(bundle, f"system.slice:pyrunc:{test_id}", {"cpu": {"realtimeRuntime": 1000}})
    r = pyrunc("create", "--bundle", bundle.path, test_id, extra=SD)
    assert r.code != 0 and "realtimeRuntime" in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r
    assert pyrunc("state", test_id).code != 0
    assert gone(unit) and not os.path.exists(os.path.join(CGROUP_ROOT, "system.slice", unit))


def test_a_killed_create_leaves_no_unit_once_deleted(pyrunc, bundle, test_id):
    """pyrunc killed once the scope is there (during create, or just after it): delete
    --force stops what is left, or systemd collected the unit when its processes died."""
    unit = f"pyrunc-{test_id}.scope"
    sleeper(bundle, f"system.slice:pyrunc:{test_id}")
    proc = subprocess.Popen(
        pyrunc_cmd(pyrunc, *SD, "create", "--bundle", bundle.path, test_id),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: show(unit, "ActiveState")["ActiveState"] == "active" or proc.poll() is not None, unit)
    finally:
        proc.kill()
        proc.wait()
    pyrunc("delete", "--force", test_id, extra=SD)
    wait_for(lambda: gone(unit), f"{unit} to go")
    assert not os.path.exists(os.path.join(CGROUP_ROOT, "system.slice", unit))


def test_a_unit_that_exists_is_refused_and_left_alone(pyrunc, bundle, test_id):
    unit = f"pyrunc-{test_id}.scope"
    sleeper(bundle, f"system.slice:pyrunc:{test_id}")
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id, extra=SD).code == 0
    other = f"{test_id}-b"
    r = pyrunc("create", "--bundle", bundle.path, other, extra=SD)
    assert r.code != 0 and f"systemd unit {unit} already exists" in r.err, r
    assert show(unit, "ActiveState")["ActiveState"] == "active"  # the first container's, untouched
    assert pyrunc.state(test_id)["status"] == "running"
    assert pyrunc("delete", "--force", test_id, extra=SD).code == 0
    assert gone(unit)


def test_a_malformed_path_is_one_line_and_makes_nothing(pyrunc, bundle, test_id):
    sleeper(bundle, f"bad-.slice:pyrunc:{test_id}")
    r = pyrunc("create", "--bundle", bundle.path, test_id, extra=SD)
    assert r.code == 1 and "linux.cgroupsPath: invalid slice name: bad-.slice" in r.err, r
    assert pyrunc("state", test_id).code != 0 and gone(f"pyrunc-{test_id}.scope")


# What runc 1.1 sets too, for the same config (systemd fills in what neither sets).
COMPARED = (
    "Slice",
    "Delegate",
    "DefaultDependencies",
    "MemoryAccounting",
    "CPUAccounting",
    "IOAccounting",
    "TasksAccounting",
    "MemoryMax",
    "MemoryLow",
    "MemorySwapMax",
    "CPUWeight",
    "CPUQuotaPerSecUSec",
    "CPUQuotaPeriodUSec",
    "TasksMax",
    "AllowedCPUs",
    "AllowedMemoryNodes",
    "DevicePolicy",
)


def test_the_unit_and_its_cgroup_match_runcs(pyrunc, runc, bundle, test_id):
    resources = {
        "memory": {"limit": 64 * MiB, "swap": 96 * MiB, "reservation": 16 * MiB},
        "cpu": {"shares": 512, "quota": 1234, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 40},
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "access": "r"}],
    }
    sleeper(bundle, f"system.slice:pyrunc:{test_id}", resources)
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id, extra=SD).code == 0
    theirs = f"{test_id}-runc"
    sleeper(bundle, f"system.slice:pyrunc:{theirs}", resources)
    code, _, err = runc("--systemd-cgroup", "run", "-d", "--bundle", bundle.path, theirs)
    assert code == 0, err
    try:
        ours, runcs = show(f"pyrunc-{test_id}.scope", *COMPARED), show(f"pyrunc-{theirs}.scope", *COMPARED)
        assert ours == runcs
        # DeviceAllow says the same in newer runc's form (char-MAJOR where runc 1.1 looks up
        # /proc/devices' group name), and keeps tun (runc 1.1 loses c 10:200 rwm behind
        # the config's c 10:* r, though its cgroup rules allow it).
        allow = show(f"pyrunc-{test_id}.scope", "DeviceAllow")["DeviceAllow"].split("; ")
        assert {"char-10 r", "char-136 rwm", "/dev/char/10:200 rwm", "/dev/char/1:3 rwm", "char-* m"} <= set(allow)
        for name in ("memory.max", "memory.low", "memory.swap.max", "cpu.weight", "pids.max", "cpuset.cpus"):
            mine = read(f"{CGROUP_ROOT}/system.slice/pyrunc-{test_id}.scope/{name}")
            assert mine == read(f"{CGROUP_ROOT}/system.slice/pyrunc-{theirs}.scope/{name}"), name
        # The quota as systemd holds it (20 ms per second), in the file too, as runc does
        # since 1.2; runc 1.1 writes 1234 there, which systemd undoes at its next reload.
        assert read(f"{CGROUP_ROOT}/system.slice/pyrunc-{test_id}.scope/cpu.max") == "2000 100000"
    finally:
        runc("--systemd-cgroup", "delete", "--force", theirs)
    assert pyrunc("delete", "--force", test_id, extra=SD).code == 0
    assert gone(f"pyrunc-{test_id}.scope") and gone(f"pyrunc-{theirs}.scope")
