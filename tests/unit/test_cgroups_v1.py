"""The v1 manager against a plain directory laid out like /sys/fs/cgroup (no root needed):
the files it writes for each resource, what it made, what it removes."""

import errno
import os

import pytest

from pyrunc.errors import CgroupError, UsageError
from pyrunc.linux.cgroups import DEFAULT_ALLOWED_DEVICES, device_rules, resolve
from pyrunc.linux.cgroups.v1 import V1Manager
from pyrunc.starting import frozen_by_record
from tests.unit.fake_cgroup1 import KernelLike
from tests.unit.fake_devices_cgroup import DevicesCgroup

HIERARCHIES = ("cpu,cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "blkio", "systemd")
OWN = {
    "cpu,cpuacct": "/",
    "cpuset": "/",
    "memory": "/supervised",
    "pids": "/",
    "devices": "/",
    "freezer": "/",
    "blkio": "/",
    "name=systemd": "/",
    "": "/",
}


@pytest.fixture
def root(tmp_path):
    for h in HIERARCHIES:
        d = tmp_path / h
        d.mkdir()
        (d / "cgroup.procs").write_text("")
    (tmp_path / "cpu").symlink_to("cpu,cpuacct")
    (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-1\n")
    (tmp_path / "cpuset" / "cpuset.mems").write_text("0\n")
    for name in ("devices.allow", "devices.deny"):
        (tmp_path / "devices" / name).write_text("")
    return tmp_path


def manager(root, path="/pyrunc-test-a/b", files=None, **kw):
    return V1Manager(path, root=str(root), own=OWN, files=files or KernelLike(), **kw)


def touch_files(root, hierarchy, path, *names):
    d = root / hierarchy / path.lstrip("/")
    for n in names:
        (d / n).write_text("")
    return d


def test_create_makes_every_level_in_every_hierarchy_and_remembers_it(root):
    m = manager(root)
    m.create()
    for h in HIERARCHIES:
        assert (root / h / "pyrunc-test-a" / "b").is_dir()
    assert m.made["memory"] == ["/pyrunc-test-a", "/pyrunc-test-a/b"]
    assert m.made_any()


def test_a_relative_path_is_under_our_own_cgroup_in_each_hierarchy(root):
    m = manager(root, "box")
    assert m.dirs["memory"] == "/supervised/box" and m.dirs["pids"] == "/box"


def test_existing_levels_are_joined_not_made(root):
    (root / "memory" / "pyrunc-test-a").mkdir()
    m = manager(root)
    m.create()
    assert m.to_dict()["made"]["memory"] == ["/pyrunc-test-a/b"]


def test_new_cpusets_inherit_their_parents_cpus_and_mems(root):
    m = manager(root)
    m.create()
    leaf = root / "cpuset" / "pyrunc-test-a" / "b"
    assert (leaf / "cpuset.cpus").read_text() == "0-1" and (leaf / "cpuset.mems").read_text() == "0"


def test_add_writes_the_pid_to_every_hierarchy(root):
    m = manager(root)
    m.create()
    m.add(4242)
    assert all((root / h / "pyrunc-test-a" / "b" / "cgroup.procs").read_text() == "4242" for h in HIERARCHIES)


def test_state_round_trip(root):
    m = manager(root)
    m.create()
    again = V1Manager.from_dict(m.to_dict(), root=str(root))
    assert again.to_dict() == m.to_dict()


def test_one_path_made_alike_everywhere_is_saved_once(root):
    """The usual record (an absolute cgroupsPath made afresh): `dir` and `made` once, the
    hierarchies by name; `list` parses a thousand of them.  Read back, it is the same
    manager: each hierarchy's controllers those its name says."""
    m = manager(root)
    m.create()
    saved = m.to_dict()
    assert saved == {
        "version": 1,
        "hybrid": False,
        "dir": "/pyrunc-test-a/b",
        "made": ["/pyrunc-test-a", "/pyrunc-test-a/b"],
        "hierarchies": ["blkio", "cpu,cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd"],
    }
    again = V1Manager.from_dict(saved, root=str(root))
    assert (again.dirs, again.made, again.controllers) == (m.dirs, m.made, m.controllers)
    assert again.controllers["cpu,cpuacct"] == {"cpu", "cpuacct"} and again.controllers["systemd"] == {"name=systemd"}
    assert again.made_leaf() and again.made_any()


def test_on_a_hybrid_host_the_compact_record_lists_the_unified_hierarchys_controllers(root):
    (root / "unified").mkdir()
    (root / "unified" / "cgroup.procs").write_text("")
    (root / "unified" / "cgroup.subtree_control").write_text("pids hugetlb\n")
    m = manager(root, hybrid=True)
    m.create()
    saved = m.to_dict()
    assert saved["hierarchies"][-1] == "unified" and saved["unified"] == ["hugetlb", "pids"]
    again = V1Manager.from_dict(saved, root=str(root))
    assert (again.dirs, again.made, again.controllers) == (m.dirs, m.made, m.controllers)
    assert again.controllers["unified"] == {"pids", "hugetlb"}


def test_controllers_other_than_a_hierarchys_name_says_are_saved_per_hierarchy(root):
    """A record read from a state before the compact form keeps what it says, and is
    written back in its own form (from_dict then makes the same manager again)."""
    m = manager(root)
    m.create()
    m.controllers["memory"] = {"memory", "other"}
    saved = m.to_dict()
    assert saved["controllers"]["memory"] == ["memory", "other"] and "hierarchies" not in saved
    assert V1Manager.from_dict(saved, root=str(root)).controllers == m.controllers


@pytest.mark.parametrize("how", ["relative", "a level there in one hierarchy", "not made yet"])
def test_paths_that_differ_between_hierarchies_are_saved_per_hierarchy(root, how):
    if how == "a level there in one hierarchy":
        (root / "memory" / "pyrunc-test-a").mkdir()
    m = manager(root, "box" if how == "relative" else "/pyrunc-test-a/b")
    if how != "not made yet":
        m.create()
    saved = m.to_dict()
    assert "dir" not in saved and "hierarchies" not in saved and saved["dirs"] == m.dirs and saved["made"] == m.made
    again = V1Manager.from_dict(saved, root=str(root))
    assert again.to_dict() == saved


def test_a_record_of_either_form_destroys_the_same(root):
    """A state written before the compact record (dirs and made per hierarchy) and one
    written after load the same manager: delete removes the same directories."""
    m = manager(root)
    m.create()
    compact = m.to_dict()
    full = {
        "version": 1,
        "hybrid": False,
        "dirs": dict(m.dirs),
        "made": {k: list(v) for k, v in m.made.items()},
        "controllers": {k: sorted(v) for k, v in m.controllers.items()},
    }
    old = V1Manager.from_dict(full, root=str(root), files=KernelLike())
    new = V1Manager.from_dict(compact, root=str(root), files=KernelLike())
    assert (old.dirs, old.made, old.controllers) == (new.dirs, new.made, new.controllers)
    assert old.to_dict() == compact  # the same manager saves the compact form
    new.destroy()
    assert not any((root / h / "pyrunc-test-a").exists() for h in HIERARCHIES)


def test_destroy_removes_what_it_made_children_first_and_nothing_else(root):
    (root / "pids" / "pyrunc-test-a").mkdir()
    m = manager(root)
    m.create()
    (root / "memory" / "pyrunc-test-a" / "b" / "child" / "grandchild").mkdir(parents=True)
    m.destroy()
    assert not (root / "memory" / "pyrunc-test-a").exists()
    assert (root / "pids" / "pyrunc-test-a").is_dir()  # it was there before: joined, kept
    assert not (root / "pids" / "pyrunc-test-a" / "b").exists()


def test_destroy_of_a_create_that_made_only_the_parent_leaves_the_leaf_to_its_maker(root):
    """Two creates raced for one cgroupsPath: this one made the parent, the other the leaf."""
    m = manager(root)
    m.create()
    m.made = {name: made[:-1] for name, made in m.made.items()}
    m.destroy()
    assert (root / "memory" / "pyrunc-test-a" / "b").is_dir()


def test_memory_files(root):
    m = manager(root)
    m.create()
    d = touch_files(
        root,
        "memory",
        m.dirs["memory"],
        "memory.limit_in_bytes",
        "memory.memsw.limit_in_bytes",
        "memory.soft_limit_in_bytes",
        "memory.swappiness",
        "memory.oom_control",
        "memory.kmem.limit_in_bytes",
        "memory.kmem.tcp.limit_in_bytes",
        "memory.use_hierarchy",
    )
    m.set(
        {
            "memory": {
                "limit": 100,
                "swap": 200,
                "reservation": 50,
                "swappiness": 3,
                "disableOOMKiller": True,
                "kernel": 7,
                "kernelTCP": 8,
                "useHierarchy": True,
            }
        }
    )
    got = {n: (d / n).read_text() for n in os.listdir(d) if n.startswith("memory.")}
    assert got == {
        "memory.limit_in_bytes": "100",
        "memory.memsw.limit_in_bytes": "200",
        "memory.soft_limit_in_bytes": "50",
        "memory.swappiness": "3",
        "memory.oom_control": "1",
        "memory.kmem.limit_in_bytes": "7",
        "memory.kmem.tcp.limit_in_bytes": "8",
        "memory.use_hierarchy": "1",
    }


@pytest.mark.parametrize(
    "weights, written",
    [
        ({"weight": 0, "leafWeight": 0}, {"blkio.bfq.weight": "", "blkio.leaf_weight": ""}),
        ({"weight": 500, "leafWeight": 300}, {"blkio.bfq.weight": "500", "blkio.leaf_weight": "300"}),
    ],
)
def test_blkio_weight_zero_means_unset(root, weights, written):
    """Docker sends blockIO.weight 0 for every container; runc reads it as unset, and the
    kernel refuses 0 (ERANGE)."""
    m = manager(root)
    m.create()
    d = touch_files(root, "blkio", m.dirs["blkio"], "blkio.bfq.weight", "blkio.leaf_weight")
    m.set({"blockIO": weights})
    assert {n: (d / n).read_text() for n in written} == written


def test_raising_memory_above_memsw_without_swap_says_what_to_do(root):
    m = manager(root)
    m.create()
    d = touch_files(root, "memory", m.dirs["memory"], "memory.limit_in_bytes", "memory.memsw.limit_in_bytes")
    (d / "memory.memsw.limit_in_bytes").write_text("1000")
    with pytest.raises(CgroupError, match=r"linux.resources.memory.limit: 2000 is above the memory\+swap limit"):
        m.set({"memory": {"limit": 2000}}, update=True)


def test_docker_updates_zero_cpu_values_as_unset(root):
    """`docker update` sends the whole LinuxResources with zeros for what it leaves alone."""
    m = manager(root)
    m.create()
    names = ("cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.rt_period_us", "cpu.rt_runtime_us")
    d = touch_files(root, "cpu,cpuacct", m.dirs["cpu,cpuacct"], *names)
    m.set({"cpu": {"shares": 0, "period": 0, "quota": 0, "realtimePeriod": 0, "realtimeRuntime": 0}}, update=True)
    assert {n: (d / n).read_text() for n in names} == dict.fromkeys(names, "")


def test_cpu_files_and_cpuset(root):
    m = manager(root)
    m.create()
    d = touch_files(
        root,
        "cpu,cpuacct",
        m.dirs["cpu,cpuacct"],
        "cpu.shares",
        "cpu.cfs_quota_us",
        "cpu.cfs_period_us",
        "cpu.cfs_burst_us",
        "cpu.idle",
    )
    m.set({"cpu": {"shares": 512, "quota": 1000, "period": 2000, "burst": 10, "idle": 1, "cpus": "1", "mems": "0"}})
    assert [
        (d / n).read_text()
        for n in ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.cfs_burst_us", "cpu.idle")
    ] == ["512", "1000", "2000", "10", "1"]
    assert (root / "cpuset" / "pyrunc-test-a" / "b" / "cpuset.cpus").read_text() == "1"


@pytest.mark.parametrize("limit, written", [(-1, "max"), (0, "0"), (12, "12")])
def test_pids_limit_negative_is_max_and_zero_is_zero(root, limit, written):
    m = manager(root)
    m.create()
    d = touch_files(root, "pids", m.dirs["pids"], "pids.max")
    m.set({"pids": {"limit": limit}})
    assert (d / "pids.max").read_text() == written


@pytest.mark.parametrize(
    "resources, field, why",
    [
        ({"network": {"classID": 7}}, "linux.resources.network.classID", "no net_cls cgroup controller"),
        (
            {"network": {"priorities": [{"name": "eth0", "priority": 1}]}},
            "linux.resources.network.priorities",
            "no net_prio cgroup controller",
        ),
        ({"rdma": {"mlx": {"hcaHandles": 1}}}, "linux.resources.rdma.mlx", "no rdma cgroup controller"),
        (
            {"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]},
            "linux.resources.hugepageLimits[0]",
            "no hugetlb cgroup controller",
        ),
        ({"unified": {"memory.high": "1"}}, "linux.resources.unified", "needs a cgroup v2 host"),
        ({"memory": {"limit": 5}}, "linux.resources.memory.limit", "no memory.limit_in_bytes"),
    ],
)
def test_what_the_host_lacks_is_refused_naming_the_field(root, resources, field, why):
    m = manager(root)
    m.create()
    with pytest.raises(CgroupError) as e:
        m.set(resources)
    assert e.value.field == field and why in str(e.value)


class DevicesKernel(KernelLike):
    """Writes to devices.allow / devices.deny go to a model of the kernel's devices
    cgroup, which keeps devices.list; every write is recorded in `writes`, in order."""

    def __init__(self):
        self.cgroups, self.writes = {}, []

    def write(self, path, value, field):
        d, name = os.path.split(path)
        self.writes.append((name, value))
        if name in ("devices.allow", "devices.deny"):
            cg = self.cgroups.setdefault(d, DevicesCgroup())
            cg.write(name == "devices.allow", value)
            with open(os.path.join(d, "devices.list"), "w") as f:
                f.write(cg.listed())
        else:
            super().write(path, value, field)


@pytest.fixture
def devices_kernel():
    return DevicesKernel()


def created(root, files):
    """A manager of /pyrunc-test-a/b through `files`, its cgroup made; the writes of the
    making (cpuset's) are not among files.writes."""
    m = manager(root, files=files)
    m.create()
    files.writes.clear()
    return m


DENY_ALL = {"allow": False, "access": "rwm"}
NULL_RW = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}


def test_a_new_cgroup_gets_deny_all_then_the_allows(root, devices_kernel):
    m = created(root, devices_kernel)
    (root / "devices" / "pyrunc-test-a" / "b" / "devices.list").write_text("a *:* rwm\n")
    m.set({"devices": [DENY_ALL, NULL_RW]})
    assert devices_kernel.writes == [("devices.deny", "a *:* rwm"), ("devices.allow", "c 1:3 rw")]
    assert (root / "devices" / "pyrunc-test-a" / "b" / "devices.list").read_text() == "c 1:3 rw\n"


def test_joining_a_cgroup_with_the_same_list_writes_nothing(root, devices_kernel):
    """A second container in a cgroup that already holds the rules (a pod's) does not
    take /dev/null from the first one for a moment."""
    m = created(root, devices_kernel)
    d = root / "devices" / "pyrunc-test-a" / "b"
    (d / "devices.list").write_text("c 1:3 rw\n")
    (d / "cgroup.procs").write_text(f"{os.getpid()}\n")
    m.set({"devices": [DENY_ALL, NULL_RW]})
    assert devices_kernel.writes == []


def test_a_reset_in_a_busy_cgroup_happens_frozen(root, devices_kernel):
    m = created(root, devices_kernel)
    d = root / "devices" / "pyrunc-test-a" / "b"
    (d / "devices.list").write_text("a *:* rwm\n")
    (d / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (root / "freezer" / "pyrunc-test-a" / "b" / "freezer.state").write_text("THAWED\n")
    m.set({"devices": [DENY_ALL, NULL_RW]})
    assert devices_kernel.writes == [
        ("freezer.state", "FROZEN"),
        ("devices.deny", "a *:* rwm"),
        ("devices.allow", "c 1:3 rw"),
        ("freezer.state", "THAWED"),
    ]


class IgnoringKernel(KernelLike):
    def write(self, path, value, field):
        pass


def test_a_list_the_kernel_did_not_keep_is_an_error(root):
    """devices.list is read back: a write the kernel ignored is not taken for done."""
    m = manager(root, files=IgnoringKernel())
    m.create()
    (root / "devices" / "pyrunc-test-a" / "b" / "devices.list").write_text("a *:* rwm\n")
    with pytest.raises(CgroupError, match="another device list") as e:
        m.set({"devices": [DENY_ALL, NULL_RW]})
    assert e.value.field == "linux.resources.devices"


def test_device_rules_are_the_configs_then_runcs_defaults_and_nothing_else():
    """As runc 1.1: linux.devices (a node to make) adds no rule; devices.list of a runc
    container with `deny all` and /dev/kmsg in linux.devices lacks c 1:11."""
    config_rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 4, "access": "r"}]
    rules = device_rules({"devices": config_rules})
    assert rules[:2] == config_rules
    assert rules[2:] == [dict(r) for r in DEFAULT_ALLOWED_DEVICES]
    assert device_rules({}) == [dict(r) for r in DEFAULT_ALLOWED_DEVICES]


@pytest.mark.parametrize(
    "path, own, expected",
    [
        ("/a/b", "/x", "/a/b"),
        ("box", "/x/y", "/x/y/box"),
        ("box", "/", "/box"),
        ("/a//b/", "/", "/a/b"),
    ],
)
def test_resolve(path, own, expected):
    assert resolve(path, own) == expected


@pytest.mark.parametrize(
    "text, value",
    [("512", 512), ("64m", 64 << 20), ("1g", 1 << 30), ("2K", 2048), ("1.5m", 3 << 19), ("-1", -1), ("10mb", 10 << 20)],
)
def test_update_byte_values(text, value):
    from pyrunc.cli.update import parse_bytes

    assert parse_bytes(text, "memory") == value


@pytest.mark.parametrize("text", ["lots", "5x", "-5", ""])
def test_bad_update_byte_values(text):
    from pyrunc.cli.update import parse_bytes

    with pytest.raises(UsageError, match="--memory"):
        parse_bytes(text, "memory")


@pytest.mark.parametrize("text, seconds", [("5s", 5), ("100ms", 0.1), ("1m30s", 90), ("1h", 3600)])
def test_event_intervals(text, seconds):
    from pyrunc.cli.commands import _duration

    assert _duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "s", "0s", "5 s"])
