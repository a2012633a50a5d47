"""`exec`: run a new process in a created or running container.

The process is the container's own (its config.json as create saved it) changed by the
command line, or a whole process JSON (--process), as runc builds it; it is validated
like a config.  The child joins the container and gets its init's confinement
(linux/join.py).  Detached, exec returns once the process has exec'd and the caller,
subreaper, collects its status; in the foreground exec waits for it, forwarding signals,
and returns its exit status (128+N when killed by signal N).
"""

import copy
import os

from pyrunc import jsonc, lifecycle, log
from pyrunc.errors import ContainerError, StateError, UsageError

def exec_process(store, cid, args, opts):
    """`opts`: the exec command's flags (cli/commands.py EXEC_FLAGS)."""
    from pyrunc.store import check_id
    check_id(cid)
    if opts["preserve_fds"] < 0:
        raise UsageError(f"--preserve-fds must not be negative, got {opts['preserve_fds']}")
    subs = _sub_cgroups(opts.get("cgroup") or ())
    foreground = not opts["detach"]
    if foreground:
        from pyrunc.linux import kernel
        # The process is our child, or once its first parent exits our orphan to reap.
        kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    with store.open(cid) as cdir:
        st = cdir.read_state()
        status = lifecycle.status_of(st)
        if status in (lifecycle.CREATED, lifecycle.RUNNING) and lifecycle.stopped_by_freezer(st):
            status = lifecycle.PAUSED  # frozen by someone else: paused, as runc reads it
        if status == lifecycle.PAUSED and not opts["ignore_paused"]:
            raise StateError(f"cannot exec in a paused container {cid} (use --ignore-paused to override)")
        if status not in (lifecycle.CREATED, lifecycle.RUNNING, lifecycle.PAUSED):
            raise StateError(f"cannot exec in a {status} container {cid}")
        with log.step("validate process"):
            cfg = _config(cdir, st, args, opts)
        cgroup_dirs = _sub_cgroup_dirs(cid, st, subs) if subs else None
        if cfg.terminal and opts["console_socket"] is None and not foreground:
            raise UsageError("cannot allocate a tty without --console-socket when detached")
        if opts["console_socket"] is not None and not cfg.terminal:
            raise UsageError("--console-socket needs a tty (--tty, or terminal in the process)")
        with log.step("spawn"):
            pid, console = _spawn(store, cid, st, cfg, opts, status == lifecycle.PAUSED, cgroup_dirs)
    log.debug(f"exec {cid}: process {pid} executed {cfg.process.args[0]!r}")
    if opts["pid_file"]:
        from pyrunc.store import write_atomic
        write_atomic(os.path.abspath(opts["pid_file"]), str(pid).encode(), 0o644)
    if opts["pidfd_socket"]:
        lifecycle.send_pidfd(opts["pidfd_socket"], pid)
    if not foreground:
        return 0
    from pyrunc import run
    return run.wait_in_foreground(pid, console)


def _config(cdir, st, args, opts):
    """The container's config with the process this exec runs, validated as a whole."""
    from pyrunc.config import model
    from pyrunc.config.validate import config_problems
    doc = _saved_config(cdir, st)
    doc["process"] = _process(doc.get("process") or {}, args, opts)
    problems = config_problems(doc, st["bundle"])
    if problems:
        # The rest passed create's validation: what is wrong is the process.
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ContainerError(f"exec {st['id']}", f"invalid process: {problems[0]}{more}")
    return model.from_dict(doc, st["bundle"])


def _saved_config(cdir, st):
    path = cdir.file(lifecycle.CONFIG_COPY)
    try:
        with open(path, "rb") as f:
            doc = jsonc.loads(f.read())
    except FileNotFoundError:  # made by an older pyrunc: the bundle's, as runc reads it
        from pyrunc.config.validate import load_config
        return load_config(st["bundle"])
    except (ValueError, RecursionError) as e:
        raise StateError(f"container {cdir.id}: corrupt {path}: {jsonc.problem(e)}") from None
    if not isinstance(doc, dict):
        raise StateError(f"container {cdir.id}: corrupt {path}: not a JSON object")
    return doc


