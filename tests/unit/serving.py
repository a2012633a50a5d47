"""Scripted serving for the parent-side tests (test_spawn_serve.py, test_exec_serve.py):
a channel that replays the child's messages, and create's answers recorded instead of done."""

from pyrunc.config import model
from pyrunc.linux import Seams
from pyrunc.linux.requests import CreateRequests
from tests.unit.fakekernel import FakeKernel

CFG = model.from_dict({"ociVersion": "1.0.0", "process": {"args": ["x"], "cwd": "/"}}, "/tmp")


class ScriptedChannel:
    def __init__(self, messages):
        self.messages = list(messages)
        self.sent = []

    def recv(self, idle=None):  # scripted: never waits
        return (self.messages.pop(0) if self.messages else {"type": "eof"}), []

    def send(self, mtype, fds=(), **fields):
        self.sent.append((mtype, fields))


class RecordingHandler(CreateRequests):
    """Create's answers, with the cgroup and hook work recorded instead of done."""

    def __init__(self):
        super().__init__("c1", CFG, "/tmp", "/pyrunc-test-x", "false", lambda saved: None, Seams(FakeKernel()))
        self.calls = []

    def cgroup(self, pid, join_now=True):
        self.calls.append(("cgroup", pid, join_now))
        return {"memory": "/pyrunc-test-x"}

    def join_cgroup(self, pid):
        self.calls.append(("join_cgroup", pid))

    def warm_up_cgroup(self):
        self.calls.append(("warm_up_cgroup",))

    def hooks(self, pid):
        self.calls.append(("hooks", pid))
