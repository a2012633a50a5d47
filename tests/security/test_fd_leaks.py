"""CVE-2016-9962 and CVE-2024-21626: file descriptors of the host reaching the container.

runc leaked an fd of a host directory into the container's init; a process.cwd of
/proc/self/fd/N (an image's WORKDIR) then started the container inside the host's
filesystem.  pyrunc closes every fd but stdio, the socket-activation fds (LISTEN_FDS)
and --preserve-fds before the user's program runs (spawn.close_fds_except, then
init.prepare_fds), and resolves the cwd without following /proc magic links
(process.make_cwd and process.change_to_cwd), so that even a host directory the caller
chose to pass cannot become the container's cwd.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import userns_copy
from tests.integration.cli_util import pyrunc_cmd
from tests.integration.rootfs_util import bind_unreachable, unreachable_sources  # noqa: F401  (a fixture)
from tests.security.sec_util import set_script


def run_with_fds(pyrunc, bundle, test_id, script, setup, *flags, **process):
    """`pyrunc run` started by `sh -c setup; exec pyrunc...`, so that the fds `setup`
    opens (without close-on-exec) are pyrunc's.  (code, stdout and stderr)."""
    set_script(bundle, script, **process)
    cmd = pyrunc_cmd(pyrunc, "run", *flags, "--bundle", bundle.path, test_id)
    out_path = os.path.join(pyrunc.tmp, f"{test_id}.out")
    with open(out_path, "w+b") as out:
        code = subprocess.call(
            ["sh", "-c", f'{setup}; exec "$@"', "sh", *cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        out.seek(0)
        return code, out.read().decode()


def _open_leaky(host_secrets):
    """fds the test process itself holds without close-on-exec while it runs pyrunc."""
    fds = [
        os.open(host_secrets, os.O_RDONLY | os.O_DIRECTORY),
        os.open(os.path.join(host_secrets, "secret"), os.O_RDONLY),
    ]
    for fd in fds:
        os.set_inheritable(fd, True)
    return fds


def test_only_stdio_reaches_the_container(pyrunc, bundle, test_id, host_secrets):
    leaky = _open_leaky(host_secrets)
    try:
        set_script(bundle, "ls /proc/$$/fd; ls -l /proc/$$/fd 2>/dev/null | grep -c sec-leak; true")
        out_path = os.path.join(pyrunc.tmp, "out")
        with open(out_path, "w+b") as out:
            code = subprocess.call(
                pyrunc_cmd(pyrunc, "run", "--bundle", bundle.path, test_id),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=leaky,
                timeout=60,
            )
            out.seek(0)
            text = out.read().decode()
    finally:
        for fd in leaky:
            os.close(fd)
    assert code == 0, text
    assert text.split() == ["0", "1", "2", "0"]


def test_cwd_through_any_fd_of_the_init_fails_create(pyrunc, bundle, test_id, host_secrets):
    """The caller leaks the host directory on fds 3 and 5 and a file on 4; the cwd names,
    in turn, every fd number from 3 to 10 the init could hold while it sets the cwd:
    whatever it is (closed, a socket of pyrunc's, a leaked host directory), create fails
    with one line and leaves nothing.  (runc's exploit added `..` to climb out of the
    directory: the config checks refuse `..` in a cwd.)"""
    setup = f'exec 3<"{host_secrets}" 4<"{host_secrets}/secret" 5<"{host_secrets}"'
    for n in range(3, 11):
        cwd = f"/proc/self/fd/{n}"
        code, out = run_with_fds(pyrunc, bundle, test_id, "pwd; ls ..", setup, cwd=cwd)
        assert code == 1, (cwd, out)
        assert out.startswith(f"pyrunc: create {test_id}: ") and f"cwd '{cwd}'" in out, out
        assert len(out.splitlines()) == 1, out
        assert not os.path.exists(pyrunc.root) or os.listdir(pyrunc.root) == []


@pytest.mark.parametrize(
    "cwd", ["/proc/self/fd/3", "/proc/self/fd/3/made-by-pyrunc", "/proc/1/fd/3", "/proc/thread-self/fd/3"]
)
def test_a_preserved_host_directory_cannot_become_the_cwd(pyrunc, bundle, test_id, host_secrets, cwd):
    """The caller passes a host directory with --preserve-fds (its choice); the image's
    cwd still cannot start the container inside it, nor create anything there."""
    code, out = run_with_fds(
        pyrunc, bundle, test_id, "pwd; ls ..", f'exec 3<"{host_secrets}"', "--preserve-fds", "1", cwd=cwd
    )
    assert code == 1, out
    assert (
        out.strip() == f"pyrunc: create {test_id}: create cwd '{cwd}': a /proc magic "
        "link on the way: too many levels of symbolic links"
    ), out


def test_the_preserved_directory_itself_still_reaches_the_container(pyrunc, bundle, test_id, host_secrets):
    """The other side: --preserve-fds does pass the fd, as runc does."""
    code, out = run_with_fds(
        pyrunc,
        bundle,
        test_id,
        "ls /proc/$$/fd; cat secret <&3 2>&1; true",
        f'exec 3<"{host_secrets}"',
        "--preserve-fds",
        "1",
    )
    assert code == 0, out
    assert out.split()[:4] == ["0", "1", "2", "3"], out


# --- systemd socket activation -----------------------------------------------------------

PROBE_FDS = "ls /proc/$$/fd; env | grep ^LISTEN_ | sort; cat <&3; cat <&4; true"


def test_listen_fds_for_pyrunc_reach_the_container(pyrunc, bundle, test_id, three_files):
    """LISTEN_PID names the pyrunc process (sh's $$, which execs it): fds 3 and 4 are
    passed, fd 5 is not, and the container is told LISTEN_FDS=2, LISTEN_PID=1."""
    f3, f4, f5 = three_files
    code, out = run_with_fds(
        pyrunc, bundle, test_id, PROBE_FDS, f"exec 3<{f3} 4<{f4} 5<{f5}; export LISTEN_FDS=2 LISTEN_PID=$$"
    )
    assert code == 0, out
    assert out.split() == ["0", "1", "2", "3", "4", "LISTEN_FDS=2", "LISTEN_PID=1", "three", "four"]


def test_preserve_fds_come_after_the_listen_fds(pyrunc, bundle, test_id, three_files):
    f3, f4, f5 = three_files
    code, out = run_with_fds(
        pyrunc,
        bundle,
        test_id,
        PROBE_FDS + "; cat <&5",
        f"exec 3<{f3} 4<{f4} 5<{f5}; export LISTEN_FDS=2 LISTEN_PID=$$",
        "--preserve-fds",
        "1",
    )
    assert code == 0, out
    assert out.split() == ["0", "1", "2", "3", "4", "5", "LISTEN_FDS=2", "LISTEN_PID=1", "three", "four", "five"]


def test_listen_fds_meant_for_another_process_pass_nothing(pyrunc, bundle, test_id, three_files):
    """A LISTEN_FDS inherited through the environment (LISTEN_PID is some other process)."""
    f3, f4, f5 = three_files
    code, out = run_with_fds(
        pyrunc, bundle, test_id, PROBE_FDS, f"exec 3<{f3} 4<{f4} 5<{f5}; export LISTEN_FDS=3 LISTEN_PID={os.getpid()}"
    )
    assert code == 0, out
    assert out.split()[:3] == ["0", "1", "2"] and "3" not in out.split(), out
    assert "LISTEN_" not in out and "three" not in out, out


# --- numbers in the passed range the caller left unused ----------------------------------
# pyrunc's own fds (the state directory and its lock, the protocol sockets, the trace file)
# would take the lowest free numbers; inside 3..3+N the container would inherit them, a
# host directory among them.  The numbers are taken by placeholders first
# (linux/passed_fds.py): the container gets the caller's fds there and nothing else.


def _launcher():
    path = os.path.join(sys.prefix, "bin", "pyrunc")
    if not os.path.exists(path):
        pytest.skip("no installed pyrunc launcher in this venv (make setup builds it)")
    return path


@pytest.mark.parametrize("started_by", ["python -m pyrunc", "launcher"])
def test_unused_numbers_in_the_preserved_range_carry_nothing_of_the_runtime(
    pyrunc, bundle, test_id, three_files, started_by
):
    if started_by == "launcher":
        pyrunc.command = [_launcher()]
    f3, f4, f5 = three_files
    # Only fd 5 is the caller's; 3, 4 and 6..8 are free when pyrunc starts.
    code, out = run_with_fds(
        pyrunc, bundle, test_id, "ls /proc/$$/fd; cat <&5; true", f"exec 5<{f5}", "--preserve-fds", "6"
    )
    assert code == 0, out
    assert out.split() == ["0", "1", "2", "5", "five"], out


def test_the_trace_fd_stays_above_a_large_preserved_range(pyrunc, bundle, test_id, three_files, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    f3, f4, f5 = three_files
    # The trace file is opened at fd 512 and up: inside a range of 600 it must move.
    code, out = run_with_fds(
        pyrunc,
        bundle,
        test_id,
        "ls /proc/$$/fd; true",
        f"exec 5<{f5}; export PYRUNC_TRACE={trace}",
        "--preserve-fds",
        "600",
    )
    assert code == 0, out
    assert out.split() == ["0", "1", "2", "5"], out
    with open(trace) as f:
        names = [json.loads(line).get("name") for line in f]
    assert "execve" in names and names.count("run") == 2, names  # the trace went on


def test_exec_passes_none_of_the_runtime_s_fds_in_the_preserved_range(pyrunc, bundle, test_id, three_files):
    f3, f4, f5 = three_files
    set_script(bundle, "sleep 300")
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id).code == 0
    cmd = pyrunc_cmd(pyrunc, "exec", "--preserve-fds", "5", test_id, "sh", "-c", "ls /proc/$$/fd; cat <&5")
    out_path = os.path.join(pyrunc.tmp, "exec.out")
    with open(out_path, "w+b") as out:
        code = subprocess.call(
            ["sh", "-c", f'exec 5<{f5}; exec "$@"', "sh", *cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        out.seek(0)
        text = out.read().decode()
    assert code == 0, text
    assert text.split() == ["0", "1", "2", "5", "five"], text
    assert pyrunc("delete", "--force", test_id).code == 0


@pytest.mark.parametrize("traced", [False, True])
def test_more_preserved_fds_than_the_open_file_limit_is_refused(pyrunc, bundle, test_id, tmp_path, traced):
    bundle.write()
    extra = ("--trace", str(tmp_path / "trace.jsonl")) if traced else ()  # its fd would move first
    r = pyrunc("run", "--preserve-fds", "100000000", "--bundle", bundle.path, test_id, extra=extra)
    assert r.code == 1 and r.err.startswith(
        "pyrunc: cannot pass 100000000 fds to the container: the open file limit is "
    ), r
    assert r.err.count("\n") == 1 and not os.path.exists(os.path.join(pyrunc.root, test_id))


# --- the bind sources the runtime opens for a user namespace -----------------------------


def test_the_bind_source_fds_of_a_user_namespace_are_closed_before_the_container_runs(
    pyrunc, bundle, test_id, unreachable_sources
):
    """The runtime opens them with the host's privileges and hands them to the init
    (linux/mount_sources.py): fds of host directories the container's root may not even
    reach.  Closed once bound: the waiting init holds none, the container none."""
    parent = tempfile.mkdtemp(prefix="pyrunc-test-sec-userns-")
    try:
        b = userns_copy(bundle, parent, 100000)
        b.config["linux"]["namespaces"].append({"type": "user"})
        for m in b.config["mounts"]:  # sysfs needs a network namespace of our own: bind it
            if m["type"] == "sysfs":
                m.update(type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
        bind_unreachable(b, unreachable_sources)
        set_script(b, "ls /proc/$$/fd; cat /mnt/a/f")
        assert pyrunc("create", "--bundle", b.path, test_id).code == 0
        pid = pyrunc.state(test_id)["pid"]
        held = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")]
        assert pyrunc("delete", "--force", test_id).code == 0
        hidden = ("/tmp/pyrunc-test-hidden-a-", "/tmp/pyrunc-test-hidden-b-")
        assert len(held) > 3 and not [t for t in held if t.startswith(hidden)], held
        r = pyrunc("run", "--bundle", b.path, test_id)
        assert (r.code, r.out.split()) == (0, ["0", "1", "2", "in-a"]), r
    finally:
        shutil.rmtree(parent, ignore_errors=True)
