"""The child side of exec: a new process joins a running container and execs in it.

It enters what the container's init has (every namespace that differs from ours, its
root, its cgroup through the parent) and gets the same confinement as the init
(init.setup_process: rlimits, LSM label, no_new_privs, seccomp, capabilities, user,
cwd), then execs.  Until the exec it holds the runtime's fds and runs the host's
interpreter inside the container's pid namespace, so it is non-dumpable from its first
instruction: the container cannot ptrace it or open its /proc/<pid> files.

Protocol (protocol.py, exec mode): init {pid} once the process that will exec exists
(a second fork when a pid or time namespace is joined), when the parent moves it into
the container's cgroup; console + fd for a foreground tty; seccomp + fd for a notify
listener; then cgroup_joined (or, with --ignore-paused, join_paused: moved into the
frozen cgroup only now), its last request; error {step, msg}.  The channel is
close-on-exec, so the parent reads EOF the moment the exec succeeds.
"""

import errno
import os

from pyrunc.errors import KernelError
from pyrunc.linux import init, kernel, namespaces, process, protocol
from pyrunc.linux.program import binfmt_handlers, checked_program, find_executable
from pyrunc.linux.tables import PROC_NS_NAMES

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.config.model import Config
    from pyrunc.linux.init import InitContext


def pid_ns_for_child(cfg: "Config", pid: int, pid_start: int | None) -> int | None:
    """In the runtime, before the fork: an fd of the pid namespace of the container's init
    `pid` (started at `pid_start`) when it is not ours and the runtime's child can be born
    in it (spawn.py joins it for its next child only), so that the child needs no second
    fork to be in it; None when the child forks into it itself: with a user namespace,
    which must be joined first, a time namespace, which also applies to children only, or
    a runtime in a user namespace of its own (as create's pid_ns_in_parent)."""
    from pyrunc.linux import procfs
    from pyrunc.store import in_user_namespace

    lx = cfg.linux
    if lx.namespace("user") is not None or lx.namespace("time") is not None or in_user_namespace():
        return None
    try:
        fd = _their_namespace(pid, PROC_NS_NAMES["pid"])
    except FileNotFoundError:
        raise KernelError(errno.ESRCH, f"open the namespaces of container init {pid}") from None
    if fd is None:
        return None
    # Opened by pid: the same start time afterwards proves it was the init's.
    if not procfs.is_alive_by_proc(pid, pid_start):
        os.close(fd)
        raise KernelError(errno.ESRCH, f"open the namespaces of container init {pid}")
    return fd


def _their_namespace(pid: int, name: str) -> int | None:
    """An fd of process `pid`'s namespace `name` (/proc/<pid>/ns/<name>), None where it is
    ours too; FileNotFoundError where the process is gone."""
    path = f"/proc/{pid}/ns/{name}"
    theirs = os.stat(path)
    ours = os.stat(f"/proc/self/ns/{name}")
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
        return None
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


class JoinTarget:
    """The init's namespaces that differ from ours and its root, opened up front, before
    anything of ours changes how /proc/<pid> resolves; and our own pid as the runtime sees
    it (the host's /proc, still ours, tells it even in the container's pid namespace)."""

    def __init__(self, pid: int, pid_start: int | None) -> None:
        from pyrunc.linux import procfs

        self.ns_fds: list[tuple[str, int]] = []  # [(type, fd)] in namespaces.JOIN_ORDER
        self.root_fd: int | None = None
        self.host_pid = int(os.readlink("/proc/self"))
        try:
            for nstype in namespaces.JOIN_ORDER:
                fd = _their_namespace(pid, PROC_NS_NAMES[nstype])
                if fd is not None:
                    self.ns_fds.append((nstype, fd))
            self.root_fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            # Opened by pid: the same start time afterwards proves it was the init's.
            if not procfs.is_alive_by_proc(pid, pid_start):
                raise KernelError(errno.ESRCH, f"open the namespaces of container init {pid}")
        except FileNotFoundError:
            self.close()
            raise KernelError(errno.ESRCH, f"open the namespaces of container init {pid}") from None
        except BaseException:
            self.close()
            raise

    def types(self) -> set[str]:
        return {nstype for nstype, _ in self.ns_fds}

    def close(self) -> None:
        for _, fd in self.ns_fds:
            os.close(fd)
        self.ns_fds = []
        if self.root_fd is not None:
            os.close(self.root_fd)
            self.root_fd = None


