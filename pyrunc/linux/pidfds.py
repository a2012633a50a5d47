"""`wait_exit`: wait on a pidfd until a process that need not be our child has exited
(delete -f, start's and create's undoing).  The pidfd calls themselves are
procfs.Pidfds (re-exported here), which `kill` reaches without this module.
Importing kernel.py (ctypes, libc, os) would cost `kill` about a third of its time
(docs/performance.md)."""

import posix  # not os: `delete` does without it

from pyrunc.linux.procfs import Pidfds  # noqa: F401 -- re-exported

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


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
