"""`pyrunc trace show` on a synthetic trace (pyrunc/trace_show.py)."""

import pytest

from pyrunc import jsonc, trace_show

MS = 1_000_000


def synthetic():
    recs = [
        {"t": "header", "proc": "runtime", "pid": 10, "ppid": 1, "mono": 0, "wall": 1.0},
        {
            "t": "step",
            "ev": "begin",
            "name": "create",
            "sid": "10.1",
            "proc": "runtime",
            "pid": 10,
            "depth": 0,
            "mono": 0,
        },
        {
            "t": "step",
            "ev": "begin",
            "name": "spawn",
            "sid": "10.2",
            "proc": "runtime",
            "pid": 10,
            "depth": 1,
            "mono": 1 * MS,
        },
        {"t": "header", "proc": "init", "pid": 11, "ppid": 10, "mono": 2 * MS, "wall": 1.002},
        {
            "t": "step",
            "ev": "begin",
            "name": "pivot_root",
            "sid": "11.1",
            "proc": "init",
            "pid": 11,
            "depth": 0,
            "mono": 2 * MS,
        },
        {
            "t": "call",
            "name": "pivot_root",
            "proc": "init",
            "pid": 11,
            "sid": "11.1",
            "args": {"new_root": ".", "put_old": "."},
            "mono": 2 * MS + 100,
            "dur": 50_000,
            "result": None,
        },
        {
            "t": "call",
            "name": "unshare",
            "proc": "init",
            "pid": 11,
            "sid": "11.1",
            "args": {"flags": 0x20000},
            "flags": {"flags": "CLONE_NEWNS"},
            "mono": 2 * MS + 200,
            "dur": 10_000,
            "error": {"msg": "unshare(0x20000): operation not permitted", "errno": "EPERM"},
        },
        {
            "t": "step",
            "ev": "end",
            "name": "pivot_root",
            "sid": "11.1",
            "proc": "init",
            "pid": 11,
            "depth": 0,
            "mono": 2 * MS,
            "dur": 1 * MS,
        },
        {
            "t": "step",
            "ev": "begin",
            "name": "wait for start",
            "sid": "11.2",
            "proc": "init",
            "pid": 11,
            "depth": 0,
            "mono": 3 * MS,
            "wait": True,
        },
        {
            "t": "step",
            "ev": "end",
            "name": "wait for start",
            "sid": "11.2",
            "proc": "init",
            "pid": 11,
            "depth": 0,
            "mono": 3 * MS,
            "dur": 4 * MS,
            "wait": True,
        },
        {
            "t": "step",
            "ev": "begin",
            "name": "exec",
            "sid": "11.3",
            "proc": "init",
            "pid": 11,
            "depth": 0,
            "mono": 7 * MS,
        },
        {
            "t": "step",
            "ev": "end",
            "name": "spawn",
            "sid": "10.2",
            "proc": "runtime",
            "pid": 10,
            "depth": 1,
            "mono": 1 * MS,
            "dur": 5 * MS,
        },
        {
            "t": "step",
            "ev": "end",
            "name": "create",
            "sid": "10.1",
            "proc": "runtime",
            "pid": 10,
            "depth": 0,
            "mono": 0,
            "dur": 8 * MS,
        },
    ]
    return [jsonc.dumps(r) for r in recs]


def test_timeline_lists_every_step_with_offset_duration_process_and_calls():
    lines = trace_show.render(trace_show.load(synthetic()))
    assert lines[0] == "2 processes, 5 steps, 2 kernel calls"
    by_step = {line.split("  ")[-1].strip(): line for line in lines[3:8]}
    assert "+0.000ms" in lines[3] and "8.000ms" in lines[3] and lines[3].endswith("  create")
    assert lines[4].endswith("    spawn")  # nested one level under create
    pivot = next(line for line in lines if line.endswith(" pivot_root"))
    assert "+2.000ms" in pivot and "1.000ms" in pivot and " init " in pivot and "    2  pivot_root" in pivot
    assert any(line.endswith("wait for start  (waiting)") for line in lines)
    assert any(line.endswith("exec  (no end: exec or exit)") for line in lines)
    assert by_step


