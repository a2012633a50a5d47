"""made_leaf(): whether create() made the container's own cgroup directory (then nothing
can be in it, and create skips the not-empty check), on plain directories laid out like
cgroupfs."""

import os

from pyrunc.linux.cgroups.v1 import V1Manager
from pyrunc.linux.cgroups.v2 import V2Manager

CG = "/pyrunc-test-a/b"


def _v1(root):
    for h in ("memory", "pids"):
        os.makedirs(os.path.join(root, h), exist_ok=True)
        open(os.path.join(root, h, "cgroup.procs"), "a").close()
    return V1Manager(CG, root=str(root), own={})


def _v2(root):
    open(os.path.join(root, "cgroup.controllers"), "a").close()
    return V2Manager(CG, root=str(root), own={})


def test_v1_a_new_leaf_everywhere_is_made(tmp_path):
    mgr = _v1(tmp_path)
    os.makedirs(tmp_path / "memory" / "pyrunc-test-a")  # a parent that exists is fine
    mgr.create()
    assert mgr.made_leaf()


def test_v1_a_leaf_that_exists_in_one_hierarchy_is_not(tmp_path):
    mgr = _v1(tmp_path)
    os.makedirs(tmp_path / "pids" / CG.lstrip("/"))
    mgr.create()
    assert not mgr.made_leaf()


def test_v2(tmp_path):
    mgr = _v2(tmp_path)
    mgr.create()
    assert mgr.made_leaf()
    again = _v2(tmp_path)
    again.create()
    assert not again.made_leaf()
