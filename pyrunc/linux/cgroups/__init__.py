"""Cgroups: one manager interface, a v1 and a v2 implementation chosen by probing the host.

The lifecycle talks only to `Manager`.  `probe()` tells what the host is:
  "v1"      only v1 hierarchies under /sys/fs/cgroup/<controller>
  "hybrid"  v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified (used for
            the device program's and nothing else); resources go to v1
  "v2"      /sys/fs/cgroup is itself cgroup2
Every manager is built from the cgroup path as the config gives it (absolute, or relative
to the caller's own cgroup) and keeps, in `to_dict()`, what it needs to act again in a
later command: the resolved directories and the ones it made itself.

The host's cgroup root is a parameter (`root`) so that unit tests can point a manager at
a plain directory, and a manager reads and writes its files through the `files` object
it is given (files.py: the real one, the step trace's recording one, a test double).
"""

import posix  # not os: `delete` and `kill` load these managers without it (docs/performance.md)

from pyrunc.errors import CgroupError
from pyrunc.linux.procfs import read_lines

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from pyrunc.linux.cgroups.files import CgroupFiles
    from pyrunc.linux.kernel import Kernel

    # (type letter, major, minor), None a wildcard number; and access bits for each.
    DeviceKey = tuple[str, int | None, int | None]
    Exceptions = dict[DeviceKey, int]

CGROUP_MOUNT_ROOT = "/sys/fs/cgroup"  # the host's cgroup file systems: one cgroup2 here, or v1 ones below
CGROUP2_SUPER_MAGIC = 0x63677270


def join(path: str, *names: str) -> str:
    """os.path.join, for the managers' paths without importing os."""
    for name in names:
        if name.startswith("/") or not path:
            path = name
        elif path.endswith("/"):
            path += name
        else:
            path += "/" + name
    return path


def exists(path: str) -> bool:
    """os.path.exists, for the managers without importing os."""
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def probe(k: "Kernel", root: str = CGROUP_MOUNT_ROOT) -> str:
    """ "v2", "hybrid" or "v1" (`k`: a kernel.Kernel)."""
    import os  # create's: it makes a cgroup

    fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
    try:
        if k.fstatfs_type(fd) == CGROUP2_SUPER_MAGIC:
            return "v2"
    finally:
        os.close(fd)
    return "hybrid" if os.path.isfile(os.path.join(root, "unified", "cgroup.procs")) else "v1"


def host_controllers(mode: str, root: str = CGROUP_MOUNT_ROOT) -> set[str]:
    """The controllers a container's cgroup can use on this host."""
    from pyrunc.linux.cgroups.files import REAL_FILES

    if mode == "v2":
        return REAL_FILES.read_words(join(root, "cgroup.controllers"))
    from pyrunc.linux.cgroups.v1 import hierarchy_controllers

    found: set[str] = set()
    for ctrls in hierarchy_controllers(root).values():
        found |= ctrls
    return found - {"name=systemd"}


class Manager:
    """What every cgroup implementation offers.  `path` is linux.cgroupsPath (already
    mapped from systemd's slice:prefix:name form when --systemd-cgroup is given)."""

    version = 0

    def create(self, pid: int | None = None) -> None:
        """Make the container's cgroup directories that do not exist yet, remembering
        which ones this call made; existing ones are joined as they are.  `pid`: the
        container's first process, for the manager that must have it at creation (a
        systemd scope takes its first process with it); the others leave it to add()."""
        raise NotImplementedError

    def add(self, pid: int, dirs: dict[str, str] | None = None) -> None:
        """Put a process (the container's init, before it can run user code) in the cgroup;
        in a hierarchy `dirs` (from sub_dirs) names, in that sub-cgroup instead."""
        raise NotImplementedError

    def sub_dirs(self, subs: dict[str, str]) -> dict[str, str]:
        """exec --cgroup: {hierarchy: host directory} of the existing sub-cgroups that
        sub.parse() named, for add(); CgroupError for an unknown controller or a missing
        sub-cgroup."""
        raise NotImplementedError

    def set(self, resources: "dict[str, Any] | None", update: bool = False) -> None:
        """Write linux.resources (the raw dict from config.json, schema-validated).
        `update` is True for `pyrunc update`, where only the given fields change.
        Raises CgroupError naming the field the host cannot apply."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Every pid in the cgroup and its descendants (host pid namespace)."""
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def is_frozen(self) -> bool:
        raise NotImplementedError

    def stopped_by_freezer(self) -> bool:
        """Whether the kernel's freezer stops (or is stopping) what runs in the cgroup:
        frozen by its own freeze file or by an ancestor's.  A process that joins such a
        cgroup runs no more until it is thawed."""
        raise NotImplementedError

    def stats(self) -> "dict[str, Any]":
        """runc's `events --stats` data: {"cpu": ..., "memory": ..., "pids": ..., ...}."""
        raise NotImplementedError

    def oom_kills(self) -> int:
        """How many processes the OOM killer has killed in the cgroup so far."""
        raise NotImplementedError

    def kill_all(self, sig: int) -> None:
        """Signal every process in the cgroup (cgroup.kill for SIGKILL where v2 has it)."""
        raise NotImplementedError

    def destroy(self) -> None:
        """Remove the directories create() made, child cgroups inside them first; never
        a directory this manager did not make."""
        raise NotImplementedError

    def to_dict(self) -> "dict[str, Any]":
        raise NotImplementedError

    def paths(self) -> dict[str, str]:
        """{hierarchy directory name under the root ("" for pure v2): the container's
        cgroup path in it}, for the cgroup mount inside the container."""
        raise NotImplementedError

    def made_leaf(self) -> bool:
        """Whether create() made the container's own directory in every hierarchy: then
        nothing else can be in it yet."""
        raise NotImplementedError

    def made_any(self) -> bool:
        """Whether create() made a directory (rather than joining existing ones)."""
        made = self.to_dict().get("made")
        return any(made.values()) if isinstance(made, dict) else bool(made)


