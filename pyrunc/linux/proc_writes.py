"""Writes to the container's procfs files (sysctls, oom_score_adj, ...), each file
checked to be on a real procfs before anything is written to it; and write_proc, the
runtime's own writes to its child's files in its own /proc (id maps, setgroups, time
offsets).

Not procfs.py, which reads a process's identity (pid, start time, pidfd) from the host's
/proc: this module writes, and only to files that pass check_procfs.
"""

import errno
import os

from pyrunc.errors import KernelError
from pyrunc.linux.tables import sysctl_path

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.linux.kernel import Kernel

PROC_SUPER_MAGIC = 0x9FA0


def check_procfs(k: "Kernel", fd: int, what: str) -> None:
    """Refuse to write to a file that is not on a real procfs (CVE-2019-16884 and kin)."""
    if k.fstatfs_type(fd) != PROC_SUPER_MAGIC:
        raise KernelError(errno.EPERM, f"{what}: not on procfs")


def write_procfs(k: "Kernel", path: str, data: str, what: str) -> None:
    """Write to a procfs file of the container, checked to be on procfs first: a mount
    over /proc, or an image's symlink, must not take the write to a file of its own."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, what) from None
    try:
        check_procfs(k, fd, what)
        os.write(fd, data.encode())
    except KernelError:
        raise
    except OSError as e:
        raise KernelError(e.errno, what) from None
    finally:
        os.close(fd)


def write_sysctls(k: "Kernel", sysctl: dict[str, str]) -> None:
    for key, value in sorted(sysctl.items()):
        write_procfs(k, sysctl_path(key), value, f"sysctl {key}={value}")


def write_proc(path: str, text: str, what: str) -> None:
    """One write of text to a file of the runtime's own /proc (a child's id map, its
    setgroups, the time offsets), its errors a KernelError naming `what`."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, what) from None
    try:
        os.write(fd, text.encode())
    except OSError as e:
        raise KernelError(e.errno, what) from None
    finally:
        os.close(fd)
