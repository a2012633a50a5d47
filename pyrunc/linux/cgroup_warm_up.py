"""The launcher's cgroup warm-up helper, seen from pyrunc: how long it may run.

For create, run and exec the C launcher (pyrunc/launcher/launcher.c) forks a helper
before it starts the interpreter: a no-op write to its own cgroup.procs every 4 ms, so
the kernel's wait before a cgroup.procs write (an RCU grace period, 10-16 ms) is paid
while the interpreter starts, and the moves pyrunc makes later are quick.  The helper is
our child, its pid in PYRUNC_CGROUP_WARM_UP; pyrunc ends it once its last move is made
(`end`, a signal), reaps it once the process it started is ready (`stop`), and at the
latest when the command ends (cli.launch), so that nothing of it is left behind.  It
ends by itself after a second, or when we die.
"""

import os

ENV = "PYRUNC_CGROUP_WARM_UP"

_pid: int | None = None
_taken = False
_killed = False  # sent SIGKILL (end), not yet reaped


def helper() -> int | None:
    """The helper's pid while it runs, else None.  Taken out of the environment on first
    use (no hook or process of ours inherits it); trusted only when it names a child of
    ours, which cannot be reused by another process before we reap it."""
    global _pid, _taken
    if not _taken:
        _taken = True
        value = os.environ.pop(ENV, "")
        if value.isdigit() and _parent_of(int(value)) == os.getpid():
            _pid = int(value)
    return _pid


def running() -> bool:
    """Whether the helper still runs, keeping the kernel's fast path open: the moves are
    quick.  One that has ended (it found no cgroup.procs to write, or its time is up)
    is reaped."""
    pid = helper()
    if pid is None or _killed:
        return False
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == 0:
            return True
    except ChildProcessError:
        pass
    _forget(pid, "ended by itself")
    return False


def end() -> None:
    """Tell the helper to end (SIGKILL), without waiting: after the last move, on the
    critical path.  `stop` reaps it later."""
    global _killed
    pid = helper()
    if pid is None or _killed:
        return
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == 0:  # unreaped: its pid is still its own
            import _signal

            os.kill(pid, _signal.SIGKILL)
            _killed = True
            return
    except ChildProcessError:  # reaped by a wait of ours (run's, as subreaper) meanwhile
        pass
    _forget(pid, "ended by itself")


def stop() -> None:
    """End the helper and reap it; a no-op when there is none.  A helper blocked in its
    write dies once the write returns (the kernel's wait, which it was paying anyway)."""
    end()
    pid = _pid
    if pid is None:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    _forget(pid, "stopped")


def _forget(pid: int, how: str) -> None:
    global _pid, _killed
    _pid, _killed = None, False
    from pyrunc import log

    log.debug(f"cgroup warm-up helper {pid} {how}")


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # pid (comm) state ppid ...: comm may hold spaces and parentheses, the last ")" ends it.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None
