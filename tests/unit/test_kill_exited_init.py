"""kill when the container's init exits between opening its pidfd and the signal
(signalling.signal_container): with --all that is the outcome asked for, otherwise the
one-line "not running" error; never a traceback.  Through the kernel seam."""

import errno
import os
import posix

import pytest

from pyrunc import signalling
from pyrunc.errors import KernelError, StateError
from pyrunc.linux import Seams, procfs
from pyrunc.store import State

STATE = State("pyrunc-test-kill", "/nonexistent-bundle", pid=4242, pid_start=1)


class _Kernel:
    """The kernel double: pidfd_send_signal fails with `err`."""

    def __init__(self, err):
        self.err = err

    def pidfd_send_signal(self, fd, sig):
        raise KernelError(self.err, f"signal {sig}")


GONE = Seams(_Kernel(errno.ESRCH))


@pytest.fixture
def init_gone(monkeypatch):
    """The pidfd opens; the signal finds the process gone (ESRCH)."""
    signalled = []
    monkeypatch.setattr(procfs, "open_pidfd", lambda k, pid, started: os.open("/dev/null", os.O_RDONLY))
    monkeypatch.setattr(procfs, "container_pids", lambda pid: [pid, 4243])
    monkeypatch.setattr(posix, "kill", lambda pid, sig: signalled.append(pid))  # signalling.py calls posix
    return signalled


def test_kill_all_succeeds_when_the_init_exits_after_the_others(init_gone):
    signalling.signal_container(STATE, 9, GONE, all_processes=True)
    assert init_gone == [4243]  # the other process was signalled; the init was already gone


def test_kill_of_an_init_that_just_exited_says_not_running(init_gone):
    with pytest.raises(StateError, match="container not running"):
        signalling.signal_container(STATE, 15, GONE)


def test_other_signal_errors_still_fail(monkeypatch, init_gone):
    with pytest.raises(KernelError, match="operation not permitted"):
        signalling.signal_container(STATE, 15, Seams(_Kernel(errno.EPERM)))


def test_kill_all_of_an_init_gone_before_its_pidfd_opens_succeeds(monkeypatch):
    """It stopped between the status check and the pidfd: as `kill --all` of a stopped
    container, which succeeds (runc 1.1); a plain kill still says not running."""
    monkeypatch.setattr(procfs, "open_pidfd", lambda k, pid, started: None)
    signalling.signal_container(STATE, 9, GONE, all_processes=True)  # no cgroup: nothing left to signal
    with pytest.raises(StateError, match="container not running"):
        signalling.signal_container(STATE, 9, GONE)
