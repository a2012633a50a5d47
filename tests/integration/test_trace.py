"""The step trace (--trace FILE, PYRUNC_TRACE; pyrunc/trace.py, docs/trace.md) of real
containers: the init's steps in the spec's order, the kernel calls with their arguments,
a failure's last record, `trace show`, and every line against docs/trace-schema.json."""

import json
import os
import sys

import pytest

from tests.integration.cli_util import last_error
from tests.integration.trace_util import read, traced, validate_all

# The runtime's steps of a `run`, in order (runtime.md "Lifecycle").
RUNTIME_ORDER = [
    "validate config",
    "create state",
    "spawn",
    "create cgroup",
    "set cgroup limits",
    "move init into cgroup",
    "start",
    "tell the init to exec",
    "wait for exit",
    "delete",
    "remove cgroup",
    "remove state",
]


def ended_steps(records, procs=("stage1", "init")):
    return [r["name"] for r in records if r["t"] == "step" and r["ev"] == "begin" and r["proc"] in procs]


def calls(records, name):
    return [r for r in records if r["t"] == "call" and r["name"] == name]


def test_run_traces_the_init_steps_in_order_with_their_kernel_calls(pyrunc, bundle, test_id, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    bundle.write()
    r, records = traced(pyrunc, trace, "run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    steps = ended_steps(records)
    order = [
        "create namespaces",
        "mount /proc",
        "pivot_root",
        "drop bounding capabilities",
        "set capabilities",
        "find executable",
        "wait for start",
        "exec",
    ]
    assert [s for s in steps if s in order] == order, steps
    assert steps[-1] == "exec"
    runtime = ended_steps(records, ("runtime",))
    assert runtime[:4] == ["run", "create", "validate config", "create state"], runtime
    assert [s for s in runtime if s in RUNTIME_ORDER] == RUNTIME_ORDER, runtime
    # Each new process is a fork the runtime or stage1 recorded, with the child's pid.
    headers = {r["pid"]: r for r in records if r["t"] == "header"}
    warm_up = step_records(records, "warm up cgroup")[0]["sid"]  # its stand-in traces nothing
    forks = [c for c in calls(records, "fork") if c["sid"] != warm_up]
    assert {c["result"] for c in forks} == {pid for pid, h in headers.items() if h["proc"] != "runtime"}, forks
    assert all(headers[c["result"]]["ppid"] == c["pid"] for c in forks)
    # The runtime makes the new pid namespace (no user namespace here): its one child is
    # born the init, pid 1 there, and unshares the others (spawn.pid_ns_in_parent).
    procs = {r["proc"] for r in records if r["t"] == "header"}
    assert procs == {"runtime", "init"}
    unshare = calls(records, "unshare")
    assert [c["proc"] for c in unshare if "CLONE_NEWPID" in c["flags"]["flags"]] == ["runtime"], unshare
    assert any("CLONE_NEWNS" in c["flags"]["flags"] and c["proc"] == "init" for c in unshare), unshare
    # The mounts go through an fd of the target, opened beneath the rootfs.
    proc_step = next(r["sid"] for r in records if r["t"] == "step" and r["name"] == "mount /proc")
    assert any(
        c["args"]["source"] == "proc"
        and c["args"]["fstype"] == "proc"
        and c["args"]["target"].startswith("/proc/self/fd/")
        and c["sid"] == proc_step
        for c in calls(records, "mount")
    )
    assert calls(records, "pivot_root")[0]["args"] == {"new_root": ".", "put_old": "."}
    capset = calls(records, "capset")
    assert capset and set(capset[-1]["args"]) == {"effective", "permitted", "inheritable"}
    execve = calls(records, "execve")
    assert execve[-1]["args"]["args"] == ["true"] and execve[-1]["result"] == "exec"
    # Every call is made in a step of its own process.
    sids = {r["sid"] for r in records if r["t"] == "step"}
    assert all(c["sid"] in sids for c in records if c["t"] == "call" and c["proc"] != "runtime")
    # One header per process, its line whole.
    assert len([r for r in records if r["t"] == "header"]) == 2

    shown = pyrunc("trace", "show", trace)
    assert shown.code == 0, shown
    for name in set(steps) | set(runtime):
        assert name in shown.out, name
    assert "wait for start  (waiting)" in shown.out
    verbose = pyrunc("trace", "show", "-v", trace)
    assert 'pivot_root(new_root=".", put_old=".")' in verbose.out


def test_create_start_kill_and_delete_each_trace_their_steps_into_one_file(pyrunc, bundle, test_id, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    bundle.config["process"]["args"] = ["sleep", "300"]
    bundle.write()
    for args in (
        ("create", "--bundle", bundle.path, test_id),
        ("start", test_id),
        ("kill", test_id, "KILL"),
        ("delete", "--force", test_id),
    ):
        r, records = traced(pyrunc, trace, *args)
        assert r.code == 0, (args, r)
    runtime = [h["argv"] for h in records if h["t"] == "header" and h["proc"] == "runtime"]
    assert [argv[argv.index("--trace") + 2] for argv in runtime] == ["create", "start", "kill", "delete"]
    sid = {r["name"]: r["sid"] for r in records if r["t"] == "step" and r["ev"] == "begin"}
    assert {
        "create",
        "spawn",
        "start",
        "tell the init to exec",
        "kill",
        "signal the container",
        "delete",
        "remove state",
    } <= set(sid), sorted(sid)
    (signal,) = [c for c in calls(records, "pidfd_send_signal") if c["sid"] == sid["signal the container"]]
    assert signal["args"]["sig"] == 9 and "error" not in signal
    assert records[-1] == next(r for r in records if r["t"] == "step" and r["ev"] == "end" and r["name"] == "delete")


def test_the_environment_variable_works_like_the_flag_and_the_flag_wins(pyrunc, bundle, test_id, tmp_path, monkeypatch):
    by_env, by_flag = str(tmp_path / "env.jsonl"), str(tmp_path / "flag.jsonl")
    bundle.write()
    monkeypatch.setenv("PYRUNC_TRACE", by_env)
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    records = read(by_env)
    validate_all(records)
    assert ended_steps(records)[-1] == "exec"
    r = pyrunc("state", test_id, extra=("--trace", by_flag))
    assert r.code != 0  # deleted by run: the failure is traced too
    flagged = read(by_flag)
    assert flagged[0]["t"] == "header" and flagged[-1]["t"] == "fail"
    assert len(read(by_env)) == len(records)


def test_a_mount_whose_source_is_missing_ends_the_trace_with_its_step(pyrunc, bundle, test_id, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    bundle.config["mounts"].append(
        {"destination": "/missing", "type": "bind", "source": str(tmp_path / "no-such-dir"), "options": ["bind"]}
    )
    bundle.write()
    r, records = traced(pyrunc, trace, "create", "--bundle", bundle.path, test_id)
    assert r.code != 0, r
    last = records[-1]
    assert last["t"] == "fail" and last["step"] == "mount /missing", last
    assert last["proc"] == "init" and last["error"]["errno"] == "ENOENT", last
    failed = [r for r in records if r["t"] == "step" and r.get("error")]
    assert failed[0]["name"] == "mount /missing" and failed[0]["proc"] == "init"
    assert any(c.get("error", {}).get("errno") == "ENOENT" for c in records if c["t"] == "call")
    shown = pyrunc("trace", "show", trace)
    assert "FAILED at step 'mount /missing' (init): ENOENT" in shown.out, shown.out


def test_a_missing_binary_ends_the_trace_with_find_executable(pyrunc, bundle, test_id, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    bundle.config["process"]["args"] = ["/bin/no-such-program"]
    bundle.write()
    r, records = traced(pyrunc, trace, "create", "--bundle", bundle.path, test_id)
    assert r.code != 0, r
    last = records[-1]
    assert last["t"] == "fail" and last["step"] == "find executable" and last["proc"] == "init", last
    assert "no-such-program" in last["error"]["msg"], last


def test_tracing_off_writes_nothing(pyrunc, bundle, test_id, tmp_path, monkeypatch):
    monkeypatch.delenv("PYRUNC_TRACE", raising=False)
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".jsonl")]


def step_records(records, name, ev="begin"):
    found = [r for r in records if r["t"] == "step" and r["ev"] == ev and r["name"] == name]
    assert found, f"no {ev} of step {name!r}"
    return found


def begins(records, name):
    return step_records(records, name)[0]["mono"]


def ends(records, name):
    return max(r["mono"] + r["dur"] for r in step_records(records, name, "end"))


def test_every_hook_is_a_step_and_a_process_in_the_order_the_spec_gives(pyrunc, bundle, test_id, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    kinds = ("createRuntime", "createContainer", "startContainer", "poststart", "poststop")
    bundle.config["hooks"] = {k: [{"path": "/bin/true", "args": ["true", k]}] for k in kinds}
    bundle.write()
    r, records = traced(pyrunc, trace, "run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    hook = {k: f"hook {k} #0 /bin/true" for k in kinds}
    for k in kinds:
        (end,) = step_records(records, hook[k], "end")
        assert end["wait"] is True and "error" not in end
    # runtime.md: createRuntime and createContainer after the environment is made and
    # before pivot_root; startContainer after start and before the program; poststart
    # after it started; poststop after the container is deleted.
    assert ends(records, "create devices") < begins(records, hook["createRuntime"])
    assert ends(records, hook["createRuntime"]) < begins(records, hook["createContainer"])
    assert ends(records, hook["createContainer"]) < begins(records, "pivot_root")
    assert begins(records, "tell the init to exec") < begins(records, hook["startContainer"])
    assert ends(records, hook["startContainer"]) < begins(records, "exec")
    assert ends(records, "tell the init to exec") < begins(records, hook["poststart"])
    assert ends(records, "remove state") < begins(records, hook["poststop"])
    # Which process ran each: createContainer and startContainer in the container's init.
    procs = {k: step_records(records, hook[k])[0]["proc"] for k in kinds}
    assert procs == {
        "createRuntime": "runtime",
        "createContainer": "init",
        "startContainer": "init",
        "poststart": "runtime",
        "poststop": "runtime",
    }, procs
    headers = [h for h in records if h["t"] == "header" and h["proc"] == "hook"]
    assert sorted(h["argv"][1] for h in headers) == sorted(kinds), headers
    by_pid = {h["pid"]: h for h in records if h["t"] == "header"}
    for h in headers:
        assert by_pid[h["ppid"]]["proc"] == (
            "init" if h["argv"][1] in ("createContainer", "startContainer") else "runtime"
        ), h
    shown = pyrunc("trace", "show", trace)
    assert f"{hook['poststop']}  (waiting)" in shown.out, shown.out
    assert "7 processes" in shown.out.splitlines()[0], shown.out  # runtime, init, 5 hooks


def test_cgroup_writes_the_seccomp_load_and_open_flags_are_recorded(pyrunc, bundle, test_id, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    bundle.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 123}}
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mknod"], "action": "SCMP_ACT_ERRNO"}],
    }
    bundle.write()
    r, records = traced(pyrunc, trace, "run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    sid = {r["name"]: r["sid"] for r in records if r["t"] == "step" and r["ev"] == "begin"}
    writes = {os.path.basename(c["args"]["path"]): c for c in calls(records, "cgroup_write")}
    memory = writes.get("memory.limit_in_bytes") or writes["memory.max"]
    assert memory["args"]["value"] == str(64 << 20) and memory["sid"] == sid["set cgroup limits"], memory
    assert writes["pids.max"]["args"]["value"] == "123"
    assert writes["cgroup.procs"]["sid"] == sid["move init into cgroup"]
    made = calls(records, "cgroup_mkdirs")
    cgroups_path = bundle.config["linux"]["cgroupsPath"]
    assert made and all(c["args"]["path"] == cgroups_path and c["sid"] == sid["create cgroup"] for c in made)
    assert any(c["sid"] == sid["remove cgroup"] for c in calls(records, "cgroup_rmdir"))
    (load,) = calls(records, "seccomp_set_filter")
    assert load["sid"] == sid["load seccomp filter"] and load["proc"] == "init" and "error" not in load
    assert load["mono"] < begins(records, "exec")
    opens = calls(records, "openat2")
    assert any(
        "O_PATH" in c["flags"]["flags"].split("|") and "RESOLVE_IN_ROOT" in c["flags"]["resolve"] for c in opens
    ), opens[:3]


def test_a_failing_hook_ends_the_trace_at_its_step(pyrunc, bundle, test_id, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/true"}, {"path": "/bin/false"}]}
    bundle.write()
    r, records = traced(pyrunc, trace, "run", "--bundle", bundle.path, test_id)
    assert r.code != 0, r
    last = records[-1]
    assert last["t"] == "fail" and last["step"] == "hook createRuntime #1 /bin/false", last
    assert last["proc"] == "runtime" and "exit status 1" in last["error"]["msg"], last
    (failed,) = step_records(records, "hook createRuntime #1 /bin/false", "end")
    assert "exit status 1" in failed["error"]["msg"]
    # Then the create is undone, in a step of its own.
    assert begins(records, "undo create") > ends(records, "hook createRuntime #1 /bin/false")
    shown = pyrunc("trace", "show", trace)
    assert "FAILED at step 'hook createRuntime #1 /bin/false' (runtime)" in shown.out, shown.out


def test_without_tracing_the_log_error_line_names_the_last_steps(pyrunc, bundle, test_id, tmp_path):
    bundle.config["mounts"].append(
        {"destination": "/missing", "type": "bind", "source": str(tmp_path / "no-such-dir"), "options": ["bind"]}
    )
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code != 0 and "steps:" not in r.err, r  # the one-line error stays as it was
    line = last_error(pyrunc.log)
    assert line.startswith(r.err.strip()[len("pyrunc: ") :]), (line, r.err)
    assert line.endswith("(steps: run > create > spawn; init: mount /sys > mount /sys/fs/cgroup > mount /missing)"), (
        line
    )

    bundle.config["mounts"].pop()
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    bundle.write()
    os.unlink(pyrunc.log)
    r = pyrunc("run", "--bundle", bundle.path, test_id, extra=("--log-format", "json"))
    assert r.code != 0, r
    assert last_json_error(pyrunc.log).endswith(
        "(steps: run > create > spawn > run createRuntime hooks > hook createRuntime #0 /bin/false)"
    )

    r = pyrunc("state", test_id, extra=("--log-format", "json"))  # failed in its own step
    assert r.code != 0 and last_json_error(pyrunc.log) == f"container {test_id} does not exist"


def last_json_error(path):
    with open(path) as f:
        entries = [json.loads(line) for line in f]
    return [e["msg"] for e in entries if e["level"] == "error"][-1]


DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "trace.md")
TOUR = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples", "trace_tour.py")


def tour_sections():
    """docs/trace.md's guided tour: (the step names its table explains, the step names of
    the `trace show` output it quotes)."""
    with open(DOC) as f:
        text = f.read()
    tour = text[text.index("## A guided tour") :]
    explained = set()
    for line in tour.splitlines():
        if line.startswith("| `"):
            first = line.split(" | ")[0].lstrip("| ")
            explained |= {name.strip().strip("`") for name in first.split("`, `")}
    block = tour.split("```")[1]
    shown = set()
    for line in block.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[0].startswith("+"):
            shown.add(parts[5].split("  (")[0].strip())
    return explained, shown


def test_the_guided_tour_explains_every_step_of_its_run(pyrunc, test_id, tmp_path):
    """Run as the tour runs it: by the installed command, whose launcher's warm-up helper
    spares create its own (`warm up cgroup`)."""
    import importlib.util
    import uuid

    launcher = os.path.join(os.path.dirname(sys.executable), "pyrunc")
    if not os.access(launcher, os.X_OK):
        pytest.skip(f"no installed launcher at {launcher} (make setup)")
    pyrunc.command = [launcher]

    spec = importlib.util.spec_from_file_location("trace_tour", TOUR)
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    path = str(tmp_path / "tour")
    tour.make_bundle(path, tour.tour_config(f"/pyrunc-test-{uuid.uuid4().hex[:6]}/tour"))
    trace = str(tmp_path / "trace.jsonl")
    r, records = traced(pyrunc, trace, "run", "--bundle", path, test_id)
    assert r.code == 0 and r.out == "hello from busybox\n", r
    steps = {r["name"] for r in records if r["t"] == "step"}
    assert "load seccomp filter" in steps and "pivot_root" in steps
    explained, shown = tour_sections()
    assert steps <= explained, f"steps the tour does not explain: {sorted(steps - explained)}"
    assert shown == steps, f"the quoted trace is stale: {sorted(shown ^ steps)}"
