"""tests/systemd need systemd as PID 1: they run in the `make test-systemd` guest
(scripts/systemd-vm.sh) and skip, saying so, anywhere else.  In the guest
(PYRUNC_EXPECT_SYSTEMD=1) they run whatever PID 1 is, so a guest that booted without
systemd fails rather than skips."""

import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
IN_GUEST = os.environ.get("PYRUNC_EXPECT_SYSTEMD") == "1"


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
