"""`exec`: run a new process in a created or running container.

The process is the container's own (its config.json as create saved it) changed by the
command line, or a whole process JSON (--process), as runc builds it; it is validated
like a config, or, when only its args (and terminal, no_new_privs) differ from the copy
create validated, in those args alone.  The child joins the container and gets its init's confinement
(linux/join.py).  Detached, exec returns once the process has exec'd and the caller,
subreaper, collects its status; in the foreground exec waits for it, forwarding signals,
and returns its exit status (128+N when killed by signal N).
"""

import os

from pyrunc import jsonc, lifecycle, log
from pyrunc import status as rules
from pyrunc.errors import ContainerError, StateError, UsageError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from pyrunc.config.model import Config
    from pyrunc.linux import Seams
    from pyrunc.options import ExecOptions
    from pyrunc.store import ContainerDir, State, Store


def exec_process(store: "Store", cid: str, args: "Sequence[str]", opts: "ExecOptions", seams: "Seams") -> int:
    """`opts`: an options.ExecOptions, the exec command's flags; `seams`: the command's
    linux.Seams (its kernel and cgroup files)."""
    from pyrunc.store import check_id

    check_id(cid)
    opts.check_preserve_fds()
    subs = _sub_cgroups(opts.cgroup) if opts.cgroup else {}
    foreground = not opts.detach
    if foreground:
        from pyrunc.linux import kernel

        # The process is our child, or once its first parent exits our orphan to reap.
        seams.kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    with store.open(cid) as cdir:
        st = cdir.read_state()
        status = lifecycle.status_of(st)
        if status in (lifecycle.CREATED, lifecycle.RUNNING) and lifecycle.stopped_by_freezer(st, seams):
            status = lifecycle.PAUSED  # frozen by someone else: paused, as runc reads it
        rules.check("exec", cid, status, ignore_paused=opts.ignore_paused)
        assert st is not None  # status_of(None) is creating, which check refuses
        with log.step("validate process"):
            cfg = _config(cdir, st, args, opts)
        cgroup_dirs = _sub_cgroup_dirs(cid, st, subs, seams) if subs else None
        opts.check_terminal(cfg.terminal, foreground)
        with log.step("spawn"):
            pid, console = _spawn(store, cid, st, cfg, opts, seams, status == lifecycle.PAUSED, cgroup_dirs)
    assert cfg.process is not None  # _process gave it one
    log.debug(f"exec {cid}: process {pid} executed {cfg.process.args[0]!r}")
    if opts.pid_file:
        lifecycle.write_pid_file(opts.pid_file, pid)
    if opts.pidfd_socket:
        lifecycle.send_pidfd(opts.pidfd_socket, pid, seams.kernel)
    if not foreground:
        return 0
    from pyrunc import run

    return run.wait_in_foreground(pid, console, seams.kernel)


def _config(cdir: "ContainerDir", st: "State", args: "Sequence[str]", opts: "ExecOptions") -> "Config":
    """The container's config with the process this exec runs, validated: whole, or,
    when the process is the config copy's (validated at create) with only its args,
    terminal or no_new_privs changed, in its args alone."""
    from pyrunc.config import model

    doc, copied = _saved_config(cdir, st)
    base = doc.get("process")
    doc["process"] = _process(base or {}, args, opts)
    if copied and base is not None and _only_args_changed(opts):
        from pyrunc.config.exec_limits import exec_args_problems

        problems = exec_args_problems(doc["process"])
    else:
        from pyrunc.config.validate import config_problems

        problems = config_problems(doc, st.bundle)
    if problems:
        # The rest passed create's validation: what is wrong is the process.
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ContainerError(f"exec {st.id}", f"invalid process: {problems[0]}{more}")
    return model.from_dict(doc, st.bundle)


def _only_args_changed(opts: "ExecOptions") -> bool:
    """Whether exec's flags leave the container's process as it is but for its args,
    terminal and no_new_privs (a bool either way): nothing else of it to check again."""
    return not (
        opts.process
        or opts.cwd is not None
        or opts.env
        or opts.user is not None
        or opts.additional_gids
        or opts.cap
        or opts.apparmor is not None
        or opts.process_label is not None
    )


def _saved_config(cdir: "ContainerDir", st: "State") -> "tuple[dict[str, Any], bool]":
    """(the container's config, whether it is the copy create validated)."""
    path = cdir.file(lifecycle.CONFIG_COPY)
    try:
        with open(path, "rb") as f:
            doc = jsonc.loads(f.read())
    except FileNotFoundError:  # made by an older pyrunc: the bundle's, as runc reads it
        from pyrunc.config.validate import load_config

        return load_config(st.bundle), False
    except (ValueError, RecursionError) as e:
        raise StateError(f"container {cdir.id}: corrupt {path}: {jsonc.problem(e)}") from None
    if not isinstance(doc, dict):
        raise StateError(f"container {cdir.id}: corrupt {path}: not a JSON object")
    return doc, True


