"""Where the container's processes run and allocate: `process.execCPUAffinity` (exec'd
processes only, `initial` before the cgroup, `final` after) and `linux.memoryPolicy`
(set_mempolicy(2) for the init and every exec), seen from inside the container."""

import ast
import json
import os

import pytest

from pyrunc.linux import placement
from tests.integration.cli_util import assert_nothing_left, last_error, set_args
from tests.integration.trace_util import traced

ALL_CPUS = os.sched_getaffinity(0)
two_cpus = pytest.mark.skipif(not {0, 1} <= ALL_CPUS, reason="needs CPUs 0 and 1")


def status_field(text, name):
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in {text!r}")


@pytest.fixture
def running(pyrunc, bundle, test_id):
    def start(**affinity):
        set_args(bundle, "sleep", "1000")
        if affinity:
            bundle.config["process"]["execCPUAffinity"] = affinity
            bundle.write()
        r = pyrunc("run", "-d", "--bundle", bundle.path, test_id)
        assert r.code == 0, r
        return test_id

    return start


def exec_process(pyrunc, cid, tmp_path, affinity):
    """exec -p with a process whose execCPUAffinity is `affinity`; its /proc/self/status."""
    process = {
        "args": ["cat", "/proc/self/status"],
        "cwd": "/",
        "env": ["PATH=/bin"],
        "user": {"uid": 0, "gid": 0},
        "execCPUAffinity": affinity,
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    return pyrunc("exec", "--process", str(path), cid)


@two_cpus
def test_final_affinity_is_what_the_exec_process_runs_on(pyrunc, running, tmp_path):
    cid = running()
    r = exec_process(pyrunc, cid, tmp_path, {"initial": "1", "final": "0"})
    assert r.code == 0, r
    assert status_field(r.out, "Cpus_allowed_list") == "0"


@two_cpus
def test_initial_affinity_alone_stays_when_the_cgroup_allows_it(pyrunc, running, tmp_path):
    cid = running()
    r = exec_process(pyrunc, cid, tmp_path, {"initial": "1"})
    assert r.code == 0, r
    assert status_field(r.out, "Cpus_allowed_list") == "1"


@two_cpus
def test_initial_affinity_comes_before_the_cgroup_and_final_after(pyrunc, bundle, running, tmp_path):
    """A cpuset of CPU 0 in the container's cgroup: `initial` CPU 1 is set before the move,
    which then narrows the process to CPU 0; `final` CPU 1, set after the move, is one
    the cgroup does not allow, and the kernel refuses it."""
    bundle.config["linux"]["resources"] = {"cpu": {"cpus": "0"}}
    cid = running()
    r = exec_process(pyrunc, cid, tmp_path, {"initial": "1"})
    assert r.code == 0, r
    assert status_field(r.out, "Cpus_allowed_list") == "0"
    r = exec_process(pyrunc, cid, tmp_path, {"final": "1"})
    assert r.code != 0 and len(r.err.splitlines()) == 1, r
    assert "process.execCPUAffinity.final '1'" in r.err, r


@two_cpus
def test_config_affinity_applies_to_exec_but_not_to_the_init(pyrunc, running):
    cid = running(final="1")
    init = pyrunc.state(cid)["pid"]
    assert os.sched_getaffinity(init) == ALL_CPUS  # the spec: not applicable to the init
    r = pyrunc("exec", cid, "cat", "/proc/self/status")
    assert r.code == 0, r
    assert status_field(r.out, "Cpus_allowed_list") == "1"


@pytest.mark.parametrize(
    "value, why",
    [
        ("1-0", "reversed"),
        ("0-x", "does not match"),
        ("0,,1", "not a list"),
        ("0-4000000000", "past the last"),
        ("8000", "no CPU this host has online"),
    ],
)
def test_a_bad_cpu_list_fails_exec_in_one_line_naming_field_and_value(pyrunc, running, tmp_path, value, why):
    cid = running()
    r = exec_process(pyrunc, cid, tmp_path, {"final": value})
    assert r.code == 255 and len(r.err.splitlines()) == 1, r  # runc's status for a failed exec
    assert "process.execCPUAffinity.final" in r.err and value[:8] in r.err and why in r.err, r
    assert "process.execCPUAffinity.final" in last_error(pyrunc.log)


def test_a_bad_cpu_list_fails_create_and_leaves_nothing(pyrunc, bundle, test_id):
    bundle.config["process"]["execCPUAffinity"] = {"initial": "3,1-0"}
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and len(r.err.splitlines()) == 1, r
    assert "process.execCPUAffinity.initial" in r.err and "'3,1-0'" in r.err, r
    assert_nothing_left(pyrunc, test_id, bundle)


# -- linux.memoryPolicy ----------------------------------------------------------------


def run_with_policy(pyrunc, bundle, test_id, policy, script):
    bundle.config["linux"]["memoryPolicy"] = policy
    set_args(bundle, "sh", "-c", script)
    return pyrunc("run", "--bundle", bundle.path, test_id)


def heap_policy(numa_maps):
    """The policy of the [heap] (or, failing that, the first) mapping in numa_maps."""
    lines = numa_maps.splitlines()
    for line in lines:
        if "heap" in line:
            return line.split()[1]
    return lines[0].split()[1]


@pytest.mark.parametrize(
    "policy, shown",
    [
        ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
        ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
        ({"mode": "MPOL_PREFERRED", "nodes": "0"}, "prefer:0"),
        ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "bind=static:0"),
        ({"mode": "MPOL_LOCAL"}, "local"),
    ],
)
def test_memory_policy_is_the_inits_and_its_programs(pyrunc, bundle, test_id, policy, shown):
    if not os.path.exists("/proc/self/numa_maps"):
        pytest.skip("the kernel has no NUMA support (no /proc/self/numa_maps)")
    r = run_with_policy(pyrunc, bundle, test_id, policy, "cat /proc/self/numa_maps")
    assert r.code == 0, r
    assert heap_policy(r.out) == shown, r


