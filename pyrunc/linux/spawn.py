"""The parent side of every process the runtime starts: create's init and exec's process.

One fork (`_spawn`) and one loop over the child's messages (`_serve`), in two modes:
`spawn_init` (create: the child builds the container, linux/init.py) and `spawn_exec`
(exec: the child joins it, linux/join.py).  What each mode answers is in
linux/requests.py; the messages are protocol.py's.  pyrunc forks where runc re-execs:
the child is already a running interpreter with the config loaded, so it pays no second
interpreter start.
"""

import errno
import os
import sys

from pyrunc import log
from pyrunc.errors import ContainerError, KernelError
from pyrunc.linux import cgroup_warm_up, child_death, passed_fds, proctitle, protocol, unix
from pyrunc.linux.child_death import kill as _kill
from pyrunc.linux.child_death import wait_child
from pyrunc.linux.kernel import CLONE_NEWPID, PR_GET_DUMPABLE, PR_SET_DUMPABLE
from pyrunc.linux.pidfds import wait_exit  # delete waits with it too, without this module
from pyrunc.linux.protocol import Channel
from pyrunc.linux.requests import Refused
from pyrunc.store import in_user_namespace

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.config.model import Config
    from pyrunc.linux.child_death import StepNotes, _NoNotes
    from pyrunc.linux.init import StepRecorder
    from pyrunc.linux.kernel import Kernel
    from pyrunc.linux.requests import CreateRequests, ExecRequests, Requests


class Spawned:
    """The result of a successful spawn: the host pid of the process that goes on (the
    container's init, the exec process) and, for a foreground terminal, the pty master."""

    def __init__(self, pid: int, console: int | None) -> None:
        self.pid = pid
        self.console = console


def spawn_init(
    cfg: "Config",
    container_id: str,
    start_path: str,
    requests: "CreateRequests",
    opts: "Any",  # options.CreateOptions
    kernel: "Kernel",
    console_sock_fd: int | None = None,
    seccomp_program: bytes | None = None,
    host_root: str | None = None,
) -> Spawned:
    """create: fork the container and serve it until it reports `created`.

    `requests` (requests.CreateRequests) answers the init's requests; `opts`: create's
    options.CreateOptions (--no-pivot, --no-new-keyring, --preserve-fds).  On any failure
    raises ContainerError after killing what was forked; the caller removes the rest.
    `host_root`: where a container without a mount namespace binds its rootfs.
    `kernel`: the command's kernel.Kernel (or the trace's recording one), the child's too.
    """
    start_sock = unix.socket()
    try:
        start_sock.bind(start_path)
        start_sock.listen(1)
    except BaseException:
        start_sock.close()
        raise

    # Asked here: a child born in a new pid namespace has no parent pid to compare.
    listen_fds = passed_fds.listen_fds(os.getpid())
    new_pid_ns = pid_ns_in_parent(cfg)
    user_ns = cfg.linux.namespace("user")
    cgroup_ns = cfg.linux.namespace("cgroup")

    apart = cpus_apart(kernel)

    def run(child_ch: Channel, note_fd: int) -> None:
        cpus = apart
        if cpus is not None:  # first: meanwhile the parent serves the cgroup request on its own CPU
            try:
                kernel.sched_setaffinity(0, cpus[1], "build the container apart from the runtime")
            except KernelError:  # a CPU gone offline: build where we are, nothing to restore
                cpus = None
        asked = user_ns is None or bool(user_ns.path)  # a new one: asked after the id maps (init)
        if asked:
            # First thing: the parent makes the cgroup while this child loads the init's code.
            protocol.ask_cgroup(child_ch, cgroup_ns is not None and not cgroup_ns.path, new_pid_ns)
        from pyrunc.linux import init as child  # here, not in the parent, which needs none of it

        proctitle.show_init(kernel, container_id)  # not `pyrunc create ...` once create is gone
        keep = [child_ch.fileno(), start_sock.fileno(), note_fd]
        if console_sock_fd is not None:
            keep.append(console_sock_fd)
        recorder = traced_child("init" if new_pid_ns else "stage1", keep)  # born the init, or its parent
        close_fds_except(3 + listen_fds + opts.preserve_fds, keep)
        ctx = child.InitContext(
            cfg,
            container_id,
            child_ch,
            start_sock,
            kernel,
            recorder,
            no_pivot=opts.no_pivot,
            no_new_keyring=opts.no_new_keyring,
            preserve_fds=opts.preserve_fds,
            console_sock_fd=console_sock_fd,
            seccomp_program=seccomp_program,
            listen_fds=listen_fds,
            host_root=host_root,
        )
        ctx.note_fd = note_fd
        ctx.pid_ns_made = new_pid_ns
        ctx.cpus_to_restore = cpus[0] if cpus is not None else None
        if asked:
            ctx.cgroup_asked()
        ctx.recorder.begin(ctx.step)  # the step it is in
        try:
            if child.setup_namespaces(ctx):
                child.container_init(ctx)
            else:
                os._exit(0)
        except BaseException as e:
            ctx.traced_failure(e)
            child.report_failure(ctx, e)

    # On a pure cgroup v2 host the cgroup is made first, and the child born in it.
    try:
        cgroup_fd = requests.cgroup_before_fork()
    except BaseException:
        start_sock.close()
        raise
    try:
        return _spawn(requests, run, start_sock.close, kernel, new_pid_ns, cgroup_fd)
    finally:
        if cgroup_fd is not None:
            os.close(cgroup_fd)


