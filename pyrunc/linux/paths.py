"""Paths inside the container's rootfs, resolved so that they can never leave it.

Every lookup uses openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) from an fd of the
rootfs: a symlink in the image, absolute or full of `..`, is resolved as if the rootfs
were `/`.  Callers then act on the resulting O_PATH fd through /proc/self/fd/N and never
on a re-resolved string, so a symlink swapped after the lookup cannot redirect them
(CVE-2021-30465).
"""

import errno
import os
import stat

from pyrunc.errors import KernelError
from pyrunc.linux import kernel

IN_ROOT = kernel.RESOLVE_IN_ROOT | kernel.RESOLVE_NO_MAGICLINKS


def fd_path(fd):
    return f"/proc/self/fd/{fd}"


def _components(path):
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise KernelError(errno.EINVAL, f"path {path!r} has a '..' component")
    return parts


def open_in_root(root_fd, path, flags=os.O_PATH):
    """An fd for `path` resolved inside root_fd, or KernelError (ENOENT when missing)."""
    rel = "/".join(_components(path)) or "."
    return kernel.openat2(root_fd, rel, flags, IN_ROOT)


def mkdir_all(root_fd, path, mode=0o755):
    """Create each missing directory of `path` inside the root; return an O_PATH fd to it."""
    parts = _components(path)
    fd = os.dup(root_fd)
    try:
        for i, name in enumerate(parts):
            sub = "/".join(parts[: i + 1])
            try:
                nfd = kernel.openat2(root_fd, sub, os.O_PATH | os.O_DIRECTORY, IN_ROOT)
            except KernelError as e:
                if e.errno != errno.ENOENT:
                    raise
                try:
                    # mkdir never follows a symlink in its last component: a dangling link fails here.
                    os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    pass
                except OSError as e2:
                    raise KernelError(e2.errno, f"mkdir {path}") from None
                nfd = kernel.openat2(root_fd, sub, os.O_PATH | os.O_DIRECTORY, IN_ROOT)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def make_file(root_fd, path, mode=0o644):
    """Ensure a regular file (or any non-directory) exists at `path`; return an O_PATH fd."""
    parts = _components(path)
    if not parts:
        raise KernelError(errno.EISDIR, f"create file {path}")
    parent = mkdir_all(root_fd, "/".join(parts[:-1]))
    try:
        try:
            return open_in_root(root_fd, path)
        except KernelError as e:
            if e.errno != errno.ENOENT:
                raise
        try:
            fd = os.open(parts[-1], os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         mode, dir_fd=parent)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as e:
            raise KernelError(e.errno, f"create {path}") from None
        return open_in_root(root_fd, path)
    finally:
        os.close(parent)


def ensure_mountpoint(root_fd, path, is_dir):
    """An O_PATH fd to the mount point, created as a directory or file as the source needs."""
    try:
        fd = open_in_root(root_fd, path)
    except KernelError as e:
        if e.errno != errno.ENOENT:
            raise
        return mkdir_all(root_fd, path) if is_dir else make_file(root_fd, path)
    if is_dir and not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise KernelError(errno.ENOTDIR, f"mount point {path}")
    return fd
