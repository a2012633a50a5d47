"""The kernel's pidfd calls without ctypes: posix.pidfd_open and _signal.pidfd_send_signal
(Python 3.9+), and `wait_exit` over them.  `Pidfds` is the part of the kernel seam that
`kill` and `delete` reach; kernel.Kernel inherits it, so the step trace and the test
doubles see the same methods.
Importing kernel.py (ctypes, libc, os) would cost `kill` about a third of its time
(docs/performance.md)."""

import _signal  # signal.py would import enum
import posix  # not os: `kill` does without it

from pyrunc.errors import KernelError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


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


def wait_exit(kernel: "Pidfds", pid: int, timeout: float = 10.0, frozen: "Callable[[], bool] | None" = None) -> bool:
    """Wait until a process that need not be our child has exited; False when it has not
    in `timeout` seconds, or as soon as `frozen()` says the freezer stops it."""
    import select  # a small C module, only when waiting
    import time

    try:
        fd = kernel.pidfd_open(pid)
    except OSError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if poller.poll(max(0, int(min(left, 0.25 if frozen else left) * 1000))):
                return True
            if left <= 0 or (frozen is not None and frozen()):
                return False
    finally:
        posix.close(fd)
