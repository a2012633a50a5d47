"""Where each millisecond goes: `run`, `exec` and create + start + delete, pyrunc beside runc.

    python bench/timeline.py [--pyrunc PATH] [--runs N] [--only run exec lifecycle] [--keep DIR]

Two views, both printed as markdown (docs/performance.md, "Timeline", holds one):

* **Syscall lanes**, pyrunc and runc alike: each command once under
  `strace --seccomp-bpf -f -ttt -T -y` with the syscalls in TRACED, cut into one lane per
  process (threads folded into their process).  A lane shows when the process lived,
  when it loaded code (the interpreter's module files; runc's is one binary), when it
  waited (a call that blocked SLOW_CALL or longer: a pipe, a socket, a child, a cgroup
  move), and its events of note (exec, fork, unshare, pivot_root, the cgroup move, the
  state writes).  Lanes side by side say what runs in parallel and what waits.
  strace slows every traced call, so read the shape and the shares, not the sums.
* **pyrunc's own steps**, without strace: the command `--runs` times with `--trace FILE`
  (docs/trace.md); each step's offset from the moment the command was started and its
  duration, medians over the runs.  The first record comes after the interpreter's start
  and pyrunc's imports, so "start until the first record" is that cost, untraced.

Run as root; every container lives under bundle.Bench's names and is removed after.
Standard library only.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bundle  # noqa: E402
from breakdown import lines as strace_lines  # noqa: E402  (strace -f -ttt's pid, time and rest of line)
from report import markdown_table  # noqa: E402

TRACED = (
    "execve,execveat,clone,clone3,fork,vfork,exit_group,wait4,waitid,unshare,setns,mount,umount2,"
    "pivot_root,open_tree,move_mount,mkdir,mkdirat,rmdir,rename,renameat2,unlink,unlinkat,fsync,"
    "fdatasync,flock,openat,read,write,pread64,connect,accept4,sendmsg,recvmsg,sendto,recvfrom,"
    "poll,ppoll,pselect6,epoll_wait,epoll_pwait,pidfd_open,kill,seccomp,capset"
)
SLOW_CALL = 0.0005  # seconds: a call that blocked this long is a wait
# Calls that block on another process (or the kernel's RCU grace period): a wait, not work.
BLOCKING = {
    "wait4",
    "waitid",
    "read",
    "recvmsg",
    "recvfrom",
    "accept4",
    "poll",
    "ppoll",
    "pselect6",
    "epoll_wait",
    "epoll_pwait",
    "openat",
    "write",
    "connect",
}
CODE_FILE = re.compile(r"\.(pyc|py|so)\b")

CALL = re.compile(r"^([a-z_0-9]+)\((.*)$")
RESUMED = re.compile(r"^<\.\.\. ([a-z_0-9]+) resumed>(.*)$")
RESULT = re.compile(r"=\s+(-?\d+|\?).*<(\d+\.\d+)>\s*$")
FD_PATH = re.compile(r"^\d+<([^>]*)>")


class Call:
    __slots__ = ("pid", "t", "name", "args", "result", "dur")

    def __init__(self, pid, t, name, args, result=None, dur=0.0):
        self.pid, self.t, self.name, self.args, self.result, self.dur = pid, t, name, args, result, dur

    @property
    def end(self):
        return self.t + self.dur

    def fd_path(self):
        m = FD_PATH.match(self.args)
        return m.group(1) if m else ""

    def first_string(self):
        m = re.search(r'"((?:[^"\\]|\\.)*)"', self.args)
        return m.group(1) if m else ""


def parse(text):
    """strace -f -ttt -T lines as Calls (an unfinished call joined with its resumed half,
    at its start), plus {pid: exit time} from `+++ exited` lines."""
    calls, exits, open_calls = [], {}, {}
    for pid, t, rest in strace_lines(text):
        if rest.startswith("+++"):
            exits[pid] = t
            continue
        r = RESUMED.match(rest)
        if r:
            c = open_calls.pop((pid, r.group(1)), None)
            if c is not None:
                c.args += r.group(2)
                _finish(c, c.args)
            continue
        c = CALL.match(rest)
        if not c:
            continue
        call = Call(pid, t, c.group(1), c.group(2))
        if rest.endswith("<unfinished ...>"):
            call.args = call.args[: -len("<unfinished ...>")]
            open_calls[(pid, call.name)] = call
        else:
            _finish(call, rest)
        calls.append(call)
    return calls, exits


def _finish(call, text):
    m = RESULT.search(text)
    if m:
        call.result = m.group(1)
        call.dur = float(m.group(2))


class Proc:
    """A process (thread group) of the trace: its lane."""

    def __init__(self, tgid, parent, start):
        self.tgid = tgid
        self.parent = parent
        self.start = start
        self.end = None
        self.argv = ""  # its last exec
        self.label = ""
        self.code = []  # times it opened a module or library file
        self.waits = []  # (start, dur, what)
        self.events = []  # (time, text)
        self.children = []


def lanes(calls, exits):
    """{tgid: Proc} and the first pid, from the calls: clone with CLONE_THREAD makes a
    thread of its caller's group, any other fork a new process."""
    if not calls:
        return {}, None
    first = calls[0].pid
    # First the thread groups (a child's first call may be logged before its parent's
    # clone returns), then the lanes.
    tgid, parent = {first: first}, {}
    for c in calls:
        tgid.setdefault(c.pid, c.pid)
        if c.name in ("clone", "clone3", "fork", "vfork") and c.result not in (None, "?") and int(c.result) > 0:
            child = int(c.result)
            tgid[child] = tgid[c.pid] if "CLONE_THREAD" in c.args else child
            if tgid[child] == child:
                parent[child] = c
    for c in calls:  # a thread's group may be known only now: its creator's
        while tgid[c.pid] != tgid.get(tgid[c.pid], tgid[c.pid]):
            tgid[c.pid] = tgid[tgid[c.pid]]
    procs = {}
    for c in calls:
        g = tgid[c.pid]
        p = procs.get(g)
        if p is None:
            fork = parent.get(g)
            p = procs[g] = Proc(g, tgid[fork.pid] if fork else None, min(c.t, fork.end) if fork else c.t)
        if c.name in ("clone", "clone3", "fork", "vfork") and int(c.result or 0) in parent:
            p.children.append(int(c.result))
            p.events.append((c.end, f"fork -> {c.result}"))
        elif c.name in ("execve", "execveat") and c.result == "0":
            argv = _argv(c.args)
            p.argv = f"{p.argv} > {argv}" if p.argv and argv.split()[0] != p.argv.split()[0] else argv
            p.events.append((c.t, f"exec {argv}"))
        _note(p, c, c.pid == g)
    for pid, t in exits.items():
        g = tgid.get(pid, pid)
        if g == pid and g in procs:
            procs[g].end = t
    _label(procs, first)
    return procs, first


