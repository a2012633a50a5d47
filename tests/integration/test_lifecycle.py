"""The lifecycle of real busybox containers (runtime.md): create, start, state, kill,
delete and run, their state checks, failure cleanup, and races on one id; with runc
run side by side on the same bundle where the behaviour is runc's."""

import json
import os
import signal
import subprocess
import threading

import pytest

from tests.integration.cli_util import (
    assert_nothing_left,
    last_error,
    pid_alive,
    processes_mentioning,
    pyrunc_cmd,
    remove_empty_cgroup,
    runc,
    set_args,
    validate_state,
    wait_for,
    wait_for_file,
)

__all__ = ["runc"]  # the fixture, imported for the tests below

SLEEP = ("sleep", "300")


def create(pyrunc, bundle, test_id, *flags):
    r = pyrunc("create", *flags, "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    return pyrunc.state(test_id)


def wait_status(pyrunc, test_id, status):
    return wait_for(
        lambda: (lambda s: s if s["status"] == status else None)(pyrunc.state(test_id)), f"{test_id} to be {status}"
    )


# --- the state machine ---------------------------------------------------------------


def test_create_start_kill_delete_walks_the_states(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    st = validate_state(create(pyrunc, bundle, test_id))
    assert st["status"] == "created" and st["id"] == test_id and st["bundle"] == bundle.path
    pid = st["pid"]
    assert pid_alive(pid)

    r = pyrunc("start", test_id)
    assert r.code == 0, r
    st = validate_state(pyrunc.state(test_id))
    assert st["status"] == "running" and st["pid"] == pid
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"300"]

    assert pyrunc("kill", test_id, "KILL").code == 0
    st = validate_state(wait_status(pyrunc, test_id, "stopped"))
    assert st["pid"] == 0  # as runc prints a stopped container

    assert pyrunc("delete", test_id).code == 0
    r = pyrunc("state", test_id)
    assert r.code == 1 and f"container {test_id} does not exist" in r.err
    assert_nothing_left(pyrunc, test_id, bundle)


def test_state_json_has_runcs_fields_in_every_status(pyrunc, runc, bundle, test_id):
    runc.use(bundle)
    set_args(bundle, *SLEEP)
    create(pyrunc, bundle, test_id)
    code, _, err = runc("create", "--bundle", bundle.path, test_id)
    assert code == 0, err
    ours, theirs = pyrunc.state(test_id), runc.state(test_id)
    assert list(ours) == list(theirs)
    assert ours["status"] == theirs["status"] == "created"
    for tool in (pyrunc, runc):
        tool("kill", test_id, "KILL")
    wait_status(pyrunc, test_id, "stopped")
    wait_for(lambda: runc.state(test_id)["status"] == "stopped", "runc's container to stop")
    ours, theirs = validate_state(pyrunc.state(test_id)), runc.state(test_id)
    assert list(ours) == list(theirs)
    assert ours["pid"] == theirs["pid"] == 0


def test_stopped_is_seen_with_no_pyrunc_process_running(pyrunc, bundle, test_id):
    """The container's process exits on its own: nothing of pyrunc is there to notice;
    `state` and `list` tell from the pid and its start time."""
    set_args(bundle, "sh", "-c", "read x < /dev/null; exit 0")
    create(pyrunc, bundle, test_id)
    assert pyrunc("start", test_id).code == 0
    wait_status(pyrunc, test_id, "stopped")
    listed = json.loads(pyrunc("list", "--format", "json").out)
    assert [(s["id"], s["status"], s["pid"]) for s in listed] == [(test_id, "stopped", 0)]
    assert pyrunc("delete", test_id).code == 0


def test_start_twice_fails(pyrunc, runc, bundle, test_id):
    set_args(bundle, *SLEEP)
    create(pyrunc, bundle, test_id)
    assert pyrunc("start", test_id).code == 0
    r = pyrunc("start", test_id)
    assert r.code == 1 and r.err.count("\n") == 1 and "running" in r.err, r
    assert "running" in last_error(pyrunc.log)
    assert pyrunc.state(test_id)["status"] == "running"


def test_start_of_a_stopped_container_fails(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    create(pyrunc, bundle, test_id)
    pyrunc("kill", test_id, "KILL")
    wait_status(pyrunc, test_id, "stopped")
    r = pyrunc("start", test_id)
    assert r.code == 1 and "stopped" in r.err, r


def test_a_container_without_a_process_is_created_but_not_started(pyrunc, bundle, test_id):
    """The spec's `process` is optional; `start` must then fail, and the container stops."""
    del bundle.config["process"]
    bundle.write()
    pid = create(pyrunc, bundle, test_id)["pid"]
    assert pid_alive(pid)
    r = pyrunc("start", test_id)
    assert r.code == 1 and "sets no process" in r.err and len(r.err.splitlines()) == 1, r
    assert pyrunc.state(test_id)["status"] == "stopped"
    assert pyrunc("delete", test_id).code == 0
    assert_nothing_left(pyrunc, test_id, bundle)


def test_delete_of_a_running_container_needs_force(pyrunc, runc, bundle, test_id):
    runc.use(bundle)
    set_args(bundle, *SLEEP)
    pid = create(pyrunc, bundle, test_id)["pid"]
    assert pyrunc("start", test_id).code == 0
    r = pyrunc("delete", test_id)
    assert r.code == 1 and f"cannot delete container {test_id} that is not stopped: running" in r.err, r
    assert "not stopped: running" in last_error(pyrunc.log)
    assert pyrunc.state(test_id)["status"] == "running"
    # runc says the same
    runc("run", "--detach", "--bundle", bundle.path, test_id)
    code, _, err = runc("delete", test_id)
    assert code == 1 and "that is not stopped: running" in err

    r = pyrunc("delete", "--force", test_id)
    assert r.code == 0, r
    assert not pid_alive(pid)
    assert_nothing_left(pyrunc, test_id, bundle)


def test_delete_of_a_created_container_needs_force(pyrunc, bundle, test_id):
    """The spec: delete of a container that is not stopped is an error with no effect
    (runc deletes a created one; the runtime-tools suite's delete test fails it for that)."""
    set_args(bundle, *SLEEP)
    pid = create(pyrunc, bundle, test_id)["pid"]
    r = pyrunc("delete", test_id)
    assert r.code == 1 and f"cannot delete container {test_id} that is not stopped: created" in r.err, r
    assert pyrunc.state(test_id)["status"] == "created" and pid_alive(pid)
    r = pyrunc("delete", "--force", test_id)
    assert r.code == 0, r
    assert not pid_alive(pid)
    assert_nothing_left(pyrunc, test_id, bundle)


def test_delete_force_of_an_unknown_id_succeeds(pyrunc, test_id):
    assert pyrunc("delete", "--force", test_id).code == 0
    r = pyrunc("delete", test_id)
    assert r.code == 1 and f"container {test_id} does not exist" in r.err


def test_kill_of_a_stopped_container_says_not_running(pyrunc, runc, bundle, test_id):
    runc.use(bundle)
    set_args(bundle, *SLEEP)
    create(pyrunc, bundle, test_id)
    assert pyrunc("kill", test_id, "9").code == 0
    wait_status(pyrunc, test_id, "stopped")
    r = pyrunc("kill", test_id)
    assert r.code == 1 and "container not running" in r.err, r
    assert "container not running" in last_error(pyrunc.log)
    code, _, err = runc("run", "--detach", "--bundle", bundle.path, test_id)
    assert code == 0, err
    runc("kill", test_id, "9")
    wait_for(lambda: runc.state(test_id)["status"] == "stopped", "runc's container to stop")
    code, _, err = runc("kill", test_id)
    assert code == 1 and "container not running" in err


def _tool(name, pyrunc, runc):
    """(call, state) of runc or pyrunc, a call answering (code, out, err) for both."""
    if name == "runc":
        return runc, runc.state
    return (lambda *args: (lambda r: (r.code, r.out, r.err))(pyrunc(*args))), pyrunc.state


def test_kill_all_of_a_stopped_container_succeeds_like_runc(pyrunc, runc, bundle, test_id):
    """runc 1.1 accepts `kill --all` of a stopped container, silently (engines send it
    while they clean up); without --all it still says `container not running`."""
    runc.use(bundle)
    set_args(bundle, "true")
    found = {}
    for name in ("runc", "pyrunc"):
        call, state = _tool(name, pyrunc, runc)
        code, _, err = call("run", "--detach", "--bundle", bundle.path, test_id)
        assert code == 0, err
        wait_for(lambda: state(test_id)["status"] == "stopped", f"{name}'s container to stop")  # noqa: B023 -- called at once
        found[name] = [
            call("kill", "--all", test_id, "KILL"),
            call("kill", "-a", test_id),
            call("kill", test_id, "KILL"),
        ]
        assert call("delete", test_id)[0] == 0
    theirs, ours = found["runc"], found["pyrunc"]
    assert theirs[:2] == [(0, "", "")] * 2 and theirs[2][:2] == (1, ""), theirs
    assert ours[:2] == theirs[:2] and ours[2][:2] == (1, ""), ours
    assert "container not running" in ours[2][2] and "container not running" in theirs[2][2]


@pytest.mark.parametrize("tool", ["runc", "pyrunc"])
def test_kill_all_of_a_stopped_container_signals_what_its_init_left(pyrunc, runc, bundle, test_id, tool):
    """Without a pid namespace the init's children outlive it, in its cgroup: kill --all
    reaches them once the container is stopped, under runc as under pyrunc."""
    runc.use(bundle)  # for both: a cgroup of the container's own
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    set_args(bundle, "sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $! > /tmp/child")
    call, state = _tool(tool, pyrunc, runc)
    code, _, err = call("run", "--detach", "--bundle", bundle.path, test_id)
    assert code == 0, err
    child = int(wait_for_file(os.path.join(bundle.rootfs, "tmp/child")))
    wait_for(lambda: state(test_id)["status"] == "stopped", "the init to exit")
    assert pid_alive(child)
    assert call("kill", "--all", test_id, "KILL")[0] == 0
    wait_for(lambda: not pid_alive(child), f"the init's child {child} to die")
    assert call("delete", test_id)[0] == 0


@pytest.mark.parametrize("signame", ["USR1", "SIGUSR1", "10", "sigusr1"])
def test_kill_takes_names_and_numbers(pyrunc, bundle, test_id, signame):
    set_args(
        bundle,
        "sh",
        "-c",
        "trap 'echo USR1 > /tmp/got; exit 0' USR1; echo ready > /tmp/ready; while :; do sleep 0.1; done",
    )
    create(pyrunc, bundle, test_id)
    assert pyrunc("start", test_id).code == 0
    wait_for_file(os.path.join(bundle.rootfs, "tmp/ready"))
    r = pyrunc("kill", test_id, signame)
    assert r.code == 0, r
    assert wait_for_file(os.path.join(bundle.rootfs, "tmp/got")) == "USR1\n"


def test_kill_defaults_to_sigterm(pyrunc, bundle, test_id):
    set_args(
        bundle,
        "sh",
        "-c",
        "trap 'echo TERM > /tmp/got; exit 0' TERM; echo ready > /tmp/ready; while :; do sleep 0.1; done",
    )
    create(pyrunc, bundle, test_id)
    assert pyrunc("start", test_id).code == 0
    wait_for_file(os.path.join(bundle.rootfs, "tmp/ready"))
    assert pyrunc("kill", test_id).code == 0
    assert wait_for_file(os.path.join(bundle.rootfs, "tmp/got")) == "TERM\n"


def test_kill_of_a_created_container_with_sigterm_stops_it(pyrunc, bundle, test_id):
    """The waiting init is pid 1 of its namespace: without a handler it would ignore TERM."""
    set_args(bundle, *SLEEP)
    create(pyrunc, bundle, test_id)
    assert pyrunc("kill", test_id, "TERM").code == 0
    wait_status(pyrunc, test_id, "stopped")


def children_of(pid):
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_kill_all_reaches_every_process(pyrunc, bundle, test_id):
    set_args(bundle, "sh", "-c", "trap '' TERM; sleep 300 & sleep 301 & echo ready > /tmp/ready; wait")
    pid = create(pyrunc, bundle, test_id)["pid"]
    assert pyrunc("start", test_id).code == 0
    wait_for_file(os.path.join(bundle.rootfs, "tmp/ready"))
    sleepers = wait_for(lambda: (lambda c: c if len(c) == 2 else None)(children_of(pid)), "the sleepers")
    assert pyrunc("kill", "--all", test_id, "KILL").code == 0
    wait_status(pyrunc, test_id, "stopped")
    wait_for(lambda: not any(pid_alive(p) for p in sleepers), "every process to die")


def test_kill_all_without_a_pid_namespace_stays_inside_the_container(pyrunc, bundle, test_id):
    """Sharing the host's pid namespace, --all means the init's process tree only."""
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    set_args(bundle, "sh", "-c", "sleep 302 & echo ready > /tmp/ready; wait")
    bystander = subprocess.Popen(["sleep", "303"])
    try:
        pid = create(pyrunc, bundle, test_id)["pid"]
        assert pyrunc("start", test_id).code == 0
        wait_for_file(os.path.join(bundle.rootfs, "tmp/ready"))
        sleeper = wait_for(lambda: children_of(pid), "the container's sleeper")
        assert pyrunc("kill", "--all", test_id, "KILL").code == 0
        wait_status(pyrunc, test_id, "stopped")
        wait_for(lambda: not any(pid_alive(p) for p in sleeper), "the container's sleeper to die")
        assert bystander.poll() is None and pid_alive(os.getpid())
    finally:
        bystander.kill()
        bystander.wait()


# --- create's flags -------------------------------------------------------------------


def test_pid_file(pyrunc, bundle, test_id, tmp_path):
    set_args(bundle, *SLEEP)
    pidfile = tmp_path / "pid"
    st = create(pyrunc, bundle, test_id, "--pid-file", str(pidfile))
    assert pidfile.read_text() == str(st["pid"])


def test_bundle_defaults_to_the_current_directory(pyrunc, bundle, test_id):
    set_args(bundle, "true")
    out = os.path.join(pyrunc.tmp, "out")
    with open(out, "w") as f:
        code = subprocess.call(
            pyrunc_cmd(pyrunc, "create", test_id), cwd=bundle.path, stdin=subprocess.DEVNULL, stdout=f, stderr=f
        )
    assert code == 0, open(out).read()
    assert pyrunc.state(test_id)["bundle"] == bundle.path


def test_preserve_fds(pyrunc, bundle, test_id, tmp_path):
    secret = tmp_path / "fd3"
    secret.write_text("through fd 3\n")
    set_args(bundle, "sh", "-c", "ls /proc/self/fd; cat <&3 || echo no fd 3")

    def run_with_fd3(*flags):
        out = tmp_path / "out"
        cmd = " ".join(pyrunc_cmd(pyrunc, "run", *flags, "--bundle", bundle.path, test_id))
        with open(out, "w") as f:
            code = subprocess.call(
                ["sh", "-c", f"exec 3< {secret}; exec {cmd}"],
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        return code, out.read_text()

    code, out = run_with_fd3("--preserve-fds", "1")
    assert code == 0, out
    assert "through fd 3" in out
    code, out = run_with_fd3()
    assert "through fd 3" not in out and "no fd 3" in out


def test_no_pivot(pyrunc, bundle, test_id):
    set_args(bundle, "sh", "-c", "ls /bin/busybox && cat /proc/self/mountinfo")
    r = pyrunc("run", "--no-pivot", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    assert "/bin/busybox" in r.out
    assert bundle.path not in r.out.split("\n", 1)[0]


def test_new_session_keyring_unless_no_new_keyring(pyrunc, bundle, test_id):
    bundle.config["linux"]["maskedPaths"] = [p for p in bundle.config["linux"]["maskedPaths"] if p != "/proc/keys"]
    set_args(bundle, "cat", "/proc/keys")
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    assert f"_ses.{test_id}" in r.out
    # Another id: the first run's keyring, unreferenced once its container is gone, is freed
    # by the kernel's key collector a moment later and may still be listed meanwhile.
    other = f"{test_id}-shared"
    r = pyrunc("run", "--no-new-keyring", "--bundle", bundle.path, other)
    assert r.code == 0, r
    assert f"_ses.{other}" not in r.out


def test_second_create_of_an_id_fails_and_leaves_the_first(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    first = create(pyrunc, bundle, test_id)
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and f"container {test_id} already exists" in r.err, r
    assert pyrunc.state(test_id) == first
    assert pid_alive(first["pid"])
    assert pyrunc("start", test_id).code == 0


# --- failure cleanup ------------------------------------------------------------------


@pytest.mark.parametrize(
    "breakage,message",
    [
        (lambda c: c["process"].update(args=["nosuchbin"]), 'exec: "nosuchbin": executable file not found in $PATH'),
        (lambda c: c["process"].update(args=["/bin/nosuchbin"]), 'exec: "/bin/nosuchbin": executable file not found'),
        (lambda c: c["process"].update(cwd="/etc/passwd"), "/etc/passwd"),  # a missing one is made
        (
            lambda c: c["mounts"].append(
                {"destination": "/x", "type": "bind", "source": "/no-such-source", "options": ["bind"]}
            ),
            "/no-such-source",
        ),
    ],
)
def test_failed_create_leaves_nothing(pyrunc, bundle, test_id, breakage, message):
    breakage(bundle.config)
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1
    assert r.err.startswith(f"pyrunc: create {test_id}: ") and message in r.err, r
    assert r.err.count("\n") == 1
    assert message in last_error(pyrunc.log)
    assert_nothing_left(pyrunc, test_id, bundle)
    assert pyrunc("state", test_id).code == 1


def test_failed_run_leaves_nothing(pyrunc, bundle, test_id):
    set_args(bundle, "nosuchbin")
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 1
    assert f'create {test_id}: exec: "nosuchbin": executable file not found in $PATH' in r.err
    assert_nothing_left(pyrunc, test_id, bundle)


def test_missing_binary_message_matches_runc(runc, bundle, test_id):
    runc.use(bundle)
    set_args(bundle, "nosuchbin")
    code, _, err = runc("create", "--bundle", bundle.path, test_id)
    assert code == 1 and 'exec: "nosuchbin": executable file not found in $PATH' in err


# --- run ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [0, 3, 42])
def test_run_exits_with_the_containers_status(pyrunc, runc, bundle, test_id, status):
    runc.use(bundle)
    set_args(bundle, "sh", "-c", f"exit {status}")
    assert pyrunc("run", "--bundle", bundle.path, test_id).code == status
    assert runc("run", "--bundle", bundle.path, test_id)[0] == status
    assert_nothing_left(pyrunc, test_id, bundle)


def test_run_killed_by_signal_exits_128_plus_n(pyrunc, bundle, test_id):
    set_args(bundle, "sh", "-c", "echo ready > /tmp/ready; exec sleep 300")
    proc = subprocess.Popen(
        pyrunc_cmd(pyrunc, "run", "--bundle", bundle.path, test_id), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        wait_for_file(os.path.join(bundle.rootfs, "tmp/ready"))
        assert pyrunc("kill", test_id, "KILL").code == 0
        assert proc.wait(timeout=30) == 128 + signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_nothing_left(pyrunc, test_id, bundle)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP])
def test_run_forwards_signals_to_the_container(pyrunc, bundle, test_id, sig):
    name = signal.Signals(sig).name[3:]
    set_args(
        bundle,
        "sh",
        "-c",
        f"trap 'echo {name} > /tmp/got; exit 7' {name}; echo ready > /tmp/ready; while :; do sleep 0.1; done",
    )
    proc = subprocess.Popen(
        pyrunc_cmd(pyrunc, "run", "--bundle", bundle.path, test_id), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    try:
        wait_for_file(os.path.join(bundle.rootfs, "tmp/ready"))
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 7
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert open(os.path.join(bundle.rootfs, "tmp/got")).read() == f"{name}\n"
    assert_nothing_left(pyrunc, test_id, bundle)


def test_run_detach_returns_while_the_container_runs(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    for flag in ("--detach", "-d"):
        r = pyrunc("run", flag, "--bundle", bundle.path, test_id)
        assert r.code == 0, r
        assert validate_state(pyrunc.state(test_id))["status"] == "running"
        assert pyrunc("delete", "-f", test_id).code == 0


def test_run_keep_leaves_the_stopped_container(pyrunc, bundle, test_id):
    set_args(bundle, "sh", "-c", "exit 5")
    assert pyrunc("run", "--keep", "--bundle", bundle.path, test_id).code == 5
    st = validate_state(pyrunc.state(test_id))
    assert st["status"] == "stopped" and st["pid"] == 0
    assert pyrunc("delete", test_id).code == 0
    assert_nothing_left(pyrunc, test_id, bundle)


def test_run_without_keep_deletes(pyrunc, bundle, test_id):
    set_args(bundle, "true")
    assert pyrunc("run", "--bundle", bundle.path, test_id).code == 0
    assert pyrunc("state", test_id).code == 1


def test_run_output_reaches_our_stdout(pyrunc, bundle, test_id):
    set_args(bundle, "sh", "-c", "echo out; echo err >&2")
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert (r.code, r.out, r.err) == (0, "out\n", "err\n")


# --- races on one id ------------------------------------------------------------------


def test_parallel_deletes_of_one_container(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    pid = create(pyrunc, bundle, test_id)["pid"]
    assert pyrunc("kill", test_id, "KILL").code == 0
    wait_for(lambda: pyrunc.state(test_id)["status"] == "stopped", "the container to stop")
    results = [None] * 10

    def delete(i):
        results[i] = pyrunc("delete", test_id)

    threads = [threading.Thread(target=delete, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.code for r in results].count(0) == 1, results
    for r in results:
        assert r.code == 0 or f"container {test_id} does not exist" in r.err, r
    assert not pid_alive(pid)
    assert_nothing_left(pyrunc, test_id, bundle)


def test_parallel_creates_of_different_ids(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    ids = [f"{test_id}-{i}" for i in range(5)]
    results = {}

    def create_one(cid):
        results[cid] = pyrunc("create", "--bundle", bundle.path, cid)

    threads = [threading.Thread(target=create_one, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.code == 0 for r in results.values()), results
    listed = json.loads(pyrunc("list", "--format", "json").out)
    assert sorted(s["id"] for s in listed) == ids
    assert all(s["status"] == "created" for s in listed), listed
    assert len({s["pid"] for s in listed}) == 5
    # They share one cgroupsPath: the parent that one of them made may still hold the
    # leaf another made when its maker goes, and is nobody's to remove after.
    for cid in ids:
        assert pyrunc("delete", "--force", cid).code == 0
    remove_empty_cgroup(bundle.config["linux"]["cgroupsPath"].split("/")[1])


def test_parallel_creates_of_one_id_have_one_winner(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    results = []

    def create_one():
        results.append(pyrunc("create", "--bundle", bundle.path, test_id))

    threads = [threading.Thread(target=create_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.code for r in results].count(0) == 1, results
    assert all("already exists" in r.err for r in results if r.code)
    st = pyrunc.state(test_id)
    assert st["status"] == "created"
    # the losers left no init behind: only the winner's carries the id
    wait_for(lambda: [p for p, _, _ in processes_mentioning(test_id)] == [st["pid"]], "only the winner's init")


# --- state.json across an upgrade --------------------------------------------------------

# The keys the previous pyrunc wrote for a created container (no `version`; `systemd_cgroup`
# and `rootless`, which nothing read, are no longer written).
PREVIOUS_KEYS = {
    "id",
    "bundle",
    "rootfs",
    "created",
    "started",
    "annotations",
    "hooks",
    "cgroup_path",
    "systemd_cgroup",
    "rootless",
    "cgroup",
    "pid",
    "pid_start",
}


def test_state_json_is_versioned_without_the_keys_nobody_read(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    create(pyrunc, bundle, test_id)
    with open(os.path.join(pyrunc.root, test_id, "state.json")) as f:
        saved = json.load(f)
    # 2 only for v1's compact cgroup record (one path in every hierarchy): on a v1 or
    # hybrid host, where the test's absolute cgroupsPath is made in every hierarchy
    cgroup = saved["cgroup"]
    assert saved["version"] == (2 if cgroup["version"] == 1 else 1)
    assert ("dir" in cgroup and "hierarchies" in cgroup) != ("dirs" in cgroup and "controllers" in cgroup)
    assert set(saved) == PREVIOUS_KEYS - {"systemd_cgroup", "rootless"} | {"version"}
    assert pyrunc("delete", "--force", test_id).code == 0


def per_hierarchy(cgroup):
    """A v1 record as every pyrunc before state version 2 wrote it: dirs and made per
    hierarchy (v1.py's to_dict writes the compact form where they are all alike)."""
    if cgroup["version"] != 1 or "dirs" in cgroup:
        return cgroup
    names = cgroup["hierarchies"]
    return {
        "version": 1,
        "hybrid": cgroup["hybrid"],
        "dirs": dict.fromkeys(names, cgroup["dir"]),
        "made": {name: list(cgroup["made"]) for name in names},
        # each hierarchy's controllers, as its directory's name gives them
        "controllers": {
            name: cgroup["unified"] if name == "unified" else ["name=systemd"] if name == "systemd" else name.split(",")
            for name in names
        },
    }


@pytest.mark.parametrize("start", [False, True])
def test_a_container_created_by_the_previous_version_is_killed_and_deleted(pyrunc, bundle, test_id, start):
    """Its state.json as the previous pyrunc wrote it (an upgrade while it runs): state,
    start, kill and delete read it as before."""
    set_args(bundle, *SLEEP)
    pid = create(pyrunc, bundle, test_id)["pid"]
    path = os.path.join(pyrunc.root, test_id, "state.json")
    with open(path) as f:
        saved = json.load(f)
    del saved["version"]
    saved.update(systemd_cgroup=False, rootless="auto", cgroup=per_hierarchy(saved["cgroup"]))
    assert set(saved) == PREVIOUS_KEYS
    with open(path, "w") as f:
        json.dump(saved, f)
    assert validate_state(pyrunc.state(test_id))["status"] == "created"
    if start:
        assert pyrunc("start", test_id).code == 0
        assert pyrunc.state(test_id)["status"] == "running"
    r = pyrunc("kill", test_id, "KILL")
    assert r.code == 0, r
    wait_status(pyrunc, test_id, "stopped")
    assert not pid_alive(pid)
    r = pyrunc("delete", test_id)
    assert r.code == 0, r
    assert_nothing_left(pyrunc, test_id, bundle)


def test_a_state_of_a_newer_version_is_refused_in_one_line_and_deleted_with_force(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    pid = create(pyrunc, bundle, test_id)["pid"]
    path = os.path.join(pyrunc.root, test_id, "state.json")
    with open(path) as f:
        saved = json.load(f)
    saved["version"] = 3
    with open(path, "w") as f:
        json.dump(saved, f)
    r = pyrunc("kill", test_id, "KILL")
    assert (r.code, r.err) == (
        1,
        f"pyrunc: container {test_id}: corrupt state file {path}: written by a "
        "newer pyrunc (state version 3; this one reads up to 2)\n",
    ), r
    assert pid_alive(pid)
    r = pyrunc("delete", "--force", test_id)
    assert r.code == 0, r
    assert not pid_alive(pid)
    assert_nothing_left(pyrunc, test_id, bundle)
