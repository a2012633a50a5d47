"""linux/cgroup_warm_up.py: the launcher's helper is trusted only as a child of ours,
taken out of the environment, and stopped and reaped once."""

import os
import subprocess

import pytest

from pyrunc.linux import cgroup_warm_up


@pytest.fixture
def fresh(monkeypatch):
    """The module as a new command finds it (its helper not yet taken)."""
    monkeypatch.setattr(cgroup_warm_up, "_pid", None)
    monkeypatch.setattr(cgroup_warm_up, "_taken", False)
    monkeypatch.setattr(cgroup_warm_up, "_killed", False)
    return monkeypatch


def test_a_child_named_by_the_launcher_is_stopped_and_reaped(fresh):
    child = subprocess.Popen(["sleep", "60"])
    fresh.setenv(cgroup_warm_up.ENV, str(child.pid))
    assert cgroup_warm_up.running()
    assert cgroup_warm_up.ENV not in os.environ  # no hook or process of ours inherits it
    cgroup_warm_up.stop()
    with pytest.raises(ChildProcessError):  # killed and reaped already
        os.waitpid(child.pid, os.WNOHANG)
    child.returncode = -9  # for Popen's own bookkeeping
    assert not cgroup_warm_up.running()
    cgroup_warm_up.stop()  # once only


def test_end_signals_at_once_and_stop_reaps_later(fresh):
    child = subprocess.Popen(["sleep", "60"])
    fresh.setenv(cgroup_warm_up.ENV, str(child.pid))
    cgroup_warm_up.end()
    assert not cgroup_warm_up.running()  # told to end: no move may count on it
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # it dies of the signal...
    assert cgroup_warm_up.helper() == child.pid  # ...and is still ours to reap
    cgroup_warm_up.stop()
    assert cgroup_warm_up.helper() is None
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)
    child.returncode = -9


def test_a_pid_that_is_not_our_child_is_never_signalled(fresh):
    # Our parent: alive, not ours to stop.
    fresh.setenv(cgroup_warm_up.ENV, str(os.getppid()))
    assert not cgroup_warm_up.running()
    cgroup_warm_up.stop()
    os.kill(os.getppid(), 0)


def test_a_helper_that_ended_by_itself_is_reaped_and_not_counted_on(fresh):
    child = subprocess.Popen(["true"])
    fresh.setenv(cgroup_warm_up.ENV, str(child.pid))
    assert cgroup_warm_up.helper() == child.pid
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    assert not cgroup_warm_up.running()
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)
    child.returncode = 0