def test_bad_event_intervals(text):
    from pyrunc.cli.commands import _duration

    with pytest.raises(UsageError):
        _duration(text)


@pytest.mark.parametrize("state, stopped", [("THAWED", False), ("FREEZING", True), ("FROZEN", True)])
def test_stopped_by_freezer_reads_the_effective_freezer_state(root, state, stopped):
    m = manager(root)
    m.create()
    (root / "freezer" / "pyrunc-test-a" / "b" / "freezer.state").write_text(state + "\n")
    assert m.stopped_by_freezer() is stopped
    # start reads the same from the state's record, without the managers
    assert frozen_by_record(m.to_dict(), str(root)) is stopped
    assert frozen_by_record(_per_hierarchy(m.to_dict()), str(root)) is stopped


def test_stopped_by_freezer_sees_cgroup2_freezing_the_unified_hierarchy_of_a_hybrid_host(root):
    (root / "unified").mkdir()
    for name in ("cgroup.procs", "cgroup.subtree_control", "cgroup.freeze", "cgroup.events"):
        (root / "unified" / name).write_text("")
    m = manager(root, hybrid=True)
    m.create()
    (root / "freezer" / "pyrunc-test-a" / "b" / "freezer.state").write_text("THAWED\n")
    events = root / "unified" / "pyrunc-test-a" / "b" / "cgroup.events"
    events.write_text("populated 0\nfrozen 0\n")
    assert not m.stopped_by_freezer()
    assert not frozen_by_record(m.to_dict(), str(root))
    events.write_text("populated 0\nfrozen 1\n")  # an ancestor's cgroup.freeze shows only here
    assert m.stopped_by_freezer()
    assert frozen_by_record(m.to_dict(), str(root))
    assert frozen_by_record(_per_hierarchy(m.to_dict()), str(root))


