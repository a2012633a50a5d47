"""spawn._fork on a pure cgroup v2 host: the child born in its cgroup (clone3 with
CLONE_INTO_CGROUP, kernel.Kernel.fork_into_cgroup), or, where the kernel lacks clone3 or
the flag (before Linux 5.7: ENOSYS, E2BIG, EINVAL), a plain fork, the child moved in
later.  Through the seam's double: its fork calls are recorded, not made."""

import errno

import pytest

from pyrunc.errors import KernelError
from pyrunc.linux import spawn
from tests.unit.fakekernel import FakeKernel


def test_the_child_is_born_in_the_cgroup_it_is_given():
    k = FakeKernel()
    assert spawn._fork(k, None, 7) == (0, True)
    assert k.calls == [("fork_into_cgroup", (7,))]


def test_without_a_cgroup_it_is_a_plain_fork():
    k = FakeKernel()
    assert spawn._fork(k, None) == (0, False)
    assert k.names() == ["fork"]


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.E2BIG, errno.EINVAL])
def test_a_kernel_without_clone_into_cgroup_gets_a_plain_fork(err):
    k = FakeKernel()
    k.fail("fork_into_cgroup", err)
    assert spawn._fork(k, None, 7) == (0, False)  # not born in it: moved in when it asks
    assert k.names() == ["fork_into_cgroup", "fork"]


def test_any_other_clone3_failure_fails_the_spawn():
    k = FakeKernel()
    k.fail("fork_into_cgroup", errno.EAGAIN)
    with pytest.raises(KernelError):
        spawn._fork(k, None, 7)
    assert k.names() == ["fork_into_cgroup"]
