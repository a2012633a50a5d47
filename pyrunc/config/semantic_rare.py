"""The semantic checks of the fields few configs set: semantic.py imports this module
only for a document that has one of them (its RARE_PROCESS_FIELDS, RARE_LINUX_FIELDS).

A scheduler, an I/O priority, a CPU affinity or a console size for the process; time
offsets, a personality, network devices, Intel RDT or a memory policy for the container.
Each check, as in semantic.py, is a small generator of (path parts, message).
"""

import time

from pyrunc.config.semantic import (
    _byte_len,
    _cpu_list_problem,
    _linux,
    _new_ns,
    _process,
    _read_proc_int,
    _shares_host_ns,
    _shown,
)

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.config.semantic import Doc, Parts, Problems

TIME_CLOCKS = {"boottime": time.CLOCK_BOOTTIME, "monotonic": time.CLOCK_MONOTONIC}
IFNAMSIZ = 16  # interface names are at most 15 bytes plus NUL
TERM_SIZE_MAX = 65535  # struct winsize holds unsigned shorts
TIMENS_SEC_MAX = 9223372036 // 2  # KTIME_SEC_MAX / 2: the most a time namespace clock may read
DL_RUNTIME_MIN = 1 << 10  # SCHED_DEADLINE: runtime below 2^DL_SCALE ns is refused
U63 = 1 << 63
CPUS_MAX = 8191  # CONFIG_NR_CPUS is at most 8192
NUMA_NODES_MAX = 1023  # MAX_NUMNODES is at most 1 << 10


def check_console_size(doc: "Doc", bundle: str) -> "Problems":
    size = _process(doc).get("consoleSize") or {}
    for key in ("height", "width"):
        if size.get(key, 0) > TERM_SIZE_MAX:
            yield (
                ["process", "consoleSize", key],
                f"{size[key]} does not fit the terminal's 16-bit size (at most {TERM_SIZE_MAX})",
            )


def check_io_priority(doc: "Doc", bundle: str) -> "Problems":
    prio = _process(doc).get("ioPriority")
    if prio is None:
        return
    if "priority" not in prio:
        yield ["process", "ioPriority"], "'priority' is required"
    elif not 0 <= prio["priority"] <= 7:
        yield ["process", "ioPriority", "priority"], f"{prio['priority']} is outside 0..7"


def check_scheduler(doc: "Doc", bundle: str) -> "Problems":
    sched = _process(doc).get("scheduler")
    if sched is None:
        return
    parts: Parts = ["process", "scheduler"]
    policy, nice, prio = sched["policy"], sched.get("nice", 0), sched.get("priority", 0)
    if not -20 <= nice <= 19:
        yield parts + ["nice"], f"{nice} is outside -20..19"
    if policy in ("SCHED_FIFO", "SCHED_RR"):
        if not 1 <= prio <= 99:
            yield parts + ["priority"], f"{prio} is outside 1..99, the range of {policy}"
    elif prio != 0:
        yield parts + ["priority"], f"must be 0 for {policy}; only SCHED_FIFO and SCHED_RR use it"
    if policy == "SCHED_DEADLINE":
        yield from _deadline_problems(sched, parts)
    elif any(sched.get(k) for k in ("runtime", "deadline", "period")):
        yield parts, f"runtime, deadline and period apply only to SCHED_DEADLINE, not {policy}"


def _deadline_problems(sched: "Doc", parts: "Parts") -> "Problems":
    """What sched_setattr(2) refuses for SCHED_DEADLINE (the kernel's __checkparam_dl)."""
    runtime, deadline, period = (sched.get(k, 0) for k in ("runtime", "deadline", "period"))
    if not runtime <= deadline or (period and deadline > period):
        yield parts, "SCHED_DEADLINE needs runtime <= deadline <= period"
    if not deadline:
        yield parts + ["deadline"], "SCHED_DEADLINE needs a deadline above 0"
    for key, value in (("deadline", deadline), ("period", period)):
        if value >= U63:
            yield parts + [key], f"{value} ns is above the kernel's maximum {U63 - 1}"
    if runtime < DL_RUNTIME_MIN:
        yield parts + ["runtime"], f"{runtime} ns is below the kernel's minimum {DL_RUNTIME_MIN} ns"
    lo = _read_proc_int("/proc/sys/kernel/sched_deadline_period_min_us", 100)
    hi = _read_proc_int("/proc/sys/kernel/sched_deadline_period_max_us", 1 << 22)
    effective = period or deadline
    if effective and not lo * 1000 <= effective <= hi * 1000:
        key = "period" if period else "deadline"
        yield (
            parts + [key],
            (
                f"{effective} ns is outside the period range {lo * 1000}..{hi * 1000} ns "
                "(kernel.sched_deadline_period_min_us/max_us)"
            ),
        )


