"""The v2 manager against a plain directory laid out like a cgroup2 mount (no root needed):
the files it writes for each resource, the v1 -> v2 conversions, the errors naming the
field, what it made and what it removes."""

import errno
import json
import posix  # the managers signal through posix.kill (no os on delete's path)
import signal
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import convert, load_manager
from pyrunc.linux.cgroups import v2 as v2mod
from pyrunc.linux.cgroups.v2 import V2Manager, io_stat_entries
from pyrunc.starting import frozen_by_record
from tests.unit.fake_cgroup2 import ALL, KernelLike, existing
from tests.unit.fakekernel import FakeKernel

OWN = {"": "/supervisor/session"}
MiB = 1 << 20


@pytest.fixture
def fs():
    return KernelLike()


@pytest.fixture
def writes(fs):
    """[(file name relative to the root, value)] in the order the manager wrote them."""
    fs.writes.clear()
    return fs.writes


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(v2mod, "_warn", seen.append)
    return seen


@pytest.fixture
def root(tmp_path):
    (tmp_path / "cgroup.controllers").write_text(ALL + "\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "cgroup.procs").write_text("1\n")
    (tmp_path / "cpu.stat").write_text("usage_usec 5\n")
    return tmp_path


def manager(fs, root, path="/pyrunc-test-v2-a/box"):
    return V2Manager(path, root=str(root), own=OWN, files=fs, kernel=FakeKernel())


@pytest.fixture
def made(fs, root):
    m = manager(fs, root)
    m.create()
    return m


def cg(root, path="/pyrunc-test-v2-a/box"):
    return root / path.lstrip("/")


def written(root, log, name, path="/pyrunc-test-v2-a/box"):
    """Values written to one file of the container's cgroup, in order."""
    target = str(cg(root, path) / name)
    return [v for p, v in log if p == target]


# -- where, create, add, destroy --------------------------------------------------------


def test_create_makes_each_missing_level_and_remembers_it_top_most_first(fs, root):
    m = manager(fs, root)
    m.create()
    assert cg(root).is_dir()
    assert m.to_dict() == {
        "version": 2,
        "dir": "/pyrunc-test-v2-a/box",
        "made": ["/pyrunc-test-v2-a", "/pyrunc-test-v2-a/box"],
    }
    assert m.made_any() and m.paths() == {"": "/pyrunc-test-v2-a/box"}


def test_an_existing_cgroup_is_joined_and_only_missing_levels_are_made(fs, root):
    existing(root, "/pyrunc-test-v2-a")
    m = manager(fs, root)
    m.create()
    assert m.to_dict()["made"] == ["/pyrunc-test-v2-a/box"]
    joined = manager(fs, root)
    joined.create()
    assert joined.to_dict()["made"] == [] and not joined.made_any()


def test_a_relative_path_is_under_our_own_cgroup(fs, root):
    assert manager(fs, root, "box").dir == "/supervisor/session/box"
    assert manager(fs, root, "/abs/box").dir == "/abs/box"


def test_state_round_trips_through_json(fs, made, root):
    saved = json.loads(json.dumps(made.to_dict()))
    again = load_manager(saved, root=str(root), files=fs)
    assert isinstance(again, V2Manager) and again.to_dict() == made.to_dict()


def test_create_enables_the_hosts_controllers_from_the_root_down_to_the_parent(fs, root, writes):
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    manager(fs, root, "/pyrunc-test-v2-a/mid/box").create()
    line = "+cpu +memory +pids"
    assert (root / "cgroup.subtree_control").read_text() == line
    assert (root / "pyrunc-test-v2-a" / "cgroup.subtree_control").read_text() == line
    assert (root / "pyrunc-test-v2-a" / "mid" / "cgroup.subtree_control").read_text() == line
    # Not in the container's own cgroup: its init lives there and v2 forbids both.
    assert (root / "pyrunc-test-v2-a" / "mid" / "box" / "cgroup.subtree_control").read_text() == ""


def test_a_parent_that_refuses_all_at_once_gets_them_one_by_one(fs, root, writes):
    fs.refuse_write = lambda path, value: errno.EBUSY if path.endswith("subtree_control") and " " in value else None
    (root / "cgroup.controllers").write_text("cpu memory\n")
    manager(fs, root).create()
    # One at a time (the file keeps the last here; the kernel keeps each).
    assert (root / "cgroup.subtree_control").read_text() == "+memory"


def test_add_writes_the_pid_to_cgroup_procs(made, root):
    made.add(4242)
    assert (cg(root) / "cgroup.procs").read_text() == "4242"


def test_destroy_removes_what_create_made_and_the_child_cgroups_inside(made, root):
    (cg(root) / "sub" / "deeper").mkdir(parents=True)
    made.destroy()
    assert not (root / "pyrunc-test-v2-a").exists()


def test_destroy_never_removes_a_joined_cgroup(fs, root):
    existing(root, "/pyrunc-test-v2-a/box")
    m = manager(fs, root)
    m.create()
    m.destroy()
    assert cg(root).is_dir()


def test_destroy_leaves_a_parent_another_container_still_uses(fs, made, root):
    other = manager(fs, root, "/pyrunc-test-v2-a/other")
    other.create()
    made.destroy()
    assert not cg(root).exists() and cg(root, "/pyrunc-test-v2-a/other").is_dir()
    other.destroy()
    # The parent is not the second container's to remove: it joined it.
    assert not cg(root, "/pyrunc-test-v2-a/other").exists() and (root / "pyrunc-test-v2-a").is_dir()


def test_destroy_of_a_create_that_made_only_the_parent_leaves_the_leaf_to_its_maker(made, root):
    """Two creates raced for one cgroupsPath: this one made the parent, the other the
    leaf.  The leaf is the other's to remove; the parent stays while the leaf is there."""
    made.made = ["/pyrunc-test-v2-a"]
    made.destroy()
    assert cg(root).is_dir()


def test_destroy_refuses_while_processes_are_in_it_and_kills_nothing(made, root, monkeypatch):
    (cg(root) / "cgroup.procs").write_text("4242\n")
    monkeypatch.setattr(posix, "kill", lambda *a: pytest.fail("destroy must not kill"))
    with pytest.raises(CgroupError, match="processes are still in it"):
        made.destroy()
    assert cg(root).is_dir()


def test_a_failed_create_removes_the_levels_it_made(fs, root):
    fs.refuse_mkdir = lambda path: errno.ENOSPC if path.endswith("/box") else None
    with pytest.raises(CgroupError, match="no space left"):
        manager(fs, root).create()
    assert not (root / "pyrunc-test-v2-a").exists()


def test_pids_are_those_of_every_descendant(made, root):
    (cg(root) / "cgroup.procs").write_text("10\n11\n")
    (cg(root) / "sub").mkdir()
    (cg(root) / "sub" / "cgroup.procs").write_text("12\n")
    assert made.pids() == [10, 11, 12]


# -- memory -----------------------------------------------------------------------------


def test_memory_limit_reservation_and_swap(made, root):
    made.set({"memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB}})
    assert (cg(root) / "memory.max").read_text() == str(64 * MiB)
    assert (cg(root) / "memory.low").read_text() == str(32 * MiB)
    # v2 limits swap alone: memory+swap minus memory.
    assert (cg(root) / "memory.swap.max").read_text() == str(32 * MiB)


def test_an_unlimited_memory_limit_lifts_swap_too(made, root, writes):
    made.set({"memory": {"limit": -1}})
    assert written(root, writes, "memory.max") == ["max"]
    assert written(root, writes, "memory.swap.max") == ["max"]


def test_swap_equal_to_the_limit_means_no_swap(made, root):
    made.set({"memory": {"limit": 64 * MiB, "swap": 64 * MiB}})
    assert (cg(root) / "memory.swap.max").read_text() == "0"


def test_unlimited_swap(made, root):
    made.set({"memory": {"limit": 64 * MiB, "swap": -1}})
    assert (cg(root) / "memory.swap.max").read_text() == "max"


@pytest.mark.parametrize(
    "mem, why",
    [
        ({"swap": 96 * MiB}, "needs a memory limit"),
        ({"limit": -1, "swap": 96 * MiB}, "needs a memory limit"),
        ({"limit": 64 * MiB, "swap": 32 * MiB}, "is below the memory limit"),
    ],
)
def test_swap_errors_name_the_field(made, root, writes, mem, why):
    with pytest.raises(CgroupError, match=why) as e:
        made.set({"memory": mem})
    assert e.value.field == "linux.resources.memory.swap"
    assert writes == []


def test_without_swap_accounting_only_a_size_is_refused(made, root, writes):
    (cg(root) / "memory.swap.max").unlink()
    made.set({"memory": {"limit": 64 * MiB, "swap": -1}})
    assert written(root, writes, "memory.max") == [str(64 * MiB)]
    with pytest.raises(CgroupError, match="does not account swap") as e:
        made.set({"memory": {"limit": 64 * MiB, "swap": 96 * MiB}})
    assert e.value.field == "linux.resources.memory.swap"


@pytest.fixture
def swappiness(tmp_path, monkeypatch):
    path = tmp_path / "vm-swappiness"
    path.write_text("60\n")
    monkeypatch.setattr(v2mod, "VM_SWAPPINESS", str(path))


def test_fields_v2_has_no_file_for_are_ignored_with_a_warning(made, root, writes, warnings, swappiness):
    made.set(
        {
            "memory": {
                "kernel": 8 * MiB,
                "kernelTCP": 8 * MiB,
                "swappiness": 7,
                "disableOOMKiller": True,
                "useHierarchy": False,
            }
        }
    )
    assert writes == []
    joined = " | ".join(warnings)
    for key in ("kernel:", "kernelTCP:", "swappiness:", "disableOOMKiller:", "useHierarchy:"):
        assert "linux.resources.memory." + key in joined


def test_what_v2_does_anyway_needs_no_warning(made, warnings, swappiness):
    made.set({"memory": {"disableOOMKiller": False, "useHierarchy": True, "swappiness": 60}})
    assert warnings == []


def test_check_before_update_refuses_a_limit_below_the_usage(made, root, writes):
    (cg(root) / "memory.current").write_text(f"{50 * MiB}\n")
    with pytest.raises(CgroupError, match="below the current usage") as e:
        made.set({"memory": {"limit": 40 * MiB, "checkBeforeUpdate": True}}, update=True)
    assert e.value.field == "linux.resources.memory.limit" and writes == []
    made.set({"memory": {"limit": 60 * MiB, "checkBeforeUpdate": True}}, update=True)
    made.set({"memory": {"limit": 40 * MiB}}, update=True)  # unchecked: the kernel reclaims or kills
    assert written(root, writes, "memory.max") == [str(60 * MiB), str(40 * MiB)]


def test_an_update_of_swap_alone_takes_the_current_limit(made, root, writes):
    (cg(root) / "memory.max").write_text(f"{64 * MiB}\n")
    made.set({"memory": {"swap": 100 * MiB}}, update=True)
    assert written(root, writes, "memory.swap.max") == [str(36 * MiB)]
    assert written(root, writes, "memory.max") == []  # left as it is


def test_an_update_of_the_limit_above_memory_plus_swap_asks_for_swap(made, root):
    made.set({"memory": {"limit": 64 * MiB, "swap": 64 * MiB}})
    with pytest.raises(CgroupError, match="above the container's memory\\+swap limit") as e:
        made.set({"memory": {"limit": 80 * MiB}}, update=True)
    assert e.value.field == "linux.resources.memory.limit"
    made.set({"memory": {"limit": 80 * MiB, "swap": 80 * MiB}}, update=True)
    assert (cg(root) / "memory.swap.max").read_text() == "0"


def test_an_update_lifting_the_limit_lifts_swap_too(made, root):
    made.set({"memory": {"limit": 64 * MiB, "swap": 96 * MiB}})
    made.set({"memory": {"limit": -1}}, update=True)
    assert (cg(root) / "memory.max").read_text() == "max"
    assert (cg(root) / "memory.swap.max").read_text() == "max"


def test_an_update_of_the_limit_alone_keeps_memory_plus_swap(made, root):
    made.set({"memory": {"limit": 64 * MiB, "swap": 96 * MiB}})
    made.set({"memory": {"limit": 80 * MiB}}, update=True)
    assert (cg(root) / "memory.max").read_text() == str(80 * MiB)
    assert (cg(root) / "memory.swap.max").read_text() == str(16 * MiB)


# -- cpu --------------------------------------------------------------------------------


def test_cpu_fields(made, root, writes):
    made.set(
        {
            "cpu": {
                "shares": 1024,
                "quota": 50000,
                "period": 200000,
                "burst": 10000,
                "idle": 0,
                "cpus": "0-1",
                "mems": "0",
            }
        }
    )
    assert written(root, writes, "cpu.weight") == ["39"]
    assert written(root, writes, "cpu.max") == ["50000 200000"]
    assert written(root, writes, "cpu.max.burst") == ["10000"]
    assert written(root, writes, "cpu.idle") == ["0"]
    assert written(root, writes, "cpuset.cpus") == ["0-1"]
    assert written(root, writes, "cpuset.mems") == ["0"]


@pytest.mark.parametrize(
    "cpu, line",
    [
        ({"quota": 50000}, "50000"),  # the kernel keeps its period
        ({"quota": -1, "period": 100000}, "max 100000"),
        ({"period": 50000}, "max 50000"),  # the current quota stays
    ],
)
def test_cpu_max(made, root, writes, cpu, line):
    made.set({"cpu": cpu})
    assert written(root, writes, "cpu.max") == [line]


def test_an_update_of_the_period_keeps_the_quota(made, root, writes):
    (cg(root) / "cpu.max").write_text("30000 100000\n")
    made.set({"cpu": {"period": 60000}}, update=True)
    assert written(root, writes, "cpu.max") == ["30000 60000"]


def test_unset_shares_write_no_weight(made, writes):
    made.set({"cpu": {"shares": 0}})
    assert writes == []


def test_a_burst_the_old_quota_refuses_is_retried_after_the_new_quota(fs, made, root, writes):
    refused = []

    def once(path, value):
        if path.endswith("cpu.max.burst") and not refused:
            refused.append(value)
            return errno.EINVAL

    fs.refuse_write = once
    made.set({"cpu": {"quota": 400000, "burst": 200000}})
    assert refused == ["200000"]
    assert (cg(root) / "cpu.max.burst").read_text() == "200000"
    assert (cg(root) / "cpu.max").read_text() == "400000"


@pytest.mark.parametrize(
    "cpu, field, why",
    [
        ({"realtimeRuntime": 1000}, "realtimeRuntime", "no realtime CPU budget"),
        ({"realtimePeriod": 100000}, "realtimePeriod", "no realtime CPU budget"),
        ({"quota": 10000, "burst": 20000}, "burst", "above the quota"),
    ],
)
def test_cpu_errors_name_the_field(made, writes, cpu, field, why):
    with pytest.raises(CgroupError, match=why) as e:
        made.set({"cpu": cpu})
    assert e.value.field == "linux.resources.cpu." + field and writes == []


# -- pids, io, hugetlb, rdma, network ---------------------------------------------------


@pytest.mark.parametrize("limit, value", [(42, "42"), (-1, "max"), (0, "0")])
def test_pids_limit(made, root, limit, value):
    made.set({"pids": {"limit": limit}})
    assert (cg(root) / "pids.max").read_text() == value


def test_block_io_weights_and_throttles(made, root, writes, warnings):
    made.set(
        {
            "blockIO": {
                "weight": 500,
                "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 1000}, {"major": 8, "minor": 16, "leafWeight": 10}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}],
            }
        }
    )
    assert written(root, writes, "io.weight") == ["default 4950", "8:0 10000"]
    assert written(root, writes, "io.max") == ["8:0 rbps=1048576 wbps=2097152 wiops=max", "8:16 riops=100"]
    assert any("leafWeight" in w for w in warnings)


def test_bfq_takes_v1_weights_as_they_are(made, root, writes):
    (cg(root) / "io.bfq.weight").write_text("default 100\n")
    made.set({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 200}]}})
    assert written(root, writes, "io.bfq.weight") == ["default 500", "8:0 200"]
    assert written(root, writes, "io.weight") == []