def test_memory_policy_reaches_an_exec_process(pyrunc, bundle, test_id):
    if not os.path.exists("/proc/self/numa_maps"):
        pytest.skip("the kernel has no NUMA support (no /proc/self/numa_maps)")
    bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_INTERLEAVE", "nodes": "0"}
    set_args(bundle, "sleep", "1000")
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id).code == 0
    r = pyrunc("exec", test_id, "cat", "/proc/self/numa_maps")
    assert r.code == 0, r
    assert heap_policy(r.out) == "interleave:0", r


@pytest.mark.parametrize(
    "policy, field, words",
    [
        ({"mode": "MPOL_BIND"}, "linux.memoryPolicy.nodes", "needs at least one node"),
        ({"mode": "MPOL_LOCAL", "nodes": "0"}, "linux.memoryPolicy.nodes", "takes no nodes"),
        ({"mode": "MPOL_BIND", "nodes": "5-6"}, "linux.memoryPolicy.nodes", "'5-6' names no memory node"),
        ({"mode": "MPOL_BIND", "nodes": "0-99999999"}, "linux.memoryPolicy.nodes", "past the last"),
        (
            {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]},
            "linux.memoryPolicy.flags",
            "exclude each other",
        ),
        (
            {"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]},
            "linux.memoryPolicy.flags",
            "MPOL_F_NUMA_BALANCING",
        ),
        ({"mode": "MPOL_SOMETHING", "nodes": "0"}, "linux.memoryPolicy.mode", "MPOL_SOMETHING"),
        ({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]}, "linux.memoryPolicy.flags", "MPOL_F_NOPE"),
    ],
)
def test_a_bad_memory_policy_fails_create_in_one_line(pyrunc, bundle, test_id, policy, field, words):
    bundle.config["linux"]["memoryPolicy"] = policy
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and len(r.err.splitlines()) == 1, r
    assert field in r.err and words in r.err, r
    assert field in last_error(pyrunc.log)
    assert_nothing_left(pyrunc, test_id, bundle)


