"""The cgroup v2 manager, for hosts where /sys/fs/cgroup is itself cgroup2.

One hierarchy: the container's cgroup is one directory.  A controller reaches it only
when every ancestor lists the controller in its cgroup.subtree_control, so create()
enables the host's controllers down the path.  linux.resources is written the way runc
writes it on v2 (the v1-shaped values converted by convert.py); `unified` is written as
raw files last, so that it has the last word.

Fields v2 has no file for are ignored with a warning where runc ignores them (they only
tune: swappiness, kernel memory, leaf weights, the OOM killer switch) and refused where
the config asks for something that cannot happen (realtime budgets, net_cls, net_prio).
"""

import _signal as signal  # signal.py would import enum
import posix  # not os: `delete` and `kill` load this manager without it
import time

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import (
    CGROUP_MOUNT_ROOT,
    Manager,
    cgroup_dirs_deepest_first,
    convert,
    exists,
    join,
    own_cgroups,
    pids_below,
    resolve,
)
from pyrunc.linux.cgroups.files import REAL_FILES, CgroupFiles, Write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.linux.kernel import Kernel

    # A method of V2Manager is named `set`: in its body the builtin needs another name.
    Names = set[str]

# The controllers a container's cgroup gets when the host has them (devices and freezer
# are built into cgroup2's core, not controllers one enables).
CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")
# Core files every cgroup has: `unified` may name them without any controller.
CORE = "cgroup"
FREEZE_TIMEOUT = 10.0
# v2 has no per-cgroup swappiness: the global one applies to every cgroup.
VM_SWAPPINESS = "/proc/sys/vm/swappiness"
RES = "linux.resources."


def _warn(msg: str) -> None:
    from pyrunc import log

    log.warning(msg)


