"""bench/'s logic that is not timing: tables, the regenerated document keeping its
hand-written part, the run order, the strace timeline cut into phases and into lanes, and
the suite's tmpfs for the state roots (the only test that needs root).  No containers,
no timings asserted."""

import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench")
sys.path.insert(0, BENCH)

import breakdown  # noqa: E402
import bundle  # noqa: E402
import cpu  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402
import timeline  # noqa: E402
from report import Row, Verdict  # noqa: E402


def test_units():
    assert report.fmt(0.1234, "ms") == "123.4 ms"
    assert report.fmt(1.5, "s") == "1.50 s"
    assert report.fmt(3 * 2**20, "MiB") == "3.0 MiB"
    assert report.fmt(None, "ms") == "-"
    assert report.fmt_ratio(report.ratio(3.0, 4.0)) == "0.75"
    assert report.fmt_ratio(report.ratio(1.0, 0)) == "-"


def test_details_table_median_min_max_and_ratio():
    rows = [
        Row("pyrunc run", [0.3, 0.1, 0.2], ref="runc run"),
        Row("runc run", [0.1, 0.1, 0.4], ref="runc run"),
        Row("crun run", note="n/a: cgroups in hybrid mode not supported"),
    ]
    lines = report.details_table([("1", "run", rows)]).splitlines()
    assert lines[0].startswith("| # ") and set(lines[1]) <= {"|", "-", " "}
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert cells[0][1:7] == ["pyrunc run", "3", "200.0 ms", "100.0 ms", "300.0 ms", "2.00 × runc run"]
    assert cells[1][3] == "100.0 ms"
    assert cells[2][1] == "crun run" and cells[2][2] == "-" and "hybrid" in cells[2][7]
    # Padded columns: every line as wide as the header.
    assert len({len(line) for line in lines}) == 1


def test_verdicts_table_met_column():
    text = report.verdicts_table(
        [
            Verdict("1", "run", "120 ms", "runc 40 ms", "3.00", "≤ 0.75", False),
            Verdict("7", "rss", "17 MiB", "runc 11 MiB", "1.55", "≤ 25 MiB", True),
            Verdict("6", "par", "error", "boom", "-", "-", None),
        ]
    )
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[2:]]
    assert [c[-1] for c in cells] == ["not met", "met", "-"]


def test_hand_written_part_survives_regeneration(tmp_path):
    doc = str(tmp_path / "performance.md")
    first = report.write_doc(doc, "# Performance\n\nfirst figures\n")
    assert report.MARKER in first and "What was done to cut it" in first
    with open(doc, "a") as f:
        f.write("\nWe cached the schema: -20 ms.\n")
    second = report.write_doc(doc, "# Performance\n\nsecond figures\n")
    assert "second figures" in second and "first figures" not in second
    assert second.count(report.MARKER) == 1
    assert second.endswith("We cached the schema: -20 ms.\n")
    with open(doc) as f:
        assert f.read() == second


def test_render_has_the_sections():
    text = report.render({"date": "2026-01-01 00:00 UTC", "kernel": "6.1"}, [], [], "phases", 20, "python bench/run.py")
    for heading in (
        "## Machine",
        "## Figures",
        "## What the step trace costs",
        "## Where the time goes in `pyrunc run`",
    ):
        assert heading in text
    assert "make bench" in text and "* kernel: 6.1" in text


def test_rotations_alternate_who_goes_first():
    assert list(run.rotations(3, ["a", "b"])) == [["a", "b"], ["b", "a"], ["a", "b"]]
    assert [o[0] for o in run.rotations(3, ["a", "b", "c"])] == ["a", "b", "c"]


def test_last_line_of_runc_logrus_error():
    text = 'warn\ntime="2026" level=error msg="runc run failed: unable to set \\"memory\\""\n'
    assert run.last_line(text) == 'runc run failed: unable to set "memory"'
    assert run.last_line("cgroups in hybrid mode not supported\n\n") == "cgroups in hybrid mode not supported"


def test_describe_drops_the_root():
    assert run.describe(["/x/pyrunc", "--root", "/tmp/r", "start", "id"]) == "pyrunc start id"