def join_container(ctx: "InitContext", target: JoinTarget) -> bool:
    """Runs in the forked child; returns True in the process that goes on to exec."""
    init.load_process_modules(ctx)  # before any namespace is joined
    ctx.kernel.prctl(kernel.PR_SET_DUMPABLE, 0)
    proc = ctx.cfg.process
    assert proc is not None  # exec always has one
    if proc.exec_cpu_affinity:
        # Before the parent moves us into the cgroup, which it does once we report our
        # pid below; the fork into a pid namespace inherits it.
        ctx.step = "set process.execCPUAffinity.initial"
        from pyrunc.linux import placement  # loaded with the process's modules (load_process_modules)

        placement.set_initial_affinity(ctx.kernel, proc)
    ctx.step = "check LSM support"
    process.check_lsm_support(ctx.cfg.process)  # on the host's /sys, as create does
    ctx.binfmt_handlers = binfmt_handlers()  # the host's, read before we join the mount namespace
    joined = target.types()
    for nstype, fd in target.ns_fds:
        ctx.step = f"join {nstype} namespace"
        ctx.kernel.setns(fd, namespaces.CLONE_FLAGS[nstype], f"join the container's {nstype} namespace")
    # The init's root, not the mount namespace's: they differ for a chroot (--no-pivot,
    # or a container that shares the host's mount namespace).
    ctx.step = "enter the container's root"
    assert target.root_fd is not None  # open until target.close() below
    os.fchdir(target.root_fd)
    ctx.kernel.chroot(".")
    os.chdir("/")
    target.close()
    if joined & {"pid", "time"}:  # both apply to children only
        ctx.step = "fork into the container's pid namespace"
        # The child waits until its host pid is sent: the parent needs it for the
        # child's own requests (the seccomp listener is told the pid).  The child learns
        # it too: its /proc is the container's, which names it by its pid in there.
        told_r, told_w = os.pipe()
        pid = ctx.kernel.fork()
        if pid != 0:
            os.close(told_r)
            ctx.chan.send(protocol.INIT, pid=pid)
            # Our step ends before the child may go on: its records come after ours.
            ctx.traced_exit()
            try:
                os.write(told_w, b"%d" % pid)
            except OSError:  # it died: the runtime sees its channel close
                pass
            os.close(told_w)
            return False
        os.close(told_w)
        host_pid = os.read(told_r, 32)
        os.close(told_r)
        ctx.traced_fork("exec process", int(host_pid) if host_pid else None)
    else:
        # Born in the container's pid namespace (spawn joined it for us: pid_ns_for_child),
        # or sharing ours: no fork; the runtime knows us by our pid in its own.
        ctx.chan.send(protocol.INIT, pid=target.host_pid)
        ctx.traced_fork("exec process", target.host_pid)
    return True


def exec_in_container(ctx: "InitContext") -> None:
    """Set up the joined process as the init sets up its own, then exec."""
    proc = ctx.cfg.process
    assert proc is not None  # exec always has one
    if proc.terminal:
        ctx.step = "set up terminal"
        init.setup_terminal(ctx, console=False)  # /dev/console is the init's
    init.setup_process(ctx)
    ctx.step = "find executable"
    program = checked_program(
        ctx.kernel,
        find_executable(proc.args[0], proc.env),
        ctx.first_closed_fd,
        ctx.binfmt_handlers,
        strict=not ctx.seccomp_early,
    )
    ctx.step = "join cgroup"
    if ctx.join_frozen_cgroup:
        # --ignore-paused: we freeze as we join, so join last, and run on resume.
        ctx.chan.send(protocol.JOIN_PAUSED)
    else:
        # The parent moved us in when we reported our pid (join_container).
        ctx.chan.send(protocol.CGROUP_JOINED)
    ctx.chan.expect_ok()
    init.end_notes(ctx)  # ready: from here the channel's EOF means it exec'd
    if not ctx.seccomp_early:
        init.prepare_fds(ctx)
        init.load_seccomp(ctx)
    init.reset_signals()
    ctx.step = "exec"
    assert ctx.env is not None  # set by setup_process
    ctx.kernel.execve(program, list(proc.args), ctx.env)