def _per_hierarchy(saved):
    """The per-hierarchy form of a compact v1 record (a state from before version 2)."""
    if "dirs" in saved:
        return saved
    from pyrunc.linux.cgroups.v1 import UNIFIED, named_controllers

    names = saved["hierarchies"]
    return {
        "version": 1,
        "hybrid": saved.get("hybrid", False),
        "controllers": {n: sorted(saved[UNIFIED] if n == UNIFIED else named_controllers(n)) for n in names},
        "dirs": dict.fromkeys(names, saved["dir"]),
        "made": {n: list(saved["made"]) for n in names},
    }


def test_start_reads_the_cgroup_mount_root_the_managers_use():
    from pyrunc import starting
    from pyrunc.linux import cgroups
    from pyrunc.linux.cgroups import v1

    assert starting.CGROUP_MOUNT_ROOT == cgroups.CGROUP_MOUNT_ROOT
    assert starting._UNIFIED == v1.UNIFIED


class CfsKernel(KernelLike):
    """Checks the cpu.cfs_period_us and cpu.cfs_quota_us writes as the v1 kernel does."""

    def __init__(self, root):
        self.root = root

    def write(self, path, text, field):
        name = os.path.basename(path)
        if name in ("cpu.cfs_period_us", "cpu.cfs_quota_us"):
            d = self.root / os.path.relpath(os.path.dirname(path), self.root)
            period = int(text) if name == "cpu.cfs_period_us" else _value(d, "cpu.cfs_period_us")
            quota = int(text) if name == "cpu.cfs_quota_us" else _value(d, "cpu.cfs_quota_us")
            pq, pp = _value(d.parent, "cpu.cfs_quota_us"), _value(d.parent, "cpu.cfs_period_us")
            if quota != -1 and pq != -1 and quota * pp > pq * period:
                raise CgroupError(field, f"write {text!r} to {path}: invalid argument", errno.EINVAL)
        super().write(path, text, field)


