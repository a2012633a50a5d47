"""pyrunc's processes show as pyrunc in ps and pgrep (linux/proctitle.py): the command
as `pyrunc <its arguments>`, a created container's init as `pyrunc init <id>`, never as
the interpreter the launcher starts (`python3 -IS -c ...`)."""

import os
import signal
import subprocess
import sys

import pytest

from tests.integration.cli_util import set_args, wait_for

LAUNCHER = os.path.join(os.path.dirname(sys.executable), "pyrunc")


def _cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode() for a in f.read().rstrip(b"\0").split(b"\0")]


def _comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def _pgrep(*args):
    r = subprocess.run(["pgrep", *args], capture_output=True, text=True)
    return {int(p) for p in r.stdout.split()}


@pytest.fixture
def launched(pyrunc):
    if not os.access(LAUNCHER, os.X_OK):
        pytest.skip(f"no installed launcher at {LAUNCHER} (make setup)")
    pyrunc.command = [LAUNCHER]
    return pyrunc


def test_a_created_containers_init_shows_as_pyrunc_init(launched, bundle, test_id):
    set_args(bundle, "sleep", "300")
    r = launched("create", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    pid = launched.state(test_id)["pid"]
    assert _comm(pid) == "pyrunc:init"
    assert _cmdline(pid) == ["pyrunc", "init", test_id]
    assert pid in _pgrep("pyrunc")
    assert pid in _pgrep("-f", f"^pyrunc init {test_id}$")
    r = launched("start", test_id)
    assert r.code == 0, r
    assert _comm(pid) == "sleep" and _cmdline(pid) == ["sleep", "300"]


def test_a_foreground_run_shows_as_pyrunc_with_its_arguments(launched, bundle, test_id):
    set_args(bundle, "sleep", "300")
    argv = ["--root", launched.root, "--log", launched.log, "run", "--bundle", bundle.path, test_id]
    proc = subprocess.Popen(
        [LAUNCHER, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(
            lambda: (
                os.path.exists(os.path.join(launched.root, test_id))
                and launched("state", test_id).out.count('"running"')
            ),
            "the container to run",
        )
        assert _comm(proc.pid) == "pyrunc"
        assert _cmdline(proc.pid) == ["pyrunc", *argv]
        assert proc.pid in _pgrep("-x", "pyrunc")
        assert proc.pid in _pgrep("-f", f"^pyrunc .* run .*{test_id}$")
        ps = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(proc.pid)], capture_output=True, text=True)
        assert ps.stdout.strip() == " ".join(["pyrunc", *argv])
    finally:
        launched("kill", test_id, "KILL")
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
