"""The systemd cgroup driver's pure half: where `slice:prefix:name` puts the container,
and which unit properties stand for linux.resources.  No I/O and no D-Bus here: each
property is a (name, D-Bus signature, value) triple that systemd.py wraps in the
client's Variant, so this module is tested on its own (tests/unit/test_systemd_props.py).

The rules are runc's (its libcontainer systemd manager), so that an engine sees the same
units under both runtimes:
  * cgroupsPath `slice:prefix:name`; an empty slice is system.slice; no cgroupsPath at all
    is `:pyrunc:<id>`;
  * a slice name ends in `.slice`, holds no `/`, and its dashes nest it: `a-b-c.slice` is
    /a.slice/a-b.slice/a-b-c.slice; `-.slice` is the root;
  * the unit is `prefix-name.scope`, or `name` itself when it ends in `.slice`.
Beyond runc, every name is held to systemd's unit-name characters, so that a hostile
config cannot make a path of it (`..`, `/`).

Properties (runc's genV1ResourcesProperties / genV2ResourcesProperties): the limits a
unit property can carry.  The manager writes every field to the scope's cgroup files
afterwards as well (through the v1/v2 manager), as runc's fs manager does: systemd
re-applies its properties whenever it reloads, so both must say the same (the CPU quota
is rounded up to systemd's 10 ms granularity for both).  FILE_ONLY lists the fields only
the files carry.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    # (property name, D-Bus signature, value)
    Property = tuple[str, str, Any]

DEVICES = "linux.resources.devices"
DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "pyrunc"
SLICE_SUFFIX = ".slice"
USEC_INFINITY = (1 << 64) - 1  # systemd's "infinity" for a uint64 property
# The kernel's default CFS period (v1 and v2): what a quota without a period is over.
DEFAULT_CPU_PERIOD = 100_000
# systemd keeps CPUQuota as a percentage: 1% of a second, 10 ms per second.
QUOTA_GRANULARITY_USEC = 10_000
# Properties systemd learned late (runc checks the same versions).
SD_CPU_QUOTA_PERIOD = 242
SD_ALLOWED_CPUS = 244
SD_DEVICE_GROUP_MAJOR = 240  # DeviceAllow=char-MAJOR
SD_CPU_IDLE = 252  # CPUWeight=0 means cpu.idle 1

# systemd's unit_name_is_valid: these characters, at most 255 of them.
_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@")
_UNIT_NAME_MAX = 255

# linux.resources fields no unit property carries: only the cgroup files get them.
FILE_ONLY = {
    1: (
        "memory.reservation",
        "memory.swap",
        "memory.kernel",
        "memory.kernelTCP",
        "memory.swappiness",
        "memory.disableOOMKiller",
        "cpu.realtimeRuntime",
        "cpu.realtimePeriod",
        "blockIO.weightDevice",
        "blockIO.throttle*Device",
        "hugepageLimits",
        "network",
        "rdma",
    ),
    2: (
        "cpu.burst",
        "blockIO.weightDevice",
        "blockIO.throttle*Device",
        "hugepageLimits",
        "rdma",
        "unified (but for the files unified_properties maps)",
    ),
}


class Unit:
    """Where a container goes: `slice_` the parent slice's unit name, `name` the unit
    pyrunc creates (a scope, or a slice when the config names one), `path` the cgroup
    path below a hierarchy's root (/system.slice/pyrunc-ID.scope)."""

    def __init__(self, slice_: str, name: str) -> None:
        self.slice = slice_
        self.name = name
        self.path = expand_slice(slice_).rstrip("/") + "/" + name

    @property
    def is_slice(self) -> bool:
        return self.name.endswith(SLICE_SUFFIX)

    def __repr__(self) -> str:
        return f"Unit({self.slice!r}, {self.name!r})"


def parse_path(cgroups_path: str, container_id: str) -> Unit:
    """The unit for linux.cgroupsPath under --systemd-cgroup; ValueError with runc's text."""
    if not cgroups_path:
        parts = ["", DEFAULT_PREFIX, container_id]
    else:
        parts = cgroups_path.split(":")
        if len(parts) != 3:
            raise ValueError(
                f'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, '
                f'got "{cgroups_path}" instead'
            )
    slice_, prefix, name = parts
    return Unit(slice_ or DEFAULT_SLICE, unit_name(prefix, name))


def unit_name(prefix: str, name: str) -> str:
    """`prefix-name.scope`, or `name` as it is when it is a slice (runc's getUnitName)."""
    if not name:
        raise ValueError("the unit name (the last part of slice:prefix:name) is empty")
    unit = name if name.endswith(SLICE_SUFFIX) else f"{prefix}-{name}.scope"
    _check_unit_chars(unit)
    return unit


