"""The benchmark suite: pyrunc against runc (and crun where it works) on one bundle.

    python bench/run.py [--runs N] [--pyrunc PATH] [--only NAME ...] [--no-write]
                        [--trace-baseline REV]

Prints a table of figures and writes docs/performance.md (not with --only or
--no-write), keeping its hand-written part.  Run as root.  Nothing is asserted: a
figure that misses its target is reported as "not met".  bench/README.md describes the
figures; `make bench` runs it.
"""

import argparse
import concurrent.futures
import contextlib
import datetime
import glob
import json
import os
import platform
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import breakdown as breakdown_mod  # noqa: E402
import bundle  # noqa: E402
import report  # noqa: E402
import timeline as timeline_mod  # noqa: E402
from report import Row, Verdict, fmt, fmt_ratio, median, ratio  # noqa: E402

REPO = os.path.dirname(HERE)
DOC = os.path.join(REPO, "docs", "performance.md")
TRACE_BASELINE = "ec186e8"  # the commit before the step trace was merged
MIB = 2**20


class Failed(Exception):
    pass


TIMEOUT = 120  # seconds: only so that a hung command ends the figure, not the suite


def timed(cmd, cwd=None):
    """Run cmd to completion as a direct exec (no shell), stdin from /dev/null, stdout to
    /dev/null and stderr to a file, never a pipe (see bundle.Runtime).  Returns the
    seconds from just before it starts until it has been waited for (bundle.run_timed);
    raises Failed with the end of its stderr when it exits non-zero."""
    with tempfile.TemporaryFile() as err:
        try:
            code, dt = bundle.run_timed(
                cmd, TIMEOUT, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
        except TimeoutError as e:
            raise Failed(str(e)) from None
        if code != 0:
            err.seek(0)
            raise Failed(f"{describe(cmd)}: exit {code}: {last_line(err.read().decode(errors='replace'))}")
    return dt


step = timed  # an untimed set-up step runs the same way; its time is dropped


def describe(cmd):
    """A command for a message: the program's name and its arguments but the --root."""
    args = list(cmd[1:])
    if "--root" in args:
        i = args.index("--root")
        del args[i : i + 2]
    return " ".join([os.path.basename(cmd[0])] + args)


def last_line(text):
    """The last line of an error output; of a logrus line (runc's), its msg."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "(no output)"
    m = re.search(r'msg="((?:[^"\\]|\\.)*)"', lines[-1])
    return m.group(1).replace('\\"', '"') if m else lines[-1]


def rotations(n, items):
    """n orders of items, each rotated one further: who goes first alternates."""
    for i in range(n):
        k = i % len(items)
        yield items[k:] + items[:k]


def rotated_samples(n, items, measure, key=lambda item: item.name):
    """measure(item) of every item in n rounds (rotations): {key(item): [values]}."""
    samples = {key(item): [] for item in items}
    for order in rotations(n, items):
        for item in order:
            samples[key(item)].append(measure(item))
    return samples


def lifecycle(r, bundle_dir, cid, pidfile_dir, delete=True):
    """create, start, wait until the init has exited, delete: the seconds it took.  The
    wait is on the init pid from --pid-file, the same way for every runtime."""
    pidfile = os.path.join(pidfile_dir, cid + ".pid")
    t = time.perf_counter()
    step(r.cmd("create", "--bundle", bundle_dir, "--pid-file", pidfile, cid))
    with open(pidfile) as f:
        pid = int(f.read())
    try:
        fd = os.pidfd_open(pid)  # before start: the init cannot be gone yet
    except ProcessLookupError:
        fd = None
    try:
        step(r.cmd("start", cid))
        if fd is not None:
            p = select.poll()
            p.register(fd, select.POLLIN)
            if not p.poll(30000):
                raise Failed(f"{r.name}: init {pid} of {cid} still running after 30s")
    finally:
        if fd is not None:
            os.close(fd)
    if delete:
        step(r.cmd("delete", cid))
    return time.perf_counter() - t


class Suite:
    def __init__(self, bench, pyrunc, runs, par_rounds, par_count, trace_baseline=TRACE_BASELINE):
        self.bench = bench
        self.pyrunc = pyrunc
        self.runs = runs
        self.par_rounds = par_rounds
        self.par_count = par_count
        self.trace_baseline = trace_baseline
        self.trace = None  # the trace figure's samples (report.TraceFigure), once taken
        self.left = []  # what a figure could not remove (on top of bench's clean-up)
        # The venv's python that pyrunc's launcher runs on (not resolved: the link is the venv).
        self.python = os.path.join(os.path.dirname(os.path.realpath(pyrunc)), "python")
        self.bare = [self.python, "-I", "-S", "-c", "pass"]
        self.pids = os.path.join(bench.run_dir, "pids")  # on the roots' tmpfs, as an engine's are
        os.makedirs(self.pids)
        self.crun_reason = self.probe_crun()

    def probe_crun(self):
        """None when crun runs /bin/true here, else the one-line reason from its stderr."""
        if not os.access(bundle.CRUN, os.X_OK):
            return f"{bundle.CRUN} is not installed"
        r = self.bench.runtime("crun", [bundle.CRUN], tag="crun-probe")
        code, text = r.call("run", "--bundle", self.bench.bundle(), self.bench.id("probe"))
        return None if code == 0 else last_line(text)

    def runtimes(self, tag, crun=False):
        rs = [
            self.bench.runtime("pyrunc", [self.pyrunc], tag=f"pyrunc-{tag}"),
            self.bench.runtime("runc", [bundle.RUNC], tag=f"runc-{tag}"),
        ]
        if crun and self.crun_reason is None:
            rs.append(self.bench.runtime("crun", [bundle.CRUN], tag=f"crun-{tag}"))
        return rs

    def crun_row(self, label):
        return [] if self.crun_reason is None else [Row(f"crun {label}", note=f"n/a: {self.crun_reason}")]

    # 1 ---------------------------------------------------------------------------
    def fig_run(self):
        rs = self.runtimes("run", crun=True)
        bundles = {r.name: self.bench.bundle(cgroup=f"run-{r.name}") for r in rs}
        samples = rotated_samples(
            self.runs, rs, lambda r: timed(r.cmd("run", "--bundle", bundles[r.name], self.bench.id("run")))
        )
        rows = [Row(f"{r.name} run", samples[r.name], ref="runc run") for r in rs] + self.crun_row("run")
        rel = ratio(median(samples["pyrunc"]), median(samples["runc"]))
        extra = f"; crun {fmt(median(samples['crun']), 'ms')}" if "crun" in samples else "; crun n/a"
        v = Verdict(
            "1",
            "`run` of /bin/true",
            fmt(median(samples["pyrunc"]), "ms"),
            f"runc {fmt(median(samples['runc']), 'ms')}{extra}",
            fmt_ratio(rel),
            "≤ 1.2",  # issue 23
            rel <= 1.2,
        )
        return rows, [v]

    # 2 ---------------------------------------------------------------------------
    def fig_lifecycle(self):
        rs = self.runtimes("lifecycle", crun=True)
        bundles = {r.name: self.bench.bundle(cgroup=f"lc-{r.name}") for r in rs}
        samples = rotated_samples(
            self.runs, rs, lambda r: lifecycle(r, bundles[r.name], self.bench.id("lc"), self.pids)
        )
        label = "create+start+wait+delete"
        rows = [Row(f"{r.name} {label}", samples[r.name], ref=f"runc {label}") for r in rs] + self.crun_row(label)
        rel = ratio(median(samples["pyrunc"]), median(samples["runc"]))
        v = Verdict(
            "2",
            "create + start + wait for stopped + delete",
            fmt(median(samples["pyrunc"]), "ms"),
            f"runc {fmt(median(samples['runc']), 'ms')}",
            fmt_ratio(rel),
            "≤ 1.4",  # issue 23
            rel <= 1.4,
        )
        return rows, [v]

    # 3 ---------------------------------------------------------------------------
    def fig_commands(self):
        py, runc = self.runtimes("commands")
        bundles = {r.name: self.bench.bundle(cgroup=f"cmd-{r.name}") for r in (py, runc)}
        stopped = {}
        for r in (py, runc):
            stopped[r.name] = self.bench.id("cmd")
            lifecycle(r, bundles[r.name], stopped[r.name], self.pids, delete=False)

        def sample_state(r):
            return timed(r.cmd("state", stopped[r.name]))

        def sample_list(r):
            return timed(r.cmd("list"))

        def sample_delete(r):
            cid = self.bench.id("del")
            lifecycle(r, bundles[r.name], cid, self.pids, delete=False)
            return timed(r.cmd("delete", cid))

        def sample_kill(r):
            cid = self.bench.id("kill")
            step(r.cmd("create", "--bundle", bundles[r.name], cid))
            try:
                return timed(r.cmd("kill", cid, "KILL"))
            finally:
                step(r.cmd("delete", "--force", cid))

        ops = [
            ("state", "`state` of a stopped container", sample_state),
            ("list", "`list` with one stopped container", sample_list),
            ("delete", "`delete` of a stopped container", sample_delete),
            ("kill", "`kill ID KILL` of a created container", sample_kill),
        ]
        rows, verdicts = [], []
        for n, (op, what, sample) in enumerate(ops):
            bare = f"bare python ({op})"
            samples = rotated_samples(
                self.runs,
                ["bare", py, runc],
                lambda who: timed(self.bare) if who == "bare" else sample(who),
                key=lambda who: who if who == "bare" else who.name,
            )
            rows += [
                Row(f"pyrunc {op}", samples["pyrunc"], ref=bare),
                Row(f"runc {op}", samples["runc"], ref=bare),
                Row(bare, samples["bare"], note="`python -I -S -c pass`"),
            ]
            b = median(samples["bare"])
            rel = ratio(median(samples["pyrunc"]), b)
            verdicts.append(
                Verdict(
                    f"3{'abcd'[n]}",
                    what,
                    fmt(median(samples["pyrunc"]), "ms"),
                    f"bare python {fmt(b, 'ms')} (runc {fmt(median(samples['runc']), 'ms')},"
                    f" {fmt_ratio(ratio(median(samples['runc']), b))})",
                    fmt_ratio(rel),
                    "≤ 1.2",  # issue 23's target
                    rel <= 1.2,
                )
            )
        for r in (py, runc):
            step(r.cmd("delete", stopped[r.name]))
        return rows, verdicts

    # 4 ---------------------------------------------------------------------------
    def fig_exec(self):
        rs = self.runtimes("exec", crun=True)
        running = {}
        try:
            for r in rs:
                running[r.name] = self.bench.id("exec")
                b = self.bench.bundle(args=("sleep", "1000"), cgroup=f"exec-{r.name}")
                step(r.cmd("create", "--bundle", b, running[r.name]))
                step(r.cmd("start", running[r.name]))
            samples = rotated_samples(self.runs, rs, lambda r: timed(r.cmd("exec", running[r.name], "/bin/true")))
        finally:
            for r in rs:
                if r.name in running:
                    r.call("delete", "--force", running[r.name])
        rows = [Row(f"{r.name} exec", samples[r.name], ref="runc exec") for r in rs] + self.crun_row("exec")
        rel = ratio(median(samples["pyrunc"]), median(samples["runc"]))
        v = Verdict(
            "4",
            "`exec ID /bin/true` into a running container",
            fmt(median(samples["pyrunc"]), "ms"),
            f"runc {fmt(median(samples['runc']), 'ms')}",
            fmt_ratio(rel),
            "≤ 2.0",  # issue 23
            rel <= 2.0,
        )
        return rows, [v]

    # 5 ---------------------------------------------------------------------------
    def fig_list1000(self):
        """list with 1,000 containers against list with 1: one real stopped container
        per runtime, its state directory copied under 999 new ids (a copy of a stopped
        container names a dead init, so every copy is stopped too)."""
        rows, rel = [], {}
        big = {}
        one = {}
        real = {}
        try:
            for name, argv in (("pyrunc", [self.pyrunc]), ("runc", [bundle.RUNC])):
                big[name] = self.bench.runtime(name, argv, tag=f"{name}-list1000")
                one[name] = self.bench.runtime(name, argv, tag=f"{name}-list1")
                real[name] = self.bench.id("list")
                lifecycle(big[name], self.bench.bundle(cgroup=f"list-{name}"), real[name], self.pids, delete=False)
                copy_state(big[name].root, real[name], one[name].root, real[name])
                for i in range(999):
                    copy_state(big[name].root, real[name], big[name].root, f"{real[name]}-{i:03d}")
                for r, n in ((one[name], 1), (big[name], 1000)):
                    check_listed(r, n)
            items = [(name, n) for name in big for n in (1, 1000)]
            samples = rotated_samples(
                self.runs,
                items,
                lambda item: timed((big if item[1] == 1000 else one)[item[0]].cmd("list")),
                key=lambda item: item,
            )
        finally:
            # The copies share the real container's cgroup: delete only the real one
            # through the runtime, then remove the state roots whole.
            for name in real:
                big[name].call("delete", "--force", real[name])
            for r in list(big.values()) + list(one.values()):
                self.bench.forget(r)
        for name in ("pyrunc", "runc"):
            rows += [
                Row(f"{name} list (1 container)", samples[(name, 1)]),
                Row(f"{name} list (1000 containers)", samples[(name, 1000)], ref=f"{name} list (1 container)"),
            ]
            rel[name] = ratio(median(samples[(name, 1000)]), median(samples[(name, 1)]))
        v = Verdict(
            "5",
            "`list`: 1,000 containers over 1",
            f"{fmt(median(samples[('pyrunc', 1000)]), 'ms')} / {fmt(median(samples[('pyrunc', 1)]), 'ms')}",
            f"runc {fmt(median(samples[('runc', 1000)]), 'ms')} / {fmt(median(samples[('runc', 1)]), 'ms')}"
            f" = {fmt_ratio(rel['runc'])}",
            fmt_ratio(rel["pyrunc"]),
            "≤ 3",
            rel["pyrunc"] <= 3,
        )
        return rows, [v]

    # 6 ---------------------------------------------------------------------------
    def fig_parallel(self):
        rs = self.runtimes("parallel")
        n = self.par_count
        bundles = {r.name: [self.bench.bundle(cgroup=f"par-{r.name}/{i}") for i in range(n)] for r in rs}
        samples = {r.name: [] for r in rs}
        failures = {r.name: [] for r in rs}
        for order in rotations(self.par_rounds, rs):
            for r in order:
                ids = [self.bench.id(f"par{i}") for i in range(n)]

                def one(i):
                    try:
                        step(r.cmd("create", "--bundle", bundles[r.name][i], ids[i]))
                        step(r.cmd("start", ids[i]))
                        return None
                    except Failed as e:
                        return str(e)

                with concurrent.futures.ThreadPoolExecutor(n) as pool:
                    t = time.perf_counter()
                    errors = [e for e in pool.map(one, range(n)) if e]
                    samples[r.name].append(time.perf_counter() - t)
                    failures[r.name] += errors
                    # Untimed: remove the round's containers (in parallel too).
                    list(pool.map(lambda cid: r.call("delete", "--force", cid), ids))
        total = self.par_rounds * n
        rows = [
            Row(
                f"{r.name} {n} × create+start in parallel",
                samples[r.name],
                unit="s",
                ref=f"runc {n} × create+start in parallel",
                note=f"{len(failures[r.name])} of {total} failed"
                + (f": {failures[r.name][0]}" if failures[r.name] else ""),
            )
            for r in rs
        ]
        rel = ratio(median(samples["pyrunc"]), median(samples["runc"]))
        v = Verdict(
            "6",
            f"{n} containers created and started in parallel (wall)",
            f"{fmt(median(samples['pyrunc']), 's')}, {len(failures['pyrunc'])}/{total} failed",
            f"runc {fmt(median(samples['runc']), 's')}, {len(failures['runc'])}/{total} failed",
            fmt_ratio(rel),
            "all succeed",
            not failures["pyrunc"],
        )
        return rows, [v]

    # 7 ---------------------------------------------------------------------------
    def fig_rss(self):
        """The max RSS of the largest process in one `run`: a wrapper runs the command
        and reads RUSAGE_CHILDREN (the largest of its waited-for descendants; the
        wrapper's own interpreter does not count)."""
        wrapper = (
            "import resource, subprocess, sys\n"
            "d = subprocess.DEVNULL\n"
            "p = subprocess.run(sys.argv[1:], stdin=d, stdout=d, stderr=d)\n"
            "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        )
        rs = self.runtimes("rss")
        bundles = {r.name: self.bench.bundle(cgroup=f"rss-{r.name}") for r in rs}

        def max_rss(r):
            out = subprocess.run(
                [sys.executable, "-I", "-S", "-c", wrapper]
                + r.cmd("run", "--bundle", bundles[r.name], self.bench.id("rss")),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            code, kib = map(int, out.split())
            if code != 0:
                raise Failed(f"{r.name} run under the rusage wrapper: exit {code}")
            return kib * 1024

        samples = rotated_samples(self.runs, rs, max_rss)
        rows = [Row(f"{r.name} run: max RSS", samples[r.name], unit="MiB", ref="runc run: max RSS") for r in rs]
        m = median(samples["pyrunc"])
        v = Verdict(
            "7",
            "peak memory of `run` (max RSS, largest process)",
            fmt(m, "MiB"),
            f"runc {fmt(median(samples['runc']), 'MiB')}",
            fmt_ratio(ratio(m, median(samples["runc"]))),
            "≤ 25 MiB",
            m <= 25 * MIB,
        )
        return rows, [v]

    # 8 ---------------------------------------------------------------------------
    LIMITS_MIB = (1, 2, 3, 4, 6, 8)
    TRIES = 3

    def fig_floor(self):
        """The smallest linux.resources.memory.limit (nothing else: no swap limit) at
        which `run` of /bin/true exits 0 TRIES times out of TRIES."""
        rows, floor = [], {}
        for r in self.runtimes("floor"):
            results = []
            floor[r.name] = None
            for mib in self.LIMITS_MIB:
                b = self.bench.bundle(cgroup=f"floor-{r.name}-{mib}", memory_limit=mib * MIB)
                ok, why = 0, ""
                for _ in range(self.TRIES):
                    cid = self.bench.id("floor")
                    code, text = r.call("run", "--bundle", b, cid)
                    if code == 0:
                        ok += 1
                    else:
                        why = f" ({last_line(text)})"
                        r.call("delete", "--force", cid)
                results.append(f"{mib} MiB: {ok}/{self.TRIES}{why if ok < self.TRIES else ''}")
                if ok == self.TRIES:
                    floor[r.name] = mib
                    break
            rows.append(
                Row(
                    f"{r.name} smallest memory limit for `run`",
                    [floor[r.name] * MIB] if floor[r.name] else [],
                    unit="MiB",
                    note="; ".join(results),
                )
            )
        rows.append(Row("memory limits written (8 MiB config)", note=self.limits_written()))
        name = lambda mib: "none of " + "/".join(map(str, self.LIMITS_MIB)) + " MiB" if mib is None else f"{mib} MiB"
        v = Verdict(
            "8",
            "memory floor: smallest `memory.limit` at which `run` works",
            name(floor["pyrunc"]),
            f"runc {name(floor['runc'])}",
            "-",
            "works at 1 MiB",  # issue 23: the floor it had is kept
            floor["pyrunc"] is not None and floor["pyrunc"] <= 1,
        )
        return rows, [v]

    def limits_written(self):
        """What each runtime writes to the v1 memory cgroup for a config with only
        `limit` (read back from a created container's cgroup; swap accounting may be off)."""
        base = os.path.join(bundle.CGROUP_FS, "memory")
        if not os.path.isdir(base) or os.path.exists(os.path.join(bundle.CGROUP_FS, "cgroup.controllers")):
            return "not a cgroup v1 memory hierarchy: not checked"
        swap = meminfo().get("SwapTotal", "?")
        out = []
        for r in self.runtimes("limits"):
            cg = f"limits-{r.name}"
            cid = self.bench.id("limits")
            step(r.cmd("create", "--bundle", self.bench.bundle(cgroup=cg, memory_limit=8 * MIB), cid))
            try:
                d = os.path.join(base, self.bench.cgroup_top.lstrip("/"), cg)
                vals = []
                for f in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
                    try:
                        with open(os.path.join(d, f)) as fh:
                            v = int(fh.read())
                        vals.append(f"{f.split('.', 1)[1]}={'unlimited' if v >= 2**62 else fmt(v, 'MiB')}")
                    except FileNotFoundError:
                        vals.append(f"{f.split('.', 1)[1]} absent")
                out.append(f"{r.name}: " + ", ".join(vals))
            finally:
                step(r.cmd("delete", "--force", cid))
        return "; ".join(out) + f" (host swap: {swap})"

    # 9 ---------------------------------------------------------------------------
    def fig_trace(self):
        """`run` with tracing off, against a build from before the tracing code (twice:
        the second series is the noise reference) and with --trace FILE."""
        with baseline_build(self.trace_baseline, self.python, self.bench.dir, self.left) as (base, desc):
            if launcher_kind(base) != launcher_kind(self.pyrunc):
                raise Failed(
                    f"the baseline's launcher is {launcher_kind(base)}, this pyrunc's"
                    f" {launcher_kind(self.pyrunc)}: not comparable"
                )
            trace_file = os.path.join(self.bench.dir, "trace.jsonl")
            rs = {
                "off": self.bench.runtime("pyrunc", [self.pyrunc], tag="trace-off"),
                "base": self.bench.runtime("baseline", [base], tag="trace-base"),
                "base2": self.bench.runtime("baseline", [base], tag="trace-base2"),
                "traced": self.bench.runtime("pyrunc", [self.pyrunc, "--trace", trace_file], tag="trace-on"),
            }
            bundles = {k: self.bench.bundle(cgroup=f"trace-{k}") for k in rs}
            sizes, lines = [], []

            def one(k, measure, record):
                dt = measure(rs[k].cmd("run", "--bundle", bundles[k], self.bench.id("trace")))
                if k == "traced":
                    # The trace appends: remove it each round, so every run starts a new file.
                    with open(trace_file, "rb") as f:
                        data = f.read()
                    os.unlink(trace_file)
                    if record:
                        sizes.append(len(data))
                        lines.append(data.count(b"\n"))
                return dt

            # One untimed round first: the baseline's files were only just written.
            for k in rs:
                one(k, step, False)
            samples = rotated_samples(self.runs, list(rs), lambda k: one(k, timed, True), key=lambda k: k)
        self.trace = report.TraceFigure(
            desc, samples["off"], samples["base"], samples["base2"], samples["traced"], sizes, lines
        )
        return report.trace_rows(self.trace), report.trace_verdicts(self.trace)


def git(repo, *args):
    """A git command's output; Failed with its last error line when it fails."""
    p = subprocess.run(["git", "-C", repo] + list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if p.returncode != 0:
        raise Failed(f"git {' '.join(args)}: {last_line(p.stderr)}")
    return p.stdout.strip()


def launcher_kind(path):
    """ "compiled" for an ELF launcher (launcher.c), "script" for the Python fallback."""
    with open(path, "rb") as f:
        return "compiled" if f.read(4) == b"\x7fELF" else "script"


@contextlib.contextmanager
def baseline_build(rev, python, workdir, left, repo=REPO):
    """pyrunc at revision rev: a detached git worktree of repo (this one) in workdir and
    a launcher of its own, built as scripts/setup.sh does (that revision's
    `python -m pyrunc.launcher`, then its bytecode up front) on python, the venv of the
    pyrunc under test, so only pyrunc's own code differs.  Yields (launcher, "<hash>
    (<subject>)"); the worktree is removed afterwards, also on failure (what could not be
    is added to left)."""
    desc = git(repo, "log", "-1", "--format=%h (%s)", f"{rev}^{{commit}}")
    tree = os.path.join(workdir, "baseline-tree")
    launcher = os.path.join(workdir, "baseline-pyrunc")
    try:
        git(repo, "worktree", "add", "--detach", tree, rev)
        # Run from the tree with -m: the tree comes first on sys.path, ahead of the
        # venv's editable install (a meta-path finder appended after the path finder),
        # so that revision's launcher is built and bakes in the tree as import path.
        for cmd in ([python, "-m", "pyrunc.launcher", launcher], [python, "-m", "compileall", "-q", "pyrunc"]):
            p = subprocess.run(cmd, cwd=tree, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if p.returncode != 0:
                raise Failed(f"baseline {rev}: {' '.join(cmd[1:3])}: {last_line(p.stderr)}")
        with open(launcher, "rb") as f:
            if tree.encode() not in f.read():
                raise Failed(f"baseline {rev}: its launcher does not import from {tree}")
        yield launcher, desc
    finally:
        if os.path.exists(tree):
            p = subprocess.run(
                ["git", "-C", repo, "worktree", "remove", "--force", tree],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
            )
            if p.returncode != 0:
                left.append(f"git worktree {tree} ({last_line(p.stderr)})")


def copy_state(src_root, src_id, dst_root, dst_id):
    """A copy of a container's state directory under a new id: regular files only (a
    stopped container's sockets and fifos are stale), the id in state.json fixed."""
    src = os.path.join(src_root, src_id)
    dst = os.path.join(dst_root, dst_id)
    os.makedirs(dst, mode=stat.S_IMODE(os.stat(src).st_mode))
    for name in os.listdir(src):
        path = os.path.join(src, name)
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if name == "state.json":
            state = json.loads(data)
            state["id"] = dst_id
            data = json.dumps(state, separators=(",", ":")).encode()
        fd = os.open(os.path.join(dst, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IMODE(st.st_mode))
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def check_listed(r, n):
    """The runtime lists n containers under its root, every one stopped."""
    code, text = r.call("list", "--format", "json")
    if code != 0:
        raise Failed(f"{r.name} list --format json: {last_line(text)}")
    listed = json.loads(text) or []
    states = {c["status"] for c in listed}
    if len(listed) != n or states != {"stopped"}:
        raise Failed(f"{r.name} lists {len(listed)} containers ({sorted(states)}), expected {n} stopped")


FIGURES = {
    "run": ("1", "run of /bin/true", Suite.fig_run),
    "lifecycle": ("2", "create + start + wait + delete", Suite.fig_lifecycle),
    "commands": ("3", "state, list, delete, kill vs the bare interpreter", Suite.fig_commands),
    "exec": ("4", "exec into a running container", Suite.fig_exec),
    "list1000": ("5", "list with 1,000 containers", Suite.fig_list1000),
    "parallel": ("6", "containers in parallel", Suite.fig_parallel),
    "rss": ("7", "peak memory", Suite.fig_rss),
    "floor": ("8", "memory floor", Suite.fig_floor),
    "trace": ("9", "what the step trace costs", Suite.fig_trace),
}


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


def read(path):
    with open(path) as f:
        return f.read()


def loadavg():
    return ", ".join(read("/proc/loadavg").split()[:3])


def first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return "n/a"


def cgroup_layout():
    fs = bundle.CGROUP_FS
    if os.path.exists(os.path.join(fs, "cgroup.controllers")):
        with open(os.path.join(fs, "cgroup.controllers")) as f:
            return f"cgroup v2 (controllers: {f.read().strip()})"
    v1 = sorted(d for d in os.listdir(fs) if d != "unified" and os.path.isdir(os.path.join(fs, d)))
    unified = os.path.join(fs, "unified")
    if os.path.isdir(unified):
        with open(os.path.join(unified, "cgroup.subtree_control")) as f:  # read only
            ctl = f.read().strip() or "no controllers"
        return f"hybrid: v1 hierarchies {', '.join(v1)}; cgroup2 at {unified} ({ctl})"
    return f"cgroup v1: {', '.join(v1)}"


def machine(pyrunc, crun_reason, bench):
    models = [ln.split(":", 1)[1].strip() for ln in read("/proc/cpuinfo").splitlines() if ln.startswith("model name")]
    python = os.path.join(os.path.dirname(os.path.realpath(pyrunc)), "python")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(pyrunc))))
    commit = (
        subprocess.run(
            ["git", "-C", repo, "describe", "--always", "--dirty"], capture_output=True, text=True
        ).stdout.strip()
        or "?"
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "CPU": f"{models[0] if models else '?'} × {os.cpu_count()}",
        "memory": f"{int(meminfo()['MemTotal'].split()[0]) / 2**20:.1f} GiB",
        # Other work on the machine moves every figure: the load says how quiet it was.
        "load average at start (1, 5, 15 min)": loadavg(),
        "Python (pyrunc's)": first_line([python, "-c", "import sys; print(sys.version.split()[0])"]),
        "pyrunc": f"{pyrunc} (commit {commit})",
        "runc": first_line([bundle.RUNC, "--version"]),
        "crun": first_line([bundle.CRUN, "--version"]) + ("" if crun_reason is None else f" (n/a here: {crun_reason})"),
        "cgroups": cgroup_layout(),
        "state roots (--root of every runtime)": bench.roots_fs(),
    }


def leftovers(bench):
    """What is left of this run after clean-up: state roots, cgroups, mounts, processes.
    A live process in one of this run's cgroups, or whose command line names its scratch
    dir, was started by this run: it is reported and killed by pid.
    Zombies are not counted: this host's pid 1 reaps orphans only now and then, and an
    exited init waits there (its /proc/PID/cgroup still names the removed cgroup)."""
    left = []
    if os.path.exists(bench.dir):
        left.append(f"scratch dir {bench.dir}")
    top = bench.cgroup_top
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                paths = [line.rstrip("\n").split(":", 2)[2] for line in f]
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        # In one of our cgroups, or a runtime (or an init not yet exec'd, which still
        # has the runtime's command line) run on our scratch dir: ours either way.
        ours = any(p == top or p.startswith(top + "/") for p in paths) or bench.dir in cmdline
        if state != "Z" and ours and int(pid) != os.getpid():
            left.append(f"process {pid} ({cmdline[:200]}) in {top} or on {bench.dir} (killed)")
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    left += bundle.remove_cgroups(top.lstrip("/"))
    # Every command had its own --root: nothing of ours belongs in a default root.
    left += [f"state {p}" for p in glob.glob(f"/run/*/{bundle.PREFIX}*") + glob.glob(f"/run/{bundle.PREFIX}*")]
    with open("/proc/self/mountinfo") as f:
        left += [f"mount {ln.split()[4]}" for ln in f if bundle.PREFIX in ln]
    return left


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="alternating runs per figure (default 20)")
    ap.add_argument("--pyrunc", default="/work/main/.venv/bin/pyrunc", help="the pyrunc command")
    ap.add_argument(
        "--only",
        nargs="+",
        choices=list(FIGURES) + ["breakdown", "timeline"],
        metavar="NAME",
        help=f"only these figures ({', '.join(FIGURES)}, breakdown, timeline); does not write the doc",
    )
    ap.add_argument("--no-write", action="store_true", help=f"do not write {os.path.relpath(DOC)}")
    ap.add_argument("--doc", default=DOC, help="the performance document to write")
    ap.add_argument("--par-rounds", type=int, default=3, help="rounds of the parallel figure (default 3)")
    ap.add_argument("--par-count", type=int, default=50, help="containers per parallel round (default 50)")
    ap.add_argument(
        "--trace-baseline",
        default=TRACE_BASELINE,
        metavar="REV",
        help=f"the trace figure's revision without the tracing code (default {TRACE_BASELINE})",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/run.py: run as root (it creates containers)")
    pyrunc = os.path.abspath(args.pyrunc)
    # Every figure but the traced series measures pyrunc untraced, whatever the caller's env.
    os.environ.pop("PYRUNC_TRACE", None)
    only = args.only or list(FIGURES) + ["breakdown", "timeline"]
    started = time.monotonic()
    verdicts, figures, errors = [], [], []
    breakdown_md = timeline_md = "(not run)"
    bench = bundle.Bench()
    suite = None
    try:
        suite = Suite(bench, pyrunc, args.runs, args.par_rounds, args.par_count, args.trace_baseline)
        info = machine(pyrunc, suite.crun_reason, bench)
        for name, (num, title, fn) in FIGURES.items():
            if name not in only:
                continue
            print(f"[{time.monotonic() - started:5.0f}s] {num}. {title} ...", file=sys.stderr, flush=True)
            try:
                rows, vs = fn(suite)
            except Failed as e:
                errors.append(f"{num}. {title}: {e}")
                verdicts.append(Verdict(num, title, "error", str(e)[:200], "-", "-", None))
                continue
            figures.append((num, title, rows))
            verdicts += vs
        if "breakdown" in only:
            print(
                f"[{time.monotonic() - started:5.0f}s] breakdown of `pyrunc run` under strace ...",
                file=sys.stderr,
                flush=True,
            )
            try:
                bd_text, breakdown_md = breakdown_mod.breakdown(pyrunc, bench, min(args.runs, 5))
            except (RuntimeError, Failed, subprocess.CalledProcessError) as e:
                bd_text = breakdown_md = f"breakdown failed: {e}"
        if "timeline" in only:
            print(f"[{time.monotonic() - started:5.0f}s] timeline (bench/timeline.py) ...", file=sys.stderr, flush=True)
            try:
                has_strace = shutil.which("strace") is not None  # without it, pyrunc's steps only
                timeline_md = timeline_mod.report(pyrunc, bench, min(args.runs, 9), with_strace=has_strace)
            except (RuntimeError, Failed, subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
                timeline_md = f"timeline failed: {e}"
    finally:
        left = bench.cleanup()
        left += leftovers(bench)
        left += suite.left if suite else []
    elapsed = time.monotonic() - started
    info["load average at the end"] = loadavg()
    info["suite's wall time"] = f"{elapsed:.0f} s"
    info["left behind after clean-up"] = "; ".join(left) if left else "nothing"

    print()
    print(f"state roots: {bench.roots_fs()}")
    print(report.verdicts_table(verdicts))
    print()
    print(report.details_table(figures))
    if suite.trace is not None:
        print()
        print("What the step trace costs:")
        print(report.trace_section(suite.trace, args.runs))
    if "breakdown" in only:
        print()
        print("Where the time goes in `pyrunc run`:")
        print(bd_text)
    if "timeline" in only:
        print()
        print(timeline_md)
    print()
    for e in errors:
        print(f"error: {e}")
    print("left behind: " + ("; ".join(left) if left else "nothing"))
    print(
        f"took {elapsed:.0f} s; load average at start {info['load average at start (1, 5, 15 min)']},"
        f" at the end {info['load average at the end']}"
    )
    if args.only or args.no_write:
        print(f"{os.path.relpath(args.doc)} not written (--only or --no-write)")
        return
    command = "python bench/run.py" + (f" --runs {args.runs}" if args.runs != 20 else "")
    trace_md = report.trace_section(suite.trace, args.runs)
    generated = report.render(info, verdicts, figures, breakdown_md, args.runs, command, trace_md, timeline_md)
    report.write_doc(args.doc, generated)
    print(f"wrote {os.path.relpath(args.doc)}")


if __name__ == "__main__":
    main()
