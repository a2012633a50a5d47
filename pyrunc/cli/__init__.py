"""pyrunc's command line: global flags, then one subcommand from the table in commands.py.

Errors become one line on stderr (`pyrunc: ...`), an error line in the --log file and
exit status 1 (255 for a failed exec, whose own process's status is anything else), as
runc does.
"""

import gc
import posix  # not os, whose import costs `state` and `list` a fifth of their time
import sys

# The cyclic GC, off while the modules load when the interpreter was started as the
# installed command starts it (-I -S, pyrunc/launcher): the imports make no garbage, and
# its passes over every object cost a light command a twentieth of its time above the
# bare interpreter.  main turns it back on for every command but the light ones and those
# that start a container process (GC_AT_WAIT); a test or an embedding program that imports
# the CLI keeps its own setting.
_GC_OFF = bool(sys.flags.isolated and sys.flags.no_site)
if _GC_OFF:
    gc.disable()


def gc_for_wait() -> None:
    """The cyclic GC back on, where main left it off, for a long wait (run's and exec's
    for their process: run.wait_in_foreground).  What is there now, the modules' objects
    for the most part, is frozen first (gc.freeze): the first pass would otherwise walk
    all of it, 1.5 ms."""
    if _GC_OFF:
        gc.freeze()
        gc.enable()


from pyrunc import getenv  # noqa: E402 -- after the GC is off
from pyrunc.cli.flags import Flag, boolean, parse  # noqa: E402
from pyrunc.errors import PyruncError, UsageError  # noqa: E402

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any, NoReturn

    from pyrunc.log import Logger

GLOBAL_FLAGS = (
    Flag(
        "root",
        default=None,
        shown='"/run/pyrunc"',  # store.DEFAULT_ROOT (a test keeps them equal)
        help="root directory for storage of container state (this should be located in tmpfs)",
    ),
    Flag("log", default="", help="set the log file to write pyrunc logs to (default is '/dev/stderr')"),
    Flag("log-format", default="text", help="set the log format ('text' or 'json')"),
    boolean("debug", help="enable debug logging"),
    boolean(
        "systemd-cgroup",
        help=(
            "enable systemd cgroup support: the container's cgroup is a transient systemd scope "
            '<prefix>-<name>.scope in <slice>, cgroupsPath of the form "slice:prefix:name" (needs systemd as PID 1)'
        ),
    ),
    Flag(
        "rootless",
        default="auto",
        help="ignore cgroup permission errors ('true', 'false', or 'auto': when not root or in a user namespace)",
    ),
    Flag("trace", default="", help="append a JSON-lines step trace of the operation to FILE (or PYRUNC_TRACE=FILE)"),
    Flag("criu", default="criu", help="path to the criu binary used for checkpoint and restore"),
    boolean("help|h", help="show help"),
    boolean("version|v", help="print the version"),
)

# Commands that start container processes, from a sealed interpreter (linux/sealed_exe.py).
SEALED_COMMANDS = ("create", "run", "exec")

# Short commands that read, start or signal a container: dispatched through cli/light.py, not
# the table of every command (commands.py), and with the cyclic GC left off (a process of
# a few milliseconds that makes no cycles worth collecting).
LIGHT_COMMANDS = ("state", "list", "start", "kill", "delete")

# create, run and exec: the GC stays off until their process runs and they wait for it in
# the foreground (gc_for_wait; create and a detached run never do).  Their imports and the
# work up to the fork make no cycles worth collecting; the passes cost exec 1.5 ms and run
# 2, and more in the forked children, where each page a pass walks is copied (issue 23).
GC_AT_WAIT = ("create", "run", "exec")

USAGE = """NAME:
   pyrunc - an OCI runtime-spec container runtime in Python, compatible with runc

USAGE:
   pyrunc [global options] command [command options] [arguments...]

COMMANDS:
{commands}

GLOBAL OPTIONS:
{flags}
"""


def _split_global(argv: list[str]) -> tuple[list[str], list[str], str | None]:
    """Global flags are those before the subcommand name: (flags, rest, unknown flag or None).

    An unknown flag ends the split, to be reported once the --log before it is set up.
    """
    by_name = {n: f for f in GLOBAL_FLAGS for n in f.names}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            break
        if arg == "--":
            return argv[:i], argv[i + 1 :], None
        name = arg.lstrip("-").partition("=")[0]
        flag = by_name.get(name)
        if flag is None:
            return argv[:i], argv[i:], arg.partition("=")[0]
        i += 1 if ("=" in arg or not flag.takes_value) else 2
    return argv[:i], argv[i:], None


def _check_globals(g: "dict[str, Any]") -> None:
    if g["log_format"] not in ("text", "json"):
        raise UsageError(f"invalid --log-format {g['log_format']!r}: use text or json")
    if g["rootless"].lower() not in ("true", "false", "auto", "1", "0", "t", "f"):
        raise UsageError(f"invalid --rootless {g['rootless']!r}: use true, false or auto")


