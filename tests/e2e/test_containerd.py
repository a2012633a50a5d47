"""pyrunc under containerd: a private daemon driven with ctr, its io.containerd.runc.v2 shim
calling pyrunc (through the logging wrapper) for run, exec, ps, pause, resume, kill and delete.
Each test checks what a user of ctr sees, and that the shim called the runtime as it does runc."""

import concurrent.futures
import os
import re

import pytest

from tests.e2e.engines import CONTAINERD_NEEDS, Containerd
from tests.e2e.harness import Background, cgroup_dirs, engine_fixture, pids_mentioning, run_tty, skip_reason, wait_until

SKIP = skip_reason("containerd", CONTAINERD_NEEDS)
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


@pytest.fixture(scope="module")
def ctrd(busybox_image):
    tar, ref = busybox_image
    yield from engine_fixture(Containerd(tar, ref))


@pytest.fixture(autouse=True)
def _calls_of_this_test(ctrd):
    ctrd.mark_calls()


def explain(ctrd, cid):
    return ctrd.explain(cid)


def run_rm(ctrd, cid, *cmd, flags=(), **kw):
    """`ctr run --rm` of the busybox image with the runtime under test."""
    return ctrd.ctr("run", "--rm", *ctrd.runtime_flags, *flags, ctrd.image, cid, *cmd, **kw)


def shim_call(ctrd, cid, pattern):
    """The shim's call matching pattern (with ID standing for cid), after checking it carried
    the shim's global flags: --root <runc-root>/<ns> --log <bundle>/log.json --log-format json."""
    found = ctrd.argv.expect(pattern.replace("ID", re.escape(cid)), f"for {cid}")
    for call in found:
        assert call.globals.get("--root") == os.path.join(ctrd.runc_root, ctrd.ns), call
        assert call.globals.get("--log") == os.path.join(ctrd.bundle(cid), "log.json"), call
        assert call.globals.get("--log-format") == "json", call
    return found


def test_image_imported(ctrd):
    r = ctrd.ctr("image", "ls", "-q")
    assert ctrd.image in r.lines, r


def test_run_output_and_exit_code_0(ctrd):
    cid = ctrd.cid("r1")
    r = run_rm(ctrd, cid, "echo", "hello")
    assert (r.rc, r.lines) == (0, ["hello"]), f"{r!r}\n{explain(ctrd, cid)}"
    bundle = re.escape(ctrd.bundle(cid))
    shim_call(ctrd, cid, rf"create --bundle {bundle} --pid-file {bundle}/init\.pid ID")
    shim_call(ctrd, cid, r"start ID")
    shim_call(ctrd, cid, r"delete ID")


def test_run_exit_code_3(ctrd):
    cid = ctrd.cid("r2")
    r = run_rm(ctrd, cid, "sh", "-c", "exit 3")
    assert r.rc == 3, f"{r!r}\n{explain(ctrd, cid)}"


def test_run_stderr(ctrd):
    cid = ctrd.cid("r3")
    r = run_rm(ctrd, cid, "sh", "-c", "echo to-stderr >&2")
    assert (r.rc, r.lines) == (0, ["to-stderr"]), f"{r!r}\n{explain(ctrd, cid)}"


def test_run_env_cwd_uid(ctrd):
    cid = ctrd.cid("r4")
    r = run_rm(ctrd, cid, "sh", "-c", "echo $FOO $(pwd) $(id -u) $$", flags=("--env", "FOO=bar", "--cwd", "/tmp"))
    assert (r.rc, r.lines) == (0, ["bar /tmp 0 1"]), f"{r!r}\n{explain(ctrd, cid)}"


def test_run_stdin(ctrd):
    # ctr run without -t does not close the container's stdin at EOF: read one line only.
    cid = ctrd.cid("r5")
    r = run_rm(ctrd, cid, "sh", "-c", "read x; echo got-$x", stdin="piped-in\n")
    assert (r.rc, r.lines) == (0, ["got-piped-in"]), f"{r!r}\n{explain(ctrd, cid)}"


