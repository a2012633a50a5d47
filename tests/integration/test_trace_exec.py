"""The step trace of `pyrunc exec` (docs/trace.md): the runtime's steps, and the forked
child's ("exec", which joins the container, then, under the name "exec process", sets
itself up and execs; born in the container's pid namespace, which the runtime joins for
it, it forks no second process) with their kernel calls; a failing exec's last records;
and the trace fd, which the exec'd process must not hold."""

import os
import signal

from tests.integration.cli_util import pid_alive, set_args, wait_for
from tests.integration.trace_util import read, traced, validate_all

CHILD = ("exec", "exec process")


def begun(records, procs=CHILD):
    return [r for r in records if r["t"] == "step" and r["ev"] == "begin" and r["proc"] in procs]


def calls(records, name, procs=CHILD):
    return [r for r in records if r["t"] == "call" and r["name"] == name and r["proc"] in procs]


def headers(records):
    return {r["proc"]: r for r in records if r["t"] == "header"}


def test_exec_traces_its_child_joining_setting_up_and_exec_ing(pyrunc, running, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    r, records = traced(pyrunc, trace, "exec", running, "sh", "-c", "echo traced")
    assert (r.code, r.out) == (0, "traced\n"), r
    head = headers(records)
    assert sorted(head) == ["exec", "runtime"], head
    # Host pids: the child, born in the container's pid namespace, is the runtime's own.
    assert head["exec"]["ppid"] == head["runtime"]["pid"]
    assert len({h["pid"] for h in head.values()}) == 2

    steps = [(s["proc"], s["name"]) for s in begun(records)]
    names = [n for _, n in steps]
    assert names[0] == "open the container's namespaces", names
    order = [
        "open the container's namespaces",
        "join mount namespace",
        "enter the container's root",
        "drop bounding capabilities",
        "set capabilities",
        "find executable",
        "join cgroup",
        "exec",
    ]
    assert [n for n in names if n in order] == order, names
    assert "fork into the container's pid namespace" not in names and "join pid namespace" not in names, names
    assert steps[-1] == ("exec process", "exec"), steps
    # Named "exec process" from its report of its pid on (the "init" message), one process.
    assert all(p == "exec" for p, n in steps[: names.index("enter the container's root") + 1])
    assert all(p == "exec process" for p, _ in steps[names.index("enter the container's root") + 1 :])
    assert len({s["pid"] for s in begun(records)}) == 1

    # The runtime made the child a member of the container's pid namespace: joined for its
    # next child, and back; the child non-dumpable from birth.
    spawned = [c for c in records if c["t"] == "call" and c["proc"] == "runtime"]
    pid_setns = [c for c in spawned if c["name"] == "setns" and c["flags"]["nstype"] == "CLONE_NEWPID"]
    assert len(pid_setns) == 2, pid_setns
    dumpable = [c for c in spawned if c["name"] == "prctl" and c["flags"]["option"] == "PR_SET_DUMPABLE"]
    assert dumpable and dumpable[0]["args"]["arg2"] == 0, dumpable

    # Every child call is made in a step of its own process.
    sids = {(s["sid"], s["proc"]) for s in begun(records)}
    child_calls = [c for c in records if c["t"] == "call" and c["proc"] in CHILD]
    assert child_calls and all((c["sid"], c["proc"]) in sids for c in child_calls), child_calls
    by_sid = {s["sid"]: s["name"] for s in begun(records)}
    setns = calls(records, "setns")
    flags = {c["flags"]["nstype"] for c in setns}
    assert {"CLONE_NEWNS", "CLONE_NEWNET", "CLONE_NEWIPC", "CLONE_NEWUTS"} <= flags, setns
    assert all(by_sid[c["sid"]] == f"join {c['args']['what'].split()[-2]} namespace" for c in setns), setns
    capset = calls(records, "capset")
    assert capset and by_sid[capset[-1]["sid"]] == "set capabilities" and capset[-1]["proc"] == "exec process"
    assert any(c["flags"]["option"] == "PR_SET_DUMPABLE" for c in calls(records, "prctl", ("exec",)))
    execve = calls(records, "execve")
    assert len(execve) == 1 and execve[0]["result"] == "exec" and execve[0]["proc"] == "exec process", execve
    assert execve[0]["args"]["args"] == ["sh", "-c", "echo traced"] and by_sid[execve[0]["sid"]] == "exec"
    # exec succeeded: no step of the child failed.
    assert not [s for s in records if s["t"] == "step" and s.get("error")]

    runtime = [s["name"] for s in begun(records, ("runtime",))]
    assert runtime == ["exec", "validate process", "spawn", "add process to cgroup", "wait for exit"], runtime
    ends = {s["sid"] for s in records if s["t"] == "step" and s["ev"] == "end"}
    assert all(s["sid"] in ends for s in begun(records, ("runtime", "exec")))

    shown = pyrunc("trace", "show", trace)
    assert shown.code == 0, shown
    assert shown.out.startswith("2 processes, "), shown.out
    for proc, name in steps:
        assert any(f" {proc} " in line and f"  {name}" in line for line in shown.out.splitlines()), (proc, name)
    assert "exec process: set capabilities" in shown.out
    verbose = pyrunc("trace", "show", "-v", trace)
    assert "setns(fd=" in verbose.out and "nstype=CLONE_NEWPID" in verbose.out, verbose.out
    assert 'args=["sh","-c","echo traced"]' in verbose.out, verbose.out


def test_the_exec_d_process_holds_no_trace_fd(pyrunc, running, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    pid_file = tmp_path / "exec.pid"
    r = pyrunc("exec", "-d", "--pid-file", str(pid_file), running, "sleep", "1000", extra=("--trace", trace))
    assert r.code == 0, r
    pid = int(pid_file.read_text())
    try:
        assert pid_alive(pid)
        fds = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert sorted(fds, key=int) == ["0", "1", "2"], fds
        assert trace not in fds.values()
        # It is the process the trace followed up to its exec, by its host pid.
        records = read(trace)
        validate_all(records)
        assert headers(records)["exec"]["pid"] == pid
        execve = calls(records, "execve")
        assert [(c["pid"], c["args"]["args"]) for c in execve] == [(pid, ["sleep", "1000"])], execve
    finally:
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), "the exec'd process to die")
    # From inside: the shell's fds are stdio only.
    r = pyrunc("exec", running, "ls", "/proc/self/fd", extra=("--trace", trace))
    assert r.code == 0, r
    assert r.out.split() == ["0", "1", "2", "3"], r  # 3: ls' own listing of the directory
    assert len(calls(read(trace), "execve")) == 2


