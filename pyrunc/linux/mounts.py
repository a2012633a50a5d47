"""Mount options and the helpers every mount of the runtime goes through.

MountOptions splits a config mount's options the way the kernel takes them; describe
names a config mount in errors; mount_fd mounts onto a resolved fd; remount_bind changes
a bind's flags, keeping those the kernel locked; ReadonlyLater holds back a read-only
flag until what is made below the mount is in place.  The sequence that uses them is in
rootfs.py; the cgroup filesystem's mounts (cgroupfs.py) use them too.
"""

import errno
import os

from pyrunc.errors import KernelError
from pyrunc.linux import kernel, paths
from pyrunc.linux.tables import IDMAP_MOUNT_OPTIONS, MOUNT_PROPAGATIONS

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from pyrunc.config.model import Mount
    from pyrunc.linux.kernel import Kernel

# option -> (flags to set, flags to clear)
_FLAGS = {
    "defaults": (0, 0),
    "rw": (0, kernel.MS_RDONLY),
    "ro": (kernel.MS_RDONLY, 0),
    "suid": (0, kernel.MS_NOSUID),
    "nosuid": (kernel.MS_NOSUID, 0),
    "dev": (0, kernel.MS_NODEV),
    "nodev": (kernel.MS_NODEV, 0),
    "exec": (0, kernel.MS_NOEXEC),
    "noexec": (kernel.MS_NOEXEC, 0),
    "sync": (kernel.MS_SYNCHRONOUS, 0),
    "async": (0, kernel.MS_SYNCHRONOUS),
    "dirsync": (kernel.MS_DIRSYNC, 0),
    "remount": (kernel.MS_REMOUNT, 0),
    "mand": (kernel.MS_MANDLOCK, 0),
    "nomand": (0, kernel.MS_MANDLOCK),
    "atime": (0, kernel.MS_NOATIME),
    "noatime": (kernel.MS_NOATIME, 0),
    "diratime": (0, kernel.MS_NODIRATIME),
    "nodiratime": (kernel.MS_NODIRATIME, 0),
    "relatime": (kernel.MS_RELATIME, 0),
    "norelatime": (0, kernel.MS_RELATIME),
    "strictatime": (kernel.MS_STRICTATIME, 0),
    "nostrictatime": (0, kernel.MS_STRICTATIME),
    "lazytime": (kernel.MS_LAZYTIME, 0),
    "nolazytime": (0, kernel.MS_LAZYTIME),
    "iversion": (kernel.MS_I_VERSION, 0),
    "noiversion": (0, kernel.MS_I_VERSION),
    "silent": (kernel.MS_SILENT, 0),
    "loud": (0, kernel.MS_SILENT),
    "nosymfollow": (kernel.MS_NOSYMFOLLOW, 0),
    "symfollow": (0, kernel.MS_NOSYMFOLLOW),
    "bind": (kernel.MS_BIND, 0),
    "rbind": (kernel.MS_BIND | kernel.MS_REC, 0),
}

_PROPAGATION_FLAGS = {
    "private": kernel.MS_PRIVATE,
    "shared": kernel.MS_SHARED,
    "slave": kernel.MS_SLAVE,
    "unbindable": kernel.MS_UNBINDABLE,
}
# The names are tables.py's (validation knows them too); an "r" in front adds MS_REC.
PROPAGATION = {
    name: _PROPAGATION_FLAGS[name[1:]] | kernel.MS_REC if name[1:] in _PROPAGATION_FLAGS else _PROPAGATION_FLAGS[name]
    for name in MOUNT_PROPAGATIONS
}

