"""A memory limit below what the container needs to start: the OOM killer kills the init
during its set-up, and create (or run) says so in the user's terms, on v1 and v2 alike,
leaving nothing behind."""

import os

import pytest

from cg_util import any_left

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

LIMIT = 4096  # one page: the init's next new page is over it


def oom_bundle(bundle):
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.config["linux"]["resources"]["memory"] = {"limit": LIMIT}
    # With a new cgroup namespace the init joins its cgroup before it builds the
    # container, so the OOM killer finds it every time, in the middle of its set-up.
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.write()


@pytest.mark.parametrize("command", ["create", "run"])
def test_memory_limit_below_what_the_init_needs_is_named(pyrunc, bundle, test_id, command):
    oom_bundle(bundle)
    args = [command, "--bundle", bundle.path, test_id]
    if command == "run":
        args.insert(1, "-d")
    r = pyrunc(*args)
    assert r.code == 1, r
    assert r.err.startswith(f"pyrunc: create {test_id}: container init was killed by the "
                            f"out-of-memory killer in step \""), r
    assert (f"before it was ready: linux.resources.memory.limit is {LIMIT} bytes, below what "
            f"the container needs to start (its memory usage reached ") in r.err, r
    assert r.err.count("\n") == 1 and "exited unexpectedly" not in r.err
    assert os.listdir(pyrunc.root) == [] if os.path.isdir(pyrunc.root) else True
    assert any_left(bundle.config["linux"]["cgroupsPath"]) == []
