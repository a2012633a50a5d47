"""The root filesystem: propagation, the config's mounts, pivot_root, masked and read-only paths.

Order (config-linux.md, "Mounts" and "Root"): make the host's mounts unable to see ours,
bind the rootfs onto itself, mount every entry of `mounts` in order inside it, create the
default devices, pivot_root into it, then give the new "/" the configured propagation.
Masked and read-only paths come after the pivot, when /proc and /sys of the container
are in place.  A container without a mount namespace of its own is built in the host's:
the host's mounts keep their propagation, and chroot replaces pivot_root
(bind_root_in_host_namespace, chroot_root; host_mounts.py takes the mounts away again).
"""

import errno
import os
import stat

from pyrunc.errors import KernelError
from pyrunc.linux import kernel, paths
from pyrunc.linux.mounts import PROPAGATION, MountOptions, describe, mount_fd, remount_bind, statvfs_to_ms
from pyrunc.linux.proc_writes import PROC_SUPER_MAGIC

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TypeGuard

    from pyrunc.config.model import Mount
    from pyrunc.linux.init import InitContext
    from pyrunc.linux.kernel import Kernel
    from pyrunc.linux.mounts import ReadonlyLater

# --- the root: propagation, the rootfs bind, pivot_root ---------------------------------


def _keeps_host_peers(propagation: str | None) -> "TypeGuard[str]":
    """shared roots keep the host's shared mounts as peers, so that a bind mount of one
    marked `rshared` propagates both ways (as runc does for bidirectional volumes)."""
    return propagation in ("shared", "rshared")


def prepare_root(k: "Kernel", root: str, propagation: str | None) -> None:
    """Isolate our mount tree from the host's, then bind the rootfs onto itself.

    By default every mount becomes a slave: the host's mounts still reach us, ours never
    reach the host.  pivot_root and MS_MOVE refuse a shared current root or a shared parent
    of the new root, and a bind of a shared mount would join the host's peer group: both
    are made slaves (never private, so that a slave keeps receiving the host's mounts).
    """
    first = PROPAGATION[propagation] if _keeps_host_peers(propagation) else PROPAGATION["rslave"]
    try:
        k.mount(None, "/", None, first, None)
        _make_holding_mount_slave(k, "/")
        _make_holding_mount_slave(k, root)
        k.mount(root, root, None, kernel.MS_BIND | kernel.MS_REC, None)
    except KernelError as e:
        raise KernelError(e.errno, f"prepare rootfs {root}") from None


def _make_holding_mount_slave(k: "Kernel", path: str) -> None:
    """MS_SLAVE the mount holding `path`: the kernel only accepts a mount's root, so walk up."""
    path = os.path.realpath(path)
    while True:
        try:
            k.mount(None, path, None, kernel.MS_SLAVE, None)
            return
        except KernelError as e:
            if e.errno != errno.EINVAL or path == "/":
                raise
        path = os.path.dirname(path)


