"""The light commands' CPU time over the bare interpreter (issue 23): `state` and `list`
of a stopped container, `kill ID KILL` of a created one, `delete` of a stopped one, and
`list` of 1,000 containers over `list` of one.

    python bench/cpu.py [--runs N] [--base REV] [--only state list kill delete list1000]

Wall time on a loaded machine moves by more than these commands' distance to the bare
interpreter; CPU time (user + system from wait4's rusage, which counts what the command
waited for) moves far less.  This pyrunc, with --base a build of an earlier revision (made
as bench/ab.py makes it), and `python -I -S -c pass` of the same interpreter take turns in
every round; each figure is the median of the per-round ratios with their middle half.
Containers and state roots as bench/run.py's figures 3 and 5 make them.  Run as root;
nothing is written but the scratch dir.
"""

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bundle  # noqa: E402
import run  # noqa: E402
from report import median, per_round, quartiles  # noqa: E402

OPS = ("state", "list", "kill", "delete", "list1000")


def cpu_seconds(cmd):
    """CPU seconds of cmd and what it waited for (stdin and stdout /dev/null, stderr a
    file); run.Failed with the end of its stderr when it exits non-zero."""
    with tempfile.TemporaryFile() as err:
        null = os.open(os.devnull, os.O_RDWR)
        try:
            actions = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1)]
            actions.append((os.POSIX_SPAWN_DUP2, err.fileno(), 2))
            pid = os.posix_spawn(cmd[0], cmd, os.environ, file_actions=actions)
        finally:
            os.close(null)
        _, status, usage = os.wait4(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise run.Failed(f"{run.describe(cmd)}: exit {code}: {run.last_line(err.read().decode(errors='replace'))}")
    return usage.ru_utime + usage.ru_stime


def spread(values):
    q1, q3 = quartiles(values)
    return f"{median(values):.3f} ({q1:.3f}–{q3:.3f})"


class Commands:
    """Each build's runtime with a stopped container in its root, and for list1000 a
    second root of 1,000 copies of it (bench/run.py's figure 5)."""

    def __init__(self, bench, builds, big):
        self.bench = bench
        self.rt = {n: bench.runtime(n, [p], tag=f"cpu-{n}") for n, p in builds.items()}
        self.bundles = {n: bench.bundle(cgroup=f"cpu-{n}") for n in builds}
        self.stopped = {}
        self.big = {}
        for n in builds:
            self.stopped[n] = bench.id("cpu")
            run.lifecycle(self.rt[n], self.bundles[n], self.stopped[n], bench.run_dir, delete=False)
            if big:
                self.big[n] = bench.runtime(n, [builds[n]], tag=f"cpu-{n}-1000")
                for i in range(1000):
                    run.copy_state(self.rt[n].root, self.stopped[n], self.big[n].root, f"{self.stopped[n]}-{i:03d}")
                run.check_listed(self.big[n], 1000)

    def sample(self, op, n):
        r = self.rt[n]
        if op == "state":
            return cpu_seconds(r.cmd("state", self.stopped[n]))
        if op == "list":
            return cpu_seconds(r.cmd("list"))
        if op == "list1000":
            return cpu_seconds(self.big[n].cmd("list"))
        if op == "kill":
            cid = self.bench.id("kill")
            run.step(r.cmd("create", "--bundle", self.bundles[n], cid))
            try:
                return cpu_seconds(r.cmd("kill", cid, "KILL"))
            finally:
                run.step(r.cmd("delete", "--force", cid))
        cid = self.bench.id("del")
        run.lifecycle(r, self.bundles[n], cid, self.bench.run_dir, delete=False)
        return cpu_seconds(r.cmd("delete", cid))

    def forget_copies(self):
        """The copies share the real container's cgroup: their roots go whole."""
        for r in self.big.values():
            self.bench.forget(r)
        self.big = {}


def measure(cmds, op, names, runs, bare):
    """{item: [seconds]}: the bare interpreter and each build (for list1000, each
    build's list of 1,000 and of one) in every round, turn by turn."""
    items = [(n, op) for n in names] + ([("one", n) for n in names] if op == "list1000" else [("bare", None)])
    samples = {item: [] for item in items}
    for order in run.rotations(runs, items):
        for who, what in order:
            if who == "bare":
                samples[(who, what)].append(cpu_seconds(bare))
            elif who == "one":
                samples[(who, what)].append(cmds.sample("list", what))
            else:
                samples[(who, what)].append(cmds.sample(op, who))
    return samples


def rows_for(op, samples, names):
    rows = []
    for n in names:
        mine = samples[(n, op)]
        ref = samples[("one", n)] if op == "list1000" else samples[("bare", None)]
        rows.append(
            [
                op,
                n,
                f"{median(mine) * 1000:.2f}",
                f"{median(ref) * 1000:.2f}",
                spread(per_round(mine, ref)),
            ]
        )
    if len(names) == 2:
        a, b = names
        rows.append([op, f"{a} / {b}", "", "", spread(per_round(samples[(a, op)], samples[(b, op)]))])
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pyrunc", default=os.path.join(os.path.dirname(HERE), ".venv/bin/pyrunc"))
    ap.add_argument("--base", metavar="REV", help="an earlier revision, built and measured alongside")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--only", nargs="+", choices=OPS, default=list(OPS))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/cpu.py: run as root (it creates containers)")
    os.environ.pop("PYRUNC_TRACE", None)
    pyrunc = os.path.abspath(args.pyrunc)
    bench = bundle.Bench()
    left, rows, cmds = [], [], None
    try:
        suite = run.Suite(bench, pyrunc, args.runs, 0, 0)
        bare = [suite.python, "-I", "-S", "-c", "pass"]
        with _builds(args.base, pyrunc, suite, bench, left) as (builds, desc):
            names = list(builds)
            cmds = Commands(bench, builds, "list1000" in args.only)
            for op in args.only:
                rows += rows_for(op, measure(cmds, op, names, args.runs, bare), names)
            cmds.forget_copies()
            for r in cmds.rt.values():  # while the base's tree is still there
                for cid in r.ids():
                    r.call("delete", "--force", cid)
    finally:
        if cmds is not None:
            cmds.forget_copies()
        left += bench.cleanup()
    print(f"{desc}, {args.runs} rounds, load {run.loadavg()}")
    print("CPU time (user + system); per-round ratios: median (middle half)")
    print(report_table(rows))
    print("left behind: " + ("; ".join(left) if left else "nothing"))


def report_table(rows):
    from report import markdown_table

    return markdown_table(["command", "build", "CPU ms", "reference ms", "per-round ratio"], rows)


class _builds:
    """{name: launcher} of this pyrunc ("this") and, with a base revision, its build
    ("base"), and a line describing them."""

    def __init__(self, base, pyrunc, suite, bench, left):
        self.base, self.pyrunc, self.suite, self.bench, self.left = base, pyrunc, suite, bench, left
        self.ctx = None

    def __enter__(self):
        if self.base is None:
            return {"this": self.pyrunc}, f"this pyrunc ({self.pyrunc}) over `python -I -S -c pass`"
        self.ctx = run.baseline_build(self.base, self.suite.python, self.bench.dir, self.left)
        launcher, desc = self.ctx.__enter__()
        return {"this": self.pyrunc, "base": launcher}, f"this pyrunc ({self.pyrunc}) and {desc}"

    def __exit__(self, *exc):
        if self.ctx is not None:
            return self.ctx.__exit__(*exc)
        return False


if __name__ == "__main__":
    main()
