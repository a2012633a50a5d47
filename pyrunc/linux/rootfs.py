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
from pyrunc.linux import kernel as k
from pyrunc.linux import paths

# option -> (flags to set, flags to clear)
_FLAGS = {
    "defaults": (0, 0), "rw": (0, k.MS_RDONLY), "ro": (k.MS_RDONLY, 0),
    "suid": (0, k.MS_NOSUID), "nosuid": (k.MS_NOSUID, 0),
    "dev": (0, k.MS_NODEV), "nodev": (k.MS_NODEV, 0),
    "exec": (0, k.MS_NOEXEC), "noexec": (k.MS_NOEXEC, 0),
    "sync": (k.MS_SYNCHRONOUS, 0), "async": (0, k.MS_SYNCHRONOUS),
    "dirsync": (k.MS_DIRSYNC, 0), "remount": (k.MS_REMOUNT, 0),
    "mand": (k.MS_MANDLOCK, 0), "nomand": (0, k.MS_MANDLOCK),
    "atime": (0, k.MS_NOATIME), "noatime": (k.MS_NOATIME, 0),
    "diratime": (0, k.MS_NODIRATIME), "nodiratime": (k.MS_NODIRATIME, 0),
    "relatime": (k.MS_RELATIME, 0), "norelatime": (0, k.MS_RELATIME),
    "strictatime": (k.MS_STRICTATIME, 0), "nostrictatime": (0, k.MS_STRICTATIME),
    "lazytime": (k.MS_LAZYTIME, 0), "nolazytime": (0, k.MS_LAZYTIME),
    "iversion": (k.MS_I_VERSION, 0), "noiversion": (0, k.MS_I_VERSION),
    "silent": (k.MS_SILENT, 0), "loud": (0, k.MS_SILENT),
    "nosymfollow": (k.MS_NOSYMFOLLOW, 0), "symfollow": (0, k.MS_NOSYMFOLLOW),
    "bind": (k.MS_BIND, 0), "rbind": (k.MS_BIND | k.MS_REC, 0),
}

PROPAGATION = {
    "private": k.MS_PRIVATE, "rprivate": k.MS_PRIVATE | k.MS_REC,
    "shared": k.MS_SHARED, "rshared": k.MS_SHARED | k.MS_REC,
    "slave": k.MS_SLAVE, "rslave": k.MS_SLAVE | k.MS_REC,
    "unbindable": k.MS_UNBINDABLE, "runbindable": k.MS_UNBINDABLE | k.MS_REC,
}