def bind_root_in_host_namespace(k: "Kernel", root: str, mount_point: str) -> None:
    """No mount namespace of its own: the host's "/" and the mount holding the rootfs keep
    their propagation (changing it would change the host's).  The rootfs is still bound,
    so that root.readonly, the propagation and the chroot act on a mount of the
    container's own, and made a slave at once, so that the container's mounts under it
    never propagate to the host's peers.

    Bound onto an empty directory of the runtime's (`mount_point`), not onto itself: where
    the holding mount is shared, the bind propagates to its peers, and where the rootfs is
    a bind mount in that peer group, the copy is tucked under it; the kernel's umount
    propagation then takes the host's rootfs mount away with the container's."""
    try:
        k.mount(root, mount_point, None, kernel.MS_BIND | kernel.MS_REC, None)
        fd = os.open(mount_point, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # the bind just made
        try:
            k.mount(None, paths.fd_path(fd), None, kernel.MS_SLAVE | kernel.MS_REC, None)
        finally:
            os.close(fd)
    except KernelError as e:
        raise KernelError(e.errno, f"bind rootfs {root} on {mount_point}") from None


def apply_root_propagation(k: "Kernel", propagation: str | None) -> None:
    """After the pivot, "/" is the rootfs mount: give it the propagation the config asks."""
    if propagation:
        try:
            k.mount(None, "/", None, PROPAGATION[propagation], None)
        except KernelError as e:
            raise KernelError(e.errno, f"set rootfs propagation {propagation}") from None


# Filesystems whose files SELinux labels by itself (genfs): a context= option is refused.
_UNLABELED_FS = ("proc", "sysfs", "cgroup", "cgroup2")


def do_mount(root_fd: int, m: "Mount", ctx: "InitContext", later: "ReadonlyLater | None" = None) -> None:
    """Mount one config entry inside the rootfs; `later`: a ReadonlyLater, which may hold
    back the entry's read-only flag."""
    what = describe(m)
    try:
        opts = MountOptions(m.options)
    except KernelError as e:
        raise KernelError(e.errno, f"{what}: {e.what}") from None
    fstype = m.type
    if fstype == "bind":
        fstype = None
        opts.flags |= kernel.MS_BIND
    if later is not None and later.defers(m, opts, fstype):
        opts.flags &= ~kernel.MS_RDONLY
        _mount_entry(root_fd, m, ctx, opts, fstype, what)
        later.hold(root_fd, m.destination, opts.flags | kernel.MS_RDONLY, what)
    else:
        _mount_entry(root_fd, m, ctx, opts, fstype, what)


def _mount_entry(
    root_fd: int, m: "Mount", ctx: "InitContext", opts: MountOptions, fstype: str | None, what: str
) -> None:
    k = ctx.kernel
    if fstype == "cgroup" and not opts.is_bind:
        from pyrunc.linux import cgroupfs

        try:
            cgroupfs.mount_cgroup(root_fd, m, opts, ctx)
        except KernelError as e:
            raise KernelError(e.errno, f"{what}: {e.what}") from None
        return
    if ctx.mount_label and not opts.is_bind and fstype not in _UNLABELED_FS:
        # linux.mountLabel: the SELinux context of the files of a new filesystem (a bind
        # keeps its source's labels).  check_mount_label refused it where SELinux is off.
        label = f'context="{ctx.mount_label}"'
        opts.data = f"{opts.data},{label}" if opts.data else label
    source = m.source
    is_dir = True
    held = ctx.mount_sources.pop(m.index, None) if opts.is_bind else None
    try:
        if held is not None:  # opened by the runtime (mount_sources.py), for a user namespace
            source = paths.fd_path(held)
            is_dir = stat.S_ISDIR(os.fstat(held).st_mode)
        elif opts.is_bind:
            source = os.path.join(ctx.bundle, source or "")  # relative sources are in the bundle
            try:
                is_dir = stat.S_ISDIR(os.stat(source).st_mode)
            except OSError as e:
                raise KernelError(e.errno, f"{what}: source") from None
        _mount_at(k, root_fd, m, opts, fstype, source, is_dir, what)
    finally:
        if held is not None:
            os.close(held)
    _after_mount(k, root_fd, m.destination, opts, what)


def _mount_at(
    k: "Kernel",
    root_fd: int,
    m: "Mount",
    opts: MountOptions,
    fstype: str | None,
    source: str | None,
    is_dir: bool,
    what: str,
) -> None:
    fd = _mountpoint(k, root_fd, m.destination, is_dir, fstype, what)
    try:
        if opts.is_bind:
            mount_fd(k, source, fd, None, opts.flags & (kernel.MS_BIND | kernel.MS_REC), None, what)
        else:
            _mount_new(k, source, fd, fstype, opts, what)
            if opts.copy_up and fstype == "tmpfs":
                _copy_up(k, fd, root_fd, m.destination, what)
    finally:
        os.close(fd)


def _copy_up(k: "Kernel", covered_fd: int, root_fd: int, dest: str, what: str) -> None:
    """tmpcopyup: what the image has under `dest`, copied into the tmpfs just mounted
    there.  `covered_fd` still names the directory under the mount.  Nothing is followed:
    every name is taken relative to its parent's fd, a symlink is copied as a symlink."""
    src = os.open(paths.fd_path(covered_fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    dst = paths.open_in_root(k, root_fd, dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _copy_tree(src, dst)
    except OSError as e:
        raise KernelError(e.errno or errno.EIO, f"{what}: tmpcopyup") from None
    finally:
        os.close(src)
        os.close(dst)


def _copy_tree(src: int, dst: int) -> None:
    for entry in os.scandir(src):
        st = entry.stat(follow_symlinks=False)
        name = entry.name
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            sub_src = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
            sub_dst = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst)
            try:
                _copy_tree(sub_src, sub_dst)
            finally:
                os.close(sub_src)
                os.close(sub_dst)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
        elif stat.S_ISREG(st.st_mode):
            _copy_file(src, dst, name, st.st_size)
        else:  # fifos, sockets and device nodes stay behind, as in runc's copy
            continue
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst)


def _copy_file(src: int, dst: int, name: str, size: int) -> None:
    fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src)
    try:
        fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=dst)
        try:
            offset = 0
            while offset < size:
                sent = os.sendfile(fout, fin, offset, size - offset)
                if not sent:
                    break
                offset += sent
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _mountpoint(k: "Kernel", root_fd: int, dest: str, is_dir: bool, fstype: str | None, what: str) -> int:
    try:
        if fstype in ("proc", "sysfs"):
            return _real_directory(k, root_fd, dest)
        fd: int = paths.ensure_mountpoint(k, root_fd, dest, is_dir)
        return fd
    except KernelError as e:
        raise KernelError(e.errno, f"{what}: mount point") from None


