"""conformance/run and conformance/report: TAP counting, verdicts, the baseline check, the
clean-up helpers and the report's notes (pure functions; no root, no Go)."""

import importlib.machinery
import importlib.util
import json
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(name):
    path = os.path.join(REPO, "conformance", name)
    loader = importlib.machinery.SourceFileLoader("conformance_" + name, path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


run = load("run")

# Shaped like the suite's output: a description may run onto a "Refer to:" line, and YAML
# diagnostics are indented.
TAP = """TAP version 13
ok 1 - state MUST generate an error if it is not provided the ID of a container
Refer to: https://github.com/opencontainers/runtime-spec/blob/v1.3.0/runtime.md#query-state
  ---
  {
    "error": "exit status 1",
    "stderr": "not ok 9 - text inside YAML is not a result\\n"
  }
  ...
not ok 2 - pids limit is set correctly
# expect: 36941335961752, actual: 36941335967568
ok 3 # skip linux-specific namespace test
ok 4 # SKIP no hugetlb
not ok 5 - memory kernel is set correctly
ok 6 - hostname matches
okay, a line that only starts like a result
  ok 7 - indented, so part of a YAML block
1..6
"""


def test_count_tap_counts_results_skips_and_first_failure():
    assert run.count_tap(TAP) == (2, 2, 2, "pids limit is set correctly")


def test_count_tap_empty_and_plan_only():
    assert run.count_tap("") == (0, 0, 0, None)
    assert run.count_tap("TAP version 13\n1..0\n") == (0, 0, 0, None)


def test_count_tap_description_without_dash():
    assert run.count_tap("not ok 1 exit status 1\nnot ok\n")[1:] == (2, 0, "exit status 1")


ERROR_ONLY = """TAP version 13
  ---
  {
    "error": "Hooks MUST be called in the listed order\\nRefer to: https://example/config.md#hooks"
  }
  ...
1..0
"""


def test_judge_clean_file():
    assert run.judge("ok 1 - a\nok 2 - b\n1..2\n", "", 0) == {"passed": 2, "failed": 0, "skipped": 0, "note": ""}


def test_judge_error_block_without_assertions_is_one_failure():
    row = run.judge(ERROR_ONLY, "", 0)
    assert row == {"passed": 0, "failed": 1, "skipped": 0, "note": "error: Hooks MUST be called in the listed order"}
    assert not run.is_clean(row)


def test_judge_error_block_after_assertions_does_not_count():
    tap = "ok 1 - state fails without an id\n" + ERROR_ONLY
    assert run.judge(tap, "", 0) == {"passed": 1, "failed": 0, "skipped": 0, "note": ""}


def test_judge_plan_only_without_error_is_clean():
    # poststop, prestart_fail: no assertion at all, and no error block.
    assert run.is_clean(run.judge("TAP version 13\n1..0\n", "", 0))


def test_judge_nonzero_exit_counts_once_with_last_stderr_line():
    err = "failed to create the container\npyrunc: create x: capset: operation not permitted\nexit status 1\n\n"
    row = run.judge("TAP version 13\n1..0\n", err, 1)
    assert row == {"passed": 0, "failed": 1, "skipped": 0, "note": "exited 1: exit status 1"}


def test_judge_nonzero_exit_keeps_the_real_failures():
    row = run.judge("ok 1 - a\nnot ok 2 - b\nnot ok 3 - c\n", "boom\n", 2)
    assert (row["passed"], row["failed"], row["note"]) == (1, 2, "exited 2: boom")


def test_judge_timeout_and_signal():
    assert run.judge("ok 1 - a\n", "", -9, timed_out=True)["note"] == "timed out"
    row = run.judge("ok 1 - a\n", "", -11)
    assert (row["passed"], row["failed"], row["note"]) == (1, 1, "killed by signal 11")


def test_judge_long_note_is_cut_to_one_line():
    err = "x" * 300 + "\n"
    note = run.judge("", err, 1)["note"]
    assert len(note) == run.NOTE_WIDTH and note.startswith("exited 1: xxx") and "\n" not in note


def test_first_error_unescapes():
    assert run.first_error('{"error": "say \\"hi\\"\\tnow"}') == 'say "hi"\tnow'
    assert run.first_error("ok 1\n") is None


def row(passed=1, failed=0, note=""):
    return {"passed": passed, "failed": failed, "skipped": 0, "note": note}


def test_compare_baseline_regressions_and_new_clean_files():
    summary = {"state": row(), "kill": row(failed=1), "hooks": row(), "pidfile": row(failed=1)}
    regressed, newly_clean = run.compare_baseline(summary, ["state", "kill"])
    assert regressed == ["kill"]
    assert newly_clean == ["hooks"]


def test_compare_baseline_all_still_clean():
    summary = {"state": row(), "kill": row()}
    assert run.compare_baseline(summary, ["kill", "state"]) == ([], [])


def test_compare_baseline_missing_file():
    summary = {"state": row()}
    # The whole suite ran and a baseline file is gone: that is a regression...
    assert run.compare_baseline(summary, ["state", "create"], ran_all=True) == (["create"], [])
    # ...but not when only some files were asked for.
    assert run.compare_baseline(summary, ["state", "create"], ran_all=False) == ([], [])


def test_compare_baseline_note_alone_is_not_clean():
    assert run.compare_baseline({"state": row(note="timed out")}, ["state"]) == (["state"], [])


def test_load_baseline(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"clean": ["kill", "state"]}))
    assert run.load_baseline(str(good)) == ["kill", "state"]
    for bad in ({"clean": "state"}, ["state"], {"clean": [1]}, {}):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError):
            run.load_baseline(str(path))