def test_run_tty_exit_code_4(ctrd):
    cid = ctrd.cid("r6")
    r = run_tty(ctrd.ctr_argv("run", "--rm", "-t", *ctrd.runtime_flags, ctrd.image, cid, "sh", "-c", "tty; exit 4"))
    assert r.rc == 4 and re.search(r"/dev/pts/\d+$", r.out, re.M), f"{r!r}\n{explain(ctrd, cid)}"
    bundle = re.escape(ctrd.bundle(cid))
    shim_call(ctrd, cid, rf"create --bundle {bundle} --pid-file {bundle}/init\.pid --console-socket \S+ ID")


def test_run_through_path_lookup_of_runc(ctrd):
    """With no BinaryName the shim runs the `runc` on containerd's PATH: the wrapper, as runc."""
    cid = ctrd.cid("p1")
    r = ctrd.ctr(
        "run", "--rm", "--runc-root", ctrd.runc_root, "--fifo-dir", ctrd.fifo_dir, ctrd.image, cid, "echo", "via-path"
    )
    assert (r.rc, r.lines) == (0, ["via-path"]), f"{r!r}\n{explain(ctrd, cid)}"
    creates = shim_call(ctrd, cid, r"create .* ID")
    assert all(c.argv0 == "runc" for c in creates), creates


# ---------------------------------------------------------------- a detached container


@pytest.fixture
def detached(ctrd, request):
    """A container started with `ctr run -d` whose init sleeps; removed afterwards."""
    cid = ctrd.cid("d-" + request.node.name[5:][:20].replace("_", "-").strip("-"))
    r = ctrd.ctr("run", "-d", *ctrd.runtime_flags, ctrd.image, cid, "sleep", "1000")
    assert r.rc == 0, f"{r!r}\n{explain(ctrd, cid)}"
    assert ctrd.task_status(cid) == "RUNNING", f"{ctrd.ctr('task', 'ls')!r}\n{explain(ctrd, cid)}"
    yield cid
    if ctrd.task_status(cid) == "PAUSED":
        ctrd.ctr("task", "resume", cid)
    if ctrd.task_status(cid):
        ctrd.ctr("task", "kill", "-a", "-s", "SIGKILL", cid)
        ctrd.ctr("task", "delete", "-f", cid)
    ctrd.ctr("container", "delete", cid)


def exec_argv(ctrd, cid, exec_id, *rest):
    return ctrd.ctr_argv("task", "exec", "--fifo-dir", ctrd.fifo_dir, "--exec-id", exec_id, *rest)


def test_exec_output_and_exit_code_5(ctrd, detached):
    r = ctrd.ctr(
        "task", "exec", "--fifo-dir", ctrd.fifo_dir, "--exec-id", "e1", detached, "sh", "-c", "echo in-exec; exit 5"
    )
    assert (r.rc, r.lines) == (5, ["in-exec"]), f"{r!r}\n{explain(ctrd, detached)}"
    bundle = re.escape(ctrd.bundle(detached))
    shim_call(ctrd, detached, rf"exec --process \S+ --detach --pid-file {bundle}/e1\.pid ID")


def test_exec_cwd_and_user(ctrd, detached):
    r = ctrd.ctr(
        "task",
        "exec",
        "--fifo-dir",
        ctrd.fifo_dir,
        "--exec-id",
        "e1",
        "--cwd",
        "/tmp",
        "--user",
        "65534",
        detached,
        "sh",
        "-c",
        "echo $(pwd) $(id -u)",
    )
    assert (r.rc, r.lines) == (0, ["/tmp 65534"]), f"{r!r}\n{explain(ctrd, detached)}"


