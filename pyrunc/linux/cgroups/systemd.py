"""The systemd cgroup driver (--systemd-cgroup): the container's cgroup is a transient
systemd scope, as runc's libcontainer systemd manager makes it.

systemd owns the cgroup tree on a host where it is PID 1; a cgroup made behind its back
can be moved or trimmed by it.  So the container's cgroup is asked for: a transient
scope unit `prefix-name.scope` in its slice (systemd_props.py: the names and the
properties), started with StartTransientUnit and the init as its first process (PIDs=:
systemd refuses a scope with none, so the scope is made when the init asks for its
cgroup, not before), Delegate=yes so that the cgroup below it is the container's.  The
limits go to systemd as unit properties (SetUnitProperties) and then to the scope's
cgroup files through the v1/v2 manager (`inner`), which also does everything else
(freezer, pids, stats, kill, exec's sub-cgroups): runc's order, so systemd's rewrite of
its properties and the files agree.  delete stops the unit (StopUnit, waiting for its
job), lets systemd forget a failed one (ResetFailedUnit) and removes what is left of
the cgroup.

systemd is reached over D-Bus (pyrunc/linux/dbus.py).  As root, through systemd's
private socket /run/systemd/private when it is there: a peer-to-peer connection to
systemd itself, with no message broker between (one hop less per call, and no
dependency on dbus-daemon, which a minimal host or an early boot may lack); else
through the system bus.  A connection lasts for one operation (create, set, destroy)
and is closed after it: nothing of it stays open while the runtime forks.
"""

import os

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import CGROUP_MOUNT_ROOT, Manager, cgroup_dirs_deepest_first, systemd_props
from pyrunc.linux.cgroups.files import REAL_FILES, CgroupFiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    from pyrunc.linux.cgroups.systemd_props import Property, Unit

    class Connection(Protocol):
        """What the driver uses of pyrunc.linux.dbus.Connection."""

        def call(
            self,
            destination: str,
            path: str,
            interface: str,
            member: str,
            signature: str = "",
            body: "tuple[Any, ...]" = (),
            timeout: float = 25.0,
        ) -> "tuple[Any, ...]": ...

        def add_match(self, rule: str) -> None: ...

        def wait_signal(self, accept: "Callable[[Any], bool]", timeout: float) -> "Any": ...

        def close(self) -> None: ...


SYSTEMD = "org.freedesktop.systemd1"
SYSTEMD_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
PRIVATE_SOCKET = "/run/systemd/private"
RUN_SYSTEMD = "/run/systemd/system"  # sd_booted(3): systemd is PID 1
JOB_REMOVED_MATCH = f"type='signal',sender='{SYSTEMD}',path='{SYSTEMD_PATH}',interface='{MANAGER}',member='JobRemoved'"
JOB_TIMEOUT = 30.0  # runc's wait for a job
UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"
NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"


def _warn(msg: str) -> None:
    from pyrunc import log

    log.warning(msg)


