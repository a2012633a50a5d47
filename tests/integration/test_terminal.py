"""process.terminal: the pty master over --console-socket (SCM_RIGHTS) as runc sends it,
/dev/console bound to the pty, and `run` in the foreground wiring the pty to our own
terminal (driven here through pty.fork)."""

import fcntl
import os
import pty
import struct
import sys
import termios

import pytest

from tests.integration.cli_util import assert_nothing_left, pyrunc_cmd, runc, set_args, wait_for
from tests.integration.console_util import ConsoleSocket, read_until

__all__ = ["runc"]

PROBE = (
    "echo hello-$((6*7)); tty; readlink /proc/self/fd/0; readlink /proc/self/fd/1; "
    "stat -c 'console %t:%T' /dev/console; stat -c 'tty %t:%T' $(tty); "
    "busybox stty size; exit\n"
)


@pytest.fixture
def console(tmp_path):
    c = ConsoleSocket(str(tmp_path / "console.sock"))
    yield c
    c.close()


@pytest.fixture
def tty_bundle(bundle):
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["consoleSize"] = {"height": 33, "width": 111}
    # A line-by-line shell: an interactive ash would query the cursor position and wait.
    set_args(bundle, "sh", "-c", 'while read -r line; do eval "$line"; done')
    return bundle


def check_probe_output(out, size="33 111"):
    assert "hello-42" in out
    lines = [line.strip() for line in out.splitlines()]
    assert "/dev/pts/0" in lines  # `tty`, and stdin/stdout are the pty
    assert lines.count("/dev/pts/0") >= 3, out
    console = next(line for line in lines if line.startswith("console "))
    tty = next(line for line in lines if line.startswith("tty "))
    assert console.split()[1] == tty.split()[1], out  # /dev/console is the pty's slave
    assert size in lines, out  # consoleSize, or the size of the terminal `run` sits on