class V2Manager(Manager):
    version = 2

    def __init__(
        self,
        path: str,
        root: str = CGROUP_MOUNT_ROOT,
        own: dict[str, str] | None = None,
        files: CgroupFiles = REAL_FILES,
        kernel: "Kernel | None" = None,
        _saved: "dict[str, Any] | None" = None,
    ) -> None:
        self.root = root
        self.files = files
        self.kernel = kernel  # loads the device program (kernel.Kernel)
        if _saved is not None:
            self.dir: str = _saved["dir"]
            self.made: list[str] = list(_saved["made"])
            return
        own = own_cgroups() if own is None else own
        self.dir = resolve(path, own.get("", "/"))
        self.made = []

    @classmethod
    def from_dict(
        cls,
        saved: "dict[str, Any]",
        root: str = CGROUP_MOUNT_ROOT,
        files: CgroupFiles = REAL_FILES,
    ) -> "V2Manager":
        return cls("", root=root, files=files, _saved=saved)

    def to_dict(self) -> "dict[str, Any]":
        return {"version": 2, "dir": self.dir, "made": list(self.made)}

    def paths(self) -> dict[str, str]:
        return {"": self.dir}

    def directory(self) -> str:
        """The cgroup's directory, absolute (for an fd a child is forked into)."""
        return self._path()

    # -- where things are ---------------------------------------------------------------

    def _path(self, name: str = "", rel: str | None = None) -> str:
        base = join(self.root, (self.dir if rel is None else rel).lstrip("/"))
        return join(base, name) if name else base

    def _host_controllers(self) -> set[str]:
        return self.files.read_words(join(self.root, "cgroup.controllers"))

    def _controllers(self) -> set[str]:
        """The controllers available in the container's cgroup: those its parent delegates."""
        return self.files.read_words(self._path("cgroup.controllers"))

    def _require(self, controller: str, field: str, enabled: set[str]) -> None:
        if controller in enabled:
            return
        if controller not in self._host_controllers():
            raise CgroupError(field, f"the host has no {controller} cgroup controller")
        raise CgroupError(
            field,
            f"the {controller} controller is not enabled for cgroup {self.dir} "
            f"(a parent cgroup does not delegate it in cgroup.subtree_control)",
        )

    # -- lifecycle ----------------------------------------------------------------------

    def create(self, pid: int | None = None) -> None:
        parts = [p for p in self.dir.split("/") if p]
        made: list[str] = []
        try:
            # One level at a time, so that a failure still knows what it made.
            for i in range(1, len(parts) + 1):
                made += self.files.mkdirs(self.root, "/" + "/".join(parts[:i]))
        except CgroupError:
            for rel in reversed(made):
                self.files.rmdir(self._path(rel=rel))
            raise
        self.made = made
        self._enable_controllers(parts)

    def _enable_controllers(self, parts: list[str]) -> None:
        """Every ancestor, from the root down to the container's parent, enables the host's
        controllers for its children, as runc does.  Failures are left to set(): a cgroup
        with processes of its own cannot delegate, and set() then names the field."""
        wanted = [c for c in CONTROLLERS if c in self._host_controllers()]
        if not wanted:
            return
        line = " ".join("+" + c for c in wanted)
        cur = self.root
        for part in [""] + parts[:-1]:
            cur = join(cur, part) if part else cur
            target = join(cur, "cgroup.subtree_control")
            if set(wanted) <= self.files.read_words(target):
                continue
            try:
                self.files.write(target, line, None)
            except CgroupError:
                for c in wanted:  # one by one: enable what can be
                    try:
                        self.files.write(target, "+" + c, None)
                    except CgroupError:
                        pass

    def made_leaf(self) -> bool:
        return bool(self.made) and self.made[-1] == self.dir

    def add(self, pid: int, dirs: dict[str, str] | None = None) -> None:
        self.files.write(join((dirs or {}).get("") or self._path(), "cgroup.procs"), str(pid), None)

    def sub_dirs(self, subs: dict[str, str]) -> dict[str, str]:
        from pyrunc.linux.cgroups import sub

        named = sorted(set(subs) - {sub.ALL})
        if named:
            raise CgroupError(
                None, f"controller {named[0]}: cgroup v2 has one hierarchy for every controller: give the path alone"
            )
        return {"": sub.existing(self._path(), subs[sub.ALL], f" {self.dir}")}

    def pids(self) -> list[int]:
        return sorted(pids_below(self._path(), self.files))

    def destroy(self) -> None:
        """The container's cgroup with the child cgroups its processes made, deepest first;
        then the levels above it that create made, where nobody else uses them now."""
        above = self.made
        if self.made_leaf():  # else another create, racing for the path, made it: its to remove
            failed = [d for d in cgroup_dirs_deepest_first(self._path()) if not self.files.rmdir(d)]
            if failed:
                raise CgroupError(None, f"cannot remove cgroup {failed[0]}: processes are still in it")
            above = self.made[:-1]
        for rel in reversed(above):
            if not self.files.rmdir_unused(self._path(rel=rel)):
                return  # another cgroup lives here now: leave it and those above

    # -- freezer ------------------------------------------------------------------------

    def freeze(self) -> None:
        self._freeze(1)

    def thaw(self) -> None:
        self._freeze(0)

    def _freeze(self, want: int) -> None:
        path = self._path("cgroup.freeze")
        if not exists(path):
            raise CgroupError(None, f"cgroup {self.dir} has no cgroup.freeze (needs Linux 5.2)")
        self.files.write(path, str(want), None)
        # The kernel freezes asynchronously: cgroup.events says when every task is stopped.
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while self.files.read_keyed(self._path("cgroup.events")).get("frozen", want) != want:
            if time.monotonic() > deadline:
                if want:
                    self.files.write(path, "0", None)  # do not leave it half frozen
                state = "frozen" if want else "thawed"
                raise CgroupError(None, f"cgroup {self.dir} did not become {state} in {FREEZE_TIMEOUT:.0f}s")
            time.sleep(0.01)

    def is_frozen(self) -> bool:
        return self.files.read(self._path("cgroup.freeze")).strip() == "1"

    def stopped_by_freezer(self) -> bool:
        return self.files.cgroup2_frozen(self._path())

    # -- signals ------------------------------------------------------------------------

    def kill_all(self, sig: int) -> None:
        kill_file = self._path("cgroup.kill")
        if sig == signal.SIGKILL and exists(kill_file):
            # The kernel kills the whole subtree at once: nothing can fork past it.
            self.files.write(kill_file, "1", None)
            return
        # Without cgroup.kill, SIGKILL goes round again for what forked meanwhile
        # (a fatal signal reaches frozen tasks too on v2, so no thaw is needed).
        rounds = 20 if sig == signal.SIGKILL else 1
        for _ in range(rounds):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    posix.kill(pid, sig)
                except ProcessLookupError:
                    pass

    # -- resources ----------------------------------------------------------------------

    def set(self, resources: "dict[str, Any] | None", update: bool = False) -> None:
        """Check every field first, then write: a refused field changes nothing.  Each
        part below returns the Writes (files.py) its field needs."""
        r = resources or {}
        enabled = self._controllers()
        writes: list[Write] = []
        for part in (
            self._pids,
            self._memory,
            self._io,
            self._cpu,
            self._cpuset,
            self._hugetlb,
            self._rdma,
            self._network,
        ):
            writes += part(r, enabled, update)
        writes += self._unified(r.get("unified") or {}, enabled)
        self._apply(writes)
        if "devices" in r and not update:
            self._devices(r["devices"])

    def _apply(self, writes: list[Write]) -> None:
        """Make the Writes in order; an error names the config field of the write."""
        deferred: list[Write] = []
        for w in writes:
            path = self._path(w.file)
            if not exists(path):
                if w.optional:
                    continue
                raise CgroupError(w.field, f"this kernel has no {w.file} in cgroup {self.dir}")
            try:
                self._write_lines(path, w.value)
            except CgroupError as e:
                # A larger burst than the old quota allows: retry after the new cpu.max.
                if w.after_cpu_max and any(x.file == "cpu.max" for x in writes):
                    deferred.append(w)
                    continue
                raise CgroupError(w.field, e.why) from None
        for w in deferred:
            self.files.write(self._path(w.file), str(w.value), w.field)

    def _write_lines(self, path: str, value: object) -> None:
        """One write per line: files such as io.max take a single device per write."""
        lines = [line for line in str(value).split("\n") if line.strip()] or [str(value)]
        for line in lines:
            self.files.write(path, line, None)

    def _pids(self, r: "dict[str, Any]", enabled: "Names", update: bool) -> list[Write]:
        limit = (r.get("pids") or {}).get("limit")
        if limit is None:
            return []
        field = RES + "pids.limit"
        self._require("pids", field, enabled)
        # The spec: 0 is a real limit (no new task at all), -1 is none.
        return [Write("pids.max", convert.limit_value(limit), field)]

    def _memory(self, r: "dict[str, Any]", enabled: "Names", update: bool) -> list[Write]:
        mem = r.get("memory")
        if not mem:
            return []
        f = RES + "memory."
        limit, swap, reservation = mem.get("limit"), mem.get("swap"), mem.get("reservation")
        self._ignored(mem, f)
        if not any(v for v in (limit, swap, reservation)):
            return []
        self._require("memory", f + ("limit" if limit else "swap" if swap else "reservation"), enabled)
        for key, value in (("limit", limit), ("reservation", reservation)):
            if value is not None and value < convert.UNLIMITED:
                raise CgroupError(f + key, f"{value} is neither a size nor -1 (unlimited)")
        # v2's swap file depends on both values; `update` may give only one of them.
        limit_for_swap, swap_from_cgroup = limit, False
        if update:
            if mem.get("checkBeforeUpdate") and limit and limit > 0:
                usage = convert.read_limit(self.files.read(self._path("memory.current"))) or 0
                if limit < usage:
                    raise CgroupError(f + "limit", f"{limit} is below the current usage {usage} (checkBeforeUpdate)")
            limit_for_swap, merged = self._merge_memory(limit, swap)
            swap_from_cgroup = not swap and bool(merged)
            swap = merged
        try:
            swap_max = convert.swap_max(swap, limit_for_swap)
        except ValueError as e:
            if swap_from_cgroup:
                raise CgroupError(
                    f + "limit", f"{limit} is above the container's memory+swap limit {swap}: give swap too"
                ) from None
            raise CgroupError(f + "swap", str(e)) from None
        writes = []
        if swap_max is not None:
            if exists(self._path("memory.swap.max")):
                writes.append(Write("memory.swap.max", convert.limit_value(swap_max), f + "swap"))
            elif swap_max not in (0, convert.UNLIMITED):
                # No swap accounting (swapaccount=0 or no CONFIG_MEMCG_SWAP): "no swap"
                # and "any swap" need no file, as in runc; a size cannot be honoured.
                raise CgroupError(f + "swap", "this kernel does not account swap per cgroup (no memory.swap.max)")
        if limit:
            writes.append(Write("memory.max", convert.limit_value(limit), f + "limit"))
        if reservation:
            writes.append(Write("memory.low", convert.limit_value(reservation), f + "reservation"))
        return writes

    def _merge_memory(self, limit: int | None, swap: int | None) -> tuple[int | None, int | None]:
        """`update` gives only the changed fields, but v2's swap file depends on both: take
        the other one from the cgroup, as runc takes it from the config it saved."""
        cur_limit = _oci_limit(self.files.read(self._path("memory.max")))
        cur_swap = _oci_limit(self.files.read(self._path("memory.swap.max")))
        if limit == convert.UNLIMITED and not swap:
            return limit, None  # v1's rule: lifting the memory limit lifts swap's too
        if swap and not limit:
            return cur_limit, swap
        if limit and not swap and cur_limit is not None and cur_swap is not None:
            if cur_swap == convert.UNLIMITED or cur_limit == convert.UNLIMITED:
                return limit, None  # unlimited swap stays unlimited
            return limit, cur_limit + cur_swap  # keep memory+swap as it was
        return limit, swap

    def _ignored(self, mem: "dict[str, Any]", f: str) -> None:
        """Memory fields cgroup v2 has no file for.  runc ignores them; so does pyrunc,
        saying so when the value asks for something other than v2's behaviour."""
        for key in ("kernel", "kernelTCP"):
            if mem.get(key) is not None:
                _warn(f"{f}{key}: ignored: cgroup v2 has no kernel memory limit (it is counted in memory.max)")
        swappiness = mem.get("swappiness")
        if swappiness is not None:
            host = self.files.read(VM_SWAPPINESS).strip()
            if str(swappiness) != host:
                _warn(
                    f"{f}swappiness: ignored: cgroup v2 has no per-cgroup swappiness "
                    f"(vm.swappiness {host or '?'} applies)"
                )
        if mem.get("disableOOMKiller"):
            _warn(f"{f}disableOOMKiller: ignored: cgroup v2 cannot disable the OOM killer")
        if mem.get("useHierarchy") is False:
            _warn(f"{f}useHierarchy: ignored: cgroup v2 is always hierarchical")

    def _io(self, r: "dict[str, Any]", enabled: "Names", update: bool) -> list[Write]:
        bio = r.get("blockIO")
        if not bio:
            return []
        f = RES + "blockIO."
        if bio.get("leafWeight") is not None or any(
            wd.get("leafWeight") is not None for wd in bio.get("weightDevice") or ()
        ):
            _warn(f"{f}leafWeight: ignored: cgroup v2 has no leaf weights")
        writes = []
        weighted = bio.get("weight") or any(wd.get("weight") for wd in bio.get("weightDevice") or ())
        throttles = convert.io_max_lines(bio)
        if weighted or throttles:
            first = "weight" if weighted else next(iter(throttles.values()))[1]
            self._require("io", f + first, enabled)
        # BFQ's weight, where the scheduler is there, takes v1's values as they are;
        # otherwise io.weight (the iocost controller) takes them converted (runc's order).
        bfq = weighted and exists(self._path("io.bfq.weight"))
        weight_file = "io.bfq.weight" if bfq else "io.weight"
        if bio.get("weight"):
            writes.append(
                Write(weight_file, "default " + self._io_weight(bio["weight"], bfq, f + "weight"), f + "weight")
            )
        for i, wd in enumerate(bio.get("weightDevice") or ()):
            if wd.get("weight"):
                field = f"{f}weightDevice[{i}].weight"
                writes.append(
                    Write(
                        weight_file, f"{wd['major']}:{wd['minor']} {self._io_weight(wd['weight'], bfq, field)}", field
                    )
                )
        for line, field in throttles.values():
            writes.append(Write("io.max", line, f + field))
        return writes

    @staticmethod
    def _io_weight(weight: int, bfq: bool, field: str) -> str:
        try:
            value = convert.blkio_weight_to_io_weight(weight)
        except ValueError as e:
            raise CgroupError(field, str(e)) from None
        return str(weight if bfq else value)

    def _cpu(self, r: "dict[str, Any]", enabled: "Names", update: bool) -> list[Write]:
        cpu = r.get("cpu")
        if not cpu:
            return []
        f = RES + "cpu."
        for key in ("realtimeRuntime", "realtimePeriod"):
            if cpu.get(key):
                raise CgroupError(f + key, "cgroup v2 has no realtime CPU budget (cpu.rt_* is cgroup v1 only)")
        writes = []
        quota, period, burst = cpu.get("quota"), cpu.get("period"), cpu.get("burst")
        weight = convert.shares_to_weight(cpu.get("shares"))
        asked = {
            "idle": cpu.get("idle") is not None,
            "shares": weight is not None,
            "burst": burst is not None,
            "quota": bool(quota),
            "period": bool(period),
        }
        first = next((k for k, v in asked.items() if v), None)
        if first:
            self._require("cpu", f + first, enabled)
        if quota and quota > 0 and burst and burst > quota:
            raise CgroupError(f + "burst", f"{burst} is above the quota {quota}")
        # Idle before weight: the kernel takes no weight for an idle group, as runc orders it.
        if cpu.get("idle") is not None:
            writes.append(Write("cpu.idle", str(cpu["idle"]), f + "idle"))
        if weight is not None:
            writes.append(Write("cpu.weight", str(weight), f + "shares"))
        if burst is not None:
            writes.append(Write("cpu.max.burst", str(burst), f + "burst", after_cpu_max=True))
        current = self.files.read(self._path("cpu.max")).split()
        line = convert.cpu_max(quota, period, current[0] if current else "max")
        if line is not None:
            writes.append(Write("cpu.max", line, f + ("quota" if quota else "period")))
        return writes

    def _cpuset(self, r: "dict[str, Any]", enabled: "Names", update: bool) -> list[Write]:
        cpu = r.get("cpu") or {}
        writes = []
        for key in ("cpus", "mems"):
            if cpu.get(key):
                self._require("cpuset", RES + "cpu." + key, enabled)
                writes.append(Write("cpuset." + key, cpu[key], RES + "cpu." + key))
        return writes

    def _hugetlb(self, r: "dict[str, Any]", enabled: "Names", update: bool) -> list[Write]:
        writes = []
        for i, h in enumerate(r.get("hugepageLimits") or ()):
            field = f"{RES}hugepageLimits[{i}]"
            self._require("hugetlb", field, enabled)
            size = h["pageSize"]
            if not exists(self._path(f"hugetlb.{size}.max")):
                raise CgroupError(field, f"this kernel has no {size} huge pages (no hugetlb.{size}.max)")
            writes.append(Write(f"hugetlb.{size}.max", str(h["limit"]), field))
            # Reservations too, where the kernel accounts them: the spec's preferred limit.
            writes.append(Write(f"hugetlb.{size}.rsvd.max", str(h["limit"]), field, optional=True))
        return writes

    def _rdma(self, r: "dict[str, Any]", enabled: "Names", update: bool) -> list[Write]:
        writes = []
        for dev, limits in (r.get("rdma") or {}).items():
            field = f"{RES}rdma.{dev}"
            self._require("rdma", field, enabled)
            writes.append(Write("rdma.max", convert.rdma_max_line(dev, limits), field))
        return writes

    def _network(self, r: "dict[str, Any]", enabled: "Names", update: bool) -> list[Write]:
        net = r.get("network") or {}
        if net.get("classID") is not None:
            raise CgroupError(RES + "network.classID", "cgroup v2 has no net_cls controller")
        if net.get("priorities"):
            raise CgroupError(RES + "network.priorities", "cgroup v2 has no net_prio controller")
        return []

    def _unified(self, unified: "dict[str, Any]", enabled: "Names") -> list[Write]:
        """Raw v2 files, written last so that they override the converted fields."""
        writes = []
        for key, value in unified.items():
            field = f'{RES}unified["{key}"]'
            if "/" in key or key in (".", "..") or "." not in key:
                raise CgroupError(field, "must be a cgroup file name of the form <controller>.<file>")
            controller = key.split(".", 1)[0]
            if controller != CORE:
                self._require(controller, field, enabled)
            writes.append(Write(key, value, field))
        return writes

    def _devices(self, rules: "list[dict[str, Any]]") -> None:
        # The eBPF device program replaces v1's devices.allow/deny lists.
        from pyrunc.linux.cgroups import devices_bpf

        assert self.kernel is not None  # new_manager gives it one; a loaded manager never sets devices
        devices_bpf.apply(self.kernel, self._path(), rules)

    # -- statistics ---------------------------------------------------------------------

    def oom_kills(self) -> int:
        return self.files.read_keyed(self._path("memory.events")).get("oom_kill", 0)

    def stats(self) -> "dict[str, Any]":
        """runc's `events --stats` data (runc's types/events.go keys); a part whose files
        are missing is left out."""
        data: dict[str, Any] = {}
        for part, stat in (
            ("cpu", self._cpu_stats),
            ("memory", self._memory_stats),
            ("pids", self._pids_stats),
            ("blkio", self._io_stats),
            ("hugetlb", self._hugetlb_stats),
        ):
            value = stat()
            if value:
                data[part] = value
        return data

    def _cpu_stats(self) -> "dict[str, Any] | None":
        st = self.files.read_keyed(self._path("cpu.stat"))
        if not st:
            return None
        out: dict[str, Any] = {
            "usage": {
                "total": st.get("usage_usec", 0) * 1000,
                "kernel": st.get("system_usec", 0) * 1000,
                "user": st.get("user_usec", 0) * 1000,
            }
        }
        if "nr_periods" in st:  # only with the cpu controller enabled
            out["throttling"] = {
                "periods": st["nr_periods"],
                "throttledPeriods": st.get("nr_throttled", 0),
                "throttledTime": st.get("throttled_usec", 0) * 1000,
            }
        return out

    def _memory_stats(self) -> "dict[str, Any] | None":
        if not exists(self._path("memory.current")):
            return None
        raw = self.files.read_keyed(self._path("memory.stat"))
        usage = self._memory_entry("memory")
        out: dict[str, Any] = {"cache": raw.get("file", 0), "usage": usage, "raw": raw}
        if exists(self._path("memory.swap.current")):
            swap = self._memory_entry("memory.swap")
            # v1 reported memory+swap: add memory in, as runc does; its peak cannot be summed.
            swap["usage"] += usage["usage"]
            if swap["limit"] != convert.MAX_UINT64 and usage["limit"] != convert.MAX_UINT64:
                swap["limit"] += usage["limit"]
            else:
                swap["limit"] = convert.MAX_UINT64
            swap["max"] = 0
            out["swap"] = swap
        return out

    def _memory_entry(self, prefix: str) -> dict[str, int]:
        # failcnt: how often the limit was hit, v2's `max` event (v1's failcnt counted that).
        return {
            "usage": convert.read_limit(self.files.read(self._path(prefix + ".current"))) or 0,
            "limit": convert.read_limit(self.files.read(self._path(prefix + ".max"))) or 0,
            "max": convert.read_limit(self.files.read(self._path(prefix + ".peak"))) or 0,
            "failcnt": self.files.read_keyed(self._path(prefix + ".events")).get("max", 0),
        }

    def _pids_stats(self) -> dict[str, int] | None:
        current = self.files.read(self._path("pids.current")).strip()
        if not current:
            return None
        limit = self.files.read(self._path("pids.max")).strip()
        return {"current": int(current), "limit": 0 if limit in ("max", "") else int(limit)}

    def _io_stats(self) -> "dict[str, list[dict[str, Any]]] | None":
        if not exists(self._path("io.stat")):
            return None
        return io_stat_entries(self.files.read(self._path("io.stat")))

    def _hugetlb_stats(self) -> dict[str, dict[str, int]] | None:
        out: dict[str, dict[str, int]] = {}
        try:
            names = posix.listdir(self._path())
        except OSError:
            return None
        for name in sorted(names):
            if not (name.startswith("hugetlb.") and name.endswith(".current")) or ".rsvd." in name:
                continue
            size = name[len("hugetlb.") : -len(".current")]
            # The reservation count where the kernel keeps one, as runc reports it.
            rsvd = self._path(f"hugetlb.{size}.rsvd.current")
            usage = self.files.read(rsvd if exists(rsvd) else self._path(name))
            out[size] = {
                "usage": convert.read_limit(usage) or 0,
                "failcnt": self.files.read_keyed(self._path(f"hugetlb.{size}.events")).get("max", 0),
            }
        return out or None


