"""The fds a container gets besides stdio: LISTEN_FDS and --preserve-fds, the caller's
fds 3 .. limit-1.

The runtime's own fds (the state directory and its lock, sockets, the trace file) must
never take a number in that range, or the container would inherit them: a host
directory fd is a way out of the rootfs (CVE-2024-21626).  So before the command opens
anything, every unused number in the range is taken by a close-on-exec placeholder,
which the container never sees (`init.prepare_fds` leaves it close-on-exec).
"""

import os

placeholders: frozenset[int] = frozenset()


def listen_fds(caller_pid: int) -> int:
    """systemd socket activation (sd_listen_fds(3)), honoured as runc does: when the
    caller's LISTEN_PID names the pyrunc process itself, its fds 3..3+LISTEN_FDS-1 go to
    the container ahead of --preserve-fds.  A LISTEN_FDS meant for another process (one
    inherited through the environment) passes nothing."""
    try:
        if int(os.environ.get("LISTEN_PID", "")) != caller_pid:
            return 0
        return max(int(os.environ.get("LISTEN_FDS", "")), 0)
    except ValueError:
        return 0


def reserve(limit: int) -> None:
    """Take every unused fd number below `limit` (from 3 up) with a placeholder; the
    trace file's fd, opened before the command knew the range, moves above it."""
    global placeholders
    if limit <= 3:
        return
    if limit > os.sysconf("SC_OPEN_MAX"):
        from pyrunc.errors import UsageError

        raise UsageError(
            f"cannot pass {limit - 3} fds to the container: the open file limit is {os.sysconf('SC_OPEN_MAX')}"
        )
    import sys

    trace = sys.modules.get("pyrunc.trace")
    if trace is not None:
        trace.move_fd_above(limit)
    taken = []
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    while fd < limit:  # each new fd takes the lowest free number
        taken.append(fd)
        fd = os.dup(fd)  # close-on-exec, as every fd Python makes
    os.close(fd)
    placeholders = frozenset(taken)
