"""`exec --cgroup`: the process joins an existing sub-cgroup of the container's cgroup,
seen from inside in /proc/self/cgroup, on whatever host this is (hybrid here, pure v2 in
the qemu guest); values that name no such sub-cgroup, or a path out of the container's
cgroup, are refused with one line, exit 255, and no process."""

import json
import os

import pytest
from cg_util import V2, hierarchy_dirs, start_detached

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def container(pyrunc, bundle, test_id):
    """A running container and its cgroups path; its cgroup (and the sub-cgroups the test
    makes in it) go with `delete --force`, which the pyrunc fixture runs."""
    start_detached(pyrunc, bundle, test_id, "sleep 600")
    return bundle.config["linux"]["cgroupsPath"]


def make_sub(cgpath, rel):
    """rel below the container's cgroup in every hierarchy; a v1 cpuset takes a process
    only once it has cpus and mems, copied from its parent."""
    for d in hierarchy_dirs(cgpath):
        cur = d
        for part in rel.split("/"):
            parent, cur = cur, os.path.join(cur, part)
            os.mkdir(cur)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not V2 and os.path.exists(os.path.join(cur, name)):
                    with open(os.path.join(parent, name)) as src, open(os.path.join(cur, name), "w") as dst:
                        dst.write(src.read())


def cgroups_seen(out):
    """{hierarchy key of /proc/self/cgroup ("" for cgroup2): path}."""
    return {ctrls: path for _, ctrls, path in (line.split(":", 2) for line in out.splitlines())}


def test_a_path_alone_joins_the_sub_cgroup_in_every_hierarchy(pyrunc, container, test_id):
    make_sub(container, "pyrunc-test-sub/inner")
    r = pyrunc("exec", "--cgroup", "pyrunc-test-sub/inner", test_id, "cat", "/proc/self/cgroup")
    assert r.code == 0, r
    seen = cgroups_seen(r.out)
    assert set(seen.values()) == {container + "/pyrunc-test-sub/inner"}, r.out
    # The init stays where it was.
    init = pyrunc.state(test_id)["pid"]
    with open(f"/proc/{init}/cgroup") as f:
        assert set(cgroups_seen(f.read()).values()) == {container}


@pytest.mark.skipif(V2, reason="cgroup v1: controllers have hierarchies of their own")
def test_v1_controllers_choose_their_hierarchies(pyrunc, container, test_id):
    make_sub(container, "pyrunc-test-sub")
    make_sub(container, "pyrunc-test-other")
    r = pyrunc(
        "exec",
        "--cgroup",
        "memory,pids:pyrunc-test-sub",
        "--cgroup",
        "freezer:pyrunc-test-other",
        test_id,
        "cat",
        "/proc/self/cgroup",
    )
    assert r.code == 0, r
    seen = cgroups_seen(r.out)
    assert seen["memory"] == seen["pids"] == container + "/pyrunc-test-sub", r.out
    assert seen["freezer"] == container + "/pyrunc-test-other", r.out
    assert {k: v for k, v in seen.items() if k not in ("memory", "pids", "freezer")} == {
        k: container for k in seen if k not in ("memory", "pids", "freezer")
    }, r.out


@pytest.mark.skipif(not V2, reason="cgroup v2: one hierarchy, no controller prefix")
def test_v2_refuses_a_controller_prefix(pyrunc, container, test_id):
    make_sub(container, "pyrunc-test-sub")
    r = pyrunc("exec", "--cgroup", "memory:pyrunc-test-sub", test_id, "true")
    assert r.code == 255 and "cgroup v2 has one hierarchy" in r.err, r


def test_with_a_cgroup_namespace_the_sub_cgroup_is_seen_below_its_root(pyrunc, bundle, test_id):
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    start_detached(pyrunc, bundle, test_id, "sleep 600")
    make_sub(bundle.config["linux"]["cgroupsPath"], "pyrunc-test-sub")
    r = pyrunc("exec", "--cgroup", "pyrunc-test-sub", test_id, "cat", "/proc/self/cgroup")
    assert r.code == 0, r
    assert set(cgroups_seen(r.out).values()) == {"/pyrunc-test-sub"}, r.out


@pytest.mark.parametrize(
    "values, fragment",
    [
        (["/pyrunc-test-sub"], "not absolute"),
        (["../pyrunc-test-sub"], "'..' is not allowed"),
        (["pyrunc-test-sub/../.."], "'..' is not allowed"),
        (["pyrunc-test-nosuch"], "no sub-cgroup 'pyrunc-test-nosuch'"),
        (["a:b:c"], "with one ':'"),
        ([""], "empty cgroup path"),
        (["pyrunc-test-sub", "pids:pyrunc-test-sub"], "must be the only --cgroup"),
    ],
    ids=["absolute", "dotdot", "escape", "missing", "colons", "empty", "alone"],
)
def test_bad_values_are_refused_and_leave_no_process(pyrunc, container, test_id, values, fragment):
    make_sub(container, "pyrunc-test-sub")
    flags = [a for v in values for a in ("--cgroup", v)]
    r = pyrunc("exec", *flags, test_id, "sleep", "600")
    assert r.code == 255 and fragment in r.err and len(r.err.splitlines()) == 1, r
    assert repr(values[0]) in r.err or "pyrunc-test-nosuch" in r.err, r
    with open(pyrunc.log) as f:
        assert fragment in f.read().splitlines()[-1]
    r = pyrunc("ps", "--format", "json", test_id)
    assert json.loads(r.out) == [pyrunc.state(test_id)["pid"]], r