# Recursive attributes, applied with mount_setattr(AT_RECURSIVE): option -> (set, clear)
_ATTRS = {
    "rro": (k.MOUNT_ATTR_RDONLY, 0), "rrw": (0, k.MOUNT_ATTR_RDONLY),
    "rnosuid": (k.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, k.MOUNT_ATTR_NOSUID),
    "rnodev": (k.MOUNT_ATTR_NODEV, 0), "rdev": (0, k.MOUNT_ATTR_NODEV),
    "rnoexec": (k.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, k.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (k.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, k.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (k.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, k.MOUNT_ATTR_NOSYMFOLLOW),
    # atime modes replace one another: clear the whole field and set one.
    "rrelatime": (k.MOUNT_ATTR_RELATIME, k.MOUNT_ATTR__ATIME),
    "rnorelatime": (k.MOUNT_ATTR_STRICTATIME, k.MOUNT_ATTR__ATIME),
    "rnoatime": (k.MOUNT_ATTR_NOATIME, k.MOUNT_ATTR__ATIME),
    "ratime": (k.MOUNT_ATTR_RELATIME, k.MOUNT_ATTR__ATIME),
    "rstrictatime": (k.MOUNT_ATTR_STRICTATIME, k.MOUNT_ATTR__ATIME),
    "rnostrictatime": (k.MOUNT_ATTR_RELATIME, k.MOUNT_ATTR__ATIME),
}

# Flags that a read-only or nosuid remount of a bind must keep when the kernel has
# locked them (mounts inherited into a user namespace).
_LOCKABLE = k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC | k.MS_NOATIME | k.MS_NODIRATIME | k.MS_RELATIME

PROC_SUPER_MAGIC = 0x9FA0

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

    def __init__(self, options):
        self.flags = self.attr_set = self.attr_clr = 0
        self.propagation = []
        self.copy_up = False  # tmpcopyup (runc's, podman's --read-only): fill the tmpfs
        data = []
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
            elif opt in ("idmap", "ridmap"):
                raise KernelError(errno.EOPNOTSUPP, f"mount option {opt!r}")
            else:
                data.append(opt)
        self.data = ",".join(data) or None

    @property
    def is_bind(self):
        return bool(self.flags & k.MS_BIND)


def describe(m):
    """How errors name a config mount, as config.json gives it, on one line:
    `mounts[5]: mount tmpfs "tmpfs" on "/mnt" (options nosuid,size=abc)`."""
    from pyrunc import jsonc  # quoted and escaped: a hostile name stays on its line
    where = f"mounts[{m.index}]: " if m.index is not None else ""
    kind = f"{m.type} " if m.type else ""
    source = f"{jsonc.dumps(m.source)} " if m.source is not None else ""
    opts = f" (options {jsonc.dumps(','.join(m.options))[1:-1]})" if m.options else ""
    return f"{where}mount {kind}{source}on {jsonc.dumps(m.destination)}{opts}"


def mount_fd(source, fd, fstype, flags, data, what):
    """mount onto the resolved fd, naming the config's mount in errors."""
    try:
        k.mount(source, paths.fd_path(fd), fstype, flags, data)
    except KernelError as e:
        raise KernelError(e.errno, what) from None


def _remount_bind(target, flags, what):
    """Change the flags of a bind mount, keeping flags the kernel locked on it."""
    want = k.MS_BIND | k.MS_REMOUNT | (flags & ~(k.MS_BIND | k.MS_REC | k.MS_REMOUNT))
    try:
        k.mount(None, target, None, want, None)
    except KernelError as e:
        if e.errno != errno.EPERM:
            raise KernelError(e.errno, f"{what}: remount") from None
        st = os.statvfs(target)
        locked = _statvfs_to_ms(st.f_flag) & _LOCKABLE
        try:
            k.mount(None, target, None, want | locked, None)
        except KernelError as e2:
            raise KernelError(e2.errno, f"{what}: remount") from None


_ST_RELATIME = 4096  # statvfs's bit for relatime; the other ST_* bits we keep equal MS_*


def _statvfs_to_ms(f_flag):
    flags = f_flag & (k.MS_RDONLY | k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC | k.MS_NOATIME
                      | k.MS_NODIRATIME)
    return flags | (k.MS_RELATIME if f_flag & _ST_RELATIME else 0)


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

    def __init__(self, mounts, written_later=()):
        dests = [paths.clean(m.destination) for m in mounts]
        self._wanted = set()  # the entries (by identity) with something made below them
        for i, m in enumerate(mounts):
            below = dests[i + 1:] + [paths.clean(p) for p in written_later]
            if any(_is_below(p, dests[i]) for p in below):
                self._wanted.add(id(m))
        self.held = []  # [(O_PATH fd of the mount, its flags, how errors name it)]

    def defers(self, m, opts, fstype):
        return (id(m) in self._wanted and bool(opts.flags & k.MS_RDONLY)
                and not opts.is_bind and fstype in self._TYPES)

    def hold(self, root_fd, dest, flags, what):
        # The mount itself, by fd: a later entry may cover the path.
        try:
            fd = paths.open_in_root(root_fd, dest)
        except KernelError as e:
            raise KernelError(e.errno, f"{what}: open the mount") from None
        self.held.append((fd, flags, what))

    def finish(self):
        """Make every mount held back read-only."""
        while self.held:
            fd, flags, what = self.held.pop(0)
            try:
                _remount_bind(paths.fd_path(fd), flags, what)
            finally:
                os.close(fd)

    def close(self):
        for fd, _, _ in self.held:
            os.close(fd)
        self.held = []


def _is_below(path, top):
    return path != top and path.startswith(top.rstrip("/") + "/")


# --- the root: propagation, the rootfs bind, pivot_root ---------------------------------

def _keeps_host_peers(propagation):
    """shared roots keep the host's shared mounts as peers, so that a bind mount of one
    marked `rshared` propagates both ways (as runc does for bidirectional volumes)."""
    return propagation in ("shared", "rshared")


def prepare_root(root, propagation):
    """Isolate our mount tree from the host's, then bind the rootfs onto itself.

    By default every mount becomes a slave: the host's mounts still reach us, ours never
    reach the host.  pivot_root and MS_MOVE refuse a shared current root or a shared parent
    of the new root, and a bind of a shared mount would join the host's peer group: both
    are made slaves (never private, so that a slave keeps receiving the host's mounts).
    """
    first = PROPAGATION[propagation] if _keeps_host_peers(propagation) else PROPAGATION["rslave"]
    try:
        k.mount(None, "/", None, first, None)
        _make_holding_mount_slave("/")
        _make_holding_mount_slave(root)
        k.mount(root, root, None, k.MS_BIND | k.MS_REC, None)
    except KernelError as e:
        raise KernelError(e.errno, f"prepare rootfs {root}") from None


def _make_holding_mount_slave(path):
    """MS_SLAVE the mount holding `path`: the kernel only accepts a mount's root, so walk up."""
    path = os.path.realpath(path)
    while True:
        try:
            k.mount(None, path, None, k.MS_SLAVE, None)
            return
        except KernelError as e:
            if e.errno != errno.EINVAL or path == "/":
                raise
        path = os.path.dirname(path)


def bind_root_in_host_namespace(root, mount_point):
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
        k.mount(root, mount_point, None, k.MS_BIND | k.MS_REC, None)
        fd = os.open(mount_point, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # the bind just made
        try:
            k.mount(None, paths.fd_path(fd), None, k.MS_SLAVE | k.MS_REC, None)
        finally:
            os.close(fd)
    except KernelError as e:
        raise KernelError(e.errno, f"bind rootfs {root} on {mount_point}") from None


def apply_root_propagation(propagation):
    """After the pivot, "/" is the rootfs mount: give it the propagation the config asks."""
    if propagation:
        try:
            k.mount(None, "/", None, PROPAGATION[propagation], None)
        except KernelError as e:
            raise KernelError(e.errno, f"set rootfs propagation {propagation}") from None


# Filesystems whose files SELinux labels by itself (genfs): a context= option is refused.
_UNLABELED_FS = ("proc", "sysfs", "cgroup", "cgroup2")


def do_mount(root_fd, m, ctx, later=None):
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
        opts.flags |= k.MS_BIND
    if later is not None and later.defers(m, opts, fstype):
        opts.flags &= ~k.MS_RDONLY
        _mount_entry(root_fd, m, ctx, opts, fstype, what)
        later.hold(root_fd, m.destination, opts.flags | k.MS_RDONLY, what)
    else:
        _mount_entry(root_fd, m, ctx, opts, fstype, what)


def _mount_entry(root_fd, m, ctx, opts, fstype, what):
    if fstype == "cgroup" and not opts.is_bind:
        from pyrunc.linux import cgroupfs
        try:
            return cgroupfs.mount_cgroup(root_fd, m, opts, ctx)
        except KernelError as e:
            raise KernelError(e.errno, f"{what}: {e.what}") from None
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
        _mount_at(root_fd, m, opts, fstype, source, is_dir, what)
    finally:
        if held is not None:
            os.close(held)
    _after_mount(root_fd, m.destination, opts, what)


def _mount_at(root_fd, m, opts, fstype, source, is_dir, what):
    fd = _mountpoint(root_fd, m.destination, is_dir, fstype, what)
    try:
        if opts.is_bind:
            mount_fd(source, fd, None, opts.flags & (k.MS_BIND | k.MS_REC), None, what)
        else:
            _mount_new(source, fd, fstype, opts, what)
            if opts.copy_up and fstype == "tmpfs":
                _copy_up(fd, root_fd, m.destination, what)
    finally:
        os.close(fd)


def _copy_up(covered_fd, root_fd, dest, what):
    """tmpcopyup: what the image has under `dest`, copied into the tmpfs just mounted
    there.  `covered_fd` still names the directory under the mount.  Nothing is followed:
    every name is taken relative to its parent's fd, a symlink is copied as a symlink."""
    src = os.open(paths.fd_path(covered_fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    dst = paths.open_in_root(root_fd, dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _copy_tree(src, dst)
    except OSError as e:
        raise KernelError(e.errno or errno.EIO, f"{what}: tmpcopyup") from None
    finally:
        os.close(src)
        os.close(dst)


def _copy_tree(src, dst):
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


def _copy_file(src, dst, name, size):
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


def _mountpoint(root_fd, dest, is_dir, fstype, what):
    try:
        if fstype in ("proc", "sysfs"):
            return _real_directory(root_fd, dest)
        return paths.ensure_mountpoint(root_fd, dest, is_dir)
    except KernelError as e:
        raise KernelError(e.errno, f"{what}: mount point") from None


def _real_directory(root_fd, dest):
    """A symlinked /proc or /sys would put the real one elsewhere and leave the image's
    fake in its place (CVE-2019-19921): refuse any symlink on the way."""
    try:
        return paths.open_in_root(root_fd, dest, os.O_PATH | os.O_DIRECTORY, no_symlinks=True)
    except KernelError as e:
        if e.errno != errno.ENOENT:
            raise
    os.close(paths.mkdir_all(root_fd, dest))
    return paths.open_in_root(root_fd, dest, os.O_PATH | os.O_DIRECTORY, no_symlinks=True)


def _mount_new(source, fd, fstype, opts, what):
    try:
        mount_fd(source, fd, fstype, opts.flags, opts.data, what)
    except KernelError as e:
        # sysfs cannot be mounted without a network namespace of our own: bind the host's.
        if fstype != "sysfs" or e.errno != errno.EPERM:
            raise
        mount_fd("/sys", fd, None, k.MS_BIND | k.MS_REC, None, what)
        opts.flags |= k.MS_BIND


def _after_mount(root_fd, dest, opts, what):
    """Flags a bind can only get by remount, propagation, and recursive attributes."""
    needs_remount = opts.is_bind and opts.flags & ~(k.MS_BIND | k.MS_REC | k.MS_REMOUNT)
    if not (needs_remount or opts.propagation or opts.attr_set or opts.attr_clr):
        return
    # Resolve again: the fd we mounted on names the covered directory, not the new mount.
    fd = paths.open_in_root(root_fd, dest)
    try:
        target = paths.fd_path(fd)
        if needs_remount:
            _remount_bind(target, opts.flags, what)
        for flag in opts.propagation:
            try:
                k.mount(None, target, None, flag, None)
            except KernelError as e:
                raise KernelError(e.errno, f"{what}: set propagation") from None
        if opts.attr_set or opts.attr_clr:
            try:
                k.mount_setattr(fd, "", k.AT_EMPTY_PATH | k.AT_RECURSIVE, opts.attr_set, opts.attr_clr)
            except KernelError as e:
                raise KernelError(e.errno, f"{what}: set recursive attributes") from None
    finally:
        os.close(fd)


def pivot_root(root):
    """pivot_root(".", ".") then detach the old root, which is stacked on top of the new one."""
    old = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    new = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        k.pivot_root(".", ".")
        os.fchdir(old)
        # Slave first so the detach does not propagate to the host's mounts.
        k.mount(None, ".", None, k.MS_SLAVE | k.MS_REC, None)
        k.umount(".", k.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def chroot_root(root):
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


def move_root(root):
    """--no-pivot: move the rootfs over / and chroot (for ramfs roots, where pivot_root fails)."""
    os.chdir(root)
    k.mount(root, "/", None, k.MS_MOVE, None)
    k.chroot(".")
    os.chdir("/")


def remount_root_readonly():
    """root.readonly: the rootfs mount becomes read-only and keeps its other flags."""
    keep = _statvfs_to_ms(os.statvfs("/").f_flag) & (k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC)
    _remount_bind("/", k.MS_RDONLY | keep, "make / read-only")


def _open_in_container(path, pinned=None):
    """After pivot_root the container's / is the root: resolve paths inside it, from the
    pinned mount (pin_kernel_mounts) that holds `path`, if one does."""
    path = paths.clean(path)
    for dest in sorted(pinned or (), key=len, reverse=True):
        if path == dest or path.startswith(dest + "/"):
            return paths.open_in_root(pinned[dest], path[len(dest):])
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return paths.open_in_root(root, path)
    finally:
        os.close(root)


SYSFS_MAGIC = 0x62656572
_KERNEL_FS = {"proc": PROC_SUPER_MAGIC, "sysfs": SYSFS_MAGIC}


def pin_kernel_mounts(mounts):
    """{destination: fd} of the config's proc and sysfs mounts, each checked to be that
    filesystem, for masking and read-only binds to resolve from.  After pivot_root a
    writer of the rootfs could swap the directory the mount sits on for a decoy with the
    same name (the mount stays on the renamed one); masks looked up by name would then
    cover the decoy and leave the real /proc/kcore readable."""
    last = {}
    for m in mounts:
        last[paths.clean(m.destination)] = m.type
    pinned = {}
    try:
        for dest, fstype in last.items():
            if fstype not in _KERNEL_FS:
                continue
            fd = _open_in_container(dest)
            pinned[dest] = fd
            if k.fstatfs_type(fd) != _KERNEL_FS[fstype]:
                raise KernelError(errno.EPERM, f"{dest} is no longer the {fstype} mounted there")
    except BaseException:
        unpin(pinned)
        raise
    return pinned


def unpin(pinned):
    for fd in pinned.values():
        os.close(fd)


def _dev_null(masking):
    """An fd of the container's /dev/null, checked to be the real device 1:3: an image or
    a mount that made it a link or a file would have us bind that instead (CVE-2025-31133)."""
    what = f"mask {masking} with /dev/null"
    try:
        fd = _open_in_container("/dev/null")
    except KernelError as e:
        raise KernelError(e.errno, what) from None
    if not _is_null(os.fstat(fd)):
        os.close(fd)
        raise KernelError(errno.EPERM, f"{what}: it is not the null device")
    return fd


def mask_paths(masked, pinned):
    null = None
    try:
        for path in masked:
            try:
                fd = _open_in_container(path, pinned)
            except KernelError as e:
                if e.errno == errno.ENOENT:
                    continue
                raise KernelError(e.errno, f"mask {path}") from None
            try:
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    _mount_on(fd, "tmpfs", "tmpfs", k.MS_RDONLY, path)
                else:
                    if null is None:
                        null = _dev_null(path)
                    _mount_on(fd, paths.fd_path(null), None, k.MS_BIND, path)
                    _check_is_null(path, pinned)
            finally:
                os.close(fd)
    finally:
        if null is not None:
            os.close(null)


def _is_null(st):
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


def _check_is_null(path, pinned):
    """The bind's source went through the container's /proc: see that the null device is
    what now shows at `path`."""
    fd = _open_in_container(path, pinned)
    try:
        if not _is_null(os.fstat(fd)):
            raise KernelError(errno.EPERM, f"mask {path} with /dev/null: the result is not the null device")
    finally:
        os.close(fd)


def _mount_on(fd, source, fstype, flags, path):
    try:
        k.mount(source, paths.fd_path(fd), fstype, flags, None)
    except KernelError as e:
        raise KernelError(e.errno, f"mask {path}") from None


def readonly_paths(readonly, pinned):
    for path in readonly:
        try:
            fd = _open_in_container(path, pinned)
        except KernelError as e:
            if e.errno == errno.ENOENT:
                continue
            raise KernelError(e.errno, f"make {path} read-only") from None
        try:
            target = paths.fd_path(fd)
            # Keep the nosuid/nodev/noexec it already has, add none: a read-only /usr must
            # still run its programs.
            keep = _statvfs_to_ms(os.fstatvfs(fd).f_flag) & (k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC)
            k.mount(target, target, None, k.MS_BIND | k.MS_REC, None)
        except KernelError as e:
            raise KernelError(e.errno, f"make {path} read-only") from None
        finally:
            os.close(fd)
        fd = _open_in_container(path, pinned)  # again: the bind now covers what fd named
        try:
            _remount_bind(paths.fd_path(fd), k.MS_RDONLY | keep, f"make {path} read-only")
        finally:
            os.close(fd)


def check_procfs(fd, what):
    """Refuse to write to a file that is not on a real procfs (CVE-2019-16884 and kin)."""
    if k.fstatfs_type(fd) != PROC_SUPER_MAGIC:
        raise KernelError(errno.EPERM, f"{what}: not on procfs")


def write_procfs(path, data, what):
    """Write to a procfs file of the container, checked to be on procfs first: a mount
    over /proc, or an image's symlink, must not take the write to a file of its own."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, what) from None
    try:
        check_procfs(fd, what)
        os.write(fd, data.encode())
    except KernelError:
        raise
    except OSError as e:
        raise KernelError(e.errno, what) from None
    finally:
        os.close(fd)


def write_sysctls(sysctl):
    for key, value in sorted(sysctl.items()):
        write_procfs(sysctl_path(key), value, f"sysctl {key}={value}")


def sysctl_path(key):
    """sysctl(8)'s two spellings: net.ipv4.conf.eth0/1.forwarding, where "/" is a literal
    dot, and net/ipv4/conf/eth0.1/forwarding, where "." is."""
    slash, dot = key.find("/"), key.find(".")
    if slash != -1 and (dot == -1 or slash < dot):
        return "/proc/sys/" + key
    return "/proc/sys/" + key.translate(str.maketrans("./", "/."))