def check_exec_cpu_affinity(doc: "Doc", bundle: str) -> "Problems":
    affinity = _process(doc).get("execCPUAffinity") or {}
    for key in ("initial", "final"):
        text = affinity.get(key, "")
        problem = _cpu_list_problem(text) or _list_bound_problem(text, CPUS_MAX, "CPU")
        if not problem and text and not _read_list("/sys/devices/system/cpu/online", "0") & _list(text):
            problem = (
                f"{_shown(text)} names no CPU this host has online "
                f"({_read_text('/sys/devices/system/cpu/online', '?')})"
            )
        if problem:
            yield ["process", "execCPUAffinity", key], problem


def _list(text: str) -> set[int]:
    """'0-3,7' -> {0, 1, 2, 3, 7}, each number once however often the ranges repeat it."""
    spans = sorted(
        (int(lo), int(hi or lo)) for lo, _, hi in (part.partition("-") for part in (text.split(",") if text else ()))
    )
    found: set[int] = set()
    done = -1
    for lo, hi in spans:
        found.update(range(max(lo, done + 1), hi + 1))
        done = max(done, hi)
    return found


def _list_bound_problem(text: str, most: int, what: str) -> str | None:
    """A list whose numbers are past what Linux can have; checked before the list is
    expanded, which '0-4000000000' would make a memory bomb of (and a list of more
    entries than there can be numbers, a slow one)."""
    if text.count(",") > most:
        return f"has {text.count(',') + 1} entries; there are at most {most + 1} {what}s"
    for part in text.split(",") if text else ():
        for number in part.split("-"):
            if int(number) > most:
                return f"{_shown(text)}: {what} {_shown(number, 12)} is past the last Linux can have ({most})"
    return None


def _read_text(path: str, default: str) -> str:
    try:
        with open(path) as f:
            return f.read(4096).strip() or default
    except OSError:
        return default


def _read_list(path: str, default: str) -> set[int]:
    text = _read_text(path, default)
    try:
        return _list(text) if not _cpu_list_problem(text) else _list(default)
    except ValueError:
        return _list(default)


def check_time_namespace(doc: "Doc", bundle: str) -> "Problems":
    offsets = _linux(doc).get("timeOffsets")
    if offsets is None:
        return
    if not _new_ns(doc, "time"):
        yield ["linux", "timeOffsets"], 'need a new time namespace; add {"type": "time"} without a path'
    for clock, offset in offsets.items():
        parts: Parts = ["linux", "timeOffsets", clock]
        if clock not in TIME_CLOCKS:
            yield parts, "only boottime and monotonic clocks have offsets"
            continue
        if offset.get("nanosecs", 0) >= 1_000_000_000:
            yield parts + ["nanosecs"], "must be below 1000000000"
        # The kernel refuses an offset that puts the namespace's clock below 0 or above
        # KTIME_SEC_MAX / 2 seconds (ERANGE); checked against the clock as it reads now.
        now = int(time.clock_gettime(TIME_CLOCKS[clock]))
        secs = offset.get("secs", 0)
        if not 0 <= now + secs <= TIMENS_SEC_MAX:
            yield (
                parts + ["secs"],
                (f"{secs} would set the {clock} clock, now {now} s, outside the kernel's 0..{TIMENS_SEC_MAX} s"),
            )


def check_personality(doc: "Doc", bundle: str) -> "Problems":
    personality = _linux(doc).get("personality")
    if personality is None:
        return
    if "domain" not in personality:
        yield ["linux", "personality"], "'domain' is required"
    if personality.get("flags"):
        yield ["linux", "personality", "flags"], "no personality flags are supported"


