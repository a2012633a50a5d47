"""The container lifecycle (runtime.md): creating -> created -> running -> stopped.

Each operation locks the container's state directory, checks the state it needs, and
calls into pyrunc.linux for the mechanics.  No raw kernel calls here.
"""

import os
import time

from pyrunc import jsonc, log

# delete, and create's undoing of a failed create: in their own module, which delete
# imports without os or this one
from pyrunc.deletion import _detach_host_mounts, _remove_cgroup, _remove_rdt, delete  # noqa: F401 -- delete: re-exported
from pyrunc.errors import ConfigError, ContainerError, PyruncError, StateError, one_line
from pyrunc.linux import procfs

# kill, and the container's cgroup manager: in their own module, which kill imports without os
from pyrunc.signalling import cgroup_manager  # noqa: F401 -- re-exported

# start: in its own module, which start imports without os or this one
from pyrunc.starting import (  # noqa: F401 -- start, stopped_by_freezer, frozen_message: re-exported
    START_SOCKET,
    frozen_message,
    kill_and_wait,
    start,
    stopped_by_freezer,
)

# The read side of the state machine, in its own module for state and list.
from pyrunc.status import CREATED, PAUSED, RUNNING, status_of  # noqa: F401 -- re-exported

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.config.model import Config
    from pyrunc.linux import Seams
    from pyrunc.linux.kernel import Kernel
    from pyrunc.linux.spawn import Spawned
    from pyrunc.options import CreateOptions
    from pyrunc.store import ContainerDir, State, Store

HOST_NS_MOUNT_POINT = "rootfs"  # in the state directory: the mount point of a host-namespace rootfs
CONFIG_COPY = "config.json"  # the validated config, for exec


def _iso_now() -> str:
    """Go's RFC3339Nano, as runc writes `created`: trailing zeros of the fraction dropped."""
    ns = time.time_ns()
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + (f".{frac}" if frac else "") + "Z"


def cgroup_path(cfg: "Config", cid: str, systemd: bool = False) -> str:
    """The container's cgroup, relative to each hierarchy's root.

    With --systemd-cgroup, cgroupsPath is runc's `slice:prefix:name`: the cgroup of the
    systemd unit the container gets, /<slice tree>/<prefix>-<name>.scope
    (cgroups/systemd_props.py has the rules).
    """
    path = cfg.linux.cgroups_path or ""
    if not systemd:
        return path or cid  # runc's default: the id, under the caller's own cgroup
    from pyrunc.linux.cgroups import systemd_props

    try:
        return systemd_props.parse_path(path, cid).path
    except ValueError as e:
        raise ConfigError([f"linux.cgroupsPath: {e}"]) from None