def _value(d, name):
    return int((d / name).read_text().strip())


@pytest.fixture
def cfs(root):
    """A container cgroup under a pod cgroup with a CPU limit, whose cpu.cfs_period_us and
    cpu.cfs_quota_us writes are checked as the v1 kernel checks them: the cgroup's
    quota/period, with the other file as it stands, may not exceed its parent's (EINVAL);
    -1 is no quota.  Returns (manager, pod dir, container dir)."""
    m = manager(root, files=CfsKernel(root))
    m.create()
    pod, box = root / "cpu,cpuacct" / "pyrunc-test-a", root / "cpu,cpuacct" / "pyrunc-test-a" / "b"
    for d, quota, period in ((pod, 50000, 100000), (box, -1, 100000)):
        (d / "cpu.cfs_quota_us").write_text(f"{quota}\n")
        (d / "cpu.cfs_period_us").write_text(f"{period}\n")
    return m, pod, box


def _cfs(box):
    return [int((box / n).read_text()) for n in ("cpu.cfs_quota_us", "cpu.cfs_period_us")]


@pytest.mark.parametrize(
    "before, after",
    [
        ((50000, 100000), (25000, 50000)),  # period first: 50000/50000 is over the pod's half
        ((25000, 50000), (50000, 100000)),  # quota first: 50000/50000 is over it
        ((-1, 100000), (20000, 40000)),
        ((50000, 100000), (50000, 200000)),
    ],
)
def test_period_and_quota_are_written_in_the_order_the_pods_limit_allows(cfs, before, after):
    m, _, box = cfs
    m.set({"cpu": {"quota": before[0], "period": before[1]}})
    assert _cfs(box) == list(before)
    m.set({"cpu": {"quota": after[0], "period": after[1]}}, update=True)
    assert _cfs(box) == list(after)


