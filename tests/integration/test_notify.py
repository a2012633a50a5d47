"""NOTIFY_SOCKET: the container notifies a socket of its own, and the caller hears
READY=1 (with MAINPID) from `start` only once the container has said it."""

import os
import socket
import subprocess

import pytest

from tests.integration.cli_util import pyrunc_cmd, set_args, wait_for

READY_ON_GO = (
    "while [ ! -e /go ]; do sleep 0.05; done; echo $NOTIFY_SOCKET > /seen; "
    "ln -s $NOTIFY_SOCKET /dev/log; logger READY=1; sleep 1000"
)


@pytest.fixture
def caller(tmp_path):
    """The caller's notify socket (what systemd gives a Type=notify unit)."""
    path = str(tmp_path / "caller-notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    yield sock, path
    sock.close()


def _pyrunc(pyrunc, caller_path, *args):
    env = dict(os.environ, NOTIFY_SOCKET=caller_path)
    out = open(os.path.join(pyrunc.tmp, "notify.out"), "w+")
    return subprocess.Popen(pyrunc_cmd(pyrunc, *args), env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)


def test_ready_reaches_the_caller_only_when_the_container_says_it(pyrunc, bundle, test_id, caller):
    sock, path = caller
    set_args(bundle, "sh", "-c", READY_ON_GO)
    assert _pyrunc(pyrunc, path, "create", "--bundle", bundle.path, test_id).wait(60) == 0
    start = _pyrunc(pyrunc, path, "start", test_id)
    wait_for(lambda: pyrunc.state(test_id)["status"] == "running", "the container to run")
    assert start.poll() is None  # start waits for the container's READY=1 ...
    with pytest.raises(BlockingIOError):
        sock.recv(4096)  # ... and has told the caller nothing yet
    open(os.path.join(bundle.rootfs, "go"), "w").close()
    assert start.wait(60) == 0
    assert sock.recv(4096) == f"READY=1\nMAINPID={pyrunc.state(test_id)['pid']}\n".encode()
    with open(os.path.join(bundle.rootfs, "seen")) as f:
        assert f.read() == "/run/notify/notify.sock\n"  # its own socket, not the caller's path


def test_a_container_that_exits_before_ready_fails_start(pyrunc, bundle, test_id, caller):
    sock, path = caller
    set_args(bundle, "true")
    assert _pyrunc(pyrunc, path, "create", "--bundle", bundle.path, test_id).wait(60) == 0
    assert _pyrunc(pyrunc, path, "start", test_id).wait(60) == 1
    with open(os.path.join(pyrunc.tmp, "notify.out")) as f:
        assert "exited before it notified READY=1" in f.read()
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
    assert pyrunc("delete", test_id).code == 0
    assert os.listdir(pyrunc.root) == []
