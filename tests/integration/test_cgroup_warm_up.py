"""The launcher's cgroup warm-up helper (pyrunc/launcher/launcher.c, linux/cgroup_warm_up.py):
for create, run and exec it pays the kernel's wait before a cgroup.procs write while the interpreter
starts; pyrunc stops and reaps it, so that nothing of it outlives the command, whether the
command succeeds or fails before it moves anything."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from pyrunc import launcher

# Runs the command as a subreaper's child: whatever it leaves running (or unreaped)
# becomes ours when it exits, and is listed (pid, comm), then reaped.
WATCH = r"""
import json, os, subprocess, sys
import ctypes
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
code = subprocess.call(sys.argv[1:], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
left = []
for tid in os.listdir("/proc/self/task"):
    with open(f"/proc/self/task/{tid}/children") as f:
        for pid in f.read().split():
            with open(f"/proc/{pid}/comm") as c:
                left.append([int(pid), c.read().strip()])
for pid, _ in left:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print(json.dumps({"code": code, "left": left}))
"""


@pytest.fixture(
    scope="module", params=[False, True, "shared"], ids=["exec python", "python linked in", "libpython loaded"]
)
def built_launcher(tmp_path_factory, request):
    """The `pyrunc` command as `make setup` builds it, from this checkout's launcher.c:
    every build, the one that execs the interpreter, the one with libpython built in and
    the one that loads it."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler: `make setup` installs gcc")
    static = request.param is True
    if request.param and launcher.embed_flags(static) is None:
        pytest.skip("this interpreter has no libpython of that kind (static, or shared) to build the launcher on")
    dest = str(tmp_path_factory.mktemp("pyrunc-test-launcher") / "pyrunc")
    boot = launcher.boot_code(launcher.import_path())
    assert launcher.compile_launcher(dest, sys.executable, boot, bool(request.param), static)
    return dest


def _watched(built_launcher, pyrunc, *args, env=None):
    """Run the launcher with `args` under a subreaper; (exit code, [pid, comm] of every
    process it left behind)."""
    cmd = [built_launcher, "--root", pyrunc.root, "--log", pyrunc.log, "--log-format", "json", "--debug", *args]
    r = subprocess.run([sys.executable, "-c", WATCH, *cmd], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    return found["code"], found["left"]


def _stopped_lines(pyrunc):
    """The --log lines of helpers pyrunc stopped."""
    if not os.path.exists(pyrunc.log):
        return []
    with open(pyrunc.log) as f:
        msgs = [json.loads(line)["msg"] for line in f if line.strip()]
    return [m for m in msgs if m.startswith("cgroup warm-up helper ")]


def test_exec_stops_its_helper_and_leaves_nothing(built_launcher, pyrunc, running):
    code, left = _watched(built_launcher, pyrunc, "exec", running, "/bin/true")
    assert code == 0
    assert left == []
    assert len(_stopped_lines(pyrunc)) == 1  # there was one, and pyrunc stopped it


@pytest.mark.parametrize("command", ["run", "create"])
def test_run_and_create_stop_their_helper_and_leave_nothing(built_launcher, pyrunc, bundle, test_id, command):
    """create's init, joining its cgroup late, would wait for its move once it has built
    the container: the helper has paid the kernel's wait by then."""
    bundle.config["process"]["args"] = ["true"]
    bundle.write()
    code, left = _watched(built_launcher, pyrunc, command, "--bundle", bundle.path, test_id)
    assert code == 0
    if command == "create":  # the created init is left to its parent, the watcher: killed there
        assert [comm for _, comm in left] == ["pyrunc:init"], left  # the init, no helper
        pyrunc("delete", "--force", test_id)
    else:
        assert left == []
    assert len(_stopped_lines(pyrunc)) == 1  # there was one, and pyrunc stopped it


def test_a_command_that_fails_before_any_move_stops_its_helper(built_launcher, pyrunc):
    """exec of a container that does not exist fails at once, long before the helper's
    own time is up: the command's exit stops it (cli.launch)."""
    code, left = _watched(built_launcher, pyrunc, "exec", "pyrunc-test-nosuch", "/bin/true")
    assert code != 0
    assert left == []
    assert len(_stopped_lines(pyrunc)) == 1


def test_other_commands_start_no_helper_and_trust_no_pid_from_the_environment(built_launcher, pyrunc):
    """`state` moves nothing: no helper.  A PYRUNC_CGROUP_WARM_UP from the caller's
    environment names no helper of pyrunc's: the process it names is never signalled."""
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        env = dict(os.environ, PYRUNC_CGROUP_WARM_UP=str(bystander.pid))
        for args in (["state", "pyrunc-test-nosuch"], ["exec", "pyrunc-test-nosuch", "/bin/true"]):
            code, left = _watched(built_launcher, pyrunc, *args, env=env)
            assert code != 0
            assert left == []
            assert bystander.poll() is None
        # exec's own helper only, never the bystander
        assert _stopped_lines(pyrunc) == [_stopped_lines(pyrunc)[0]]
        assert _stopped_lines(pyrunc)[0] != f"cgroup warm-up helper {bystander.pid} stopped"
    finally:
        bystander.kill()
        bystander.wait()
