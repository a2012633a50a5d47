"""The `make test-systemd` guest itself: systemd is PID 1 and has finished booting, the
cgroup hierarchy is the one it was booted for (unified, or hybrid for test-systemd-v1),
systemd's private socket and the system bus answer, and a transient scope comes and goes.
The systemd cgroup driver's tests build on each of these."""

import os
import stat
import subprocess
import time
import warnings

import pytest

SCOPE = "pyrunc-test-sdguest-smoke.scope"
CGROUP_ROOT = "/sys/fs/cgroup"


def run(*argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}"
    return proc.stdout


def unit_state(unit):
    """(LoadState, ActiveState) of a unit as systemd sees it."""
    out = run("systemctl", "show", "--property=LoadState,ActiveState", unit)
    props = dict(line.split("=", 1) for line in out.split())
    return props["LoadState"], props["ActiveState"]


def mounts():
    """(mount point, file system type) of each mount, from /proc/self/mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            found.append((fields[4], fstype))
    return found


@pytest.fixture
def scope():
    """The smoke test's scope unit: absent before the test, and stopped afterwards if the
    test left it."""
    assert unit_state(SCOPE)[0] == "not-found", f"{SCOPE} exists before the test"
    yield SCOPE
    if unit_state(SCOPE)[0] != "not-found":
        subprocess.run(["systemctl", "stop", SCOPE], capture_output=True, timeout=60)
        subprocess.run(["systemctl", "reset-failed", SCOPE], capture_output=True, timeout=60)


def test_pid1_is_systemd():
    with open("/proc/1/comm") as f:
        assert f.read().strip() == "systemd"
    assert os.path.basename(os.readlink("/proc/1/exe")) == "systemd"


def test_the_boot_is_complete():
    """running, or degraded with the failed units named in a warning; never starting,
    maintenance or stopping."""
    proc = subprocess.run(["systemctl", "is-system-running"], capture_output=True, text=True, timeout=60)
    state = proc.stdout.strip()
    assert state in ("running", "degraded"), f"systemctl is-system-running: {state}"
    if state == "degraded":
        failed = run("systemctl", "list-units", "--failed", "--plain", "--no-legend").strip()
        warnings.warn(f"the guest's systemd is degraded; failed units:\n{failed}", stacklevel=1)


def test_the_cgroup_hierarchy_is_the_one_booted_for(layout):
    """unified (make test-systemd) or hybrid (make test-systemd-v1), as the guest was
    booted; this test's service in its own cgroup under system.slice either way."""
    assert layout == os.environ.get("PYRUNC_EXPECT_CGROUP", layout), "booted on another layout"
    table = mounts()
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    if layout == "unified":
        assert (CGROUP_ROOT, "cgroup2") in table, f"{CGROUP_ROOT} is not cgroup2: {table}"
        assert [m for m in table if m[1] == "cgroup"] == [], "a cgroup v1 hierarchy is mounted"
        assert lines == ["0::/system.slice/pyrunc-test.service"], lines
        return
    assert layout == "hybrid", layout
    v1 = {os.path.basename(point) for point, fstype in table if fstype == "cgroup"}
    assert {"systemd", "memory", "pids", "freezer", "cpuset", "devices"} <= v1, v1
    assert (CGROUP_ROOT + "/unified", "cgroup2") in table
    # systemd tracks the service in its name=systemd and unified hierarchies.
    assert "0::/system.slice/pyrunc-test.service" in lines, lines
    assert any(line.endswith(":name=systemd:/system.slice/pyrunc-test.service") for line in lines), lines


def test_systemd_private_socket_exists():
    assert stat.S_ISSOCK(os.stat("/run/systemd/private").st_mode)


def test_a_transient_scope_comes_and_goes(scope, layout):
    out = run("systemd-run", "--scope", "--unit", scope, "--", "/bin/cat", "/proc/self/cgroup")
    assert f"0::/system.slice/{scope}\n" in out, out
    # The scope ends once its cgroup is empty, which systemd learns a moment later.
    deadline = time.monotonic() + 60
    while unit_state(scope)[0] != "not-found" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert unit_state(scope) == ("not-found", "inactive")
    tracking = CGROUP_ROOT if layout == "unified" else CGROUP_ROOT + "/systemd"  # name=systemd's
    assert not os.path.exists(os.path.join(tracking, "system.slice", scope))


def test_the_system_bus_answers():
    """busctl reaches systemd over dbus-daemon's socket (not systemd's private one)."""
    assert stat.S_ISSOCK(os.stat("/run/dbus/system_bus_socket").st_mode)
    out = run(
        "busctl",
        "--system",
        "call",
        "org.freedesktop.systemd1",
        "/org/freedesktop/systemd1",
        "org.freedesktop.systemd1.Manager",
        "GetUnit",
        "s",
        "init.scope",
    )
    assert out.strip() == 'o "/org/freedesktop/systemd1/unit/init_2escope"'
