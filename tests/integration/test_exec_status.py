"""`exec`'s exit status, as runc's: the process's own status when it ran; 255 when the
runtime failed (the process could not be started, the container is in the wrong state or
unknown, the process given is invalid), so that a caller can tell the two apart; 1 for a
command line that is not an exec at all (an unknown flag, no container id)."""

import json

import pytest

from tests.integration.cli_util import last_error, runc, set_args, wait_for  # noqa: F401 (runc: a fixture)


def assert_exec_failed(pyrunc, r, *fragments):
    """255, one line on stderr naming the cause, and that line in the --log file."""
    assert r.code == 255, r
    assert len(r.err.splitlines()) == 1 and r.err.startswith("pyrunc: "), r
    for fragment in fragments:
        assert fragment in r.err, r
        assert fragment in last_error(pyrunc.log)


@pytest.mark.parametrize(
    "flags, args, fragment",
    [
        ((), ("/no/such/program",), "/no/such/program"),
        (("--cwd", "/no/such/dir"), ("true",), "/no/such/dir"),
        (("--user", "nobody"), ("true",), "--user 'nobody'"),
        ((), (), "no command given"),
    ],
    ids=["missing-binary", "missing-cwd", "bad-user", "no-command"],
)
def test_a_process_that_cannot_start_is_255(pyrunc, running, flags, args, fragment):
    assert_exec_failed(pyrunc, pyrunc("exec", *flags, running, *args), fragment)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('{"args": [}', "invalid JSON at line 1 column 11: Expecting value"),
        ('["true"]', "is not a JSON object"),
        ('{"args": ["true"], "cwd": "relative"}', "process.cwd"),
    ],
    ids=["malformed", "not-an-object", "invalid-field"],
)
def test_a_bad_process_json_is_255(pyrunc, running, tmp_path, text, fragment):
    path = tmp_path / "process.json"
    path.write_text(text)
    assert_exec_failed(pyrunc, pyrunc("exec", "--process", str(path), running), fragment)


def test_an_unknown_container_is_255(pyrunc):
    assert_exec_failed(pyrunc, pyrunc("exec", "pyrunc-test-nosuch", "true"), "pyrunc-test-nosuch does not exist")


def test_a_paused_then_a_stopped_container_is_255(pyrunc, running):
    assert pyrunc("pause", running).code == 0
    assert_exec_failed(pyrunc, pyrunc("exec", running, "true"), "paused", "--ignore-paused")
    assert pyrunc("resume", running).code == 0
    assert pyrunc("kill", running, "KILL").code == 0
    wait_for(lambda: pyrunc.state(running)["status"] == "stopped", "the container to stop")
    assert_exec_failed(pyrunc, pyrunc("exec", running, "true"), "stopped")


def test_the_process_status_is_returned_as_it_is(pyrunc, running):
    """Its own 1 and 255 are not the runtime's."""
    for status in (0, 1, 7, 255):
        r = pyrunc("exec", running, "sh", "-c", f"exit {status}")
        assert (r.code, r.err) == (status, ""), r


def test_a_detached_exec_that_cannot_start_is_255(pyrunc, running):
    assert_exec_failed(pyrunc, pyrunc("exec", "-d", running, "/no/such/program"), "/no/such/program")


@pytest.mark.parametrize("args", [("exec", "--no-such-flag", "x", "true"), ("exec",)], ids=["unknown-flag", "no-id"])
def test_a_command_line_that_is_not_an_exec_is_1(pyrunc, args):
    r = pyrunc(*args)
    assert r.code == 1 and len(r.err.splitlines()) == 1, r


def test_runc_gives_the_same_codes(pyrunc, runc, bundle, test_id, tmp_path):
    """Side by side on one bundle: a missing binary, a bad --process, a paused container."""
    set_args(bundle, "sleep", "1000")
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id).code == 0
    runc.use(bundle)  # a cgroup of runc's own
    rid = test_id + "-runc"
    assert runc("run", "-d", "--bundle", bundle.path, rid)[0] == 0
    bad = tmp_path / "process.json"
    bad.write_text(json.dumps({"args": ["true"], "cwd": "relative"}))
    cases = [("/no/such/program",), ("--process", str(bad)), ("sh", "-c", "exit 9")]
    for case in cases:
        before, after = (case, ()) if case[0].startswith("-") else ((), case)
        theirs = runc("exec", *before, rid, *after)[0]
        assert pyrunc("exec", *before, test_id, *after).code == theirs, case
    assert runc("pause", rid)[0] == 0 and pyrunc("pause", test_id).code == 0
    assert pyrunc("exec", test_id, "true").code == runc("exec", rid, "true")[0] == 255