def _check_unit_chars(unit: str) -> None:
    bad = sorted(set(unit) - _UNIT_CHARS)
    if bad or len(unit) > _UNIT_NAME_MAX:
        why = f"character {bad[0]!r}" if bad else f"more than {_UNIT_NAME_MAX} characters"
        raise ValueError(f"invalid unit name {unit!r}: {why} (systemd unit names take [A-Za-z0-9:_.\\-@])")


def expand_slice(slice_: str) -> str:
    """The cgroup path of a slice: `a-b-c.slice` -> /a.slice/a-b.slice/a-b-c.slice,
    `-.slice` -> / (ValueError in runc's words for a name systemd would refuse)."""
    # It ends in .slice but is not just ".slice", and holds no path separator.
    if len(slice_) <= len(SLICE_SUFFIX) or not slice_.endswith(SLICE_SUFFIX) or "/" in slice_:
        raise ValueError(f"invalid slice name: {slice_}")
    stem = slice_[: -len(SLICE_SUFFIX)]
    if stem == "-":
        return "/"
    words = stem.split("-")
    if not all(words):  # test--a.slice, -test.slice, test-.slice
        raise ValueError(f"invalid slice name: {slice_}")
    try:
        _check_unit_chars(slice_)
    except ValueError:
        raise ValueError(f"invalid slice name: {slice_}") from None
    return "".join("/" + "-".join(words[: i + 1]) + SLICE_SUFFIX for i in range(len(words)))


# -- the unit's own properties, when it is started ---------------------------------------


def start_properties(unit: Unit, pid: int | None, version: int, description: str) -> "list[Property]":
    """StartTransientUnit's properties besides the resources: runc's Apply.  A scope is
    put in its slice (Slice=), delegated (its cgroup below is the container's to manage),
    and gets its first process (PIDs=: systemd refuses a scope without one); a slice
    unit only Wants= its parent.  Accounting on for every controller, as runc has it, and
    DefaultDependencies=no so that the unit is not stopped at shutdown's first step."""
    props: list[Property] = [("Description", "s", description)]
    if unit.is_slice:
        props.append(("Wants", "as", [unit.slice]))
    else:
        props.append(("Slice", "s", unit.slice))
        props.append(("Delegate", "b", True))
        if pid is not None:
            props.append(("PIDs", "au", [pid]))
    props += [
        ("MemoryAccounting", "b", True),
        ("CPUAccounting", "b", True),
        ("IOAccounting" if version == 2 else "BlockIOAccounting", "b", True),
        ("TasksAccounting", "b", True),
        ("DefaultDependencies", "b", False),
    ]
    return props


# -- linux.resources as properties ----------------------------------------------------------


