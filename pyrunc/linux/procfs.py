"""Process identity from /proc: a pid plus its start time names one process for good.

A pid alone can be recycled after the container exits; the start time (field 22 of
/proc/<pid>/stat, in clock ticks since boot) cannot repeat for the same pid.
"""

import os


def read_whole(path):
    """A small file's bytes: os calls, not io's file objects, which cost more than the
    read itself (`list` reads two files per container)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _stat_fields(pid):
    data = read_whole(f"/proc/{pid}/stat")
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return data[data.rindex(b")") + 2:].split()


def start_time(pid):
    """The start time of a live process, or None if it does not exist or is a zombie."""
    try:
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_alive(pid, started):
    """True while `pid` is the very process that started at `started` (and not a zombie)."""
    if not pid or started is None:
        return False
    return start_time(pid) == started


def open_pidfd(pid, started):
    """A pidfd for the process only if it is still the one that started at `started`.

    Checking the start time after pidfd_open closes the race with pid reuse: the pidfd
    pins the process, so if the start time still matches the fd refers to the container.
    """
    from pyrunc.linux import kernel
    try:
        fd = kernel.pidfd_open(pid)
    except OSError:
        return None
    if start_time(pid) != started:
        os.close(fd)
        return None
    return fd


def pid_namespace(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def _all_pids():
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def pids_in_namespace_of(pid):
    """Every pid (host view) whose pid namespace is that of `pid`."""
    ns = pid_namespace(pid)
    return [p for p in _all_pids() if ns is not None and pid_namespace(p) == ns]


def parent_of(pid):
    try:
        return int(_stat_fields(pid)[1])
    except (OSError, ValueError, IndexError):
        return None


def descendants_of(pid):
    """`pid` and every process below it in the process tree."""
    children = {}
    for p in _all_pids():
        children.setdefault(parent_of(p), []).append(p)
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, ()))
    return found


def container_pids(pid):
    """The processes of the container whose init is `pid`: its whole pid namespace when
    it has its own; otherwise (sharing ours, where that would be every host process)
    the init's descendants."""
    ns = pid_namespace(pid)
    if ns is None:
        return []
    if ns == pid_namespace(os.getpid()):
        return descendants_of(pid)
    return pids_in_namespace_of(pid)
