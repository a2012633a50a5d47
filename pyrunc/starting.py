"""`start` (runtime.md, "Start"): tell a created container's init to exec the user's
process, then run the poststart hooks.  Apart from lifecycle.py, whose create side
imports os and the config's model, so that `start`, which an engine runs for every
container, loads no more than the light commands (cli/light.py) and this.
"""

import posix  # not os: start loads without it

from pyrunc import log
from pyrunc import status as rules
from pyrunc.status import CREATED, PAUSED, RUNNING, hook_state, status_of

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.errors import ContainerError
    from pyrunc.linux import Seams
    from pyrunc.linux.kernel import Kernel
    from pyrunc.store import ContainerDir, State, Store

START_SOCKET = "start.sock"  # in the state directory: the waiting init listens on it


def _container_error() -> "type[ContainerError]":
    """errors.ContainerError, loaded (build_errors.py) only when start fails: 0.1 ms of a start."""
    from pyrunc.errors import ContainerError

    return ContainerError


def _error(cid: str, why: str) -> "ContainerError":
    return _container_error()(f"start {cid}", why)


def frozen_message(cgroup_path: str) -> str:
    return f'container\'s cgroup unexpectedly frozen (linux.cgroupsPath "{cgroup_path}")'


def _why(e: OSError) -> str:
    return posix.strerror(e.errno).lower() if e.errno is not None else str(e)


def kill_and_wait(pid: int, k: "Kernel") -> None:
    import _signal as signal  # signal.py would import enum

    try:
        posix.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    from pyrunc.linux.pidfds import wait_exit

    wait_exit(k, pid)


def start(store: "Store", cid: str, seams: "Seams") -> "State":
    ready = None
    try:
        with store.open(cid) as cdir:
            st = cdir.read_state()
            status = status_of(st)
            if status == CREATED and st is not None and frozen_by_record(st.cgroup):
                status = PAUSED  # frozen by someone else: paused, as runc reads it
            rules.check("start", cid, status)
            assert st is not None and st.pid is not None  # created: check refuses the others
            if st.notify_socket:
                from pyrunc import notify

                assert cdir.fd is not None  # open until the with ends
                ready = notify.listen(cdir.fd)  # before the process can send
            _started(cdir, cid, st, seams)
        if ready is not None:
            assert st.notify_socket is not None  # what `ready` listens for
            if not notify.forward_ready(ready, st.pid, st.notify_socket, seams.kernel):
                raise _error(cid, "the container exited before it notified READY=1")
    finally:
        if ready is not None:
            ready.close()
    return st


def stopped_by_freezer(st: "State | None", seams: "Seams") -> bool:
    """Whether the container's cgroup is frozen though the state does not say paused."""
    from pyrunc.signalling import cgroup_manager  # exec's and create's: start reads the record alone

    mgr = cgroup_manager(st, seams)
    return mgr is not None and mgr.stopped_by_freezer()


CGROUP_MOUNT_ROOT = "/sys/fs/cgroup"  # cgroups.CGROUP_MOUNT_ROOT (tests/unit/test_cgroups_v1.py keeps them equal)
_UNIFIED = "unified"  # v1.UNIFIED: a hybrid host's cgroup2 hierarchy


def frozen_by_record(saved: "dict[str, Any] | None", root: str = CGROUP_MOUNT_ROOT) -> bool:
    """The managers' stopped_by_freezer (v1.py, v2.py; systemd's asks its inner record),
    read from the state's cgroup record without loading them: the cgroup package, its
    files and the v1 manager cost `start` 0.6 ms to import (docs/performance.md).  The
    record's shape was checked when the state was read (store._cgroup_shape); the unit
    tests of each manager's stopped_by_freezer ask this of its record too."""
    if not saved:
        return False
    if saved.get("driver") == "systemd":
        saved = saved["inner"]
    if saved.get("version") == 2:
        return _cgroup2_frozen(_under(root, saved["dir"]))
    if "dirs" in saved:  # the per-hierarchy record
        controllers = saved["controllers"]
        dirs = saved["dirs"]
    else:  # the compact one: each hierarchy's controllers are its name's (v1.named_controllers)
        controllers = {n: saved[_UNIFIED] if n == _UNIFIED else n.split(",") for n in saved["hierarchies"]}
        dirs = dict.fromkeys(controllers, saved["dir"])
    # v1's freezer.state is the effective state (FROZEN under a frozen parent too)
    for name, ctrls in controllers.items():
        if name != _UNIFIED and "freezer" in ctrls:
            state = _read(_under(f"{root}/{name}", dirs[name]) + "/freezer.state").strip()
            if state in ("FROZEN", "FREEZING"):
                return True
            break
    # a hybrid host's unified hierarchy has cgroup2's freezer besides
    return _UNIFIED in controllers and _cgroup2_frozen(_under(f"{root}/{_UNIFIED}", dirs[_UNIFIED]))


