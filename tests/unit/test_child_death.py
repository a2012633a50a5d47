"""How a container process that died before it reported is described, and the pipe of
its step names (linux/child_death.py)."""

import pytest

from pyrunc.config import model
from pyrunc.linux import Seams, child_death, spawn
from pyrunc.linux.requests import ExecRequests
from pyrunc.store import State
from tests.unit.fakekernel import FakeKernel


def test_an_exit_status_and_a_signal_are_told_apart():
    assert (
        child_death.describe("container init", "mount /proc", 3 << 8)
        == 'container init exited with status 3 in step "mount /proc" before it was ready'
    )
    assert (
        child_death.describe("container init", "pivot_root", 6)
        == 'container init was killed by signal SIGABRT in step "pivot_root" before it was ready'
    )
    assert (
        child_death.describe("the exec process", None, None)
        == "the exec process exited unexpectedly before it was ready"
    )


def test_the_oom_killer_is_named_with_the_limit_and_the_usage():
    line = child_death.describe("container init", "join cgroup", 9, {"limit": 4096, "usage": 0, "max": 8192})
    assert line == (
        'container init was killed by the out-of-memory killer in step "join cgroup" '
        "before it was ready: linux.resources.memory.limit is 4096 bytes, below what "
        "the container needs to start (its memory usage reached 8192 bytes)"
    )


def test_the_last_note_is_the_step_and_a_request_comes_after_the_notes():
    notes = child_death.StepNotes()
    fd = notes.fd
    try:
        child_death.note(fd, "mount /proc")
        child_death.note(fd, "mount /a\0b")
        assert notes.read() == "mount /a\\0b"
        notes.saw("join cgroup")  # a request after the notes ended
        assert notes.read() == "join cgroup"
        child_death.note(fd, "create devices")
        assert notes.read() == "create devices"
    finally:
        notes.close()


class _Script:
    """A channel that hands out scripted messages, then EOF; records what is sent."""

    def __init__(self, *messages):
        self.messages = list(messages)
        self.sent = []

    def recv(self, idle=None):  # scripted: never waits
        return (self.messages.pop(0) if self.messages else {"type": "eof"}), []

    def send(self, mtype, fds=(), **fields):
        self.sent.append(mtype)


def _serve_exec(*messages):
    served = spawn._Served()
    cfg = model.from_dict({"ociVersion": "1.0.0", "process": {"args": ["x"], "cwd": "/"}}, "/tmp")
    spawn._serve(
        _Script(*messages),
        ExecRequests("c1", State("c1", "/tmp"), cfg, Seams(FakeKernel())),
        child_death.NO_NOTES,
        served,
    )
    return served


def test_an_exec_process_that_closes_its_channel_before_it_is_ready_died():
    """Before it asked to join the cgroup (its last request before the exec), an EOF is a
    death, not an exec; after it, the process runs."""
    with pytest.raises(child_death.Died):
        _serve_exec({"type": "init", "pid": 42})
    assert _serve_exec({"type": "init", "pid": 42}, {"type": "cgroup_joined"}).init_pid == 42


def test_a_child_gone_while_it_is_answered_is_a_death():
    class Gone:
        def send(self, mtype, fds=(), **fields):
            raise BrokenPipeError(32, "broken pipe")

    with pytest.raises(child_death.Died):
        child_death.answer(Gone(), "ok")