def _process(base, args, opts):
    """runc's rules: --process replaces the process whole; otherwise the container's
    process with these args and the flags' changes.  --cap never reaches the inheritable
    set (CVE-2022-29162), nor the ambient one."""
    if opts["process"]:
        try:
            with open(opts["process"], "rb") as f:
                proc = jsonc.loads(f.read())
        except OSError as e:
            raise UsageError(f"exec: read --process {opts['process']}: {os.strerror(e.errno).lower()}") from None
        except (ValueError, RecursionError) as e:
            raise UsageError(f"exec: --process {opts['process']}: {jsonc.problem(e)}") from None
        if not isinstance(proc, dict):
            raise UsageError(f"exec: --process {opts['process']} is not a JSON object")
        return proc
    if not args:
        raise UsageError("exec: no command given; usage: pyrunc exec <container-id> <command> [args...]")
    proc = copy.deepcopy(base)
    proc["args"] = list(args)
    proc["terminal"] = bool(opts["tty"])
    proc.pop("consoleSize", None)
    if opts["cwd"] is not None:
        proc["cwd"] = opts["cwd"]
    if opts["env"]:
        env = dict(e.partition("=")[::2] for e in proc.get("env") or ())
        for e in opts["env"]:
            name, _, value = e.partition("=")
            env[name] = value
        proc["env"] = [f"{k}={v}" for k, v in env.items()]
    user = proc.setdefault("user", {"uid": 0, "gid": 0})
    if opts["user"] is not None:
        uid, _, gid = opts["user"].partition(":")
        try:
            user["uid"] = int(uid)
            user["gid"] = int(gid) if gid else user.get("gid", 0)
        except ValueError:
            raise UsageError(f"exec: --user {opts['user']!r}: use <uid>[:<gid>] with numbers") from None
    if opts["additional_gids"]:
        try:
            user["additionalGids"] = [int(g) for g in opts["additional_gids"]]
        except ValueError:
            raise UsageError(f"exec: --additional-gids {list(opts['additional_gids'])}: numbers only") from None
    if opts["cap"]:
        caps = proc.setdefault("capabilities", {})
        for name in ("bounding", "effective", "permitted"):
            have = caps.setdefault(name, [])
            have.extend(c for c in opts["cap"] if c not in have)
    if opts["no_new_privs"]:
        proc["noNewPrivileges"] = True
    if opts["apparmor"] is not None:
        proc["apparmorProfile"] = opts["apparmor"]
    if opts["process_label"] is not None:
        proc["selinuxLabel"] = opts["process_label"]
    return proc


def _sub_cgroups(values):
    from pyrunc.linux.cgroups import sub
    try:
        return sub.parse(values)
    except UsageError as e:
        raise UsageError(f"exec: {e}") from None


def _sub_cgroup_dirs(cid, st, subs):
    """--cgroup: the existing sub-cgroups the process joins, checked before it is made."""
    from pyrunc.errors import CgroupError
    mgr = lifecycle.cgroup_manager(st)
    if mgr is None:
        raise ContainerError(f"exec {cid}", "--cgroup: the container has no cgroup (created with --rootless)")
    try:
        return mgr.sub_dirs(subs)
    except CgroupError as e:
        raise ContainerError(f"exec {cid}", f"--cgroup: {e}") from None