def test_exec_tty_exit_code_6(ctrd, detached):
    r = run_tty(exec_argv(ctrd, detached, "e2", "-t", detached, "sh", "-c", "tty; exit 6"))
    assert r.rc == 6 and re.search(r"/dev/pts/\d+$", r.out, re.M), f"{r!r}\n{explain(ctrd, detached)}"
    bundle = re.escape(ctrd.bundle(detached))
    shim_call(ctrd, detached, rf"exec --process \S+ --console-socket \S+ --detach --pid-file {bundle}/e2\.pid ID")


def test_exec_in_background_and_ps(ctrd, detached):
    r = ctrd.ctr("task", "exec", "--fifo-dir", ctrd.fifo_dir, "-d", "--exec-id", "e3", detached, "sleep", "500")
    assert r.rc == 0, f"{r!r}\n{explain(ctrd, detached)}"
    r = ctrd.ctr("task", "ps", detached)
    assert r.rc == 0, f"{r!r}\n{explain(ctrd, detached)}"
    # PID INFO: the init's info is "-", an exec's names its exec id
    pids = {line.split()[0]: line.split(None, 1)[1] for line in r.lines[1:]}
    assert len(pids) == 2 and any("ExecID:e3" in info for info in pids.values()), f"{r!r}\n{explain(ctrd, detached)}"
    commands = sorted(open(f"/proc/{pid}/cmdline").read().replace("\0", " ").strip() for pid in pids)
    assert commands == ["sleep 1000", "sleep 500"], (commands, r)
    shim_call(ctrd, detached, r"ps --format json ID")


def freezer_state(ctrd, cid):
    dirs = [d for d in cgroup_dirs(f"{ctrd.ns}/{cid}") if os.path.exists(os.path.join(d, "freezer.state"))]
    if not dirs:
        return None
    with open(os.path.join(dirs[0], "freezer.state")) as f:
        return f.read().strip()


def test_pause_and_resume(ctrd, detached):
    r = ctrd.ctr("task", "pause", detached)
    assert r.rc == 0, f"{r!r}\n{explain(ctrd, detached)}"
    assert ctrd.task_status(detached) == "PAUSED", ctrd.ctr("task", "ls")
    assert freezer_state(ctrd, detached) in ("FROZEN", None)
    r = ctrd.ctr("task", "resume", detached)
    assert r.rc == 0, f"{r!r}\n{explain(ctrd, detached)}"
    assert ctrd.task_status(detached) == "RUNNING", ctrd.ctr("task", "ls")
    assert freezer_state(ctrd, detached) in ("THAWED", None)
    shim_call(ctrd, detached, r"pause ID")
    shim_call(ctrd, detached, r"resume ID")


def test_kill_all_then_task_and_container_delete(ctrd, detached):
    cid = detached
    r = ctrd.ctr("task", "kill", "-a", "-s", "SIGKILL", cid)
    assert r.rc == 0, f"{r!r}\n{explain(ctrd, cid)}"
    wait_until(lambda: ctrd.task_status(cid) == "STOPPED", f"task {cid} to stop")
    bundle = ctrd.bundle(cid)
    r = ctrd.ctr("task", "delete", cid)
    # ctr reports a non-zero exit status of the deleted task as its own exit code
    assert r.rc in (0, 137), f"{r!r}\n{explain(ctrd, cid)}"
    assert ctrd.task_status(cid) is None, ctrd.ctr("task", "ls")
    r = ctrd.ctr("container", "delete", cid)
    assert r.rc == 0, f"{r!r}\n{explain(ctrd, cid)}"
    assert cid not in ctrd.ctr("container", "ls", "-q").lines
    shim_call(ctrd, cid, r"kill --all ID 9")
    shim_call(ctrd, cid, r"delete ID")
    # the runtime's state, the bundle and the container's cgroups are gone
    assert not os.path.exists(os.path.join(ctrd.runc_root, ctrd.ns, cid))
    assert not os.path.exists(bundle)
    assert cgroup_dirs(f"{ctrd.ns}/{cid}") == []