def _argv(args):
    m = re.search(r"\[(.*?)\]", args)
    if not m:
        return "?"
    words = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
    if not words:
        return "?"
    if len(words) > 4 and words[1] == "-IS":  # pyrunc's launcher: python -IS -c BOOT ARGS
        return "python -IS -c <boot> " + " ".join(words[4:6])
    return " ".join(os.path.basename(w) if i == 0 else w for i, w in enumerate(words[:3]))


def _note(p, c, main_thread):
    path = c.fd_path() if c.name in ("write", "read") else ""
    if c.name == "openat" and CODE_FILE.search(c.first_string()) and c.result not in (None, "?") and int(c.result) >= 0:
        p.code.append(c.t)
    if c.name == "write" and path.endswith(("cgroup.procs", "/tasks")):
        p.events.append((c.t, f"cgroup move, write {path.rsplit('/', 1)[1]} ({c.dur * 1000:.1f} ms)"))
        p.waits.append((c.t, c.dur, "cgroup move"))
        return
    if c.name in ("unshare", "setns", "pivot_root", "fsync", "fdatasync", "rename", "renameat2", "capset", "seccomp"):
        p.events.append((c.t, f"{c.name}{_short(c)}" + (f" ({c.dur * 1000:.1f} ms)" if c.dur >= SLOW_CALL else "")))
    elif c.name in ("mkdir", "mkdirat", "rmdir", "unlink", "unlinkat") and c.result == "0":
        p.events.append((c.t, f"{c.name} {_tail(c.first_string())}"))
    elif c.name == "mount":
        p.events.append((c.t, f"mount {_tail(c.first_string())}"))
    if main_thread and c.name in BLOCKING and c.dur >= SLOW_CALL:
        what = path or c.first_string() or c.name
        p.waits.append((c.t, c.dur, f"{c.name} {_tail(what)}"))