def cpus_apart(kernel: "Kernel") -> "tuple[set[int], set[int]] | None":
    """(every CPU, the CPUs of create's child while it builds the container: all but the
    one the runtime runs on), or None.  The child loads the init's code and builds the
    container while the parent makes the cgroup; a scheduler that packs woken tasks onto
    one CPU (the benchmark VM's does) would run the two in turn.

    Only for a runtime that may run on every CPU: the kernel keeps a mask set with
    sched_setaffinity (since Linux 6.2) and narrows each later cpuset of the process to
    it, so the child's is set back to every CPU (init.InitContext.restore_cpus), which
    narrows nothing, as if it had never been set.  A runtime given fewer CPUs (taskset, a
    cpuset) may carry such a mask of its own, which the child inherits and must keep."""
    mine = os.sched_getaffinity(0)
    every = set(range(os.cpu_count() or 1))
    if mine != every or len(every) < 2:
        return None
    return every, every - {kernel.current_cpu()}


def pid_ns_in_parent(cfg: "Config") -> bool:
    """Whether create makes the container's new pid namespace itself, before its fork,
    so that the first child is the container's init (pid 1) and forks no second
    process.  Not with a user namespace, which must own the pid namespace (the child
    makes both), nor with a new time namespace, whose offsets only a process that then
    forks can write; nor where the runtime itself runs in a user namespace (rootless
    podman's), which cannot setns back to a pid namespace its owner did not make."""
    lx = cfg.linux
    pid = lx.namespace("pid")
    return (
        pid is not None
        and not pid.path
        and lx.namespace("user") is None
        and lx.namespace("time") is None
        and not in_user_namespace()
    )


def spawn_exec(
    cfg: "Config",
    container_id: str,
    init_pid: int,
    init_start: int | None,
    requests: "ExecRequests",
    kernel: "Kernel",
    preserve_fds: int = 0,
    console_sock_fd: int | None = None,
    seccomp_program: bytes | None = None,
) -> Spawned:
    """exec: fork the process that joins the container of the init `init_pid` (started at
    `init_start`) and serve it until it has exec'd (or, paused, has joined the frozen
    cgroup: it execs on resume).  `requests`: a requests.ExecRequests.  The parent's copy
    of `console_sock_fd` is closed once the child has it."""
    from pyrunc.linux import init as child
    from pyrunc.linux import join

    def run(child_ch: Channel, note_fd: int) -> None:
        keep = [child_ch.fileno(), note_fd] + ([console_sock_fd] if console_sock_fd is not None else [])
        recorder = traced_child("exec", keep)
        close_fds_except(3 + preserve_fds, keep)
        ctx = child.InitContext(
            cfg,
            container_id,
            child_ch,
            None,
            kernel,
            recorder,
            no_new_keyring=True,
            preserve_fds=preserve_fds,
            console_sock_fd=console_sock_fd,
            seccomp_program=seccomp_program,
        )
        ctx.create_cwd = False
        ctx.note_fd = note_fd
        ctx.join_frozen_cgroup = requests.paused
        ctx.step = "open the container's namespaces"  # when tracing, its first step
        try:
            target = join.JoinTarget(init_pid, init_start)
            if join.join_container(ctx, target):
                join.exec_in_container(ctx)
            os._exit(0)
        except BaseException as e:
            ctx.traced_failure(e)
            child.report_failure(ctx, e)

    def release() -> None:
        if console_sock_fd is not None:
            os.close(console_sock_fd)

    try:
        pid_ns = join.pid_ns_for_child(cfg, init_pid, init_start)
    except KernelError as e:  # the init is gone: told as the child would tell it
        release()
        raise ContainerError(requests.context, str(e)) from None
    try:
        return _spawn(requests, run, release, kernel, join_pid_ns=pid_ns)
    finally:
        if pid_ns is not None:
            os.close(pid_ns)


