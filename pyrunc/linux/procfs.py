"""Process identity from /proc: a pid plus its start time names one process for good.

A pid alone can be recycled after the container exits; the start time (field 22 of
/proc/<pid>/stat, in clock ticks since boot) cannot repeat for the same pid.
"""

import os


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
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
    return bool(pid) and start_time(pid) == started


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


def pids_in_namespace_of(pid):
    """Every pid (host view) whose pid namespace is that of `pid`."""
    ns = pid_namespace(pid)
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and pid_namespace(int(name)) == ns:
            found.append(int(name))
    return found