def test_checked_in_baseline_is_sorted_and_known():
    with open(os.path.join(REPO, "conformance", "baseline.json")) as f:
        clean = json.load(f)["clean"]
    assert clean == sorted(set(clean))
    with open(os.path.join(REPO, "conformance", "reasons.json")) as f:
        reasons = json.load(f)
    for test, reason in reasons.items():
        assert set(reason) == {"whose", "why"} and reason["why"].strip(), test
        # A file pyrunc runs clean has no runtime fault to explain.
        assert not (test in clean and reason["whose"] == "runtime"), test


def test_totals():
    t = run.totals({"a": row(3), "b": row(2, 1), "c": {"passed": 0, "failed": 0, "skipped": 4, "note": ""}})
    assert t == {"passed": 5, "failed": 1, "skipped": 4, "clean": 2, "files": 3}


MOUNTINFO = r"""22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw
301 22 0:50 / /tmp/pyrunc-conformance-bundles-ab/ocitest1/proc rw - proc proc rw
302 301 0:51 / /tmp/pyrunc-conformance-bundles-ab/ocitest1/proc/sys rw - proc proc rw
303 22 0:52 / /tmp/pyrunc-conformance-bundles-ab/with\040space rw - tmpfs tmpfs rw
304 22 0:53 / /tmp/pyrunc-conformance-bundles-abc rw - tmpfs tmpfs rw
"""


def test_mounts_under_deepest_first_unescaped_and_exact_prefix():
    assert run.mounts_under("/tmp/pyrunc-conformance-bundles-ab", MOUNTINFO) == [
        "/tmp/pyrunc-conformance-bundles-ab/ocitest1/proc/sys",
        "/tmp/pyrunc-conformance-bundles-ab/ocitest1/proc",
        "/tmp/pyrunc-conformance-bundles-ab/with space",
    ]


def test_remove_tree_spares_mount_points(tmp_path):
    top = tmp_path / "bundles"
    (top / "b1" / "rootfs" / "proc").mkdir(parents=True)
    (top / "b1" / "rootfs" / "proc" / "keep").write_text("still mounted")
    (top / "b1" / "config.json").write_text("{}")
    (top / "b2").mkdir()
    (top / "b2" / "link").symlink_to(tmp_path)  # not followed
    run.remove_tree(str(top), {str(top / "b1" / "rootfs" / "proc")})
    assert (top / "b1" / "rootfs" / "proc" / "keep").exists()
    assert not (top / "b1" / "config.json").exists() and not (top / "b2").exists()
    assert tmp_path.exists()


