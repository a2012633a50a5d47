"""Channel.ask: a request whose answer the child reads later (the cgroup, asked first
thing so that the parent makes it while the child works), over a real socketpair."""

import pytest

from pyrunc.linux import protocol
from pyrunc.linux.protocol import Channel, ProtocolError


@pytest.fixture
def pair():
    parent, child = Channel.pair()
    yield parent, child
    parent.close()
    child.close()


def test_a_later_request_gets_its_own_answer_not_the_owed_one(pair):
    parent, child = pair
    child.ask(protocol.CGROUP, pid=7, join_now=False)
    parent.send(protocol.OK, paths={"memory": "/pyrunc-test-a"})
    child.send(protocol.IDMAP, pid=7)
    parent.send(protocol.OK, wrote=True)
    assert child.expect_ok() == {"type": "ok", "wrote": True}
    assert child.answer_to(protocol.CGROUP)["paths"] == {"memory": "/pyrunc-test-a"}
    asked = [parent.recv()[0] for _ in range(2)]
    assert [m["type"] for m in asked] == [protocol.CGROUP, protocol.IDMAP]


def test_recv_reads_the_owed_answer_first(pair):
    parent, child = pair
    child.ask(protocol.CGROUP, pid=7, join_now=False)
    parent.send(protocol.OK, paths={})
    parent.send(protocol.OK, more=False)
    msg, fds = child.recv()
    assert msg == {"type": "ok", "more": False} and fds == []
    assert child.answer_to(protocol.CGROUP) == {"type": "ok", "paths": {}}


def test_an_error_answer_to_an_ask_raises_when_read(pair):
    parent, child = pair
    child.ask(protocol.CGROUP, pid=7, join_now=True)
    parent.send(protocol.ERROR, msg="mkdir /sys/fs/cgroup/x: permission denied")
    with pytest.raises(ProtocolError, match="permission denied"):
        child.answer_to(protocol.CGROUP)


def test_answer_read_once_the_parent_answers_later(pair):
    """The child asks, works on, and only then waits: the answer may not be there yet."""
    parent, child = pair
    child.ask(protocol.CGROUP, pid=7, join_now=False)
    assert parent.recv()[0]["type"] == protocol.CGROUP
    parent.send(protocol.OK, paths={"": "/pyrunc-test-b"})
    assert child.answer_to(protocol.CGROUP)["paths"] == {"": "/pyrunc-test-b"}