def test_a_block_io_weight_outside_v1_range_is_refused(made):
    with pytest.raises(CgroupError, match=r"outside 10\.\.1000") as e:
        made.set({"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 5}]}})
    assert e.value.field == "linux.resources.blockIO.weightDevice[0].weight"


def test_hugepage_limits_set_usage_and_reservation(made, root):
    made.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
    assert (cg(root) / "hugetlb.2MB.max").read_text() == str(4 * MiB)
    assert (cg(root) / "hugetlb.2MB.rsvd.max").read_text() == str(4 * MiB)


def test_hugepage_reservation_is_skipped_where_the_kernel_has_none(made, root):
    (cg(root) / "hugetlb.2MB.rsvd.max").unlink()
    made.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]})
    assert (cg(root) / "hugetlb.2MB.max").read_text() == str(4 * MiB)


def test_an_unknown_huge_page_size_names_the_entry(made):
    with pytest.raises(CgroupError, match="no 64KB huge pages") as e:
        made.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "64KB", "limit": 1}]})
    assert e.value.field == "linux.resources.hugepageLimits[1]"


def test_rdma(made, root, writes):
    made.set({"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "rxe3": {"hcaObjects": 7}}})
    assert written(root, writes, "rdma.max") == ["mlx5_1 hca_handle=3 hca_object=10000", "rxe3 hca_object=7"]


@pytest.mark.parametrize(
    "net, field, why",
    [
        ({"classID": 1048577}, "linux.resources.network.classID", "cgroup v2 has no net_cls controller"),
        (
            {"priorities": [{"name": "eth0", "priority": 5}]},
            "linux.resources.network.priorities",
            "cgroup v2 has no net_prio controller",
        ),
    ],
)
def test_network_is_refused_naming_the_field(made, writes, net, field, why):
    with pytest.raises(CgroupError) as e:
        made.set({"memory": {"limit": 64 * MiB}, "network": net})
    assert (e.value.field, e.value.why) == (field, why)
    assert str(e.value) == f"{field}: {why}"
    assert writes == []  # checked before anything is written


# -- controllers the host or the parent does not give -----------------------------------


def test_a_controller_the_host_lacks_is_named(fs, root):
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    m = manager(fs, root)
    m.create()
    with pytest.raises(CgroupError) as e:
        m.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]})
    assert str(e.value) == "linux.resources.hugepageLimits[0]: the host has no hugetlb cgroup controller"