def check_net_devices(doc: "Doc", bundle: str) -> "Problems":
    devices = _linux(doc).get("netDevices") or {}
    if devices and _shares_host_ns(doc, "network"):
        yield ["linux", "netDevices"], "need a network namespace other than the host's to move devices into"
    taken: dict[str, str] = {}
    for name, dev in devices.items():
        for parts, ifname in (
            (["linux", "netDevices", name], name),
            (["linux", "netDevices", name, "name"], dev.get("name")),
        ):
            problem = _ifname_problem(ifname)
            if problem:
                yield parts, problem
        # Two devices cannot end up with one name, nor one with lo's, which every network
        # namespace has; "%d" leaves the choice of a free name to the kernel.
        target = dev.get("name") or name
        parts = ["linux", "netDevices", name] + (["name"] if dev.get("name") else [])
        if "%d" in target:
            continue
        if target == "lo" and name != "lo":
            yield parts, "'lo' is the name of the loopback device every network namespace has"
        elif target in taken:
            yield parts, f"{_shown(target)} is the name linux.netDevices gives {_shown(taken[target])} too"
        taken.setdefault(target, name)


def _ifname_problem(name: str | None) -> str | None:
    if name is None:
        return None
    if not name or name in (".", ".."):
        return f"{_shown(name)} is not a valid interface name"
    if _byte_len(name) >= IFNAMSIZ:
        return f"{_shown(name)} is longer than {IFNAMSIZ - 1} bytes"
    if any(c in name for c in "/:") or any(c.isspace() for c in name):
        return f"{_shown(name)} must not contain '/', ':' or whitespace"
    return None


def check_intel_rdt(doc: "Doc", bundle: str) -> "Problems":
    rdt = _linux(doc).get("intelRdt")
    if rdt is None:
        return
    parts: Parts = ["linux", "intelRdt"]
    clos = rdt.get("closID")
    # closID names a directory under /sys/fs/resctrl: "/" is the default group.
    if clos is not None and clos != "/" and ("/" in clos or clos in ("", ".", "..")):
        yield parts + ["closID"], f"{_shown(clos)} must be '/' or a plain directory name"
    for i, line in enumerate(rdt.get("schemata") or ()):
        if "\n" in line:
            yield parts + ["schemata", i], "must not contain newlines"
    if "\n" in rdt.get("l3CacheSchema", ""):
        yield parts + ["l3CacheSchema"], "must not contain newlines"


def check_memory_policy(doc: "Doc", bundle: str) -> "Problems":
    """What set_mempolicy(2) would refuse with a bare EINVAL (mm/mempolicy.c)."""
    policy = _linux(doc).get("memoryPolicy")
    if policy is None:
        return
    parts: Parts = ["linux", "memoryPolicy"]
    mode, nodes, flags = policy["mode"], policy.get("nodes", ""), set(policy.get("flags") or ())
    problem = _cpu_list_problem(nodes) or _list_bound_problem(nodes, NUMA_NODES_MAX, "node")
    if problem:
        yield parts + ["nodes"], problem
        return
    if mode in ("MPOL_DEFAULT", "MPOL_LOCAL") and nodes:
        yield parts + ["nodes"], f"{_shown(nodes)}: {mode} takes no nodes"
    elif mode in ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE", "MPOL_PREFERRED_MANY") and not nodes:
        yield parts + ["nodes"], f"{mode} needs at least one node"
    elif nodes and "MPOL_F_RELATIVE_NODES" not in flags:
        online = _read_list("/sys/devices/system/node/online", "0")
        if not online & _list(nodes):
            yield (
                parts + ["nodes"],
                (
                    f"{_shown(nodes)} names no memory node this host has "
                    f"(online: {_read_text('/sys/devices/system/node/online', '0')})"
                ),
            )
    if {"MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"} <= flags:
        yield parts + ["flags"], "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other"
    if flags - {"MPOL_F_NUMA_BALANCING"} and mode == "MPOL_LOCAL":
        yield parts + ["flags"], f"{sorted(flags - {'MPOL_F_NUMA_BALANCING'})[0]} does not apply to {mode}"
    if "MPOL_F_NUMA_BALANCING" in flags and mode not in ("MPOL_BIND", "MPOL_PREFERRED_MANY"):
        yield (
            parts + ["flags"],
            (f"MPOL_F_NUMA_BALANCING applies to MPOL_BIND and MPOL_PREFERRED_MANY only, not {mode}"),
        )


CHECKS = (
    check_console_size,
    check_io_priority,
    check_scheduler,
    check_exec_cpu_affinity,
    check_time_namespace,
    check_personality,
    check_net_devices,
    check_intel_rdt,
    check_memory_policy,
)
