"""The parent's side of the create protocol (linux/spawn.py's _serve), on scripted
messages: the init may speak before the stage that forked it has reported its pid."""

from pyrunc.linux import spawn
from tests.unit.serving import RecordingHandler, ScriptedChannel


def test_the_inits_messages_wait_for_its_pid():
    """A busy first child reports the init's pid late: the init has already asked
    whether it is in its cgroup, run up to its hooks and said `created`.  Each is
    answered only once the pid is known and the init has been moved into the cgroup."""
    chan = ScriptedChannel(
        [
            {"type": "cgroup", "pid": 10, "join_now": False},
            {"type": "cgroup_joined"},
            {"type": "hooks"},
            {"type": "created"},
            {"type": "init", "pid": 11},
        ]
    )
    handler = RecordingHandler()
    init_pid, console = spawn._serve(chan, handler)
    assert init_pid == 11 and console is None
    assert handler.calls == [("cgroup", 10, False), ("warm_up_cgroup",), ("join_cgroup", 11), ("hooks", 11)]
    assert [m for m, _ in chan.sent] == ["ok", "ok", "ok"]


def test_with_a_cgroup_namespace_the_first_child_joins_before_its_namespaces():
    chan = ScriptedChannel(
        [{"type": "cgroup", "pid": 10, "join_now": True}, {"type": "init", "pid": 11}, {"type": "created"}]
    )
    handler = RecordingHandler()
    assert spawn._serve(chan, handler) == (11, None)
    assert handler.calls == [("cgroup", 10, True)]


def test_netdevices_hands_the_socket_to_the_handler_and_closes_it():
    import os

    r, w = os.pipe()
    got = []

    class Chan(ScriptedChannel):
        def recv(self, idle=None):
            msg = self.messages.pop(0) if self.messages else {"type": "eof"}
            return msg, ([w] if msg["type"] == "netdevices" else [])

    class Handler(RecordingHandler):
        def netdevices(self, fd):
            got.append(fd)
            os.fstat(fd)  # open while the handler works

    chan = Chan([{"type": "init", "pid": 11}, {"type": "netdevices"}, {"type": "created"}])
    try:
        assert spawn._serve(chan, Handler()) == (11, None)
        assert got == [w] and [m for m, _ in chan.sent] == ["ok"]
        try:
            os.fstat(w)
        except OSError:
            pass
        else:
            raise AssertionError("the socket's fd was left open")
    finally:
        os.close(r)
