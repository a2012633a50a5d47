"""Commands that act on a live container through its cgroup: pause, resume, ps, events
and update.  The state checks are the lifecycle's; the cgroup work is the manager's."""

import sys
import time

from pyrunc import jsonc, lifecycle, log
from pyrunc import status as rules
from pyrunc.errors import ContainerError, StateError, UsageError
from pyrunc.status import STOPPED

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, TextIO

    from pyrunc.linux import Seams
    from pyrunc.linux.cgroups import Manager
    from pyrunc.store import ContainerDir, State, Store


def _manager_of(cid: str, st: "State | None", verb: str, seams: "Seams") -> "Manager":
    mgr: Manager | None = lifecycle.cgroup_manager(st, seams)
    if mgr is None:
        raise StateError(f"cannot {verb} container {cid}: it has no cgroup (created with --rootless)")
    return mgr


def _read(cdir: "ContainerDir") -> "State":
    """The locked container's state.  A directory without one is broken (store.peek's
    error): `creating` to the rules, which let update through."""
    st = cdir.read_state()
    if st is None:
        from pyrunc.store import STATE_FILE

        raise StateError(f"container {cdir.id}: no {STATE_FILE} in its directory {cdir.path}")
    return st


def pause(store: "Store", cid: str, seams: "Seams") -> None:
    with store.open(cid) as cdir:
        st = cdir.read_state()
        rules.check("pause", cid, lifecycle.status_of(st))
        assert st is not None  # status_of(None) is creating, which check refuses
        _manager_of(cid, st, "pause", seams).freeze()
        st.paused = True
        cdir.write_state(st)
        log.debug(f"pause {cid}: frozen")


def resume(store: "Store", cid: str, seams: "Seams") -> None:
    with store.open(cid) as cdir:
        st = cdir.read_state()
        rules.check("resume", cid, lifecycle.status_of(st))
        assert st is not None  # status_of(None) is creating, which check refuses
        _manager_of(cid, st, "resume", seams).thaw()
        st.paused = False
        cdir.write_state(st)
        log.debug(f"resume {cid}: thawed")


def _live(store: "Store", cid: str, verb: str, seams: "Seams") -> "tuple[State, Manager]":
    st = store.peek(cid)
    rules.check("events", cid, lifecycle.status_of(st))
    return st, _manager_of(cid, st, verb, seams)


def pids(store: "Store", cid: str, seams: "Seams") -> list[int]:
    """The processes in the container's cgroup, in any state, as runc lists them: a
    stopped container's are none, or those that outlived its init."""
    st = store.peek(cid)
    if st is not None and st.cgroup is None and st.pid:
        # No cgroup (rootless): the processes of the container's own pid namespace.
        from pyrunc.linux import rootless

        if lifecycle.status_of(st) == STOPPED:
            return []
        members = rootless.pid_namespace_members(st.pid)
        if members is not None:
            return members
    found: list[int] = _manager_of(cid, st, "list processes of", seams).pids()
    return found