def _spawn(
    requests: "CreateRequests | ExecRequests",
    run_child: "Callable[[Channel, int], None]",
    release: "Callable[[], object]",
    kernel: "Kernel",
    new_pid_ns: bool = False,
    cgroup_fd: int | None = None,
    join_pid_ns: int | None = None,
) -> Spawned:
    """Fork; the child runs `run_child(channel, note fd)` and never returns into the
    CLI's code; the parent calls `release()` (what only the child keeps), then serves.
    `new_pid_ns`: the child is born pid 1 of a new pid namespace (pid_ns_in_parent);
    `cgroup_fd`: the cgroup v2 directory it is born in, where the kernel can (clone3);
    `join_pid_ns`: an fd of the existing pid namespace it is born in (exec's
    join.pid_ns_for_child), non-dumpable from birth, as a process there that holds our
    fds must be."""
    parent_ch, child_ch = Channel.pair()
    notes = child_death.StepNotes()
    reaper = child_death.Subreaper(kernel)
    own_pid_ns = None
    dumpable = False  # ours to restore once the child is born non-dumpable
    try:
        if new_pid_ns or join_pid_ns is not None:
            own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        if new_pid_ns:
            kernel.unshare(CLONE_NEWPID)  # for our next child only
        elif join_pid_ns is not None:
            # 1, the usual, is what prctl can set back (not 2, a setuid dump's "root only")
            dumpable = kernel.prctl(PR_GET_DUMPABLE) == 1
            kernel.prctl(PR_SET_DUMPABLE, 0)
            kernel.setns(join_pid_ns, CLONE_NEWPID, "join the container's pid namespace for our next child")
        pid, born_in = _fork(kernel, own_pid_ns, cgroup_fd)
    except BaseException:
        for end in (parent_ch, child_ch, notes):
            end.close()
        if own_pid_ns is not None:
            os.close(own_pid_ns)
        if dumpable:
            kernel.prctl(PR_SET_DUMPABLE, 1)
        reaper.restore()
        release()
        raise
    if own_pid_ns is not None:
        os.close(own_pid_ns)
    if dumpable and pid != 0:
        kernel.prctl(PR_SET_DUMPABLE, 1)
    if pid == 0:
        try:
            parent_ch.close()
            run_child(child_ch, notes.child())
        finally:
            os._exit(1)
    child_ch.close()
    release()
    if cgroup_fd is not None and not born_in:
        requests.not_born_in_cgroup()  # moved in when it asks, as on any other host
    notes.parent()
    served = _Served()
    try:
        _serve(parent_ch, requests, notes, served)
    except child_death.Died:
        raise ContainerError(requests.context, _death(pid, served, notes, requests, kernel)) from None
    except BaseException:
        _kill_and_reap(pid, served.init_pid, kernel, requests.frozen)
        raise
    finally:
        parent_ch.close()
        notes.close()
        if served.init_pid != pid:
            # In the cgroup too when it joined early: a freeze must not stop us here.
            wait_child(pid, requests.frozen_check)
        reaper.restore()
    # Off the critical path now: the launcher's helper, told to end after the last move.
    cgroup_warm_up.stop()
    assert served.init_pid is not None  # served to the end: the child reported its pid
    return Spawned(served.init_pid, served.console)


# clone3 or its CLONE_INTO_CGROUP missing (Linux before 5.7): fork, and move the child later.
_NO_CLONE_INTO_CGROUP = (errno.ENOSYS, errno.E2BIG, errno.EINVAL)


def _fork(kernel: "Kernel", own_pid_ns: int | None, cgroup_fd: int | None = None) -> "tuple[int, bool]":
    """fork: (pid, whether the child was born in the cgroup `cgroup_fd`).  When the child
    was born in a new pid namespace (`own_pid_ns`: an fd of ours), the parent's later
    children (the warm-up, hooks) are the host's again."""
    born_in = False
    try:
        pid = None
        if cgroup_fd is not None:
            try:
                pid = kernel.fork_into_cgroup(cgroup_fd)
                born_in = True
            except KernelError as e:
                if e.errno not in _NO_CLONE_INTO_CGROUP:
                    raise
                log.debug(f"clone3 into the cgroup: {e}; forking and moving the init instead")
        if pid is None:
            pid = kernel.fork()
    except BaseException:
        if own_pid_ns is not None:
            kernel.setns(own_pid_ns, CLONE_NEWPID, "setns back to the runtime's pid namespace")
        raise
    if pid != 0 and own_pid_ns is not None:
        try:
            kernel.setns(own_pid_ns, CLONE_NEWPID, "setns back to the runtime's pid namespace")
        except BaseException:
            _kill(pid)
            wait_child(pid)
            raise
    return pid, born_in


class _Served:
    """What the serving learnt: the host pid of the process that goes on, the pty master."""

    init_pid: int | None = None
    console: int | None = None


