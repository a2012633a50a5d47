"""The parent's side of exec (linux/spawn.py's _serve in exec mode, answered by
linux/requests.py's ExecRequests), on scripted messages, as test_spawn_serve.py does
for create: when the process is moved into the cgroup, what ends the serving, and that
each mode refuses the other's requests."""

import os

import pytest

from pyrunc import log
from pyrunc.config import model
from pyrunc.errors import ContainerError
from pyrunc.linux import Seams, child_death, spawn
from pyrunc.linux.requests import ExecRequests
from pyrunc.store import State
from tests.unit.fakekernel import FakeKernel
from tests.unit.serving import RecordingHandler


@pytest.fixture(autouse=True)
def fresh_steps(monkeypatch):
    """The serving runs log steps and records the child's failures in this process: none
    may reach the next test's error line."""
    monkeypatch.setattr(log, "_open", [])
    monkeypatch.setattr(log, "_failure", None)
    monkeypatch.setattr(log, "_child_steps", ())


def _cfg(**linux):
    return model.from_dict({"ociVersion": "1.0.0", "process": {"args": ["x"], "cwd": "/"}, "linux": linux}, "/tmp")


class Script:
    """Scripted messages (with their fds), then EOF; records what is sent back and the
    idle check each wait was given."""

    def __init__(self, *messages):
        self.messages = [m if isinstance(m, tuple) else (m, []) for m in messages]
        self.sent = []
        self.idles = []

    def recv(self, idle=None):  # scripted: never waits
        self.idles.append(idle)
        return self.messages.pop(0) if self.messages else ({"type": "eof"}, [])

    def send(self, mtype, fds=(), **fields):
        self.sent.append((mtype, fields))


class Recording(ExecRequests):
    """Exec's answers, with the moves into the cgroup and the RDT group recorded."""

    def __init__(self, paused=False, cfg=None):
        super().__init__("c1", State("c1", "/tmp"), cfg or _cfg(), Seams(FakeKernel()), paused)
        self.calls = []

    def _join_cgroup(self, pid):
        self.calls.append(("cgroup", pid))

    def _join_rdt(self, pid):
        self.calls.append(("rdt", pid))

    def _final_affinity(self, pid):
        self.calls.append(("affinity", pid))


def test_the_process_is_moved_into_the_cgroup_as_soon_as_it_reports_its_pid():
    """Unpaused: moved at `init`, before any answer, while it goes on setting itself up;
    from then on each wait asks the freezer; `cgroup_joined` is answered, and the
    channel's close afterwards is the exec."""
    chan = Script({"type": "init", "pid": 42}, {"type": "cgroup_joined"})
    answers = Recording()
    assert spawn._serve(chan, answers) == (42, None)
    assert answers.calls == [("cgroup", 42), ("rdt", 42), ("affinity", 42)]
    assert chan.sent == [("ok", {})]
    assert chan.idles[0] is None and all(i is not None for i in chan.idles[1:]), chan.idles


def test_paused_the_process_joins_last_and_the_serving_ends_there():
    """--ignore-paused: nothing moves at `init`; `join_paused` moves it into the frozen
    cgroup and is the last message read (it execs only when the container resumes)."""
    chan = Script(
        {"type": "init", "pid": 42},
        {"type": "join_paused"},
        {"type": "error", "step": "never read", "msg": "never read"},
    )
    answers = Recording(paused=True)
    assert spawn._serve(chan, answers) == (42, None)
    assert answers.calls == [("cgroup", 42), ("rdt", 42), ("affinity", 42)]
    assert chan.sent == [("ok", {})] and len(chan.messages) == 1
    assert chan.idles == [None, None]  # never joined at `init`: no freezer to ask


def test_a_close_before_the_last_request_is_a_death():
    with pytest.raises(child_death.Died):
        spawn._serve(Script({"type": "init", "pid": 42}), Recording())


def test_a_create_request_from_an_exec_process_is_refused():
    chan = Script({"type": "init", "pid": 42}, {"type": "hooks"})
    with pytest.raises(ContainerError) as e:
        spawn._serve(chan, Recording())
    assert str(e.value) == "exec c1: unknown request 'hooks' from the exec process"
    assert chan.sent == [("error", {"msg": str(e.value)})]


def test_an_exec_request_from_a_container_init_is_refused():
    chan = Script({"type": "init", "pid": 11}, {"type": "join_paused"})
    with pytest.raises(ContainerError) as e:
        spawn._serve(chan, RecordingHandler())
    assert str(e.value) == "join_paused: unknown request 'join_paused' from container init"
    assert [m for m, _ in chan.sent] == ["error"]


def test_the_exec_processs_failure_names_the_exec():
    chan = Script(
        {"type": "init", "pid": 42}, {"type": "error", "step": "join pid namespace", "msg": "join pid namespace: bad"}
    )
    with pytest.raises(ContainerError) as e:
        spawn._serve(chan, Recording())
    assert str(e.value) == "exec c1: join pid namespace: bad"


def test_a_listener_that_cannot_be_reached_fails_the_exec_and_the_fd_is_closed(tmp_path):
    """The process is told the listener's error; exec fails naming the step."""
    path = str(tmp_path / "no-listener.sock")
    cfg = _cfg(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path})
    r, w = os.pipe()
    chan = Script({"type": "init", "pid": 42}, ({"type": "seccomp"}, [w]))
    try:
        with pytest.raises(ContainerError) as e:
            spawn._serve(chan, Recording(cfg=cfg))
        why = f"send the seccomp fd to listenerPath {path}: no such file or directory"
        assert str(e.value) == f"exec c1: send the seccomp fd to the listener: {why}"
        assert chan.sent == [("error", {"msg": why})]
        with pytest.raises(OSError):
            os.fstat(w)
    finally:
        os.close(r)