TRACE = """\
100 10.000 execve("/venv/bin/pyrunc", ["pyrunc", "--root", "/r", "run", "c"], 0x1 /* 3 vars */) = 0
100 10.050 mkdir("/r/~creating~c", 0700) = 0
100 10.060 clone(child_stack=NULL, flags=SIGCHLD) = 101
101 10.070 unshare(CLONE_NEWNS|CLONE_NEWPID) = 0
101 10.071 clone(child_stack=NULL, flags=SIGCHLD) = 102
102 10.080 mount(NULL, "/", NULL, MS_REC|MS_SLAVE, NULL) = 0
102 10.090 pivot_root(".", ".") = 0
102 10.095 accept4(6,  <unfinished ...>
100 10.100 connect(4, {sa_family=AF_UNIX, sun_path="/r/c/start.sock"}, 29) = 0
102 10.101 <... accept4 resumed>{sa_family=AF_UNIX}, [110 => 2], SOCK_CLOEXEC) = 3
102 10.102 execve("/bin/true", ["/bin/true"], 0x2 /* 3 vars */) = 0
102 10.104 exit_group(0)   = ?
102 10.105 +++ exited with 0 +++
100 10.110 unlink("/r/c/state.json") = 0
100 10.112 rmdir("/r/c") = 0
100 10.120 +++ exited with 0 +++
"""


def test_breakdown_phases_from_a_timeline():
    rows, total = breakdown.table_rows(*breakdown.phases(breakdown.parse(TRACE), "/r"))
    ms = {name: v for name, v, _ in rows}
    assert round(total, 3) == 120.0
    assert round(ms["interpreter start + imports"], 3) == 50.0
    assert round(ms["namespaces (unshare)"], 3) == 10.0
    assert round(ms["container running /bin/true"], 3) == 3.0
    assert round(ms["interpreter exit"], 3) == 8.0
    assert abs(sum(share for _, _, share in rows) - 1.0) < 1e-9


def test_breakdown_missing_marker_is_a_dash():
    # No pivot_root (say the runtime stopped using it): that phase is "-" and the one
    # before it runs on to the next marker.
    trace = "\n".join(line for line in TRACE.splitlines() if "pivot_root" not in line)
    rows, total = breakdown.table_rows(*breakdown.phases(breakdown.parse(trace), "/r"))
    ms = {name: v for name, v, _ in rows}
    assert ms["process setup"] is None
    assert round(ms["rootfs (mounts)"], 3) == 15.0
    assert "| process setup " in breakdown.render(rows, total)
    assert [r for r in breakdown.render(rows, total).splitlines() if "process setup" in r][0].split("|")[
        2
    ].strip() == "-"


# strace -f -ttt -T -y: a runtime with a thread, a child that execs, a blocked read and
# a cgroup move whose answer comes on the next line.
LANES = """\
200 20.000000 execve("/usr/bin/rt", ["rt", "run", "c"], 0x1 /* 3 vars */) = 0 <0.000500>
200 20.001000 openat(AT_FDCWD</>, "/lib/libc.so.6", O_RDONLY|O_CLOEXEC) = 3</lib/libc.so.6> <0.000010>
200 20.002000 clone3({flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, child_tid=0x1}, 88) = 201 <0.000100>
201 20.002500 read(5<pipe:[7]>, "x", 1) = 1 <0.000005>
200 20.003000 clone(child_stack=NULL, flags=SIGCHLD) = 202 <0.000200>
202 20.003300 read(6<pipe:[8]>,  <unfinished ...>
200 20.004000 write(7</sys/fs/cgroup/pids/c/cgroup.procs>, "202", 3 <unfinished ...>
200 20.016000 <... write resumed>) = 3 <0.012000>
202 20.017300 <... read resumed>"go", 2) = 2 <0.014000>
202 20.018000 pivot_root(".", ".") = 0 <0.000050>
202 20.019000 execve("/bin/true", ["/bin/true"], 0x2 /* 3 vars */) = 0 <0.000400>
202 20.020000 +++ exited with 0 +++
201 20.021000 +++ exited with 0 +++
200 20.022000 unlink("/r/c/state.json") = 0 <0.000020>
200 20.023000 +++ exited with 0 +++
"""


def test_timeline_lanes_fold_threads_and_show_waits():
    procs, first = timeline.lanes(*timeline.parse(LANES))
    assert first == 200 and sorted(procs) == [200, 202]  # the thread 201 is folded into 200
    rt, child = procs[200], procs[202]
    assert child.parent == 200 and child.argv == "true"
    assert rt.label.startswith("command [rt run c]") and child.label.startswith("P1 [true]")
    assert [round(d, 3) for _, d, what in rt.waits if what == "cgroup move"] == [0.012]
    assert [(round(d, 3), what) for _, d, what in child.waits] == [(0.014, "read pipe:[8]")]
    assert rt.code == [20.001] and round(rt.end - rt.start, 3) == 0.023
    events = timeline.render_events(procs, first)
    assert "cgroup move, write cgroup.procs (12.0 ms)" in events and "pivot_root" in events
    chart = timeline.render_lanes(procs, first, width=23).splitlines()
    lane = {row.split("|")[2].split()[0]: row.split("|")[1] for row in chart[1:]}
    assert "i" in lane["command"] and "CCCCCCCCCCC" in lane["command"] and "#" not in lane["command"]
    assert lane["P1"].strip().startswith("#") and lane["P1"].startswith("   ")  # forked at 3 ms


