"""The parent's answers to a child's requests (protocol.py), one class per mode: create's
init (`CreateRequests`) and exec's joining process (`ExecRequests`).  spawn.py forks the
child and runs the one loop that reads its messages and calls these; each class answers
only the requests its mode accepts (`REQUESTS`: type -> the step a failure names).
"""

import os

from pyrunc import OCI_VERSION, log
from pyrunc.errors import ContainerError
from pyrunc.linux import cgroup_warm_up, protocol
from pyrunc.status import CREATING, hook_state
from pyrunc.store import rootless_mode

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, NoReturn

    from pyrunc.config.model import Config
    from pyrunc.linux import Seams
    from pyrunc.linux.cgroups import Manager
    from pyrunc.linux.protocol import Channel
    from pyrunc.store import State

    Message = dict[str, Any]  # a protocol message's fields


class Requests:
    """What spawn's loop asks of a mode.  `proc`: the child as the --log line names it;
    `context`: the error's prefix (None: the caller adds it)."""

    proc = "init"
    context: str | None = None
    REQUESTS: dict[str, str] = {}
    FINAL: str | None = None  # the message that ends the serving without an answer (`created`)

    def idle(self) -> "Callable[[], None] | None":
        """The idle check of the channel's waits now (None: none), which raises to give up."""
        return None

    def frozen_check(self) -> None:
        """Raises when the cgroup freezer stops the container's processes: the check of
        the waits on a killed or exiting child."""

    def frozen(self) -> bool:
        """Whether the cgroup freezer stops the container's processes now (a v1 frozen
        process dies of SIGKILL only once thawed: no use waiting for it)."""
        try:
            self.frozen_check()
        except ContainerError:
            return True
        return False

    def started(self, pid: int) -> None:
        """The process that goes on (the init, the exec process) has reported its pid."""

    def cgroup_before_fork(self) -> int | None:
        """An fd of the cgroup v2 directory the child is to be born in, made now, before
        the fork; None: the child is forked where the runtime is."""
        return None

    def not_born_in_cgroup(self) -> None:
        """The kernel could not fork into the cgroup_before_fork one: move the child in."""

    def finished(self) -> None:
        """FINAL came: raises child_death.Died when the process is not alive after all."""

    def done(self, kind: str) -> bool:
        """Whether the answered request `kind` was the last."""
        return False

    def done_at_eof(self) -> bool:
        """Whether a closed channel means the process is running (exec'd), not dead."""
        return False

    def unknown(self, kind: str) -> "NoReturn":
        raise NotImplementedError

    def died(self, step: str | None, status: int | None, pid: int | None) -> str:
        """The line for a process that died before it was ready; `pid`: the reported one."""
        raise NotImplementedError


def send_seccomp_listener(state: "Mapping[str, Any]", cfg: "Config", pid: int, fd: int) -> None:
    """runtime-spec seccomp.md: the listener gets the container process state (`state`,
    status.hook_state's) and the notify fd, one connection each."""
    from pyrunc.linux import seccomp

    prof = cfg.linux.seccomp
    assert prof is not None  # a listener fd comes only from a seccomp profile
    seccomp.send_to_listener(
        prof["listenerPath"],
        fd,
        {
            "ociVersion": OCI_VERSION,
            "fds": ["seccompFd"],
            "pid": pid,
            "metadata": prof.get("listenerMetadata", ""),
            "state": state,
        },
    )


# --- create ----------------------------------------------------------------------------