def _spawn(store, cid, st, cfg, opts, paused, cgroup_dirs=None):
    """Fork the joining child and serve it until its process has exec'd: (pid, pty master
    for a foreground tty or None).  `paused`: the process joins the frozen cgroup last and
    execs once the container resumes; exec returns without waiting for that."""
    from pyrunc.linux import init as child
    from pyrunc.linux import child_death, join, kernel, spawn
    from pyrunc.linux.protocol import Channel
    program = None
    if cfg.linux.seccomp:
        from pyrunc.linux import seccomp
        with log.step("compile seccomp filter"):
            program = seccomp.program_for(cfg.linux.seccomp, store.root)
    console_fd = lifecycle.connect_console(opts["console_socket"]) if opts["console_socket"] else None
    parent_ch, child_ch = Channel.pair()
    oom_before = _oom_kills(st)  # the container's own, before this process
    notes = child_death.StepNotes()
    reaper = child_death.Subreaper()
    try:
        pid = kernel.fork()
    except BaseException:
        parent_ch.close()
        child_ch.close()
        notes.close()
        reaper.restore()
        raise
    if pid == 0:
        try:
            parent_ch.close()
            keep = [child_ch.fileno(), notes.child()] + ([console_fd] if console_fd is not None else [])
            trace = spawn.traced_child("exec", keep)
            spawn.close_fds_except(3 + opts["preserve_fds"], keep)
            ctx = child.InitContext(cfg, cid, child_ch, None, no_new_keyring=True,
                                    preserve_fds=opts["preserve_fds"], console_sock_fd=console_fd,
                                    seccomp_program=program)
            ctx.create_cwd = False
            ctx.note_fd = notes.fd
            ctx.join_frozen_cgroup = paused
            ctx.step = "open the container's namespaces"
            if trace is not None:
                trace.traced_context(ctx)  # begins the step just named
            try:
                target = join.JoinTarget(st["pid"], st.get("pid_start"))
                if join.join_container(ctx, target):
                    join.exec_in_container(ctx)
                os._exit(0)
            except BaseException as e:
                ctx.traced_failure(e)
                child.report_failure(ctx, e)
        finally:
            os._exit(1)
    child_ch.close()
    if console_fd is not None:
        os.close(console_fd)
    notes.parent()
    served = {"pid": None, "console": None}
    try:
        _serve(parent_ch, cid, st, cfg, paused, cgroup_dirs, notes, served)
    except child_death.Died:
        raise ContainerError(f"exec {cid}", _death(pid, served["pid"], notes, st, oom_before)) from None
    except BaseException:
        for p in {pid, served["pid"]} - {None}:
            lifecycle.kill_and_wait(p)
        raise
    finally:
        parent_ch.close()
        notes.close()
        if served["pid"] != pid:
            spawn.reap(pid)
        reaper.restore()
    return served["pid"], served["console"]


def _oom_kills(st):
    mgr = lifecycle.cgroup_manager(st)
    try:
        return mgr.oom_kills() if mgr is not None else None
    except Exception:  # no memory controller to tell: no hint
        return None


def _death(first_child, exec_pid, notes, st, oom_before):
    """One line for an exec process that died before it was ready: where, how, why."""
    from pyrunc.linux import child_death, spawn
    dead = exec_pid if exec_pid is not None else first_child
    for p in {first_child, exec_pid} - {None}:
        lifecycle.kill_and_wait(p)  # whichever is still there
    if dead != first_child:
        spawn.reap(first_child)  # once it is reaped, its orphan is ours to reap
    status = child_death.reap_status(dead)
    step = notes.read()
    log.child_failed("exec", [step] if step else [])
    oom = None
    if exec_pid is not None and oom_before is not None:  # it joined the container's cgroup
        oom = child_death.oom_figures(lifecycle.cgroup_manager(st), oom_before)
    return child_death.describe("the exec process", step, status, oom,
                                needs="the container's processes and this one need")


