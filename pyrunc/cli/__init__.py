"""pyrunc's command line: global flags, then one subcommand from the table in commands.py.

Errors become one line on stderr (`pyrunc: ...`), an error line in the --log file and
exit status 1, as runc does.
"""

import sys

from pyrunc.cli.flags import Flag, boolean, parse
from pyrunc.errors import PyruncError, UsageError

GLOBAL_FLAGS = (
    Flag("root", default=None, help="root directory for storage of container state"),
    Flag("log", default="", help="set the log file to write pyrunc logs to"),
    Flag("log-format", default="text", help="set the log format ('text' or 'json')"),
    boolean("debug", help="enable debug logging"),
    boolean("systemd-cgroup", help="enable systemd cgroup support (not supported: cgroupfs only)"),
    Flag("rootless", default="auto", help="ignore cgroup permission errors ('true', 'false', or 'auto')"),
    Flag("criu", default="criu", help="path to the criu binary (checkpoint is not supported)"),
    boolean("help|h", help="show help"),
    boolean("version|v", help="print the version"),
)

USAGE = """NAME:
   pyrunc - an OCI runtime-spec container runtime in Python, compatible with runc

USAGE:
   pyrunc [global options] command [command options] [arguments...]

COMMANDS:
{commands}

GLOBAL OPTIONS:
{flags}
"""


def _split_global(argv):
    """Global flags are those before the subcommand name."""
    known = {n for f in GLOBAL_FLAGS for n in f.names}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            break
        name = arg.lstrip("-").partition("=")[0]
        flag = next((f for f in GLOBAL_FLAGS if name in f.names), None)
        if flag is None or name not in known:
            break
        i += 1 if ("=" in arg or not flag.takes_value) else 2
    return argv[:i], argv[i:]


def main(argv=None):
    from pyrunc.log import Logger
    argv = sys.argv[1:] if argv is None else argv
    logger = Logger()
    try:
        head, rest = _split_global(argv)
        gopts, _ = parse(head, GLOBAL_FLAGS, "pyrunc")
        logger = Logger(gopts["log"] or None, gopts["log_format"], gopts["debug"])
        if gopts["log_format"] not in ("text", "json"):
            raise UsageError(f"unknown log format {gopts['log_format']!r}: use text or json")
        from pyrunc.cli import commands
        if gopts["version"]:
            return commands.print_version()
        if not rest or gopts["help"] or rest[0] in ("help", "h"):
            if len(rest) > 1 and rest[0] in ("help", "h"):
                return commands.command_help(rest[1])
            sys.stdout.write(USAGE.format(commands=commands.summary(),
                                          flags="\n".join(_flag_lines(GLOBAL_FLAGS))))
            return 0
        return commands.dispatch(rest[0], rest[1:], gopts, logger)
    except PyruncError as e:
        return _fail(str(e), logger)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


def _flag_lines(flags):
    from pyrunc.cli.flags import usage_lines
    return usage_lines(flags)


def _fail(msg, logger):
    logger.error(msg)
    try:
        sys.stderr.write(f"pyrunc: {msg}\n")
        sys.stderr.flush()
    except OSError:
        pass
    return 1

