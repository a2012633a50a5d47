"""update's input, read on the command line: runc's resource flags or a LinuxResources
file (--resources), and the Intel RDT schemata, into one control.UpdateRequest."""

import sys

from pyrunc import jsonc
from pyrunc.control import UpdateRequest
from pyrunc.errors import UsageError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def request(o: "dict[str, Any]") -> UpdateRequest:
    """The UpdateRequest that update's flags `o` (commands.UPDATE_FLAGS) ask for; with
    --resources, the other resource flags are ignored."""
    resources = resources_from_json(o["resources"]) if o["resources"] is not None else resources_from_flags(o)
    return UpdateRequest(resources, o["l3_cache_schema"], o["mem_bw_schema"])


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text: str, flag: str) -> int:
    """runc's RAMInBytes: 512, 512k, 64m, 1g (binary units, an optional trailing b); -1."""
    t = text.strip().lower()
    if t == "-1":
        return -1
    num = t.rstrip("bkmgtpi")
    unit = t[len(num) :].replace("ib", "").rstrip("b") if t[len(num) :] not in ("", "b") else ""
    try:
        value = float(num)
    except ValueError:
        raise UsageError(f"update: invalid value {text!r} for --{flag}: expected bytes like 512m") from None
    if unit not in _UNITS or value < 0:
        raise UsageError(f"update: invalid value {text!r} for --{flag}: expected bytes like 512m")
    return int(value * _UNITS[unit])


def resources_from_flags(o: "dict[str, Any]") -> "dict[str, Any]":
    """The LinuxResources given by runc update's flags (only those set)."""

    def num(flag: str) -> int:
        try:
            return int(o[flag.replace("-", "_")], 10)
        except ValueError:
            raise UsageError(f"update: invalid value {o[flag.replace('-', '_')]!r} for --{flag}") from None

    res: dict[str, Any] = {}
    mem = {
        k: parse_bytes(o[f.replace("-", "_")], f)
        for k, f in (("limit", "memory"), ("reservation", "memory-reservation"), ("swap", "memory-swap"))
        if o[f.replace("-", "_")] is not None
    }
    if mem:
        res["memory"] = mem
    cpu = {
        k: num(f)
        for k, f in (
            ("shares", "cpu-share"),
            ("quota", "cpu-quota"),
            ("period", "cpu-period"),
            ("realtimeRuntime", "cpu-rt-runtime"),
            ("realtimePeriod", "cpu-rt-period"),
        )
        if o[f.replace("-", "_")] is not None
    }
    for k, f in (("cpus", "cpuset_cpus"), ("mems", "cpuset_mems")):
        if o[f] is not None:
            if not o[f].isascii() or "\0" in o[f]:  # bytes no cpu list holds (nor a write carries)
                raise UsageError(
                    f"update: invalid value {o[f]!r} for --{f.replace('_', '-')}: expected a list like 0-3,5"
                )
            cpu[k] = o[f]
    if cpu:
        res["cpu"] = cpu
    if o["pids_limit"] is not None:
        res["pids"] = {"limit": num("pids-limit")}
    if o["blkio_weight"] is not None:
        res["blockIO"] = {"weight": num("blkio-weight")}
    return res


def resources_from_json(path: str) -> "dict[str, Any]":
    """--resources FILE or -: a LinuxResources object, checked against the schema."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        doc: dict[str, Any] = jsonc.loads(data)  # an object once the schema passes it
    except OSError as e:
        raise UsageError(f"update: read {path}: {(e.strerror or str(e)).lower()}") from None
    except (ValueError, RecursionError) as e:
        raise UsageError(f"update: {'stdin' if path == '-' else path}: {jsonc.problem(e)}") from None
    from pyrunc.config.schema import format_problems, resources_errors
    from pyrunc.config.semantic import check_strings

    # The strings' check of config.json: a NUL or a lone surrogate would fail the write.
    problems = resources_errors(doc) or format_problems(check_strings(doc, None))
    if problems:
        raise UsageError(f"update: {'stdin' if path == '-' else path}: {problems[0]}")
    return doc