def create(store: "Store", cid: str, opts: "CreateOptions", seams: "Seams") -> "tuple[State, Spawned]":
    """Create a container as `opts` (an options.CreateOptions) say; returns (its State,
    Spawned).  `seams`: the command's linux.Seams (its kernel and cgroup files).

    On any failure nothing is left: the forked processes are killed and the state
    directory removed; the error reads `create ID: <cause>`.
    """
    from pyrunc.config import model, validate
    from pyrunc.store import State, check_id

    check_id(cid)
    opts.check_preserve_fds()
    bundle = os.path.abspath(opts.bundle)
    with log.step("validate config"):
        doc = validate.load_config(bundle)
        from pyrunc import notify

        notify_caller = notify.caller_socket() if doc.get("process") else None
        cfg = model.from_dict(
            notify.add_to_config(doc, os.path.join(store.root, cid)) if notify_caller else doc, bundle
        )
        opts.check_terminal(cfg.terminal, opts.foreground)
    cgroup = cgroup_path(cfg, cid, opts.systemd_cgroup)
    if opts.systemd_cgroup:
        from pyrunc.linux.cgroups import systemd

        try:
            systemd.require_systemd()  # before anything is made
        except PyruncError as e:
            raise ContainerError(f"create {cid}", str(e)) from None
    st = State(cid, bundle, cfg.root_path, _iso_now(), cfg.annotations, doc.get("hooks") or {}, cgroup, notify_caller)
    log.debug(f"create {cid}: bundle {bundle}")
    if cfg.linux.intel_rdt is not None:
        from pyrunc.linux import resctrl

        try:
            resctrl.check_host(cfg.linux.intel_rdt)
        except ContainerError as e:
            raise ContainerError(f"create {cid}", str(e)) from None
    if cfg.linux.net_devices:
        # What the runtime's namespace alone can tell, before anything is made; the
        # move checks it all again, with the container's namespace.
        from pyrunc.linux import netdevices

        try:
            netdevices.check_host(cfg.linux.net_devices)
        except ContainerError as e:
            raise ContainerError(f"create {cid}", str(e)) from None
    if os.geteuid() != 0:  # rootless: what it cannot build, refused before anything is made
        from pyrunc.linux import rootless

        try:
            rootless.check_config(cfg)
        except PyruncError as e:
            raise ContainerError(f"create {cid}", str(e)) from None
    with log.step("create state"):
        # exec builds its process from the config's copy, validated now, whatever the bundle becomes.
        cdir = store.create(cid, st, {CONFIG_COPY: jsonc.dumps(doc).encode()})
    spawned = console_fd = handler = None
    left = None
    try:
        if notify_caller:
            notify.make_dir(cdir.path)
        host_root = _make_host_root(cdir, st) if cfg.linux.namespace("mount") is None else None
        if opts.console_socket:
            console_fd = connect_console(opts.console_socket)
        program = None
        if cfg.linux.seccomp and cfg.process is not None:  # it would filter nothing
            from pyrunc.linux import seccomp

            with log.step("compile seccomp filter"):
                program = seccomp.program_for(cfg.linux.seccomp, store.root)
        # The parent's side only: the child loads the init's code itself, after the fork
        # and before its first namespace (init.load_modules), while the parent makes the cgroup.
        from pyrunc.linux.requests import CreateRequests
        from pyrunc.linux.spawn import spawn_init

        start_path = f"/proc/self/fd/{cdir.fd}/{START_SOCKET}"

        def save_cgroup(saved: "dict[str, Any]") -> None:
            st.cgroup = saved
            cdir.write_state(st)

        def save_rdt(saved: "dict[str, Any]") -> None:
            st.intel_rdt = saved
            cdir.write_state(st)

        handler = CreateRequests(
            cid, cfg, bundle, cgroup, opts.rootless, save_cgroup, seams, save_rdt, systemd=opts.systemd_cgroup
        )
        with log.step("spawn"):
            spawned = spawn_init(
                cfg,
                cid,
                start_path,
                handler,
                opts,
                seams.kernel,
                console_sock_fd=console_fd,
                seccomp_program=program,
                host_root=host_root,
            )
        st.pid = spawned.pid
        st.pid_start = procfs.start_time(spawned.pid)
        cdir.write_state(st)
        if opts.pid_file:
            write_pid_file(opts.pid_file, spawned.pid)
        if opts.pidfd_socket:
            send_pidfd(opts.pidfd_socket, spawned.pid, seams.kernel)
        log.debug(f"create {cid}: created, init pid {spawned.pid}")
        return st, spawned
    except BaseException as e:
        with log.step("undo create"):
            if spawned is not None:
                kill_and_wait(spawned.pid, seams.kernel)
            if st.host_mounts:
                left = _detach_host_mounts(st.host_mounts, seams.kernel)
                if left:
                    log.warning(f"create {cid}: {left}; its state is kept for `delete` to try again")
            if handler is not None and handler.cgroup_manager is not None:
                _remove_cgroup(handler.cgroup_manager, st)
            if handler is not None and handler.rdt is not None:
                _remove_rdt(handler.rdt, st)
            if not left:
                cdir.remove()
        if isinstance(e, Exception):
            raise ContainerError(f"create {cid}", one_line(e)) from None
        raise
    finally:
        cdir.close()
        if console_fd is not None:
            os.close(console_fd)
        # Done by now, unless create failed before its moves: before run's reaping.
        from pyrunc.linux import cgroup_warm_up

        cgroup_warm_up.stop()


def write_pid_file(path: str, pid: int) -> None:
    """--pid-file: the process's host pid, written whole or not at all."""
    from pyrunc.store import write_atomic

    write_atomic(os.path.abspath(path), str(pid).encode(), 0o644)


def send_pidfd(path: str, pid: int, k: "Kernel") -> None:
    """--pidfd-socket: a pidfd of the process, over the unix socket at `path` (SCM_RIGHTS)."""
    from pyrunc.linux import unix

    fd = k.pidfd_open(pid)
    sock = unix.socket()
    try:
        sock.connect(path)
        unix.send_fds(sock, b"pidfd", [fd])
    except OSError as e:
        raise StateError(f"send a pidfd to --pidfd-socket {path}: {_why(e)}") from None
    finally:
        sock.close()
        os.close(fd)


def _make_host_root(cdir: "ContainerDir", st: "State") -> str:
    """The mount point of a container without a mount namespace: an empty directory in
    its state directory, never the rootfs itself (rootfs.bind_root_in_host_namespace).
    Its mounts go into the host's mount table: what is there is saved before the init
    makes any, so that a delete, even after a crash of this create, takes the rest away."""
    from pyrunc.linux import host_mounts

    path = cdir.file(HOST_NS_MOUNT_POINT)
    os.mkdir(path, 0o700)
    st.host_mounts = saved = host_mounts.record(path)
    cdir.write_state(st)
    root: str = saved["root"]
    return root


def _why(e: OSError) -> str:
    return os.strerror(e.errno).lower() if e.errno is not None else str(e)


def connect_console(path: str) -> int:
    from pyrunc.linux import unix

    sock = unix.socket()
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise StateError(f"connect to console socket {path}: {_why(e)}") from None
    return sock.detach()
