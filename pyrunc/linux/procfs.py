"""Process identity from /proc: a pid plus its start time names one process for good.

A pid alone can be recycled after the container exits; the start time (field 22 of
/proc/<pid>/stat, in clock ticks since boot) cannot repeat for the same pid.
"""

import posix  # not os, whose import costs `state` a fifth of its time

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.linux.pidfds import Pidfds


def read_whole(path: str) -> bytes:
    """A small file's bytes: os calls, not io's file objects, which cost more than the
    read itself (`list` reads two files per container)."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        chunks: list[bytes] = []
        while True:
            chunk = posix.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        posix.close(fd)


def read_lines(path: str) -> list[str]:
    """A small kernel file's lines (mountinfo, /proc/self/cgroup), split at "\n" alone:
    a path in one may hold a carriage return or any other separator str.splitlines
    knows, and bytes that are not UTF-8 (kept as surrogates)."""
    return [line for line in read_whole(path).decode(errors="surrogateescape").split("\n") if line]


def _stat_fields(pid: int) -> list[bytes]:
    data = read_whole(f"/proc/{pid}/stat")
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return data[data.rindex(b")") + 2 :].split()


def start_time(pid: int) -> int | None:
    """The start time of a live process, or None if it does not exist or is a zombie."""
    try:
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_alive(pid: int | None, started: int | None) -> bool:
    """True while `pid` is the very process that started at `started` (and not a zombie).

    kill(pid, 0) first: ESRCH says no process has that pid, so it is not ours, for a
    fraction of a failed open of /proc/<pid>/stat (`list` asks this of every stopped
    container).  Only that answer is taken: a pid that is there (or EPERM, another
    user's) may be a recycled one, and its start time decides.  kill's pid is one of the
    caller's pid namespace: only for a process in the one /proc shows (the runtime's).
    """
    if not pid or pid < 0 or started is None:
        return False
    try:
        posix.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return is_alive_by_proc(pid, started)


def is_alive_by_proc(pid: int | None, started: int | None) -> bool:
    """is_alive through /proc alone, for a process whose own pid namespace is not the one
    /proc shows (exec's child, born in the container's, where kill(pid, 0) would name
    another process or none)."""
    if not pid or pid < 0 or started is None:
        return False
    return start_time(pid) == started


def open_pidfd(k: "Pidfds", pid: int, started: int | None) -> int | None:
    """A pidfd for the process only if it is still the one that started at `started`.

    Checking the start time after pidfd_open closes the race with pid reuse: the pidfd
    pins the process, so if the start time still matches the fd refers to the container.
    """
    try:
        fd: int = k.pidfd_open(pid)
    except OSError:
        return None
    if start_time(pid) != started:
        posix.close(fd)
        return None
    return fd


def pid_namespace(pid: int) -> int | None:
    try:
        return posix.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def _all_pids() -> list[int]:
    return [int(n) for n in posix.listdir("/proc") if n.isdigit()]


def pids_in_namespace_of(pid: int) -> list[int]:
    """Every pid (host view) whose pid namespace is that of `pid`."""
    ns = pid_namespace(pid)
    return [p for p in _all_pids() if ns is not None and pid_namespace(p) == ns]


def parent_of(pid: int) -> int | None:
    try:
        return int(_stat_fields(pid)[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants_of(pid: int) -> list[int]:
    """`pid` and every process below it in the process tree."""
    children: dict[int | None, list[int]] = {}
    for p in _all_pids():
        children.setdefault(parent_of(p), []).append(p)
    found: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, ()))
    return found


def container_pids(pid: int) -> list[int]:
    """The processes of the container whose init is `pid`: its whole pid namespace when
    it has its own; otherwise (sharing ours, where that would be every host process)
    the init's descendants."""
    ns = pid_namespace(pid)
    if ns is None:
        return []
    if ns == pid_namespace(posix.getpid()):
        return descendants_of(pid)
    return pids_in_namespace_of(pid)


def own_host_pid() -> int:
    """Our pid as the runtime's pid namespace sees it (hooks run there), from
    /proc/self/status's NSpid, whose first field is the outermost pid namespace's: a
    process born pid 1 of a new namespace still reads the host's /proc until it mounts
    its own."""
    try:
        status = read_whole("/proc/self/status")
    except OSError:
        return posix.getpid()
    for line in status.split(b"\n"):
        if line.startswith(b"NSpid:"):
            return int(line.split()[1])
    return posix.getpid()