def test_a_controller_no_parent_delegates_is_named(made, root):
    (cg(root) / "cgroup.controllers").write_text("cpu pids\n")
    with pytest.raises(CgroupError, match="memory controller is not enabled") as e:
        made.set({"memory": {"limit": 64 * MiB}})
    assert e.value.field == "linux.resources.memory.limit"


def test_a_failing_write_names_the_file_and_the_reason(made, root):
    (cg(root) / "pids.max").unlink()
    (cg(root) / "pids.max").mkdir()  # open for writing fails with EISDIR
    with pytest.raises(CgroupError) as e:
        made.set({"pids": {"limit": 5}})
    assert e.value.field == "linux.resources.pids.limit"
    assert "pids.max" in e.value.why and "is a directory" in e.value.why


# -- unified ----------------------------------------------------------------------------


def test_unified_files_are_written_raw_and_last(made, root, writes):
    made.set(
        {
            "memory": {"limit": 64 * MiB},
            "unified": {
                "memory.max": "100000000",
                "memory.high": "90000000",
                "cgroup.max.depth": "3",
                "io.max": "8:0 rbps=2097152 wiops=120\n8:16 rbps=1048576",
            },
        }
    )
    assert written(root, writes, "memory.max") == [str(64 * MiB), "100000000"]
    assert written(root, writes, "memory.high") == ["90000000"]
    assert written(root, writes, "cgroup.max.depth") == ["3"]
    # One write per line: io.max takes one device at a time.
    assert written(root, writes, "io.max") == ["8:0 rbps=2097152 wiops=120", "8:16 rbps=1048576"]


