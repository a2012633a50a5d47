"""`pyrunc trace show FILE [-v]`: a step trace (pyrunc/trace.py) as a readable timeline.

One line per step (start offset from the first record, duration, process, kernel calls),
the kernel calls indented under their step with -v, then a per-step breakdown and the
total.  Steps that wait on another process (the start, hooks, the cgroup join) are
marked "waiting": their time is not pyrunc's work.
"""

from pyrunc import jsonc

# Annotations name typing's types only for mypy (quoted): importing typing costs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    Record = dict[str, Any]  # one line of the trace, as trace.py writes it


class TraceError(ValueError):
    """A line of the trace is not a record trace.py writes: `line N: why`."""


# The fields render() reads, by record type: (name, type, required).  A line missing one,
# or holding another type, would otherwise end in a traceback (a file cut or edited).
_FIELDS = {
    "header": (("proc", str, True), ("pid", int, True), ("mono", int, True)),
    "step": (
        ("ev", str, True),
        ("name", str, True),
        ("proc", str, True),
        ("pid", int, True),
        ("mono", int, True),
        ("depth", int, False),
        ("dur", int, False),
        ("error", dict, False),
    ),
    "call": (
        ("name", str, True),
        ("mono", int, True),
        ("args", dict, False),
        ("flags", dict, False),
        ("error", dict, False),
        ("dur", int, False),
    ),
    "fail": (("step", str, False), ("proc", str, False), ("error", dict, False)),
}


_TYPE_NAMES = {str: "a string", int: "an integer", dict: "an object"}
_MAX_DEPTH = 64  # steps nest a few deep; the depth indents a line


def _shape_problem(rec: object) -> str | None:
    if not isinstance(rec, dict):
        return "not a JSON object"
    fields = _FIELDS.get(str(rec.get("t")))
    if fields is None:
        return f"unknown record type {rec.get('t')!r}"
    for name, typ, required in fields:
        if name not in rec:
            if required:
                return f"a {rec['t']} record without {name!r}"
        elif not isinstance(rec[name], typ) or (typ is int and isinstance(rec[name], bool)):
            return f"{rec['t']} record: {name!r} is not {_TYPE_NAMES[typ]}"
        elif typ is int and not 0 <= rec[name] < (_MAX_DEPTH if name == "depth" else 2**63):
            return f"{rec['t']} record: {name!r} is out of range: {rec[name]}"
    if not isinstance(rec.get("sid"), (str, type(None))):
        return f"{rec['t']} record: 'sid' is not a string"
    for key in ("error",):
        err = rec.get(key) or {}
        if not all(isinstance(err.get(k, ""), str) for k in ("msg", "type", "errno")):
            return f"{rec['t']} record: {key!r} holds a value that is not a string"
    if not all(isinstance(v, str) for v in (rec.get("flags") or {}).values()):
        return "call record: 'flags' holds a value that is not a string"
    return None


def load(lines: "Iterable[str]") -> "list[Record]":
    """The records of a trace's lines (blank lines skipped); TraceError names the first
    line that is not JSON, or not a record of the shape trace.py writes."""
    records: list[Record] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = jsonc.loads(line)
        except (ValueError, RecursionError) as e:
            # json's line is always 1 here: the column is the one in the file's line.
            raise TraceError(f"line {n}: {jsonc.problem(e).replace('at line 1 column', 'at column')}") from None
        problem = _shape_problem(rec)
        if problem:
            raise TraceError(f"line {n}: {problem}")
        records.append(rec)
    return records


class StepView:
    __slots__ = ("sid", "name", "proc", "pid", "depth", "start", "dur", "wait", "error", "calls")

    def __init__(self, rec: "Record") -> None:
        self.sid, self.name, self.proc, self.pid = rec.get("sid"), rec["name"], rec["proc"], rec["pid"]
        self.depth, self.start = rec.get("depth", 0), rec["mono"]
        self.dur = rec.get("dur")
        self.wait = bool(rec.get("wait"))
        self.error = rec.get("error")
        self.calls: list[Record] = []


def steps_of(records: "list[Record]") -> list[StepView]:
    """The steps, in order of their start, each with its kernel calls."""
    by_sid: dict[str | None, StepView] = {}
    for rec in records:
        if rec["t"] != "step":
            continue
        view = by_sid.get(rec.get("sid"))
        if view is None:
            view = by_sid[rec.get("sid")] = StepView(rec)
        if rec.get("ev") == "end":
            view.dur, view.error = rec.get("dur"), rec.get("error")
    for rec in records:
        if rec["t"] == "call" and rec.get("sid") in by_sid:
            by_sid[rec["sid"]].calls.append(rec)
    return sorted(by_sid.values(), key=lambda s: s.start)


def ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.3f}ms"


def call_line(rec: "Record") -> str:
    args = rec.get("args") or {}
    flags = rec.get("flags") or {}
    shown = []
    for name, value in args.items():
        text = flags.get(name) or (
            jsonc.dumps(value) if not isinstance(value, int) or isinstance(value, bool) else str(value)
        )
        if len(text) > 80:
            text = text[:77] + "..."
        shown.append(f"{name}={text}")
    if "error" in rec:
        err = rec["error"]
        outcome = f"-> {err.get('errno', err.get('type', 'error'))}: {err.get('msg', '')}"
    else:
        outcome = "-> " + jsonc.dumps(rec.get("result"))
    return f"{rec['name']}({', '.join(shown)}) {outcome}  [{ms(rec.get('dur'))}]"


def render(records: "list[Record]", verbose: bool = False) -> list[str]:
    """The report, as a list of lines."""
    if not records:
        return ["empty trace"]
    origin = min((r["mono"] for r in records if isinstance(r.get("mono"), int)), default=0)
    steps = steps_of(records)
    procs = [r for r in records if r["t"] == "header"]
    ncalls = sum(1 for r in records if r["t"] == "call")
    w = max([8] + [len(s.proc) for s in steps])  # "exec process" is longer than the rest
    out = [
        f"{len(procs)} processes, {len(steps)} steps, {ncalls} kernel calls",
        "",
        f"{'start':>10} {'duration':>11}  {'process':<{w}} {'pid':>7} {'calls':>5}  step",
    ]
    for s in steps:
        mark = ""
        if s.wait:
            mark += "  (waiting)"
        if s.dur is None:
            mark += "  (no end: exec or exit)"
        if s.error:
            mark += f"  FAILED: {s.error.get('errno', s.error.get('type', ''))} {s.error.get('msg', '')}".rstrip()
        out.append(
            f"{'+' + ms(s.start - origin):>10} {ms(s.dur):>11}  {s.proc:<{w}} {s.pid:>7} "
            f"{len(s.calls):>5}  {'  ' * s.depth}{s.name}{mark}"
        )
        if verbose:
            for c in s.calls:
                out.append(
                    f"{'':>10} {'':>11}  {'':<{w}} {'':>7} {'':>5}  {'  ' * s.depth}    "
                    f"+{ms(c['mono'] - origin)} {call_line(c)}"
                )
    out += [
        "",
        "breakdown (steps by name, innermost only):",
        f"{'count':>5} {'total':>11} {'calls':>5}  {'kind':<8} step",
    ]
    parents = {(s.pid, s.depth - 1) for s in steps if s.depth > 0}
    table: dict[tuple[str, str], list[Any]] = {}
    for s in steps:
        has_children = (
            any(
                o.pid == s.pid
                and o.depth == s.depth + 1
                and o.start >= s.start
                and (s.dur is None or o.start <= s.start + s.dur)
                for o in steps
            )
            if (s.pid, s.depth) in parents
            else False
        )
        if has_children:
            continue
        row = table.setdefault((s.proc, s.name), [0, 0, 0, s.wait])
        row[0] += 1
        row[1] += s.dur or 0
        row[2] += len(s.calls)
    working = waiting = 0
    for (proc, name), (count, total, calls, wait) in sorted(table.items(), key=lambda kv: -kv[1][1]):
        out.append(f"{count:>5} {ms(total):>11} {calls:>5}  {'waiting' if wait else 'working':<8} {proc}: {name}")
        if wait:
            waiting += total
        else:
            working += total
    tops = [s for s in steps if s.proc == "runtime" and s.depth == 0 and s.dur is not None]
    end = max((r["mono"] + (r.get("dur") or 0) for r in records if isinstance(r.get("mono"), int)), default=origin)
    total = sum(s.dur for s in tops) if tops else end - origin
    out += [
        "",
        f"total {ms(total)}: working {ms(working)}, waiting {ms(waiting)} "
        f"(innermost steps of every process; processes overlap)",
    ]
    for r in records:
        if r["t"] == "fail":
            err = r.get("error") or {}
            out.append(
                f"FAILED at step {r.get('step')!r} ({r.get('proc')}): "
                f"{(err.get('errno', '') + ' ') if err.get('errno') else ''}{err.get('msg', '')}"
            )
    return out


def show(path: str, verbose: bool = False) -> str:
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    return "\n".join(render(load(data.splitlines()), verbose)) + "\n"