def io_stat_entries(text: str) -> "dict[str, list[dict[str, Any]]]":
    """io.stat ("8:0 rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N") in v1's layout, as
    runc maps it: bytes to ioServiceBytesRecursive, operations to ioServicedRecursive."""
    tables = {
        "rbytes": ("ioServiceBytesRecursive", "Read"),
        "wbytes": ("ioServiceBytesRecursive", "Write"),
        "dbytes": ("ioServiceBytesRecursive", "Discard"),
        "rios": ("ioServicedRecursive", "Read"),
        "wios": ("ioServicedRecursive", "Write"),
        "dios": ("ioServicedRecursive", "Discard"),
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for line in text.splitlines():
        words = line.split()
        if not words or ":" not in words[0]:
            continue
        major, minor = (int(x) for x in words[0].split(":"))
        for item in words[1:]:
            key, _, value = item.partition("=")
            if key in tables and value.isdigit():
                table, op = tables[key]
                out.setdefault(table, []).append({"major": major, "minor": minor, "op": op, "value": int(value)})
    return out


def _oci_limit(text: str) -> int | None:
    """A v2 limit file read back in OCI's terms: -1 for `max`; None when unreadable."""
    word = text.strip()
    if word == "max":
        return convert.UNLIMITED
    try:
        return int(word)
    except ValueError:
        return None
