"""checkpoint and restore: a running container saved by CRIU into an image directory,
and a container made again from one (docs/checkpoint.md).

The lifecycle side: the state checks, the image and work directories, the container's
state before and after; CRIU is driven over its RPC (linux/criu.py), told of the
container as runc tells it (linux/criu_describe.py).  Imported only by these two
commands.
"""

import os

from pyrunc import jsonc, lifecycle, log
from pyrunc import status as rules
from pyrunc.errors import ContainerError, KernelError, StateError, UsageError, one_line
from pyrunc.linux import procfs
from pyrunc.status import status_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.config.model import Config
    from pyrunc.linux import Seams
    from pyrunc.linux.kernel import Kernel
    from pyrunc.options import CheckpointOptions, RestoreOptions
    from pyrunc.store import State, Store

DESCRIPTORS = "descriptors.json"  # runc's name: the init's stdio at dump, for restore
DUMP_LOG, RESTORE_LOG = "dump.log", "restore.log"
CRIU_ROOT = "criu-root"  # in the state directory: the rootfs bound where CRIU wants a mount
LOG_LEVEL = 4  # CRIU's most detailed: its log is what a failure's line points to


def _image_dirs(opts: "CheckpointOptions | RestoreOptions", make: bool) -> "tuple[str, str]":
    """(image directory, work directory) as absolute paths; runc's default image path is
    ./checkpoint, the work directory defaults to it."""
    image = os.path.abspath(opts.image_path or "checkpoint")
    if make:
        os.makedirs(image, 0o700, exist_ok=True)
    elif not os.path.isdir(image):
        raise UsageError(f"--image-path {image}: no such directory")
    work = os.path.abspath(opts.work_path) if opts.work_path else image
    os.makedirs(work, 0o700, exist_ok=True)
    return image, work


def _refuse_lazy_pages(opts: "CheckpointOptions | RestoreOptions") -> None:
    """Lazy migration needs CRIU's page server at the dump and its lazy-pages daemon at
    the restore, which pyrunc does not run: refused, before anything is made."""
    if opts.lazy_pages:
        raise UsageError(
            "--lazy-pages is not supported: pyrunc runs neither CRIU's page server nor its lazy-pages daemon"
        )


