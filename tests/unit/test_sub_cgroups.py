"""exec --cgroup: the values' syntax (runc's [<controller>[,...]:]<path>) and the v1 and
v2 managers' sub-cgroups, against plain directories laid out like cgroupfs."""

import os

import pytest

from pyrunc.errors import CgroupError, UsageError
from pyrunc.linux.cgroups import sub
from pyrunc.linux.cgroups.v1 import V1Manager
from pyrunc.linux.cgroups.v2 import V2Manager

CG = "/pyrunc-test-a/b"


@pytest.mark.parametrize(
    "values, parsed",
    [
        (["x"], {"": "x"}),
        ([":x/y"], {"": "x/y"}),
        (["x//y/./"], {"": "x/y"}),
        (["memory:x"], {"memory": "x"}),
        (["memory,pids:x", "cpu:y"], {"memory": "x", "pids": "x", "cpu": "y"}),
        ([], {}),
    ],
)
def test_values_parse_as_runc_reads_them(values, parsed):
    assert sub.parse(values) == parsed


@pytest.mark.parametrize(
    "values, why",
    [
        (["/x"], "not absolute"),
        (["../x"], "'..' is not allowed"),
        (["x/../../y"], "'..' is not allowed"),
        (["memory:x/.."], "'..' is not allowed"),
        ([""], "empty cgroup path"),
        (["memory:"], "empty cgroup path"),
        (["."], "the container's cgroup itself"),
        (["a:b:c"], "with one ':'"),
        (["memory,:x"], "empty controller"),
        (["memory:x", "memory:y"], "memory is given more than once"),
        (["x", "pids:x"], "must be the only --cgroup"),
    ],
)
def test_bad_values_are_refused_naming_the_value(values, why):
    with pytest.raises(UsageError) as e:
        sub.parse(values)
    assert why in str(e.value) and str(e.value).startswith("--cgroup '"), e.value


def _cgroupfs(root, hierarchies, rel):
    for h in hierarchies:
        os.makedirs(os.path.join(root, h, CG.lstrip("/"), rel))
        for d in (
            os.path.join(root, h),
            os.path.join(root, h, CG.lstrip("/")),
            os.path.join(root, h, CG.lstrip("/"), rel),
        ):
            open(os.path.join(d, "cgroup.procs"), "a").close()


def _v1(tmp_path):
    _cgroupfs(str(tmp_path), ("memory", "pids", "cpu,cpuacct"), "s")
    return V1Manager(CG, root=str(tmp_path), own={})


def test_v1_a_path_alone_is_for_every_hierarchy(tmp_path):
    mgr = _v1(tmp_path)
    dirs = mgr.sub_dirs(sub.parse(["s"]))
    assert dirs == {h: str(tmp_path / h / CG.lstrip("/") / "s") for h in ("memory", "pids", "cpu,cpuacct")}
    mgr.add(42, dirs)
    for h in ("memory", "pids", "cpu,cpuacct"):
        assert (tmp_path / h / CG.lstrip("/") / "s" / "cgroup.procs").read_text() == "42"
        assert (tmp_path / h / CG.lstrip("/") / "cgroup.procs").read_text() == ""


def test_v1_controllers_choose_their_hierarchies_the_rest_stay(tmp_path):
    mgr = _v1(tmp_path)
    mgr.add(7, mgr.sub_dirs(sub.parse(["cpuacct,memory:s"])))
    assert (tmp_path / "memory" / CG.lstrip("/") / "s" / "cgroup.procs").read_text() == "7"
    assert (tmp_path / "cpu,cpuacct" / CG.lstrip("/") / "s" / "cgroup.procs").read_text() == "7"
    assert (tmp_path / "pids" / CG.lstrip("/") / "cgroup.procs").read_text() == "7"
    assert (tmp_path / "pids" / CG.lstrip("/") / "s" / "cgroup.procs").read_text() == ""


@pytest.mark.parametrize(
    "values, why",
    [
        (["bogus:s"], "no bogus controller on this host"),
        (["memory:nosuch"], "no sub-cgroup 'nosuch' in the container's cgroup /pyrunc-test-a/b (the memory hierarchy)"),
        (["nosuch"], "no sub-cgroup 'nosuch'"),
        (["cpu:s", "cpuacct:t"], "shares the cpu,cpuacct hierarchy"),
    ],
)
def test_v1_refuses_an_unknown_controller_or_a_missing_sub_cgroup(tmp_path, values, why):
    mgr = _v1(tmp_path)
    os.makedirs(tmp_path / "cpu,cpuacct" / CG.lstrip("/") / "t")
    with pytest.raises(CgroupError) as e:
        mgr.sub_dirs(sub.parse(values))
    assert why in str(e.value), e.value


def test_v2_one_path_and_no_controller(tmp_path):
    _cgroupfs(str(tmp_path), ("",), "s/t")
    mgr = V2Manager(CG, root=str(tmp_path), own={})
    dirs = mgr.sub_dirs(sub.parse(["s/t"]))
    mgr.add(9, dirs)
    assert (tmp_path / CG.lstrip("/") / "s" / "t" / "cgroup.procs").read_text() == "9"
    assert (tmp_path / CG.lstrip("/") / "cgroup.procs").read_text() == ""
    with pytest.raises(CgroupError, match="controller memory: cgroup v2 has one hierarchy"):
        mgr.sub_dirs(sub.parse(["memory:s"]))
    with pytest.raises(CgroupError, match="no sub-cgroup 's/u'"):
        mgr.sub_dirs(sub.parse(["s/u"]))
