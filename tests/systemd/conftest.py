"""tests/systemd need systemd as PID 1: they run in the `make test-systemd` guest
(scripts/systemd-vm.sh) and skip, saying so, anywhere else.  In the guest
(PYRUNC_EXPECT_SYSTEMD=1) they run whatever PID 1 is, so a guest that booted without
systemd fails rather than skips.

The guest boots on the unified cgroup hierarchy (`make test-systemd`) or on systemd's
legacy/hybrid layout (`make test-systemd-v1`); a test that depends on it asks the running
system (`layout`), and PYRUNC_EXPECT_CGROUP says which one the guest was booted for."""

import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
IN_GUEST = os.environ.get("PYRUNC_EXPECT_SYSTEMD") == "1"
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP2_SUPER_MAGIC = 0x63677270


def cgroup_layout():
    """ "unified" (/sys/fs/cgroup is cgroup2), "hybrid" (v1 controllers plus a cgroup2
    /sys/fs/cgroup/unified) or "legacy" (v1 only), from /proc/self/mountinfo."""
    types = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            types[fields[4]] = fields[fields.index("-") + 1]
    if types.get(CGROUP_ROOT) == "cgroup2":
        return "unified"
    return "hybrid" if types.get(CGROUP_ROOT + "/unified") == "cgroup2" else "legacy"


@pytest.fixture(scope="session")
def layout():
    return cgroup_layout()


def pid1_name():
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip()
    except OSError as e:
        return f"unknown ({e.strerror})"


def pytest_collection_modifyitems(config, items):
    # A conftest's hook sees every collected item: touch only this directory's.
    name = pid1_name()
    if name == "systemd" or IN_GUEST:
        return
    skip = pytest.mark.skip(reason=f"needs systemd as PID 1 (PID 1 here is {name}): make test-systemd runs these")
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In the guest, a failed test's report ends with what systemd logged meanwhile (its
    last lines), for a failure that only the guest's console shows."""
    outcome = yield
    rep = outcome.get_result()
    if not (IN_GUEST and rep.when == "call" and rep.failed and str(item.fspath).startswith(HERE + os.sep)):
        return
    import subprocess

    try:
        proc = subprocess.run(
            ["journalctl", "-b", "--no-pager", "-o", "short-monotonic", "-n", "40"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        rep.sections.append(("systemd's journal, last lines", proc.stdout + proc.stderr))
    except (OSError, subprocess.TimeoutExpired) as e:
        rep.sections.append(("systemd's journal", f"journalctl: {e}"))