def main(argv: list[str] | None = None) -> int:
    from pyrunc import log

    argv = sys.argv[1:] if argv is None else argv
    logger = log.current
    rest: list[str] = []
    try:
        head, rest, unknown = _split_global(argv)
        if _GC_OFF and (not rest or rest[0] not in LIGHT_COMMANDS + GC_AT_WAIT):
            gc.enable()  # a longer life: run waits for its container, events loops
        gopts, _ = parse(head, GLOBAL_FLAGS, "pyrunc")
        logger = log.setup(gopts["log"] or None, gopts["log_format"], gopts["debug"])
        try:
            logger.check()
        except OSError as e:
            logger = log.setup(None, gopts["log_format"], gopts["debug"])
            why = posix.strerror(e.errno).lower() if e.errno is not None else str(e)
            raise UsageError(f"--log {gopts['log']}: {why}") from None
        if unknown:
            raise UsageError(f"unknown global flag {unknown!r}; run `pyrunc --help` for the list")
        _check_globals(gopts)
        trace_path = gopts["trace"] or getenv("PYRUNC_TRACE")
        tracing = bool(trace_path and rest and rest[0] != "trace")
        # The command's kernel and cgroup files, made once and passed down (linux.Seams).
        from pyrunc.linux import Seams

        gopts["seams"] = seams = Seams(tracing=tracing)
        if rest and rest[0] in SEALED_COMMANDS:
            # Before the commands' imports: the first start's work is thrown away.
            from pyrunc.linux.sealed_exe import run_sealed

            run_sealed(seams.kernel)
            from pyrunc.linux.proctitle import show_command  # `pyrunc ...` in ps, not python

            show_command(seams.kernel, argv)
        if tracing:
            from pyrunc import trace

            trace.enable(trace_path, "runtime")
        if gopts["version"] or not rest or gopts["help"] or rest[0] in ("help", "h"):
            from pyrunc.cli import commands

            if gopts["version"]:
                return commands.print_version()
            if len(rest) > 1 and rest[0] in ("help", "h"):
                return commands.command_help(rest[1])
            sys.stdout.write(USAGE.format(commands=commands.summary(), flags="\n".join(_flag_lines(GLOBAL_FLAGS))))
            return 0
        logger.debug(f"command: {' '.join(rest)}")
        with log.step(rest[0]):
            if rest[0] in LIGHT_COMMANDS:
                from pyrunc.cli import light

                return light.dispatch(rest[0], rest[1:], gopts, logger)
            if rest[0] in SEALED_COMMANDS:
                from pyrunc.cli import containers

                return containers.dispatch(rest[0], rest[1:], gopts, logger)
            from pyrunc.cli import commands

            return commands.dispatch(rest[0], rest[1:], gopts, logger)
    except PyruncError as e:
        return _fail(str(e), logger, getattr(e, "exit_code", 1))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except OSError as e:  # a kernel call nothing above expected to fail: one line, no traceback
        from pyrunc.errors import one_line

        return _fail(one_line(e), logger, getattr(e, "exit_code", 1))
    except Exception as e:  # noqa: BLE001 -- the last net: a bug, still one line and exit 1
        # (255 for exec, as its other failures: not to be taken for the process's status)
        return _internal_error(e, logger, 255 if rest[:1] == ["exec"] else 1)


def launch() -> "NoReturn":
    """The installed command (pyrunc/launcher): main, then exit at once.  Tearing the
    interpreter down (module dicts, the GC) costs milliseconds that nobody needs: output
    is flushed, fds close with the process."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            code = code or 1
    if getenv("PYRUNC_CGROUP_WARM_UP") or "pyrunc.linux.cgroup_warm_up" in sys.modules:
        from pyrunc.linux import cgroup_warm_up  # the launcher's helper: never left running

        cgroup_warm_up.stop()
    posix._exit(code if isinstance(code, int) else 1)


def _flag_lines(flags: "Sequence[Flag]") -> "Iterator[str]":
    from pyrunc.cli.flags import usage_lines

    return usage_lines(flags)


def _internal_error(exc: Exception, logger: "Logger", code: int) -> int:
    """An exception no code above turned into a message: one line naming it (every input
    found to reach here gets its own message instead); the traceback only with --debug."""
    if logger.debug_enabled:
        import traceback

        logger.debug("".join(traceback.format_exception(exc)).rstrip("\n"))
    text = str(exc).replace("\n", " ")
    if len(text) > 300:
        text = text[:297] + "..."
    return _fail(f"internal error: {type(exc).__name__}{': ' + text if text else ''}", logger, code)


def _fail(msg: str, logger: "Logger", code: int = 1) -> int:
    from pyrunc.log import last_steps, stderr_line

    steps = last_steps()
    logger.error(f"{msg} (steps: {steps})" if steps else msg)
    stderr_line(f"pyrunc: {msg}")
    return code