def test_verbose_indents_the_kernel_calls_under_their_step():
    lines = trace_show.render(trace_show.load(synthetic()), verbose=True)
    i = next(i for i, line in enumerate(lines) if line.endswith(" pivot_root"))
    assert 'pivot_root(new_root=".", put_old=".") -> null  [0.050ms]' in lines[i + 1]
    assert "unshare(flags=CLONE_NEWNS) -> EPERM: unshare(0x20000): operation not permitted" in lines[i + 2]
    assert lines[i + 1].startswith(" " * 40)


def test_breakdown_separates_waiting_from_working_and_gives_the_total():
    lines = trace_show.render(trace_show.load(synthetic()))
    start = lines.index("breakdown (steps by name, innermost only):")
    table = lines[start + 2 :]
    assert any("waiting  init: wait for start" in line and "4.000ms" in line for line in table)
    assert any("working  init: pivot_root" in line for line in table)
    assert not any("runtime: create" in line for line in table)  # has a step inside: not innermost
    total = next(line for line in lines if line.startswith("total "))
    assert total.startswith("total 8.000ms: working 6.000ms, waiting 4.000ms")


def test_a_failure_record_is_shown_and_blank_lines_are_skipped():
    lines = synthetic() + [
        "",
        "  ",
        jsonc.dumps(
            {
                "t": "fail",
                "step": "mount /x",
                "proc": "init",
                "pid": 10,
                "mono": 9 * MS,
                "error": {"msg": "mount /x: no such file or directory", "errno": "ENOENT"},
            }
        ),
    ]
    out = trace_show.render(trace_show.load(lines))
    assert out[-1] == "FAILED at step 'mount /x' (init): ENOENT mount /x: no such file or directory"
    assert trace_show.render([]) == ["empty trace"]


@pytest.mark.parametrize(
    "bad, why",
    [
        ('{"t": "step", "ev": "be', "line 3: invalid JSON at column 21: Unterminated string starting at"),
        ("not json", "line 3: invalid JSON at column 1: Expecting value"),
        ("[1]", "line 3: not a JSON object"),
        ('{"t": "step", "ev": "begin"}', "line 3: a step record without 'name'"),
        ('{"t": "call", "name": "x", "mono": "1"}', "line 3: call record: 'mono' is not an integer"),
        ('{"t": "call", "name": "x", "mono": 1, "sid": []}', "line 3: call record: 'sid' is not a string"),
        (
            '{"t": "step", "ev": "begin", "name": "x", "proc": "init", "pid": 1, "mono": 0, "depth": 100000000}',
            "line 3: step record: 'depth' is out of range: 100000000",
        ),
    ],
)
def test_a_line_that_is_not_a_record_is_named(bad, why):
    lines = synthetic()[:2] + [bad] + synthetic()[2:]
    with pytest.raises(trace_show.TraceError) as e:
        trace_show.load(lines)
    assert str(e.value) == why


def test_a_long_process_name_widens_the_process_column():
    recs = [
        {"t": "header", "proc": "runtime", "pid": 10, "ppid": 1, "mono": 0, "wall": 1.0},
        {
            "t": "step",
            "ev": "begin",
            "name": "spawn",
            "sid": "10.1",
            "proc": "runtime",
            "pid": 10,
            "depth": 0,
            "mono": 0,
        },
        {
            "t": "step",
            "ev": "begin",
            "name": "set capabilities",
            "sid": "12.1",
            "proc": "exec process",
            "pid": 12,
            "depth": 0,
            "mono": 1 * MS,
        },
        {
            "t": "step",
            "ev": "end",
            "name": "spawn",
            "sid": "10.1",
            "proc": "runtime",
            "pid": 10,
            "depth": 0,
            "mono": 0,
            "dur": 2 * MS,
        },
    ]
    lines = trace_show.render(trace_show.load(jsonc.dumps(r) for r in recs))
    head, spawn, caps = lines[2], lines[3], lines[4]
    assert " exec process      12 " in caps and " runtime           10 " in spawn, lines
    assert head.index("pid") + 3 == spawn.index("10 ") + 2 == caps.index("12 ") + 2, lines
