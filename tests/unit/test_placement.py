"""linux/placement.py through the kernel seam: CPU and node lists, the memory policy's
mode, flags and nodemask, and errors that name the field."""

import errno

import pytest

from pyrunc.errors import KernelError
from pyrunc.linux import placement
from tests.unit.fakekernel import FakeKernel


@pytest.fixture
def fake():
    return FakeKernel()


@pytest.mark.parametrize(
    "text, numbers", [("", set()), ("5", {5}), ("0-3,7", {0, 1, 2, 3, 7}), ("2-5,0-3,9,9", {0, 1, 2, 3, 4, 5, 9})]
)
def test_lists_are_the_numbers_they_name(text, numbers):
    assert placement.parse_list(text) == numbers


def test_memory_policy_mode_flags_and_nodes_reach_set_mempolicy(fake):
    placement.set_memory_policy(fake, {"mode": "MPOL_INTERLEAVE", "nodes": "0-1,3", "flags": ["MPOL_F_STATIC_NODES"]})
    placement.set_memory_policy(fake, {"mode": "MPOL_LOCAL"})
    [(mode, nodes, _), (local, none, _)] = fake.of("set_mempolicy")
    assert (mode, nodes) == (3 | 1 << 15, {0, 1, 3})
    assert (local, none) == (4, set())


def test_a_refused_memory_policy_names_the_field_and_value(fake):
    fake.fail("set_mempolicy", errno.EINVAL)
    with pytest.raises(KernelError) as e:
        placement.set_memory_policy(fake, {"mode": "MPOL_BIND", "nodes": "0"})
    assert str(e.value).startswith("set linux.memoryPolicy MPOL_BIND nodes '0'")


def test_affinity_initial_is_ours_and_final_is_the_pid_given(fake):
    class Proc:
        exec_cpu_affinity = {"initial": "1", "final": "0-1"}

    placement.set_initial_affinity(fake, Proc)
    placement.set_final_affinity(fake, 4242, Proc)
    assert [args[:2] for args in fake.of("sched_setaffinity")] == [(0, {1}), (4242, {0, 1})]
