"""Paths inside the container's rootfs, resolved so that they can never leave it.

Every lookup uses openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from an fd of the
rootfs: a symlink in the image, absolute or full of `..`, is resolved as if the rootfs
were `/`.  Callers then act on the resulting O_PATH fd through /proc/self/fd/N and never
on a re-resolved string, so a symlink swapped after the lookup cannot redirect them
(CVE-2021-30465).

Creating a missing mount point walks the path one component at a time the same way:
a dangling symlink in the image is followed inside the rootfs, and what is missing is
created there, never on the host.
"""

import errno
import os
import posixpath
import stat

from pyrunc.errors import KernelError
from pyrunc.linux import kernel

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from pyrunc.linux.kernel import Kernel

    Maker = Callable[[int, str], None]  # makes `name` in the directory of an fd

IN_ROOT = kernel.RESOLVE_IN_ROOT | kernel.RESOLVE_NO_MAGICLINKS
# The kernel's own limit on symlinks followed in one lookup.
MAX_SYMLINKS = 40


_proc = "/proc"  # where fd_path finds this process's fds: "." while in a pinned procfs


def fd_path(fd: int) -> str:
    """A path naming `fd`, for calls that take no fd (mount(2))."""
    return f"{_proc}/self/fd/{fd}"


class procfs_pinned:  # a class, not contextlib's decorator: contextlib costs ms to import
    """Make fd_path resolve from an fd of procfs (the current directory) rather than by
    the name /proc, which a writer of the rootfs could swap after pivot_root.  None (no
    proc mount to pin): by name, as before."""

    def __init__(self, proc_fd: int | None) -> None:
        self.proc_fd = proc_fd

    def __enter__(self) -> None:
        global _proc
        if self.proc_fd is not None:
            os.fchdir(self.proc_fd)
            _proc = "."

    def __exit__(self, *exc: object) -> None:
        global _proc
        if self.proc_fd is not None:
            _proc = "/proc"
            os.chdir("/")


def clean(path: str) -> str:
    """The config's path made absolute and lexically clean, as runc reads destinations."""
    return posixpath.normpath("/" + path.lstrip("/"))


def _relative(path: str) -> str:
    return clean(path).lstrip("/") or "."


def open_in_root(k: "Kernel", root_fd: int, path: str, flags: int = os.O_PATH, no_symlinks: bool = False) -> int:
    """An fd for `path` resolved inside root_fd, or KernelError (ENOENT when missing).

    With no_symlinks, any symlink on the way fails the lookup with ELOOP.
    """
    resolve = IN_ROOT | (kernel.RESOLVE_NO_SYMLINKS if no_symlinks else 0)
    fd: int = k.openat2(root_fd, _relative(path), flags, resolve)
    return fd


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def _open_resolved(k: "Kernel", root_fd: int, parts: list[str], flags: int = os.O_PATH) -> int:
    fd: int = k.openat2(root_fd, "/".join(parts) or ".", flags, IN_ROOT)
    return fd


def _walk_creating(k: "Kernel", root_fd: int, path: str, make_last: "Maker", no_magiclinks: bool = False) -> int:
    """Resolve `path` inside the root component by component, creating what is missing.

    Symlinks are followed as the kernel would with the rootfs as `/`; missing directories
    on the way are created, and a missing last component with make_last(dir_fd, name).
    With no_magiclinks, a /proc magic link on the way (or a symlink through one) fails
    with ELOOP: its text would otherwise be followed as a path in the root.
    Returns an O_PATH fd of the result.
    """
    todo = _split(clean(path))
    done: list[str] = []  # resolved components, each a real directory (no symlinks)
    budget = MAX_SYMLINKS
    while todo:
        name = todo.pop(0)
        if name == "..":
            if done:  # `done` holds no symlinks, so `..` is its lexical parent
                done.pop()
            continue
        last = not todo
        try:
            fd = _open_resolved(k, root_fd, done + [name], os.O_PATH | os.O_NOFOLLOW)
        except KernelError as e:
            if e.errno != errno.ENOENT:
                raise
            budget = _spend(budget, path)
            _create(k, root_fd, done, name, (make_last if last else _make_dir), path)
            todo.insert(0, name)  # look again at what is there now
            continue
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISLNK(mode):
                if no_magiclinks:
                    _refuse_magic_link(k, root_fd, done + [name], path)
                budget = _spend(budget, path)
                target = os.readlink("", dir_fd=fd)
                if target.startswith("/"):
                    done = []
                todo = _split(target) + todo
            elif not last and not stat.S_ISDIR(mode):
                raise KernelError(errno.ENOTDIR, f"resolve {path}")
            else:
                done.append(name)
        finally:
            os.close(fd)
    return _open_resolved(k, root_fd, done)


