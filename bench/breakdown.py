"""Where the time goes in one `pyrunc run` of /bin/true, from a syscall timeline.

    python bench/breakdown.py [--pyrunc PATH] [--runs N] [--save-trace FILE] [--trace FILE]

Runs pyrunc under `strace -f -ttt` with a handful of syscalls traced and cuts the
timeline into phases at marker syscalls (MARKERS, below).  A marker that is not in the
trace (the runtime changed) shows its phase as "-"; the phase before it then runs on to
the next marker found.  --save-trace keeps the trace; --trace parses one kept before
(with --root given too), to try out changes to MARKERS.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bundle  # noqa: E402
from report import markdown_table  # noqa: E402

TRACED = (
    "execve,execveat,clone,clone3,unshare,setns,mount,pivot_root,mkdir,rmdir,fsync,sendto,"
    "recvmsg,connect,accept4,exit_group,wait4,rename,unlink"
)

# The phase markers, in timeline order: each phase starts at its marker and runs to the
# next marker found.  Columns: phase, the syscalls that mark its start ("exit" is strace's
# `+++ exited` line; "*" any syscall but execve/execveat, whose argv names the root),
# whose syscall ("main": the pid pyrunc was started as, "init": the container's init,
# "other": any pid but main, "other-than-init", "any"), strings one of which its line must
# contain ({root} is the --root), and which match counts ("first" after the previous
# marker, or "last").
MARKERS = [
    ("interpreter start + imports", ("execve", "execveat"), "main", None, "first"),
    ("state written (state dir, state.json, config copy)", ("*",), "any", ("{root}", "/run/pyrunc"), "first"),
    ("fork + cgroups", ("clone", "clone3"), "any", None, "first"),
    ("namespaces (unshare)", ("unshare",), "other", None, "first"),
    ("rootfs (mounts)", ("mount",), "init", None, "first"),
    ("process setup", ("pivot_root",), "init", None, "first"),
    ("created, waiting for start", ("accept4",), "init", None, "first"),
    ("start", ("connect",), "other-than-init", None, "first"),
    ("container running /bin/true", ("execve", "execveat"), "init", None, "last"),
    ("clean-up (state, cgroups)", ("exit",), "init", None, "first"),
    ("interpreter exit", ("unlink", "rmdir"), "any", None, "last"),
]
END = (("exit",), "main")  # the timeline ends when the main pid has exited

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
CALL = re.compile(r"^([a-z_0-9]+)\(")


def lines(text):
    """(pid, time, rest of line) of each line of strace -f -ttt output."""
    for raw in text.splitlines():
        m = LINE.match(raw)
        if m:
            yield int(m.group(1)), float(m.group(2)), m.group(3)


def parse(text):
    """strace -f -ttt lines as (pid, time, syscall, line); `+++ exited`/`+++ killed` lines
    as syscall "exit"; `<... resumed>` halves and signals are skipped (an unfinished call
    counts at its entry)."""
    events = []
    for pid, t, rest in lines(text):
        if rest.startswith("+++"):
            events.append((pid, t, "exit", rest))
            continue
        c = CALL.match(rest)
        if c:
            events.append((pid, t, c.group(1), rest))
    return events


def init_pid(events, main):
    """The container's init: the pid of the last execve not made by the main pid (the
    user's program), or None."""
    for pid, _, call, line in reversed(events):
        if pid != main and call in ("execve", "execveat") and "= -1" not in line:
            return pid
    return None


def _matches(event, syscalls, who, needles, main, init):
    pid, _, call, line = event
    if syscalls == ("*",):
        if call in ("execve", "execveat", "exit"):
            return False
    elif call not in syscalls:
        return False
    if who == "main" and pid != main or who == "init" and pid != init:
        return False
    if who == "other" and pid == main or who == "other-than-init" and pid == init:
        return False
    return needles is None or any(n in line for n in needles)


def phases(events, root):
    """[(phase, start time or None)] from MARKERS, plus the end time (or None)."""
    if not events:
        return [(name, None) for name, *_ in MARKERS], None
    main = events[0][0]
    init = init_pid(events, main)
    found = []
    pos = 0
    for name, syscalls, who, needles, pick in MARKERS:
        needles = [n.format(root=root) for n in needles] if needles else None
        hits = [i for i in range(pos, len(events)) if _matches(events[i], syscalls, who, needles, main, init)]
        if not hits:
            found.append((name, None))
            continue
        i = hits[0] if pick == "first" else hits[-1]
        found.append((name, events[i][1]))
        pos = i + 1
    ends = [e[1] for e in events[pos:] if _matches(e, END[0], END[1], None, main, init)]
    return found, (ends[-1] if ends else None)