def test_a_quota_beyond_the_pods_limit_is_refused_whatever_the_order(cfs):
    m, _, box = cfs
    with pytest.raises(CgroupError) as e:
        m.set({"cpu": {"quota": 60000, "period": 100000}}, update=True)
    assert e.value.field == "linux.resources.cpu.quota" and "invalid argument" in str(e.value)
    assert _cfs(box) == [-1, 100000]


def test_a_period_alone_that_the_quota_does_not_fit_is_refused_naming_the_period(cfs):
    m, _, box = cfs
    m.set({"cpu": {"quota": 50000, "period": 100000}})
    with pytest.raises(CgroupError) as e:
        m.set({"cpu": {"period": 50000}}, update=True)
    assert e.value.field == "linux.resources.cpu.period"
    assert _cfs(box) == [50000, 100000]


# Found by mypy (issue 20): a v1 host without the controller a field needs gave a
# traceback (KeyError, ValueError) instead of the error naming the field.
@pytest.mark.parametrize(
    "resources, field, why",
    [
        ({"cpu": {"realtimeRuntime": 950000}}, "linux.resources.cpu.realtimeRuntime", "no cpu cgroup controller"),
        (
            {"memory": {"limit": 5, "checkBeforeUpdate": True}},
            "linux.resources.memory.limit",
            "no memory cgroup controller",
        ),
    ],
)
def test_update_on_a_host_without_the_controller_names_the_field(root, resources, field, why):
    import shutil

    for h in ("memory", "cpu,cpuacct"):
        shutil.rmtree(root / h)
    (root / "cpu").unlink()
    m = manager(root)
    m.create()
    with pytest.raises(CgroupError) as e:
        m.set(resources, update=True)
    assert e.value.field == field and why in str(e.value)