def _short(c):
    s = c.first_string()
    return f" {_tail(s)}" if s else ""


def _tail(path, n=2):
    """A path's last n parts (`…/a/b`); what is not a path (a pipe, a socket) as it is."""
    parts = [x for x in path.split("/") if x]
    if not path.startswith("/") or len(parts) <= n:
        return path
    return "…/" + "/".join(parts[-n:])


def _label(procs, first):
    """Labels by lineage: the command itself, then each child by what it ran last."""
    order = sorted(procs.values(), key=lambda p: p.start)
    for i, p in enumerate(order):
        if p.tgid == first:
            p.label = "command"
        else:
            p.label = f"P{i}"
        p.label += (
            f" [{p.argv}]" if p.argv else (f" (forked by {procs[p.parent].label.split()[0]})" if p.parent else "")
        )


def render_lanes(procs, first, width=100):
    """A text chart, one row per process: ' ' not alive, '-' alive, 'i' loading code,
    '#' waiting (a call that blocked), 'C' the cgroup move; the scale on top."""
    t0 = procs[first].start
    t_end = max((p.end or p.start) for p in procs.values())
    for p in procs.values():
        for t, d, _ in p.waits:
            t_end = max(t_end, t + d)
    total = max(t_end - t0, 1e-6)
    scale = total / width
    rows = []
    for p in sorted(procs.values(), key=lambda p: p.start):
        cells = [" "] * width
        a = int((p.start - t0) / scale)
        b = int(((p.end or t_end) - t0) / scale)
        for i in range(max(a, 0), min(b + 1, width)):
            cells[i] = "-"
        for t in p.code:
            cells[min(int((t - t0) / scale), width - 1)] = "i"
        for t, d, what in p.waits:
            ch = "C" if what == "cgroup move" else "#"
            for i in range(int((t - t0) / scale), min(int((t + d - t0) / scale) + 1, width)):
                cells[i] = ch
        rows.append(f"{p.tgid:>7} |{''.join(cells)}| {p.label}")
    head = f"{'':>7} 0{'':<{width - 12}}{total * 1000:8.1f} ms  (1 column = {scale * 1000:.2f} ms)"
    return "\n".join([head] + rows)


def render_events(procs, first, min_wait=0.001):
    """Every event of note and every wait of at least min_wait, in time order."""
    t0 = procs[first].start
    lines = []
    for p in procs.values():
        name = p.label.split()[0]
        for t, text in p.events:
            lines.append((t, name, text))
        for t, d, what in p.waits:
            if d >= min_wait and what != "cgroup move":
                lines.append((t, name, f"waits {d * 1000:.1f} ms in {what}"))
        if p.code:
            lines.append(
                (
                    p.code[0],
                    name,
                    f"loads code: {len(p.code)} module/library files until +{(p.code[-1] - t0) * 1000:.1f} ms",
                )
            )
        if p.end is not None:
            lines.append((p.end, name, "exits"))
    lines.sort()
    out = []
    i = 0
    while i < len(lines):  # a run of one process's calls of one kind: one line
        t, who, text = lines[i]
        kind = text.split()[0]
        j = i
        while j + 1 < len(lines) and kind in FOLDED and lines[j + 1][1] == who and lines[j + 1][2].split()[0] == kind:
            j += 1
        if j > i:
            text = f"{kind} x{j - i + 1} (until +{(lines[j][0] - t0) * 1000:.1f} ms), first: {text.partition(' ')[2]}"
        out.append(f"{(t - t0) * 1000:+8.1f} ms  {who:<8} {text}")
        i = j + 1
    return "\n".join(out)


