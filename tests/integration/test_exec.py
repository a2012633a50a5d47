"""`exec`: a new process joins a running container, with runc's flags and the engines'
--process JSON, and gets the container init's confinement."""

import json
import os
import signal
import subprocess

import pytest

from tests.integration.cli_util import last_error, pid_alive, runc, set_args, wait_for
from tests.integration.console_util import ConsoleSocket, read_until
from tests.integration.process_util import secret_cwd

__all__ = ["runc"]  # the fixture, imported for the tests below

NAMESPACES = ("mnt", "pid", "net", "ipc", "uts", "cgroup")


def init_pid(pyrunc, cid):
    return pyrunc.state(cid)["pid"]


def test_exec_joins_every_namespace_of_the_init(pyrunc, running):
    init = init_pid(pyrunc, running)
    script = "; ".join(f"readlink /proc/self/ns/{ns}" for ns in NAMESPACES) + "; echo pid=$$"
    r = pyrunc("exec", running, "sh", "-c", script)
    assert r.code == 0, r
    lines = r.out.split()
    assert lines[:-1] == [os.readlink(f"/proc/{init}/ns/{ns}") for ns in NAMESPACES], r
    # pid 1 is the init: the new process has a small pid of the container's namespace.
    assert lines[-1] != f"pid={os.getpid()}" and int(lines[-1][4:]) < 100, r


def test_exec_enters_the_containers_root(pyrunc, bundle, running):
    with open(os.path.join(bundle.rootfs, "marker"), "w") as f:
        f.write("the container's root\n")
    r = pyrunc("exec", running, "cat", "/marker")
    assert (r.code, r.out) == (0, "the container's root\n"), r


def test_exec_returns_the_exit_status_of_its_process(pyrunc, running):
    assert pyrunc("exec", running, "sh", "-c", "exit 5").code == 5
    assert pyrunc("exec", running, "sh", "-c", "kill -9 $$").code == 128 + signal.SIGKILL


def test_a_dash_h_after_the_command_is_the_commands(pyrunc, running):
    """As runc: exec's flags end at the container id, so `grep -h` runs grep with -h (no
    file names before the lines), and `--help` there is the process's too; before the id
    it is exec's help."""
    r = pyrunc("exec", running, "grep", "-h", "root", "/etc/passwd", "/etc/group")
    assert (r.code, r.out, r.err) == (0, "root:x:0:0:root:/root:/bin/sh\nroot:x:0:\n", ""), r
    r = pyrunc("exec", running, "sh", "-c", 'echo "$@"', "sh", "--help", "-h")
    assert (r.code, r.out) == (0, "--help -h\n"), r
    for flag in ("-h", "--help"):
        r = pyrunc("exec", flag)
        assert r.code == 0 and r.out.startswith("NAME:\n   pyrunc exec - ") and "--ignore-paused" in r.out, r
        r = pyrunc("exec", "--tty", flag, running, "true")
        assert r.code == 0 and r.out.startswith("NAME:\n   pyrunc exec - "), r


def test_exec_passes_stdio_through(pyrunc, running, tmp_path):
    (tmp_path / "in").write_text("from stdin\n")
    with open(tmp_path / "in") as stdin:
        r = pyrunc("exec", running, "sh", "-c", "cat; echo to-stderr >&2", stdin=stdin)
    assert (r.code, r.out, r.err) == (0, "from stdin\n", "to-stderr\n"), r


def test_exec_flags_change_env_cwd_and_user(pyrunc, running):
    r = pyrunc(
        "exec",
        "--env",
        "FOO=bar",
        "-e",
        "PATH=/bin",
        "--cwd",
        "/dev",
        "--user",
        "1000:1001",
        "--additional-gids",
        "7",
        "-g",
        "8",
        running,
        "sh",
        "-c",
        "echo $FOO $PATH; pwd; id -u; id -g; id -G",
    )
    assert r.code == 0, r
    assert r.out.split("\n")[:5] == ["bar /bin", "/dev", "1000", "1001", "1001 7 8"], r


