"""delete (runtime.md): a stopped container's resources removed (`force`: a live one
killed first), then its poststop hooks.  Out of lifecycle.py, on posix, so that `delete`
imports neither os nor the lifecycle's create side (docs/performance.md); create undoes a
failed create with the same functions (lifecycle.py imports them from here).
"""

from pyrunc import log
from pyrunc import status as rules  # which verb in which status
from pyrunc.errors import StateError, one_line
from pyrunc.signalling import cgroup_manager, signal_container
from pyrunc.status import CREATING, LIVE, STOPPED, hook_state, status_of

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.linux import Seams
    from pyrunc.linux.cgroups import Manager
    from pyrunc.linux.kernel import Kernel
    from pyrunc.store import ContainerDir, CorruptState, State, Store


def _remove_cgroup(mgr: "Manager", st: "State") -> None:
    """Kill what is left in a cgroup create made, then remove it; never touch a joined one."""
    import _signal as signal  # signal.py would import enum

    from pyrunc.errors import CgroupError

    try:
        # Only a cgroup made whole (in every hierarchy) holds nothing but ours: a v1
        # hierarchy where it existed may hold others' processes (a frozen cgroup refused).
        if mgr.made_leaf() and mgr.pids():  # often none left: kill_all freezes on v1
            mgr.kill_all(signal.SIGKILL)
            if mgr.is_frozen():
                # Frozen by someone else, but ours: a frozen v1 process dies only once thawed.
                mgr.thaw()
        mgr.destroy()
    except (CgroupError, OSError) as e:
        log.warning(f"container {st.id}: {e}")


def _remove_rdt(saved: "dict[str, Any]", st: "State") -> None:
    from pyrunc.errors import ContainerError
    from pyrunc.linux import resctrl

    try:
        resctrl.remove(saved)
    except ContainerError as e:
        log.warning(f"container {st.id}: {e}")


def _detach_host_mounts(saved: "dict[str, Any]", k: "Kernel") -> str | None:
    """Detach the mounts a container without a mount namespace made in the host's (`saved`,
    its state's host_mounts); None when none is left, else one line saying what is."""
    from pyrunc.linux import host_mounts

    try:
        left = host_mounts.detach_new(k, saved)
    except OSError as e:  # mountinfo unreadable: nothing is known to be gone
        return f"cannot unmount what it left under {saved['root']}: {one_line(e)}"
    return host_mounts.describe_left(left, saved["root"]) if left else None


def _delete_broken(cdir: "ContainerDir", err: "CorruptState", seams: "Seams") -> None:
    """delete -f of a container whose state.json is corrupt: what the readable part of it
    names goes (its init only if pid and start time still match: never a recycled pid;
    its cgroup; its host mounts), then the directory.  No hook runs from a corrupt state."""
    from pyrunc.store import State

    part = err.partial or State(cdir.id, "")
    part.id = cdir.id
    log.warning(f"{err}; removing what it still names")
    mgr = cgroup_manager(part, seams)
    if part.pid and part.pid_start is not None:
        _kill_and_wait_init(cdir.id, part, mgr, seams, all_processes=False)
    _free_resources(cdir, part, mgr, seams)


def _kill_and_wait_init(cid: str, st: "State", mgr: "Manager | None", seams: "Seams", all_processes: bool) -> None:
    """SIGKILL the init through a pidfd (never a recycled pid; with all_processes, the
    container's other processes first) and wait until it is gone."""
    import _signal as signal  # signal.py would import enum

    try:
        with log.step("kill the container"):
            signal_container(st, signal.SIGKILL, seams, all_processes=all_processes)
    except StateError:
        return  # not running: gone already, or its pid is another process's by now
    if mgr is not None and mgr.is_frozen():
        mgr.thaw()  # a frozen v1 process dies only once it runs again
    from pyrunc.linux.pidfds import wait_exit

    assert st.pid is not None  # signal_container found it running
    with log.step("wait for exit"):
        exited = wait_exit(seams.pidfds, st.pid)
    if not exited:
        raise StateError(f"cannot delete container {cid}: its process {st.pid} did not exit")


def _free_resources(cdir: "ContainerDir", st: "State", mgr: "Manager | None", seams: "Seams") -> None:
    """What a container holds once its processes are gone: host mounts, cgroup, intelRdt
    group, then its state directory.  `st`: its state, or what a corrupt one still names.
    The kernel seam is asked for only when host mounts need it: a plain delete does not
    import it."""
    if st.host_mounts:
        # First, and the state kept when it fails: a delete run again retries them.
        with log.step("detach host mounts"):
            left = _detach_host_mounts(st.host_mounts, seams.kernel)
        if left:
            raise StateError(f"cannot delete container {cdir.id}: {left}")
    if mgr is not None:
        with log.step("remove cgroup"):
            _remove_cgroup(mgr, st)
    if st.intel_rdt:
        with log.step("remove intelRdt group"):
            _remove_rdt(st.intel_rdt, st)
    with log.step("remove state"):
        cdir.remove()


def delete(
    store: "Store", cid: str, seams: "Seams", force: bool = False, warn: "Callable[[str], None] | None" = None
) -> None:
    """Remove a stopped container (`force`: a created, running or paused one too, killed
    first), then run the poststop hooks.  The spec makes delete of any container that is
    not stopped an error with no effect; runc deletes a created one anyway.  A directory
    left `creating` is removable: we hold its lock, so the create that made it is gone."""
    from pyrunc.store import CorruptState, State

    with store.open(cid) as cdir:
        try:
            st = cdir.read_state()
        except CorruptState as e:
            if not force:
                raise StateError(f"{e}; `delete -f` removes the container") from None
            return _delete_broken(cdir, e, seams)
        status = status_of(st)
        rules.check("delete", cid, status, force=force)
        mgr = cgroup_manager(st, seams)
        if st is not None and status in LIVE:  # None: creating
            _kill_and_wait_init(cid, st, mgr, seams, all_processes=True)
        _free_resources(cdir, st or State(cid, ""), mgr, seams)  # None: no state.json was ever written whole
        log.debug(f"delete {cid}: removed")
        if st is not None and status != CREATING and st.hooks:
            from pyrunc.config.model import hooks_from_dict

            hooks = hooks_from_dict(st.hooks)
            if hooks.poststop:
                from pyrunc.linux import hooks as hookrun

                with log.step("run poststop hooks"):
                    hookrun.run_hooks_warn(
                        "poststop", hooks, hook_state(cid, st.bundle, st.annotations, STOPPED), warn or log.warning
                    )
