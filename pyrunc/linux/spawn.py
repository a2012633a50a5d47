"""The parent side of create: fork the container's init and answer its requests.

pyrunc forks where runc re-execs: the child is already a running interpreter with the
config loaded, so it pays no second interpreter start.  The child side is init.py.
"""

import os
import sys

from pyrunc import log
from pyrunc.errors import ContainerError
from pyrunc.linux import init as child
from pyrunc.linux import child_death, kernel, passed_fds, proctitle
from pyrunc.linux import unix
from pyrunc.linux import protocol
from pyrunc.linux.protocol import Channel


class Spawned:
    """The result of a successful spawn: the init's host pid and, for a foreground
    terminal, the pty master."""

    def __init__(self, pid, first_child, console):
        self.pid = pid
        self.first_child = first_child
        self.console = console


def spawn(cfg, container_id, start_path, handler, no_pivot=False, no_new_keyring=False,
          preserve_fds=0, console_sock_fd=None, seccomp_program=None, host_root=None):
    """Fork the container and drive the protocol until it reports `created`.

    `handler` answers the child's requests: idmap(pid), cgroup(pid), hooks(pid),
    seccomp(pid, fd), netdevices(netlink socket fd), mount_sources(pid) (a list of fds).  On any
    failure raises ContainerError after killing what was forked; the caller removes the rest.
    `host_root`: where a container without a mount namespace binds its rootfs.
    """
    parent_ch, child_ch = Channel.pair()
    start_sock = unix.socket()
    start_sock.bind(start_path)
    start_sock.listen(1)
    notes = child_death.StepNotes()
    reaper = child_death.Subreaper()
    try:
        pid = kernel.fork()
    except BaseException:
        notes.close()
        reaper.restore()
        raise
    if pid == 0:  # the child never returns into the CLI's code
        try:
            proctitle.show_init(container_id)  # not `pyrunc create ...` once create is gone
            parent_ch.close()
            keep = [child_ch.fileno(), start_sock.fileno(), notes.child()]
            if console_sock_fd is not None:
                keep.append(console_sock_fd)
            trace = traced_child("stage1", keep)
            listen_fds = passed_fds.listen_fds(os.getppid())  # our parent is the pyrunc command
            close_fds_except(3 + listen_fds + preserve_fds, keep)
            ctx = child.InitContext(cfg, container_id, child_ch, start_sock, no_pivot=no_pivot,
                                    no_new_keyring=no_new_keyring, preserve_fds=preserve_fds,
                                    console_sock_fd=console_sock_fd,
                                    seccomp_program=seccomp_program, listen_fds=listen_fds,
                                    host_root=host_root)
            ctx.note_fd = notes.fd
            if trace is not None:
                trace.traced_context(ctx)
            try:
                if child.setup_namespaces(ctx):
                    child.container_init(ctx)
                else:
                    os._exit(0)
            except BaseException as e:
                ctx.traced_failure(e)
                child.report_failure(ctx, e)
        finally:
            os._exit(1)
    child_ch.close()
    start_sock.close()
    notes.parent()
    served = _Served()
    try:
        _serve(parent_ch, handler, notes, served)
    except child_death.Died:
        raise ContainerError(None, _death(pid, served, notes, handler)) from None
    except BaseException:
        _kill_and_reap(pid, served.init_pid, _frozen(handler))
        raise
    finally:
        parent_ch.close()
        notes.close()
        if served.init_pid != pid:
            # In the cgroup too when it joined early: a freeze must not stop us here.
            wait_child(pid, _frozen_check(handler))
        reaper.restore()
    return Spawned(served.init_pid, pid, served.console)


def _frozen_check(handler):
    return getattr(handler, "check_not_frozen", None) or (lambda: None)


class _Served:
    """What the serving learnt: the init's host pid, the pty master."""
    init_pid = None
    console = None


def _death(first_child, served, notes, handler):
    """One line for an init (or first child) that died before it reported: where it
    was, how it died, and, when the memory cgroup's OOM killer did it, why."""
    dead = served.init_pid if served.init_pid is not None else first_child
    _kill_and_reap(first_child, served.init_pid, _frozen(handler))  # whichever is still there
    if dead != first_child:
        # Once it is reaped, its orphan, the init, is ours to reap.
        wait_child(first_child, _frozen_check(handler))
    status = child_death.reap_status(dead)
    step = notes.read()
    proc = "container init"  # its first stage (namespaces) too: the user knows one init
    oom = handler.memory_oom() if hasattr(handler, "memory_oom") else None
    log.child_failed("init", [step] if step else [])
    return child_death.describe(proc, step, status, oom)


def traced_child(proc, keep):
    """In a forked child, when tracing: it is `proc` now, and the trace fd joins `keep`,
    the fds its cleanup spares (the exec closes it: it is close-on-exec).  The trace
    module, or None when not tracing."""
    trace = sys.modules.get("pyrunc.trace")  # imported only when tracing
    tracer = trace.active() if trace is not None else None
    if tracer is None:
        return None
    tracer.forked(proc)
    keep.append(tracer.fd)
    return trace


def close_fds_except(first, keep):
    """Close every fd from `first` up but those in keep: the state directory's lock, the
    caller's stray fds and anything else of the host's must not follow the container."""
    lo = first
    for fd in sorted(k for k in keep if k >= first) + [1 << 20]:
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1


# The init's own messages: with a pid or time namespace the init is forked by the first
# child, which reports its pid ("init") while the init already runs, so these may come
# before that report; they wait for it.
_NEED_INIT_PID = (protocol.CREATED, protocol.CGROUP_JOINED, protocol.HOOKS, protocol.SECCOMP)