def new_manager(
    path: str | None,
    container_id: str,
    root: str = CGROUP_MOUNT_ROOT,
    mode: str | None = None,
    *,
    files: "CgroupFiles",
    kernel: "Kernel",
    systemd: str | None = None,
) -> Manager:
    """The manager for this host.  An empty path is the container id, relative to the
    caller's cgroup, as runc does.  `systemd`: with --systemd-cgroup, cgroupsPath as
    given (`slice:prefix:name`, or empty): a systemd unit then, its cgroup files at `path`."""
    if systemd is not None:
        from pyrunc.linux.cgroups import systemd_props
        from pyrunc.linux.cgroups.systemd import SystemdManager

        unit = systemd_props.parse_path(systemd, container_id)
        inner = new_manager(unit.path, container_id, root, mode, files=files, kernel=kernel)
        return SystemdManager(unit, inner, files=files, root=root)
    mode = mode or probe(kernel, root)
    if mode == "v2":
        from pyrunc.linux.cgroups.v2 import V2Manager

        return V2Manager(path or container_id, root=root, files=files, kernel=kernel)
    from pyrunc.linux.cgroups.v1 import V1Manager

    return V1Manager(path or container_id, root=root, hybrid=(mode == "hybrid"), files=files)


def load_manager(saved: "dict[str, Any]", root: str = CGROUP_MOUNT_ROOT, *, files: "CgroupFiles") -> Manager:
    """The manager a create saved with to_dict().  It takes no kernel: only create loads a
    device program (update leaves it alone, as runc 1.1 does), and delete, kill, pause and
    update must not pay for importing the kernel seam."""
    if saved.get("driver") == "systemd":
        from pyrunc.linux.cgroups.systemd import SystemdManager

        return SystemdManager.from_dict(saved, root, files=files)
    if saved["version"] == 2:
        from pyrunc.linux.cgroups.v2 import V2Manager

        return V2Manager.from_dict(saved, root=root, files=files)
    from pyrunc.linux.cgroups.v1 import V1Manager

    return V1Manager.from_dict(saved, root=root, files=files)


def own_cgroups(proc_cgroup: str = "/proc/self/cgroup") -> dict[str, str]:
    """{hierarchy key: path}: the v1 controller list ("cpu,cpuacct", "name=systemd")
    or "" for cgroup2, from /proc/self/cgroup."""
    result: dict[str, str] = {}
    for line in read_lines(proc_cgroup):
        _, controllers, path = line.split(":", 2)
        result[controllers] = path
    return result


def resolve(path: str, own: str | None) -> str:
    """An absolute cgroup path stays; a relative one is under the caller's cgroup `own`."""
    import os.path  # create's: it names a new cgroup

    if path.startswith("/"):
        return os.path.normpath(path)
    return os.path.normpath(os.path.join(own or "/", path))


def pids_below(top: str, files: "CgroupFiles") -> set[int]:
    """Every pid in the cgroup `top` (a directory) and in the cgroups below it."""
    seen: set[int] = set()
    for d in cgroup_dirs_deepest_first(top):
        seen.update(files.read_ints(join(d, "cgroup.procs")))
    return seen


