"""Signals to a container: `kill` (the init through a pidfd of the verified process, or,
with --all or once it is stopped, what is in the cgroup create made), and the container's
cgroup manager as its state names it.  Out of lifecycle.py so that `kill` imports
neither os nor the lifecycle's write side (docs/performance.md); `delete` signals
through here too."""

import posix  # not os, whose import costs a light command a tenth of its time

from pyrunc import log
from pyrunc import status as rules  # which verb in which status
from pyrunc.errors import StateError
from pyrunc.linux import procfs
from pyrunc.status import STOPPED, status_of

_ESRCH = 3  # errno.ESRCH (Linux): the errno module's table of names costs kill more than this use

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeGuard

    from pyrunc.linux import Seams
    from pyrunc.linux.cgroups import Manager
    from pyrunc.store import State, Store


def cgroup_manager(st: "State | None", seams: "Seams") -> "Manager | None":
    """The container's cgroup manager as create saved it, working through the command's
    `seams` (linux.Seams); None when it has none."""
    saved = st.cgroup if st is not None else None
    if not saved:
        return None
    from pyrunc.linux import cgroups

    mgr: Manager = cgroups.load_manager(saved, files=seams.cgroup_files)
    return mgr


def owns_cgroup(mgr: "Manager | None") -> "TypeGuard[Manager]":
    """Whether create made the container's cgroup: only then is everything in it ours."""
    return mgr is not None and mgr.made_any()


def kill(store: "Store", cid: str, sig: int, seams: "Seams", all_processes: bool = False) -> None:
    with store.open(cid) as cdir:
        st = cdir.read_state()
        status = status_of(st)
        rules.check("kill", cid, status, all_processes=all_processes)
        assert st is not None  # status_of(None) is creating, which check refuses
        if status == STOPPED:
            # runc 1.1 succeeds here, and engines send it while they clean up: what is
            # left in the cgroup (the init's children, without a pid namespace) is signalled.
            log.debug(f"kill {cid}: stopped; signal {sig} to what is left in its cgroup")
            with log.step("signal what is left of the container"):
                _signal_leftovers(st, sig, seams)
            return
        log.debug(f"kill {cid}: signal {sig} to {'every process' if all_processes else 'init'}")
        with log.step("signal the container"):
            signal_container(st, sig, seams, all_processes)


def signal_container(st: "State", sig: int, seams: "Seams", all_processes: bool = False) -> None:
    """Signal the init through a pidfd (never a recycled pid); with all_processes, first
    every other process of the container."""
    pid = st.pid
    fd = procfs.open_pidfd(seams.pidfds, pid, st.pid_start) if pid is not None else None
    if pid is None or fd is None:
        if all_processes:  # it stopped since its status was read: as kill --all of a stopped one
            _signal_leftovers(st, sig, seams)
            return
        raise StateError(f"container {st.id}: container not running")
    try:
        if all_processes:
            mgr = cgroup_manager(st, seams)
            pids = mgr.pids() if owns_cgroup(mgr) else procfs.container_pids(pid)
            for other in pids:
                if other != pid:
                    try:
                        posix.kill(other, sig)
                    except ProcessLookupError:
                        pass
        try:
            seams.pidfds.pidfd_send_signal(fd, sig)
        except OSError as e:
            if e.errno != _ESRCH:
                raise
            # It exited since the pidfd was opened: with --all, after the signals to the
            # others (its last child gone, a shell init returns), which is what was asked.
            if not all_processes:
                raise StateError(f"container {st.id}: container not running") from None
    finally:
        posix.close(fd)


def _signal_leftovers(st: "State", sig: int, seams: "Seams") -> None:
    """Signal the processes left in the cgroup of a container whose init is gone; only
    in a cgroup create made: a joined one holds others' processes."""
    mgr = cgroup_manager(st, seams)
    if not owns_cgroup(mgr):
        return
    for pid in mgr.pids():
        try:
            posix.kill(pid, sig)
        except ProcessLookupError:
            pass