def _serve(chan, cid, st, cfg, paused, cgroup_dirs, notes, served):
    from pyrunc.linux import child_death, protocol
    exec_pid = None
    ready = False  # it asked to be in the cgroup, its last request before the exec
    idle = None    # once the process is in the cgroup: a freeze would stop it for good

    def frozen_check():
        if lifecycle.stopped_by_freezer(st):
            raise ContainerError(f"exec {cid}", lifecycle.frozen_message(st.get("cgroup_path")))
    while True:
        msg, fds = chan.recv(idle)
        kind = msg["type"]
        if kind != protocol.EOF:
            notes.read()
        if kind == protocol.EOF:
            if not ready:
                raise child_death.Died()
            return  # the channel is close-on-exec: the process runs
        if kind == protocol.ERROR:
            log.child_failed("exec", msg.get("steps"))
            raise ContainerError(f"exec {cid}", msg["msg"])  # it names what failed
        if kind == protocol.INIT:
            exec_pid = served["pid"] = msg["pid"]
            if not paused:
                # While the process joins the namespaces and sets itself up: the move's
                # wait (an RCU grace period on cgroup v1) overlaps that work.  The
                # process asks (cgroup_joined) before it execs.
                with log.step("add process to cgroup"):
                    _join_cgroup(cid, st, exec_pid, cgroup_dirs)
                idle = frozen_check
                _join_rdt(cid, st, exec_pid)
                _final_affinity(cid, cfg, exec_pid)
        elif kind == protocol.CGROUP_JOINED:
            notes.saw("join cgroup")
            ready = True
            child_death.answer(chan, protocol.OK)
        elif kind == protocol.CONSOLE:
            served["console"] = fds[0]
        elif kind == protocol.JOIN_PAUSED:  # --ignore-paused: the process joins the frozen cgroup last
            try:
                with log.step("add process to cgroup"):
                    _join_cgroup(cid, st, exec_pid, cgroup_dirs)
                _join_rdt(cid, st, exec_pid)
                _final_affinity(cid, cfg, exec_pid)
            except ContainerError as e:
                child_death.answer(chan, protocol.ERROR, msg=str(e))
                raise
            child_death.answer(chan, protocol.OK)
            return  # it is frozen now, ready to exec on resume
        elif kind == protocol.SECCOMP:
            step = "send the seccomp fd to the listener"
            try:
                with log.step(step):
                    lifecycle.send_seccomp_listener(cid, st, lifecycle.status_of(st), cfg, exec_pid, fds[0])
            except Exception as e:
                child_death.answer(chan, protocol.ERROR, msg=str(e))
                raise ContainerError(f"exec {cid}", f"{step}: {e}") from None
            finally:
                for fd in fds:
                    os.close(fd)
            child_death.answer(chan, protocol.OK)
        else:
            raise ContainerError(f"exec {cid}", f"unknown request {kind!r} from the exec process")


def _join_cgroup(cid, st, pid, dirs=None):
    try:
        mgr = lifecycle.cgroup_manager(st)
        if mgr is not None:
            mgr.add(pid, dirs)
    except Exception as e:
        raise ContainerError(f"exec {cid}", f"join cgroup: {e}") from None


def _final_affinity(cid, cfg, pid):
    """process.execCPUAffinity.final: set by us, after the move into the cgroup and before
    the process asks to exec (it waits for our answer), whatever its seccomp filter allows."""
    if not (cfg.process.exec_cpu_affinity or {}).get("final"):
        return
    from pyrunc.errors import KernelError
    from pyrunc.linux import placement
    try:
        with log.step("set process.execCPUAffinity.final"):
            placement.set_final_affinity(pid, cfg.process)
    except KernelError as e:
        raise ContainerError(f"exec {cid}", str(e)) from None


def _join_rdt(cid, st, pid):
    """The container's Intel RDT group, as its init's (runc's exec does the same)."""
    if not st.get("intel_rdt"):
        return
    from pyrunc.linux import resctrl
    try:
        with log.step("add process to intelRdt group"):
            resctrl.add(st["intel_rdt"], pid)
    except ContainerError as e:
        raise ContainerError(f"exec {cid}", str(e)) from None