def _process(base: "dict[str, Any]", args: "Sequence[str]", opts: "ExecOptions") -> "dict[str, Any]":
    """runc's rules: --process replaces the process whole; otherwise the container's
    process with these args and the flags' changes.  --cap never reaches the inheritable
    set (CVE-2022-29162), nor the ambient one."""
    if opts.process:
        try:
            with open(opts.process, "rb") as f:
                given = jsonc.loads(f.read())
        except OSError as e:
            why = os.strerror(e.errno).lower() if e.errno is not None else str(e)
            raise UsageError(f"exec: read --process {opts.process}: {why}") from None
        except (ValueError, RecursionError) as e:
            raise UsageError(f"exec: --process {opts.process}: {jsonc.problem(e)}") from None
        if not isinstance(given, dict):
            raise UsageError(f"exec: --process {opts.process} is not a JSON object")
        return given
    if not args:
        raise UsageError("exec: no command given; usage: pyrunc exec <container-id> <command> [args...]")
    # A copy through JSON (base is the config copy's JSON): copy.deepcopy costs exec 1.5 ms of imports.
    proc: dict[str, Any] = jsonc.loads(jsonc.dumps(base))
    proc["args"] = list(args)
    proc["terminal"] = bool(opts.tty)
    proc.pop("consoleSize", None)
    if opts.cwd is not None:
        proc["cwd"] = opts.cwd
    if opts.env:
        env = dict(e.partition("=")[::2] for e in proc.get("env") or ())
        for item in opts.env:
            name, _, value = item.partition("=")
            env[name] = value
        proc["env"] = [f"{k}={v}" for k, v in env.items()]
    user = proc.setdefault("user", {"uid": 0, "gid": 0})
    if opts.user is not None:
        uid, _, gid = opts.user.partition(":")
        try:
            user["uid"] = int(uid)
            user["gid"] = int(gid) if gid else user.get("gid", 0)
        except ValueError:
            raise UsageError(f"exec: --user {opts.user!r}: use <uid>[:<gid>] with numbers") from None
    if opts.additional_gids:
        try:
            user["additionalGids"] = [int(g) for g in opts.additional_gids]
        except ValueError:
            raise UsageError(f"exec: --additional-gids {list(opts.additional_gids)}: numbers only") from None
    if opts.cap:
        caps = proc.setdefault("capabilities", {})
        for name in ("bounding", "effective", "permitted"):
            have = caps.setdefault(name, [])
            have.extend(c for c in opts.cap if c not in have)
    if opts.no_new_privs:
        proc["noNewPrivileges"] = True
    if opts.apparmor is not None:
        proc["apparmorProfile"] = opts.apparmor
    if opts.process_label is not None:
        proc["selinuxLabel"] = opts.process_label
    return proc


def _sub_cgroups(values: "Sequence[str]") -> dict[str, str]:
    from pyrunc.linux.cgroups import sub

    try:
        subs: dict[str, str] = sub.parse(list(values))
    except UsageError as e:
        raise UsageError(f"exec: {e}") from None
    return subs


def _sub_cgroup_dirs(cid: str, st: "State", subs: dict[str, str], seams: "Seams") -> dict[str, str]:
    """--cgroup: the existing sub-cgroups the process joins, checked before it is made."""
    from pyrunc.errors import CgroupError

    mgr = lifecycle.cgroup_manager(st, seams)
    if mgr is None:
        raise ContainerError(f"exec {cid}", "--cgroup: the container has no cgroup (created with --rootless)")
    try:
        dirs: dict[str, str] = mgr.sub_dirs(subs)
    except CgroupError as e:
        raise ContainerError(f"exec {cid}", f"--cgroup: {e}") from None
    return dirs


def _spawn(
    store: "Store",
    cid: str,
    st: "State",
    cfg: "Config",
    opts: "ExecOptions",
    seams: "Seams",
    paused: bool,
    cgroup_dirs: dict[str, str] | None = None,
) -> "tuple[int, int | None]":
    """Fork the joining child and serve it until its process has exec'd: (pid, pty master
    for a foreground tty or None).  `paused`: the process joins the frozen cgroup last and
    execs once the container resumes; exec returns without waiting for that."""
    from pyrunc.linux import requests, spawn

    program = None
    if cfg.linux.seccomp:
        from pyrunc.linux import seccomp

        with log.step("compile seccomp filter"):
            program = seccomp.program_for(cfg.linux.seccomp, store.root)
    console_fd = lifecycle.connect_console(opts.console_socket) if opts.console_socket else None
    assert st.pid is not None  # created, running or paused: the rules checked it
    answers = requests.ExecRequests(cid, st, cfg, seams, paused, cgroup_dirs)
    spawned = spawn.spawn_exec(
        cfg,
        cid,
        st.pid,
        st.pid_start,
        answers,
        seams.kernel,
        preserve_fds=opts.preserve_fds,
        console_sock_fd=console_fd,
        seccomp_program=program,
    )
    return spawned.pid, spawned.console