def _refuse_magic_link(k: "Kernel", root_fd: int, parts: list[str], path: str) -> None:
    """ELOOP when the symlink at `parts` is a magic link or leads through one; a plain
    symlink, dangling or not, passes."""
    try:
        os.close(k.openat2(root_fd, "/".join(parts), os.O_PATH, IN_ROOT))
    except KernelError as e:
        if e.errno == errno.ELOOP:
            raise KernelError(errno.ELOOP, f"resolve {path}") from None


def _spend(budget: int, path: str) -> int:
    if budget <= 0:
        raise KernelError(errno.ELOOP, f"resolve {path}")
    return budget - 1


def _create(k: "Kernel", root_fd: int, parent_parts: list[str], name: str, make: "Maker", path: str) -> None:
    parent = _open_resolved(k, root_fd, parent_parts, os.O_PATH | os.O_DIRECTORY)
    try:
        make(parent, name)
    except FileExistsError:
        pass  # created meanwhile: the caller looks again
    except OSError as e:
        raise KernelError(e.errno, f"create {path}") from None
    finally:
        os.close(parent)


def _make_dir(dir_fd: int, name: str, mode: int = 0o755) -> None:
    os.mkdir(name, mode, dir_fd=dir_fd)


def _file_maker(mode: int) -> "Maker":
    def make(dir_fd: int, name: str) -> None:
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=dir_fd)
        os.close(fd)

    return make


def mkdir_all(k: "Kernel", root_fd: int, path: str, mode: int = 0o755, no_magiclinks: bool = False) -> int:
    """Create each missing directory of `path` inside the root; return an O_PATH fd to it."""
    fd = _walk_creating(k, root_fd, path, lambda d, n: _make_dir(d, n, mode), no_magiclinks)
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise KernelError(errno.ENOTDIR, f"mkdir {path}")
    return fd


def mkdir_in(k: "Kernel", dir_fd: int, name: str, mode: int = 0o755) -> int:
    """Make the directory `name` (one component) in dir_fd unless it is there; an O_PATH
    fd to it, never through a symlink.  For a directory the runtime itself just mounted
    (the tmpfs of the cgroup hierarchies): one lookup, not a walk from the root."""
    if not name or "/" in name or name in (".", ".."):
        raise KernelError(errno.EINVAL, f"mkdir {name!r}: not one path component")
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
    except FileExistsError:
        pass
    except OSError as e:
        raise KernelError(e.errno or errno.EIO, f"mkdir {name}") from None
    flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    fd: int = k.openat2(dir_fd, name, flags, kernel.RESOLVE_BENEATH | kernel.RESOLVE_NO_SYMLINKS)
    return fd


def make_file(k: "Kernel", root_fd: int, path: str, mode: int = 0o644) -> int:
    """Ensure `path` exists (a new regular file when missing); return an O_PATH fd."""
    if not _split(clean(path)):
        raise KernelError(errno.EISDIR, f"create file {path}")
    return _walk_creating(k, root_fd, path, _file_maker(mode))


def ensure_mountpoint(k: "Kernel", root_fd: int, path: str, is_dir: bool) -> int:
    """An O_PATH fd to the mount point, created as a directory or file as the source needs."""
    fd = mkdir_all(k, root_fd, path) if is_dir else make_file(k, root_fd, path)
    if not is_dir and stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise KernelError(errno.EISDIR, f"mount point {path} is a directory")
    return fd


def symlink_all(dir_fd: int, links: "Iterable[tuple[str, str]]", where: str) -> None:
    """Create (target, name) symlinks in a directory; an entry already there is kept."""
    for target, name in links:
        try:
            os.symlink(target, name, dir_fd=dir_fd)
        except FileExistsError:
            pass
        except OSError as e:
            raise KernelError(e.errno, f"symlink {where}/{name} -> {target}") from None
