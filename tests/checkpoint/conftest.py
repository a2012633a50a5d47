"""The checkpoint tests: root, and a `criu check` that passes.  In the `make test-checkpoint`
guest (PYRUNC_EXPECT_CRIU=1) CRIU must work: a failing check fails the tests there instead
of skipping them."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import is_root

IN_GUEST = os.environ.get("PYRUNC_EXPECT_CRIU") == "1"


def criu_problem():
    """Why CRIU cannot run here, or None."""
    if not is_root():
        return "needs root"
    criu = shutil.which("criu")
    if criu is None:
        return "no criu (apt-get install criu; make test-checkpoint does)"
    r = subprocess.run([criu, "check"], capture_output=True, text=True)
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        last = lines[-1] if lines else r.returncode
        return f"criu check fails here: {last} (make test-checkpoint runs a guest where it works)"
    return None


_PROBLEM = []


def pytest_collection_modifyitems(config, items):
    mine = [i for i in items if "tests/checkpoint" in str(i.fspath)]
    if not mine:
        return
    for item in mine:
        item.add_marker(pytest.mark.root)
    problem = None if IN_GUEST else criu_problem()
    if problem is None:
        return  # in the guest, a CRIU that does not work fails the tests
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=problem))
