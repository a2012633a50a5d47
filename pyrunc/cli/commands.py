"""The subcommands: runc's names and flags, each a small function over pyrunc.lifecycle.

Heavy modules (jsonschema, the Linux mechanics) are imported inside the commands
that need them, so `state`, `list` and `kill` start fast.
"""

import posix  # not os, whose import costs `state` and `list` a fifth of their time
import sys

from pyrunc import jsonc

# create, run and exec: cli.main dispatches them without this module (containers.py)
from pyrunc.cli.containers import (
    BUNDLE,
    CONSOLE_SOCKET,
    CREATE_FLAGS,
    EXEC_FLAGS,
    NO_PIVOT,
    PID_FILE,
    RUN_FLAGS,
    _int,
    cmd_create,
    cmd_exec,
    cmd_run,
)
from pyrunc.cli.flags import Flag, boolean, parse, repeated

# state, list, start, kill and delete: cli.main dispatches them without this module (light.py)
from pyrunc.cli.light import (
    DELETE_FLAGS,
    HELP,
    KILL_FLAGS,
    LIST_FLAGS,
    _one_id,
    _store,
    cmd_delete,
    cmd_kill,
    cmd_list,
    cmd_start,
    cmd_state,
)
from pyrunc.errors import StateError, UsageError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from pyrunc.log import Logger

    # The parsed flags (flags.parse): the global ones, a command's own.
    Opts = dict[str, Any]
    # A command: (global flags, its flags, its arguments, the logger) -> exit status.
    Handler = Callable[[Opts, Opts, list[str], Logger], int]


class Command:
    __slots__ = ("name", "func", "flags", "args", "help", "passthrough")

    def __init__(
        self, name: str, func: "Handler", flags: "tuple[Flag, ...]", args: str, help: str, passthrough: bool = False
    ) -> None:
        self.name, self.func, self.flags, self.args, self.help = name, func, flags, args, help
        self.passthrough = passthrough


