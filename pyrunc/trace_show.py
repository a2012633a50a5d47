"""`pyrunc trace show FILE [-v]`: a step trace (pyrunc/trace.py) as a readable timeline.

One line per step (start offset from the first record, duration, process, kernel calls),
the kernel calls indented under their step with -v, then a per-step breakdown and the
total.  Steps that wait on another process (the start, hooks, the cgroup join) are
marked "waiting": their time is not pyrunc's work.
"""

from pyrunc import jsonc


def load(lines):
    """The records of a trace's lines; lines that are not JSON objects are skipped."""
    records = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rec = jsonc.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "t" in rec:
            records.append(rec)
    return records


class StepView:
    __slots__ = ("sid", "name", "proc", "pid", "depth", "start", "dur", "wait", "error", "calls")

    def __init__(self, rec):
        self.sid, self.name, self.proc, self.pid = rec.get("sid"), rec["name"], rec["proc"], rec["pid"]
        self.depth, self.start = rec.get("depth", 0), rec["mono"]
        self.dur = rec.get("dur")
        self.wait = bool(rec.get("wait"))
        self.error = rec.get("error")
        self.calls = []


def steps_of(records):
    """The steps, in order of their start, each with its kernel calls."""
    by_sid = {}
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


def ms(ns):
    return "-" if ns is None else f"{ns / 1e6:.3f}ms"


def call_line(rec):
    args = rec.get("args") or {}
    flags = rec.get("flags") or {}
    shown = []
    for name, value in args.items():
        text = flags.get(name) or (jsonc.dumps(value) if not isinstance(value, int) or isinstance(value, bool)
                                   else str(value))
        if len(text) > 80:
            text = text[:77] + "..."
        shown.append(f"{name}={text}")
    if "error" in rec:
        err = rec["error"]
        outcome = f"-> {err.get('errno', err.get('type', 'error'))}: {err.get('msg', '')}"
    else:
        outcome = "-> " + jsonc.dumps(rec.get("result"))
    return f"{rec['name']}({', '.join(shown)}) {outcome}  [{ms(rec.get('dur'))}]"


def render(records, verbose=False):
    """The report, as a list of lines."""
    if not records:
        return ["empty trace"]
    origin = min(r["mono"] for r in records if isinstance(r.get("mono"), int))
    steps = steps_of(records)
    procs = [r for r in records if r["t"] == "header"]
    ncalls = sum(1 for r in records if r["t"] == "call")
    w = max([8] + [len(s.proc) for s in steps])  # "exec process" is longer than the rest
    out = [f"{len(procs)} processes, {len(steps)} steps, {ncalls} kernel calls", "",
           f"{'start':>10} {'duration':>11}  {'process':<{w}} {'pid':>7} {'calls':>5}  step"]
    for s in steps:
        mark = ""
        if s.wait:
            mark += "  (waiting)"
        if s.dur is None:
            mark += "  (no end: exec or exit)"
        if s.error:
            mark += f"  FAILED: {s.error.get('errno', s.error.get('type', ''))} {s.error.get('msg', '')}".rstrip()
        out.append(f"{'+' + ms(s.start - origin):>10} {ms(s.dur):>11}  {s.proc:<{w}} {s.pid:>7} "
                   f"{len(s.calls):>5}  {'  ' * s.depth}{s.name}{mark}")
        if verbose:
            for c in s.calls:
                out.append(f"{'':>10} {'':>11}  {'':<{w}} {'':>7} {'':>5}  {'  ' * s.depth}    "
                           f"+{ms(c['mono'] - origin)} {call_line(c)}")
    out += ["", "breakdown (steps by name, innermost only):",
            f"{'count':>5} {'total':>11} {'calls':>5}  {'kind':<8} step"]
    parents = {(s.pid, s.depth - 1) for s in steps if s.depth > 0}
    table = {}
    for s in steps:
        has_children = any(o.pid == s.pid and o.depth == s.depth + 1 and o.start >= s.start
                           and (s.dur is None or o.start <= s.start + s.dur) for o in steps) \
            if (s.pid, s.depth) in parents else False
        if has_children:
            continue
        row = table.setdefault((s.proc, s.name), [0, 0, 0, s.wait])
        row[0] += 1
        row[1] += s.dur or 0
        row[2] += len(s.calls)
    working = waiting = 0
    for (proc, name), (count, total, calls, wait) in sorted(table.items(), key=lambda kv: -kv[1][1]):
        out.append(f"{count:>5} {ms(total):>11} {calls:>5}  {'waiting' if wait else 'working':<8} "
                   f"{proc}: {name}")
        if wait:
            waiting += total
        else:
            working += total
    tops = [s for s in steps if s.proc == "runtime" and s.depth == 0 and s.dur is not None]
    end = max((r["mono"] + (r.get("dur") or 0) for r in records if isinstance(r.get("mono"), int)),
              default=origin)
    total = sum(s.dur for s in tops) if tops else end - origin
    out += ["", f"total {ms(total)}: working {ms(working)}, waiting {ms(waiting)} "
                f"(innermost steps of every process; processes overlap)"]
    for r in records:
        if r["t"] == "fail":
            err = r.get("error") or {}
            out.append(f"FAILED at step {r.get('step')!r} ({r.get('proc')}): "
                       f"{(err.get('errno', '') + ' ') if err.get('errno') else ''}{err.get('msg', '')}")
    return out


def show(path, verbose=False):
    with open(path, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    return "\n".join(render(load(data.splitlines()), verbose)) + "\n"
