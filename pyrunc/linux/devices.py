"""Device nodes in the container's /dev: the spec's default devices and `linux.devices`.

Nodes are made with mknod inside the rootfs, through an fd of their parent directory;
inside a user namespace mknod is not allowed, so the host's node is bind-mounted instead.
"""

import errno
import os
import stat

from pyrunc.errors import KernelError
from pyrunc.linux import kernel, paths

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from pyrunc.config.model import Device, Mount
    from pyrunc.linux.kernel import Kernel

# runtime-spec config-linux.md, "Default Devices": path, type, major, minor.
DEFAULT_DEVICES = (
    ("/dev/null", "c", 1, 3),
    ("/dev/zero", "c", 1, 5),
    ("/dev/full", "c", 1, 7),
    ("/dev/random", "c", 1, 8),
    ("/dev/urandom", "c", 1, 9),
    ("/dev/tty", "c", 5, 0),
)

DEFAULT_LINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)

_TYPE_BITS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _split(path: str) -> tuple[str, str]:
    parent, name = os.path.split(path.rstrip("/"))
    return parent or "/", name


def create_device(
    k: "Kernel",
    root_fd: int,
    path: str,
    dtype: str,
    major: int,
    minor: int,
    mode: int = 0o666,
    uid: int | None = None,
    gid: int | None = None,
    bind: bool = False,
    parents: "dict[str, int] | None" = None,
) -> None:
    """The node `path` in the rootfs.  `parents`: the directories already resolved, by
    path, each an fd the caller closes; the one resolved here joins them."""
    parent, name = _split(paths.clean(path))
    dir_fd = parents.get(parent) if parents is not None else None
    if dir_fd is None:
        dfd = paths.mkdir_all(k, root_fd, parent)
        try:
            dir_fd = os.open(paths.fd_path(dfd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        finally:
            os.close(dfd)
        if parents is not None:
            parents[parent] = dir_fd
    try:
        if bind:
            _bind_host_node(k, root_fd, dir_fd, name, path)
        else:
            _make_node(k, dir_fd, name, path, dtype, major, minor, mode, uid, gid)
    except KernelError:
        raise
    except OSError as e:
        raise KernelError(e.errno, f"create device {path}") from None
    finally:
        if parents is None:
            os.close(dir_fd)


def _make_node(
    k: "Kernel",
    dir_fd: int,
    name: str,
    path: str,
    dtype: str,
    major: int,
    minor: int,
    mode: int,
    uid: int | None,
    gid: int | None,
) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)  # the image may ship its own node or a trap link
    except FileNotFoundError:
        pass
    k.mknod(name, (mode & 0o7777) | _TYPE_BITS[dtype], os.makedev(major, minor), dir_fd=dir_fd, what=path)
    # mknod applies the umask: set the mode the config asked for exactly.
    os.chmod(name, mode & 0o7777, dir_fd=dir_fd, follow_symlinks=False)
    if uid is not None or gid is not None:
        os.chown(
            name, uid if uid is not None else -1, gid if gid is not None else -1, dir_fd=dir_fd, follow_symlinks=False
        )


def _bind_host_node(k: "Kernel", root_fd: int, dir_fd: int, name: str, path: str) -> None:
    """In a user namespace mknod is refused: bind the host's node over an empty file."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise KernelError(errno.EISDIR, f"create device {path}")
    if st is not None and not stat.S_ISREG(st.st_mode):
        # Never open what the image put there: a fifo would block, a device would be opened.
        os.unlink(name, dir_fd=dir_fd)
    try:
        fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
        os.close(fd)
    except OSError as e:
        raise KernelError(e.errno, f"create bind target for device {path}") from None
    target = paths.open_in_root(k, root_fd, path)
    try:
        k.mount(path, paths.fd_path(target), None, kernel.MS_BIND, None)
    except KernelError as e:
        why = "no mknod in a user namespace: the host's node is bound"
        raise KernelError(e.errno, f"bind host device {path} ({why})") from None
    finally:
        os.close(target)


def create_default_devices(k: "Kernel", root_fd: int, devices: "Iterable[Device]", in_userns: bool) -> None:
    parents: dict[str, int] = {}  # each directory resolved once: /dev for the defaults and most others
    try:
        for path, dtype, major, minor in DEFAULT_DEVICES:
            create_device(k, root_fd, path, dtype, major, minor, 0o666, 0, 0, bind=in_userns, parents=parents)
        for d in devices:
            mode = d.file_mode if d.file_mode is not None else 0o666
            bind = in_userns and d.type != "p"
            create_device(k, root_fd, d.path, d.type, d.major, d.minor, mode, d.uid, d.gid, bind, parents)
    finally:
        for fd in parents.values():
            os.close(fd)


def create_links(k: "Kernel", root_fd: int) -> None:
    dfd = paths.mkdir_all(k, root_fd, "/dev")
    try:
        dir_fd = os.open(paths.fd_path(dfd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    finally:
        os.close(dfd)
    try:
        paths.symlink_all(dir_fd, [(t, os.path.basename(link)) for t, link in DEFAULT_LINKS], "/dev")
    finally:
        os.close(dir_fd)


def paths_made(devices: "Iterable[Device]") -> list[str]:
    """Every path create_default_devices and create_links make, with these `linux.devices`."""
    return [path for path, *_ in DEFAULT_DEVICES] + [d.path for d in devices] + [link for _, link in DEFAULT_LINKS]


def dev_is_bind_mounted(mounts: "Iterable[Mount]") -> bool:
    """A bind-mounted /dev comes complete: runc then creates no device nodes or links."""
    for m in mounts:
        if paths.clean(m.destination) == "/dev" and (m.type == "bind" or "bind" in m.options or "rbind" in m.options):
            return True
    return False