FOLDED = ("mount", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "seccomp", "cgroup")


def summary_rows(procs, first):
    """Per process: when it lived, how long it loaded code, how long it waited and on what."""
    t0 = procs[first].start
    rows = []
    for p in sorted(procs.values(), key=lambda p: p.start):
        # A process alive when the trace ends (an init at create's exit) lives to the end.
        end = p.end if p.end is not None else max([procs[first].end or p.start] + [t + d for t, d, _ in p.waits])
        waited = sum(d for _, d, _ in p.waits)
        top = sorted(p.waits, key=lambda w: -w[1])[:2]
        rows.append(
            [
                p.label,
                f"{(p.start - t0) * 1000:.1f}",
                f"{(end - t0) * 1000:.1f}",
                f"{(p.code[-1] - p.code[0]) * 1000:.1f} ({len(p.code)})" if p.code else "-",
                f"{waited * 1000:.1f}",
                "; ".join(f"{what} {d * 1000:.1f}" for _, d, what in top) or "-",
            ]
        )
    return markdown_table(
        ["process", "from ms", "to ms", "loading code ms (files)", "waiting ms", "longest waits (ms)"], rows
    )


# -- the scenarios --------------------------------------------------------------------


def run_cmd(argv, out=None):
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a created init keeps it open
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=120)
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv[-4:])}: exit {p.returncode}: {err.read().decode().strip()[-300:]}")


def straced(argv, out):
    """Run argv under strace into out.  -D: strace runs as a grandchild, so the wait is
    for the command itself; a created container's init, traced too, lives on (strace
    with it) until start, and its trace is read once the scenario is over."""
    run_cmd(["strace", "-D", "--seccomp-bpf", "-f", "-ttt", "-T", "-y", "-e", f"trace={TRACED}", "-o", out] + argv)


def until_exit(calls, exits):
    """A trace cut where its first process (the command) exited: what an init created by
    it did later belongs to the commands after it."""
    if not calls or calls[0].pid not in exits:
        return calls, exits
    end = exits[calls[0].pid]
    return [c for c in calls if c.t <= end], {p: t for p, t in exits.items() if t <= end}


class Scenarios:
    """The commands of each scenario for one runtime: (label, argv, set-up, tear-down)."""

    def __init__(self, bench, name, argv):
        self.bench = bench
        self.r = bench.runtime(name, argv, tag=f"timeline-{name}")
        self.name = name

    def run(self):
        cid = self.bench.id("tl-run")
        return [("run", self.r.cmd("run", "--bundle", self.bench.bundle(cgroup=f"tl-run-{self.name}"), cid))]

    def lifecycle(self):
        cid = self.bench.id("tl-lc")
        b = self.bench.bundle(cgroup=f"tl-lc-{self.name}")
        return [
            ("create", self.r.cmd("create", "--bundle", b, cid)),
            ("start", self.r.cmd("start", cid)),
            ("delete", self.r.cmd("delete", cid), self._wait_stopped(cid)),
        ]

    def _wait_stopped(self, cid):
        def wait():
            for _ in range(300):
                if self.r.status(cid) == "stopped":
                    return
                time.sleep(0.01)

        return wait

    def exec_setup(self):
        cid = self.bench.id("tl-exec")
        b = self.bench.bundle(args=("sleep", "1000"), cgroup=f"tl-exec-{self.name}")
        self.r.call("run", "--bundle", b, "--detach", cid, check=True)
        return cid

    def exec(self, cid):
        return [("exec", self.r.cmd("exec", cid, "/bin/true"))]