def attached(ctrd, cid, *cmd):
    return Background(ctrd.ctr_argv("run", "--rm", *ctrd.runtime_flags, ctrd.image, cid, *cmd), ctrd.path(f"{cid}.out"))


def test_kill_term_reaches_the_trap(ctrd):
    cid = ctrd.cid("k1")
    job = attached(ctrd, cid, "sh", "-c", 'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done')
    try:
        wait_until(lambda: "ready" in job.output() or job.proc.poll() is not None, "the trap to be set")
        r = ctrd.ctr("task", "kill", "-s", "SIGTERM", cid)
        assert r.rc == 0, f"{r!r}\n{explain(ctrd, cid)}"
        assert job.wait(30) == 42, f"{job!r}\n{explain(ctrd, cid)}"
    finally:
        job.stop()
    shim_call(ctrd, cid, r"kill ID 15")
    assert cid not in ctrd.ctr("container", "ls", "-q").lines


def test_kill_sigkill_exit_status_137(ctrd):
    cid = ctrd.cid("k2")
    job = attached(ctrd, cid, "sleep", "1000")
    try:
        wait_until(lambda: ctrd.task_status(cid) == "RUNNING" or job.proc.poll() is not None, f"{cid} to run")
        r = ctrd.ctr("task", "kill", "-s", "SIGKILL", cid)
        assert r.rc == 0, f"{r!r}\n{explain(ctrd, cid)}"
        assert job.wait(30) == 137, f"{job!r}\n{explain(ctrd, cid)}"
    finally:
        job.stop()
    shim_call(ctrd, cid, r"kill ID 9")


def test_twenty_containers_in_parallel(ctrd):
    cids = [ctrd.cid(f"par{i:02d}") for i in range(20)]

    def start(cid):
        return ctrd.ctr("run", "-d", *ctrd.runtime_flags, ctrd.image, cid, "sleep", "1000", timeout=180)

    def stop(cid):
        ctrd.ctr("task", "kill", "-a", "-s", "SIGKILL", cid, timeout=60)
        wait_until(lambda: ctrd.task_status(cid) in ("STOPPED", None), f"{cid} to stop", timeout=60)
        deleted = ctrd.ctr("task", "delete", cid, timeout=60)
        removed = ctrd.ctr("container", "delete", cid, timeout=60)
        return deleted, removed

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        started = dict(zip(cids, pool.map(start, cids)))
        failed = {cid: r for cid, r in started.items() if r.rc != 0}
        tasks = ctrd.tasks()
        running = [cid for cid in cids if tasks.get(cid, (0, ""))[1] == "RUNNING"]
        pids = {tasks[cid][0] for cid in running}
        stopped = dict(zip(cids, pool.map(stop, cids)))
    assert not failed, "\n".join(f"{r!r}\n{explain(ctrd, cid)}" for cid, r in list(failed.items())[:3])
    assert len(running) == 20 and len(pids) == 20, tasks
    bad = {cid: rs for cid, rs in stopped.items() if rs[0].rc not in (0, 137) or rs[1].rc != 0}
    assert not bad, bad
    # all cleaned up: no task, container, shim, runtime state or cgroup of theirs is left
    tasks = ctrd.tasks()
    assert not [cid for cid in cids if cid in tasks], tasks
    containers = ctrd.ctr("container", "ls", "-q").lines
    assert not [cid for cid in cids if cid in containers], containers
    assert not [cid for cid in cids if os.path.exists(os.path.join(ctrd.runc_root, ctrd.ns, cid))]
    assert not [cid for cid in cids if cgroup_dirs(f"{ctrd.ns}/{cid}")]
    assert not [pid for cid in cids for pid in pids_mentioning(f"-id {cid} ")]
    for cid in cids:
        shim_call(ctrd, cid, r"create --bundle \S+ --pid-file \S+ ID")
        shim_call(ctrd, cid, r"start ID")
        shim_call(ctrd, cid, r"delete ID")