def _under(top: str, path: str) -> str:
    """A cgroup's directory: path (absolute, normal: store._cgroup_paths) below top."""
    return top if path == "/" else top + path


def _read(path: str) -> str:
    """A cgroup file's text; "" when it cannot be read (files.CgroupFiles.read)."""
    from pyrunc.linux.procfs import read_whole

    try:
        return read_whole(path).decode()
    except OSError:
        return ""


def _cgroup2_frozen(directory: str) -> bool:
    """files.CgroupFiles.cgroup2_frozen: its own cgroup.freeze asks it, or cgroup.events
    says it is frozen (an ancestor's freeze shows only there)."""
    if _read(directory + "/cgroup.freeze").strip() == "1":
        return True
    for line in _read(directory + "/cgroup.events").splitlines():
        key, _, value = line.partition(" ")
        if key == "frozen":
            return value.strip() == "1"
    return False


def _started(cdir: "ContainerDir", cid: str, st: "State", seams: "Seams") -> None:
    assert st.pid is not None  # created: start checked it
    with log.step("tell the init to exec"):
        try:
            _release(cdir, cid, lambda: frozen_by_record(st.cgroup))
        except _FrozenAtStart:
            # It has its go and runs once thawed: started, and paused meanwhile.
            st.started = st.paused = True
            cdir.write_state(st)
            raise _error(cid, frozen_message(st.cgroup_path) + ": the container is paused; `resume` runs it") from None
    st.started = True
    cdir.write_state(st)
    log.debug(f"start {cid}: init {st.pid} executed the process")
    if not st.hooks:  # the usual case: no hook, and no import of the config model for none
        return
    from pyrunc.config.model import hooks_from_dict

    hooks = hooks_from_dict(st.hooks)
    if hooks.poststart:
        from pyrunc.linux import hooks as hookrun

        try:
            with log.step("run poststart hooks"):
                hookrun.run_hooks("poststart", hooks, hook_state(cid, st.bundle, st.annotations, RUNNING, st.pid))
        except _container_error() as e:
            kill_and_wait(st.pid, seams.kernel)  # runtime.md step 9: a failed poststart stops the container
            raise _error(cid, str(e)) from None


class _FrozenAtStart(Exception):
    pass


def _release(cdir: "ContainerDir", cid: str, frozen: "Callable[[], bool] | None" = None) -> None:
    """Tell the waiting init to exec; its connection closes when the exec succeeds, or
    carries the reason it failed (a startContainer hook, the exec itself).  `frozen`
    is asked in each quiet spell of the wait: a frozen init would never answer."""
    from pyrunc.linux import unix
    from pyrunc.linux.protocol import IDLE_INTERVAL

    sock = unix.socket()
    try:
        sock.connect(f"/proc/self/fd/{cdir.fd}/{START_SOCKET}")
        sock.sendall(b"1")
        if frozen is not None:
            sock.settimeout(IDLE_INTERVAL)
        reply = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if frozen is not None and frozen():
                    raise _FrozenAtStart() from None
                continue
            if not chunk:
                break
            reply += chunk
    except OSError as e:
        raise _error(cid, f"container init is not waiting: {_why(e)}") from None
    finally:
        sock.close()
        try:
            posix.unlink(cdir.file(START_SOCKET))
        except FileNotFoundError:
            pass
    if reply:
        raise _error(cid, reply.decode(errors="replace"))
