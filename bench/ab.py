"""One change's saving: this pyrunc against a build of an earlier revision, with runc, in
one rotation.

    python bench/ab.py --base REV [--runs N] [--only run lifecycle exec state]

On a shared machine the load moves every figure between two runs of the suite by more
than one change saves; here the two builds and runc take turns within every round, so
the per-round ratios (this / base, and each over runc) are what to read: their median
and middle half.  The base is built as bench/run.py's trace figure builds its baseline
(a detached worktree, its own launcher on this pyrunc's interpreter, its bytecode).
Run as root; nothing is written but the scratch dir.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bundle  # noqa: E402
import run  # noqa: E402
from report import markdown_table, median, per_round, quartiles  # noqa: E402


def samples_for(fig, suite, rs):
    """{name: [seconds]} of the figure `fig`, every runtime in rs taking turns."""
    bench = suite.bench
    if fig == "run":
        bundles = {r.name: bench.bundle(cgroup=f"ab-run-{r.name}") for r in rs}
        return run.rotated_samples(
            suite.runs, rs, lambda r: run.timed(r.cmd("run", "--bundle", bundles[r.name], bench.id("ab")))
        )
    if fig == "lifecycle":
        bundles = {r.name: bench.bundle(cgroup=f"ab-lc-{r.name}") for r in rs}
        return run.rotated_samples(
            suite.runs, rs, lambda r: run.lifecycle(r, bundles[r.name], bench.id("ab"), suite.pids)
        )
    if fig == "state":
        stopped = {}
        for r in rs:
            stopped[r.name] = bench.id("ab")
            run.lifecycle(r, bench.bundle(cgroup=f"ab-st-{r.name}"), stopped[r.name], suite.pids, delete=False)
        try:
            return run.rotated_samples(suite.runs, rs, lambda r: run.timed(r.cmd("state", stopped[r.name])))
        finally:
            for r in rs:
                r.call("delete", "--force", stopped[r.name])
    running = {}
    try:
        for r in rs:
            running[r.name] = bench.id("ab")
            b = bench.bundle(args=("sleep", "1000"), cgroup=f"ab-exec-{r.name}")
            run.step(r.cmd("run", "--bundle", b, "--detach", running[r.name]))
            run.step(r.cmd("exec", running[r.name], "/bin/true"))  # the first pays one-off costs
        return run.rotated_samples(suite.runs, rs, lambda r: run.timed(r.cmd("exec", running[r.name], "/bin/true")))
    finally:
        for r in rs:
            if r.name in running:
                r.call("delete", "--force", running[r.name])


def fmt_rounds(a, b):
    rounds = per_round(a, b)
    q1, q3 = quartiles(rounds)
    return f"{median(rounds):.3f} ({q1:.3f}–{q3:.3f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, metavar="REV", help="the earlier revision")
    ap.add_argument("--pyrunc", default=os.path.join(os.path.dirname(HERE), ".venv/bin/pyrunc"))
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--only", nargs="+", choices=("run", "lifecycle", "exec", "state"), default=["run"])
    ap.add_argument("--disk", action="store_true", help="state roots on the scratch dir's disk, not a tmpfs")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/ab.py: run as root (it creates containers)")
    os.environ.pop("PYRUNC_TRACE", None)
    pyrunc = os.path.abspath(args.pyrunc)
    bench = bundle.Bench(tmpfs=not args.disk)
    left = []
    try:
        suite = run.Suite(bench, pyrunc, args.runs, 0, 0)
        with run.baseline_build(args.base, suite.python, bench.dir, left) as (base, desc):
            rs = [
                bench.runtime("new", [pyrunc], tag="ab-new"),
                bench.runtime("base", [base], tag="ab-base"),
                bench.runtime("runc", [bundle.RUNC], tag="ab-runc"),
            ]
            rows = []
            for fig in args.only:
                t = time.monotonic()
                s = samples_for(fig, suite, rs)
                print(f"{fig}: {time.monotonic() - t:.0f} s", file=sys.stderr)
                rows.append(
                    [
                        fig,
                        *(f"{median(s[n]) * 1000:.1f}" for n in ("new", "base", "runc")),
                        fmt_rounds(s["new"], s["base"]),
                        fmt_rounds(s["new"], s["runc"]),
                        fmt_rounds(s["base"], s["runc"]),
                    ]
                )
            # While the base's tree is still there: its launcher runs from it.
            for r in rs:
                for cid in r.ids():
                    r.call("delete", "--force", cid)
    finally:
        left += bench.cleanup()
    print(f"this pyrunc ({pyrunc}) against {desc}, {args.runs} rounds, load {run.loadavg()}")
    print(f"state roots: {bench.roots_fs()}")
    print("per-round ratios: median (middle half)")
    print(
        markdown_table(
            ["figure", "this ms", "base ms", "runc ms", "this / base", "this / runc", "base / runc"],
            rows,
        )
    )
    print("left behind: " + ("; ".join(left) if left else "nothing"))


if __name__ == "__main__":
    main()