def _real_directory(k: "Kernel", root_fd: int, dest: str) -> int:
    """A symlinked /proc or /sys would put the real one elsewhere and leave the image's
    fake in its place (CVE-2019-19921): refuse any symlink on the way."""
    try:
        fd: int = paths.open_in_root(k, root_fd, dest, os.O_PATH | os.O_DIRECTORY, no_symlinks=True)
        return fd
    except KernelError as e:
        if e.errno != errno.ENOENT:
            raise
    os.close(paths.mkdir_all(k, root_fd, dest))
    fd = paths.open_in_root(k, root_fd, dest, os.O_PATH | os.O_DIRECTORY, no_symlinks=True)
    return fd


def _mount_new(k: "Kernel", source: str | None, fd: int, fstype: str | None, opts: MountOptions, what: str) -> None:
    try:
        mount_fd(k, source, fd, fstype, opts.flags, opts.data, what)
    except KernelError as e:
        # sysfs cannot be mounted without a network namespace of our own: bind the host's.
        if fstype != "sysfs" or e.errno != errno.EPERM:
            raise
        mount_fd(k, "/sys", fd, None, kernel.MS_BIND | kernel.MS_REC, None, what)
        opts.flags |= kernel.MS_BIND


def _after_mount(k: "Kernel", root_fd: int, dest: str, opts: MountOptions, what: str) -> None:
    """Flags a bind can only get by remount, propagation, and recursive attributes."""
    needs_remount = opts.is_bind and opts.flags & ~(kernel.MS_BIND | kernel.MS_REC | kernel.MS_REMOUNT)
    if not (needs_remount or opts.propagation or opts.attr_set or opts.attr_clr):
        return
    # Resolve again: the fd we mounted on names the covered directory, not the new mount.
    fd = paths.open_in_root(k, root_fd, dest)
    try:
        target = paths.fd_path(fd)
        if needs_remount:
            remount_bind(k, target, opts.flags, what)
        for flag in opts.propagation:
            try:
                k.mount(None, target, None, flag, None)
            except KernelError as e:
                raise KernelError(e.errno, f"{what}: set propagation") from None
        if opts.attr_set or opts.attr_clr:
            try:
                k.mount_setattr(fd, "", kernel.AT_EMPTY_PATH | kernel.AT_RECURSIVE, opts.attr_set, opts.attr_clr)
            except KernelError as e:
                raise KernelError(e.errno, f"{what}: set recursive attributes") from None
    finally:
        os.close(fd)