def strace_section(bench, runtimes, which):
    """The syscall lanes of each scenario in `which`, each runtime in turn: markdown."""
    out = []
    for scen in which:
        for name, argv in runtimes:
            s = Scenarios(bench, name, argv)
            cid = None
            if scen == "exec":
                cid = s.exec_setup()
                # one exec untraced first: the first exec after start pays one-off costs
                run_cmd(s.exec(cid)[0][1])
                cmds = s.exec(cid)
            else:
                cmds = getattr(s, scen)()
            traces = []
            try:
                for item in cmds:
                    label, argv2 = item[0], item[1]
                    if len(item) > 2:
                        item[2]()
                    path = os.path.join(bench.dir, f"{name}-{label}.strace")
                    straced(argv2, path)
                    traces.append((label, path))
            finally:
                if cid is not None:
                    s.r.call("delete", "--force", cid)
            time.sleep(0.2)  # the detached stracers write their last lines
            for label, path in traces:
                with open(path) as f:
                    procs, first = lanes(*until_exit(*parse(f.read())))
                out.append(f"#### {name} `{label}`\n")
                out.append("```\n" + render_lanes(procs, first) + "\n```\n")
                out.append(summary_rows(procs, first) + "\n")
                out.append(
                    "<details><summary>events</summary>\n\n```\n" + render_events(procs, first) + "\n```\n</details>\n"
                )
    return "\n".join(out)


# -- pyrunc's own steps -------------------------------------------------------------------


def traced_steps(pyrunc, bench, scen, runs):
    """pyrunc's steps in `scen`, untraced by strace: [(command, rows)] where each row is
    (proc, depth, name, wait, [offsets ms], [durations ms]), from `runs` runs."""
    r = bench.runtime("pyrunc", [pyrunc], tag=f"steps-{scen}")
    per_cmd = {}
    for i in range(runs):
        cid = bench.id("st")
        if scen == "run":
            cmds = [("run", ["run", "--bundle", bench.bundle(cgroup=f"st-run-{i}"), cid])]
        elif scen == "lifecycle":
            cmds = [
                ("create", ["create", "--bundle", bench.bundle(cgroup=f"st-lc-{i}"), cid]),
                ("start", ["start", cid]),
                ("delete", ["delete", cid]),
            ]
        else:
            if i == 0:
                ecid = bench.id("st-exec")
                r.call(
                    "run",
                    "--bundle",
                    bench.bundle(args=("sleep", "1000"), cgroup="st-exec"),
                    "--detach",
                    ecid,
                    check=True,
                )
                run_cmd(r.cmd("exec", ecid, "/bin/true"))
            cmds = [("exec", ["exec", ecid, "/bin/true"])]
        for label, args in cmds:
            if label == "delete":
                for _ in range(300):
                    if r.status(cid) == "stopped":
                        break
                    time.sleep(0.01)
            tfile = os.path.join(bench.dir, f"steps-{label}.jsonl")
            t0 = time.monotonic_ns()
            run_cmd([pyrunc, "--root", r.root, "--trace", tfile] + args)
            t1 = time.monotonic_ns()
            with open(tfile) as f:
                records = [json.loads(line) for line in f if line.strip()]
            os.unlink(tfile)
            per_cmd.setdefault(label, []).append((t0, t1, records))
    if scen == "exec":
        r.call("delete", "--force", ecid)
    return [(label, step_rows(samples)) for label, samples in per_cmd.items()]


