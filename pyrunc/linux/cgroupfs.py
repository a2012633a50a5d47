"""Mounting the cgroup filesystem inside the container (a `cgroup` entry of `mounts`).

On a pure cgroup v2 host this is one cgroup2 mount.  On v1 and hybrid hosts it is a
tmpfs holding one mount per hierarchy the host has, as runc lays it out.  With a new
cgroup namespace each hierarchy is mounted afresh and shows the container's own cgroup
as its root; without one, the container's own cgroup directories are bind-mounted so
that the rest of the host's tree stays out of sight.
"""

import errno
import os

from pyrunc.errors import KernelError
from pyrunc.linux import kernel, paths
from pyrunc.linux.cgroups import CGROUP_MOUNT_ROOT, own_cgroups, probe
from pyrunc.linux.mounts import mount_fd, remount_attrs
from pyrunc.linux.procfs import read_lines

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.config.model import Mount
    from pyrunc.linux.init import InitContext
    from pyrunc.linux.kernel import Kernel
    from pyrunc.linux.mounts import MountOptions


def host_cgroup_mounts() -> list[tuple[str, str, str]]:
    """[(name, fstype, super options)] of the host's cgroup mounts directly under
    /sys/fs/cgroup, from mountinfo: what a new mount of each needs (cgroups.v1's
    hierarchy_controllers tells what each offers)."""
    found = []
    for line in read_lines("/proc/self/mountinfo"):
        pre, _, post = line.partition(" - ")
        fstype, _src, superopts = post.split()[:3]
        mountpoint = pre.split()[4]
        if fstype in ("cgroup", "cgroup2") and os.path.dirname(mountpoint) == CGROUP_MOUNT_ROOT:
            opts = [o for o in superopts.split(",") if o not in ("rw", "ro")]
            found.append((os.path.basename(mountpoint), fstype, ",".join(opts)))
    return found


def _hierarchy_path(name: str, fstype: str, superopts: str, own: dict[str, str]) -> str:
    if fstype == "cgroup2":
        return own.get("", "/")
    for controllers, path in own.items():
        if controllers and set(controllers.split(",")) == set(superopts.split(",")) - {"nsdelegate"}:
            return path
        if controllers and controllers == superopts:
            return path
    return own.get(name, "/")


_TMPFS_FLAGS = kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC


def mount_cgroup(root_fd: int, m: "Mount", opts: "MountOptions", ctx: "InitContext") -> None:
    """Mount the cgroup filesystem at m.destination; errors name the part that failed."""
    k = ctx.kernel
    flags = opts.flags & ~kernel.MS_BIND
    dest_fd = paths.mkdir_all(k, root_fd, m.destination)
    try:
        if probe(k) == "v2":
            own_path = ctx.cgroup_paths.get("") or own_cgroups().get("", "/")
            _mount_one(k, dest_fd, "cgroup2", "", flags, ctx, own_path, CGROUP_MOUNT_ROOT)
            if flags and not ctx.new_cgroupns:
                # The destination again, in the container's root: now the bind on top of it.
                _remount_bind(k, paths.open_in_root(k, root_fd, m.destination), flags, "cgroup2")
            return
        mount_fd(k, "tmpfs", dest_fd, "tmpfs", _TMPFS_FLAGS, "mode=755", "tmpfs for the hierarchies")
    finally:
        os.close(dest_fd)
    # The tmpfs just mounted, opened once: the hierarchies' directories are made in it by
    # name, each one lookup instead of a walk from the container's root.
    tmpfs_fd = paths.open_in_root(k, root_fd, m.destination, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        own = own_cgroups()
        names = []
        for name, fstype, superopts in host_cgroup_mounts():
            fd = paths.mkdir_in(k, tmpfs_fd, name)
            try:
                own_path = ctx.cgroup_paths.get(name) or _hierarchy_path(name, fstype, superopts, own)
                _mount_one(k, fd, fstype, superopts, flags, ctx, own_path, os.path.join(CGROUP_MOUNT_ROOT, name))
            finally:
                os.close(fd)
            names.append(name)
            if "," in name:  # cpu,cpuacct: runc also offers cpu and cpuacct as links
                paths.symlink_all(tmpfs_fd, [(name, part) for part in name.split(",")], m.destination)
        if flags and names and not ctx.new_cgroupns:
            _set_bind_flags(k, tmpfs_fd, names, flags)
        if flags & kernel.MS_RDONLY:
            ro = kernel.MS_REMOUNT | kernel.MS_RDONLY | _TMPFS_FLAGS
            mount_fd(k, None, tmpfs_fd, None, ro, "mode=755", "make the tmpfs read-only")
    finally:
        os.close(tmpfs_fd)


def _mount_one(
    k: "Kernel", fd: int, fstype: str, superopts: str, flags: int, ctx: "InitContext", own_path: str, host_dir: str
) -> None:
    """Mount one hierarchy on fd: afresh in a new cgroup namespace, else a bind of our own
    cgroup's directory, which takes the mount's flags (ro, nosuid...) only afterwards."""
    what = f"hierarchy {os.path.basename(host_dir)}"
    if ctx.new_cgroupns:
        mount_fd(k, "cgroup", fd, fstype, flags, superopts or None, what)
        return
    source = os.path.join(host_dir, own_path.lstrip("/"))
    mount_fd(k, source, fd, None, kernel.MS_BIND | kernel.MS_REC, None, f"{what} (bind {source})")


def _set_bind_flags(k: "Kernel", tmpfs_fd: int, names: list[str], flags: int) -> None:
    """Give the hierarchies bound in the tmpfs `flags`, as a bind remount of each would:
    one mount_setattr over the tmpfs and every mount below it, not a lookup and a remount
    for each of a v1 host's ten or so hierarchies.  The tmpfs keeps nosuid, nodev and
    noexec (the caller makes it read-only after this)."""
    attr_set, attr_clr = remount_attrs(flags)
    try:
        k.mount_setattr(tmpfs_fd, "", kernel.AT_EMPTY_PATH | kernel.AT_RECURSIVE, attr_set, attr_clr)
    except KernelError as e:
        if e.errno != errno.ENOSYS:
            raise KernelError(e.errno, "set the flags of the cgroup hierarchies") from None
        # Linux before 5.12: remount each.
        for name in names:
            fd = k.openat2(tmpfs_fd, name, os.O_PATH, kernel.RESOLVE_BENEATH | kernel.RESOLVE_NO_SYMLINKS)
            _remount_bind(k, fd, flags, f"hierarchy {name}")
        return
    kept = remount_attrs(_TMPFS_FLAGS)[0]
    if attr_clr & kept:
        k.mount_setattr(tmpfs_fd, "", kernel.AT_EMPTY_PATH, kept)


def _remount_bind(k: "Kernel", fd: int, flags: int, what: str) -> None:
    """Remount the bind that fd names with `flags`; closes fd."""
    try:
        mount_fd(k, None, fd, None, kernel.MS_BIND | kernel.MS_REMOUNT | flags, None, f"{what}: remount")
    finally:
        os.close(fd)
