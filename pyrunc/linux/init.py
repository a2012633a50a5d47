"""The container's init: the child side of create, from new namespaces to the user's exec.

`setup_namespaces` runs in the first forked child; `container_init` in the process that
becomes the container (pid 1 of a new pid namespace).  Each step is one function call
in the order the spec and the kernel require; a comment says why wherever the position
matters.  A failure is sent to the parent as {step, msg} and the child exits.
"""

import _signal as signal  # signal.py would import enum
import errno
import os
import stat

from pyrunc import store
from pyrunc.errors import ContainerError, KernelError

# Everything the init needs is imported here, up front: after pivot_root the host's
# files, pyrunc's own included, are out of reach.  The rootfs's modules are create's
# alone: load_modules imports them in its child, before the first namespace; exec's
# process (join.py) does without them.
from pyrunc.linux import (
    capabilities,
    child_death,
    kernel,
    namespaces,
    passed_fds,
    process,
    procfs,
    protocol,
    unix,
)
from pyrunc.linux.program import binfmt_handlers, checked_program, find_executable

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket
    from types import FrameType
    from typing import Any

    from pyrunc.config.model import Config, Linux
    from pyrunc.linux.kernel import Kernel
    from pyrunc.linux.protocol import Channel

# Signals a waiting init must still die from: pid 1 of a pid namespace ignores any
# signal it has no handler for, so `kill` of a created container would do nothing.
_FATAL_WHILE_WAITING = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
)


class StepRecorder:
    """Where a child's steps go besides its context: nowhere (this one, NO_STEPS), or the
    step trace (trace.TracedSteps), which InitContext is given when tracing."""

    def begin(self, name: str) -> None:
        """A step `name` begins, none being under way."""

    def next(self, name: str) -> None:
        """The step under way ends, and `name` begins."""

    def forked(self, proc: str, pid: int | None, step: str) -> None:
        """This process is `proc` now, in `step`; `pid`: its host pid, or None."""

    def failure(self, exc: BaseException) -> None:
        """The step under way failed with exc."""

    def exit(self) -> None:
        """This process exits: the step under way ends."""


NO_STEPS = StepRecorder()


