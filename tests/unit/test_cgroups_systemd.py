"""The systemd driver's manager against a recording double of the D-Bus connection that
answers as systemd's manager object does (units, jobs and their JobRemoved signals, the
scope's cgroup made on a directory laid out as cgroup2 by fake_cgroup2's KernelLike).
What is tested is the driver's side: the order of its calls, what it asks systemd for,
what it writes to the files, what it leaves when something fails."""

import os

import pytest

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import systemd as sdmod
from pyrunc.linux.cgroups import systemd_props
from pyrunc.linux.cgroups.systemd import Systemd, SystemdManager
from pyrunc.linux.cgroups.v2 import V2Manager
from tests.unit.fake_cgroup2 import ALL, KernelLike, existing
from tests.unit.fake_systemd import DBusError, FakeSystemdConnection, Variant
from tests.unit.fakekernel import FakeKernel

MiB = 1 << 20
INF = (1 << 64) - 1


@pytest.fixture
def fs():
    return KernelLike()


@pytest.fixture
def root(tmp_path):
    """A cgroup2 root with every controller."""
    (tmp_path / "cgroup.controllers").write_text(ALL + "\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    (tmp_path / "cgroup.procs").write_text("")
    return tmp_path


@pytest.fixture
def conn(root):
    return FakeSystemdConnection(root)


def manager(conn, fs, root, path="system.slice:pyrunc-test:box", bus=False):
    unit = systemd_props.parse_path(path, "box")
    inner = V2Manager(unit.path, root=str(root), own={"": "/"}, files=fs, kernel=FakeKernel())
    return SystemdManager(unit, inner, lambda: Systemd(conn, bus, Variant, DBusError), files=fs, root=str(root))


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(sdmod, "_warn", seen.append)
    return seen


def scope(root, path="system.slice/pyrunc-test-box.scope"):
    return root / path


# -- create --------------------------------------------------------------------------------


def test_create_starts_a_delegated_scope_in_its_slice_with_the_init_in_it(conn, fs, root):
    existing(root, "/system.slice")
    m = manager(conn, fs, root)
    m.create(4242)
    assert conn.members() == ["Get", "Subscribe", "StartTransientUnit"]  # subscribed before the start
    props = conn.props["pyrunc-test-box.scope"]
    assert props["Slice"] == "system.slice" and props["Delegate"] is True and props["PIDs"] == [4242]
    assert props["DefaultDependencies"] is False
    assert (scope(root) / "cgroup.procs").read_text() == "4242\n"
    assert conn.signals == [] and conn.closed == 1  # its job waited for; the connection closed
    # The scope is the container's own: no warning about a busy cgroup, kill and remove it.
    assert m.made_leaf() and m.made_any() and m.paths() == {"": "/system.slice/pyrunc-test-box.scope"}
    assert m.systemd_version == 252


def test_through_the_bus_a_match_rule_asks_for_job_removed(conn, fs, root):
    manager(conn, fs, root, bus=True).create(1)
    assert len(conn.matches) == 1 and "member='JobRemoved'" in conn.matches[0]
    conn2 = FakeSystemdConnection(root)
    manager(conn2, fs, root, path="system.slice:pyrunc-test:other").create(1)
    assert conn2.matches == []  # the private socket sends every signal to its peers


def test_a_nested_slice_places_the_scope_below_its_parents(conn, fs, root):
    m = manager(conn, fs, root, path="pyrunc-test-a-b.slice:p:box")
    m.create(7)
    assert (root / "pyrunc.slice/pyrunc-test.slice/pyrunc-test-a.slice/pyrunc-test-a-b.slice/p-box.scope").is_dir()
    assert m.paths() == {"": "/pyrunc.slice/pyrunc-test.slice/pyrunc-test-a.slice/pyrunc-test-a-b.slice/p-box.scope"}


def test_an_existing_unit_is_refused_and_left_alone(conn, fs, root):
    manager(conn, fs, root).create(1)
    conn.calls.clear()
    m = manager(conn, fs, root)
    with pytest.raises(CgroupError) as e:
        m.create(2)
    assert str(e.value) == "systemd unit pyrunc-test-box.scope already exists"
    assert not m.started and not m.made_any()
    m.destroy()  # what create's undo does: another's unit is not stopped, its cgroup stays
    assert "StopUnit" not in conn.members() and scope(root).is_dir()
    assert (scope(root) / "cgroup.procs").read_text() == "1\n"


def test_a_failed_unit_left_by_a_container_gone_is_reset_and_started_again(conn, fs, root):
    conn.units["pyrunc-test-box.scope"] = "failed"
    m = manager(conn, fs, root)
    m.create(9)
    assert conn.members() == [
        "Get",
        "Subscribe",
        "StartTransientUnit",  # refused: UnitExists
        "GetUnit",
        "Get",  # its ActiveState: failed
        "ResetFailedUnit",
        "StartTransientUnit",
    ]
    assert conn.units["pyrunc-test-box.scope"] == "active" and m.started


def test_a_failed_job_is_one_line_and_leaves_no_unit(fs, root):
    conn = FakeSystemdConnection(root, job_result="failed")
    m = manager(conn, fs, root)
    with pytest.raises(CgroupError) as e:
        m.create(3)
    assert str(e.value) == "systemd could not start unit pyrunc-test-box.scope: its job ended 'failed'"
    assert conn.units == {} and conn.closed == 1
    m.destroy()  # create's undo: the unit is gone already
    assert conn.units == {} and not scope(root).exists()


def test_a_job_that_never_ends_times_out_in_one_line(conn, fs, root, monkeypatch):
    monkeypatch.setattr(conn, "wait_signal", lambda accept, timeout: (_ for _ in ()).throw(TimeoutError()))
    m = manager(conn, fs, root)
    with pytest.raises(CgroupError) as e:
        m.create(3)
    assert str(e.value) == "systemd did not start unit pyrunc-test-box.scope in 30s"
    assert m.started  # the unit may yet start: destroy stops it


# -- set -----------------------------------------------------------------------------------


def test_limits_go_to_the_unit_then_to_the_files_with_the_quota_rounded(conn, fs, root):
    m = manager(conn, fs, root)
    m.create(5)
    m.set({"memory": {"limit": 64 * MiB}, "cpu": {"quota": 1234, "period": 100000, "shares": 1024}})
    assert conn.members()[-1] == "SetUnitProperties"
    props = conn.props["pyrunc-test-box.scope"]
    assert props["MemoryMax"] == 64 * MiB and props["CPUWeight"] == 39
    assert props["CPUQuotaPerSecUSec"] == 20000 and props["CPUQuotaPeriodUSec"] == 100000
    assert (scope(root) / "cpu.max").read_text() == "2000 100000"  # as systemd has it: 20 ms per second
    assert (scope(root) / "memory.max").read_text() == str(64 * MiB)
    assert (scope(root) / "cpu.weight").read_text() == "39"


def test_update_of_the_period_alone_keeps_the_quota_in_force(conn, fs, root):
    m = manager(conn, fs, root)
    m.create(5)
    m.set({"cpu": {"quota": 50000, "period": 100000}})
    m.set({"cpu": {"period": 50000}}, update=True)
    props = conn.props["pyrunc-test-box.scope"]
    assert props["CPUQuotaPerSecUSec"] == 1_000_000 and props["CPUQuotaPeriodUSec"] == 50000
    assert (scope(root) / "cpu.max").read_text() == "50000 50000"


def test_update_leaves_the_devices_alone(conn, fs, root):
    m = manager(conn, fs, root)
    m.create(5)
    m.set({"pids": {"limit": 10}, "devices": [{"allow": True}]}, update=True)
    assert "DevicePolicy" not in conn.props["pyrunc-test-box.scope"]
    assert conn.props["pyrunc-test-box.scope"]["TasksMax"] == 10


def test_a_limit_systemd_cannot_take_names_the_field_and_sets_nothing(conn, fs, root):
    m = manager(conn, fs, root)
    m.create(5)
    with pytest.raises(CgroupError) as e:
        m.set({"cpu": {"cpus": "3-1"}})
    assert str(e.value) == "linux.resources.cpu.cpus: '3-1': invalid range: 3-1"
    assert "SetUnitProperties" not in conn.members()


# -- destroy -------------------------------------------------------------------------------


def test_destroy_stops_the_unit_waits_for_it_and_leaves_nothing(conn, fs, root):
    m = manager(conn, fs, root)
    m.create(5)
    conn.calls.clear()
    m.destroy()
    assert conn.members() == ["StopUnit", "ResetFailedUnit"] and conn.signals == []
    assert conn.units == {} and not scope(root).exists() and conn.closed == 2


def test_destroy_removes_the_sub_cgroups_an_old_systemd_leaves(conn, fs, root):
    conn.keeps_sub_cgroups = True
    m = manager(conn, fs, root)
    m.create(5)
    existing(root, "/system.slice/pyrunc-test-box.scope/inner/deeper")
    m.destroy()
    assert not scope(root).exists() and (root / "system.slice").is_dir()  # the slice is systemd's


def test_destroy_of_a_unit_systemd_already_collected(conn, fs, root):
    m = manager(conn, fs, root)
    m.create(5)
    conn.units.clear()  # its last process exited: systemd stopped and forgot it
    (scope(root) / "cgroup.procs").write_text("")
    assert KernelLike().rmdir(str(scope(root)))
    m.destroy()
    assert not scope(root).exists()


# -- saved and loaded ---------------------------------------------------------------------


def test_the_saved_manager_acts_on_the_same_unit(conn, fs, root):
    m = manager(conn, fs, root)
    m.create(5)
    saved = m.to_dict()
    assert saved["driver"] == "systemd" and saved["unit"] == "pyrunc-test-box.scope" and saved["version"] == 2
    again = SystemdManager.from_dict(
        saved, str(root), files=fs, connect=lambda: Systemd(conn, False, Variant, DBusError)
    )
    assert again.to_dict() == saved and again.pids() == [5]
    again.destroy()
    assert not scope(root).exists()


def test_the_version_is_systemds_leading_number():
    for text, n in (("v245.4-1.fc32", 245), ("245", 245), ('"252.22-1~deb12u1"', 252), ("", 0), ("abc", 0)):
        assert sdmod.parse_version(text) == n


def test_no_systemd_on_the_host_is_one_line(monkeypatch):
    monkeypatch.setattr(sdmod, "RUN_SYSTEMD", "/nonexistent/pyrunc-test-run-systemd")
    with pytest.raises(CgroupError) as e:
        sdmod.open_systemd()
    assert str(e.value) == (
        "systemd not running on this host (no /nonexistent/pyrunc-test-run-systemd), cannot use systemd cgroups manager"
    )


def test_dbus_errors_are_one_line(conn, fs, root):
    def refuse(*a, **k):
        raise DBusError("org.freedesktop.DBus.Error.AccessDenied", "Access denied\nmore")

    m = manager(conn, fs, root)
    m.create(5)
    conn.call = refuse
    with pytest.raises(CgroupError) as e:
        m.set({"pids": {"limit": 5}})
    assert str(e.value) == "systemd cannot set the properties of unit pyrunc-test-box.scope: Access denied"
    assert os.path.isdir(scope(root))


# -- chosen by --systemd-cgroup -------------------------------------------------------------


def test_new_manager_with_systemd_gives_a_unit_over_the_hosts_manager(fs, root):
    from pyrunc.linux.cgroups import load_manager, new_manager

    m = new_manager("/ignored", "box", str(root), "v2", files=fs, kernel=FakeKernel(), systemd="a-b.slice:p:box")
    assert isinstance(m, SystemdManager) and isinstance(m.inner, V2Manager)
    assert m.unit.name == "p-box.scope" and m.paths() == {"": "/a.slice/a-b.slice/p-box.scope"}
    plain = new_manager("/pyrunc-test/x", "box", str(root), "v2", files=fs, kernel=FakeKernel())
    assert isinstance(plain, V2Manager)
    again = load_manager(m.to_dict(), str(root), files=fs)
    assert isinstance(again, SystemdManager) and again.to_dict() == m.to_dict()
    assert isinstance(load_manager(plain.to_dict(), str(root), files=fs), V2Manager)


def test_a_silent_or_refusing_systemd_is_one_line_naming_the_unit(conn, fs, root):
    def silent(*a, **k):
        raise TimeoutError("D-Bus at unix:path=/run/systemd/private: no reply in time")

    conn.call = silent
    m = manager(conn, fs, root)
    with pytest.raises(CgroupError) as e:
        m.create(5)
    assert str(e.value) == (
        "systemd cannot start unit pyrunc-test-box.scope: D-Bus at unix:path=/run/systemd/private: no reply in time"
    )

    def refuse(*a, **k):
        raise DBusError("org.freedesktop.DBus.Error.AccessDenied", "Permission denied")

    conn.call = refuse
    with pytest.raises(CgroupError) as e:
        manager(conn, fs, root).create(5)
    assert str(e.value) == "systemd cannot start unit pyrunc-test-box.scope: Permission denied"
