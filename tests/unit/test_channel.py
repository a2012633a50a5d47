"""The parent/child channel (linux/protocol.py): a peer that closed is `eof`, also when
it closed with a message of ours unread."""

from pyrunc.linux.protocol import EOF, OK, Channel


def test_a_peer_that_closed_with_our_answer_unread_is_eof():
    """A child killed just after its request was answered (a createRuntime hook that
    kills the init) leaves the answer unread: the kernel resets the connection, and the
    runtime must read that as the child's death, not fail on a bare `connection reset`."""
    parent, child = Channel.pair()
    try:
        parent.send(OK)
        child.close()
        assert parent.recv() == ({"type": EOF}, [])
    finally:
        parent.close()


def test_a_peer_that_closed_is_eof():
    parent, child = Channel.pair()
    child.close()
    try:
        assert parent.recv(lambda: None, interval=0.01) == ({"type": EOF}, [])
    finally:
        parent.close()