def test_run_timed_returns_the_status_and_kills_a_hung_command():
    import subprocess

    import bundle

    code, seconds = bundle.run_timed(["sh", "-c", "exit 3"], stdout=subprocess.DEVNULL)
    assert code == 3 and seconds > 0
    try:
        bundle.run_timed(["sleep", "30"], timeout=0.2)
    except TimeoutError as e:
        assert "still running" in str(e)
    else:
        raise AssertionError("no TimeoutError")


def test_readme_table_lists_every_figure_in_order():
    with open(os.path.join(BENCH, "README.md")) as f:
        rows = [line.split("|") for line in f if line.startswith("| `")]
    listed = [(cells[1].strip().strip("`"), cells[2].strip().split(".")[0]) for cells in rows]
    assert listed == [(name, num) for name, (num, _, _) in run.FIGURES.items()]


def trace_figure():
    # Four rounds; base2 is base give or take 1 %, off is base + 2 %, traced twice off.
    base = [0.100, 0.110, 0.090, 0.100]
    return report.TraceFigure(
        "ec186e8 (docs/cli.md: the image command)",
        off=[b * 1.02 for b in base],
        base=base,
        base2=[0.101, 0.109, 0.091, 0.099],
        traced=[b * 2.04 for b in base],
        trace_bytes=[40960] * 4,
        trace_lines=[300] * 4,
    )


def test_trace_figure_rows_and_verdicts():
    t = trace_figure()
    rows = report.trace_rows(t)
    assert [r.label for r in rows] == [report.TRACE_OFF, report.TRACE_BASE, report.TRACE_BASE2, report.TRACE_ON]
    cells = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in report.details_table([("9", "trace", rows)]).splitlines()[2:]
    ]
    assert cells[0][6] == "1.02 × baseline run" and "per round 1.02" in cells[0][7]
    assert cells[1][6] == "-" and "ec186e8" in cells[1][7]
    assert cells[3][6] == "2.00 × pyrunc run, trace off" and "300 records, 40.0 KiB" in cells[3][7]
    off, on = report.trace_verdicts(t)
    assert (off.num, off.ratio, off.target, off.met) == ("9a", "1.02", "within noise", None)
    assert "ec186e8" in off.what and "baseline over itself: 1.00" in off.reference
    assert (on.num, on.ratio, on.met) == ("9b", "2.00", None)
    # Nothing judged: the met column says "-" for both.
    assert [
        line.rstrip(" |").rsplit("|", 1)[1].strip() for line in report.verdicts_table([off, on]).splitlines()[2:]
    ] == ["-", "-"]


def test_trace_section_gives_the_spread_and_the_noise_reference():
    text = report.trace_section(trace_figure(), 4)
    assert "4 rounds" in text and "ec186e8 (docs/cli.md: the image command)" in text
    # Off runs 2 % over the baseline in every round: outside the baseline's ±1 % against itself.
    assert "1.02 per round, outside the middle half" in text
    assert "| trace off / baseline " in text and "| baseline 2nd series / baseline (noise) " in text
    assert "| --trace FILE / trace off " in text
    assert "90.0 ms–110.0 ms" in text  # the baseline's min–max
    assert "300 records (40.0 KiB" in text
    assert report.trace_section(None, 4) == "(not run)"


def test_quartiles():
    assert report.quartiles([]) == (None, None)
    assert report.quartiles([3.0]) == (3.0, 3.0)
    assert report.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 4.0)


def git_repo(path, launcher_main):
    """A repository whose one commit holds a stand-in pyrunc/launcher/__main__.py."""
    import subprocess

    os.makedirs(path / "pyrunc" / "launcher")
    (path / "pyrunc" / "__init__.py").write_text("")
    (path / "pyrunc" / "launcher" / "__init__.py").write_text("")
    (path / "pyrunc" / "launcher" / "__main__.py").write_text(launcher_main)
    g = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(g + ["add", "pyrunc"], check=True)
    subprocess.run(g + ["commit", "-q", "-m", "stand-in"], check=True)
    return str(path)


