"""The mounts a container without a mount namespace of its own leaves in the host's.

Such a container shares the runtime's mount namespace (config-linux.md: a namespace type
not listed is inherited), so its rootfs bind, its `mounts`, masks, devices and console
are all made in the host's mount table, and no namespace dies with the container to take
them along: runc leaves them there for good.  pyrunc binds the rootfs on an empty
directory of the container's state, records which mounts were under it before the init
began (`record`, by create), and `detach_new` (by delete, and by a create that fails)
detaches every other one, children before parents.

The container can rename, and plant symlinks, anywhere in its rootfs, so a mount point
read from mountinfo is only where the mount was: each one is opened without following
any symlink, checked by its mount id to be the very mount meant, and detached through
that fd, never through the path again.
"""

import errno
import os
import re

from pyrunc.errors import KernelError
from pyrunc.linux import kernel

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from pyrunc.linux.kernel import Kernel

MOUNTINFO = "/proc/self/mountinfo"
# A pass detaches what it can reach; a mount covered by a later sibling becomes reachable
# once that one is gone.  More passes than that mean something keeps mounting.
MAX_PASSES = 4

_OCTAL_ESCAPE = re.compile(rb"\\([0-7]{3})")


class MountEntry:
    """One line of mountinfo: what detaching needs of it."""

    __slots__ = ("mount_id", "parent_id", "mount_point")

    def __init__(self, mount_id: int, parent_id: int, mount_point: str) -> None:
        self.mount_id, self.parent_id, self.mount_point = mount_id, parent_id, mount_point

    def __repr__(self) -> str:
        return f"MountEntry({self.mount_id}, {self.parent_id}, {self.mount_point!r})"


def _unescape(field: bytes) -> str:
    """The kernel writes space, tab, newline and backslash in paths as \\ooo (octal)."""
    return os.fsdecode(_OCTAL_ESCAPE.sub(lambda m: bytes([int(m.group(1), 8)]), field))


def parse_mountinfo(data: bytes) -> list[MountEntry]:
    """[MountEntry] in the order of mountinfo (bytes), which is the order of mounting."""
    entries: list[MountEntry] = []
    for line in data.splitlines():
        fields = line.split(b" ")
        if len(fields) < 5:
            continue
        entries.append(MountEntry(int(fields[0]), int(fields[1]), _unescape(fields[4])))
    return entries


def read_mountinfo() -> list[MountEntry]:
    with open(MOUNTINFO, "rb") as f:
        return parse_mountinfo(f.read())


def is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def mounts_under(root: str, entries: "Iterable[MountEntry]") -> list[MountEntry]:
    return [e for e in entries if is_under(e.mount_point, root)]


def record(root: str) -> "dict[str, Any]":
    """What create stores: the container's mount point as mountinfo names it (symlinks
    resolved) and the ids of the mounts already under it, which are not the container's."""
    root = os.path.realpath(root)
    return {"root": root, "before": [e.mount_id for e in mounts_under(root, read_mountinfo())]}


def new_mounts(saved: "Mapping[str, Any]", entries: "Iterable[MountEntry]") -> list[MountEntry]:
    before = set(saved["before"])
    return [e for e in mounts_under(saved["root"], entries) if e.mount_id not in before]


def detach_order(entries: "Iterable[MountEntry]") -> list[MountEntry]:
    """Children before their parents; otherwise the later mount first, as it may cover
    an earlier one (a mount on /a hides one made before on /a/b)."""
    pending = list(entries)
    order: list[MountEntry] = []
    while pending:
        parents = {e.parent_id for e in pending if e.parent_id != e.mount_id}
        leaf = next(
            (i for i in range(len(pending) - 1, -1, -1) if pending[i].mount_id not in parents), len(pending) - 1
        )
        order.append(pending.pop(leaf))
    return order


def _mount_id_of(fd: int) -> int:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    raise KernelError(errno.ENOTSUP, f"mount id of fd {fd}")


def detach(k: "Kernel", entry: MountEntry) -> str | None:
    """Detach the mount `entry` names if its mount point still leads to it, without a
    symlink on the way.  None once detached, else why not (it may be gone, moved or
    covered by another: then the detach of an ancestor takes it along)."""
    try:
        fd = k.openat2(kernel.AT_FDCWD, entry.mount_point, os.O_PATH, kernel.RESOLVE_NO_SYMLINKS)
    except KernelError as e:
        return str(e)
    try:
        if _mount_id_of(fd) != entry.mount_id:
            return f"{entry.mount_point} now leads to another mount"
        # MNT_DETACH: a process still inside (a late exec, a hook) must not keep it mounted.
        k.umount(f"/proc/self/fd/{fd}", kernel.MNT_DETACH)
        return None
    except (KernelError, OSError) as e:
        return str(e)
    finally:
        os.close(fd)


def detach_new(k: "Kernel", saved: "Mapping[str, Any]") -> list[tuple[MountEntry, str]]:
    """Detach every mount under saved["root"] that create did not find there.  Returns
    [(MountEntry, why)] of those still there, empty when all are gone."""
    why: dict[int, str | None] = {}
    left = new_mounts(saved, read_mountinfo())
    for _ in range(MAX_PASSES):
        if not left:
            break
        for entry in detach_order(left):
            why[entry.mount_id] = detach(k, entry)
        detached_any = any(why[e.mount_id] is None for e in left)
        left = new_mounts(saved, read_mountinfo())
        if not detached_any:
            break
    return [(e, why.get(e.mount_id) or "it was mounted again during the cleanup") for e in left]


def describe_left(left: list[tuple[MountEntry, str]], root: str) -> str:
    """One line for what detach_new left: the first mount, why, and how many more."""
    entry, why = left[0]
    more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
    point = entry.mount_point if entry.mount_point.isprintable() else repr(entry.mount_point)
    return f"cannot unmount {point} under {root}: {why}{more}"