def ps_table(pids_: "Iterable[int]", ps_args: list[str]) -> str:
    """`ps` (default -ef) on the host, keeping its header and the container's rows."""
    import subprocess

    try:
        out = subprocess.run(["ps"] + (ps_args or ["-ef"]), capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        raise StateError("ps: the ps command is not installed on this host") from None
    except subprocess.CalledProcessError as e:
        # ps's first line says what is wrong; its usage text after it is not one line.
        first = (e.stderr.strip().splitlines() or ["failed"])[0]
        raise StateError(f"ps {' '.join(ps_args)}: {first}") from None
    lines = out.splitlines()
    if not lines:
        return ""
    header = lines[0].split()
    if "PID" not in header:
        raise StateError("ps: its output has no PID column; give ps options that print one")
    col = header.index("PID")
    wanted = {str(p) for p in pids_}
    rows = [line for line in lines[1:] if len(line.split()) > col and line.split()[col] in wanted]
    return "\n".join([lines[0]] + rows) + "\n"


def _compact(event: "Mapping[str, Any]") -> str:
    return jsonc.dumps(event) + "\n"


def stats_event(cid: str, mgr: "Manager") -> "dict[str, Any]":
    return {"type": "stats", "id": cid, "data": mgr.stats()}


def events(
    store: "Store", cid: str, interval: float, stats_only: bool, seams: "Seams", out: "TextIO" = sys.stdout
) -> None:
    """runc's events: one stats object with stats_only; otherwise a stream of stats every
    `interval` seconds and an `oom` object whenever the OOM killer acts, until the
    container stops."""
    st, mgr = _live(store, cid, "read events of", seams)
    if stats_only:
        out.write(_compact(stats_event(cid, mgr)))
        return
    ooms = mgr.oom_kills()
    next_stats = time.monotonic()
    # OOM kills are looked for more often than stats are printed, so each is seen soon.
    tick = min(interval, 0.25)
    while lifecycle.status_of(st) != STOPPED:
        kills = mgr.oom_kills()
        for _ in range(kills - ooms):
            out.write(_compact({"type": "oom", "id": cid}))
        ooms = kills
        if time.monotonic() >= next_stats:
            try:
                out.write(_compact(stats_event(cid, mgr)))
            except OSError:
                break  # the cgroup went away with the container
            next_stats += interval
        out.flush()
        time.sleep(tick)
        st = store.peek(cid)


class UpdateRequest:
    """What `update` changes, as the CLI read it (cli/update.py): `resources`, a
    LinuxResources object in the spec's JSON shape (config.json's linux.resources, only
    what is to change); the Intel RDT schemata of --l3-cache-schema and --mem-bw-schema,
    None when not given."""

    __slots__ = ("resources", "l3_cache_schema", "mem_bw_schema")

    def __init__(
        self, resources: "dict[str, Any]", l3_cache_schema: str | None = None, mem_bw_schema: str | None = None
    ) -> None:
        self.resources = resources
        self.l3_cache_schema = l3_cache_schema
        self.mem_bw_schema = mem_bw_schema

    def rdt(self) -> dict[str, str]:
        """The schemata given, by their intelRdt names."""
        return {
            k: v
            for k, v in (("l3CacheSchema", self.l3_cache_schema), ("memBwSchema", self.mem_bw_schema))
            if v is not None
        }


def update(store: "Store", cid: str, request: UpdateRequest, seams: "Seams") -> None:
    resources, rdt = request.resources, request.rdt()
    with store.open(cid) as cdir:
        st = _read(cdir)
        rules.check("update", cid, lifecycle.status_of(st))
        if rdt:
            rdt_group = _check_rdt_update(cid, st, rdt)
        if resources or not rdt:
            _manager_of(cid, st, "update", seams).set(resources, update=True)
        if rdt:
            from pyrunc.linux import resctrl

            try:
                resctrl.update_schemata(rdt_group, rdt.get("l3CacheSchema"), rdt.get("memBwSchema"))
            except ContainerError as e:
                raise ContainerError(f"update {cid}", str(e)) from None
        log.debug(f"update {cid}: {jsonc.dumps(resources, compact=False, sort_keys=True)}")


_RDT_FLAGS = {"l3CacheSchema": ("--l3-cache-schema", "L3"), "memBwSchema": ("--mem-bw-schema", "MB:")}


def _check_rdt_update(cid: str, st: "State", rdt: dict[str, str]) -> "dict[str, Any]":
    """Before anything changes: the values' form, and a group to write them to (the
    container's intel_rdt record, returned)."""
    from pyrunc.linux import resctrl

    for key, value in rdt.items():
        flag, prefix = _RDT_FLAGS[key]
        if not value.startswith(prefix) or "\n" in value:
            raise UsageError(f"update: invalid value {value!r} for {flag}: one line starting with {prefix}")
    flags = " and ".join(_RDT_FLAGS[k][0] for k in rdt)
    if not st.intel_rdt:
        if not resctrl.available():
            raise ContainerError(
                f"update {cid}",
                f"{flags}: no resctrl filesystem is mounted at {resctrl.RESCTRL_ROOT} (this host has no Intel RDT)",
            )
        raise ContainerError(
            f"update {cid}", f"{flags}: the container has no Intel RDT group (its config sets no linux.intelRdt)"
        )
    return st.intel_rdt
