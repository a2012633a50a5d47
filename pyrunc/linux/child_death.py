"""When a container process dies before it reports: where it was, and how it died.

A process that fails reports an `error` naming its step; one that dies (a signal, the
OOM killer, an exit in code that cannot report) only closes its channel.  So that the
runtime can still say where it was, the child writes the name of each step it begins
into a pipe (`StepNotes`), which the parent reads at each request and when the channel
closes; as subreaper for the length of the spawn (`Subreaper`), the parent then reaps
the process, whatever its depth (`wait_child`, the one reap loop of the runtime's
children), and tells the signal or the exit status (`describe`).
"""

import os

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.linux.cgroups import Manager
    from pyrunc.linux.kernel import Kernel
    from pyrunc.linux.protocol import Channel

# A pipe holds 64 KiB by default; steps are a few dozen bytes: room for some thousands
# between two reads, and more once the parent asks for a megabyte.
_F_SETPIPE_SZ = 1031
_PIPE_SIZE = 1 << 20


class Died(Exception):
    """The channel closed before the process was ready: it died without reporting."""


def answer(chan: "Channel", kind: str, **fields: "Any") -> None:
    """Answer the child's request; a child gone meanwhile raises Died."""
    try:
        chan.send(kind, **fields)
    except (BrokenPipeError, ConnectionResetError):
        raise Died() from None


class StepNotes:
    """The pipe of step names.  Made before the fork; the child keeps `fd` (write end),
    the parent `read_fd`.  Both ends are close-on-exec and non-blocking: a full pipe
    drops a note, never blocks the child."""

    def __init__(self) -> None:
        self.read_fd: int | None
        self.fd: int | None
        self.read_fd, self.fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            import fcntl

            fcntl.fcntl(self.fd, _F_SETPIPE_SZ, _PIPE_SIZE)
        except OSError:  # over /proc/sys/fs/pipe-max-size: the default size will do
            pass
        self.last: str | None = None  # the last step read

    # -- the child --------------------------------------------------------------------

    def child(self) -> int:
        """In the child: drop the read end; returns the fd to note steps in."""
        assert self.read_fd is not None and self.fd is not None
        os.close(self.read_fd)
        self.read_fd = None
        return self.fd

    # -- the parent -------------------------------------------------------------------

    def parent(self) -> None:
        """In the parent: drop the write end, so that reads see the child's notes only."""
        assert self.fd is not None
        os.close(self.fd)
        self.fd = None

    def saw(self, step: str) -> None:
        """The child is at `step`, as one of its requests tells: later than any note
        read so far (each note is written before the request that follows it)."""
        self.read()
        self.last = step

    def read(self) -> str | None:
        """Every note written since the last read; returns the last step known."""
        data = b""
        while self.read_fd is not None:
            try:
                chunk = os.read(self.read_fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        notes = [n for n in data.split(b"\0") if n]
        if notes:
            self.last = notes[-1].decode("utf-8", "replace")
        return self.last

    def close(self) -> None:
        for fd in (self.read_fd, self.fd):
            if fd is not None:
                os.close(fd)
        self.read_fd = self.fd = None


class _NoNotes:
    def saw(self, step: str) -> None:
        pass

    def read(self) -> str | None:
        return None


NO_NOTES = _NoNotes()


def note(fd: int, name: str) -> None:
    """In the child: `name` is the step it begins now (best effort, one write)."""
    try:
        os.write(fd, name.replace("\0", "\\0").encode("utf-8", "backslashreplace") + b"\0")
    except OSError:
        pass


class Subreaper:
    """The parent as subreaper while it spawns: a process orphaned by the exit of its
    first parent (the init forked in a new pid namespace) becomes its child, so that it
    can be reaped and its status told.  Restored afterwards when it was not set."""

    def __init__(self, k: "Kernel") -> None:
        from pyrunc.linux.kernel import PR_SET_CHILD_SUBREAPER

        self.kernel = k
        self.was = k.is_child_subreaper()
        if not self.was:
            k.prctl(PR_SET_CHILD_SUBREAPER, 1)

    def restore(self) -> None:
        from pyrunc.linux.kernel import PR_SET_CHILD_SUBREAPER

        if not self.was:
            self.kernel.prctl(PR_SET_CHILD_SUBREAPER, 0)


def wait_child(
    pid: int, idle: "Callable[[], object] | None" = None, interval: float = 0.25, timeout: float | None = None
) -> int | None:
    """Reap `pid`, our child (or orphan, as subreaper): its wait status once it has exited;
    None when it is not ours, or has not exited in `timeout` seconds.  `idle`, when
    given, is called each `interval` seconds it has not exited and raises to give up; the
    child is then killed and left to the reaper (a process stopped by the v1 freezer dies
    only once thawed)."""
    import time

    delay = 0.0002
    start = checked = time.monotonic()
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if got == pid:
            return status
        now = time.monotonic()
        if timeout is not None and now - start > timeout:
            return None
        if idle is not None and now - checked >= interval:
            try:
                idle()
            except BaseException:
                kill(pid)
                raise
            checked = time.monotonic()
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def kill(pid: int) -> None:
    """SIGKILL `pid`, gone or not."""
    import _signal as signal  # signal.py would import enum

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def signal_name(num: int) -> str:
    """SIGKILL for 9; the number when it has no name."""
    from pyrunc.linux import signals

    names = [n for n, v in signals.names().items() if v == num]
    # An alias (SIGIOT, SIGPOLL, SIGCLD) only when the usual name is missing.
    usual = [n for n in names if n not in ("SIGIOT", "SIGPOLL", "SIGCLD")]
    return (usual or names or [f"signal {num}"])[0]


def how_it_died(status: int | None) -> str | None:
    """`was killed by signal SIGKILL` or `exited with status 1`; None for no status."""
    if status is None:
        return None
    if os.WIFSIGNALED(status):
        return f"was killed by signal {signal_name(os.WTERMSIG(status))}"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    return None


def describe(
    proc: str,
    step: str | None,
    status: int | None,
    oom: "dict[str, Any] | None" = None,
    needs: str = "the container needs to start",
) -> str:
    """One line: `container init was killed by signal SIGKILL in step "join cgroup"`.
    `oom`: the memory cgroup's figures when its OOM killer struck ({limit, usage, max}),
    which then says why."""
    died = how_it_died(status) or "exited unexpectedly"
    if oom is not None and (status is None or (os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9)):
        died = "was killed by the out-of-memory killer"
    where = f' in step "{step}"' if step else ""
    line = f"{proc} {died}{where} before it was ready"
    if oom is not None:
        line += ": " + memory_hint(oom, needs)
    return line


def memory_hint(oom: "dict[str, Any]", needs: str = "the container needs to start") -> str:
    """Why the memory cgroup killed: the limit against what was used."""
    used = max(oom.get("usage") or 0, oom.get("max") or 0)
    return f"linux.resources.memory.limit is {oom['limit']} bytes, below what {needs}" + (
        f" (its memory usage reached {used} bytes)" if used else ""
    )


def oom_figures(mgr: "Manager | None", oom_before: int = 0) -> "dict[str, Any] | None":
    """The memory cgroup's {limit, usage, max} when its OOM killer struck since
    `oom_before` kills; None when it did not (or no memory controller can tell)."""
    if mgr is None:
        return None
    try:
        if mgr.oom_kills() <= oom_before:
            return None
        usage = mgr.stats().get("memory", {}).get("usage", {})
    except Exception:  # a cgroup that cannot be read tells nothing: no hint
        return None
    if not usage.get("limit"):
        return None
    return {"limit": usage["limit"], "usage": usage.get("usage"), "max": usage.get("max")}