def cgroup_dirs_deepest_first(top: str) -> list[str]:
    """top and every cgroup below it, children before parents (the order rmdir needs), as
    os.walk(top, topdown=False) lists them: a directory that cannot be read is left out,
    symbolic links are not followed."""
    found: list[str] = []
    todo = [(top, False)]  # (directory, its children listed already)
    while todo:
        d, listed = todo.pop()
        if listed:
            found.append(d)
            continue
        try:
            with posix.scandir(d) as entries:
                children = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        todo.append((d, True))
        todo.extend((c, False) for c in reversed(children))
    return found


# The devices every container may use whatever its config says, appended after the
# config's own rules as runc 1.1 does: mknod of any node (CAP_MKNOD still decides), the
# standard character devices, the pseudo-terminals and the tun device.  Nothing else:
# a node that linux.devices creates is not thereby allowed (runc's dev.bats "device
# cgroup deny": /dev/kmsg listed there, `deny all` in resources, and opening it fails).
DEFAULT_ALLOWED_DEVICES = (
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # null
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # random
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # full
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # tty
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # zero
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # urandom
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # ptmx
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # net/tun
)


def device_rules(resources: "dict[str, Any]") -> "list[dict[str, Any]]":
    """The rules the device controller enforces: linux.resources.devices, then the
    defaults above; linux.devices plays no part (it makes nodes, it allows nothing)."""
    rules = list(resources.get("devices") or ())
    rules.extend(dict(r) for r in DEFAULT_ALLOWED_DEVICES)
    return rules


# --- the device rules as v1 would hold them ------------------------------------------
# The model of both device controllers (devices_v1.py writes it to v1's files,
# devices_bpf.py compiles it into v2's program; its docstring says what it is), here so
# that the v1 manager need not import the program's assembler.

DEVICES_FIELD = "linux.resources.devices"
# Access letters as bits: BPF_DEVCG_ACC_MKNOD, READ and WRITE, which v1 shares.
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}


def _parse(rule: "dict[str, Any]", i: int) -> tuple[bool, str, int | None, int | None, int]:
    """(allow, type letter, major or None, minor or None, access bits) of one OCI rule."""
    where = f"{DEVICES_FIELD}[{i}]"
    kind = rule.get("type") or "a"
    if kind not in ("a", "b", "c"):
        raise CgroupError(where + ".type", f"{kind!r} is not one of 'a', 'b', 'c'")
    access = rule.get("access") or "rwm"
    if set(access) - set(ACCESS_BITS):
        raise CgroupError(where + ".access", f"{access!r} may only contain r, w and m")
    numbers: list[int | None] = []
    for key in ("major", "minor"):
        value = rule.get(key)
        if value is not None and value > 0xFFFFFFFF:
            raise CgroupError(f"{where}.{key}", f"{value} does not fit in 32 bits")
        numbers.append(None if value is None or value < 0 else value)
    bits = 0
    for letter in access:
        bits |= ACCESS_BITS[letter]
    return bool(rule.get("allow")), kind, numbers[0], numbers[1], bits


def describe(kind: str, major: int | None, minor: int | None, bits: int) -> str:
    """`c 1:* rw`, as devices.list shows an exception."""

    def num(n: int | None) -> str:
        return "*" if n is None else str(n)

    letters = "".join(letter for letter in "rwm" if bits & ACCESS_BITS[letter])
    return f"{kind} {num(major)}:{num(minor)} {letters}"


def effective_rules(rules: "Iterable[dict[str, Any]]") -> "tuple[bool, Exceptions]":
    """(default_allow, {(type letter, major, minor): access bits}) after the list: the
    default verdict and the exceptions to it (None is a wildcard number)."""
    default_allow = False
    exceptions: Exceptions = {}
    for i, rule in enumerate(rules):
        allow, kind, major, minor, bits = _parse(rule, i)
        if kind == "a":
            default_allow, exceptions = allow, {}
            continue
        key = (kind, major, minor)
        if allow != default_allow:
            exceptions[key] = exceptions.get(key, 0) | bits
            continue
        for wider in ((kind, None, minor), (kind, major, None), (kind, None, None)):
            overlap = exceptions.get(wider, 0) & bits if wider != key else 0
            if overlap:
                verb, other = ("allow", "denies") if allow else ("deny", "allows")
                raise CgroupError(
                    f"{DEVICES_FIELD}[{i}]",
                    f"cannot {verb} {describe(kind, major, minor, bits)}: an earlier rule "
                    f"{other} {describe(wider[0], wider[1], wider[2], exceptions[wider])}, and device rules "
                    "cannot punch a hole in a wider rule",
                )
        left = exceptions.pop(key, 0) & ~bits
        if left:
            exceptions[key] = left
    return default_allow, exceptions