class Systemd:
    """systemd's manager object over one D-Bus connection (`conn`, a dbus.Connection;
    `bus`: through a message bus rather than the private socket; `variant` and `error`:
    the client's Variant and DBusError types).  Errors are one-line CgroupErrors naming
    the unit."""

    def __init__(
        self,
        conn: "Connection",
        bus: bool,
        variant: "Callable[[str, Any], Any]",
        error: "type[Exception]",
    ) -> None:
        self.conn = conn
        self.bus = bus
        self.variant = variant
        self.error = error  # an error reply: .name (org.freedesktop.systemd1.NoSuchUnit), .message

    def close(self) -> None:
        self.conn.close()

    def call(self, member: str, signature: str = "", *body: "Any") -> "tuple[Any, ...]":
        return self.conn.call(SYSTEMD, SYSTEMD_PATH, MANAGER, member, signature, tuple(body))

    def _props(self, props: "list[Property]") -> "list[tuple[str, Any]]":
        return [(name, self.variant(sig, value)) for name, sig, value in props]

    def version(self) -> int:
        """systemd's version number ("252.22-1~deb12u1" -> 252); 0 when unreadable."""
        try:
            (value,) = self.conn.call(
                SYSTEMD, SYSTEMD_PATH, "org.freedesktop.DBus.Properties", "Get", "ss", (MANAGER, "Version")
            )
        except self.error:
            return 0
        return parse_version(str(getattr(value, "value", value)))

    def subscribe(self) -> None:
        """Ask for the JobRemoved signals: a bus delivers only what a match rule asks for;
        systemd's private socket sends them to every peer."""
        if self.bus:
            self.conn.add_match(JOB_REMOVED_MATCH)
        self.call("Subscribe")

    def wait_job(self, job: str, unit: str, verb: str) -> str:
        """The result of `job` ("done", "failed", "timeout", ...) from its JobRemoved
        signal (body: id, job path, unit, result)."""

        def removed(msg: "Any") -> bool:
            return bool(msg.member == "JobRemoved" and len(msg.body) >= 4 and msg.body[1] == job)

        try:
            msg = self.conn.wait_signal(removed, JOB_TIMEOUT)
        except TimeoutError:
            raise CgroupError(None, f"systemd did not {verb} unit {unit} in {JOB_TIMEOUT:.0f}s") from None
        return str(msg.body[3])

    def start(self, unit: str, props: "list[Property]") -> str:
        """StartTransientUnit; the job's path.  A unit of that name is refused."""
        for retry in (True, False):
            try:
                (job,) = self.call("StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "replace", self._props(props), [])
                return str(job)
            except self.error as e:
                if _name(e) != UNIT_EXISTS:
                    raise CgroupError(None, f"systemd cannot start unit {unit}: {_dbus_why(e)}") from None
                if not retry or self.unit_state(unit) != "failed":
                    raise CgroupError(None, f"systemd unit {unit} already exists") from None
                # A failed unit of a container gone: systemd forgets it, and we try again (as runc).
                self.reset_failed(unit)
        raise AssertionError("unreachable")

    def unit_state(self, unit: str) -> str:
        """The unit's ActiveState ("active", "failed", ...); "" when unknown."""
        try:
            (path,) = self.call("GetUnit", "s", unit)
            (value,) = self.conn.call(
                SYSTEMD, str(path), "org.freedesktop.DBus.Properties", "Get", "ss", (f"{SYSTEMD}.Unit", "ActiveState")
            )
        except self.error:
            return ""
        return str(getattr(value, "value", value))

    def set_properties(self, unit: str, props: "list[Property]") -> None:
        try:
            self.call("SetUnitProperties", "sba(sv)", unit, True, self._props(props))
        except self.error as e:
            raise CgroupError(None, f"systemd cannot set the properties of unit {unit}: {_dbus_why(e)}") from None

    def stop(self, unit: str) -> str | None:
        """StopUnit's job, or None when systemd has no such unit (any more)."""
        try:
            (job,) = self.call("StopUnit", "ss", unit, "replace")
        except self.error as e:
            if _name(e) == NO_SUCH_UNIT:
                return None
            raise CgroupError(None, f"systemd cannot stop unit {unit}: {_dbus_why(e)}") from None
        return str(job)

    def reset_failed(self, unit: str) -> None:
        """Let systemd forget a failed unit (a unit not failed, or gone, is no error)."""
        try:
            self.call("ResetFailedUnit", "s", unit)
        except self.error:
            pass


def _name(e: Exception) -> str:
    return str(getattr(e, "name", ""))


def _dbus_why(e: Exception) -> str:
    """An error reply's message on one line (its name when it has none)."""
    text = str(getattr(e, "message", "") or _name(e) or "D-Bus error")
    return text.splitlines()[0] if text.strip() else _name(e)


def parse_version(text: str) -> int:
    """runc's systemdVersionAtoi: the leading number of "v245.4-1.fc32", "245", "252.22-1"."""
    text = text.strip().lstrip('"v')
    digits = ""
    for c in text:
        if not c.isdigit():
            break
        digits += c
    return int(digits) if digits else 0


def require_systemd() -> None:
    """CgroupError unless systemd is the host's init (sd_booted(3), as runc checks it)."""
    if not os.path.isdir(RUN_SYSTEMD):
        raise CgroupError(
            None, f"systemd not running on this host (no {RUN_SYSTEMD}), cannot use systemd cgroups manager"
        )


def open_systemd() -> Systemd:
    """A connection to systemd: its private socket as root, else the system bus."""
    require_systemd()
    import pyrunc.linux.dbus as dbus

    if os.geteuid() == 0 and os.path.exists(PRIVATE_SOCKET):
        try:
            conn = dbus.Connection.open(f"unix:path={PRIVATE_SOCKET}", bus=False)
            return Systemd(conn, False, dbus.Variant, dbus.DBusError)
        except (OSError, dbus.DBusError):
            pass  # an older systemd's, or a race with its restart: the bus will do
    try:
        return Systemd(dbus.Connection.open(dbus.system_bus_address()), True, dbus.Variant, dbus.DBusError)
    except (OSError, dbus.DBusError) as e:
        raise CgroupError(None, f"--systemd-cgroup: cannot connect to systemd: {e}") from None


class SystemdManager(Manager):
    """A transient unit, with `inner` (a V1Manager or V2Manager for the unit's cgroup
    path) for the cgroup files.  `connect` opens a Systemd (tests pass a double's)."""

    def __init__(
        self,
        unit: "Unit",
        inner: Manager,
        connect: "Callable[[], Systemd]" = open_systemd,
        files: CgroupFiles = REAL_FILES,
        root: str = CGROUP_MOUNT_ROOT,
        systemd_version: int | None = None,
        started: bool = False,
    ) -> None:
        self.unit = unit
        self.inner = inner
        self.version = inner.version
        self.connect = connect
        self.files = files
        self.root = root
        self.systemd_version = systemd_version
        self.started = started  # this manager's StartTransientUnit made the unit

    @classmethod
    def from_dict(
        cls,
        saved: "dict[str, Any]",
        root: str = CGROUP_MOUNT_ROOT,
        *,
        files: CgroupFiles,
        connect: "Callable[[], Systemd]" = open_systemd,
    ) -> "SystemdManager":
        from pyrunc.linux.cgroups import load_manager

        inner = load_manager(saved["inner"], root, files=files)
        unit = systemd_props.Unit(saved["slice"], saved["unit"])
        return cls(unit, inner, connect, files, root, saved.get("systemd"), bool(saved.get("started")))

    def to_dict(self) -> "dict[str, Any]":
        return {
            "version": self.version,
            "driver": "systemd",
            "slice": self.unit.slice,
            "unit": self.unit.name,
            "systemd": self.systemd_version,
            "started": self.started,
            "inner": self.inner.to_dict(),
        }

    # -- lifecycle ----------------------------------------------------------------------

    def create(self, pid: int | None = None) -> None:
        """Start the unit with `pid` in it (a scope needs its first process), then make
        what systemd does not (the v1 hierarchies it does not manage)."""
        sd = self.connect()
        try:
            self.systemd_version = sd.version()
            props = systemd_props.start_properties(self.unit, pid, self.version, f"pyrunc container {self.unit.name}")
            sd.subscribe()  # before the start: its JobRemoved may come before the reply
            job = sd.start(self.unit.name, props)
            self.started = True  # from here on destroy() stops it, whatever the job says
            result = sd.wait_job(job, self.unit.name, "start")
            if result != "done":
                sd.reset_failed(self.unit.name)
                raise CgroupError(None, f"systemd could not start unit {self.unit.name}: its job ended {result!r}")
        except Exception as e:
            raise self._failed(sd, e, "start") from None
        finally:
            sd.close()
        self.inner.create()

    def _failed(self, sd: Systemd, e: Exception, verb: str) -> Exception:
        """A CgroupError as it is; a D-Bus error or a lost or silent connection (OSError,
        TimeoutError) as one line naming the unit; anything else as it is."""
        if isinstance(e, CgroupError) or not isinstance(e, (OSError, sd.error)):
            return e
        why = _dbus_why(e) if isinstance(e, sd.error) else str(e) or type(e).__name__
        return CgroupError(None, f"systemd cannot {verb} unit {self.unit.name}: {why}")

    def made_leaf(self) -> bool:
        # The unit's cgroup is ours alone: systemd made it for this container.
        return self.started

    def made_any(self) -> bool:
        return self.started or self.inner.made_any()

    def add(self, pid: int, dirs: dict[str, str] | None = None) -> None:
        self.inner.add(pid, dirs)

    def sub_dirs(self, subs: dict[str, str]) -> dict[str, str]:
        return self.inner.sub_dirs(subs)

    def paths(self) -> dict[str, str]:
        return self.inner.paths()

    def set(self, resources: "dict[str, Any] | None", update: bool = False) -> None:
        """The unit's properties first, then every field to the cgroup files (the quota
        as rounded for systemd): runc's order, so that the files have the last word."""
        r = dict(resources or {})
        cpu = r.get("cpu") or {}
        if update and cpu.get("period") and not cpu.get("quota"):
            # systemd takes the quota per second: a new period needs the quota in force.
            r["cpu"] = dict(cpu, quota=self._current_quota())
        try:
            plan = systemd_props.Resources(r, self.version, self.systemd_version or 0, devices=not update)
        except ValueError as e:
            raise CgroupError(None, str(e)) from None
        for line in plan.warnings:
            _warn(f"unit {self.unit.name}: {line}")
        if plan.properties and self.started:
            sd = self.connect()
            try:
                sd.set_properties(self.unit.name, plan.properties)
            except Exception as e:
                raise self._failed(sd, e, "set the properties of") from None
            finally:
                sd.close()
        self.inner.set(plan.files, update)

    def _current_quota(self) -> int:
        """The CPU quota in force (-1: none), from the cgroup files."""
        paths = self.inner.paths()
        if self.version == 2:
            words = self.files.read(self._dir("", paths[""], "cpu.max")).split()
            return -1 if not words or words[0] == "max" else int(words[0])
        for name, rel in paths.items():
            if "cpu" in name.split(","):
                text = self.files.read(self._dir(name, rel, "cpu.cfs_quota_us")).strip()
                return int(text) if text.lstrip("-").isdigit() else -1
        return -1

    def _dir(self, hierarchy: str, rel: str, name: str = "") -> str:
        base = (
            os.path.join(self.root, hierarchy, rel.lstrip("/"))
            if hierarchy
            else os.path.join(self.root, rel.lstrip("/"))
        )
        return os.path.join(base, name) if name else base

    def destroy(self) -> None:
        """Stop the unit (systemd kills what is left in it and removes its cgroup), let
        systemd forget it, then remove what is left: the cgroups the inner manager made
        where systemd does not manage the hierarchy (v1), and anything below the unit's
        cgroup an older systemd leaves (runc: systemd 239 keeps the sub-cgroups).  When
        systemd cannot be reached or refuses, what pyrunc made is removed all the same
        (a failed create's directories are empty: its processes are dead) and the error
        is raised after."""
        if not self.started:
            self.inner.destroy()  # nothing of systemd's is ours: a unit there is another's
            return
        stop_error: Exception | None = None
        try:
            sd = self.connect()
        except Exception as e:
            stop_error = e
        else:
            try:
                job = sd.stop(self.unit.name)
                if job is not None:
                    result = sd.wait_job(job, self.unit.name, "stop")
                    if result != "done":
                        _warn(f"systemd stopped unit {self.unit.name} with result {result!r}")
                sd.reset_failed(self.unit.name)
            except Exception as e:
                stop_error = self._failed(sd, e, "stop")
            finally:
                sd.close()
        try:
            self.inner.destroy()
        except CgroupError:
            if stop_error is None:
                raise
        if stop_error is not None:
            raise stop_error  # the unit's own cgroups are systemd's while it may still run
        failed = []
        for hierarchy, rel in self.inner.paths().items():
            failed += [d for d in cgroup_dirs_deepest_first(self._dir(hierarchy, rel)) if not self.files.rmdir(d)]
        if failed:
            raise CgroupError(None, f"cannot remove cgroup {failed[0]}: processes are still in it")

    # -- the rest is the cgroup's files -------------------------------------------------

    def pids(self) -> list[int]:
        return self.inner.pids()

    def freeze(self) -> None:
        self.inner.freeze()

    def thaw(self) -> None:
        self.inner.thaw()

    def is_frozen(self) -> bool:
        return self.inner.is_frozen()

    def stopped_by_freezer(self) -> bool:
        return self.inner.stopped_by_freezer()

    def stats(self) -> "dict[str, Any]":
        return self.inner.stats()

    def oom_kills(self) -> int:
        return self.inner.oom_kills()

    def kill_all(self, sig: int) -> None:
        self.inner.kill_all(sig)
