"""The host the cgroup tests run on.  Anywhere, pyrunc's probe() must name the cgroup kind
the kernel really mounted; in the `make test-cgroup2` guest (PYRUNC_EXPECT_CGROUP2=1) that
kind must be pure cgroup v2 with the controllers the tests need enabled for them."""

import ctypes
import ctypes.util
import os

import pytest

from pyrunc.linux.cgroups import probe
from pyrunc.linux.kernel import Kernel

ROOT = "/sys/fs/cgroup"
CGROUP2_MAGIC = 0x63677270
IN_GUEST = os.environ.get("PYRUNC_EXPECT_CGROUP2") == "1"
NEEDED = {"memory", "pids", "cpu", "io"}


def fs_magic(path):
    """statfs(2)'s f_type, read here without pyrunc's kernel seam: f_type is the struct's
    first field, a long."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buf = ctypes.create_string_buffer(256)  # larger than struct statfs
    if libc.statfs(os.fsencode(path), buf) != 0:
        raise OSError(ctypes.get_errno(), f"statfs {path}")
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


def words(path):
    with open(path) as f:
        return set(f.read().split())


def expected_kind():
    if fs_magic(ROOT) == CGROUP2_MAGIC:
        return "v2"
    unified = os.path.join(ROOT, "unified")
    if os.path.isdir(unified) and fs_magic(unified) == CGROUP2_MAGIC:
        return "hybrid"
    return "v1"


def test_probe_names_the_cgroup_kind_the_kernel_mounted():
    assert probe(Kernel()) == expected_kind()


@pytest.mark.skipif(not IN_GUEST, reason="only in the make test-cgroup2 guest (PYRUNC_EXPECT_CGROUP2=1)")
def test_the_guest_is_pure_cgroup2_with_the_controllers_the_tests_need():
    assert fs_magic(ROOT) == CGROUP2_MAGIC, f"{ROOT} is not cgroup2"
    assert probe(Kernel()) == "v2"
    assert not os.path.exists(os.path.join(ROOT, "memory")), "a v1 memory hierarchy is mounted"
    assert NEEDED <= words(os.path.join(ROOT, "cgroup.controllers"))
    assert NEEDED <= words(os.path.join(ROOT, "cgroup.subtree_control")), (
        "the root's cgroup.subtree_control does not hand the controllers down"
    )
