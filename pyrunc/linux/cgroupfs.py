"""Mounting the cgroup filesystem inside the container (a `cgroup` entry of `mounts`).

On a pure cgroup v2 host this is one cgroup2 mount.  On v1 and hybrid hosts it is a
tmpfs holding one mount per hierarchy the host has, as runc lays it out.  With a new
cgroup namespace each hierarchy is mounted afresh and shows the container's own cgroup
as its root; without one, the container's own cgroup directories are bind-mounted so
that the rest of the host's tree stays out of sight.
"""

import os

from pyrunc.linux import kernel, paths
from pyrunc.linux.cgroups import CGROUP_MOUNT_ROOT, own_cgroups, probe
from pyrunc.linux.mounts import mount_fd
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


def mount_cgroup(root_fd: int, m: "Mount", opts: "MountOptions", ctx: "InitContext") -> None:
    """Mount the cgroup filesystem at m.destination; errors name the part that failed."""
    k = ctx.kernel
    flags = opts.flags & ~kernel.MS_BIND
    dest_fd = paths.mkdir_all(k, root_fd, m.destination)
    try:
        if probe(k) == "v2":
            _mount_one(
                k,
                root_fd,
                dest_fd,
                "cgroup2",
                "",
                flags,
                ctx,
                ctx.cgroup_paths.get("") or own_cgroups().get("", "/"),
                CGROUP_MOUNT_ROOT,
                "/" + m.destination.lstrip("/"),  # in the container's root (_reopen)
            )
            return
        mount_fd(
            k,
            "tmpfs",
            dest_fd,
            "tmpfs",
            kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC,
            "mode=755",
            "tmpfs for the hierarchies",
        )
    finally:
        os.close(dest_fd)
    # The tmpfs just mounted, opened once: the hierarchies' directories are made in it by
    # name, each one lookup instead of a walk from the container's root.
    tmpfs_fd = paths.open_in_root(k, root_fd, m.destination, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        own = own_cgroups()
        for name, fstype, superopts in host_cgroup_mounts():
            fd = paths.mkdir_in(k, tmpfs_fd, name)
            try:
                _mount_one(
                    k,
                    tmpfs_fd,
                    fd,
                    fstype,
                    superopts,
                    flags,
                    ctx,
                    ctx.cgroup_paths.get(name) or _hierarchy_path(name, fstype, superopts, own),
                    os.path.join(CGROUP_MOUNT_ROOT, name),
                    name,
                )
            finally:
                os.close(fd)
            if "," in name:  # cpu,cpuacct: runc also offers cpu and cpuacct as links
                paths.symlink_all(tmpfs_fd, [(name, part) for part in name.split(",")], m.destination)
        if flags & kernel.MS_RDONLY:
            ro = kernel.MS_REMOUNT | kernel.MS_RDONLY | kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC
            mount_fd(k, None, tmpfs_fd, None, ro, "mode=755", "make the tmpfs read-only")
    finally:
        os.close(tmpfs_fd)


def _mount_one(
    k: "Kernel",
    dir_fd: int,
    fd: int,
    fstype: str,
    superopts: str,
    flags: int,
    ctx: "InitContext",
    own_path: str,
    host_dir: str,
    name: str,
) -> None:
    """Mount one hierarchy on fd, the directory `name` in dir_fd."""
    what = f"hierarchy {os.path.basename(host_dir)}"
    if ctx.new_cgroupns:
        mount_fd(k, "cgroup", fd, fstype, flags, superopts or None, what)
        return
    source = os.path.join(host_dir, own_path.lstrip("/"))
    mount_fd(k, source, fd, None, kernel.MS_BIND | kernel.MS_REC, None, f"{what} (bind {source})")
    if flags:  # a bind takes its flags (ro, nosuid...) only by a remount
        rfd = _reopen(k, dir_fd, name)  # again: fd names the covered directory
        try:
            mount_fd(k, None, rfd, None, kernel.MS_BIND | kernel.MS_REMOUNT | flags, None, f"{what}: remount")
        finally:
            os.close(rfd)


def _reopen(k: "Kernel", dir_fd: int, name: str) -> int:
    """name in dir_fd once more: now the mount on top of it."""
    if name.startswith("/"):  # v2: the destination itself, in the container's root
        return paths.open_in_root(k, dir_fd, name)
    fd: int = k.openat2(dir_fd, name, os.O_PATH | os.O_CLOEXEC, kernel.RESOLVE_BENEATH | kernel.RESOLVE_NO_SYMLINKS)
    return fd