def worktrees(repo):
    import subprocess

    out = subprocess.run(
        ["git", "-C", repo, "worktree", "list", "--porcelain"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line.startswith("worktree ")]


def test_baseline_build_removes_its_worktree(tmp_path):
    # The stand-in launcher writes the import path it would bake in: its cwd, the tree.
    repo = git_repo(tmp_path / "repo", "import os, sys\nopen(sys.argv[1], 'w').write(os.getcwd())\n")
    work = tmp_path / "work"
    work.mkdir()
    left = []
    with run.baseline_build("HEAD", sys.executable, str(work), left, repo=repo) as (launcher, desc):
        assert desc.endswith("(stand-in)") and os.path.exists(launcher)
        assert len(worktrees(repo)) == 2
    assert len(worktrees(repo)) == 1 and not (work / "baseline-tree").exists() and left == []


def test_baseline_build_removes_its_worktree_on_failure(tmp_path):
    repo = git_repo(tmp_path / "repo", "import sys\nsys.exit('no compiler')\n")
    work = tmp_path / "work"
    work.mkdir()
    try:
        with run.baseline_build("HEAD", sys.executable, str(work), [], repo=repo):
            raise AssertionError("built")
    except run.Failed as e:
        assert "no compiler" in str(e)
    else:
        raise AssertionError("no Failed")
    assert len(worktrees(repo)) == 1 and not (work / "baseline-tree").exists()
    try:
        with run.baseline_build("no-such-rev", sys.executable, str(work), [], repo=repo):
            pass
    except run.Failed as e:
        assert "no-such-rev" in str(e)
    else:
        raise AssertionError("no Failed")


def test_the_state_roots_lie_on_a_tmpfs_of_the_suites_own_removed_at_clean_up():
    """As /run on real hosts; mounted under a pyrunc-test- name, gone after clean-up."""
    if os.geteuid() != 0:
        pytest.skip("mounts a tmpfs: root only")
    b = bundle.Bench()
    try:
        root = b.runtime("pyrunc", ["/bin/true"]).root
        assert root.startswith(b.run_dir + "/") and b.run_fs.startswith("pyrunc-test-bench-")
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split() for line in f]
        ours = [m for m in mounts if m[4] == b.run_dir]
        assert len(ours) == 1 and ours[0][-3:-1] == ["tmpfs", b.run_fs]
        assert "tmpfs" in b.roots_fs() and b.run_fs in b.roots_fs()
    finally:
        left = b.cleanup()
    assert left == []
    with open("/proc/self/mountinfo") as f:
        assert b.run_fs not in f.read()
    assert not os.path.exists(b.dir)


def test_cpu_rows_are_per_round_ratios_over_the_bare_interpreter_and_the_base():
    samples = {
        ("this", "state"): [0.012, 0.011, 0.020],
        ("base", "state"): [0.015, 0.013, 0.024],
        ("bare", None): [0.010, 0.010, 0.016],
    }
    rows = cpu.rows_for("state", samples, ["this", "base"])
    assert [r[:2] for r in rows] == [["state", "this"], ["state", "base"], ["state", "this / base"]]
    assert rows[0][2:4] == ["12.00", "10.00"]
    assert rows[0][4].startswith("1.200 ")  # rounds 1.2, 1.1, 1.25: the median
    assert rows[2][4].startswith("0.833 ")


def test_cpu_list1000_is_over_list_of_one():
    samples = {("this", "list1000"): [0.05, 0.04], ("one", "this"): [0.01, 0.01]}
    assert cpu.rows_for("list1000", samples, ["this"])[0][4].startswith("4.500 ")


def test_lifecycle_cpu_rows_are_each_revision_over_the_one_before_and_the_last_over_the_first():
    import lifecycle_cpu

    def sample(scale):
        return {p: scale * k for k, p in enumerate(lifecycle_cpu.PHASES, 1)}

    samples = {"a": [sample(0.010)] * 3, "b": [sample(0.009)] * 3, "this": [sample(0.008)] * 3}
    table = lifecycle_cpu.report(samples, ["a", "b", "this"])
    header, _, first = table.splitlines()[:3]
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "phase",
        "a ms",
        "b ms",
        "this ms",
        "b / a",
        "this / b",
        "this / a",
    ]
    cells = [c.strip() for c in first.strip("|").split("|")]
    assert cells[:4] == ["create", "10.00", "9.00", "8.00"]
    assert cells[4].startswith("0.900") and cells[5].startswith("0.889") and cells[6].startswith("0.800")
