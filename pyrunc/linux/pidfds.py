"""The kernel's pidfd calls without ctypes: posix.pidfd_open and _signal.pidfd_send_signal
(Python 3.9+).  `Pidfds` is the part of the kernel seam that `kill` and `delete` reach;
kernel.Kernel inherits it, so the step trace and the test doubles see the same methods.
Importing kernel.py (ctypes, libc, os) would cost `kill` about a third of its time
(docs/performance.md)."""

import _signal  # signal.py would import enum
import posix  # not os: `kill` does without it

from pyrunc.errors import KernelError


class Pidfds:
    """pidfd_open(2) and pidfd_send_signal(2); each raises KernelError naming its verb."""

    def pidfd_open(self, pid: int) -> int:
        try:
            fd: int = posix.pidfd_open(pid)
        except OSError as e:
            raise KernelError(e.errno, f"pidfd_open {pid}") from None
        return fd

    def pidfd_send_signal(self, pidfd: int, sig: int) -> None:
        try:
            _signal.pidfd_send_signal(pidfd, sig)
        except OSError as e:
            raise KernelError(e.errno, f"signal {sig}") from None
