"""The light commands, `state`, `list`, `start`, `kill` and `delete`: their handlers and flags,
dispatched by cli.main without commands.py, whose table of every command and flag costs
these commands a tenth of their time above the bare interpreter (docs/performance.md).
commands.py puts these same handlers and flags in that table, for help and the man pages.
"""

import posix  # not os, whose import costs `state` and `list` a fifth of their time
import sys

from pyrunc import jsonc
from pyrunc.cli.flags import Flag, boolean, parse
from pyrunc.errors import NoSuchContainer, StateError, UsageError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.log import Logger
    from pyrunc.store import Store

    # The parsed flags (flags.parse): the global ones, a command's own.
    Opts = dict[str, Any]
    # A command: (global flags, its flags, its arguments, the logger) -> exit status.
    Handler = Callable[[Opts, Opts, list[str], Logger], int]


def _store(g: "Opts") -> "Store":
    from pyrunc.store import DEFAULT_ROOT, Store, default_root, uses_xdg_runtime_dir

    if g["root"]:
        return Store(g["root"])
    root = default_root()
    if root == DEFAULT_ROOT and posix.geteuid() != 0:
        # runc's fallback too, but said in a way that tells the user what to do.
        import os

        where = root if os.path.exists(root) else os.path.dirname(root)
        if not os.access(where, os.W_OK | os.X_OK):
            raise StateError(
                f"{root}: permission denied: not root and XDG_RUNTIME_DIR is not set; "
                "set it, or give --root a directory of yours"
            )
    return Store(root, sticky=uses_xdg_runtime_dir())


def _one_id(cmd: str, pos: list[str], extra_ok: bool = False) -> str:
    if not pos:
        raise UsageError(f"{cmd}: missing container id; usage: pyrunc {cmd} <container-id>")
    if len(pos) > 1 and not extra_ok:
        raise UsageError(f"{cmd}: expected one container id, got {len(pos)} arguments")
    return pos[0]


def cmd_state(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import status

    st = status.state(_store(g), _one_id("state", pos))
    sys.stdout.write(jsonc.dumps(st, indent=2) + "\n")
    return 0


def cmd_list(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import status

    if o["format"] not in ("table", "json"):
        raise UsageError(f"list: invalid format {o['format']!r}: use table or json")
    states = status.list_states(_store(g), None if o["quiet"] else _user_name)
    if o["quiet"]:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
        return 0
    if o["format"] == "json":
        sys.stdout.write(jsonc.dumps(states) + "\n")
    else:
        rows: list[tuple[str, ...]] = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [
            (s["id"], str(s.get("pid", 0)), s["status"], s["bundle"], s.get("created", ""), s["owner"]) for s in states
        ]
        sys.stdout.write(_table(rows))
    return 0


_USER_NAMES: dict[int, str] = {}  # uid -> name: getpwuid reads the passwd database on every call


def _user_name(uid: int) -> str:
    """The user owning a state directory, by name as runc shows it."""
    if uid not in _USER_NAMES:
        import pwd

        try:
            _USER_NAMES[uid] = pwd.getpwuid(uid).pw_name
        except KeyError:
            _USER_NAMES[uid] = f"#{uid}"
    return _USER_NAMES[uid]


def _table(rows: list[tuple[str, ...]]) -> str:
    """Go's tabwriter as runc sets it up: cells padded by 3, at least 12 wide; the last
    column is not padded."""
    widths = [max(12, max(map(len, column)) + 3) for column in list(zip(*rows))[:-1]]
    line = "".join(f"%-{w}s" for w in widths) + "%s\n"  # one format per row: `list` may show a thousand
    return "".join([line % r for r in rows])


def cmd_start(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import starting

    starting.start(_store(g), _one_id("start", pos), g["seams"])
    return 0


def cmd_kill(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import signalling
    from pyrunc.linux.signals import parse_signal

    cid = _one_id("kill", pos, extra_ok=True)
    if len(pos) > 2:
        raise UsageError("kill: usage: pyrunc kill <container-id> [signal]")
    sig = parse_signal(pos[1]) if len(pos) > 1 else 15
    signalling.kill(_store(g), cid, sig, g["seams"], all_processes=o["all"])
    return 0


def cmd_delete(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import deletion

    cid = _one_id("delete", pos)
    store = _store(g)
    try:
        deletion.delete(store, cid, g["seams"], force=o["force"], warn=log.warning)
    except NoSuchContainer:
        # runc: deleting a container that does not exist is an error unless forced.
        if o["force"]:
            return 0
        raise
    return 0


LIST_FLAGS = (
    Flag("format|f", default="table", help="select one of: table or json"),
    boolean("quiet|q", help="display only container IDs"),
)
KILL_FLAGS = (boolean("all|a", help="send the signal to all processes in the container"),)
DELETE_FLAGS = (boolean("force|f", help="forcibly delete the container if it is still running (uses SIGKILL)"),)

# name -> (handler, flags); cli.LIGHT_COMMANDS names the same commands.
HANDLERS: "dict[str, tuple[Handler, tuple[Flag, ...]]]" = {
    "state": (cmd_state, ()),
    "list": (cmd_list, LIST_FLAGS),
    "start": (cmd_start, ()),
    "kill": (cmd_kill, KILL_FLAGS),
    "delete": (cmd_delete, DELETE_FLAGS),
}

# Every command's own --help, parsed as its other flags are (runc's urfave/cli does the
# same): after exec's or ps's first argument, a -h is the process's (`exec ID grep -h x`).
HELP = boolean("help|h", help="show help")


def dispatch(name: str, argv: list[str], g: "Opts", log: "Logger") -> int:
    """commands.dispatch for a light command, with the same flags and errors."""
    func, flags = HANDLERS[name]
    opts, pos = parse(argv, flags + (HELP,), name)
    if opts.pop("help"):
        from pyrunc.cli.commands import command_help

        return command_help(name)
    return func(g, opts, pos, log)
