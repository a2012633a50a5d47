"""A recording double of systemd's D-Bus manager object for the systemd driver's unit
tests (test_cgroups_systemd.py, test_cgroups_systemd_v1.py): units, jobs and their
JobRemoved signals, the scope's cgroup made under a test directory."""

from pyrunc.linux.cgroups import systemd_props
from tests.unit.fake_cgroup2 import KernelLike, existing


class Variant:
    def __init__(self, signature, value):
        self.signature, self.value = signature, value


class DBusError(Exception):
    def __init__(self, name, message):
        super().__init__(f"{name}: {message}")
        self.name, self.message = name, message


class Message:
    type = "signal"

    def __init__(self, member, body):
        self.member, self.body = member, body


class FakeSystemdConnection:
    """systemd's org.freedesktop.systemd1.Manager over one connection: `calls` records
    (member, signature, body); a started scope gets its cgroup (with its PIDs in it) under
    `root`; every job ends with a JobRemoved signal of `job_result`.  `units`: name ->
    ActiveState; `props`: name -> {property: value} as set."""

    def __init__(self, root, job_result="done", version="252.22-1~deb12u1"):
        self.root = root
        self.job_result = job_result
        self.version = version
        self.calls = []
        self.matches = []
        self.units = {}
        self.props = {}
        self.signals = []
        self.jobs = 0
        self.closed = 0
        self.keeps_sub_cgroups = False  # systemd 239 leaves a delegated scope's children

    def close(self):
        self.closed += 1

    def add_match(self, rule):
        self.matches.append(rule)

    def wait_signal(self, accept, timeout):
        for m in self.signals:
            if accept(m):
                self.signals.remove(m)
                return m
        raise TimeoutError

    def _job(self, unit, result):
        self.jobs += 1
        job = f"/org/freedesktop/systemd1/job/{self.jobs}"
        self.signals.append(Message("JobRemoved", (self.jobs, job, unit, result)))
        return job

    def _dir(self, unit):
        slice_ = self.props[unit]["Slice"]
        return self.root / (systemd_props.expand_slice(slice_).strip("/") + "/" + unit).lstrip("/")

    def call(self, destination, path, interface, member, signature="", body=(), timeout=25.0):
        self.calls.append((member, signature, body))
        if member == "Get":
            if body[1] == "Version":
                return (Variant("s", self.version),)
            return (Variant("s", self.units[path.rsplit("/", 1)[1]]),)
        if member == "GetUnit":
            if body[0] not in self.units:
                raise DBusError("org.freedesktop.systemd1.NoSuchUnit", f"Unit {body[0]} not loaded.")
            return ("/org/freedesktop/systemd1/unit/" + body[0],)
        if member in ("Subscribe",):
            return ()
        if member == "StartTransientUnit":
            name, mode, props, aux = body
            assert (mode, aux) == ("replace", [])
            if name in self.units:
                raise DBusError("org.freedesktop.systemd1.UnitExists", f"Unit {name} was already loaded.")
            self.props[name] = {n: v.value for n, v in props}
            d = self._dir(name)
            if self.job_result == "done":
                self.units[name] = "active"
                existing(self.root, str(d.relative_to(self.root)))
                (d / "cgroup.procs").write_text("".join(f"{p}\n" for p in self.props[name].get("PIDs", ())))
            else:
                self.units[name] = "failed"
            return (self._job(name, self.job_result),)
        if member == "SetUnitProperties":
            name, runtime, props = body
            assert runtime is True
            self.props[name].update({n: v.value for n, v in props})
            return ()
        if member == "StopUnit":
            name = body[0]
            if self.units.get(name) != "active":
                raise DBusError("org.freedesktop.systemd1.NoSuchUnit", f"Unit {name} not loaded.")
            del self.units[name]
            d = self._dir(name)
            (d / "cgroup.procs").write_text("")  # its processes killed
            if not self.keeps_sub_cgroups:
                for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                    KernelLike().rmdir(str(sub))
                KernelLike().rmdir(str(d))
            return (self._job(name, "done"),)
        if member == "ResetFailedUnit":
            if self.units.get(body[0]) == "failed":
                del self.units[body[0]]
            return ()
        raise AssertionError(member)

    def members(self):
        return [c[0] for c in self.calls]
