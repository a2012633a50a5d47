"""A memory limit below what the container needs to start: the OOM killer kills the init
during its set-up, and create (or run) says so in the user's terms, on v1 and v2 alike,
leaving nothing behind."""

import os

import pytest
from cg_util import any_left

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

LIMIT = 4096  # one page: the init's next new page is over it


def oom_bundle(bundle, cgroupns):
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.config["linux"]["resources"]["memory"] = {"limit": LIMIT}
    if cgroupns:
        # The init joins its cgroup before it builds the container: the OOM killer finds
        # it in the middle of its set-up.
        bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    # Else it is moved in late, before `created`: the kill may come as it reports, which
    # create checks for.
    bundle.write()


@pytest.mark.parametrize("cgroupns", [True, False], ids=["early-join", "late-join"])
@pytest.mark.parametrize("command", ["create", "run"])
def test_memory_limit_below_what_the_init_needs_is_named(pyrunc, bundle, test_id, command, cgroupns):
    oom_bundle(bundle, cgroupns)
    args = [command, "--bundle", bundle.path, test_id]
    if command == "run":
        args.insert(1, "-d")
    r = pyrunc(*args)
    assert r.code == 1, r
    step = "" if cgroupns else 'in step "join cgroup" '
    assert r.err.startswith(
        f"pyrunc: create {test_id}: container init was killed by the out-of-memory killer {step}"
    ), r
    assert (
        f"before it was ready: linux.resources.memory.limit is {LIMIT} bytes, below what "
        f"the container needs to start (its memory usage reached "
    ) in r.err, r
    assert r.err.count("\n") == 1 and "exited unexpectedly" not in r.err
    assert not os.path.isdir(pyrunc.root) or os.listdir(pyrunc.root) == []
    assert any_left(bundle.config["linux"]["cgroupsPath"]) == []
