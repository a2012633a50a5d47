"""create, run and exec: their handlers and flags, dispatched by cli.main without
commands.py, whose table of every command and flag would cost each of them 0.2 ms more
before its fork (docs/performance.md, part K), as cli/light.py does for the light
commands.  commands.py puts these same handlers and flags in that table, for help and
the man pages.
"""

import posix  # not os, whose import costs `state` and `list` a fifth of their time

from pyrunc.cli.flags import Flag, boolean, parse, repeated
from pyrunc.cli.light import HELP, _one_id, _store
from pyrunc.errors import PyruncError, UsageError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.log import Logger
    from pyrunc.options import CreateOptions

    # The parsed flags (flags.parse): the global ones, a command's own.
    Opts = dict[str, Any]


def _int(value: str) -> int:
    return int(value, 10)


BUNDLE = Flag(
    "bundle|b", default="", help="path to the root of the bundle directory, defaults to the current directory"
)
CONSOLE_SOCKET = Flag("console-socket", default=None, help="path to an AF_UNIX socket to receive the pty master")
PID_FILE = Flag("pid-file", default=None, help="file to write the process id to")
NO_PIVOT = boolean("no-pivot", help="do not use pivot_root (for a rootfs on ramfs)")
NO_NEW_KEYRING = boolean("no-new-keyring", help="do not create a new session keyring")
PRESERVE_FDS = Flag(
    "preserve-fds", default=0, convert=_int, help="pass N additional file descriptors (from 3) to the container"
)
PIDFD_SOCKET = Flag("pidfd-socket", default=None, help="path to an AF_UNIX socket to receive a pidfd of the process")
CREATE_FLAGS = (BUNDLE, CONSOLE_SOCKET, PID_FILE, NO_PIVOT, NO_NEW_KEYRING, PRESERVE_FDS, PIDFD_SOCKET)
RUN_FLAGS = CREATE_FLAGS + (
    boolean("detach|d", help="detach from the container's process"),
    boolean("keep", help="do not delete the container after it exits"),
    boolean("no-subreaper", help="disable the use of the subreaper used to reap reparented processes"),
)
EXEC_FLAGS = (
    CONSOLE_SOCKET,
    PIDFD_SOCKET,
    PID_FILE,
    PRESERVE_FDS,
    Flag("cwd", default=None, help="current working directory in the container"),
    repeated("env|e", help="set environment variables (NAME=value; may be repeated)"),
    boolean("tty|t", help="allocate a pseudo-TTY"),
    Flag("user|u", default=None, help="UID (format: <uid>[:<gid>])"),
    repeated("additional-gids|g", help="additional gids (may be repeated)"),
    Flag("process|p", default=None, help="path to the process.json"),
    boolean("detach|d", help="detach from the container's process"),
    Flag("process-label", default=None, help="set the asm process label for the process commonly used with selinux"),
    Flag("apparmor", default=None, help="set the apparmor profile for the process"),
    boolean("no-new-privs", help="set the no new privileges value for the process"),
    repeated("cap|c", help="add a capability to the bounding set for the process (may be repeated)"),
    boolean("ignore-paused", help="allow exec in a paused container"),
    repeated(
        "cgroup",
        help="run the process in an (existing) sub-cgroup(s); format is [<controller>:]<cgroup> (may be repeated)",
    ),
)


def _create_opts(g: "Opts", o: "Opts") -> "CreateOptions":
    from pyrunc.options import CreateOptions

    return CreateOptions.from_flags(
        o, bundle=o["bundle"] or ".", systemd_cgroup=g["systemd_cgroup"], rootless=g["rootless"].lower()
    )


def _reserve_passed_fds(o: "Opts", listen: bool = True) -> None:
    """Before the store opens anything: the numbers of the fds the container inherits
    are the caller's alone (linux/passed_fds.py)."""
    from pyrunc.linux import passed_fds

    passed_fds.reserve(3 + (passed_fds.listen_fds(posix.getpid()) if listen else 0) + max(o["preserve_fds"], 0))


def cmd_create(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import lifecycle

    cid = _one_id("create", pos)
    _reserve_passed_fds(o)
    lifecycle.create(_store(g), cid, _create_opts(g, o), g["seams"])
    return 0


def cmd_run(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import run

    cid = _one_id("run", pos)
    _reserve_passed_fds(o)
    code: int = run.run(
        _store(g),
        cid,
        _create_opts(g, o),
        g["seams"],
        detach=o["detach"],
        keep=o["keep"],
        subreaper=not o["no_subreaper"],
        warn=log.warning,
    )
    return code


EXEC_FAILED = 255


def cmd_exec(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import exec_in
    from pyrunc.options import ExecOptions

    if not pos:
        raise UsageError("exec: missing container id; usage: pyrunc exec <container-id> <command> [args...]")
    _reserve_passed_fds(o, listen=False)
    try:
        code: int = exec_in.exec_process(_store(g), pos[0], pos[1:], ExecOptions.from_flags(o), g["seams"])
    except (PyruncError, OSError) as e:
        # runc: 255 when the runtime fails, so that it is not taken for the process's status.
        # An attribute of this one exception, which cli.main reads with getattr.
        e.exit_code = EXEC_FAILED  # type: ignore[union-attr]
        raise
    return code


# name: (handler, its flags, whether its arguments end at the first positional: exec's command)
HANDLERS = {
    "create": (cmd_create, CREATE_FLAGS, False),
    "run": (cmd_run, RUN_FLAGS, False),
    "exec": (cmd_exec, EXEC_FLAGS, True),
}


def dispatch(name: str, argv: list[str], g: "Opts", log: "Logger") -> int:
    """commands.dispatch for create, run and exec, with the same flags and errors."""
    func, flags, passthrough = HANDLERS[name]
    opts, pos = parse(argv, flags + (HELP,), name, stop_at_positional=passthrough)
    if opts.pop("help"):
        from pyrunc.cli.commands import command_help

        return command_help(name)
    return func(g, opts, pos, log)