def table_rows(found, end):
    """(phase, ms or None, share or None) per phase, and the total in ms."""
    times = [t for _, t in found if t is not None] + ([end] if end is not None else [])
    total = (times[-1] - times[0]) if len(times) > 1 else None
    rows = []
    for i, (name, t) in enumerate(found):
        if t is None:
            rows.append((name, None, None))
            continue
        later = [u for _, u in found[i + 1 :] if u is not None] + ([end] if end is not None else [])
        if not later:
            rows.append((name, None, None))
            continue
        d = later[0] - t
        rows.append((name, d * 1000, d / total if total else None))
    return rows, (total * 1000 if total else None)


def render(rows, total):
    body = [
        [name, "-" if ms is None else f"{ms:.1f}", "-" if share is None else f"{share * 100:.0f} %"]
        for name, ms, share in rows
    ]
    body.append(["total (first execve to the main pid's exit)", "-" if total is None else f"{total:.1f}", "100 %"])
    return markdown_table(["phase", "ms", "share"], body)


def trace_once(pyrunc, bench, out):
    """One traced `pyrunc run`: the trace text and the --root it used."""
    r = bench.runtime("pyrunc", [pyrunc], tag="breakdown")
    cid = bench.id("bd")
    cmd = ["strace", "--seccomp-bpf", "-f", "-ttt", "-e", f"trace={TRACED}", "-o", out] + r.cmd(
        "run", "--bundle", bench.bundle(), cid
    )
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: the init inherits it
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=120)
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"strace pyrunc run: exit {p.returncode}: {err.read().decode().strip()[-300:]}")
    with open(out) as f:
        return f.read(), r.root


def wall(cmd):
    code, dt = bundle.run_timed(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {code}")
    return dt


def overhead(pyrunc, bench, runs):
    """Median wall time of `pyrunc run` with and without strace, alternating."""
    r = bench.runtime("pyrunc", [pyrunc], tag="breakdown-overhead")
    plain, traced = [], []
    null = os.path.join(bench.dir, "overhead.trace")
    for _ in range(runs):
        plain.append(wall(r.cmd("run", "--bundle", bench.bundle(), bench.id("bdo"))))
        traced.append(
            wall(
                ["strace", "--seccomp-bpf", "-f", "-ttt", "-e", f"trace={TRACED}", "-o", null]
                + r.cmd("run", "--bundle", bench.bundle(), bench.id("bdo"))
            )
        )
    return statistics.median(plain), statistics.median(traced)


def breakdown(pyrunc, bench, runs=5, save_trace=None):
    """(terminal text, markdown for docs/performance.md)."""
    if not shutil.which("strace"):
        msg = "strace is not installed (`apt-get install strace`; `make bench` does it): no breakdown."
        return msg, msg
    text, root = trace_once(pyrunc, bench, os.path.join(bench.dir, "run.trace"))
    if save_trace:
        with open(save_trace, "w") as f:
            f.write(text)
        print(f"trace kept in {save_trace} (--root {root})", file=sys.stderr)
    rows, total = table_rows(*phases(parse(text), root))
    table = render(rows, total)
    plain, traced = overhead(pyrunc, bench, runs)
    note = (
        f"One `pyrunc run` of /bin/true under `strace --seccomp-bpf -f -ttt -e trace={TRACED}`,"
        " its timeline cut into phases at marker syscalls (the `MARKERS` table at the top of"
        ' `bench/breakdown.py`; a phase whose marker is missing shows "-" and the phase'
        " before it runs on).  strace slows what it watches: the same run took"
        f" {plain * 1000:.1f} ms without strace and {traced * 1000:.1f} ms under it (medians of {runs}),"
        " so read the shares rather than the milliseconds.  Regenerate this part alone with"
        " `python bench/breakdown.py`."
    )
    return table + "\n\n" + note, note + "\n\n" + table


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pyrunc", default="/work/main/.venv/bin/pyrunc")
    ap.add_argument("--runs", type=int, default=5, help="runs for the strace overhead figure")
    ap.add_argument("--save-trace", metavar="FILE", help="keep the trace in FILE")
    ap.add_argument("--trace", help="parse this trace instead of running pyrunc")
    ap.add_argument("--root", default="/run/pyrunc", help="the --root the traced run used (with --trace)")
    args = ap.parse_args()
    if args.trace:
        with open(args.trace) as f:
            print(render(*table_rows(*phases(parse(f.read()), args.root))))
        return
    with bundle.Bench() as bench:
        text, _ = breakdown(os.path.abspath(args.pyrunc), bench, args.runs, args.save_trace)
    print(text)


if __name__ == "__main__":
    main()