def cmd_spec(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    import os

    from pyrunc.config.default import default_spec

    bundle = o["bundle"] or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise StateError(f"spec: {path} already exists; remove it first")
    with open(path, "w") as f:
        import json

        json.dump(default_spec(rootless=o["rootless"]), f, indent="\t")
        f.write("\n")
    return 0


def cmd_pause(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import control

    control.pause(_store(g), _one_id("pause", pos), g["seams"])
    return 0


def cmd_resume(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import control

    control.resume(_store(g), _one_id("resume", pos), g["seams"])
    return 0


def cmd_ps(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import control

    cid = _one_id("ps", pos, extra_ok=True)
    if o["format"] not in ("table", "json"):
        raise UsageError(f"ps: invalid format {o['format']!r}: use table or json")
    if o["format"] == "json" and len(pos) > 1:
        raise UsageError("ps: ps options cannot be used with --format json")
    pids = control.pids(_store(g), cid, g["seams"])
    if o["format"] == "json":
        # runc's empty list is Go's nil slice: `null`, which engines parse as none.
        sys.stdout.write(jsonc.dumps(pids or None, compact=False) + "\n")
    else:
        sys.stdout.write(control.ps_table(pids, pos[1:]))
    return 0


def _duration(text: str) -> float:
    """A Go duration as runc's --interval takes it: 5s, 100ms, 1m30s, 1h."""
    import re

    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"invalid duration {text!r}: use a number with a unit, like 5s or 500ms")
    seconds = sum(float(n) * units[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"duration must be greater than 0, got {text!r}")
    return seconds


def cmd_events(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import control

    control.events(_store(g), _one_id("events", pos), o["interval"], o["stats"], g["seams"])
    return 0


def cmd_update(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import control
    from pyrunc.cli import update

    cid = _one_id("update", pos)
    control.update(_store(g), cid, update.request(o), g["seams"])
    return 0


UPDATE_FLAGS = (
    Flag(
        "resources|r",
        default=None,
        help="path to a file with the resources (LinuxResources JSON) to update, or '-' for stdin",
    ),
    Flag("blkio-weight", default=None, help="per cgroup weight, from 10 to 1000"),
    Flag("cpu-period", default=None, help="CPU CFS period (usecs); 0 for the system default"),
    Flag("cpu-quota", default=None, help="CPU CFS hardcap limit (usecs) in a period"),
    Flag("cpu-share|cpu-shares", default=None, help="CPU shares (relative weight vs. other containers)"),
    Flag("cpu-rt-period", default=None, help="CPU realtime period (usecs)"),
    Flag("cpu-rt-runtime", default=None, help="CPU realtime hardcap limit (usecs) in a period"),
    Flag("cpuset-cpus", default=None, help="CPU(s) to use"),
    Flag("cpuset-mems", default=None, help="memory node(s) to use"),
    Flag("memory", default=None, help="memory limit (bytes; k, m, g suffixes)"),
    Flag("memory-reservation", default=None, help="memory reservation or soft limit (bytes)"),
    Flag("memory-swap", default=None, help="total memory usage (memory + swap); -1 for unlimited swap"),
    Flag("pids-limit", default=None, help="maximum number of pids in the container"),
    Flag(
        "l3-cache-schema",
        default=None,
        help="the Intel RDT L3 cache schema (e.g. L3:0=7f0), for a container with linux.intelRdt",
    ),
    Flag(
        "mem-bw-schema",
        default=None,
        help="the Intel RDT memory bandwidth schema (e.g. MB:0=20), for a container with linux.intelRdt",
    ),
)


# update --help: what `update -r` takes, a LinuxResources object (config-linux.md) checked
# against the schema; tests/unit/test_cli_help.py checks this example against it too.
UPDATE_FORMAT = """\
The --resources file is a LinuxResources object of the runtime spec (config-linux.md),
as in config.json's linux.resources; unchanged values can be omitted:

{
  "memory": {
    "limit": 0,
    "reservation": 0,
    "swap": 0,
    "swappiness": 0,
    "disableOOMKiller": false,
    "checkBeforeUpdate": false
  },
  "cpu": {
    "shares": 0,
    "quota": 0,
    "burst": 0,
    "period": 0,
    "realtimeRuntime": 0,
    "realtimePeriod": 0,
    "cpus": "",
    "mems": "",
    "idle": 0
  },
  "blockIO": {
    "weight": 10,
    "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}],
    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]
  },
  "pids": {
    "limit": 0
  },
  "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
  "network": {
    "classID": 0,
    "priorities": [{"name": "eth0", "priority": 0}]
  },
  "rdma": {
    "mlx5_1": {"hcaHandles": 0, "hcaObjects": 0}
  },
  "unified": {
    "memory.high": "max"
  }
}

Sizes are in bytes and -1 means no limit where the spec allows it.  linux.resources.devices
cannot be changed by update.  With --resources, the other options are ignored."""

# Text shown after a command's OPTIONS in its help and its man page.
DETAILS = {"update": UPDATE_FORMAT}


# checkpoint's and restore's CRIU flags, runc's names and help.
IMAGE_PATH = Flag("image-path", default="", help="path for saving criu image files")
WORK_PATH = Flag("work-path", default="", help="path for saving work files and logs")
TCP_ESTABLISHED = boolean("tcp-established", help="allow open tcp connections")
EXT_UNIX_SK = boolean("ext-unix-sk", help="allow external unix sockets")
SHELL_JOB = boolean("shell-job", help="allow shell jobs")
FILE_LOCKS = boolean("file-locks", help="handle file locks, for safety")
MANAGE_CGROUPS_MODE = Flag(
    "manage-cgroups-mode", default="", help="cgroups mode: soft|full|strict|ignore (default: soft)"
)
EMPTY_NS = repeated("empty-ns", help="create a namespace, but don't restore its properties (network)")
AUTO_DEDUP = boolean("auto-dedup", help="enable auto deduplication of memory images")
LAZY_PAGES = boolean("lazy-pages", help="use userfaultfd to lazily restore memory pages")
CHECKPOINT_FLAGS = (
    IMAGE_PATH,
    WORK_PATH,
    Flag("parent-path", default="", help="path for previous criu image files in pre-dump"),
    boolean("leave-running", help="leave the process running after checkpointing"),
    TCP_ESTABLISHED,
    EXT_UNIX_SK,
    SHELL_JOB,
    LAZY_PAGES,
    Flag(
        "status-fd",
        default=None,
        convert=_int,
        help="criu writes \\0 to this FD once lazy-pages is ready",
    ),
    FILE_LOCKS,
    boolean("pre-dump", help="dump container's memory information only, leave the container running after this"),
    MANAGE_CGROUPS_MODE,
    EMPTY_NS,
    AUTO_DEDUP,
)
RESTORE_FLAGS = (
    CONSOLE_SOCKET,
    Flag("image-path", default="", help="path to criu image files for restoring"),
    WORK_PATH,
    TCP_ESTABLISHED,
    EXT_UNIX_SK,
    SHELL_JOB,
    FILE_LOCKS,
    MANAGE_CGROUPS_MODE,
    BUNDLE,
    boolean("detach|d", help="detach from the container's process"),
    PID_FILE,
    boolean("no-subreaper", help="disable the use of the subreaper used to reap reparented processes"),
    NO_PIVOT,
    EMPTY_NS,
    AUTO_DEDUP,
    LAZY_PAGES,
)


def cmd_checkpoint(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import checkpoint
    from pyrunc.options import CheckpointOptions

    cid = _one_id("checkpoint", pos)
    checkpoint.checkpoint(_store(g), cid, CheckpointOptions.from_flags(o), g["seams"], criu=g["criu"])
    return 0


def cmd_restore(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc import checkpoint
    from pyrunc.options import RestoreOptions

    cid = _one_id("restore", pos)
    ropts = RestoreOptions.from_flags(o, bundle=o["bundle"] or ".")
    code: int = checkpoint.restore_and_wait(_store(g), cid, ropts, g["seams"], criu=g["criu"], warn=log.warning)
    return code


def cmd_features(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    from pyrunc.features import features

    sys.stdout.write(jsonc.dumps(features(g["seams"].kernel), indent=4) + "\n")
    return 0


def cmd_validate(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    import os

    from pyrunc.config.validate import validate_bundle

    bundle = os.path.abspath(o["bundle"] or ".")
    _, problems = validate_bundle(bundle)
    if not problems:
        sys.stdout.write(f"{bundle}: config.json is valid\n")
        return 0
    for p in problems:
        sys.stdout.write(f"{p}\n")
    # The error line names the first problem: an engine shows the user this line alone.
    more = f" (1 of {len(problems)} problems, all listed on stdout)" if len(problems) > 1 else ""
    line = f"validate: {bundle}/config.json: {problems[0]}{more}"
    log.error(line)
    sys.stderr.write(f"pyrunc: {line}\n")
    return 1


IMAGE_USAGE = (
    "image unpack [--flatten] [--cache DIR] [--platform OS/ARCH[/VARIANT]] SOURCE BUNDLE "
    "[-- ARGS...] | image remove BUNDLE"
)


def cmd_image(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    """The image front end (pyrunc/image/, docs/images.md): apart from the runtime."""
    from pyrunc.image import bundle

    action = pos[0] if pos else None
    if action == "unpack" and len(pos) >= 3:
        record = bundle.unpack(
            g["seams"].kernel,
            pos[1],
            pos[2],
            flatten=o["flatten"],
            cache=o["cache"] or None,
            platform=o["platform"] or None,
            args=pos[3:] or None,
        )
        sys.stdout.write(
            f"{pos[2]}: rootfs ({record['rootfs']}) of {len(record['layers'])} layer(s) "
            f"and config.json from {record['source']}\n"
        )
        return 0
    if action == "remove" and len(pos) == 2:
        bundle.remove(g["seams"].kernel, pos[1])
        return 0
    raise UsageError(f"usage: pyrunc {IMAGE_USAGE}")


def cmd_trace(g: "Opts", o: "Opts", pos: list[str], log: "Logger") -> int:
    """Read a --trace file (pyrunc/trace_show.py, docs/trace.md)."""
    if len(pos) != 2 or pos[0] != "show":
        raise UsageError("usage: pyrunc trace show [-v] FILE")
    from pyrunc import trace_show

    try:
        text = trace_show.show(pos[1], verbose=o["verbose"])
    except OSError as e:
        why = posix.strerror(e.errno).lower() if e.errno is not None else str(e)
        raise StateError(f"trace show: {pos[1]}: {why}") from None
    except trace_show.TraceError as e:
        raise StateError(f"trace show: {pos[1]}: {e}") from None
    sys.stdout.write(text)
    return 0


COMMANDS = {
    c.name: c
    for c in (
        Command(
            "spec",
            cmd_spec,
            (BUNDLE, boolean("rootless", help="generate a config for a rootless container")),
            "",
            "create a new specification file",
        ),
        Command("create", cmd_create, CREATE_FLAGS, "<container-id>", "create a container"),
        Command("start", cmd_start, (), "<container-id>", "executes the user defined process in a created container"),
        Command(
            "run",
            cmd_run,
            RUN_FLAGS,
            "<container-id>",
            "create and run a container",
        ),
        Command(
            "exec",
            cmd_exec,
            EXEC_FLAGS,
            "<container-id> <command> [command options]",
            "execute new process inside the container",
            passthrough=True,
        ),
        Command("state", cmd_state, (), "<container-id>", "output the state of a container"),
        Command(
            "list",
            cmd_list,
            LIST_FLAGS,
            "",
            "lists containers started by pyrunc with the given root",
        ),
        Command(
            "kill",
            cmd_kill,
            KILL_FLAGS,
            "<container-id> [signal]",
            "kill sends the specified signal (default: SIGTERM) to the container's init process",
        ),
        Command(
            "delete",
            cmd_delete,
            DELETE_FLAGS,
            "<container-id>",
            "delete any resources held by the container",
        ),
        Command("pause", cmd_pause, (), "<container-id>", "pause suspends all processes inside the container"),
        Command("resume", cmd_resume, (), "<container-id>", "resumes all processes that have been previously paused"),
        Command(
            "ps",
            cmd_ps,
            (Flag("format|f", default="table", help="select one of: table or json"),),
            "<container-id> [ps options]",
            "ps displays the processes running inside a container",
            passthrough=True,
        ),
        Command(
            "events",
            cmd_events,
            (
                Flag("interval", default=5.0, convert=_duration, shown="5s", help="set the stats collection interval"),
                boolean("stats", help="display the container's stats then exit"),
            ),
            "<container-id>",
            "display container events such as OOM notifications and cpu, memory, and IO usage statistics",
        ),
        Command("update", cmd_update, UPDATE_FLAGS, "<container-id>", "update container resource constraints"),
        Command(
            "checkpoint",
            cmd_checkpoint,
            CHECKPOINT_FLAGS,
            "<container-id>",
            "checkpoint a running container (with CRIU)",
        ),
        Command(
            "restore",
            cmd_restore,
            RESTORE_FLAGS,
            "<container-id>",
            "restore a container from a previous checkpoint (with CRIU)",
        ),
        Command("features", cmd_features, (), "", "show the enabled features"),
        Command("validate", cmd_validate, (BUNDLE,), "", "check a bundle's config.json and list every problem found"),
        Command(
            "image",
            cmd_image,
            (
                boolean("flatten", help="unpack: a plain copy of the layers as the rootfs, not an overlay mount"),
                Flag("cache", default="", shown='"/var/lib/pyrunc/images"', help="unpack: the layer store"),
                Flag(
                    "platform", default="", help="unpack: the image for OS/ARCH[/VARIANT], defaults to this machine's"
                ),
            ),
            "unpack SOURCE BUNDLE | remove BUNDLE",
            "make a bundle from an OCI or docker-save image (oci:DIR[:TAG], oci-archive:FILE[:TAG], "
            "docker-archive:FILE[:TAG]), or remove one",
        ),
        Command(
            "trace",
            cmd_trace,
            (boolean("verbose|v", help="show: list each step's kernel calls"),),
            "show [-v] FILE",
            "show a --trace file as a timeline of steps and kernel calls",
        ),
    )
}


def summary() -> str:
    return "\n".join(f"   {c.name:<10} {c.help}" for c in COMMANDS.values())


def command_help(name: str) -> int:
    from pyrunc.cli.flags import usage_lines

    cmd = COMMANDS.get(name)
    if cmd is None:
        raise UsageError(f"no such command {name!r}")
    sys.stdout.write(
        f"NAME:\n   pyrunc {cmd.name} - {cmd.help}\n\nUSAGE:\n   pyrunc {cmd.name} [command options] {cmd.args}\n"
    )
    if cmd.flags:
        sys.stdout.write("\nOPTIONS:\n" + "\n".join(usage_lines(cmd.flags)) + "\n")
    if cmd.name in DETAILS:
        sys.stdout.write("\n" + DETAILS[cmd.name] + "\n")
    return 0


def print_version() -> int:
    from pyrunc.version import lines

    sys.stdout.write("".join(line + "\n" for line in lines()))
    return 0


def dispatch(name: str, argv: list[str], g: "Opts", log: "Logger") -> int:
    cmd = COMMANDS.get(name)
    if cmd is None:
        raise UsageError(f"unknown command {name!r}; run `pyrunc help` for the list")
    opts, pos = parse(argv, cmd.flags + (HELP,), name, stop_at_positional=cmd.passthrough)
    if opts.pop("help"):
        return command_help(name)
    return cmd.func(g, opts, pos, log)