def test_unified_refuses_a_controller_not_enabled_naming_the_key(made, root, writes):
    (cg(root) / "cgroup.controllers").write_text("cpu pids\n")
    with pytest.raises(CgroupError, match="memory controller is not enabled") as e:
        made.set({"unified": {"memory.high": "1"}})
    assert e.value.field == 'linux.resources.unified["memory.high"]' and writes == []


def test_unified_refuses_a_controller_the_host_lacks(made):
    with pytest.raises(CgroupError, match="the host has no foo cgroup controller"):
        made.set({"unified": {"foo.max": "1"}})


def test_unified_refuses_a_file_the_kernel_lacks(made):
    with pytest.raises(CgroupError, match="no memory.nonsense") as e:
        made.set({"unified": {"memory.nonsense": "1"}})
    assert e.value.field == 'linux.resources.unified["memory.nonsense"]'


@pytest.mark.parametrize("key", ["../memory.max", "memorymax", "."])
def test_unified_keys_must_be_file_names(made, key):
    with pytest.raises(CgroupError, match="must be a cgroup file name"):
        made.set({"unified": {key: "1"}})


# -- devices ----------------------------------------------------------------------------


@pytest.fixture
def fake_bpf(monkeypatch):
    calls = []
    mod = types.ModuleType("pyrunc.linux.cgroups.devices_bpf")
    mod.apply = lambda k, cgroup_dir, rules: calls.append((cgroup_dir, rules))
    import pyrunc.linux.cgroups as pkg

    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    monkeypatch.setattr(pkg, "devices_bpf", mod, raising=False)
    return calls