def test_exec_into_a_cwd_its_user_cannot_search_works_like_runc(pyrunc, runc, bundle, test_id):
    """The init's user (1000) cannot search its cwd: exec as that user, as root, or with
    --cwd into it, starts there as under runc, which enters the cwd before the switch."""
    secret_cwd(bundle)
    set_args(bundle, "sleep", "1000")
    runc.use(bundle)
    execs = [(), ("--user", "0"), ("--user", "1000:1000", "--cwd", "/secret")]
    script = ("sh", "-c", "pwd; id -u; ls 2>/dev/null || echo unreadable")
    code, _, err = runc("run", "-d", "--bundle", bundle.path, test_id)
    assert code == 0, err
    theirs = [runc("exec", *flags, test_id, *script)[:2] for flags in execs]
    assert theirs == [
        (0, "/secret\n1000\nunreadable\n"),
        (0, "/secret\n0\nfile\n"),
        (0, "/secret\n1000\nunreadable\n"),
    ], theirs
    assert runc("delete", "--force", test_id)[0] == 0  # its cgroup is ours next
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    ours = [pyrunc("exec", *flags, test_id, *script) for flags in execs]
    assert [(o.code, o.out) for o in ours] == theirs, ours


def test_exec_of_a_process_json(pyrunc, running, tmp_path):
    """What containerd's shim and conmon pass: a runtime-spec process, whole."""
    process = {
        "args": ["sh", "-c", "echo $A; pwd; id -u"],
        "env": ["A=from-json", "PATH=/bin"],
        "cwd": "/tmp",
        "user": {"uid": 2, "gid": 2},
        "terminal": False,
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    r = pyrunc("exec", "--process", str(path), running)
    assert (r.code, r.out) == (0, "from-json\n/tmp\n2\n"), r


def test_exec_refuses_an_invalid_process_json_naming_the_field(pyrunc, running, tmp_path):
    path = tmp_path / "process.json"
    path.write_text(json.dumps({"args": ["true"], "cwd": "relative"}))
    r = pyrunc("exec", "--process", str(path), running)
    assert r.code == 255 and "process.cwd" in r.err and len(r.err.splitlines()) == 1, r
    assert "process.cwd" in last_error(pyrunc.log)


def test_exec_checks_the_args_of_its_command_line(pyrunc, running):
    """Only the args changed from the process create validated: they alone are checked
    (exec_limits.py), with the messages of the whole validation."""
    r = pyrunc("exec", running, "")
    assert r.code == 255 and "invalid process: process.args[0]: the program to run must not be empty" in r.err, r
    r = pyrunc("exec", running, "echo", "a\udcffb")  # a byte that is no UTF-8, as argv decodes it
    assert r.code == 255 and "process.args[1]: contains '\\udcff', a lone UTF-16 surrogate" in r.err, r
    r = pyrunc("exec", "--env", "A=B", running, "")  # a flag that changes more: checked whole, same line
    assert r.code == 255 and "invalid process: process.args[0]: the program to run must not be empty" in r.err, r


def test_detached_exec_writes_the_pid_of_its_process(pyrunc, running, tmp_path):
    pid_file = tmp_path / "exec.pid"
    r = pyrunc("exec", "-d", "--pid-file", str(pid_file), running, "sleep", "1000")
    assert r.code == 0, r
    pid = int(pid_file.read_text())
    assert pid_alive(pid)
    init = init_pid(pyrunc, running)
    # In the container's cgroup and pid namespace, and running what it was asked to.
    with open(f"/proc/{pid}/cgroup") as mine, open(f"/proc/{init}/cgroup") as theirs:
        assert mine.read() == theirs.read()
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x001000\x00"
    assert pyrunc("kill", "--all", running, "KILL").code == 0
    wait_for(lambda: not pid_alive(pid), "the exec'd process to die with the container")


def test_exec_has_the_confinement_of_the_init(pyrunc, bundle, test_id):
    """Capabilities, no_new_privs, rlimits and seccomp come from the container's process."""
    bundle.config["process"]["capabilities"] = {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")}
    bundle.config["process"]["noNewPrivileges"] = True
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    set_args(bundle, "sleep", "1000")
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id).code == 0
    r = pyrunc(
        "exec",
        test_id,
        "sh",
        "-c",
        "grep -E '^(CapBnd|CapEff|CapPrm|CapInh|CapAmb|NoNewPrivs)' /proc/self/status; "
        "ulimit -n; ulimit -Hn; mkdir /tmp/x 2>&1 || echo mkdir-denied",
    )
    assert r.code == 0, r
    fields = dict(line.split(":\t") for line in r.out.splitlines() if ":\t" in line)
    assert fields == {
        "CapInh": "0000000000000000",
        "CapPrm": "0000000000000020",
        "CapEff": "0000000000000020",
        "CapBnd": "0000000000000020",
        "CapAmb": "0000000000000000",
        "NoNewPrivs": "1",
    }, r
    assert "123\n456\n" in r.out and "mkdir-denied" in r.out, r


def test_exec_with_a_tty_sends_the_pty_to_the_console_socket(pyrunc, running, tmp_path):
    console = ConsoleSocket(str(tmp_path / "exec-console.sock"))
    try:
        r = pyrunc("exec", "-d", "-t", "--console-socket", console.path, running, "sh", "-c", "tty; echo exec-tty-ok")
        assert r.code == 0, r
        master = console.receive()
    finally:
        console.close()
    try:
        out = read_until(master)
    finally:
        os.close(master)
    assert "/dev/pts/" in out and "exec-tty-ok" in out, out


def test_exec_into_a_created_container(pyrunc, bundle, test_id):
    set_args(bundle, "sleep", "1000")
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    r = pyrunc("exec", test_id, "echo", "before-start")
    assert (r.code, r.out) == (0, "before-start\n"), r
    assert pyrunc.state(test_id)["status"] == "created"


def test_exec_fails_clearly_on_a_stopped_an_unknown_and_a_paused_container(pyrunc, bundle, running, test_id):
    r = pyrunc("exec", "pyrunc-test-nosuch", "true")
    assert r.code == 255 and "pyrunc-test-nosuch does not exist" in r.err, r
    assert pyrunc("pause", running).code == 0
    r = pyrunc("exec", running, "true")
    assert r.code == 255 and "paused" in r.err and "--ignore-paused" in r.err, r
    assert pyrunc("resume", running).code == 0
    assert pyrunc("kill", running, "KILL").code == 0
    wait_for(lambda: pyrunc.state(running)["status"] == "stopped", "the container to stop")
    r = pyrunc("exec", running, "true")
    assert r.code == 255 and "stopped" in r.err and len(r.err.splitlines()) == 1, r
    assert "stopped" in last_error(pyrunc.log)


def test_exec_ignore_paused_runs_once_the_container_resumes(pyrunc, bundle, running, tmp_path):
    assert pyrunc("pause", running).code == 0
    pid_file = tmp_path / "exec.pid"
    r = pyrunc(
        "exec", "-d", "--ignore-paused", "--pid-file", str(pid_file), running, "sh", "-c", "echo resumed > /resumed"
    )
    assert r.code == 0, r
    done = os.path.join(bundle.rootfs, "resumed")
    assert not os.path.exists(done)  # frozen with the rest of the container
    assert pyrunc("resume", running).code == 0
    wait_for(lambda: os.path.exists(done), "the exec'd process to run after resume")


def test_a_failed_exec_leaves_no_process(pyrunc, running):
    init = init_pid(pyrunc, running)
    r = pyrunc("exec", running, "/no/such/program")
    assert r.code == 255 and "/no/such/program" in r.err, r
    out = subprocess.run(["pgrep", "-P", str(init)], capture_output=True, text=True).stdout
    assert out == ""
    r = pyrunc("ps", "--format", "json", running)
    assert json.loads(r.out) == [init], r


def _pid_of_received_pidfd(listener):
    """Accept pyrunc's connection on an --pidfd-socket and name the process of its pidfd."""
    import socket

    listener.settimeout(30)
    conn, _ = listener.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    assert len(fds) == 1, fds
    try:
        with open(f"/proc/self/fdinfo/{fds[0]}") as f:
            return int(dict(line.split(":\t", 1) for line in f.read().splitlines())["Pid"])
    finally:
        os.close(fds[0])


def test_pidfd_socket_receives_a_pidfd_of_the_init_and_of_an_exec(pyrunc, bundle, test_id, tmp_path):
    import socket

    path = str(tmp_path / "pidfd.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(4)
    try:
        set_args(bundle, "sleep", "1000")
        assert pyrunc("create", "--pidfd-socket", path, "--bundle", bundle.path, test_id).code == 0
        assert _pid_of_received_pidfd(listener) == init_pid(pyrunc, test_id)
        pid_file = tmp_path / "exec.pid"
        r = pyrunc("exec", "-d", "--pidfd-socket", path, "--pid-file", str(pid_file), test_id, "sleep", "100")
        assert r.code == 0, r
        assert _pid_of_received_pidfd(listener) == int(pid_file.read_text())
    finally:
        listener.close()


@pytest.mark.parametrize(
    "flag, value, lsm",
    [
        ("--apparmor", "pyrunc-test-profile", "apparmor"),
        ("--process-label", "system_u:system_r:pyrunc_t:s0", "selinux"),
    ],
)
def test_exec_label_flags_reach_the_process(pyrunc, running, flag, value, lsm):
    """--apparmor and --process-label set the process's label, as the config's would; on a
    host without that LSM (this one) the exec fails saying so, and leaves nothing."""
    from pyrunc.linux.process import lsm_enabled

    if lsm_enabled(lsm):
        pytest.skip(f"{lsm} is enabled here: no error to show")
    r = pyrunc("exec", flag, value, running, "true")
    assert r.code == 255 and f"{value!r}" in r.err and "not enabled on this host" in r.err, r
    assert len(r.err.splitlines()) == 1, r
    r = pyrunc("ps", "--format", "json", running)
    assert json.loads(r.out) == [init_pid(pyrunc, running)], r


def test_the_runtime_joins_a_living_inits_pid_namespace_for_its_child(pyrunc, bundle, running):
    """join.pid_ns_for_child, in the runtime before exec's fork: the pid namespace of the
    init, checked by its start time after it is opened; none when the init shares ours."""
    import errno

    from pyrunc.config import model
    from pyrunc.errors import KernelError
    from pyrunc.linux import join, procfs

    cfg = model.from_dict(bundle.config, bundle.path)
    init = init_pid(pyrunc, running)
    fd = join.pid_ns_for_child(cfg, init, procfs.start_time(init))
    assert fd is not None
    try:
        theirs, got = os.stat(f"/proc/{init}/ns/pid"), os.fstat(fd)
        assert (got.st_dev, got.st_ino) == (theirs.st_dev, theirs.st_ino)
    finally:
        os.close(fd)
    with pytest.raises(KernelError) as e:  # the pid names another process now
        join.pid_ns_for_child(cfg, init, procfs.start_time(init) + 1)
    assert e.value.errno == errno.ESRCH
    ours = subprocess.Popen(["sleep", "1000"])
    try:
        assert join.pid_ns_for_child(cfg, ours.pid, procfs.start_time(ours.pid)) is None
    finally:
        ours.kill()
        ours.wait()
    with pytest.raises(KernelError) as e:  # gone, and reaped
        join.pid_ns_for_child(cfg, ours.pid, None)
    assert e.value.errno == errno.ESRCH
