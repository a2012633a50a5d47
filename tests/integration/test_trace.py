"""The step trace (--trace FILE, PYRUNC_TRACE; pyrunc/trace.py, docs/trace.md) of real
containers: the init's steps in the spec's order, the kernel calls with their arguments,
a failure's last record, `trace show`, and every line against docs/trace-schema.json."""

import json
import os

import jsonschema

SCHEMA = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "trace-schema.json")


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def ended_steps(records, procs=("stage1", "init")):
    return [r["name"] for r in records if r["t"] == "step" and r["ev"] == "begin" and r["proc"] in procs]


def calls(records, name):
    return [r for r in records if r["t"] == "call" and r["name"] == name]


def validate_all(records):
    with open(SCHEMA) as f:
        schema = json.load(f)
    for rec in records:
        jsonschema.validate(rec, schema)


def test_run_traces_the_init_steps_in_order_with_their_kernel_calls(pyrunc, bundle, test_id, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id, extra=("--trace", trace))
    assert r.code == 0, r
    records = read(trace)
    validate_all(records)
    steps = ended_steps(records)
    order = ["create namespaces", "mount /proc", "pivot_root", "drop bounding capabilities",
             "set capabilities", "find executable", "wait for start", "exec"]
    assert [s for s in steps if s in order] == order, steps
    assert steps[-1] == "exec"
    runtime = ended_steps(records, ("runtime",))
    assert runtime[:4] == ["run", "validate config", "create state", "spawn"], runtime
    assert {"start", "delete"} <= set(runtime)
    procs = {r["proc"] for r in records if r["t"] == "header"}
    assert procs == {"runtime", "stage1", "init"}
    unshare = calls(records, "unshare")
    assert any("CLONE_NEWNS" in c["flags"]["flags"] and "CLONE_NEWPID" in c["flags"]["flags"]
               for c in unshare), unshare
    # The mounts go through an fd of the target, opened beneath the rootfs.
    proc_step = next(r["sid"] for r in records if r["t"] == "step" and r["name"] == "mount /proc")
    assert any(c["args"]["source"] == "proc" and c["args"]["fstype"] == "proc"
               and c["args"]["target"].startswith("/proc/self/fd/") and c["sid"] == proc_step
               for c in calls(records, "mount"))
    assert calls(records, "pivot_root")[0]["args"] == {"new_root": ".", "put_old": "."}
    capset = calls(records, "capset")
    assert capset and set(capset[-1]["args"]) == {"effective", "permitted", "inheritable"}
    execve = calls(records, "execve")
    assert execve[-1]["args"]["args"] == ["true"] and execve[-1]["result"] == "exec"
    # Every call is made in a step of its own process.
    sids = {r["sid"] for r in records if r["t"] == "step"}
    assert all(c["sid"] in sids for c in records if c["t"] == "call" and c["proc"] != "runtime")
    # One header per process, its line whole.
    assert len([r for r in records if r["t"] == "header"]) == 3

    shown = pyrunc("trace", "show", trace)
    assert shown.code == 0, shown
    for name in set(steps) | set(runtime):
        assert name in shown.out, name
    assert "wait for start  (waiting)" in shown.out
    verbose = pyrunc("trace", "show", "-v", trace)
    assert 'pivot_root(new_root=".", put_old=".")' in verbose.out


def test_the_environment_variable_works_like_the_flag_and_the_flag_wins(pyrunc, bundle, test_id, tmp_path,
                                                                         monkeypatch):
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
    bundle.config["mounts"].append({"destination": "/missing", "type": "bind",
                                    "source": str(tmp_path / "no-such-dir"), "options": ["bind"]})
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id, extra=("--trace", trace))
    assert r.code != 0, r
    records = read(trace)
    validate_all(records)
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
    r = pyrunc("create", "--bundle", bundle.path, test_id, extra=("--trace", trace))
    assert r.code != 0, r
    records = read(trace)
    validate_all(records)
    last = records[-1]
    assert last["t"] == "fail" and last["step"] == "find executable" and last["proc"] == "init", last
    assert "no-such-program" in last["error"]["msg"], last


def test_tracing_off_writes_nothing(pyrunc, bundle, test_id, tmp_path, monkeypatch):
    monkeypatch.delenv("PYRUNC_TRACE", raising=False)
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".jsonl")]