def test_containers_under_picks_only_this_runs_bundles():
    listing = json.dumps(
        [
            {"id": "a", "bundle": "/tmp/pyrunc-conformance-bundles-ab/ocitest1"},
            {"id": "b", "bundle": "/tmp/pyrunc-conformance-bundles-abc/ocitest2"},  # another run
            {"id": "c", "bundle": "/srv/mine"},
            {"id": "d"},
        ]
    )
    assert run.containers_under(listing, "/tmp/pyrunc-conformance-bundles-ab") == ["a"]
    assert run.containers_under("null", "/tmp/x") == []  # runc with no containers
    assert run.containers_under("usage: ...", "/tmp/x") == []


def test_suite_cgroups_and_removal(tmp_path):
    root = tmp_path / "cgroup"
    (root / "memory" / "cgrouptest").mkdir(parents=True)  # was there before
    before = run.suite_cgroups(str(root))
    (root / "pids" / "cgrouptest").mkdir(parents=True)
    (root / "memory" / "user" / "testdir" / "cgrouptest" / "container").mkdir(parents=True)
    (root / "cpu" / "testdir").mkdir(parents=True)
    (root / "cpu" / "testdir" / "tasks").write_text("123")  # in use: kept
    (root / "cpu" / "other").mkdir()
    new = run.suite_cgroups(str(root)) - before
    assert new == {
        str(root / "pids" / "cgrouptest"),
        str(root / "cpu" / "testdir"),
        str(root / "memory" / "user" / "testdir"),
        str(root / "memory" / "user" / "testdir" / "cgrouptest"),
    }
    run.remove_cgroups(new)
    assert not (root / "pids" / "cgrouptest").exists()
    assert not (root / "memory" / "user" / "testdir").exists()
    assert (root / "memory" / "user").exists() and (root / "memory" / "cgrouptest").exists()
    assert (root / "cpu" / "testdir" / "tasks").exists() and (root / "cpu" / "other").exists()


def test_suite_cgroups_depth_limit(tmp_path):
    deep = tmp_path.joinpath(*["d"] * 6, "cgrouptest")
    deep.mkdir(parents=True)
    assert run.suite_cgroups(str(tmp_path)) == set()
    assert run.suite_cgroups(str(tmp_path), depth=7) == {str(deep)}


def test_report_notes_and_totals(tmp_path):
    report = load("report")
    results = tmp_path / "results"
    (results / "pyrunc").mkdir(parents=True)
    (results / "pyrunc" / "kill.tap").write_text("ok 1 - a\nnot ok 2 - kill MUST fail\n")
    pyrunc = {"state": row(3), "hooks": row(0, 1, "error: hooks out of order"), "kill": row(1, 1)}
    runc = {"state": row(2, 1), "hooks": row(0, 1), "kill": row(1, 0)}
    reasons = {"hooks": {"whose": "test", "why": "compares with the wrong | text"}}
    text = report.render(
        run,
        {"pyrunc": pyrunc, "runc": runc},
        {"pyrunc": {"kernel": "6.1"}},
        reasons,
        {"pyrunc": str(results / "pyrunc")},
    )
    lines = text.splitlines()
    assert "| hooks | 0/1 ✗ | 0/1 ✗ | **test**: compares with the wrong \\| text |" in lines
    assert "| kill | 1/1 ✗ | 1/0 | first failure: kill MUST fail |" in lines
    assert "| state | 3/0 | 2/1 ✗ | fails for runc only |" in lines
    assert "| pyrunc |  | 1 / 58 | 4 | 2 | 0 |" in lines
    assert "Linux 6.1" in text
