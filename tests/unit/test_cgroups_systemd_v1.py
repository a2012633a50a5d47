"""The systemd driver on a v1/hybrid host, against the recording double of systemd's
manager object (test_cgroups_systemd.py) on a directory laid out as /sys/fs/cgroup with v1
hierarchies: systemd makes the scope in its own hierarchies (name=systemd, unified) and in
those of the controllers it manages; pyrunc makes the same path in the others, as runc's
legacy systemd manager does, and removes only those."""

import pytest

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import load_manager, systemd_props
from pyrunc.linux.cgroups.systemd import Systemd, SystemdManager
from pyrunc.linux.cgroups.v1 import V1Manager
from tests.unit.fake_cgroup1 import KernelLike
from tests.unit.fake_systemd import DBusError, FakeSystemdConnection, Variant

MiB = 1 << 20
INF = (1 << 64) - 1
# systemd 252 on a hybrid host: what it realizes for a delegated scope with accounting on.
SYSTEMDS = ("systemd", "unified", "cpu,cpuacct", "memory", "pids", "devices", "blkio")
OTHERS = ("cpuset", "freezer", "net_cls,net_prio", "perf_event")
OWN = {"": "/", "name=systemd": "/"}
SCOPE = "/system.slice/pyrunc-test-box.scope"


class FakeSystemdV1(FakeSystemdConnection):
    """The double's systemd, making and removing a scope in each of SYSTEMDS."""

    def __init__(self, root):
        super().__init__(root / "systemd")
        self.top = root

    def call(self, destination, path, interface, member, signature="", body=(), timeout=25.0):
        reply = super().call(destination, path, interface, member, signature, body, timeout)
        if member in ("StartTransientUnit", "StopUnit") and body[0].endswith(".scope"):
            rel = str(self._dir(body[0]).relative_to(self.root))
            for h in SYSTEMDS[1:]:
                d = self.top / h / rel
                if member == "StartTransientUnit" and self.units.get(body[0]) == "active":
                    d.mkdir(parents=True, exist_ok=True)
                    (d / "cgroup.procs").write_text((self.root / rel / "cgroup.procs").read_text())
                    for f in (self.top / h).iterdir():  # the hierarchy's interface files
                        if f.is_file() and f.name != "cgroup.procs":
                            (d / f.name).write_text("")
                elif member == "StopUnit" and d.is_dir():
                    for f in d.iterdir():
                        f.unlink()
                    d.rmdir()
        return reply