def _open_dir(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _cg_mode(mode: str) -> "int | None":
    from pyrunc.linux.criu import CG_MODES

    if not mode:
        return None
    if mode not in ("soft", "full", "strict", "ignore"):  # runc's; CRIU's props and none are not offered
        raise UsageError(f"--manage-cgroups-mode: invalid value {mode!r} (soft, full, strict, ignore)")
    return CG_MODES[mode]


def _criu_error(verb: str, cid: str, e: BaseException, log_path: str) -> ContainerError:
    from pyrunc.linux.criu import CriuError

    why = e.why if isinstance(e, CriuError) else one_line(e)
    return ContainerError(f"{verb} {cid}", f"{why}; see {log_path}")


def _masked_files(pid: int, masked: "tuple[str, ...]") -> "list[str]":
    """The masked paths that are files in the running container (binds of /dev/null)."""
    import stat

    out = []
    for p in masked:
        try:
            mode = os.stat(f"/proc/{pid}/root/{p.lstrip('/')}").st_mode
        except OSError:
            continue
        if not stat.S_ISDIR(mode):
            out.append(p)
    return out


def _descriptors(pid: int) -> "list[str]":
    """What the init's fds 0, 1 and 2 are (readlink of /proc/PID/fd/N)."""
    out = []
    for n in range(3):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{n}"))
        except OSError:
            out.append("/dev/null")
    return out


def checkpoint(store: "Store", cid: str, opts: "CheckpointOptions", seams: "Seams", criu: str = "criu") -> None:
    """Dump (or pre-dump) a running or paused container into opts.image_path.  Without
    --leave-running or --pre-dump the container is gone afterwards (CRIU ends its
    processes) and, as runc does, deleted: its cgroup and state, its poststop hooks."""
    from pyrunc.config import model
    from pyrunc.linux import criu_describe
    from pyrunc.linux.criu import DUMP, PRE_DUMP, Swrk

    _refuse_lazy_pages(opts)
    with store.open(cid) as cdir:
        st = cdir.read_state()
        status = status_of(st)
        rules.check("checkpoint", cid, status)
        assert st is not None and st.pid is not None  # running or paused: check refused the others
        with open(cdir.file(lifecycle.CONFIG_COPY), "rb") as f:
            cfg = model.from_dict(jsonc.loads(f.read().decode()), st.bundle)
        image, work = _image_dirs(opts, make=True)
        if opts.parent_path:
            if os.path.isabs(opts.parent_path):
                raise UsageError("--parent-path must be relative (to --image-path)")
            if not os.path.isdir(os.path.join(image, opts.parent_path)):
                raise UsageError(f"--parent-path {opts.parent_path}: no such directory under {image}")
        try:
            empty = criu_describe.empty_ns(opts.empty_ns)
        except ValueError as e:
            raise UsageError(str(e)) from None
        req: dict[str, Any] = {
            "pid": st.pid,
            "log_level": LOG_LEVEL,
            "log_file": DUMP_LOG,
            "root": st.rootfs,
            "manage_cgroups": True,
            "manage_cgroups_mode": _cg_mode(opts.manage_cgroups_mode),
            "notify_scripts": True,
            "shell_job": opts.shell_job,
            "leave_running": opts.leave_running,
            "tcp_established": opts.tcp_established,
            "ext_unix_sk": opts.ext_unix_sk,
            "file_locks": opts.file_locks,
            "empty_ns": empty,
            "orphan_pts_master": True,
            "auto_dedup": opts.auto_dedup,
            "external": criu_describe.external_namespaces(cfg),
        }
        mgr = lifecycle.cgroup_manager(st, seams)
        v2 = mgr is not None and mgr.version == 2
        masked = _masked_files(st.pid, cfg.linux.masked_paths)
        hierarchies = None
        if mgr is not None and not v2:  # v1 or hybrid: a bind per hierarchy (linux/cgroupfs.py)
            from pyrunc.linux import cgroupfs

            hierarchies = [name for name, _, _ in cgroupfs.host_cgroup_mounts()]
        req["ext_mnt"] = criu_describe.dump_mounts(cfg, masked, cgroup_v2=v2, hierarchies=hierarchies)
        if opts.parent_path:
            req["parent_img"] = opts.parent_path
            req["track_mem"] = True
        if opts.pre_dump:
            req["track_mem"] = True
        if mgr is not None and v2:
            # CRIU freezes the tree through the cgroup rather than by ptrace.
            req["freeze_cgroup"] = "/sys/fs/cgroup" + mgr.paths()[""]
        # The stdio the init had, for restore to hand it new ones in their place.
        with open(os.path.join(image, DESCRIPTORS), "w") as f:
            f.write(jsonc.dumps(_descriptors(st.pid)))
        image_fd = _open_dir(image)
        work_fd = _open_dir(work)
        req["images_dir_fd"], req["work_dir_fd"] = image_fd, work_fd
        pass_fds = [image_fd, work_fd]
        log.debug(f"checkpoint {cid}: criu {'pre-dump' if opts.pre_dump else 'dump'} of pid {st.pid} into {image}")
        swrk = None
        try:
            with log.step("criu dump"):
                swrk = Swrk(criu, tuple(pass_fds))
                swrk.call(PRE_DUMP if opts.pre_dump else DUMP, req)
        except Exception as e:
            raise _criu_error("checkpoint", cid, e, os.path.join(work, DUMP_LOG)) from None
        finally:
            if swrk is not None:
                swrk.close()
            os.close(image_fd)
            os.close(work_fd)
    if not opts.leave_running and not opts.pre_dump:
        # runc destroys a container CRIU has ended: its cgroup, its state, its poststop hooks.
        lifecycle.delete(store, cid, seams, force=True)


def restore(
    store: "Store", cid: str, opts: "RestoreOptions", seams: "Seams", criu: str = "criu"
) -> "tuple[State, int]":
    """Make container `cid` from the bundle's config and the image CRIU saved: its state
    directory, its cgroup with the config's limits, the processes restored into it
    (children of this process: CRIU's rst_sibling); the prestart and createRuntime hooks
    when its namespaces are there.  Returns (its State, the init's pid).  On failure
    nothing is left: the restored processes killed, the cgroup and state removed."""
    from pyrunc.config import model, validate
    from pyrunc.linux import cgroups, criu_describe
    from pyrunc.linux.criu import RESTORE, Swrk
    from pyrunc.store import State, check_id, write_atomic

    check_id(cid)
    _refuse_lazy_pages(opts)
    bundle = os.path.abspath(opts.bundle)
    image, work = _image_dirs(opts, make=False)
    with log.step("validate config"):
        doc = validate.load_config(bundle)
        cfg = model.from_dict(doc, bundle)
    try:
        empty = criu_describe.empty_ns(opts.empty_ns)
    except ValueError as e:
        raise UsageError(str(e)) from None
    mode = _cg_mode(opts.manage_cgroups_mode)
    try:
        with open(os.path.join(image, DESCRIPTORS)) as f:
            descriptors = jsonc.loads(f.read())
    except (OSError, ValueError) as e:
        raise ContainerError(
            f"restore {cid}", f"{image}/{DESCRIPTORS}: {one_line(e)} (not a checkpoint image?)"
        ) from None
    if cfg.terminal and not opts.console_socket and opts.detach:
        raise UsageError("cannot allocate a tty without --console-socket when detached (process.terminal is true)")
    cgroup = lifecycle.cgroup_path(cfg, cid)
    st = State(cid, bundle, cfg.root_path, lifecycle._iso_now(), cfg.annotations, doc.get("hooks") or {}, cgroup)
    with log.step("create state"):
        cdir = store.create(cid, st)
    k = seams.kernel
    mgr = swrk = console_fd = None
    root = cdir.file(CRIU_ROOT)
    mounted = False
    pid = 0
    ok = False
    ns_fds: list[int] = []
    fds: list[int] = []
    try:
        write_atomic(cdir.file(lifecycle.CONFIG_COPY), jsonc.dumps(doc).encode())
        if opts.console_socket:
            console_fd = lifecycle.connect_console(opts.console_socket)
        # CRIU wants the root a mount point whose parent is not overmounted: the rootfs
        # bound onto an empty directory of ours.
        from pyrunc.linux.kernel import MNT_DETACH, MS_BIND, MS_REC

        with log.step("make mount points"):
            _make_mountpoints(k, cfg)
        os.mkdir(root, 0o700)
        k.mount(cfg.root_path, root, None, MS_BIND | MS_REC, None)
        mounted = True
        with log.step("create cgroup"):
            mgr = cgroups.new_manager(cgroup, cid, files=seams.cgroup_files, kernel=k)
            mgr.create()
            st.cgroup = mgr.to_dict()
            cdir.write_state(st)
            resources = dict(cfg.linux.resources)
            resources["devices"] = cgroups.device_rules(cfg.linux.resources)
            mgr.set(resources)
        image_fd, work_fd = _open_dir(image), _open_dir(work)
        fds += [image_fd, work_fd]
        inherit = [
            {"key": d, "fd": n} for n, d in enumerate(descriptors) if isinstance(d, str) and d.startswith("pipe:")
        ]
        for _name, key, path in criu_describe.joined_namespaces(cfg):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            ns_fds.append(fd)
            inherit.append({"key": key, "fd": fd})
        req: dict[str, Any] = {
            "images_dir_fd": image_fd,
            "work_dir_fd": work_fd,
            "evasive_devices": True,
            "log_level": LOG_LEVEL,
            "log_file": RESTORE_LOG,
            "rst_sibling": True,
            "root": root,
            "manage_cgroups": True,
            "manage_cgroups_mode": mode,
            "notify_scripts": True,
            "shell_job": opts.shell_job,
            "ext_unix_sk": opts.ext_unix_sk,
            "tcp_established": opts.tcp_established,
            "file_locks": opts.file_locks,
            "empty_ns": empty,
            "orphan_pts_master": True,
            "auto_dedup": opts.auto_dedup,
            "ext_mnt": criu_describe.restore_mounts(
                cfg, "/sys/fs/cgroup" + mgr.paths()[""] if mgr.version == 2 else None
            ),
            "inherit_fd": inherit,
        }
        with log.step("criu restore"):
            swrk = Swrk(criu, tuple(fds + ns_fds))
            # CRIU forks the restored tree: in the container's cgroup from the start.
            mgr.add(swrk.pid)
            req["cg_root"] = [
                {"ctrl": c, "path": p} for c, p in cgroups.own_cgroups(f"/proc/{swrk.pid}/cgroup").items()
            ]
            if mgr.version != 2:
                req["ext_mnt"] = criu_describe.restore_mounts(cfg, cgroup_dirs=_v1_cgroup_dirs(swrk.pid))
            new_netns = cfg.linux.namespace("network") is not None and not any(
                n == "net" for n, _, _ in criu_describe.joined_namespaces(cfg)
            )

            def notify(script: str, npid: int, got: "list[int]") -> None:
                nonlocal pid
                log.debug(f"restore {cid}: criu notifies {script} (pid {npid})")
                if script == "setup-namespaces":
                    if new_netns:
                        _bring_lo_up(k, npid)
                    _run_create_hooks(cid, cfg, npid)
                elif script == "post-restore":
                    pid = npid
                    st.pid, st.pid_start, st.started = npid, procfs.start_time(npid), True
                    cdir.write_state(st)
                elif script == "orphan-pts-master" and got and console_fd is not None:
                    from pyrunc.linux import unix

                    sock = unix.socket(fileno=os.dup(console_fd))
                    try:
                        unix.send_fds(sock, b"console", got[:1])
                    finally:
                        sock.close()

            swrk.call(RESTORE, req, notify)
        if not pid:
            raise ContainerError(f"restore {cid}", "criu restored nothing (no post-restore notification)")
        if opts.pid_file:
            lifecycle.write_pid_file(opts.pid_file, pid)
        log.debug(f"restore {cid}: restored, init pid {pid}")
        ok = True
        return st, pid
    except BaseException as e:
        with log.step("undo restore"):
            if pid:
                lifecycle.kill_and_wait(pid, k)
            if mgr is not None:
                lifecycle._remove_cgroup(mgr, st)
        if _is_criu(e):
            raise _criu_error("restore", cid, e, os.path.join(work, RESTORE_LOG)) from None
        if isinstance(e, ContainerError) or not isinstance(e, Exception):
            raise
        raise ContainerError(f"restore {cid}", one_line(e)) from None
    finally:
        if swrk is not None:
            swrk.close()
        for fd in fds + ns_fds:
            os.close(fd)
        if console_fd is not None:
            os.close(console_fd)
        if mounted:
            try:
                k.umount(root, MNT_DETACH)
            except OSError as e:
                log.warning(f"restore {cid}: unmount {root}: {one_line(e)}")
        if os.path.isdir(root):
            os.rmdir(root)
        if not ok:
            cdir.remove()
        cdir.close()


def _v1_cgroup_dirs(pid: int) -> "dict[str, str]":
    """On a v1 or hybrid host: {hierarchy name: the directory of `pid`'s cgroup in it},
    what the container's bind of each hierarchy is restored from."""
    from pyrunc.linux import cgroupfs
    from pyrunc.linux.cgroups import CGROUP_MOUNT_ROOT, own_cgroups

    own = own_cgroups(f"/proc/{pid}/cgroup")
    out = {}
    for name, fstype, superopts in cgroupfs.host_cgroup_mounts():
        path = cgroupfs._hierarchy_path(name, fstype, superopts, own)  # as create binds it
        out[name] = os.path.join(CGROUP_MOUNT_ROOT, name, path.lstrip("/"))
    return out


def _make_mountpoints(k: "Kernel", cfg: "Config") -> None:
    """The mount points CRIU will mount on, made in the rootfs where missing (a fresh
    rootfs lacks them), each resolved inside it: a directory, or a file for a bind of a
    file.  A source that is not there is CRIU's to report."""
    import stat

    from pyrunc.linux import criu_describe, paths

    root_fd = os.open(cfg.root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for dest, source in criu_describe.restore_mountpoints(cfg):
            is_dir = True
            if source is not None:
                try:
                    is_dir = stat.S_ISDIR(os.stat(source).st_mode)
                except OSError:
                    pass
            try:
                os.close(paths.ensure_mountpoint(k, root_fd, dest, is_dir))
            except OSError as e:
                raise KernelError(e.errno, f"make mount point {dest} in {cfg.root_path}") from None
    finally:
        os.close(root_fd)


def _is_criu(e: BaseException) -> bool:
    from pyrunc.linux.criu import CriuError

    return isinstance(e, CriuError)


def _bring_lo_up(k: "Kernel", pid: int) -> None:
    """The restored network namespace is new and empty (CRIU's empty_ns): lo up in it, as
    create does, by a child that joins it."""
    from pyrunc.linux import network

    ns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        child = os.fork()
        if child == 0:
            code = 1
            try:
                from pyrunc.linux.kernel import CLONE_NEWNET

                k.setns(ns, CLONE_NEWNET, "join the restored network namespace")
                network.bring_up(k, "lo")
                code = 0
            finally:
                os._exit(code)
        _, wstatus = os.waitpid(child, 0)
    finally:
        os.close(ns)
    if wstatus != 0:
        raise StateError(f"cannot bring lo up in the restored network namespace of pid {pid}")


def _run_create_hooks(cid: str, cfg: "Config", pid: int) -> None:
    """prestart and createRuntime, as create runs them, once CRIU made the namespaces."""
    hooks = cfg.hooks
    if hooks is None or not (hooks.prestart or hooks.create_runtime):
        return
    from pyrunc.linux import hooks as hookrun
    from pyrunc.status import CREATED, hook_state

    state = hook_state(cid, cfg.bundle, cfg.annotations, CREATED, pid)
    hookrun.run_hooks("prestart", hooks, state)
    hookrun.run_hooks("createRuntime", hooks, state)


def restore_and_wait(
    store: "Store",
    cid: str,
    opts: "RestoreOptions",
    seams: "Seams",
    criu: str = "criu",
    warn: "Callable[[str], None] | None" = None,
) -> int:
    """`restore` as runc runs it: detached, the container left running; else we wait for
    it as `run` does (forwarding signals, its exit status ours) and delete it after."""
    from pyrunc import run
    from pyrunc.linux import kernel

    if opts.detach:
        restore(store, cid, opts, seams, criu)
        return 0
    # The restored init is our child (CRIU's rst_sibling); as subreaper, what it orphans too.
    if not opts.no_subreaper:
        seams.kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    _st, pid = restore(store, cid, opts, seams, criu)
    try:
        status = run.wait_in_foreground(pid, None, seams.kernel)
    finally:
        run._cleanup(store, cid, warn, seams)
    return status