# -- linux.intelRdt where the host has no resctrl ----------------------------------------

no_resctrl = pytest.mark.skipif(os.path.exists("/sys/fs/resctrl/schemata"), reason="the host has resctrl mounted")


@no_resctrl
def test_intel_rdt_without_resctrl_fails_create_in_one_line_and_leaves_nothing(pyrunc, bundle, test_id):
    bundle.config["linux"]["intelRdt"] = {"l3CacheSchema": "L3:0=7f0"}
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and len(r.err.splitlines()) == 1, r
    assert "linux.intelRdt: no resctrl filesystem is mounted at /sys/fs/resctrl" in r.err, r
    assert "linux.intelRdt" in last_error(pyrunc.log)
    assert_nothing_left(pyrunc, test_id, bundle)


@no_resctrl
@pytest.mark.parametrize("flag, value", [("--l3-cache-schema", "L3:0=7f0"), ("--mem-bw-schema", "MB:0=20")])
def test_update_rdt_schema_without_resctrl_is_a_one_line_error(pyrunc, running, flag, value):
    cid = running()
    r = pyrunc("update", flag, value, cid)
    assert r.code == 1 and len(r.err.splitlines()) == 1, r
    assert f"{flag}: no resctrl filesystem is mounted" in r.err, r
    assert flag in last_error(pyrunc.log)


def test_update_rdt_schema_of_the_wrong_form_is_a_usage_error(pyrunc, running):
    cid = running()
    r = pyrunc("update", "--mem-bw-schema", "L3:0=7f0", cid)
    assert r.code != 0 and len(r.err.splitlines()) == 1, r
    assert "--mem-bw-schema" in r.err and "'L3:0=7f0'" in r.err and "MB:" in r.err, r


def cpu_list(text):
    return placement.parse_list(text.replace(" ", ""))


def traced_run_of_cat_status(pyrunc, bundle, test_id, tmp_path):
    """`run` of `cat /proc/self/status`, traced: its Cpus_allowed and the sched_setaffinity
    calls (all the child's: the first comes before its trace names it the init)."""
    set_args(bundle, "cat", "/proc/self/status")
    r, records = traced(pyrunc, str(tmp_path / "trace.jsonl"), "run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    pins = [
        ast.literal_eval(c["args"]["cpus"]) for c in records if c["t"] == "call" and c["name"] == "sched_setaffinity"
    ]
    return cpu_list(status_field(r.out, "Cpus_allowed_list")), pins


EVERY_CPU = set(range(os.cpu_count()))


@pytest.mark.skipif(ALL_CPUS != EVERY_CPU or len(EVERY_CPU) < 2, reason="needs two CPUs, all allowed to the tests")
def test_create_builds_the_container_apart_from_the_runtime_then_gives_it_every_cpu(pyrunc, bundle, test_id, tmp_path):
    """spawn.cpus_apart: create's child builds the container off the CPU the runtime runs
    on, and is set back to every CPU; the container's process runs where it would have
    without that."""
    allowed, pins = traced_run_of_cat_status(pyrunc, bundle, test_id, tmp_path)
    assert allowed == EVERY_CPU
    apart, back = pins
    assert apart and apart < EVERY_CPU and back == EVERY_CPU, pins


@two_cpus
def test_a_runtime_on_fewer_cpus_builds_the_container_where_it_is_pinned(pyrunc, bundle, test_id, tmp_path):
    """A runtime given fewer CPUs (taskset) may carry a mask the kernel keeps across cpuset
    changes: its container keeps it, and is never pinned apart."""
    os.sched_setaffinity(0, {1})  # inherited by the runtime
    try:
        allowed, pins = traced_run_of_cat_status(pyrunc, bundle, test_id, tmp_path)
    finally:
        os.sched_setaffinity(0, ALL_CPUS)
    assert allowed == {1} and pins == [], pins
