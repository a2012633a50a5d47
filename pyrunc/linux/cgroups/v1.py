"""The cgroup v1 manager, for v1 and hybrid hosts.

A v1 host mounts one hierarchy per controller (or per group of controllers, such as
`cpu,cpuacct`) under /sys/fs/cgroup.  The container gets the same path in each of them.
On a hybrid host the cgroup2 hierarchy at /sys/fs/cgroup/unified is joined as well, as
runc does, and any controller the host attached there instead of to a v1 hierarchy
(hugetlb on some kernels) is driven through its v2 files.
"""

import _signal as signal  # signal.py would import enum
import posix  # not os: `delete` and `kill` load this manager without it; create's, update's
import time  # and events' paths import os.path where they test a file

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import (
    CGROUP_MOUNT_ROOT,
    Manager,
    cgroup_dirs_deepest_first,
    join,
    own_cgroups,
    pids_below,
    resolve,
)
from pyrunc.linux.cgroups.files import REAL_FILES, CgroupFiles, Write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UNIFIED = "unified"
UNLIMITED = -1
FREEZE_TIMEOUT = 10.0
# How the v1 controllers name the three kinds of user time in cpuacct.stat: USER_HZ ticks.
_TICK_NS = 1_000_000_000 // posix.sysconf("SC_CLK_TCK")
_EINVAL = 22  # errno.EINVAL (Linux)


def hierarchy_controllers(root: str = CGROUP_MOUNT_ROOT, files: CgroupFiles = REAL_FILES) -> dict[str, set[str]]:
    """{hierarchy directory name: set of controllers a cgroup below it can use} for the
    hierarchies under root, read from the directories themselves (cgroupfs.py's
    host_cgroup_mounts reads the mounts' types and options from mountinfo instead).
    Symlinks (cpu -> cpu,cpuacct) are aliases, not hierarchies."""
    import os.path

    found: dict[str, set[str]] = {}
    for name in sorted(os.listdir(root)):
        path = join(root, name)
        if os.path.islink(path) or not os.path.isfile(join(path, "cgroup.procs")):
            continue
        if name == UNIFIED:
            # Only what the host's root delegates to its children is usable below it.
            found[name] = files.read_words(join(path, "cgroup.subtree_control"))
        else:
            found[name] = named_controllers(name)
    return found


def named_controllers(name: str) -> set[str]:
    """A v1 hierarchy's controllers by its directory's name, as hierarchy_controllers
    finds them: `cpu,cpuacct` holds both, `systemd` is systemd's named hierarchy.  Part of
    the state format: the compact record (to_dict) names its hierarchies alone, so a
    change here needs a new state version (store.STATE_VERSION)."""
    return {"name=systemd"} if name == "systemd" else set(name.split(","))


def _own_path(name: str, controllers: set[str], own: dict[str, str]) -> str:
    if name == UNIFIED:
        return own.get("", "/")
    for key, path in own.items():
        if key and set(key.split(",")) == controllers:
            return path
    return "/"


_ZERO_IS_UNSET = ("shares", "period", "quota", "realtimePeriod", "realtimeRuntime")