class Resources:
    """The properties for linux.resources on cgroup `version` 1 or 2 under systemd
    `systemd` (a version number; 0 when unknown: the newer properties are then left to
    the files), and the resources the files get after them (`files`: the same dict with
    the CPU quota rounded as the property has it).  `warnings`: what systemd cannot
    express, for the caller to log.  ValueError names the field and the value."""

    def __init__(self, resources: "dict[str, Any]", version: int, systemd: int, devices: bool = True) -> None:
        self.warnings: list[str] = []
        self.properties: list[Property] = []
        self.files: dict[str, Any] = dict(resources)
        r = resources
        if devices and r.get("devices") is not None:
            self.properties += device_properties(r["devices"], systemd, self.warnings.append)
        if version == 2:
            self._v2(r, systemd)
        else:
            self._v1(r, systemd)

    def _v2(self, r: "dict[str, Any]", systemd: int) -> None:
        from pyrunc.linux.cgroups import convert

        mem = r.get("memory") or {}
        limit, swap = mem.get("limit"), mem.get("swap")
        if limit:
            self.properties.append(("MemoryMax", "t", _u64(limit)))
        if mem.get("reservation"):
            self.properties.append(("MemoryLow", "t", _u64(mem["reservation"])))
        try:
            swap_max = convert.swap_max(swap, limit)
        except ValueError as e:
            raise ValueError(f"linux.resources.memory.swap: {e}") from None
        if swap_max is not None:
            self.properties.append(("MemorySwapMax", "t", _u64(swap_max)))
        cpu = r.get("cpu") or {}
        if cpu.get("idle") == 1 and systemd >= SD_CPU_IDLE:
            self.properties.append(("CPUWeight", "t", 0))  # systemd's way to say cpu.idle 1
            if cpu.get("shares"):
                self.warnings.append("linux.resources.cpu.shares: not given to systemd: cpu.idle 1 takes CPUWeight")
        else:
            weight = convert.shares_to_weight(cpu.get("shares"))
            if weight is not None:
                self.properties.append(("CPUWeight", "t", weight))
        self._cpu_common(r, systemd)
        bio = r.get("blockIO") or {}
        if bio.get("weight"):
            try:
                io_weight = convert.blkio_weight_to_io_weight(bio["weight"])
            except ValueError as e:
                raise ValueError(f"linux.resources.blockIO.weight: {e}") from None
            self.properties.append(("IOWeight", "t", io_weight))
        # Last, as the v2 manager writes them last: a later property of the same name wins.
        for key, value in (r.get("unified") or {}).items():
            self.properties += unified_properties(key, str(value).strip(), systemd)

    def _v1(self, r: "dict[str, Any]", systemd: int) -> None:
        mem = r.get("memory") or {}
        if mem.get("limit"):
            self.properties.append(("MemoryLimit", "t", _u64(mem["limit"])))
        cpu = r.get("cpu") or {}
        if cpu.get("shares"):
            self.properties.append(("CPUShares", "t", cpu["shares"]))
        self._cpu_common(r, systemd)
        bio = r.get("blockIO") or {}
        if bio.get("weight"):
            self.properties.append(("BlockIOWeight", "t", bio["weight"]))

    def _cpu_common(self, r: "dict[str, Any]", systemd: int) -> None:
        """Quota, tasks and cpuset: the same properties on v1 and v2."""
        cpu = r.get("cpu") or {}
        quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
        props, rounded = cpu_quota_properties(quota, period, systemd)
        self.properties += props
        if rounded != quota:
            self.files["cpu"] = dict(cpu, quota=rounded)
        limit = (r.get("pids") or {}).get("limit")
        if limit is not None:
            # systemd refuses TasksMax=0; the files still get pids.max 0, the spec's limit.
            self.properties.append(("TasksMax", "t", USEC_INFINITY if limit < 0 else max(limit, 1)))
        for key, prop in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
            if not cpu.get(key):
                continue
            try:
                bits = cpuset_bits(cpu[key])
            except ValueError as e:
                raise ValueError(f"linux.resources.cpu.{key}: {cpu[key]!r}: {e}") from None
            if systemd >= SD_ALLOWED_CPUS:
                self.properties.append((prop, "ay", bits))


_UNIFIED_MEMORY = {
    "memory.high": "MemoryHigh",
    "memory.low": "MemoryLow",
    "memory.min": "MemoryMin",
    "memory.max": "MemoryMax",
    "memory.swap.max": "MemorySwapMax",
}


def unified_properties(key: str, value: str, systemd: int) -> "list[Property]":
    """The property for one `unified` file where systemd has one (runc's
    unifiedResToSystemdProps); none for the others, which only the files get."""
    field = f'linux.resources.unified["{key}"]'
    try:
        if key in _UNIFIED_MEMORY or key == "pids.max":
            n = USEC_INFINITY if value == "max" else _uint(value)
            if key == "pids.max":
                return [("TasksMax", "t", max(n, 1))]  # systemd refuses 0
            return [(_UNIFIED_MEMORY[key], "t", n)]
        if key == "cpu.weight":
            return [("CPUWeight", "t", _uint(value))]
        if key == "cpu.idle":
            return [("CPUWeight", "t", 0)] if value == "1" and systemd >= SD_CPU_IDLE else []
        if key == "cpu.max":
            words = value.split()
            if not 1 <= len(words) <= 2:
                raise ValueError("not QUOTA [PERIOD]")
            quota = -1 if words[0] == "max" else _uint(words[0])
            period = _uint(words[1]) if len(words) == 2 else DEFAULT_CPU_PERIOD
            return cpu_quota_properties(quota, period, systemd)[0]
        if key in ("cpuset.cpus", "cpuset.mems"):
            bits = cpuset_bits(value)
            prop = "AllowedCPUs" if key == "cpuset.cpus" else "AllowedMemoryNodes"
            return [(prop, "ay", bits)] if systemd >= SD_ALLOWED_CPUS else []
    except ValueError as e:
        raise ValueError(f"{field}: {value!r}: {e}") from None
    return []


def _uint(text: str) -> int:
    if not text.isdigit():
        raise ValueError("not a number or max")
    return int(text)


def _u64(n: int) -> int:
    """A byte limit as a uint64 property: -1 (unlimited) is infinity."""
    return USEC_INFINITY if n < 0 else n