@pytest.fixture
def root(tmp_path):
    for h in SYSTEMDS + OTHERS:
        d = tmp_path / h
        d.mkdir()
        (d / "cgroup.procs").write_text("")
    (tmp_path / "unified" / "cgroup.subtree_control").write_text("")
    for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
        (tmp_path / "memory" / name).write_text("")
    for name in ("cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us"):
        (tmp_path / "cpu,cpuacct" / name).write_text("")
    (tmp_path / "pids" / "pids.max").write_text("max")
    (tmp_path / "freezer" / "freezer.state").write_text("THAWED")
    (tmp_path / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (tmp_path / "cpuset" / "cpuset.mems").write_text("0\n")
    for h in SYSTEMDS:
        (tmp_path / h / "system.slice").mkdir()
        (tmp_path / h / "system.slice" / "cgroup.procs").write_text("")
    return tmp_path


@pytest.fixture
def conn(root):
    return FakeSystemdV1(root)


def manager(conn, root, path="system.slice:pyrunc-test:box"):
    unit = systemd_props.parse_path(path, "box")
    inner = V1Manager(unit.path, root=str(root), hybrid=True, own=OWN, files=KernelLike())
    return SystemdManager(
        unit, inner, lambda: Systemd(conn, False, Variant, DBusError), files=KernelLike(), root=str(root)
    )


def test_create_asks_systemd_for_v1_accounting_and_makes_the_scope_path_in_the_other_hierarchies(conn, root):
    m = manager(conn, root)
    m.create(4242)
    props = conn.props["pyrunc-test-box.scope"]
    assert props["BlockIOAccounting"] is True and "IOAccounting" not in props
    assert props["Delegate"] is True and props["PIDs"] == [4242]
    # systemd's hierarchies hold the scope it made; pyrunc made the path in the others,
    # the slice's level too where systemd had not made it, and remembers only those.
    made = m.to_dict()["inner"]["made"]
    for h in SYSTEMDS:
        assert (root / h / SCOPE.lstrip("/")).is_dir() and made[h] == [], h
    for h in OTHERS:
        assert (root / h / SCOPE.lstrip("/")).is_dir() and made[h] == ["/system.slice", SCOPE], h
    assert (root / "cpuset" / SCOPE.lstrip("/") / "cpuset.cpus").read_text() == "0-3"
    assert m.paths() == {h: SCOPE for h in SYSTEMDS + OTHERS}
    assert m.made_leaf() and m.version == 1


def test_limits_go_to_the_unit_as_v1_properties_then_to_the_files(conn, root):
    m = manager(conn, root)
    m.create(5)
    m.set(
        {
            "memory": {"limit": 64 * MiB, "swap": 96 * MiB},
            "cpu": {"shares": 512, "quota": 1234, "period": 100000},
            "pids": {"limit": -1},
        }
    )
    props = conn.props["pyrunc-test-box.scope"]
    assert props["MemoryLimit"] == 64 * MiB and props["CPUShares"] == 512 and props["TasksMax"] == INF
    assert props["CPUQuotaPerSecUSec"] == 20000 and props["CPUQuotaPeriodUSec"] == 100000
    assert not {"MemoryMax", "MemorySwapMax", "CPUWeight", "IOWeight"} & set(props)
    scope = root / "memory" / SCOPE.lstrip("/")
    assert (scope / "memory.limit_in_bytes").read_text() == str(64 * MiB)
    assert (scope / "memory.memsw.limit_in_bytes").read_text() == str(96 * MiB)
    cpu = root / "cpu,cpuacct" / SCOPE.lstrip("/")
    assert (cpu / "cpu.cfs_quota_us").read_text() == "2000"  # as systemd holds it: 20 ms a second
    assert (cpu / "cpu.shares").read_text() == "512"


def test_update_of_the_period_alone_reads_the_v1_quota_in_force(conn, root):
    m = manager(conn, root)
    m.create(5)
    m.set({"cpu": {"quota": 50000, "period": 100000}})
    m.set({"cpu": {"period": 50000}}, update=True)
    props = conn.props["pyrunc-test-box.scope"]
    assert props["CPUQuotaPerSecUSec"] == 1_000_000 and props["CPUQuotaPeriodUSec"] == 50000


def test_pause_is_the_freezer_hierarchy_pyrunc_made(conn, root):
    m = manager(conn, root)
    m.create(5)
    state = root / "freezer" / SCOPE.lstrip("/") / "freezer.state"
    state.write_text("THAWED")
    m.freeze()
    assert state.read_text() == "FROZEN" and m.is_frozen()
    m.thaw()
    assert state.read_text() == "THAWED"


def test_the_saved_manager_loads_without_a_kernel_and_destroy_leaves_no_directory(conn, root):
    m = manager(conn, root)
    m.create(5)
    again = load_manager(m.to_dict(), str(root), files=KernelLike())
    assert isinstance(again, SystemdManager) and isinstance(again.inner, V1Manager)
    assert again.to_dict() == m.to_dict()
    again.connect = lambda: Systemd(conn, False, Variant, DBusError)
    again.destroy()
    assert conn.units == {}
    for h in SYSTEMDS + OTHERS:
        assert not (root / h / SCOPE.lstrip("/")).exists(), h
    # The slice's level: systemd's where it made it, gone where pyrunc made it (unused now).
    for h in SYSTEMDS:
        assert (root / h / "system.slice").is_dir(), h
    for h in OTHERS:
        assert not (root / h / "system.slice").exists(), h


def test_a_failed_job_leaves_no_directory_in_any_hierarchy(root):
    conn = FakeSystemdV1(root)
    conn.job_result = "failed"
    m = manager(conn, root)
    with pytest.raises(CgroupError, match="its job ended 'failed'"):
        m.create(3)
    m.destroy()  # create's undo
    for h in SYSTEMDS + OTHERS:
        assert not (root / h / SCOPE.lstrip("/")).exists(), h
    assert conn.units == {}


def test_loading_a_saved_v1_unit_imports_neither_the_kernel_seam_nor_dbus(conn, root):
    """delete, kill, pause and update load the manager from state.json: a v1 unit's record
    holds the per-hierarchy directories, so nothing probes the host again."""
    import json
    import subprocess
    import sys

    m = manager(conn, root)
    m.create(5)
    code = (
        "import json, sys\n"
        "from pyrunc.linux.cgroups import load_manager\n"
        "from pyrunc.linux.cgroups.files import REAL_FILES\n"
        f"m = load_manager(json.loads({json.dumps(json.dumps(m.to_dict()))}), {str(root)!r}, files=REAL_FILES)\n"
        "print(sorted(m.paths()), m.inner.version, m.made_leaf())\n"
        "print(sorted(n for n in sys.modules if n in ('pyrunc.linux.kernel', 'pyrunc.linux.dbus', 'ctypes')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    paths, imported = out.splitlines()
    assert paths == f"{sorted(SYSTEMDS + OTHERS)} 1 True" and imported == "[]", out


def test_a_systemd_that_does_not_answer_the_stop_still_gets_pyruncs_directories_removed(conn, root):
    """A failed create whose processes are dead: the directories pyrunc made in the other
    hierarchies go even when systemd does not answer, and the error says why the unit may
    be left."""
    m = manager(conn, root)
    m.create(5)
    for h in SYSTEMDS:
        (root / h / SCOPE.lstrip("/") / "cgroup.procs").write_text("")  # its processes killed

    def silent(*a, **k):
        raise TimeoutError(
            "D-Bus at unix:path=/run/systemd/private: no reply to org.freedesktop.systemd1.Manager.StopUnit in time"
        )

    conn.call = silent
    with pytest.raises(CgroupError) as e:
        m.destroy()
    assert str(e.value) == (
        "systemd cannot stop unit pyrunc-test-box.scope: "
        "D-Bus at unix:path=/run/systemd/private: no reply to org.freedesktop.systemd1.Manager.StopUnit in time"
    )
    for h in OTHERS:
        assert not (root / h / SCOPE.lstrip("/")).exists() and not (root / h / "system.slice").exists(), h
    for h in SYSTEMDS:
        assert (root / h / SCOPE.lstrip("/")).is_dir(), h  # systemd's, its unit perhaps still there
