"""The runtime's waits on a container process that the cgroup freezer can stop: each
quiet spell calls an idle check, which ends the wait by raising."""

import os

import pytest

from pyrunc.linux.child_death import wait_child
from pyrunc.linux.protocol import Channel


class Frozen(Exception):
    pass


def test_a_quiet_channel_asks_the_idle_check_until_it_gives_up():
    a, b = Channel.pair()
    calls = []

    def idle():
        calls.append(1)
        if len(calls) == 2:
            raise Frozen()

    try:
        with pytest.raises(Frozen):
            a.recv(idle, interval=0.01)
        assert len(calls) == 2
        b.send("ok")  # the channel still works after a given-up wait, without a timeout
        assert a.recv()[0] == {"type": "ok"}
    finally:
        a.close()
        b.close()


def test_a_message_ends_the_wait_without_an_idle_check():
    a, b = Channel.pair()
    try:
        b.send("created")
        assert a.recv(lambda: pytest.fail("idle check on a ready channel"))[0]["type"] == "created"
    finally:
        a.close()
        b.close()


def test_a_child_that_never_exits_is_killed_when_the_idle_check_gives_up():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(w)
        os.read(r, 1)  # stands for a frozen process: never exits by itself
        os._exit(0)
    os.close(r)
    try:

        def idle():
            raise Frozen()

        with pytest.raises(Frozen):
            wait_child(pid, idle, interval=0.01)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
    finally:
        os.close(w)


def test_a_child_that_exits_is_reaped():
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    wait_child(pid, lambda: None, interval=0.01)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