# Recursive attributes, applied with mount_setattr(AT_RECURSIVE): option -> (set, clear)
_ATTRS = {
    "rro": (kernel.MOUNT_ATTR_RDONLY, 0),
    "rrw": (0, kernel.MOUNT_ATTR_RDONLY),
    "rnosuid": (kernel.MOUNT_ATTR_NOSUID, 0),
    "rsuid": (0, kernel.MOUNT_ATTR_NOSUID),
    "rnodev": (kernel.MOUNT_ATTR_NODEV, 0),
    "rdev": (0, kernel.MOUNT_ATTR_NODEV),
    "rnoexec": (kernel.MOUNT_ATTR_NOEXEC, 0),
    "rexec": (0, kernel.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (kernel.MOUNT_ATTR_NODIRATIME, 0),
    "rdiratime": (0, kernel.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (kernel.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "rsymfollow": (0, kernel.MOUNT_ATTR_NOSYMFOLLOW),
    # atime modes replace one another: clear the whole field and set one.
    "rrelatime": (kernel.MOUNT_ATTR_RELATIME, kernel.MOUNT_ATTR__ATIME),
    "rnorelatime": (kernel.MOUNT_ATTR_STRICTATIME, kernel.MOUNT_ATTR__ATIME),
    "rnoatime": (kernel.MOUNT_ATTR_NOATIME, kernel.MOUNT_ATTR__ATIME),
    "ratime": (kernel.MOUNT_ATTR_RELATIME, kernel.MOUNT_ATTR__ATIME),
    "rstrictatime": (kernel.MOUNT_ATTR_STRICTATIME, kernel.MOUNT_ATTR__ATIME),
    "rnostrictatime": (kernel.MOUNT_ATTR_RELATIME, kernel.MOUNT_ATTR__ATIME),
}

# Flags that a read-only or nosuid remount of a bind must keep when the kernel has
# locked them (mounts inherited into a user namespace).
_LOCKABLE = (
    kernel.MS_RDONLY
    | kernel.MS_NOSUID
    | kernel.MS_NODEV
    | kernel.MS_NOEXEC
    | kernel.MS_NOATIME
    | kernel.MS_NODIRATIME
    | kernel.MS_RELATIME
)

# Options recognised by MountOptions other than through the tables above.
_OWN_OPTIONS = ("tmpcopyup",)

# Every option name MountOptions takes as an option rather than as filesystem data: the
# features document lists exactly these (features.py), so the two cannot drift apart.
OPTION_NAMES = tuple(sorted({*_FLAGS, *PROPAGATION, *_ATTRS, *_OWN_OPTIONS}))


class MountOptions:
    """A mount's options split the way the kernel takes them: mount(2) flags, propagation
    changes (applied in order after the mount), mount_setattr(2) attributes, and the rest
    as the filesystem's data string.  A later option overrides an earlier one."""

    __slots__ = ("flags", "propagation", "attr_set", "attr_clr", "data", "copy_up")

    def __init__(self, options: "Iterable[str]") -> None:
        self.flags = self.attr_set = self.attr_clr = 0
        self.propagation: list[int] = []
        self.copy_up = False  # tmpcopyup (runc's, podman's --read-only): fill the tmpfs
        data: list[str] = []
        for opt in options:
            if opt == "tmpcopyup":
                self.copy_up = True
            elif opt in _FLAGS:
                s, c = _FLAGS[opt]
                self.flags = (self.flags | s) & ~c
            elif opt in PROPAGATION:
                self.propagation.append(PROPAGATION[opt])
            elif opt in _ATTRS:
                s, c = _ATTRS[opt]
                self.attr_set = (self.attr_set & ~c) | s
                self.attr_clr |= c
            elif opt in IDMAP_MOUNT_OPTIONS:
                raise KernelError(errno.EOPNOTSUPP, f"mount option {opt!r}")
            else:
                data.append(opt)
        self.data = ",".join(data) or None

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & kernel.MS_BIND)


def describe(m: "Mount") -> str:
    """How errors name a config mount, as config.json gives it, on one line:
    `mounts[5]: mount tmpfs "tmpfs" on "/mnt" (options nosuid,size=abc)`."""
    from pyrunc import jsonc  # quoted and escaped: a hostile name stays on its line

    where = f"mounts[{m.index}]: " if m.index is not None else ""
    kind = f"{m.type} " if m.type else ""
    source = f"{jsonc.dumps(m.source)} " if m.source is not None else ""
    opts = f" (options {jsonc.dumps(','.join(m.options))[1:-1]})" if m.options else ""
    return f"{where}mount {kind}{source}on {jsonc.dumps(m.destination)}{opts}"


def mount_fd(
    k: "Kernel", source: str | None, fd: int, fstype: str | None, flags: int, data: str | None, what: str
) -> None:
    """mount onto the resolved fd, naming the config's mount in errors."""
    try:
        k.mount(source, paths.fd_path(fd), fstype, flags, data)
    except KernelError as e:
        raise KernelError(e.errno, what) from None


# mount(2) flag -> the mount_setattr(2) attribute a bind remount sets or clears with it
_REMOUNT_ATTRS = (
    (kernel.MS_RDONLY, kernel.MOUNT_ATTR_RDONLY),
    (kernel.MS_NOSUID, kernel.MOUNT_ATTR_NOSUID),
    (kernel.MS_NODEV, kernel.MOUNT_ATTR_NODEV),
    (kernel.MS_NOEXEC, kernel.MOUNT_ATTR_NOEXEC),
    (kernel.MS_NOSYMFOLLOW, kernel.MOUNT_ATTR_NOSYMFOLLOW),
)
_ATIME_FLAGS = kernel.MS_NOATIME | kernel.MS_NODIRATIME | kernel.MS_RELATIME | kernel.MS_STRICTATIME


def remount_attrs(flags: int) -> tuple[int, int]:
    """(attr_set, attr_clr) for mount_setattr(2) that leave a mount with the flags a bind
    remount (MS_BIND | MS_REMOUNT | flags) gives it: each flag set or cleared; the atime
    mode kept when flags name none, else relatime unless noatime or strictatime, as
    mount(2) defaults it."""
    attr_set = attr_clr = 0
    for flag, attr in _REMOUNT_ATTRS:
        if flags & flag:
            attr_set |= attr
        else:
            attr_clr |= attr
    if flags & _ATIME_FLAGS:
        attr_clr |= kernel.MOUNT_ATTR__ATIME | kernel.MOUNT_ATTR_NODIRATIME
        if flags & kernel.MS_STRICTATIME:
            attr_set |= kernel.MOUNT_ATTR_STRICTATIME
        elif flags & kernel.MS_NOATIME:
            attr_set |= kernel.MOUNT_ATTR_NOATIME
        if flags & kernel.MS_NODIRATIME:
            attr_set |= kernel.MOUNT_ATTR_NODIRATIME
    return attr_set, attr_clr


def remount_bind(k: "Kernel", target: str, flags: int, what: str) -> None:
    """Change the flags of a bind mount, keeping flags the kernel locked on it."""
    want = kernel.MS_BIND | kernel.MS_REMOUNT | (flags & ~(kernel.MS_BIND | kernel.MS_REC | kernel.MS_REMOUNT))
    try:
        k.mount(None, target, None, want, None)
    except KernelError as e:
        if e.errno != errno.EPERM:
            raise KernelError(e.errno, f"{what}: remount") from None
        st = os.statvfs(target)
        locked = statvfs_to_ms(st.f_flag) & _LOCKABLE
        try:
            k.mount(None, target, None, want | locked, None)
        except KernelError as e2:
            raise KernelError(e2.errno, f"{what}: remount") from None


_ST_RELATIME = 4096  # statvfs's bit for relatime; the other ST_* bits we keep equal MS_*


def statvfs_to_ms(f_flag: int) -> int:
    flags = f_flag & (
        kernel.MS_RDONLY
        | kernel.MS_NOSUID
        | kernel.MS_NODEV
        | kernel.MS_NOEXEC
        | kernel.MS_NOATIME
        | kernel.MS_NODIRATIME
    )
    return flags | (kernel.MS_RELATIME if f_flag & _ST_RELATIME else 0)


class ReadonlyLater:
    """Read-only mounts that what comes after them must write under: a mount point made
    below a read-only /dev (devpts on /dev/pts), the default devices, the /dev links,
    /dev/console.  Such a mount is made read-write, and read-only by finish() once all
    of that is in place, as runc does for /dev; the remount is a bind remount, so the
    mount is read-only and its other flags stay.

    Only where the read-write mount gives nothing the config did not ask for: a tmpfs or
    devtmpfs, made for the container.  Never a bind: the mount points would be made in
    the host's directory the config asked to see read-only (runc fails such a config, and
    so does pyrunc); never a filesystem on a device, which a read-write mount may write to
    (a journal replayed); nor proc or sysfs, in which nothing can be made anyway.
    """

    _TYPES = ("tmpfs", "devtmpfs")

    def __init__(self, k: "Kernel", mounts: "Sequence[Mount]", written_later: "Iterable[str]" = ()) -> None:
        self.kernel = k
        dests = [paths.clean(m.destination) for m in mounts]
        self._wanted: set[int] = set()  # the entries (by identity) with something made below them
        for i, m in enumerate(mounts):
            below = dests[i + 1 :] + [paths.clean(p) for p in written_later]
            if any(_is_below(p, dests[i]) for p in below):
                self._wanted.add(id(m))
        self.held: list[tuple[int, int, str]] = []  # [(O_PATH fd of the mount, its flags, how errors name it)]

    def defers(self, m: "Mount", opts: MountOptions, fstype: str | None) -> bool:
        return (
            id(m) in self._wanted and bool(opts.flags & kernel.MS_RDONLY) and not opts.is_bind and fstype in self._TYPES
        )

    def hold(self, root_fd: int, dest: str, flags: int, what: str) -> None:
        # The mount itself, by fd: a later entry may cover the path.
        try:
            fd = paths.open_in_root(self.kernel, root_fd, dest)
        except KernelError as e:
            raise KernelError(e.errno, f"{what}: open the mount") from None
        self.held.append((fd, flags, what))

    def finish(self) -> None:
        """Make every mount held back read-only."""
        while self.held:
            fd, flags, what = self.held.pop(0)
            try:
                remount_bind(self.kernel, paths.fd_path(fd), flags, what)
            finally:
                os.close(fd)

    def close(self) -> None:
        for fd, _, _ in self.held:
            os.close(fd)
        self.held = []


def _is_below(path: str, top: str) -> bool:
    return path != top and path.startswith(top.rstrip("/") + "/")
