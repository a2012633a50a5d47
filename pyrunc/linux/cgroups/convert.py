"""Turning linux.resources values, whose units and ranges are cgroup v1's, into what the
cgroup v2 files take.  Pure functions: each raises ValueError with the reason when a
value cannot be converted, and the manager adds the field's name.

The formulas are the ones runc uses, so that a config means the same under both runtimes.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

UNLIMITED = -1
# `max` read back from a v2 file, as runc reports it in stats: the largest uint64.
MAX_UINT64 = (1 << 64) - 1

# cpu.shares (v1, clamped by the kernel to 2..262144) onto cpu.weight (1..10000).
MIN_SHARES, MAX_SHARES = 2, 262144
MIN_WEIGHT, MAX_WEIGHT = 1, 10000
# blkio.weight (v1, 10..1000) onto io.weight (1..10000).
MIN_BLKIO_WEIGHT, MAX_BLKIO_WEIGHT = 10, 1000


def limit_value(n: int) -> str:
    """A byte or count limit as a v2 file takes it: -1 (any negative) is `max`."""
    return "max" if n < 0 else str(n)


def shares_to_weight(shares: int | None) -> int | None:
    """cpu.weight for cpu.shares; None when shares is unset (0 or None).  runc's linear
    map: 2 -> 1, 262144 -> 10000, 1024 (the v1 default) -> 39.  Out-of-range shares are
    clamped first, as the v1 kernel clamps them."""
    if not shares:
        return None
    shares = min(max(shares, MIN_SHARES), MAX_SHARES)
    return MIN_WEIGHT + (shares - MIN_SHARES) * (MAX_WEIGHT - MIN_WEIGHT) // (MAX_SHARES - MIN_SHARES)


def blkio_weight_to_io_weight(weight: int | None) -> int | None:
    """io.weight for blkio.weight; None when unset (0 or None).  runc's linear map:
    10 -> 1, 1000 -> 10000, 500 (the v1 default) -> 4950."""
    if not weight:
        return None
    if not MIN_BLKIO_WEIGHT <= weight <= MAX_BLKIO_WEIGHT:
        raise ValueError(f"{weight} is outside {MIN_BLKIO_WEIGHT}..{MAX_BLKIO_WEIGHT}")
    return MIN_WEIGHT + (weight - MIN_BLKIO_WEIGHT) * (MAX_WEIGHT - MIN_WEIGHT) // (MAX_BLKIO_WEIGHT - MIN_BLKIO_WEIGHT)


def swap_max(swap: int | None, limit: int | None) -> int | None:
    """memory.swap.max for OCI's memory+swap `swap` and memory `limit` (v2 limits swap
    alone).  None: leave the file alone.  -1 is unlimited, 0 unset, as runc has them:
      limit -1 and swap unset  -> unlimited swap too (v1's "both unlimited")
      swap -1                  -> unlimited
      swap without a limit     -> error: there is nothing to subtract it from
      swap below the limit     -> error
      swap == limit            -> 0: no swap at all"""
    swap = swap or 0
    limit = limit or 0
    if limit == UNLIMITED and swap == 0:
        return UNLIMITED
    if swap == 0:
        return None
    if swap == UNLIMITED:
        return UNLIMITED
    if swap < 0:
        raise ValueError(f"{swap} is neither a size nor -1 (unlimited)")
    if limit == 0 or limit == UNLIMITED:
        raise ValueError(
            "a memory+swap limit needs a memory limit (cgroup v2 limits swap alone: memory.swap.max = swap - limit)"
        )
    if limit < 0:
        raise ValueError(f"the memory limit {limit} is neither a size nor -1 (unlimited)")
    if swap < limit:
        raise ValueError(f"memory+swap {swap} is below the memory limit {limit}")
    return swap - limit


def cpu_max(quota: int | None, period: int | None, current_quota: str = "max") -> str | None:
    """The line for cpu.max ("$QUOTA $PERIOD"), or None when neither is set.  A quota
    of -1 (any value <= 0 other than unset 0) is `max`.  An unset quota keeps the
    current one (for `update --cpu-period`); an unset period is left out, so the kernel
    keeps its own (100000 in a new cgroup)."""
    if not quota and not period:
        return None
    if quota:
        q = "max" if quota < 0 else str(quota)
    else:
        q = current_quota
    return q if not period else f"{q} {period}"


def io_max_lines(block_io: "dict[str, Any]") -> dict[tuple[int, int], tuple[str, str]]:
    """{(major, minor): (line, field)} for the throttle lists: one io.max line per device,
    "MAJ:MIN rbps=N wbps=N riops=N wiops=N" with the keys given for it, and the first
    field (`throttleReadBpsDevice[0]`) that asked for it.  A rate of 0 removes the limit
    in v1; v2 says so with `max`."""
    keys = (
        ("throttleReadBpsDevice", "rbps"),
        ("throttleWriteBpsDevice", "wbps"),
        ("throttleReadIOPSDevice", "riops"),
        ("throttleWriteIOPSDevice", "wiops"),
    )
    per_device: dict[tuple[int, int], dict[str, str]] = {}
    first_field: dict[tuple[int, int], str] = {}
    for field, key in keys:
        for i, entry in enumerate(block_io.get(field) or ()):
            dev = (entry["major"], entry["minor"])
            rate = entry["rate"]
            per_device.setdefault(dev, {})[key] = "max" if rate == 0 else str(rate)
            first_field.setdefault(dev, f"{field}[{i}]")
    return {
        dev: (f"{dev[0]}:{dev[1]} " + " ".join(f"{k}={v}" for k, v in limits.items()), first_field[dev])
        for dev, limits in per_device.items()
    }


def rdma_max_line(device: str, limits: "dict[str, Any]") -> str:
    """One line of rdma.max: "mlx5_1 hca_handle=3 hca_object=10000"."""
    parts = [device]
    if limits.get("hcaHandles") is not None:
        parts.append(f"hca_handle={limits['hcaHandles']}")
    if limits.get("hcaObjects") is not None:
        parts.append(f"hca_object={limits['hcaObjects']}")
    return " ".join(parts)


def read_limit(text: str) -> int | None:
    """A v2 limit file's value as an int: `max` is the largest uint64, as runc reports it;
    None when empty or unreadable."""
    word = text.split()[0] if text.split() else ""
    if word == "max":
        return MAX_UINT64
    try:
        return int(word)
    except ValueError:
        return None
