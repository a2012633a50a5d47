"""The container lifecycle (runtime.md): creating -> created -> running -> stopped.

Each operation locks the container's state directory, checks the state it needs, and
calls into pyrunc.linux for the mechanics.  No raw kernel calls here.
"""

import os
import time

from pyrunc import OCI_VERSION
from pyrunc.errors import ContainerError, PyruncError, StateError
from pyrunc.linux import procfs
from pyrunc.store import EXEC_FIFO, Store

START_SOCKET = "start.sock"
CREATED, RUNNING, STOPPED, PAUSED, CREATING = "created", "running", "stopped", "paused", "creating"


def status_of(st):
    if st is None:
        return CREATING
    if not procfs.is_alive(st.get("pid"), st.get("pid_start")):
        return STOPPED
    return RUNNING if st.get("started") else CREATED


def oci_state(cid, st):
    """The spec's state JSON (runtime.md, "State"), plus runc's extra fields."""
    status = status_of(st)
    out = {"ociVersion": (st or {}).get("ociVersion", OCI_VERSION), "id": cid, "status": status}
    if st is None:
        return out
    if status in (CREATED, RUNNING, PAUSED):
        out["pid"] = st["pid"]
    else:
        out["pid"] = 0
    out["bundle"] = st["bundle"]
    out["rootfs"] = st.get("rootfs", "")
    out["created"] = st.get("created", "")
    if st.get("annotations"):
        out["annotations"] = st["annotations"]
    out["owner"] = ""
    return out


def hook_state(cid, st, status, pid=None):
    state = {"ociVersion": st.get("ociVersion", OCI_VERSION), "id": cid, "status": status,
             "bundle": st["bundle"]}
    if pid:
        state["pid"] = pid
    if st.get("annotations"):
        state["annotations"] = st["annotations"]
    return state


class _CreateHandler:
    """Answers the container init's requests during create."""

    def __init__(self, cid, cfg, bundle):
        self.cid, self.cfg, self.bundle = cid, cfg, bundle

    def idmap(self, pid):
        from pyrunc.linux import namespaces
        namespaces.write_id_maps(pid, self.cfg.linux)

    def cgroup(self, pid):
        # Cgroups arrive with their own module; the init is placed here, before it
        # unshares its cgroup namespace and before the user's program can run.
        pass

    def hooks(self, pid):
        from pyrunc.linux import hooks
        st = {"bundle": self.bundle, "annotations": self.cfg.annotations, "ociVersion": self.cfg.oci_version}
        state = hook_state(self.cid, st, CREATING, pid)
        hooks.run_hooks("prestart", self.cfg.hooks, state)
        hooks.run_hooks("createRuntime", self.cfg.hooks, state)


def _iso_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def create(store, cid, bundle, pid_file=None, console_socket=None, no_pivot=False,
           no_new_keyring=False, preserve_fds=0, foreground=False):
    """Create a container; returns (state dict, Spawned)."""
    from pyrunc.config import model, validate
    from pyrunc.store import check_id
    check_id(cid)
    bundle = os.path.abspath(bundle)
    doc = validate.load_config(bundle)
    cfg = model.from_dict(doc, bundle)
    if cfg.process is None:
        raise StateError("config.json has no process: nothing to run")
    if cfg.process.terminal and console_socket is None and not foreground:
        raise StateError("cannot allocate a tty without --console-socket when detached")
    console_fd = _connect_console(console_socket) if console_socket else None
    cdir = store.create(cid)
    spawned = None
    try:
        from pyrunc.linux.spawn import spawn
        start_path = f"/proc/self/fd/{cdir.fd}/{START_SOCKET}"
        spawned = spawn(cfg, cid, start_path, _CreateHandler(cid, cfg, bundle),
                        no_pivot=no_pivot, no_new_keyring=no_new_keyring,
                        preserve_fds=preserve_fds, console_sock_fd=console_fd)
        st = {
            "id": cid, "ociVersion": cfg.oci_version, "pid": spawned.pid,
            "pid_start": procfs.start_time(spawned.pid), "bundle": bundle,
            "rootfs": cfg.root_path, "created": _iso_now(), "started": False,
            "annotations": cfg.annotations, "hooks": doc.get("hooks") or {},
        }
        cdir.write_state(st)
        if pid_file:
            from pyrunc.store import write_atomic
            write_atomic(os.path.abspath(pid_file), str(spawned.pid).encode(), 0o644)
        return st, spawned
    except BaseException as e:
        if spawned is not None:
            _kill_and_wait(spawned.pid)
        cdir.remove()
        if isinstance(e, ContainerError):
            raise ContainerError(f"create {cid}", e.cause) from None
        if isinstance(e, OSError) and not isinstance(e, PyruncError):
            raise ContainerError(f"create {cid}", str(e)) from None
        raise
    finally:
        cdir.close()
        if console_fd is not None:
            os.close(console_fd)