def step_rows(samples):
    """Medians per step over the runs; a step is known by its process kind, name and its
    occurrence (the n-th step of that name in that process)."""
    acc = {}
    order = []
    totals, firsts = [], []
    for t0, t1, records in samples:
        seen = {}
        totals.append((t1 - t0) / 1e6)
        monos = [rec["mono"] for rec in records if "mono" in rec]
        if monos:
            firsts.append((min(monos) - t0) / 1e6)
        for rec in records:
            if (
                rec.get("t") != "step"
                or rec.get("ev") != "end"
                and not (rec.get("ev") == "begin" and rec.get("name") == "exec")
            ):
                continue
            key0 = (rec["proc"], rec["name"])
            n = seen[key0] = seen.get(key0, 0) + 1
            key = key0 + (n,)
            if key not in acc:
                acc[key] = ([], [], rec.get("depth", 0), bool(rec.get("wait")))
                order.append(key)
            acc[key][0].append((rec["mono"] - t0) / 1e6)
            acc[key][1].append(rec.get("dur", 0) / 1e6)
    rows = [("command", 0, "interpreter start + imports, until the first trace record", False, [0.0], firsts)]
    for key in sorted(order, key=lambda k: statistics.median(acc[k][0])):
        offs, durs, depth, wait = acc[key]
        rows.append((key[0], depth, key[1], wait, offs, durs))
    rows.append(("command", 0, "whole command, start to exit (wall)", False, [0.0], totals))
    return rows


def render_steps(label, rows, max_depth):
    body = []
    for proc, depth, name, wait, offs, durs in rows:
        if depth > max_depth:
            continue
        body.append(
            [
                f"{statistics.median(offs):.1f}",
                f"{statistics.median(durs):.1f}",
                proc,
                "  " * depth + name + (" (waits)" if wait else ""),
            ]
        )
    return f"#### pyrunc `{label}`: steps\n\n" + markdown_table(["at ms", "takes ms", "process", "step"], body) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--pyrunc",
        default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv/bin/pyrunc"),
    )
    ap.add_argument("--runs", type=int, default=9, help="runs of each command for the step medians (default 9)")
    ap.add_argument("--only", nargs="+", choices=("run", "exec", "lifecycle"), default=["run", "exec", "lifecycle"])
    ap.add_argument("--depth", type=int, default=2, help="the deepest runtime step shown (default 2)")
    ap.add_argument("--no-strace", action="store_true", help="only pyrunc's steps")
    ap.add_argument("--keep", metavar="DIR", help="copy the raw strace files to DIR")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/timeline.py: run as root (it creates containers)")
    if not args.no_strace and not shutil.which("strace"):
        sys.exit("bench/timeline.py: strace is not installed (`make bench` installs it)")
    os.environ.pop("PYRUNC_TRACE", None)
    pyrunc = os.path.abspath(args.pyrunc)
    with bundle.Bench() as bench:
        text = report(pyrunc, bench, args.runs, args.only, args.depth, not args.no_strace)
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            for f in os.listdir(bench.dir):
                if f.endswith(".strace"):
                    shutil.copy(os.path.join(bench.dir, f), args.keep)
    print(text)


INTRO = (
    "`python bench/timeline.py` (also part of `make bench`): each command of `run`, `exec`"
    " and create + start + delete once under `strace --seccomp-bpf -f -ttt -T -y`, pyrunc"
    " beside runc, one lane per process (threads folded in): `-` alive, `i` opening code"
    " (Python modules, shared libraries), `#` blocked in a call for 0.5 ms or more (a pipe, a"
    " socket, a child, a fifo), `C` the cgroup move.  Lanes side by side show what runs in"
    " parallel and what waits.  strace slows what it watches, Go's many threads far more than"
    " one Python process: read the shapes and orders, not the sums.  Under the lanes, pyrunc's"
    " own steps from `--trace` without strace (medians of {runs} runs), each at its offset from"
    " the moment the command was started."
)


def report(pyrunc, bench, runs=9, only=("run", "exec", "lifecycle"), depth=2, with_strace=True):
    """The timeline as markdown (bench/run.py puts it in docs/performance.md)."""
    runtimes = [("pyrunc", [pyrunc]), ("runc", [bundle.RUNC])]
    parts = [INTRO.format(runs=runs), ""]
    for scen in only:
        parts.append(f"### `{scen}`\n")
        if with_strace:
            parts.append(strace_section(bench, runtimes, [scen]))
        for label, rows in traced_steps(pyrunc, bench, scen, runs):
            parts.append(render_steps(label, rows, depth))
    return "\n".join(parts)


if __name__ == "__main__":
    main()
