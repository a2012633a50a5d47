"""`start` (runtime.md, "Start"): tell a created container's init to exec the user's
process, then run the poststart hooks.  Apart from lifecycle.py, whose create side
imports os and the config's model, so that `start`, which an engine runs for every
container, loads no more than the light commands (cli/light.py) and this.
"""

import posix  # not os: start loads without it

from pyrunc import log
from pyrunc import status as rules
from pyrunc.errors import ContainerError
from pyrunc.signalling import cgroup_manager
from pyrunc.status import CREATED, PAUSED, RUNNING, hook_state, status_of

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyrunc.linux import Seams
    from pyrunc.linux.kernel import Kernel
    from pyrunc.store import ContainerDir, State, Store

START_SOCKET = "start.sock"  # in the state directory: the waiting init listens on it


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
            if status == CREATED and stopped_by_freezer(st, seams):
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
                raise ContainerError(f"start {cid}", "the container exited before it notified READY=1")
    finally:
        if ready is not None:
            ready.close()
    return st


def stopped_by_freezer(st: "State | None", seams: "Seams") -> bool:
    """Whether the container's cgroup is frozen though the state does not say paused."""
    mgr = cgroup_manager(st, seams)
    return mgr is not None and mgr.stopped_by_freezer()


def _started(cdir: "ContainerDir", cid: str, st: "State", seams: "Seams") -> None:
    assert st.pid is not None  # created: start checked it
    with log.step("tell the init to exec"):
        try:
            _release(cdir, cid, lambda: stopped_by_freezer(st, seams))
        except _FrozenAtStart:
            # It has its go and runs once thawed: started, and paused meanwhile.
            st.started = st.paused = True
            cdir.write_state(st)
            raise ContainerError(
                f"start {cid}", frozen_message(st.cgroup_path) + ": the container is paused; `resume` runs it"
            ) from None
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
        except ContainerError as e:
            kill_and_wait(st.pid, seams.kernel)  # runtime.md step 9: a failed poststart stops the container
            raise ContainerError(f"start {cid}", str(e)) from None


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
        raise ContainerError(f"start {cid}", f"container init is not waiting: {_why(e)}") from None
    finally:
        sock.close()
        try:
            posix.unlink(cdir.file(START_SOCKET))
        except FileNotFoundError:
            pass
    if reply:
        raise ContainerError(f"start {cid}", reply.decode(errors="replace"))