class InitContext:
    """What the child needs besides the config: options, channel and inherited fds."""

    def __init__(
        self,
        cfg: "Config",
        container_id: str,
        chan: "Channel",
        start_sock: "socket | None",
        kernel: "Kernel",
        recorder: StepRecorder | None = None,
        no_pivot: bool = False,
        no_new_keyring: bool = False,
        preserve_fds: int = 0,
        console_sock_fd: int | None = None,
        seccomp_program: bytes | None = None,
        listen_fds: int = 0,
        host_root: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.kernel = kernel  # every kernel call of the child goes through it (kernel.Kernel)
        self.recorder = recorder or NO_STEPS  # the step trace's StepRecorder when tracing
        self.id = container_id
        self.bundle = cfg.bundle
        self.chan = chan
        self.start_sock = start_sock
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.listen_fds = listen_fds  # socket activation fds, passed ahead of preserve_fds
        self.console_sock_fd: int | None = console_sock_fd
        self.seccomp_program = seccomp_program  # compiled by the parent (seccomp.program_for)
        self.steps = ["start init"]  # the last few, sent with a failure for the --log line
        self.note_fd: int | None = None  # where each step is noted for the parent (child_death.StepNotes)
        self.env: dict[str, str] | None = None  # the environment for execve, set once the user is known
        # {hierarchy: the container's cgroup in it}, from the parent's answer to the cgroup
        # request (None: asked, the answer not yet read: cgroup_paths reads it).
        self._cgroup_paths: dict[str, str] | None = {}
        self.cgroup_joined = True  # False while the parent has yet to move the init in
        self.binfmt_handlers: list[tuple[str, str]] = []  # the host's that resolve their interpreter at exec time
        self.create_cwd = True  # exec opens an existing one only
        self.join_frozen_cgroup = False  # exec --ignore-paused: joined just before the exec
        lx = cfg.linux
        self.new_userns = _is_new(lx, "user")
        self.in_userns = lx.namespace("user") is not None
        # mknod is refused in any user namespace but the initial one: the config's, or the
        # one the runtime itself runs in (rootless podman calls it as root of the user's).
        # create's alone: load_modules sets it, before the first namespace.
        self.bind_devices = self.in_userns
        self.new_cgroupns = _is_new(lx, "cgroup")
        self.new_netns = _is_new(lx, "network")
        # Neither new nor joined: the root is built in the runtime's own mount namespace,
        # bound on `host_root`, an empty directory the parent made for it.
        self.host_mount_ns = lx.namespace("mount") is None
        self.host_root = host_root
        self.mount_label = lx.mount_label  # linux.mountLabel, for rootfs.do_mount
        self.mount_sources: dict[int, int] = {}  # {config index: O_PATH fd} of bind sources the runtime opened
        # Made before any namespace: a runtime without root (rootless) has nothing more
        # than the container's root to open the bind sources with.
        self.runtime_is_root = os.geteuid() == 0
        self.host_pid = 0  # our pid as the runtime sees it, once the root is built
        self.pid_ns_made = False  # born pid 1 of the new pid namespace the runtime made
        self.cpus_to_restore: set[int] | None = None  # every CPU: allowed again once built (spawn.cpus_apart)

    @property
    def cgroup_paths(self) -> dict[str, str]:
        """The container's cgroup as the host sees it (/proc/self/cgroup cannot tell once
        a cgroup namespace has been joined); the answer to ask_cgroup, read when first
        needed, so that the parent makes the cgroup while this child works on."""
        self.await_cgroup()
        assert self._cgroup_paths is not None
        return self._cgroup_paths

    def await_cgroup(self) -> None:
        """Wait for the parent's answer to the cgroup request, if not read yet."""
        if self._cgroup_paths is None:
            self._cgroup_paths = self.chan.answer_to(protocol.CGROUP).get("paths") or {}

    def restore_cpus(self) -> None:
        """Back on every CPU (spawn.cpus_apart) once the container is built: before a
        hook or the container's program, and a seccomp filter, which may deny the call."""
        if self.cpus_to_restore is not None:
            cpus, self.cpus_to_restore = self.cpus_to_restore, None
            self.kernel.sched_setaffinity(0, cpus, "restore the runtime's CPU affinity")

    def cgroup_asked(self) -> None:
        """The cgroup request was sent (ask_cgroup); its answer is read when needed."""
        self._cgroup_paths = None

    @property
    def step(self) -> str:
        """The step under way: it names a failure."""
        return self.steps[-1]

    @step.setter
    def step(self, name: str) -> None:
        if len(self.steps) > 8:
            del self.steps[:-4]
        self.recorder.next(name)
        self.steps.append(name)
        if self.note_fd is not None:  # should this process die without a word
            child_death.note(self.note_fd, name)

    # What the step trace hears of the child (the recorder: no-ops unless tracing).
    def traced_fork(self, proc: str, pid: int | None = None) -> None:
        """This process is `proc` now ("init" once it becomes the container's init);
        `pid`: its host pid, when the host's /proc is out of view."""
        self.recorder.forked(proc, pid, self.step)

    def traced_failure(self, exc: BaseException) -> None:
        """The current step failed with exc."""
        self.recorder.failure(exc)

    def traced_exit(self) -> None:
        """This process exits: its current step ends."""
        self.recorder.exit()

    @property
    def seccomp_early(self) -> bool:
        """Whether the filter goes in before the switch to the user (no no_new_privs)."""
        proc = self.cfg.process  # there is one wherever a filter was compiled
        return self.seccomp_program is not None and proc is not None and not proc.no_new_privileges

    @property
    def first_closed_fd(self) -> int:
        """Fds from this one on never reach the container."""
        return 3 + self.listen_fds + self.preserve_fds


def _is_new(linux: "Linux", nstype: str) -> bool:
    ns = linux.namespace(nstype)
    return ns is not None and not ns.path


def report_failure(ctx: InitContext, exc: BaseException) -> None:
    msg = str(exc) if not isinstance(exc, KernelError) else exc.args[1]
    try:
        ctx.chan.send(protocol.ERROR, step=ctx.step, msg=msg or type(exc).__name__, steps=ctx.steps[-4:])
        # The parent may still be making the cgroup we asked for: once its answer has
        # reached us, it reads this error; had we exited first, it would see only a death.
        ctx.chan.read_owed()
    except (OSError, protocol.ProtocolError):
        pass


# --- stage 1: namespaces ---------------------------------------------------------------


def load_modules(ctx: InitContext) -> None:
    """Import what only some configs need, before the first namespace: in a new user
    namespace the mapped root may not reach pyrunc's files (an install under a 0700
    directory), and after pivot_root nothing of the host's is in reach."""
    cfg, lx = ctx.cfg, ctx.cfg.linux
    load_process_modules(ctx)
    ctx.bind_devices = ctx.in_userns or store.in_user_namespace()  # our uid_map, not the container's
    from pyrunc.linux import devices, mounts, paths, proc_writes, rootfs  # noqa: F401  (the rootfs)

    if cfg.hooks.create_container or cfg.hooks.start_container:
        from pyrunc.linux import hooks  # noqa: F401  (_setup_rootfs, _wait_for_start_and_exec)
    if cfg.hooks.start_container:
        import subprocess  # noqa: F401  (the startContainer hooks run after pivot_root)
    if ctx.new_netns or lx.net_devices:
        from pyrunc.linux import network  # noqa: F401  (container_init)
    if ctx.in_userns and ctx.runtime_is_root:
        from pyrunc.linux import mount_sources  # noqa: F401  (setup_namespaces)
    if any(m.type == "cgroup" for m in cfg.mounts):
        from pyrunc.linux import cgroupfs  # noqa: F401  (rootfs)


def load_process_modules(ctx: InitContext) -> None:
    """What only some processes need, create's init and exec's alike: a terminal's
    (1 ms: termios, struct, fcntl), the seccomp filter's and a CPU or memory placement's,
    imported before the first namespace is made or joined; and the kernel's last
    capability number."""
    proc = ctx.cfg.process
    # Read now, from the host's /proc, and kept: what the capability sets are built
    # against never comes from a file the container could mount over.
    capabilities.last_cap()
    if proc is not None and proc.terminal:
        from pyrunc.linux import terminal  # noqa: F401  (setup_terminal)
    if ctx.cfg.linux.memory_policy or (proc is not None and proc.exec_cpu_affinity):
        from pyrunc.linux import placement  # noqa: F401  (setup_process, join.py)
    if ctx.seccomp_program is not None:
        from pyrunc.linux import seccomp  # noqa: F401  (load_seccomp)


def setup_namespaces(ctx: InitContext) -> bool:
    """Join, then create, the container's namespaces; return True in the container's init.

    Runs in the first child.  When a pid or time namespace is involved it forks the init,
    reports its pid and exits (returns False); otherwise it becomes the init itself.
    """
    lx = ctx.cfg.linux
    load_modules(ctx)
    ctx.step = "check LSM support"
    # Checked here, on the host's /sys: the container's own /sys cannot tell.
    process.check_lsm_support(ctx.cfg.process)
    process.check_mount_label(lx.mount_label)
    ctx.step = "open namespaces"
    # Join every namespace given by path before creating any, user first, as runc does:
    # once in a new user namespace, the namespaces the host owns can no longer be joined.
    for nstype, fd in namespaces.open_joined(lx):
        ctx.step = f"join {nstype} namespace"
        joined = lx.namespace(nstype)
        assert joined is not None and joined.path  # open_joined yields the joined ones
        namespaces.join(ctx.kernel, nstype, fd, joined.path)
    if ctx.new_userns:
        ctx.step = "create user namespace"
        ctx.kernel.unshare(kernel.CLONE_NEWUSER)
        # Only the parent, in the host's user namespace, may write our id maps.
        ctx.chan.send(protocol.IDMAP, pid=os.getpid())
        ctx.chan.expect_ok()
    if ctx.in_userns:
        ctx.step = "become root in the user namespace"
        ctx.kernel.setresgid(0)
        ctx.kernel.setresuid(0)
        # The uid change made us non-dumpable, which hands /proc/self to host root and
        # makes timens_offsets unwritable; cleared again before the init is forked.
        ctx.kernel.prctl(kernel.PR_SET_DUMPABLE, 1)
    if ctx.new_userns:  # asked only now (else first thing, spawn): the parent serves the id maps first
        protocol.ask_cgroup(ctx.chan, ctx.new_cgroupns, ctx.pid_ns_made)
        ctx.cgroup_asked()
    ctx.cgroup_joined = ctx.new_cgroupns
    if ctx.new_cgroupns:
        # In the cgroup before unsharing the cgroup namespace, whose root is our cgroup then.
        ctx.step = "join cgroup"
        ctx.await_cgroup()  # the parent has moved us once it answers
    ctx.step = "create namespaces"
    flags = namespaces.new_flags(lx, exclude=("user", "pid") if ctx.pid_ns_made else ("user",))
    if flags:
        ctx.kernel.unshare(flags)
    if _is_new(lx, "time"):
        ctx.step = "write time namespace offsets"
        namespaces.write_time_offsets(lx.time_offsets)
    if ctx.in_userns and ctx.runtime_is_root:
        # Our mapped root may not reach a bind's source: the runtime opens them for us,
        # in our mount namespace, with the host's privileges.
        from pyrunc.linux import mount_sources

        sources = mount_sources.wanted(ctx.cfg)
        if sources:
            ctx.step = "open mount sources"
            ctx.chan.send(protocol.MOUNT_SOURCES, pid=os.getpid())
            ctx.mount_sources = mount_sources.receive(ctx.chan, sources)
    if ctx.in_userns:
        # Before the init exists, not first thing in it: from its report on, a process
        # that shares its pid namespace can look for it in /proc (CVE-2016-9962).
        ctx.kernel.prctl(kernel.PR_SET_DUMPABLE, 0)
    if ctx.pid_ns_made:  # born pid 1 of it (spawn.pid_ns_in_parent): the init already
        ctx.chan.send(protocol.INIT, pid=procfs.own_host_pid())
        return True
    if not namespaces.needs_child(lx):
        ctx.chan.send(protocol.INIT, pid=os.getpid())
        ctx.traced_fork("init")
        return True
    ctx.step = "fork container init"
    pid = ctx.kernel.fork()
    if pid == 0:
        ctx.traced_fork("init")
        return True
    ctx.chan.send(protocol.INIT, pid=pid)
    ctx.traced_exit()
    return False


# --- stage 2: the container's init -----------------------------------------------------


def container_init(ctx: InitContext) -> None:
    """Build the container around this process, report `created`, wait for start, exec."""
    cfg, lx, proc = ctx.cfg, ctx.cfg.linux, ctx.cfg.process
    # The container must never ptrace or open /proc/<pid> of a runtime process that still
    # holds host fds; exec of the user's program makes it dumpable again.
    ctx.kernel.prctl(kernel.PR_SET_DUMPABLE, 0)
    if ctx.new_netns:
        ctx.step = "bring up lo"
        from pyrunc.linux import network  # loaded before any namespace (load_modules)

        network.bring_up(ctx.kernel, "lo")
    if lx.net_devices:
        # Before the rootfs: a sysfs mounted in it then shows the devices.  The runtime,
        # in the host's namespace, moves them; it acts in ours through this socket.
        ctx.step = "move network devices"
        from pyrunc.linux import network

        sock = network.netlink_socket()
        try:
            ctx.chan.send(protocol.NETDEVICES, fds=[sock.fileno()])
        finally:
            sock.close()
        ctx.chan.expect_ok()
    from pyrunc.linux import paths, proc_writes, rootfs  # loaded before any namespace (load_modules)

    ctx.binfmt_handlers = binfmt_handlers()  # the host's, in view until pivot_root
    _setup_rootfs(ctx)
    if cfg.terminal:
        ctx.step = "set up terminal"
        setup_terminal(ctx)
    else:
        ctx.step = "reopen /dev/null"
        reopen_dev_null()
    ctx.step = "finalize rootfs"
    if cfg.root_readonly:
        rootfs.remount_root_readonly(ctx.kernel)
    if lx.sysctl:
        ctx.step = "write sysctls"
        proc_writes.write_sysctls(ctx.kernel, lx.sysctl)
    ctx.step = "mask paths"
    if lx.readonly_paths or lx.masked_paths:
        pinned = rootfs.pin_kernel_mounts(ctx.kernel, cfg.mounts)
        try:
            with paths.procfs_pinned(pinned.get("/proc")):
                rootfs.readonly_paths(ctx.kernel, lx.readonly_paths, pinned)
                rootfs.mask_paths(ctx.kernel, lx.masked_paths, pinned)
        finally:
            rootfs.unpin(pinned)
    # Last: an unbindable root would refuse the binds of the steps above.
    ctx.step = "set rootfs propagation"
    rootfs.apply_root_propagation(ctx.kernel, lx.rootfs_propagation)
    if cfg.hostname is not None and _is_new(lx, "uts"):
        ctx.step = "set hostname"
        ctx.kernel.sethostname(cfg.hostname)
    if cfg.domainname is not None and _is_new(lx, "uts"):
        ctx.step = "set domainname"
        ctx.kernel.setdomainname(cfg.domainname)
    ctx.restore_cpus()
    if proc is None:
        # The spec lets a container be created without a process; its `start` fails.
        program = None
        prepare_fds(ctx)
    else:
        setup_process(ctx)
        ctx.step = "find executable"
        path = find_executable(proc.args[0], proc.env)
        program = checked_program(
            ctx.kernel, path, ctx.first_closed_fd, ctx.binfmt_handlers, strict=not ctx.seccomp_early
        )
        if not ctx.seccomp_early:
            prepare_fds(ctx)
            # As late as can be, so that little of our own work must pass the filter; with
            # no_new_privs no privilege is needed to load it.
            load_seccomp(ctx)
    wait_for_cgroup(ctx)
    ctx.chan.send(protocol.CREATED)
    ctx.chan.close()
    end_notes(ctx)
    _wait_for_start_and_exec(ctx, program)


def reopen_dev_null() -> None:
    """Stdio that is the host's /dev/null (conmon gives it to a container without stdin)
    becomes the container's own, as runc does: CRIU cannot checkpoint a file of a mount
    outside the container.  Only a character device with /dev/null's numbers replaces it
    (opened without blocking: a FIFO planted there must not hang the init)."""
    for n in range(3):
        try:
            given = os.fstat(n)
        except OSError:
            continue
        if not stat.S_ISCHR(given.st_mode) or given.st_rdev != os.makedev(1, 3):
            continue
        try:
            fd = os.open("/dev/null", os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return  # no /dev/null of its own: the stdio stays as given
        try:
            own = os.fstat(fd)
            same = (own.st_dev, own.st_ino) == (given.st_dev, given.st_ino)
            if stat.S_ISCHR(own.st_mode) and own.st_rdev == given.st_rdev and not same:
                os.set_blocking(fd, True)
                os.dup2(fd, n)
        finally:
            os.close(fd)


def end_notes(ctx: InitContext) -> None:
    """The parent stops reading the step notes once the process is ready; a later write
    would find the pipe closed, and, once the signals are reset, SIGPIPE would kill."""
    if ctx.note_fd is not None:
        os.close(ctx.note_fd)
        ctx.note_fd = None


def wait_for_cgroup(ctx: InitContext) -> None:
    """Return once the parent has put this process in the container's cgroup."""
    ctx.restore_cpus()  # first: hooks follow
    if not ctx.cgroup_joined:
        ctx.step = "join cgroup"
        ctx.chan.send(protocol.CGROUP_JOINED)
        ctx.chan.expect_ok()
        ctx.cgroup_joined = True


def _setup_rootfs(ctx: InitContext) -> None:
    from pyrunc.linux import devices, mounts, paths, rootfs  # loaded before any namespace (load_modules)

    cfg, lx = ctx.cfg, ctx.cfg.linux
    ctx.step = "prepare rootfs"
    root = cfg.root_path
    if ctx.host_mount_ns:
        assert ctx.host_root is not None  # made by the parent for this case
        root = ctx.host_root
        rootfs.bind_root_in_host_namespace(ctx.kernel, cfg.root_path, root)
    else:
        rootfs.prepare_root(ctx.kernel, root, lx.rootfs_propagation)
    make_devices = not devices.dev_is_bind_mounted(cfg.mounts)
    written_later = devices.paths_made(lx.devices) if make_devices else []
    if cfg.terminal:
        written_later.append("/dev/console")
    # A read-only mount with more to make under it (a read-only /dev) is made read-only
    # once that is done.
    later = mounts.ReadonlyLater(ctx.kernel, cfg.mounts, written_later)
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for m in cfg.mounts:
            ctx.step = f"mount {m.destination}"
            rootfs.do_mount(root_fd, m, ctx, later)
        if make_devices:
            ctx.step = "create devices"
            devices.create_default_devices(ctx.kernel, root_fd, lx.devices, ctx.bind_devices)
            devices.create_links(ctx.kernel, root_fd)
        if cfg.terminal:
            ctx.step = "create /dev/console"
            paths.make_file(ctx.kernel, root_fd, "/dev/console", 0o600)
        if later.held:
            ctx.step = "make mounts read-only"
            later.finish()
    finally:
        later.close()
        os.close(root_fd)
        while ctx.mount_sources:  # those of entries that failed before their bind
            os.close(ctx.mount_sources.popitem()[1])
    # The hooks' state names the init by its host pid; after pivot_root /proc is the container's.
    ctx.host_pid = procfs.own_host_pid()
    hooks = cfg.hooks
    if hooks.prestart or hooks.create_runtime or hooks.create_container:
        wait_for_cgroup(ctx)  # the hooks see the container in its cgroup
    if hooks.prestart or hooks.create_runtime:
        ctx.step = "run createRuntime hooks"
        ctx.chan.send(protocol.HOOKS)
        ctx.chan.expect_ok()
    if hooks.create_container:
        ctx.step = "run createContainer hooks"
        from pyrunc.linux import hooks as hookrun  # loaded before the first namespace (load_modules)

        # In the rootfs, as runc runs them: `mount --bind ... ./lib/x` works.
        hookrun.run_hooks("createContainer", hooks, _hook_state(ctx, "creating"), cwd=root)
    ctx.step = "chroot" if ctx.host_mount_ns else "pivot_root"
    if ctx.host_mount_ns:
        # Whatever --no-pivot says: pivot_root and MS_MOVE would move the host's own "/".
        rootfs.chroot_root(ctx.kernel, root)
    elif ctx.no_pivot:
        rootfs.move_root(ctx.kernel, cfg.root_path)
    else:
        rootfs.pivot_root(ctx.kernel, cfg.root_path)


def _hook_state(ctx: InitContext, status: str) -> "dict[str, Any]":
    from pyrunc import OCI_VERSION

    state = {"ociVersion": OCI_VERSION, "id": ctx.id, "status": status, "pid": ctx.host_pid, "bundle": ctx.bundle}
    if ctx.cfg.annotations:
        state["annotations"] = ctx.cfg.annotations
    return state


def setup_terminal(ctx: InitContext, console: bool = True) -> None:
    """A new pty from the container's devpts: the slave becomes our controlling tty and
    stdio (and, for the init, /dev/console); the master goes to the console socket or,
    in the foreground, to the parent."""
    from pyrunc.linux import terminal  # loaded before the first namespace (load_process_modules)

    proc = ctx.cfg.process
    assert proc is not None  # called only for a config with a process
    master, _ = terminal.open_pty()
    try:
        if proc.console_size:
            terminal.set_size(master, *proc.console_size)
        slave = terminal.open_peer(master)
        try:
            terminal.give_to_user(slave, proc.user.uid)
            if console:
                _bind_console(ctx.kernel, slave)
            terminal.become_session_leader_on(slave)
        finally:
            os.close(slave)
        if ctx.console_sock_fd is not None:
            terminal.send_to_console_socket(ctx.console_sock_fd, master)
            ctx.console_sock_fd = None
        else:
            ctx.chan.send(protocol.CONSOLE, fds=[master])
    finally:
        os.close(master)


def _bind_console(k: "Kernel", slave: int) -> None:
    """/dev/console (created empty before the pivot) becomes the pty too; checked after the
    bind, which goes through the container's /proc, to be that very pty."""
    from pyrunc.linux import paths  # loaded before any namespace (load_modules)

    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        console = paths.open_in_root(k, root, "/dev/console")
        try:
            k.mount(paths.fd_path(slave), paths.fd_path(console), None, kernel.MS_BIND, None)
        finally:
            os.close(console)
        console = paths.open_in_root(k, root, "/dev/console")
    finally:
        os.close(root)
    try:
        st, want = os.fstat(console), os.fstat(slave)
    finally:
        os.close(console)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != want.st_rdev:
        raise KernelError(errno.EPERM, "bind the pty on /dev/console: the result is not the pty")


def setup_process(ctx: InitContext) -> None:
    proc, lx = ctx.cfg.process, ctx.cfg.linux
    assert proc is not None  # called only for a config with a process
    if not proc.terminal:  # with a terminal, setup_terminal made the session already
        ctx.step = "create session"
        process.new_session()
    if not ctx.no_new_keyring:
        ctx.step = "create session keyring"
        process.new_session_keyring(ctx.kernel, ctx.id)
    if proc.oom_score_adj is not None:
        ctx.step = "set oom_score_adj"
        process.set_oom_score_adj(ctx.kernel, proc.oom_score_adj)
    ctx.step = "set rlimits"
    process.set_rlimits(ctx.kernel, proc.rlimits)
    if lx.personality:
        ctx.step = "set personality"
        process.set_personality(ctx.kernel, lx.personality)
    if proc.scheduler:
        ctx.step = "set scheduler"
        process.set_scheduler(ctx.kernel, proc.scheduler)
    if proc.io_priority:
        ctx.step = "set I/O priority"
        process.set_io_priority(ctx.kernel, proc.io_priority)
    if lx.memory_policy:
        # Before seccomp, which may deny set_mempolicy; inherited by the exec'd program.
        ctx.step = "set memory policy"
        from pyrunc.linux import placement  # imported before pivot_root (container_init, join.py)

        placement.set_memory_policy(ctx.kernel, lx.memory_policy)
    if proc.apparmor_profile:
        ctx.step = "set apparmor profile"
        process.set_apparmor_profile(ctx.kernel, proc.apparmor_profile)
    if proc.selinux_label:
        ctx.step = "set selinux label"
        process.set_selinux_label(ctx.kernel, proc.selinux_label)
    # no_new_privs before the uid switch and capabilities: it can only be set, never lost.
    if proc.no_new_privileges:
        ctx.step = "set no_new_privs"
        process.set_no_new_privileges(ctx.kernel)
    # As root, before the switch to the user: runc creates a missing cwd too (not for exec),
    # and enters it as root, so a cwd the user cannot search still works; before the
    # seccomp filter too, which may deny fchdir.
    ctx.step = f"create cwd {proc.cwd}" if ctx.create_cwd else f"open cwd {proc.cwd}"
    opened = process.make_cwd(ctx.kernel, proc.cwd) if ctx.create_cwd else process.open_cwd(ctx.kernel, proc.cwd)
    ctx.step = f"chdir {proc.cwd}"
    cwd_fd = process.enter_cwd_as_root(proc.cwd, opened)  # None once entered
    if ctx.seccomp_early:
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before it is dropped.
        # The filter may deny the openat2 the program check needs: check first, as root.
        ctx.step = "find executable"
        checked_program(ctx.kernel, find_executable(proc.args[0], proc.env), ctx.first_closed_fd, ctx.binfmt_handlers)
        # close_range too: every fd Python opens from here on is close-on-exec already.
        prepare_fds(ctx)
        load_seccomp(ctx)
    # Bounding set while we still have CAP_SETPCAP; then the user; then the other sets.
    ctx.step = "drop bounding capabilities"
    capabilities.drop_bounding(ctx.kernel, proc.capabilities)
    ctx.step = f"set user {proc.user.uid}:{proc.user.gid}"
    process.switch_user(ctx.kernel, proc.user)
    ctx.step = "set capabilities"
    capabilities.apply(ctx.kernel, proc.capabilities)
    if cwd_fd is not None:
        # Root was refused (an owner the user namespace does not map): the user may be let in.
        ctx.step = f"chdir {proc.cwd}"
        process.change_to_cwd(proc.cwd, cwd_fd)
    # runc's default when the config sets none; the caller's umask must not leak in.
    os.umask(proc.user.umask if proc.user.umask is not None else 0o022)
    ctx.env = process.exec_env(proc, ctx.listen_fds)


def load_seccomp(ctx: InitContext) -> None:
    if ctx.seccomp_program is None:
        return
    from pyrunc.linux import seccomp  # loaded before the first namespace (load_process_modules)

    ctx.step = "load seccomp filter"
    # The filter may forbid write(2): no more notes; the parent knows the later steps
    # from the requests that follow (cgroup_joined).
    end_notes(ctx)
    profile = ctx.cfg.linux.seccomp
    assert profile is not None  # the program was compiled from it
    listener = ctx.kernel.seccomp_set_filter(seccomp.load_flags(profile), ctx.seccomp_program)
    if seccomp.uses_notify(profile):
        ctx.step = "send seccomp notify fd"
        try:
            ctx.chan.send(protocol.SECCOMP, fds=[listener])
        finally:
            os.close(listener)
        ctx.chan.expect_ok()


def prepare_fds(ctx: InitContext) -> None:
    """Only stdio, LISTEN_FDS and --preserve-fds may reach the container (CVE-2016-9962,
    CVE-2024-21626)."""
    ctx.step = "close fds"
    for fd in range(3, ctx.first_closed_fd):
        if fd in passed_fds.placeholders:
            continue  # a number the caller left unused: it stays close-on-exec
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass
    ctx.kernel.close_range_cloexec(ctx.first_closed_fd)


def _wait_for_start_and_exec(ctx: InitContext, program: str | int | None) -> None:
    """`program`: checked_program's answer, a path or an fd to run."""
    proc = ctx.cfg.process
    for sig in _FATAL_WHILE_WAITING:
        signal.signal(sig, _exit_on_signal)
    ctx.step = "wait for start"
    assert ctx.start_sock is not None  # create's init has one
    conn = _accept_start(ctx.start_sock)
    try:
        if proc is None:
            raise ContainerError(None, "config.json sets no process: there is nothing to start")
        ctx.step = "run startContainer hooks"
        if ctx.cfg.hooks.start_container:
            from pyrunc.linux import hooks as hookrun  # loaded before the first namespace (load_modules)

            # In process.cwd, where setup_process left us, as runc runs them.
            hookrun.run_hooks("startContainer", ctx.cfg.hooks, _hook_state(ctx, "created"), cwd=None)
        ctx.step = "exec"
        reset_signals()
        if isinstance(program, str):
            # Again: what create checked may have been swapped since by a writer of the
            # rootfs (the create-time check stays, to fail create).
            program = checked_program(ctx.kernel, program, ctx.first_closed_fd, ctx.binfmt_handlers, strict=False)
        assert program is not None and ctx.env is not None  # set up with the process
        ctx.kernel.execve(program, list(proc.args), ctx.env)
    except Exception as e:  # reported to `start`, whose connection this is
        ctx.traced_failure(e)
        msg = e.args[1] if isinstance(e, KernelError) else str(e)
        if ctx.step == "exec" or isinstance(e, ContainerError):  # these name what failed
            reply = msg
        else:
            reply = f"{ctx.step}: {msg}"
        try:
            conn.sendall(reply.encode())
        except OSError:
            pass
        os._exit(127)


def reset_signals() -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and exec keeps ignored signals ignored: give
    the user's program the default disposition of every signal, and none blocked."""
    for sig in range(1, signal.NSIG):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _accept_start(listener: "socket") -> "socket":
    """The connection of a `start` that asked us to go on: one that closes before
    sending its byte (its `start` died) is not a start."""
    while True:
        conn = unix.accept(listener)
        if conn.recv(1):
            listener.close()
            return conn
        conn.close()


def _exit_on_signal(signum: int, frame: "FrameType | None") -> None:
    os._exit(128 + signum)