class CreateRequests(Requests):
    """Answers the container init's requests during create."""

    REQUESTS = {
        protocol.IDMAP: "write id maps",
        protocol.CGROUP: "join cgroup",
        protocol.HOOKS: "run createRuntime hooks",
        protocol.SECCOMP: "send the seccomp fd to the listener",
        protocol.NETDEVICES: "move network devices",
        protocol.MOUNT_SOURCES: "open mount sources",
        protocol.CGROUP_JOINED: "join cgroup",
    }

    def __init__(
        self,
        cid: str,
        cfg: "Config",
        bundle: str,
        cgroup_path: str,
        rootless: str,
        save_cgroup: "Callable[[dict[str, Any]], None]",
        seams: "Seams",
        save_rdt: "Callable[[dict[str, Any]], None] | None" = None,
        systemd: bool = False,
    ) -> None:
        self.cid, self.cfg, self.bundle = cid, cfg, bundle
        self.systemd = systemd  # --systemd-cgroup: the cgroup is a systemd unit
        self.seams = seams  # the command's kernel and cgroup files (linux.Seams)
        self.cgroup_path = cgroup_path
        self.save_cgroup = save_cgroup
        self.save_rdt = save_rdt
        self.cgroup_manager: Manager | None = None
        self.rdt: dict[str, Any] | None = None  # what resctrl.apply made, for the undo of a failed create
        self.joining = False  # the init joins its cgroup when it asks (cgroup_joined)
        self.born_in_cgroup = False  # forked into it (clone3 CLONE_INTO_CGROUP): never moved
        self.made_paths: dict[str, str] | None = None  # the cgroup made before the fork
        self.init_pid: int | None = None
        cgroup_warm_up.helper()  # its pid out of the environment, before anything is forked
        # runc's --rootless: ignore cgroup permission errors ("auto": not root, or in a
        # user namespace).
        self.ignore_cgroup_errors = rootless_mode(rootless)

    # -- spawn's loop ---------------------------------------------------------------------

    def idle(self) -> "Callable[[], None]":
        # Once the child is in its cgroup, a freeze of it would stop the child for good:
        # each quiet spell of the wait asks the cgroup, and a frozen one fails create.
        return self.check_not_frozen

    def frozen_check(self) -> None:
        self.check_not_frozen()

    def started(self, pid: int) -> None:
        self.init_pid = pid

    FINAL = protocol.CREATED

    def finished(self) -> None:
        # The OOM killer may strike the init as it reports (a page touched after its
        # late move into the cgroup): such a create failed, whatever the report says.
        if self.oom_struck():
            from pyrunc.linux import child_death

            raise child_death.Died()

    def unknown(self, kind: str) -> "NoReturn":
        raise ContainerError(kind, f"unknown request {kind!r} from container init")

    def died(self, step: str | None, status: int | None, pid: int | None) -> str:
        from pyrunc.linux import child_death

        # Its first stage (namespaces) too: the user knows one init.
        line: str = child_death.describe("container init", step, status, self.memory_oom())
        return line

    def answer(self, kind: str, msg: "Message", fds: list[int], chan: "Channel") -> "Message | None":
        """Answer one request; returns the `ok` message's fields, or None when answered."""
        from pyrunc.linux import child_death

        if kind == protocol.IDMAP:
            self.idmap(msg["pid"])
        elif kind == protocol.CGROUP:
            self.joining = not msg.get("join_now", True) and not self.born_in_cgroup
            if self.made_paths is not None:  # made before the fork (cgroup_before_fork)
                paths = self.made_paths
                if not self.joining and not self.born_in_cgroup:
                    self.join_cgroup(msg["pid"])
                if self.cfg.linux.intel_rdt is not None:
                    self._intel_rdt(msg["pid"])
            else:
                paths = self.cgroup(msg["pid"], not self.joining) or {}
            child_death.answer(chan, protocol.OK, paths=paths)
            if self.joining:
                # The first move into a cgroup waits out an RCU grace period (about
                # 14 ms on this host's cgroup v1): pay it now with a stand-in
                # process, while the child unshares, forks and builds the rootfs,
                # so that the init's own move, when it asks, is quick.
                self.warm_up_cgroup()
            return None
        elif kind == protocol.CGROUP_JOINED:
            if self.joining:  # late, after the setup's pages were touched: not charged
                self.join_cgroup(_reported(self.init_pid))
        elif kind == protocol.HOOKS:
            self.hooks(_reported(self.init_pid))
        elif kind == protocol.SECCOMP:
            try:
                self.seccomp(_reported(self.init_pid), fds[0])
            finally:
                for fd in fds:
                    os.close(fd)
        elif kind == protocol.MOUNT_SOURCES:
            from pyrunc.linux import mount_sources

            fds = self.mount_sources(msg["pid"])
            try:
                mount_sources.send(chan, fds)
            except (BrokenPipeError, ConnectionResetError):
                raise child_death.Died() from None
            finally:
                for fd in fds:
                    os.close(fd)
            return None
        elif kind == protocol.NETDEVICES:
            try:
                if not fds:
                    raise ContainerError(self.REQUESTS[kind], "the container init sent no netlink socket")
                self.netdevices(fds[0])
            finally:
                for fd in fds:
                    os.close(fd)
        return {}

    # -- the requests -------------------------------------------------------------------

    def idmap(self, pid: int) -> None:
        from pyrunc.linux import namespaces

        with log.step("write id maps"):
            namespaces.write_id_maps(pid, self.cfg.linux)

    def mount_sources(self, pid: int) -> list[int]:
        """The bind sources of a container in a user namespace, opened in its mount
        namespace with our privileges (linux/mount_sources.py)."""
        from pyrunc.linux import mount_sources

        with log.step("open mount sources"):
            fds: list[int] = mount_sources.open_in_namespace_of(self.seams.kernel, pid, mount_sources.wanted(self.cfg))
        return fds

    def cgroup(self, pid: int, join_now: bool = True) -> "dict[str, str] | None":
        """Runs before the init unshares its namespaces: make the cgroup and set its
        limits; put `pid` in it now, or (join_now False) leave that to join_cgroup."""
        from pyrunc.linux import cgroups

        def make() -> "dict[str, str]":
            mgr = cgroups.new_manager(
                self.cgroup_path,
                self.cid,
                files=self.seams.cgroup_files,
                kernel=self.seams.kernel,
                systemd=(self.cfg.linux.cgroups_path or "") if self.systemd else None,
            )
            return self._make_cgroup(mgr, pid, join_now)

        made: dict[str, str] | None = self._cgroup_step(make)
        if self.cfg.linux.intel_rdt is not None:
            self._intel_rdt(pid)
        return made

    def cgroup_before_fork(self) -> int | None:
        """On a pure cgroup v2 host: make the cgroup and set its limits before the fork,
        and return an O_PATH fd of its directory, so that the child is born in it
        (clone3 CLONE_INTO_CGROUP, spawn._fork) and never moved: its init neither.  Not
        for a config with a memory limit, whose init joins late (the pages its setup
        touches are not charged to the container: a 1 MiB limit runs), nor with
        --systemd-cgroup, whose scope starts with its first process."""
        from pyrunc.linux import cgroups

        res = self.cfg.linux.resources
        if self.systemd or (res.get("memory") or {}).get("limit") or "memory.max" in (res.get("unified") or {}):
            return None
        mode = cgroups.probe(self.seams.kernel)
        if mode != "v2":  # cgroup v1 or hybrid: moved in each v1 hierarchy anyway
            return None
        from pyrunc.linux.cgroups.v2 import V2Manager

        mgr = cgroups.new_manager(
            self.cgroup_path, self.cid, mode=mode, files=self.seams.cgroup_files, kernel=self.seams.kernel
        )
        assert isinstance(mgr, V2Manager)
        paths = self._cgroup_step(lambda: self._make_cgroup(mgr, None, False))
        if paths is None:  # --rootless: ignored, as later
            return None
        self.made_paths = paths
        fd = os.open(mgr.directory(), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.born_in_cgroup = True
        cgroup_warm_up.end()  # no move to make (unless the kernel cannot fork into it)
        return fd

    def not_born_in_cgroup(self) -> None:
        self.born_in_cgroup = False

    def _make_cgroup(self, mgr: "Manager", pid: int | None, join_now: bool) -> "dict[str, str]":
        """Make the cgroup of `mgr`, set its limits; put `pid` in it when join_now."""
        from pyrunc.linux import cgroups

        lx = self.cfg.linux
        with log.step("create cgroup"):
            self.cgroup_manager = mgr
            # A systemd scope starts with its first process: this one, whose fork
            # (the init) inherits it, however late the init's own move comes.
            mgr.create(pid)
            # Saved at once, so that a delete after a crash of this create removes it.
            self.save_cgroup(mgr.to_dict())
            if not mgr.made_leaf():
                self._warn_if_not_empty(mgr)
            # Checked before anything of ours joins it: an init in a frozen cgroup
            # would stop at once and create wait for it forever.
            self.check_not_frozen()
        with log.step("set cgroup limits"):
            resources = dict(lx.resources)
            resources["devices"] = cgroups.device_rules(lx.resources)
            if os.geteuid() != 0:
                # Rootless (runc too): no device rules; loading a device program needs
                # CAP_BPF, and a user namespace allows no mknod, only the host's nodes.
                del resources["devices"]
            mgr.set(resources)
        if join_now and pid is not None:
            with log.step("move init into cgroup"):
                mgr.add(pid)
            cgroup_warm_up.end()  # its last move
        paths: dict[str, str] = mgr.paths()
        return paths

    def _intel_rdt(self, pid: int) -> None:
        """linux.intelRdt: the group is the init's from here on (its fork inherits it)."""
        from pyrunc.linux import resctrl

        rdt = self.cfg.linux.intel_rdt
        if rdt is None:  # cgroup() asks only for a config with one
            return
        with log.step("apply intelRdt"):
            self.rdt = saved = resctrl.apply(self.cid, rdt, pid)
            if self.save_rdt is not None:
                self.save_rdt(saved)

    def _warn_if_not_empty(self, mgr: "Manager") -> None:
        """runc's warning, in its words: a cgroup that already holds processes shares its
        limits, freezing, `kill --all` and `ps` with them.  The container is made all the same."""
        found = mgr.pids()
        if found:
            msg = (
                f"container's cgroup is not empty: {len(found)} process(es) found in {next(iter(mgr.paths().values()))}"
            )
            log.warning(msg)
            log.stderr_line(f"pyrunc: warning: {msg}")

    def check_not_frozen(self) -> None:
        """runc's refusal, in its words, of a cgroup the freezer stops (its own freeze or
        an ancestor's); also the idle check of every wait on the init once it is there,
        for a cgroup frozen after this check.  Not a CgroupError: --rootless must not
        turn it into a warning and a wait without end."""
        mgr = self.cgroup_manager
        if mgr is not None and mgr.stopped_by_freezer():
            from pyrunc.lifecycle import frozen_message

            raise ContainerError(None, frozen_message(self.cgroup_path))

    def join_cgroup(self, pid: int) -> None:
        """Put the init in the cgroup made by cgroup(join_now=False)."""
        mgr = self.cgroup_manager
        if mgr is not None:
            with log.step("move init into cgroup"):
                self._cgroup_step(lambda: mgr.add(pid))
        cgroup_warm_up.end()  # create's last move

    def memory_oom(self) -> "dict[str, Any] | None":
        """The memory cgroup's figures when its OOM killer struck during create, else
        None; only for a cgroup create made (a joined one's kills may be older)."""
        mgr = self.cgroup_manager
        if mgr is None or not mgr.made_any():
            return None
        from pyrunc.linux import child_death

        figures: dict[str, Any] | None = child_death.oom_figures(mgr)
        return figures

    def oom_struck(self) -> bool:
        """Whether the OOM killer has killed in the cgroup create made for a config with
        a memory limit: only the init (or its createContainer hooks) ran there."""
        if not (self.cfg.linux.resources.get("memory") or {}).get("limit"):
            return False
        return self.memory_oom() is not None

    def warm_up_cgroup(self) -> None:
        """Move a stand-in child, which touches no memory, into the new cgroup and let
        it exit: the kernel's wait before the first move into a cgroup (an RCU grace
        period) is paid here, and a move right after it is quick.  Best effort."""
        if self.cgroup_manager is None or cgroup_warm_up.running():
            return  # the launcher's helper keeps the wait paid (cgroup_warm_up.py)
        with log.step("warm up cgroup"):
            self._warm_up(self.cgroup_manager)

    def _warm_up(self, mgr: "Manager") -> None:
        from pyrunc.linux import child_death

        hold_r, hold_w = os.pipe()
        pid = self.seams.kernel.fork()
        if pid == 0:
            os.close(hold_w)
            os.read(hold_r, 1)  # until the parent is done with us
            os._exit(0)
        os.close(hold_r)
        try:
            mgr.add(pid)
        except Exception as e:  # the init's own move reports what is wrong
            log.debug(f"create {self.cid}: cgroup warm-up: {e}")
        finally:
            os.close(hold_w)
            # It exits at once, unless a freeze meanwhile stopped it: then it is killed
            # (on v1 it dies when the cgroup is thawed) and create fails.
            child_death.wait_child(pid, self.check_not_frozen)

    def _cgroup_step(self, step: "Callable[[], Any]") -> "Any":
        from pyrunc.errors import CgroupError

        try:
            return step()
        except (CgroupError, OSError) as e:
            if not self.ignore_cgroup_errors:
                if os.geteuid() != 0:  # what a rootless user can do about it
                    from pyrunc.linux import rootless

                    rootless.raise_strict_cgroup_error(e)
                raise
            log.warning(f"create {self.cid}: cgroups ignored (--rootless): {e}")
            return None

    def seccomp(self, pid: int, fd: int) -> None:
        state = hook_state(self.cid, self.bundle, self.cfg.annotations, CREATING, pid)
        with log.step("send seccomp fd to listener"):
            send_seccomp_listener(state, self.cfg, pid, fd)

    def netdevices(self, sock_fd: int) -> None:
        """linux.netDevices, from the runtime's network namespace into the init's, whose
        rtnetlink socket `sock_fd` is (linux/netdevices.py)."""
        from pyrunc.linux import netdevices

        with log.step("move network devices"):
            moved = netdevices.move(self.cfg.linux.net_devices, sock_fd)
        for dev in moved:
            log.debug(
                f'create {self.cid}: network device "{dev["host"]}" moved in as '
                f'"{dev["name"]}" with {", ".join(dev["addresses"]) or "no addresses"}'
            )

    def hooks(self, pid: int) -> None:
        from pyrunc.linux import hooks

        state = hook_state(self.cid, self.bundle, self.cfg.annotations, CREATING, pid)
        with log.step("run createRuntime hooks"):
            hooks.run_hooks("prestart", self.cfg.hooks, state)
            hooks.run_hooks("createRuntime", self.cfg.hooks, state)


# --- exec ------------------------------------------------------------------------------


class ExecRequests(Requests):
    """Answers the exec process's requests.  `st`: the container's state; `paused`: the
    process joins the frozen cgroup last (join_paused) and execs once it resumes;
    `cgroup_dirs`: --cgroup's sub-cgroups.  Made before the fork: it counts the cgroup's
    OOM kills so far, the container's own, to tell a kill of this process."""

    proc = "exec"
    REQUESTS = {
        protocol.CGROUP_JOINED: "join cgroup",
        protocol.JOIN_PAUSED: "join cgroup",
        protocol.SECCOMP: "send the seccomp fd to the listener",
    }

    def __init__(
        self,
        cid: str,
        st: "State",
        cfg: "Config",
        seams: "Seams",
        paused: bool = False,
        cgroup_dirs: dict[str, str] | None = None,
    ) -> None:
        self.cid, self.st, self.cfg = cid, st, cfg
        self.seams = seams  # the command's kernel and cgroup files (linux.Seams)
        self.context = f"exec {cid}"
        self.paused = paused
        self.cgroup_dirs = cgroup_dirs
        self.oom_before = self._oom_kills()
        cgroup_warm_up.helper()  # its pid out of the environment, before anything is forked
        self.exec_pid: int | None = None
        self.joined = False  # in the cgroup: a freeze would stop it for good
        self.ready = False  # it asked to be in the cgroup, its last request before the exec

    # -- spawn's loop ---------------------------------------------------------------------

    def idle(self) -> "Callable[[], None] | None":
        return self._check_not_frozen if self.joined else None

    # Its waits on a killed or exiting child ask no freezer (frozen_check): paused, the
    # container is frozen on purpose.

    def _check_not_frozen(self) -> None:
        from pyrunc import lifecycle

        if lifecycle.stopped_by_freezer(self.st, self.seams):
            raise ContainerError(self.context, lifecycle.frozen_message(self.st.cgroup_path))

    def started(self, pid: int) -> None:
        self.exec_pid = pid
        if not self.paused:
            # While the process joins the namespaces and sets itself up: the move's
            # wait (an RCU grace period on cgroup v1) overlaps that work.  The
            # process asks (cgroup_joined) before it execs.
            with log.step("add process to cgroup"):
                self._join_cgroup(pid)
            cgroup_warm_up.end()  # exec's one move
            self.joined = True
            self._join_rdt(pid)
            self._final_affinity(pid)

    def done(self, kind: str) -> bool:
        return kind == protocol.JOIN_PAUSED  # it is frozen now, ready to exec on resume

    def done_at_eof(self) -> bool:
        return self.ready  # the channel is close-on-exec: the process runs

    def unknown(self, kind: str) -> "NoReturn":
        raise ContainerError(self.context, f"unknown request {kind!r} from the exec process")

    def died(self, step: str | None, status: int | None, pid: int | None) -> str:
        from pyrunc import lifecycle
        from pyrunc.linux import child_death

        oom = None
        if pid is not None and self.oom_before is not None:  # it joined the container's cgroup
            oom = child_death.oom_figures(lifecycle.cgroup_manager(self.st, self.seams), self.oom_before)
        line: str = child_death.describe(
            "the exec process", step, status, oom, needs="the container's processes and this one need"
        )
        return line

    def answer(self, kind: str, msg: "Message", fds: list[int], chan: "Channel") -> "Message":
        if kind == protocol.CGROUP_JOINED:
            self.ready = True
        elif kind == protocol.JOIN_PAUSED:
            pid = _reported(self.exec_pid)
            with log.step("add process to cgroup"):
                self._join_cgroup(pid)
            cgroup_warm_up.end()
            self._join_rdt(pid)
            self._final_affinity(pid)
        elif kind == protocol.SECCOMP:
            from pyrunc import lifecycle

            step = self.REQUESTS[kind]
            try:
                with log.step(step):
                    pid = _reported(self.exec_pid)
                    status = lifecycle.status_of(self.st)
                    state = hook_state(self.cid, self.st.bundle, self.st.annotations, status, pid)
                    send_seccomp_listener(state, self.cfg, pid, fds[0])
            except Exception as e:
                raise Refused(str(e), ContainerError(self.context, f"{step}: {e}")) from None
            finally:
                for fd in fds:
                    os.close(fd)
        return {}

    def _oom_kills(self) -> int | None:
        from pyrunc import lifecycle

        mgr = lifecycle.cgroup_manager(self.st, self.seams)
        try:
            return mgr.oom_kills() if mgr is not None else None
        except Exception:  # no memory controller to tell: no hint
            return None

    def _join_cgroup(self, pid: int) -> None:
        from pyrunc import lifecycle

        try:
            mgr = lifecycle.cgroup_manager(self.st, self.seams)
            if mgr is not None:
                mgr.add(pid, self.cgroup_dirs)
        except Exception as e:
            raise ContainerError(self.context, f"join cgroup: {e}") from None

    def _final_affinity(self, pid: int) -> None:
        """process.execCPUAffinity.final: set by us, after the move into the cgroup and
        before the process asks to exec (it waits for our answer), whatever its seccomp
        filter allows."""
        proc = self.cfg.process
        if proc is None or not (proc.exec_cpu_affinity or {}).get("final"):  # None: never, exec has one
            return
        from pyrunc.errors import KernelError
        from pyrunc.linux import placement

        try:
            with log.step("set process.execCPUAffinity.final"):
                placement.set_final_affinity(self.seams.kernel, pid, proc)
        except KernelError as e:
            raise ContainerError(self.context, str(e)) from None

    def _join_rdt(self, pid: int) -> None:
        """The container's Intel RDT group, as its init's (runc's exec does the same)."""
        if not self.st.intel_rdt:
            return
        from pyrunc.linux import resctrl

        try:
            with log.step("add process to intelRdt group"):
                resctrl.add(self.st.intel_rdt, pid)
        except ContainerError as e:
            raise ContainerError(self.context, str(e)) from None


def _reported(pid: int | None) -> int:
    """The child's pid: spawn's loop holds back each request that needs it until the child
    reported it (_NEED_INIT_PID)."""
    assert pid is not None
    return pid


class Refused(Exception):
    """A failed request whose answer to the child (`text`) is not the error raised: spawn's
    loop answers `error` with the text, then raises `error`."""

    def __init__(self, text: str, error: Exception) -> None:
        super().__init__(text)
        self.error = error
