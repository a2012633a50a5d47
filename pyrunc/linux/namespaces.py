"""Namespaces: joining existing ones by path, creating new ones, user and time mappings."""

import os

from pyrunc.linux import kernel
from pyrunc.linux.proc_writes import write_proc

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from pyrunc.config.model import IDMapping, Linux
    from pyrunc.linux.kernel import Kernel

CLONE_FLAGS = {
    "pid": kernel.CLONE_NEWPID,
    "network": kernel.CLONE_NEWNET,
    "mount": kernel.CLONE_NEWNS,
    "ipc": kernel.CLONE_NEWIPC,
    "uts": kernel.CLONE_NEWUTS,
    "user": kernel.CLONE_NEWUSER,
    "cgroup": kernel.CLONE_NEWCGROUP,
    "time": kernel.CLONE_NEWTIME,
}

# The order runc joins in: user first (it grants the rights to join the rest), mount last
# (joining it changes how every later path resolves, so all paths are opened up front).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def open_joined(linux: "Linux") -> list[tuple[str, int]]:
    """Open every namespace path up front: [(type, fd)] in join order."""
    fds = []
    by_type = {ns.type: ns.path for ns in linux.namespaces if ns.path}
    try:
        for nstype in JOIN_ORDER:
            path = by_type.get(nstype)
            if path:
                try:
                    fds.append((nstype, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
                except OSError as e:
                    raise kernel.KernelError(e.errno, f"open {nstype} namespace {path}") from None
    except BaseException:
        for _, fd in fds:
            os.close(fd)
        raise
    return fds


def join(k: "Kernel", nstype: str, fd: int, path: str) -> None:
    k.setns(fd, CLONE_FLAGS[nstype], f"join {nstype} namespace {path}")
    os.close(fd)


def new_flags(linux: "Linux", exclude: "Collection[str]" = ()) -> int:
    """The clone flags of the namespaces the container gets fresh (no path)."""
    flags = 0
    for ns in linux.namespaces:
        if not ns.path and ns.type not in exclude:
            flags |= CLONE_FLAGS[ns.type]
    return flags


def needs_child(linux: "Linux") -> bool:
    """A new or joined pid or time namespace applies only to children: fork once more."""
    return any(ns.type in ("pid", "time") for ns in linux.namespaces)


def format_mappings(mappings: "Iterable[IDMapping]") -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def write_id_maps(pid: int, linux: "Linux") -> None:
    """Written by the parent, which holds the privileges in the host user namespace; a
    parent without root only writes its own id, and has newuidmap write the rest."""
    if os.geteuid() != 0:
        from pyrunc.linux import rootless_maps

        rootless_maps.write_id_maps(pid, linux)
        return
    if linux.uid_mappings:
        write_proc(f"/proc/{pid}/uid_map", format_mappings(linux.uid_mappings), f"write uid_map of {pid}")
    if linux.gid_mappings:
        write_proc(f"/proc/{pid}/gid_map", format_mappings(linux.gid_mappings), f"write gid_map of {pid}")


def write_time_offsets(offsets: dict[str, tuple[int, int]]) -> None:
    """Offsets must be written after unshare(CLONE_NEWTIME), before any process enters it."""
    if not offsets:
        return
    text = "".join(f"{clock} {secs} {nsecs}\n" for clock, (secs, nsecs) in sorted(offsets.items()))
    write_proc("/proc/self/timens_offsets", text, "write timens_offsets")
