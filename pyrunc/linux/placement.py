"""Where a container's process runs and allocates: `process.execCPUAffinity` (the CPUs
of an exec'd process, before and after it joins the cgroup) and `linux.memoryPolicy`
(its NUMA memory policy, set_mempolicy(2)).  The config's semantic checks have already
refused a malformed list, so parsing here cannot fail."""

from pyrunc.errors import KernelError

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.config.model import JsonObject, Process
    from pyrunc.linux.kernel import Kernel

# set_mempolicy(2) modes and mode flags (include/uapi/linux/mempolicy.h).
MEMPOLICY_MODES = {
    "MPOL_DEFAULT": 0,
    "MPOL_PREFERRED": 1,
    "MPOL_BIND": 2,
    "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4,
    "MPOL_PREFERRED_MANY": 5,
    "MPOL_WEIGHTED_INTERLEAVE": 6,
}
MEMPOLICY_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14, "MPOL_F_STATIC_NODES": 1 << 15}


def parse_list(text: str) -> set[int]:
    """'0-3,7' -> {0, 1, 2, 3, 7}; '' -> the empty set."""
    spans = sorted(
        (int(lo), int(hi or lo)) for lo, _, hi in (part.partition("-") for part in (text.split(",") if text else ()))
    )
    found: set[int] = set()
    done = -1
    for lo, hi in spans:  # each number once, however often the ranges repeat it
        found.update(range(max(lo, done + 1), hi + 1))
        done = max(done, hi)
    return found


def set_initial_affinity(k: "Kernel", proc: "Process") -> None:
    """execCPUAffinity.initial: on the CPUs it names before the process joins the
    container's cgroup (a cpuset there may narrow it then)."""
    affinity = proc.exec_cpu_affinity or {}
    if affinity.get("initial"):
        _pin(k, 0, affinity["initial"], "initial")


def set_final_affinity(k: "Kernel", pid: int, proc: "Process") -> None:
    """execCPUAffinity.final, once `pid` is in the container's cgroup; without it the
    kernel's choice stands, as the spec says."""
    affinity = proc.exec_cpu_affinity or {}
    if affinity.get("final"):
        _pin(k, pid, affinity["final"], "final")


def _pin(k: "Kernel", pid: int, text: str, key: str) -> None:
    k.sched_setaffinity(pid, parse_list(text), f"set process.execCPUAffinity.{key} {text!r}")


def set_memory_policy(k: "Kernel", policy: "JsonObject") -> None:
    """linux.memoryPolicy for this process and, inherited, everything it execs and forks."""
    mode = MEMPOLICY_MODES[policy["mode"]]
    for flag in policy.get("flags") or ():
        mode |= MEMPOLICY_FLAGS[flag]
    nodes = policy.get("nodes") or ""
    what = f"set linux.memoryPolicy {policy['mode']}" + (f" nodes {nodes!r}" if nodes else "")
    try:
        k.set_mempolicy(mode, parse_list(nodes), what)
    except KernelError as e:
        raise KernelError(e.errno, what + _mempolicy_hint(e.errno)) from None


def _mempolicy_hint(err: int | None) -> str:
    import errno

    if err == errno.EINVAL:
        return " (a node not allowed here, or a mode and flags this kernel refuses)"
    return ""