def test_a_missing_binary_ends_the_exec_trace_with_find_executable(pyrunc, running, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    r, records = traced(pyrunc, trace, "exec", running, "/bin/no-such-program")
    assert r.code != 0, r
    last = records[-1]
    assert last["t"] == "fail" and last["step"] == "find executable", last
    assert last["proc"] == "exec process" and "no-such-program" in last["error"]["msg"], last
    failed = [s for s in records if s["t"] == "step" and s.get("error")]
    assert (failed[0]["proc"], failed[0]["name"]) == ("exec process", "find executable"), failed
    assert not calls(records, "execve")


def test_a_bad_cwd_ends_the_exec_trace_with_its_step_and_errno(pyrunc, running, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    r, records = traced(pyrunc, trace, "exec", "--cwd", "/no-such-dir", running, "true")
    assert r.code != 0, r
    last = records[-1]
    assert last["t"] == "fail" and last["step"] == "open cwd /no-such-dir", last
    assert last["proc"] == "exec process" and last["error"]["errno"] == "ENOENT", last
    # The child's steps end there: the failing one is its last.
    child = [s for s in records if s["t"] == "step" and s["proc"] in CHILD]
    assert child[-1]["ev"] == "end" and child[-1]["name"] == "open cwd /no-such-dir", child[-1]
    assert child[-1]["error"]["errno"] == "ENOENT"
    shown = pyrunc("trace", "show", trace)
    assert "FAILED at step 'open cwd /no-such-dir' (exec process): ENOENT" in shown.out, shown.out


def test_without_a_pid_namespace_the_exec_child_does_not_fork(pyrunc, bundle, test_id, tmp_path):
    """Sharing the host's pid namespace there is nothing to fork into: the one child joins,
    then goes on as the exec process."""
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    set_args(bundle, "sleep", "1000")
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id).code == 0
    trace = str(tmp_path / "trace.jsonl")
    r, records = traced(pyrunc, trace, "exec", test_id, "true")
    assert r.code == 0, r
    assert sorted(headers(records)) == ["exec", "runtime"]
    steps = begun(records)
    assert "fork into the container's pid namespace" not in [s["name"] for s in steps]
    assert len({s["pid"] for s in steps}) == 1
    assert steps[0]["proc"] == "exec" and steps[-1]["proc"] == "exec process" and steps[-1]["name"] == "exec"
    assert calls(records, "execve")[0]["args"]["args"] == ["true"]