def test_devices_go_to_the_ebpf_program(made, root, fake_bpf):
    rules = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    made.set({"devices": rules})
    assert fake_bpf == [(str(cg(root)), rules)]


def test_update_leaves_the_device_program_alone(made, fake_bpf):
    made.set({"devices": [{"allow": False, "access": "rwm"}]}, update=True)
    assert fake_bpf == []


# -- freezer, kill ----------------------------------------------------------------------


def test_freeze_and_thaw_wait_for_the_kernel_to_say_so(made, root):
    (cg(root) / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    made.freeze()
    assert (cg(root) / "cgroup.freeze").read_text() == "1" and made.is_frozen()
    (cg(root) / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    made.thaw()
    assert not made.is_frozen()


def test_a_freeze_that_never_completes_is_undone(made, root, monkeypatch):
    monkeypatch.setattr(v2mod, "FREEZE_TIMEOUT", 0.05)
    with pytest.raises(CgroupError, match="did not become frozen"):
        made.freeze()
    assert (cg(root) / "cgroup.freeze").read_text() == "0"


def test_sigkill_uses_cgroup_kill(made, root, monkeypatch):
    monkeypatch.setattr(posix, "kill", lambda *a: pytest.fail("cgroup.kill does it"))
    made.kill_all(signal.SIGKILL)
    assert (cg(root) / "cgroup.kill").read_text() == "1"


def test_other_signals_reach_every_process_and_gone_ones_are_ignored(made, root, monkeypatch):
    (cg(root) / "cgroup.procs").write_text("10\n11\n")
    sent = []

    def kill(pid, sig):
        sent.append((pid, sig))
        if pid == 11:
            raise ProcessLookupError

    monkeypatch.setattr(posix, "kill", kill)
    made.kill_all(signal.SIGTERM)
    assert sent == [(10, signal.SIGTERM), (11, signal.SIGTERM)]


def test_sigkill_without_cgroup_kill_signals_each_process(made, root, monkeypatch):
    (cg(root) / "cgroup.kill").unlink()
    procs = cg(root) / "cgroup.procs"
    procs.write_text("10\n")
    sent = []

    def kill(pid, sig):
        sent.append(pid)
        procs.write_text("")  # it died

    monkeypatch.setattr(posix, "kill", kill)
    made.kill_all(signal.SIGKILL)
    assert sent == [10]


# -- stats ------------------------------------------------------------------------------


def test_stats_in_runcs_shape(made, root):
    d = cg(root)
    (d / "cpu.stat").write_text(
        "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 300\n"
    )
    (d / "memory.current").write_text(f"{10 * MiB}\n")
    (d / "memory.max").write_text(f"{64 * MiB}\n")
    (d / "memory.peak").write_text(f"{12 * MiB}\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (d / "memory.swap.current").write_text(f"{1 * MiB}\n")
    (d / "memory.swap.max").write_text(f"{32 * MiB}\n")
    (d / "memory.stat").write_text("anon 4096\nfile 8192\n")
    (d / "pids.current").write_text("3\n")
    (d / "pids.max").write_text("50\n")
    (d / "io.stat").write_text("8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n")
    (d / "hugetlb.2MB.rsvd.current").write_text("2097152\n")
    (d / "hugetlb.2MB.events").write_text("max 2\n")
    s = made.stats()
    assert s["cpu"] == {
        "usage": {"total": 2_000_000, "kernel": 500_000, "user": 1_500_000},
        "throttling": {"periods": 10, "throttledPeriods": 4, "throttledTime": 300_000},
    }
    assert s["memory"]["usage"] == {"usage": 10 * MiB, "limit": 64 * MiB, "max": 12 * MiB, "failcnt": 3}
    # memory+swap, as v1 reported it
    assert s["memory"]["swap"] == {"usage": 11 * MiB, "limit": 96 * MiB, "max": 0, "failcnt": 0}
    assert s["memory"]["cache"] == 8192 and s["memory"]["raw"] == {"anon": 4096, "file": 8192}
    assert s["pids"] == {"current": 3, "limit": 50}
    assert s["blkio"]["ioServiceBytesRecursive"][:2] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 100},
        {"major": 8, "minor": 0, "op": "Write", "value": 200},
    ]
    assert s["blkio"]["ioServicedRecursive"][:2] == [
        {"major": 8, "minor": 0, "op": "Read", "value": 1},
        {"major": 8, "minor": 0, "op": "Write", "value": 2},
    ]
    assert s["hugetlb"] == {"2MB": {"usage": 2097152, "failcnt": 2}}
    json.dumps(s)


def test_stats_report_max_as_runc_does_and_leave_out_what_is_missing(made, root):
    d = cg(root)
    for name in ("memory.current", "io.stat", "hugetlb.2MB.current", "pids.current"):
        (d / name).unlink()
    (d / "cpu.stat").write_text("usage_usec 7\nuser_usec 5\nsystem_usec 2\n")  # no cpu controller
    s = made.stats()
    assert s == {"cpu": {"usage": {"total": 7000, "kernel": 2000, "user": 5000}}}
    (d / "memory.current").write_text("0\n")
    (d / "memory.swap.max").write_text("max\n")
    s = made.stats()
    assert s["memory"]["usage"]["limit"] == convert.MAX_UINT64
    assert s["memory"]["swap"]["limit"] == convert.MAX_UINT64


def test_io_stat_lines_without_devices_are_skipped():
    assert io_stat_entries("garbage\n\n259:0 rbytes=5 cost.usage=9\n") == {
        "ioServiceBytesRecursive": [{"major": 259, "minor": 0, "op": "Read", "value": 5}]
    }


def test_oom_kills_come_from_memory_events(made, root):
    (cg(root) / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n")
    assert made.oom_kills() == 2


# -- conversions ------------------------------------------------------------------------


@pytest.mark.parametrize("shares, weight", [(2, 1), (1024, 39), (262144, 10000), (1, 1), (10**7, 10000)])
def test_shares_to_weight_known_points(shares, weight):
    assert convert.shares_to_weight(shares) == weight


@given(st.integers(min_value=1, max_value=1 << 40), st.integers(min_value=1, max_value=1 << 40))
def test_shares_to_weight_stays_in_range_and_keeps_order(a, b):
    wa, wb = convert.shares_to_weight(a), convert.shares_to_weight(b)
    assert 1 <= wa <= 10000 and 1 <= wb <= 10000
    if a <= b:
        assert wa <= wb


def test_unset_shares_stay_unset():
    assert convert.shares_to_weight(0) is None and convert.shares_to_weight(None) is None


@pytest.mark.parametrize("blkio, io", [(10, 1), (500, 4950), (1000, 10000), (100, 910)])
def test_blkio_weight_to_io_weight_known_points(blkio, io):
    assert convert.blkio_weight_to_io_weight(blkio) == io


@given(st.integers(min_value=10, max_value=1000), st.integers(min_value=10, max_value=1000))
def test_blkio_weight_to_io_weight_stays_in_range_and_keeps_order(a, b):
    wa, wb = convert.blkio_weight_to_io_weight(a), convert.blkio_weight_to_io_weight(b)
    assert 1 <= wa <= 10000 and (wa <= wb if a <= b else wa >= wb)


@given(st.integers(min_value=1, max_value=1 << 50), st.integers(min_value=0, max_value=1 << 50))
def test_swap_max_is_what_remains_above_the_limit(limit, extra):
    assert convert.swap_max(limit + extra, limit) == extra


@pytest.mark.parametrize(
    "swap, limit, result",
    [(None, None, None), (None, 64, None), (0, 64, None), (None, -1, -1), (-1, 64, -1), (-1, None, -1)],
)
def test_swap_max_special_values(swap, limit, result):
    assert convert.swap_max(swap, limit) == result


@given(st.integers(min_value=1, max_value=1 << 40), st.integers(min_value=1000, max_value=1000000))
def test_cpu_max_lines(quota, period):
    assert convert.cpu_max(quota, period) == f"{quota} {period}"
    assert convert.cpu_max(-quota, period) == f"max {period}"
    assert convert.cpu_max(quota, None) == str(quota)
    assert convert.cpu_max(None, period, "7000") == f"7000 {period}"
    assert convert.cpu_max(None, None) is None


def test_io_max_lines_group_by_device_and_name_the_first_field():
    lines = convert.io_max_lines(
        {
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 5}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}],
        }
    )
    assert lines == {(8, 0): ("8:0 wbps=5 riops=max", "throttleWriteBpsDevice[0]")}


def test_read_limit():
    assert convert.read_limit("max\n") == convert.MAX_UINT64
    assert convert.read_limit("123\n") == 123
    assert convert.read_limit("") is None


@pytest.mark.parametrize(
    "freeze, events, stopped",
    [
        ("0\n", "populated 0\nfrozen 0\n", False),
        ("1\n", "populated 1\nfrozen 0\n", True),  # asked, not yet done: freezing
        ("0\n", "populated 0\nfrozen 1\n", True),  # an ancestor's freeze shows only in events
    ],
)
def test_stopped_by_freezer_reads_freeze_and_events(root, made, freeze, events, stopped):
    (cg(root) / "cgroup.freeze").write_text(freeze)
    (cg(root) / "cgroup.events").write_text(events)
    assert made.stopped_by_freezer() is stopped
    # start reads the same from the state's record, without the managers
    assert frozen_by_record(made.to_dict(), str(root)) is stopped
