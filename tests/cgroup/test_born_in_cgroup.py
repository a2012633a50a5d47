"""On a pure cgroup v2 host the container's init is born in its cgroup (clone3 with
CLONE_INTO_CGROUP) and never moved: the step trace of `run` shows no write to any
cgroup.procs, and the init is in the cgroup.  A config with a memory limit keeps the
late join (its setup's pages are not charged to the container), and so does a v1 or
hybrid host, where every v1 hierarchy needs its move anyway."""

import json
import os

import pytest
from cg_util import V2, cgroup_file, read

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _run_traced(pyrunc, bundle, test_id, trace):
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.write()
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id, extra=("--trace", trace))
    assert r.code == 0, r
    return pyrunc.state(test_id)["pid"]


def _procs_writes(trace):
    with open(trace) as f:
        records = [json.loads(line) for line in f if line.strip()]
    writes = [r for r in records if r["t"] == "call" and r["name"] == "cgroup_write"]
    forks = [r["name"] for r in records if r["t"] == "call" and r["name"] in ("fork", "fork_into_cgroup")]
    return [w["args"]["path"] for w in writes if w["args"]["path"].endswith("/cgroup.procs")], forks


def test_the_init_is_born_in_its_cgroup_and_never_moved(pyrunc, bundle, test_id, tmp_path):
    trace = str(tmp_path / "trace.jsonl")
    pid = _run_traced(pyrunc, bundle, test_id, trace)
    moves, forks = _procs_writes(trace)
    assert str(pid) in read(cgroup_file(bundle.config["linux"]["cgroupsPath"], "procs")).split()
    if V2:
        assert moves == [], moves
        assert forks[0] == "fork_into_cgroup", forks
    else:
        assert moves, "a v1 hierarchy's move is written"
        assert "fork_into_cgroup" not in forks, forks
    assert pyrunc("delete", "--force", test_id).code == 0


def test_with_a_memory_limit_the_init_joins_late(pyrunc, bundle, test_id, tmp_path):
    bundle.config["linux"].setdefault("resources", {})["memory"] = {"limit": 64 << 20}
    trace = str(tmp_path / "trace.jsonl")
    pid = _run_traced(pyrunc, bundle, test_id, trace)
    moves, forks = _procs_writes(trace)
    assert "fork_into_cgroup" not in forks, forks
    assert moves, "the init is moved in, late"
    assert str(pid) in read(cgroup_file(bundle.config["linux"]["cgroupsPath"], "procs")).split()
    assert pyrunc("delete", "--force", test_id).code == 0