def _connect_console(path):
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise StateError(f"connect to console socket {path}: {os.strerror(e.errno).lower()}") from None
    return sock.detach()


def _kill_and_wait(pid):
    import signal
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    from pyrunc.linux.spawn import wait_exit
    wait_exit(pid)


def start(store, cid):
    with store.open(cid) as cdir:
        st = cdir.read_state()
        status = status_of(st)
        if status != CREATED:
            raise StateError(f"cannot start container {cid}: it is {status}, not created")
        _release(cdir, cid)
        st["started"] = True
        cdir.write_state(st)
        from pyrunc.config.model import hooks_from_dict
        hooks = hooks_from_dict(st.get("hooks"))
        if hooks.poststart:
            from pyrunc.linux import hooks as hookrun
            try:
                hookrun.run_hooks("poststart", hooks, hook_state(cid, st, RUNNING, st["pid"]))
            except ContainerError as e:
                _kill_and_wait(st["pid"])  # runtime.md step 9: a failed poststart stops the container
                raise ContainerError(f"start {cid}", str(e)) from None
        return st


def _release(cdir, cid):
    """Tell the waiting init to exec; its connection closes when the exec succeeds."""
    import socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(f"/proc/self/fd/{cdir.fd}/{START_SOCKET}")
        sock.sendall(b"1")
        reply = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    except OSError as e:
        raise ContainerError(f"start {cid}", f"container init is not waiting: {os.strerror(e.errno).lower()}") from None
    finally:
        sock.close()
        try:
            os.unlink(cdir.file(START_SOCKET))
        except FileNotFoundError:
            pass
    if reply:
        raise ContainerError(f"start {cid}", reply.decode(errors="replace"))


def kill(store, cid, sig, all_processes=False):
    with store.open(cid) as cdir:
        st = cdir.read_state()
        status = status_of(st)
        if status not in (CREATED, RUNNING, PAUSED):
            raise StateError(f"cannot kill container {cid}: container not running")
        signal_container(st, sig, all_processes)


def signal_container(st, sig, all_processes=False):
    from pyrunc.linux import kernel
    fd = procfs.open_pidfd(st["pid"], st["pid_start"])
    if fd is None:
        raise StateError(f"container {st['id']}: container not running")
    try:
        if all_processes:
            for pid in procfs.pids_in_namespace_of(st["pid"]):
                if pid != st["pid"]:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
        kernel.pidfd_send_signal(fd, sig)
    finally:
        os.close(fd)


def delete(store, cid, force=False, warn=None):
    import signal
    with store.open(cid) as cdir:
        st = cdir.read_state()
        status = status_of(st)
        if status in (RUNNING, PAUSED) and not force:
            raise StateError(f"cannot delete container {cid} that is not stopped: {status}")
        if st is not None and status != STOPPED:
            try:
                signal_container(st, signal.SIGKILL, all_processes=True)
            except StateError:
                pass
            from pyrunc.linux.spawn import wait_exit
            wait_exit(st["pid"])
        cdir.remove()
        if st is not None:
            from pyrunc.config.model import hooks_from_dict
            hooks = hooks_from_dict(st.get("hooks"))
            if hooks.poststop:
                from pyrunc.linux import hooks as hookrun
                hookrun.run_hooks_warn("poststop", hooks, hook_state(cid, st, STOPPED),
                                       warn or (lambda msg: None))


def state(store, cid):
    return oci_state(cid, store.peek(cid))


def list_states(store):
    result = []
    for cid in store.ids():
        try:
            result.append(oci_state(cid, store.peek(cid)))
        except StateError:
            continue  # deleted while we listed
    return result