def cpu_quota_properties(quota: int, period: int, systemd: int) -> "tuple[list[Property], int]":
    """(CPUQuotaPeriodUSec and CPUQuotaPerSecUSec properties, the quota the files get).

    systemd holds the quota per second of CPU, in whole percent: a quota that is not a
    multiple of 10 ms per second is rounded UP to the next one, and the quota written to
    the cgroup files is made to match (quota 5000 over 100000 is 50 ms/s; 1234 over
    100000 is 12.34 ms/s, rounded to 20 ms/s and written as quota 2000), as runc rounds
    it.  A quota of 0 (unset) or below is no limit: infinity, when a period is given."""
    props: list[Property] = []
    if period and systemd >= SD_CPU_QUOTA_PERIOD:
        props.append(("CPUQuotaPeriodUSec", "t", period))
    if not quota and not period:
        return props, quota
    per_sec = USEC_INFINITY
    if quota > 0:
        over = period or DEFAULT_CPU_PERIOD
        per_sec = quota * 1_000_000 // over
        if per_sec % QUOTA_GRANULARITY_USEC:
            per_sec = (per_sec // QUOTA_GRANULARITY_USEC + 1) * QUOTA_GRANULARITY_USEC
            quota = per_sec * over // 1_000_000
    props.append(("CPUQuotaPerSecUSec", "t", per_sec))
    return props, quota


def cpuset_bits(text: str) -> bytes:
    """A cpuset list ("0-3,5") as systemd's AllowedCPUs bytes: bit n of the mask is cpu
    n, least significant byte first ("0-3,5" -> b"\\x2f", "8" -> b"\\x00\\x01")."""
    mask = 0
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue  # "0,,1" and a trailing comma, as the kernel takes them
        first, dash, last = item.partition("-")
        if not (first.isdigit() and (not dash or last.isdigit())):
            raise ValueError(f"{item!r} is not a number or a range")
        lo, hi = int(first), int(last) if dash else int(first)
        if lo > hi:
            raise ValueError(f"invalid range: {item}")
        if hi >= 1 << 16:
            raise ValueError(f"{hi} is beyond any cpu or memory node")
        mask |= ((1 << (hi - lo + 1)) - 1) << lo
    if not mask:
        raise ValueError("empty value")
    return mask.to_bytes((mask.bit_length() + 7) // 8, "little")


def device_properties(
    rules: "Iterable[dict[str, Any]]", systemd: int, warn: "Callable[[str], None]"
) -> "list[Property]":
    """DevicePolicy and DeviceAllow for the device rules (the config's with the defaults):
    runc's conversion.  The rules' effect (cgroups.effective_rules) becomes systemd's
    strict allow-list: /dev/char/M:m for one device, char-M for a whole major, char-*
    for every character device.  A list that allows by default with no exception is
    policy auto; with exceptions systemd cannot say it (it has no deny list): deny all
    there, warned, and the cgroup's own rules (written after) decide, as runc does.  A
    rule for one minor of every major (`c *:3`) has no systemd form: skipped, warned."""
    from pyrunc.errors import CgroupError
    from pyrunc.linux.cgroups import effective_rules

    try:
        default_allow, exceptions = effective_rules(rules)
    except CgroupError as e:  # it names the rule
        raise ValueError(str(e)) from None
    reset: Property = ("DeviceAllow", "a(ss)", [])  # an empty list clears the unit's earlier ones
    if default_allow:
        if not exceptions:
            return [reset, ("DevicePolicy", "s", "auto")]
        warn(
            "linux.resources.devices: systemd has no deny list: the unit denies every device, the cgroup's rules decide"
        )
        return [reset, ("DevicePolicy", "s", "strict")]
    allow: list[tuple[str, str]] = []
    for (kind, major, minor), bits in exceptions.items():
        group = "char-" if kind == "c" else "block-"
        perms = "".join(letter for letter, bit in (("r", 2), ("w", 4), ("m", 1)) if bits & bit)
        if major is None:
            if minor is not None:
                warn(
                    f"linux.resources.devices: systemd has no rule for minor {minor} of every major: left to the cgroup"
                )
                continue
            path = group + "*"
        elif minor is None:
            if systemd and systemd < SD_DEVICE_GROUP_MAJOR:
                warn(f"{DEVICES}: systemd {systemd} has no rule for a whole major: left to the cgroup")
                continue
            path = f"{group}{major}"
        else:
            path = f"/dev/{'char' if kind == 'c' else 'block'}/{major}:{minor}"
        allow.append((path, perms))
    return [reset, ("DevicePolicy", "s", "strict"), ("DeviceAllow", "a(ss)", allow)]