class V1Manager(Manager):
    version = 1

    def __init__(
        self,
        path: str,
        root: str = CGROUP_MOUNT_ROOT,
        hybrid: bool = False,
        own: dict[str, str] | None = None,
        files: CgroupFiles = REAL_FILES,
        _saved: "dict[str, Any] | None" = None,
    ) -> None:
        self.root = root
        self.hybrid = hybrid
        self.files = files
        if _saved is not None:
            if "dirs" in _saved:
                self.controllers: dict[str, set[str]] = {k: set(v) for k, v in _saved["controllers"].items()}
                self.dirs: dict[str, str] = dict(_saved["dirs"])
                self.made: dict[str, list[str]] = {k: list(v) for k, v in _saved["made"].items()}
            else:  # the compact record (to_dict): one dir and one made list for every hierarchy
                # named, its controllers those of its name but the unified hierarchy's
                self.controllers = {
                    k: set(_saved[UNIFIED]) if k == UNIFIED else named_controllers(k) for k in _saved["hierarchies"]
                }
                self.dirs = dict.fromkeys(self.controllers, _saved["dir"])
                self.made = {k: list(_saved["made"]) for k in self.controllers}
            return
        own = own_cgroups() if own is None else own
        self.controllers = hierarchy_controllers(root, files)
        if not hybrid:
            self.controllers.pop(UNIFIED, None)
        # The path inside each hierarchy, resolved against our own cgroup there.
        self.dirs = {name: resolve(path, _own_path(name, ctrls, own)) for name, ctrls in self.controllers.items()}
        self.made = {}

    @classmethod
    def from_dict(
        cls, saved: "dict[str, Any]", root: str = CGROUP_MOUNT_ROOT, files: CgroupFiles = REAL_FILES
    ) -> "V1Manager":
        return cls("", root=root, hybrid=saved.get("hybrid", False), files=files, _saved=saved)

    def to_dict(self) -> "dict[str, Any]":
        """The record state.json keeps.  Compact where every hierarchy has the same dir and
        the same made list (an absolute cgroupsPath made afresh: the usual case) and the
        controllers its name says (named_controllers; the unified hierarchy's are listed):
        `dir` and `made` once, the hierarchies by name, so that from_dict makes this very
        manager again; else `dirs`, `made` and `controllers` per hierarchy.  `list` parses
        and checks a thousand of them (docs/cgroups.md)."""
        controllers = {k: sorted(v) for k, v in self.controllers.items()}
        dirs = set(self.dirs.values())
        made = list(self.made.values())
        if (
            len(dirs) == 1
            and made
            and made.count(made[0]) == len(made)
            and self.dirs.keys() == self.made.keys() == controllers.keys()
            and all(v == named_controllers(k) for k, v in self.controllers.items() if k != UNIFIED)
        ):
            compact = {
                "version": 1,
                "hybrid": self.hybrid,
                "dir": dirs.pop(),
                "made": list(made[0]),
                "hierarchies": list(controllers),
            }
            if UNIFIED in controllers:
                compact[UNIFIED] = controllers[UNIFIED]
            return compact
        return {"version": 1, "hybrid": self.hybrid, "dirs": self.dirs, "made": self.made, "controllers": controllers}

    def paths(self) -> dict[str, str]:
        return dict(self.dirs)

    # -- where things are ---------------------------------------------------------------

    def _dir(self, name: str) -> str:
        return join(self.root, name, self.dirs[name].lstrip("/"))

    def _hierarchy_of(self, controller: str) -> str | None:
        """The hierarchy holding a controller, v1 first; None when the host has none."""
        for name, ctrls in self.controllers.items():
            if controller in ctrls and name != UNIFIED:
                return name
        if UNIFIED in self.controllers and controller in self.controllers[UNIFIED]:
            return UNIFIED
        return None

    def _path(self, controller: str, filename: str) -> str | None:
        name = self._hierarchy_of(controller)
        return None if name is None else join(self._dir(name), filename)

    # -- lifecycle ----------------------------------------------------------------------

    def create(self, pid: int | None = None) -> None:
        for name in self.controllers:
            made = self.files.mkdirs(join(self.root, name), self.dirs[name])
            self.made[name] = made
            if "cpuset" in self.controllers[name] and name != UNIFIED:
                # A new cpuset is empty, and an empty cpuset takes no process: copy the
                # parent's, down every level (an existing level may be empty too).
                cur = join(self.root, name)
                for part in [p for p in self.dirs[name].split("/") if p]:
                    cur = join(cur, part)
                    self.files.inherit_cpuset(cur)
            if name == UNIFIED and "hugetlb" in self.controllers[UNIFIED]:
                self.files.enable_down(join(self.root, name), self.dirs[name], "hugetlb")

    def made_leaf(self) -> bool:
        return all(self.made.get(name) and self.made[name][-1] == self.dirs[name] for name in self.controllers)

    def add(self, pid: int, dirs: dict[str, str] | None = None) -> None:
        for name in self.controllers:
            self.files.write(join((dirs or {}).get(name) or self._dir(name), "cgroup.procs"), str(pid), None)

    def sub_dirs(self, subs: dict[str, str]) -> dict[str, str]:
        from pyrunc.linux.cgroups import sub

        if sub.ALL in subs:  # every hierarchy, the unified one of a hybrid host too
            return {
                name: sub.existing(self._dir(name), subs[sub.ALL], f" {self.dirs[name]} (the {name} hierarchy)")
                for name in self.controllers
            }
        dirs: dict[str, str] = {}
        for ctrl, rel in subs.items():
            name = self._hierarchy_of(ctrl)
            if name is None:
                raise CgroupError(
                    None,
                    f"no {ctrl} controller on this host (it has: "
                    f"{', '.join(sorted(set().union(*self.controllers.values())))})",
                )
            path = sub.existing(self._dir(name), rel, f" {self.dirs[name]} (the {name} hierarchy)")
            if dirs.setdefault(name, path) != path:
                raise CgroupError(
                    None, f"controller {ctrl} shares the {name} hierarchy with another controller given another path"
                )
            dirs[name] = path
        return dirs

    def pids(self) -> list[int]:
        seen: set[int] = set()
        for name in self.controllers:
            seen |= pids_below(self._dir(name), self.files)
        return sorted(seen)

    def freeze(self) -> None:
        self._freeze("FROZEN")

    def thaw(self) -> None:
        self._freeze("THAWED")

    def _freeze(self, state: str) -> None:
        path = self._path("freezer", "freezer.state")
        if path is None:
            raise CgroupError(None, "the host has no freezer cgroup controller")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while True:
            # Writing FROZEN again retries the processes that were forking meanwhile.
            self.files.write(path, state, None)
            if self.files.read(path).strip() == state:
                return
            if time.monotonic() > deadline:
                raise CgroupError(None, f"cgroup did not become {state.lower()} in {FREEZE_TIMEOUT:.0f}s")
            time.sleep(0.01)

    def is_frozen(self) -> bool:
        path = self._path("freezer", "freezer.state")
        return path is not None and self.files.read(path).strip() != "THAWED"

    def stopped_by_freezer(self) -> bool:
        # v1's freezer.state is the effective state (FROZEN under a frozen parent too);
        # a hybrid host's unified hierarchy has cgroup2's freezer besides.
        path = self._path("freezer", "freezer.state")
        if path is not None and self.files.read(path).strip() in ("FROZEN", "FREEZING"):
            return True
        if UNIFIED not in self.controllers:
            return False
        return self.files.cgroup2_frozen(self._dir(UNIFIED))

    def kill_all(self, sig: int) -> None:
        """Freeze, signal, thaw: a process cannot fork a new one between our reading the
        list and the signal arriving."""
        frozen = False
        # A cgroup frozen already stays so: thawing one is for whoever froze it.
        if self._hierarchy_of("freezer") and sig == signal.SIGKILL and not self.is_frozen():
            try:
                self.freeze()
                frozen = True
            except (CgroupError, OSError):
                pass
        try:
            for pid in self.pids():
                try:
                    posix.kill(pid, sig)
                except ProcessLookupError:
                    pass
        finally:
            if frozen:
                self.thaw()

    def destroy(self) -> None:
        """In each hierarchy, as v2's: the container's cgroup with the child cgroups its
        processes made, deepest first; then the levels above it that create made, where
        nobody else uses them now (another container's cgroup may live there since)."""
        failed: list[str] = []
        for name, made in self.made.items():
            if not made:
                continue
            above = made
            if made[-1] == self.dirs.get(name):  # else a create racing for the path made it
                own = join(self.root, name, made[-1].lstrip("/"))
                left = [d for d in cgroup_dirs_deepest_first(own) if not self.files.rmdir(d)]
                failed += left
                if left:
                    continue
                above = made[:-1]
            for rel in reversed(above):
                if not self.files.rmdir_unused(join(self.root, name, rel.lstrip("/"))):
                    break
        if failed:
            raise CgroupError(None, f"cannot remove cgroup {failed[0]}: processes are still in it")

    # -- resources ----------------------------------------------------------------------

    def set(self, resources: "dict[str, Any] | None", update: bool = False) -> None:
        r = resources or {}
        if r.get("unified"):
            raise CgroupError(
                "linux.resources.unified", "needs a cgroup v2 host; this host's controllers are cgroup v1"
            )
        if "memory" in r:
            self._set_memory(r["memory"] or {}, update)
        if "cpu" in r:
            self._set_cpu(r["cpu"] or {})
        if (r.get("pids") or {}).get("limit") is not None:
            limit = r["pids"]["limit"]
            # -1 (any negative) is no limit; 0 is a real limit (config-linux.md, "PIDs").
            self._write("pids", "pids.max", "max" if limit < 0 else limit, "linux.resources.pids.limit")
        if "blockIO" in r:
            self._set_blkio(r["blockIO"] or {})
        for i, h in enumerate(r.get("hugepageLimits") or ()):
            field = f"linux.resources.hugepageLimits[{i}]"
            if self._hierarchy_of("hugetlb") == UNIFIED:
                self._write("hugetlb", f"hugetlb.{h['pageSize']}.max", h["limit"], field)
            else:
                self._write("hugetlb", f"hugetlb.{h['pageSize']}.limit_in_bytes", h["limit"], field)
        for dev, lim in (r.get("rdma") or {}).items():
            parts = [
                f"{k}={lim[v]}" for k, v in (("hca_handle", "hcaHandles"), ("hca_object", "hcaObjects")) if v in lim
            ]
            self._write("rdma", "rdma.max", f"{dev} {' '.join(parts)}", f"linux.resources.rdma.{dev}")
        net = r.get("network") or {}
        if net.get("classID") is not None:
            self._write("net_cls", "net_cls.classid", net["classID"], "linux.resources.network.classID")
        for p in net.get("priorities") or ():
            self._write(
                "net_prio", "net_prio.ifpriomap", f"{p['name']} {p['priority']}", "linux.resources.network.priorities"
            )
        if "devices" in r and not update:
            self._set_devices(r["devices"])

    def _write(self, controller: str, filename: str, value: object, field: str) -> None:
        name = self._hierarchy_of(controller)
        if name is None:
            raise CgroupError(field, f"the host has no {controller} cgroup controller")
        import os.path

        path = join(self._dir(name), filename)
        if not os.path.exists(path):
            raise CgroupError(
                field,
                f"this kernel has no {filename} (the {controller} controller "
                f"lacks the file, or the I/O scheduler does not support it)",
            )
        self.files.write(path, str(value), field)

    def _set_memory(self, mem: "dict[str, Any]", update: bool) -> None:
        f = "linux.resources.memory."
        limit, swap = mem.get("limit"), mem.get("swap")
        if update and mem.get("checkBeforeUpdate") and limit is not None and limit > 0:
            # No memory hierarchy: the write below names the field.
            usage_file = self._path("memory", "memory.usage_in_bytes")
            usage = self.files.read_int(usage_file) if usage_file else 0
            if limit < usage:
                raise CgroupError(f + "limit", f"{limit} is below the current usage {usage}")
        if limit == UNLIMITED and swap is None:
            swap = UNLIMITED  # as runc: an unlimited memory limit lifts the swap limit too
        if swap is None and limit is not None and limit > 0:
            memsw = self._current_limit("memory.memsw.limit_in_bytes")
            if memsw and limit > memsw:
                raise CgroupError(
                    f + "limit", f"{limit} is above the memory+swap limit {memsw}: set swap (--memory-swap) too"
                )
        # memsw must never be below the memory limit: raise it first, lower it last.
        order = [
            Write("memory.limit_in_bytes", limit, f + "limit"),
            Write("memory.memsw.limit_in_bytes", swap, f + "swap"),
        ]
        if swap is not None and (
            swap == UNLIMITED
            or limit is None
            or limit == UNLIMITED
            or swap > self._current_limit("memory.limit_in_bytes")
        ):
            order.reverse()
        for w in order:
            if w.value is not None:
                self._write("memory", w.file, w.value, w.field)
        if mem.get("reservation") is not None:
            self._write("memory", "memory.soft_limit_in_bytes", mem["reservation"], f + "reservation")
        for key, filename in (
            ("kernel", "memory.kmem.limit_in_bytes"),
            ("kernelTCP", "memory.kmem.tcp.limit_in_bytes"),
        ):
            if mem.get(key) is not None:
                self._write("memory", filename, mem[key], f + key)
        if mem.get("swappiness") is not None:
            self._write("memory", "memory.swappiness", mem["swappiness"], f + "swappiness")
        if mem.get("disableOOMKiller") is not None:
            self._write("memory", "memory.oom_control", int(mem["disableOOMKiller"]), f + "disableOOMKiller")
        if mem.get("useHierarchy") is not None:
            self._write("memory", "memory.use_hierarchy", int(mem["useHierarchy"]), f + "useHierarchy")

    def _current_limit(self, filename: str) -> int:
        path = self._path("memory", filename)
        if path is None:
            return 0
        try:
            return int(self.files.read(path))
        except (OSError, ValueError, TypeError):
            return 0

    def _set_cpu(self, cpu: "dict[str, Any]") -> None:
        f = "linux.resources.cpu."
        # 0 is "not set" for these, as below.
        self._set_cfs(*(cpu.get(k) or None for k in ("period", "quota")))
        # Periods before the budgets that must fit in them.
        for key, ctrl, filename in (
            ("shares", "cpu", "cpu.shares"),
            ("burst", "cpu", "cpu.cfs_burst_us"),
            ("realtimePeriod", "cpu", "cpu.rt_period_us"),
            ("realtimeRuntime", "cpu", "cpu.rt_runtime_us"),
            ("idle", "cpu", "cpu.idle"),
            ("cpus", "cpuset", "cpuset.cpus"),
            ("mems", "cpuset", "cpuset.mems"),
        ):
            value = cpu.get(key)
            # 0 is "not set" for these, as runc reads them (Docker's update sends zeros).
            if value is None or value == "" or (key in _ZERO_IS_UNSET and value == 0):
                continue
            if key == "realtimeRuntime" and value > 0:
                self._grant_rt_runtime(value, cpu.get("realtimePeriod"))
            self._write(ctrl, filename, value, f + key)

    def _set_cfs(self, period: int | None, quota: int | None) -> None:
        """cpu.cfs_period_us and cpu.cfs_quota_us (None: unchanged).  The kernel checks
        each write against the parent's limit with the other file as it stands, so one
        order can be refused where the other passes: a period lowered below what the
        current quota allows, a quota raised beyond what the current period allows.
        Period first; when the kernel refuses it (EINVAL) and a quota comes too, quota
        first.  (v2's cpu.max is one write of both.)"""
        f = "linux.resources.cpu."
        writes = [Write("cpu.cfs_period_us", period, f + "period"), Write("cpu.cfs_quota_us", quota, f + "quota")]
        writes = [w for w in writes if w.value is not None]
        if not writes:
            return
        first, rest = writes[0], writes[1:]
        try:
            self._write("cpu", first.file, first.value, first.field)
        except CgroupError as e:
            if e.errno != _EINVAL or not rest:
                raise
            rest.append(first)  # the quota, then the period again
        for w in rest:
            self._write("cpu", w.file, w.value, w.field)

    def _grant_rt_runtime(self, runtime: int, period: int | None) -> None:
        """A cgroup's realtime share (runtime/period) must fit in its parent's, and a new
        cgroup has none: give the levels create() made the same share, top-down."""
        name = self._hierarchy_of("cpu")
        if name is None:
            return  # the write that follows names the field
        period = period or self.files.read_int(join(self._dir(name), "cpu.rt_period_us")) or 1
        for rel in self.made.get(name, [])[:-1]:
            d = join(self.root, name, rel.lstrip("/"))
            need = -(-runtime * self.files.read_int(join(d, "cpu.rt_period_us")) // period)
            if self.files.read_int(join(d, "cpu.rt_runtime_us")) < need:
                self.files.write(join(d, "cpu.rt_runtime_us"), str(need), "linux.resources.cpu.realtimeRuntime")

    def _set_blkio(self, bio: "dict[str, Any]") -> None:
        f = "linux.resources.blockIO."
        weight_file = self._first_existing("blkio", ("blkio.weight", "blkio.bfq.weight"))
        # 0 is "not set", as runc reads it: Docker sends it for every container.
        if bio.get("weight"):
            self._write("blkio", weight_file or "blkio.weight", bio["weight"], f + "weight")
        if bio.get("leafWeight"):
            self._write("blkio", "blkio.leaf_weight", bio["leafWeight"], f + "leafWeight")
        for i, wd in enumerate(bio.get("weightDevice") or ()):
            dev = f"{wd['major']}:{wd['minor']}"
            if wd.get("weight") is not None:
                name = (weight_file or "blkio.weight") + "_device"
                self._write("blkio", name, f"{dev} {wd['weight']}", f"{f}weightDevice[{i}].weight")
            if wd.get("leafWeight") is not None:
                self._write(
                    "blkio", "blkio.leaf_weight_device", f"{dev} {wd['leafWeight']}", f"{f}weightDevice[{i}].leafWeight"
                )
        for key, filename in (
            ("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
            ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
            ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
            ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device"),
        ):
            for i, td in enumerate(bio.get(key) or ()):
                self._write("blkio", filename, f"{td['major']}:{td['minor']} {td['rate']}", f"{f}{key}[{i}]")

    def _first_existing(self, controller: str, names: tuple[str, ...]) -> str | None:
        import os.path

        for n in names:
            p = self._path(controller, n)
            if p and os.path.exists(p):
                return n
        return None

    def _set_devices(self, rules: "list[dict[str, Any]]") -> None:
        field = "linux.resources.devices"
        name = self._hierarchy_of("devices")
        if name is None:
            raise CgroupError(field, "the host has no devices cgroup controller")
        import os.path

        from pyrunc.linux.cgroups import devices_v1

        listed_path = join(self._dir(name), "devices.list")
        if not os.path.isfile(listed_path):
            raise CgroupError(field, f"cannot read {listed_path}: the devices controller lacks it")
        # From what the cgroup allows now to what the rules say, in the fewest writes and
        # never through a state more permissive than both (devices_v1.py).
        writes, reset = devices_v1.transition(self.files.read(listed_path), rules)
        # A reset is a moment of all devices or none: processes already in the cgroup
        # (one create joined) sleep through it, frozen, unless frozen already.
        freeze = (
            reset
            and pids_below(os.path.dirname(listed_path), self.files)
            and self._hierarchy_of("freezer")
            and not self.is_frozen()
        )
        if freeze:
            self.freeze()
        try:
            for allow, line in writes:
                self._write("devices", "devices.allow" if allow else "devices.deny", line, field)
        finally:
            if freeze:
                self.thaw()
        after = self.files.read(listed_path)
        if not devices_v1.matches(after, rules):
            raise CgroupError(
                field, "the kernel kept another device list than the rules': " + ", ".join(after.splitlines())
            )

    # -- statistics ---------------------------------------------------------------------

    def oom_kills(self) -> int:
        path = self._path("memory", "memory.oom_control")
        if path is None:
            return 0
        return self.files.read_keyed(path).get("oom_kill", 0)

    def stats(self) -> "dict[str, Any]":
        import os.path

        data: dict[str, Any] = {}
        acct = self._path("cpuacct", "cpuacct.usage")
        if acct:
            d = os.path.dirname(acct)
            ticks = self.files.read_keyed(join(d, "cpuacct.stat"))
            usage = {
                "total": self.files.read_int(acct),
                "percpu": self.files.read_ints(join(d, "cpuacct.usage_percpu")),
                "percpu_kernel": self.files.read_ints(join(d, "cpuacct.usage_percpu_sys")),
                "percpu_user": self.files.read_ints(join(d, "cpuacct.usage_percpu_user")),
                "kernel": ticks.get("system", 0) * _TICK_NS,
                "user": ticks.get("user", 0) * _TICK_NS,
            }
            data["cpu"] = {"usage": usage}
        cpu_stat = self._path("cpu", "cpu.stat")
        if cpu_stat:
            st = self.files.read_keyed(cpu_stat)
            data.setdefault("cpu", {})["throttling"] = {
                "periods": st.get("nr_periods", 0),
                "throttledPeriods": st.get("nr_throttled", 0),
                "throttledTime": st.get("throttled_time", 0),
            }
        mem = self._path("memory", "memory.stat")
        if mem:
            d = os.path.dirname(mem)
            raw = self.files.read_keyed(mem)

            def entry(prefix: str) -> dict[str, int]:
                return {
                    "limit": self.files.read_int(join(d, prefix + "limit_in_bytes")),
                    "usage": self.files.read_int(join(d, prefix + "usage_in_bytes")),
                    "max": self.files.read_int(join(d, prefix + "max_usage_in_bytes")),
                    "failcnt": self.files.read_int(join(d, prefix + "failcnt")),
                }

            data["memory"] = {
                "cache": raw.get("total_cache", raw.get("cache", 0)),
                "usage": entry("memory."),
                "swap": entry("memory.memsw."),
                "kernel": entry("memory.kmem."),
                "kernelTCP": entry("memory.kmem.tcp."),
                "raw": raw,
            }
        pids = self._path("pids", "pids.current")
        if pids:
            limit = self.files.read(join(os.path.dirname(pids), "pids.max")).strip()
            data["pids"] = {"current": self.files.read_int(pids), "limit": 0 if limit == "max" else int(limit or 0)}
        blk = self._path("blkio", "blkio.throttle.io_service_bytes_recursive")
        if blk:
            d = os.path.dirname(blk)
            data["blkio"] = {
                "ioServiceBytesRecursive": blkio_entries(self.files.read(blk)),
                "ioServicedRecursive": blkio_entries(self.files.read(join(d, "blkio.throttle.io_serviced_recursive"))),
            }
        return data


def blkio_entries(text: str) -> "list[dict[str, Any]]":
    entries = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, minor = parts[0].split(":")
            entries.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
    return entries