def _death(first_child: int, served: _Served, notes: "StepNotes", requests: "Requests", kernel: "Kernel") -> str:
    """One line for a process (or its first child) that died before it reported: where
    it was, how it died, and, when the memory cgroup's OOM killer did it, why."""
    dead = served.init_pid if served.init_pid is not None else first_child
    _kill_and_reap(first_child, served.init_pid, kernel, requests.frozen)  # whichever is still there
    if dead != first_child:
        # Once it is reaped, its orphan, the init, is ours to reap.
        wait_child(first_child, requests.frozen_check)
    status = wait_child(dead, timeout=10.0)
    step = notes.read()
    line: str = requests.died(step, status, served.init_pid)
    log.child_failed(requests.proc, [step] if step else [])
    return line


def traced_child(proc: str, keep: list[int]) -> "StepRecorder | None":
    """In a forked child, when tracing: it is `proc` now, and the trace fd joins `keep`,
    the fds its cleanup spares (the exec closes it: it is close-on-exec).  The recorder
    of its steps: the trace's, or None when not tracing."""
    trace = sys.modules.get("pyrunc.trace")  # imported only when tracing
    tracer = trace.active() if trace is not None else None
    if trace is None or tracer is None:
        return None
    tracer.forked(proc)
    keep.append(tracer.fd)
    recorder: StepRecorder = trace.TracedSteps()
    return recorder


def close_fds_except(first: int, keep: list[int]) -> None:
    """Close every fd from `first` up but those in keep: the state directory's lock, the
    caller's stray fds and anything else of the host's must not follow the container."""
    lo = first
    for fd in sorted(k for k in keep if k >= first) + [1 << 20]:
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1


# The messages of the process that goes on: with a pid or time namespace it is forked by
# the first child, which reports its pid (`init`) while it already runs, so these may
# come before that report; they wait for it.
_NEED_INIT_PID = (protocol.CREATED, protocol.CGROUP_JOINED, protocol.HOOKS, protocol.SECCOMP, protocol.JOIN_PAUSED)


def _serve(
    chan: Channel,
    requests: "CreateRequests | ExecRequests",
    notes: "StepNotes | _NoNotes | None" = None,
    served: _Served | None = None,
) -> "tuple[int | None, int | None]":
    """Answer the child's requests until it is ready: (its pid, pty master or None).
    `served` learns them as they come, for a failure's report; `notes`, the child's steps.
    `requests` answers what its mode accepts (requests.py); anything else is refused."""
    notes = notes or child_death.NO_NOTES
    served = served or _Served()
    early: list[tuple[dict[str, Any], list[int]]] = []  # the messages that came before the pid
    while True:
        if early and served.init_pid is not None:
            msg, fds = early.pop(0)
        else:
            # Once the child is in its cgroup, a freeze would stop it for good: each quiet
            # spell of the wait asks the cgroup (the mode's idle check), and gives up.
            msg, fds = chan.recv(requests.idle())
        kind = msg["type"]
        if kind in _NEED_INIT_PID and served.init_pid is None:
            early.append((msg, fds))
            continue
        if kind == protocol.EOF:
            if requests.done_at_eof():  # exec'd: the channel is close-on-exec
                return served.init_pid, served.console
            raise child_death.Died()
        # The child's step as its request tells; cgroup_joined may come after the last
        # note (the seccomp filter ends them).
        if kind == protocol.CGROUP_JOINED:
            notes.saw("join cgroup")
        else:
            notes.read()
        if kind == protocol.ERROR:
            if msg.get("step") is not None:  # the child's own failure, not a relayed one
                log.child_failed(requests.proc, msg.get("steps"))
            raise ContainerError(requests.context, msg["msg"])
        if kind == protocol.INIT:
            served.init_pid = msg["pid"]
            requests.started(msg["pid"])
            continue
        if kind == protocol.CONSOLE:
            served.console = fds[0]
            continue
        if kind == requests.FINAL:  # `created`: no answer
            requests.finished()
            return served.init_pid, served.console
        try:
            if kind not in requests.REQUESTS:
                requests.unknown(kind)
            fields = requests.answer(kind, msg, fds, chan)
        except Refused as e:
            child_death.answer(chan, protocol.ERROR, msg=str(e))
            raise e.error from None
        except Exception as e:
            child_death.answer(chan, protocol.ERROR, msg=str(e))
            raise
        if fields is not None:
            child_death.answer(chan, protocol.OK, **fields)
        if requests.done(kind):
            return served.init_pid, served.console


def _kill_and_reap(
    first_child: int, init_pid: int | None, kernel: "Kernel", frozen: "Callable[[], bool] | None" = None
) -> None:
    """Kill what was forked; wait until the process that goes on is gone (the first
    child, when another, is reaped by the caller)."""
    for pid in {p for p in (first_child, init_pid) if p is not None}:
        _kill(pid)
    if init_pid is not None:
        wait_exit(kernel, init_pid, frozen=frozen)
