"""cgroup v1's devices controller: the writes that take a cgroup from the state its
devices.list shows to the one linux.resources.devices asks for.

Writing `deny a` and then every rule (the simple way) leaves the cgroup's processes
without /dev/null for a moment, and `allow a` first would give them every device for a
moment.  Instead the writes are the difference of the two states:
  * both lists deny by default (allow-exceptions): first the access the new list drops
    is denied, then the access it adds is allowed, so that every moment allows at most
    what both lists allow;
  * otherwise (the default changes, or the cgroup allows by default, where devices.list
    shows `a *:* rwm` alone and hides its deny-exceptions) a reset (`a`) comes first and
    the new exceptions after it: a moment of all or nothing, which the manager hides by
    freezing the cgroup when processes are in it.
A new cgroup copies its parent's list (allow-all under the root), so create makes the
reset into a cgroup nobody is in yet.  The rules themselves follow the package's model
of v1 (effective_rules, described in devices_bpf.py), which also refuses a rule v1
would silently ignore.
"""

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import ACCESS_BITS, describe, effective_rules
from pyrunc.linux.cgroups import DEVICES_FIELD as FIELD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from pyrunc.linux.cgroups import DeviceKey, Exceptions


def listed_state(text: str) -> "tuple[bool, Exceptions]":
    """(default_allow, {(type, major, minor): bits}) of a devices.list text; a
    default-allow cgroup lists `a *:* rwm` and nothing else (its denies are not shown)."""
    exceptions: Exceptions = {}
    for line in text.splitlines():
        fields = line.replace(":", " ").split()
        if not fields:
            continue
        if len(fields) != 4 or fields[0] not in ("a", "b", "c") or set(fields[3]) - set(ACCESS_BITS):
            raise CgroupError(FIELD, f"cannot read devices.list line {line!r}")
        if fields[0] == "a":
            return True, {}
        try:
            major, minor = (None if n == "*" else int(n) for n in fields[1:3])
        except ValueError:
            raise CgroupError(FIELD, f"cannot read devices.list line {line!r}") from None
        bits = 0
        for letter in fields[3]:
            bits |= ACCESS_BITS[letter]
        key = (fields[0], major, minor)
        exceptions[key] = exceptions.get(key, 0) | bits
    return False, exceptions


def _ordered(exceptions: "Exceptions") -> "list[tuple[DeviceKey, int]]":
    # A fixed order (major, minor, type; wildcards first) for what the old list loses:
    # the same lists always give the same writes.
    def key(item: "tuple[DeviceKey, int]") -> tuple[int, int, str]:
        (kind, major, minor), _ = item
        return (-1 if major is None else major, -1 if minor is None else minor, kind)

    return sorted(exceptions.items(), key=key)


def transition(listed: str, rules: "Iterable[dict[str, Any]]") -> tuple[list[tuple[bool, str]], bool]:
    """([(allow, line)] to write in order, whether the first is a reset) taking a cgroup
    whose devices.list reads `listed` to the state of `rules` (the OCI list)."""
    current_allow, current = listed_state(listed)
    target_allow, target = effective_rules(rules)
    writes: list[tuple[bool, str]] = []
    reset = current_allow or current_allow != target_allow
    if reset:
        writes.append((target_allow, "a *:* rwm"))
        current = {}
    # Exceptions of a default-deny list are allows; dropping access is a deny.
    for (kind, major, minor), bits in _ordered(current):
        dropped = bits & ~target.get((kind, major, minor), 0)
        if dropped:
            writes.append((target_allow, describe(kind, major, minor, dropped)))
    # What it gains, in the order the config lists it: "the runtime MUST apply entries
    # in the listed order" (config-linux.md), which devices.list then shows.
    for (kind, major, minor), bits in target.items():
        gained = bits & ~current.get((kind, major, minor), 0)
        if gained:
            writes.append((not target_allow, describe(kind, major, minor, gained)))
    return writes, reset


def matches(listed: str, rules: "Iterable[dict[str, Any]]") -> bool:
    """Whether devices.list (read after the writes) shows the state of `rules`: exactly,
    for a default-deny list; the default alone for a default-allow one (v1 lists no denies)."""
    target_allow, target = effective_rules(rules)
    now_allow, now = listed_state(listed)
    return now_allow == target_allow and (target_allow or now == target)