def pivot_root(k: "Kernel", root: str) -> None:
    """pivot_root(".", ".") then detach the old root, which is stacked on top of the new one."""
    old = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    new = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        k.pivot_root(".", ".")
        os.fchdir(old)
        # Slave first so the detach does not propagate to the host's mounts.
        k.mount(None, ".", None, kernel.MS_SLAVE | kernel.MS_REC, None)
        k.umount(".", kernel.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def chroot_root(k: "Kernel", root: str) -> None:
    """Without a mount namespace of its own, chroot into the rootfs bind (`root`, the
    mount point bind_root_in_host_namespace used): pivot_root, or MS_MOVE over "/"
    (--no-pivot), would move the host's own root."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fchdir(fd)
        k.chroot(".")
        os.chdir("/")
    finally:
        os.close(fd)


def move_root(k: "Kernel", root: str) -> None:
    """--no-pivot: move the rootfs over / and chroot (for ramfs roots, where pivot_root fails)."""
    os.chdir(root)
    k.mount(root, "/", None, kernel.MS_MOVE, None)
    k.chroot(".")
    os.chdir("/")


def remount_root_readonly(k: "Kernel") -> None:
    """root.readonly: the rootfs mount becomes read-only and keeps its other flags."""
    keep = statvfs_to_ms(os.statvfs("/").f_flag) & (kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
    remount_bind(k, "/", kernel.MS_RDONLY | keep, "make / read-only")


def _open_in_container(k: "Kernel", path: str, pinned: dict[str, int] | None = None) -> int:
    """After pivot_root the container's / is the root: resolve paths inside it, from the
    pinned mount (pin_kernel_mounts) that holds `path`, if one does."""
    path = paths.clean(path)
    pinned = pinned or {}
    fd: int
    for dest in sorted(pinned, key=len, reverse=True):
        if path == dest or path.startswith(dest + "/"):
            fd = paths.open_in_root(k, pinned[dest], path[len(dest) :])
            return fd
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = paths.open_in_root(k, root, path)
        return fd
    finally:
        os.close(root)


SYSFS_MAGIC = 0x62656572
_KERNEL_FS = {"proc": PROC_SUPER_MAGIC, "sysfs": SYSFS_MAGIC}


def pin_kernel_mounts(k: "Kernel", mounts: "Iterable[Mount]") -> dict[str, int]:
    """{destination: fd} of the config's proc and sysfs mounts, each checked to be that
    filesystem, for masking and read-only binds to resolve from.  After pivot_root a
    writer of the rootfs could swap the directory the mount sits on for a decoy with the
    same name (the mount stays on the renamed one); masks looked up by name would then
    cover the decoy and leave the real /proc/kcore readable."""
    last: dict[str, str | None] = {}
    for m in mounts:
        last[paths.clean(m.destination)] = m.type
    pinned: dict[str, int] = {}
    try:
        for dest, fstype in last.items():
            if fstype not in _KERNEL_FS:
                continue
            fd = _open_in_container(k, dest)
            pinned[dest] = fd
            if k.fstatfs_type(fd) != _KERNEL_FS[fstype]:
                raise KernelError(errno.EPERM, f"{dest} is no longer the {fstype} mounted there")
    except BaseException:
        unpin(pinned)
        raise
    return pinned


def unpin(pinned: dict[str, int]) -> None:
    for fd in pinned.values():
        os.close(fd)


def _dev_null(k: "Kernel", masking: str) -> int:
    """An fd of the container's /dev/null, checked to be the real device 1:3: an image or
    a mount that made it a link or a file would have us bind that instead (CVE-2025-31133)."""
    what = f"mask {masking} with /dev/null"
    try:
        fd = _open_in_container(k, "/dev/null")
    except KernelError as e:
        raise KernelError(e.errno, what) from None
    if not _is_null(os.fstat(fd)):
        os.close(fd)
        raise KernelError(errno.EPERM, f"{what}: it is not the null device")
    return fd


def mask_paths(k: "Kernel", masked: "Iterable[str]", pinned: dict[str, int]) -> None:
    null: int | None = None
    try:
        for path in masked:
            try:
                fd = _open_in_container(k, path, pinned)
            except KernelError as e:
                if e.errno == errno.ENOENT:
                    continue
                raise KernelError(e.errno, f"mask {path}") from None
            try:
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    _mount_on(k, fd, "tmpfs", "tmpfs", kernel.MS_RDONLY, path)
                else:
                    if null is None:
                        null = _dev_null(k, path)
                    _mount_on(k, fd, paths.fd_path(null), None, kernel.MS_BIND, path)
                    _check_is_null(k, path, pinned)
            finally:
                os.close(fd)
    finally:
        if null is not None:
            os.close(null)


def _is_null(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def _check_is_null(k: "Kernel", path: str, pinned: dict[str, int]) -> None:
    """The bind's source went through the container's /proc: see that the null device is
    what now shows at `path`."""
    fd = _open_in_container(k, path, pinned)
    try:
        if not _is_null(os.fstat(fd)):
            raise KernelError(errno.EPERM, f"mask {path} with /dev/null: the result is not the null device")
    finally:
        os.close(fd)


def _mount_on(k: "Kernel", fd: int, source: str, fstype: str | None, flags: int, path: str) -> None:
    try:
        k.mount(source, paths.fd_path(fd), fstype, flags, None)
    except KernelError as e:
        raise KernelError(e.errno, f"mask {path}") from None


def readonly_paths(k: "Kernel", readonly: "Iterable[str]", pinned: dict[str, int]) -> None:
    for path in readonly:
        try:
            fd = _open_in_container(k, path, pinned)
        except KernelError as e:
            if e.errno == errno.ENOENT:
                continue
            raise KernelError(e.errno, f"make {path} read-only") from None
        try:
            target = paths.fd_path(fd)
            # Keep the nosuid/nodev/noexec it already has, add none: a read-only /usr must
            # still run its programs.
            keep = statvfs_to_ms(os.fstatvfs(fd).f_flag) & (kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
            k.mount(target, target, None, kernel.MS_BIND | kernel.MS_REC, None)
        except KernelError as e:
            raise KernelError(e.errno, f"make {path} read-only") from None
        finally:
            os.close(fd)
        fd = _open_in_container(k, path, pinned)  # again: the bind now covers what fd named
        try:
            remount_bind(k, paths.fd_path(fd), kernel.MS_RDONLY | keep, f"make {path} read-only")
        finally:
            os.close(fd)
