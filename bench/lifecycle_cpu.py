"""CPU time of create + start + wait + delete, by process, for a chain of revisions.

    python bench/lifecycle_cpu.py [--runs N] [--pyrunc PATH] REV [REV ...]

Figure 2 (bench/run.py) in CPU time, which a loaded machine moves far less than wall
time, split by the process that spent it: `create` (with what it waited for: the
launcher's warm-up helper), `start`, the container's init (its whole life: the
runtime's init, then the container's /bin/true), `delete`; and their sum.  This suite
is a child subreaper, so the init, orphaned when create exits, becomes its child: it is
reaped here and its rusage read from wait4.  Each REV is built as bench/ab.py builds its
base (`this` is the pyrunc under test, --pyrunc); all of them take turns in every round.
Each figure is the median of its samples, and each revision over the one before it
(and the last over the first) the median of the per-round ratios, with their middle
half.  Containers and state roots as bench/run.py's figure 2 makes them.  Run as root.
"""

import argparse
import contextlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bundle  # noqa: E402
import run  # noqa: E402
from cpu import cpu_seconds  # noqa: E402
from report import median, per_round, quartiles  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36
PHASES = ("create", "start", "init", "delete", "total", "wall")


def become_subreaper():
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def lifecycle(bench, r, bundle_dir):
    """One container's create, start, init and delete: {phase: seconds}."""
    cid = bench.id("lc")
    pidfile = os.path.join(bench.run_dir, cid + ".pid")
    t = time.perf_counter()
    c = cpu_seconds(r.cmd("create", "--bundle", bundle_dir, "--pid-file", pidfile, cid))
    with open(pidfile) as f:
        pid = int(f.read())
    s = cpu_seconds(r.cmd("start", cid))
    _, _, usage = os.wait4(pid, 0)  # ours since create exited (subreaper)
    i = usage.ru_utime + usage.ru_stime
    d = cpu_seconds(r.cmd("delete", cid))
    wall = time.perf_counter() - t
    os.unlink(pidfile)
    return {"create": c, "start": s, "init": i, "delete": d, "total": c + s + i + d, "wall": wall}


def spread(values):
    q1, q3 = quartiles(values)
    return f"{median(values):.3f} ({q1:.3f}–{q3:.3f})"


def report(samples, names):
    from report import markdown_table

    rows = []
    pairs = list(zip(names, names[1:])) + ([(names[0], names[-1])] if len(names) > 2 else [])
    for phase in PHASES:
        row = [phase] + [f"{median([x[phase] for x in samples[n]]) * 1000:.2f}" for n in names]
        for before, after in pairs:
            row.append(spread(per_round([x[phase] for x in samples[after]], [x[phase] for x in samples[before]])))
        rows.append(row)
    head = ["phase"] + [f"{n} ms" for n in names] + [f"{a} / {b}" for b, a in pairs]
    return markdown_table(head, rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("revs", nargs="+", metavar="REV", help="revisions, oldest first; `this` is --pyrunc")
    ap.add_argument("--pyrunc", default=os.path.join(os.path.dirname(HERE), ".venv/bin/pyrunc"))
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/lifecycle_cpu.py: run as root (it creates containers)")
    os.environ.pop("PYRUNC_TRACE", None)
    become_subreaper()
    pyrunc = os.path.abspath(args.pyrunc)
    python = os.path.join(os.path.dirname(os.path.realpath(pyrunc)), "python")
    bench = bundle.Bench()
    left = []
    try:
        with contextlib.ExitStack() as builds_made:  # left before bench.cleanup removes their dir
            builds = {}
            for i, rev in enumerate(args.revs):
                if rev == "this":
                    builds[rev] = pyrunc
                    continue
                workdir = os.path.join(bench.dir, f"build{i}")
                os.mkdir(workdir)
                launcher, desc = builds_made.enter_context(run.baseline_build(rev, python, workdir, left))
                builds[rev] = launcher
                print(f"{rev}: {desc}")
            names = list(builds)
            rts = {n: bench.runtime(n, [p], tag=f"lc-{i}") for i, (n, p) in enumerate(builds.items())}
            bundles = {n: bench.bundle(cgroup=f"lc-{i}") for i, n in enumerate(names)}
            for n in names:  # one untimed round
                lifecycle(bench, rts[n], bundles[n])
            samples = {n: [] for n in names}
            for order in run.rotations(args.runs, names):
                for n in order:
                    samples[n].append(lifecycle(bench, rts[n], bundles[n]))
            for r in rts.values():  # while the builds' trees are still there
                for cid in r.ids():
                    r.call("delete", "--force", cid)
    finally:
        left += bench.cleanup()
    print(f"{args.runs} rounds, load {run.loadavg()}")
    print("CPU time (user + system) by process, and the wall time of the four; per-round ratios: median (middle half)")
    print(report(samples, names))
    print("left behind: " + ("; ".join(left) if left else "nothing"))


if __name__ == "__main__":
    main()