def test_console_socket_receives_the_pty_master(pyrunc, tty_bundle, test_id, console):
    bundle = tty_bundle
    r = pyrunc("create", "--console-socket", console.path, "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    master = console.receive()
    try:
        assert os.isatty(master)
        assert pyrunc("start", test_id).code == 0
        os.write(master, PROBE.encode())
        out = read_until(master)
    finally:
        os.close(master)
    check_probe_output(out)
    wait_for(lambda: pyrunc.state(test_id)["status"] == "stopped", "the shell to exit")
    assert pyrunc("delete", test_id).code == 0
    assert_nothing_left(pyrunc, test_id, bundle)


def test_runc_sends_the_same_master(runc, tty_bundle, test_id, console):
    """The same engine-side code drives runc: the fd arrives the same way."""
    bundle = tty_bundle
    runc.use(bundle)
    code, _, err = runc("create", "--console-socket", console.path, "--bundle", bundle.path, test_id)
    assert code == 0, err
    master = console.receive()
    try:
        assert runc("start", test_id)[0] == 0
        os.write(master, PROBE.encode())
        out = read_until(master)
    finally:
        os.close(master)
    check_probe_output(out)


def test_run_detached_with_console_socket(pyrunc, tty_bundle, test_id, console):
    bundle = tty_bundle
    r = pyrunc("run", "-d", "--console-socket", console.path, "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    master = console.receive()
    try:
        os.write(master, b"echo detached-$((1+1)); exit\n")
        assert "detached-2" in read_until(master)
    finally:
        os.close(master)


def test_terminal_without_console_socket_is_a_clear_error(pyrunc, tty_bundle, test_id):
    r = pyrunc("create", "--bundle", tty_bundle.path, test_id)
    assert r.code == 1 and r.err.count("\n") == 1
    assert "--console-socket" in r.err and "tty" in r.err, r
    assert_nothing_left(pyrunc, test_id, tty_bundle)


def test_unreachable_console_socket_fails_create(pyrunc, tty_bundle, test_id, tmp_path):
    r = pyrunc("create", "--console-socket", str(tmp_path / "nobody-listens"), "--bundle", tty_bundle.path, test_id)
    assert r.code == 1 and "console socket" in r.err and "no such file" in r.err, r
    assert_nothing_left(pyrunc, test_id, tty_bundle)


def run_on_a_terminal(pyrunc, bundle, test_id, script):
    """`pyrunc run` with our pty as its terminal; type `script`; return (output, status,
    terminal attributes before, after)."""
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execv(sys.executable, pyrunc_cmd(pyrunc, "run", "--bundle", bundle.path, test_id))
        finally:
            os._exit(127)
    try:
        before = termios.tcgetattr(master)
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        os.write(master, script.encode())
        out = read_until(master)
        _, status = os.waitpid(pid, 0)
        after = termios.tcgetattr(master) if _alive_fd(master) else None
    finally:
        os.close(master)
    return out, os.waitstatus_to_exitcode(status), before, after


def _alive_fd(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


def test_run_in_the_foreground_wires_the_pty_to_our_terminal(pyrunc, tty_bundle, test_id):
    out, status, before, after = run_on_a_terminal(pyrunc, tty_bundle, test_id, PROBE.replace("exit\n", "exit 3\n"))
    assert status == 3, out
    check_probe_output(out, size="40 120")  # ours, not consoleSize, as runc does
    assert after is None or after == before  # raw mode undone
    assert_nothing_left(pyrunc, test_id, tty_bundle)


def test_run_in_the_foreground_forwards_input_until_exit(pyrunc, tty_bundle, test_id):
    script = "read other; echo got:$other; exit 0\nsome input\n"
    out, status, _, _ = run_on_a_terminal(pyrunc, tty_bundle, test_id, script)
    assert status == 0 and "got:some input" in out, out


def test_kill_of_a_terminal_container(pyrunc, tty_bundle, test_id, console):
    bundle = tty_bundle
    assert pyrunc("run", "-d", "--console-socket", console.path, "--bundle", bundle.path, test_id).code == 0
    master = console.receive()
    try:
        assert pyrunc("kill", test_id, "KILL").code == 0
        wait_for(lambda: pyrunc.state(test_id)["status"] == "stopped", "the container to stop")
    finally:
        os.close(master)


# --- the terminal's owner ----------------------------------------------------------------

OWNER_PROBE = (
    "stat -c 'owner %u:%g %a' $(tty) /dev/console; echo reopened-$((6*7)) > $(tty) || echo not-reopened; exit\n"
)


def _call(tool, *args):
    """(code, out, err) of a pyrunc or a runc call."""
    r = tool(*args)
    return r if isinstance(r, tuple) else (r.code, r.out, r.err)


def owners(out):
    return [line.split(None, 1)[1] for line in out.splitlines() if line.startswith("owner ")]


def pty_owners_of_the_init(tool, bundle, test_id, console):
    code, _, err = _call(tool, "create", "--console-socket", console.path, "--bundle", bundle.path, test_id)
    assert code == 0, err
    master = console.receive()
    try:
        assert _call(tool, "start", test_id)[0] == 0
        os.write(master, OWNER_PROBE.encode())
        out = read_until(master)
    finally:
        os.close(master)
    wait_for(lambda: _call(tool, "state", test_id)[1].find('"stopped"') > 0, "the shell to exit")
    assert _call(tool, "delete", test_id)[0] == 0
    assert "reopened-42" in [line.strip() for line in out.splitlines()], out  # the user opens it by name
    return owners(out)


@pytest.mark.parametrize("devpts", ["runc's default", "no gid= nor mode="])
def test_the_pty_belongs_to_the_processs_user_like_runc(pyrunc, runc, tty_bundle, test_id, console, devpts):
    """runc makes the user the pty's owner (/dev/console is the same pty) and leaves it the
    group and mode devpts gave it: tty's 5 and 0620 with runc's default mount options."""
    bundle = tty_bundle
    os.chmod(bundle.rootfs, 0o755)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    if devpts != "runc's default":
        pts = next(m for m in bundle.config["mounts"] if m["destination"] == "/dev/pts")
        pts["options"] = [o for o in pts["options"] if not o.startswith(("gid=", "mode="))]
    runc.use(bundle)
    theirs = pty_owners_of_the_init(runc, bundle, test_id, console)
    want = "1000:5 620" if devpts == "runc's default" else "1000:0 600"
    assert theirs == [want, want], theirs
    assert pty_owners_of_the_init(pyrunc, bundle, test_id, console) == theirs


def test_an_exec_pty_belongs_to_the_exec_user_like_runc(pyrunc, runc, bundle, test_id, console):
    """exec -t: the new pty is the user's, the container's or --user's, as runc makes it."""
    os.chmod(bundle.rootfs, 0o755)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    set_args(bundle, "sleep", "1000")
    runc.use(bundle)
    execs = [(), ("--user", "2000:2000"), ("--user", "0")]
    found = {}
    for name, tool in (("runc", runc), ("pyrunc", pyrunc)):
        code, _, err = _call(tool, "run", "-d", "--bundle", bundle.path, test_id)
        assert code == 0, err
        found[name] = []
        for flags in execs:
            code, _, err = _call(
                tool,
                "exec",
                "-d",
                "-t",
                "--console-socket",
                console.path,
                *flags,
                test_id,
                "sh",
                "-c",
                "stat -c 'owner %u:%g %a' $(tty)",
            )
            assert code == 0, err
            master = console.receive()
            try:
                found[name] += owners(read_until(master))
            finally:
                os.close(master)
        assert _call(tool, "delete", "--force", test_id)[0] == 0
    assert found["runc"] == ["1000:5 620", "2000:5 620", "0:5 620"], found
    assert found["pyrunc"] == found["runc"]