def _serve(chan, handler, notes=None, served=None):
    """Answer the child's requests until `created`: (the init's pid, pty master or None).
    `served` learns them as they come, for a failure's report; `notes`, the child's steps."""
    notes = notes or child_death.NO_NOTES
    served = served or _Served()
    # Once the child is in its cgroup, a freeze of it would stop the child for good: each
    # quiet spell of the wait asks the cgroup, and a frozen one fails create.
    idle = _frozen_check(handler)
    init_pid = None
    joining = False  # the init joins its cgroup when it asks (cgroup_joined)
    early = []       # the init's messages that came before its pid
    step = "start init"
    while True:
        msg, fds = early.pop(0) if early and init_pid is not None else chan.recv(idle)
        kind = msg["type"]
        if kind in _NEED_INIT_PID and init_pid is None:
            early.append((msg, fds))
            continue
        if kind == protocol.CREATED:
            # The OOM killer may strike the init as it reports (a page touched after its
            # late move into the cgroup): such a create failed, whatever the report says.
            oom_struck = getattr(handler, "oom_struck", None)
            if oom_struck is not None and oom_struck():
                raise child_death.Died()
            return served.init_pid, served.console
        if kind == protocol.ERROR:
            if msg.get("step") is not None:  # the init's own failure, not a relayed one
                log.child_failed("init", msg.get("steps"))
            raise ContainerError(None, msg["msg"])
        if kind == protocol.EOF:
            raise child_death.Died()
        if kind == protocol.INIT:
            init_pid = served.init_pid = msg["pid"]
            continue
        if kind == protocol.CONSOLE:
            served.console = fds[0]
            continue
        # The child's step as its request tells; cgroup_joined may come after the last
        # note (the seccomp filter ends them).
        if kind == protocol.CGROUP_JOINED:
            notes.saw("join cgroup")
        else:
            notes.read()
        step = {protocol.IDMAP: "write id maps", protocol.CGROUP: "join cgroup",
                protocol.HOOKS: "run createRuntime hooks",
                protocol.SECCOMP: "send the seccomp fd to the listener",
                protocol.NETDEVICES: "move network devices",
                protocol.MOUNT_SOURCES: "open mount sources"}.get(kind, kind)
        try:
            if kind == protocol.IDMAP:
                handler.idmap(msg["pid"])
            elif kind == protocol.CGROUP:
                joining = not msg.get("join_now", True)
                child_death.answer(chan, protocol.OK, paths=handler.cgroup(msg["pid"], not joining) or {})
                if joining:
                    # The first move into a cgroup waits out an RCU grace period (about
                    # 14 ms on this host's cgroup v1): pay it now with a stand-in
                    # process, while the child unshares, forks and builds the rootfs,
                    # so that the init's own move, when it asks, is quick.
                    handler.warm_up_cgroup()
                continue
            elif kind == protocol.CGROUP_JOINED:
                if joining:  # late, after the setup's pages were touched: not charged
                    handler.join_cgroup(init_pid)
            elif kind == protocol.HOOKS:
                handler.hooks(init_pid)
            elif kind == protocol.SECCOMP:
                try:
                    handler.seccomp(init_pid, fds[0])
                finally:
                    for fd in fds:
                        os.close(fd)
            elif kind == protocol.MOUNT_SOURCES:
                from pyrunc.linux import mount_sources
                fds = handler.mount_sources(msg["pid"])
                try:
                    mount_sources.send(chan, fds)
                except (BrokenPipeError, ConnectionResetError):
                    raise child_death.Died() from None
                finally:
                    for fd in fds:
                        os.close(fd)
                continue
            elif kind == protocol.NETDEVICES:
                try:
                    if not fds:
                        raise ContainerError(step, "the container init sent no netlink socket")
                    handler.netdevices(fds[0])
                finally:
                    for fd in fds:
                        os.close(fd)
            else:
                raise ContainerError(step, f"unknown request {kind!r} from container init")
        except Exception as e:
            child_death.answer(chan, protocol.ERROR, msg=str(e))
            raise
        child_death.answer(chan, protocol.OK)


def reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def wait_child(pid, idle, interval=0.25):
    """Reap our child `pid`.  `idle` is called each `interval` seconds it has not exited
    and raises to give up; the child is then killed and left to the reaper (a process
    stopped by the v1 freezer dies only once thawed)."""
    import time
    delay, checked = 0.0002, time.monotonic()
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        if time.monotonic() - checked >= interval:
            try:
                idle()
            except BaseException:
                _kill(pid)
                raise
            checked = time.monotonic()
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def _kill(pid):
    import _signal as signal  # signal.py would import enum
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _frozen(handler):
    """Whether the cgroup freezer stops the container's processes now (a v1 frozen
    process dies of SIGKILL only once thawed: no use waiting for it)."""
    def frozen():
        try:
            _frozen_check(handler)()
        except ContainerError:
            return True
        return False
    return frozen


def _kill_and_reap(first_child, init_pid, frozen=None):
    for pid in {first_child, init_pid} - {None}:
        _kill(pid)
    if init_pid is not None and init_pid != first_child:
        wait_exit(init_pid, frozen=frozen)


def wait_exit(pid, timeout=10.0, frozen=None):
    """Wait until a process that need not be our child has exited; False when it has not
    in `timeout` seconds, or as soon as `frozen()` says the freezer stops it."""
    import select
    import time
    try:
        fd = kernel.pidfd_open(pid)
    except OSError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if poller.poll(max(0, int(min(left, 0.25 if frozen else left) * 1000))):
                return True
            if left <= 0 or (frozen is not None and frozen()):
                return False
    finally:
        os.close(fd)
