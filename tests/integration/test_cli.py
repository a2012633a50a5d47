"""The command line as a whole, through the real `python -m pyrunc`: global flags,
runc's flag syntaxes, list/spec/features, and errors that are one line, exit 1 and an
error line in the --log file; runc side by side where its output is the reference."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

from tests.integration.cli_util import last_error, log_lines, runc, set_args, validate_state

__all__ = ["runc"]

SLEEP = ("sleep", "300")


def call(*argv, cwd=None):
    """pyrunc with no --root or --log of the fixture's; output through files, since a
    created container keeps the caller's stdio open."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = subprocess.call(
            [sys.executable, "-m", "pyrunc", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            timeout=60,
        )
        out.seek(0)
        err.seek(0)
        return code, out.read().decode(), err.read().decode()


# --- global flags ---------------------------------------------------------------------


@pytest.mark.parametrize("style", [["--root", "{root}"], ["--root={root}"], ["-root", "{root}"], ["-root={root}"]])
def test_root_in_every_flag_style(bundle, test_id, tmp_path, style):
    root = str(tmp_path / "elsewhere")
    flags = [s.format(root=root) for s in style]
    set_args(bundle, *SLEEP)
    try:
        code, _, err = call(*flags, "create", "--bundle", bundle.path, test_id)
        assert code == 0, err
        assert os.listdir(root) == [test_id]
        code, out, _ = call(*flags, "list", "-q")
        assert out == f"{test_id}\n"
        code, out, _ = call("--root", str(tmp_path / "other"), "list", "-q")
        assert code == 0 and out == ""
    finally:
        call(*flags, "delete", "--force", test_id)
    assert os.listdir(root) == []


def test_log_json_lines_for_errors(tmp_path, test_id):
    logfile = tmp_path / "log.json"
    code, _, err = call("--root", str(tmp_path), "--log", str(logfile), "--log-format", "json", "kill", test_id)
    assert code == 1 and err == f"pyrunc: container {test_id} does not exist\n"
    entries = [json.loads(line) for line in logfile.read_text().splitlines()]
    assert entries[-1]["level"] == "error"
    assert entries[-1]["msg"] == f"container {test_id} does not exist"
    assert set(entries[-1]) == {"level", "msg", "time"}


def test_log_format_json_matches_runcs_keys(runc, tmp_path, test_id):
    code, _, _ = runc("--log-format", "json", "kill", test_id)
    assert code == 1
    theirs = json.loads(open(runc.log).read().splitlines()[-1])
    logfile = tmp_path / "ours.json"
    call("--root", str(tmp_path), "--log", str(logfile), "--log-format=json", "kill", test_id)
    ours = json.loads(logfile.read_text().splitlines()[-1])
    assert set(ours) == set(theirs) and len(ours["time"]) == len(theirs["time"])


def test_debug_adds_debug_lines_for_a_container(pyrunc, bundle, test_id):
    set_args(bundle, "true")
    r = pyrunc("run", "--bundle", bundle.path, test_id, extra=("--debug",))
    assert r.code == 0, r
    debug = [msg for level, msg in log_lines(pyrunc.log) if level == "debug"]
    assert any(f"create {test_id}" in m for m in debug) and any(f"start {test_id}" in m for m in debug)
    before = len(log_lines(pyrunc.log))
    assert pyrunc("run", "--bundle", bundle.path, test_id).code == 0
    assert len(log_lines(pyrunc.log)) == before  # no --debug, no lines


def test_systemd_cgroup_wants_runcs_slice_prefix_name(pyrunc, runc, bundle, test_id):
    set_args(bundle, *SLEEP)
    r = pyrunc("create", "--bundle", bundle.path, test_id, extra=("--systemd-cgroup",))
    assert r.code == 1 and 'expected cgroupsPath to be of format "slice:prefix:name"' in r.err, r
    assert pyrunc("state", test_id).code == 1
    code, _, err = runc("--systemd-cgroup", "create", "--bundle", bundle.path, test_id)
    assert code == 1 and 'expected cgroupsPath to be of format "slice:prefix:name"' in err
    bundle.config["linux"]["cgroupsPath"] = f"bad-.slice:pyrunc-test:{test_id}"
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id, extra=("--systemd-cgroup",))
    assert r.code == 1 and "linux.cgroupsPath: invalid slice name: bad-.slice" in r.err, r
    assert len(r.err.strip().splitlines()) == 1 and pyrunc("state", test_id).code == 1
    if os.path.isdir("/run/systemd/system"):
        return  # tests/systemd runs the driver where systemd is PID 1
    # A well-formed path on a host without systemd: refused before anything is made, as runc.
    bundle.config["linux"]["cgroupsPath"] = f"-.slice:pyrunc-test:{test_id}"
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id, extra=("--systemd-cgroup",))
    assert r.code == 1 and "systemd not running on this host" in r.err, r
    assert len(r.err.strip().splitlines()) == 1 and pyrunc("state", test_id).code == 1
    assert not os.path.exists(f"/sys/fs/cgroup/unified/pyrunc-test-{test_id}.scope")


@pytest.mark.parametrize("value", ["true", "false", "auto"])
def test_rootless_values(pyrunc, bundle, test_id, value):
    set_args(bundle, "true")
    r = pyrunc("run", "--bundle", bundle.path, test_id, extra=(f"--rootless={value}",))
    assert r.code == 0, r


def test_rootless_bad_value(pyrunc, bundle, test_id):
    set_args(bundle, "true")
    r = pyrunc("run", "--bundle", bundle.path, test_id, extra=("--rootless", "bogus"))
    assert r.code == 1 and "--rootless" in r.err and "--rootless" in last_error(pyrunc.log)


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv,message",
    [
        (("frob",), "unknown command 'frob'"),
        (("--bogus", "list"), "unknown global flag '--bogus'"),
        (("create", "--bogus", "x"), "create: unknown flag '--bogus'"),
        (("create",), "create: missing container id"),
        (("start",), "start: missing container id"),
        (("delete",), "delete: missing container id"),
        (("state", "a", "b"), "state: expected one container id"),
        (("start", "pyrunc-test-none"), "container pyrunc-test-none does not exist"),
        (("state", "bad/id"), "invalid container id"),
    ],
)
def test_usage_errors_are_one_line_exit_1_and_logged(pyrunc, argv, message):
    r = pyrunc(*argv)
    assert r.code == 1
    assert r.err.count("\n") == 1 and r.err.startswith("pyrunc: ") and message in r.err, r
    assert message in last_error(pyrunc.log)


def test_terminal_without_console_socket_is_refused(pyrunc, runc, bundle, test_id):
    bundle.config["process"]["terminal"] = True
    set_args(bundle, "true")
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and "--console-socket" in r.err, r
    assert pyrunc("state", test_id).code == 1
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id)
    assert r.code == 1 and "--console-socket" in r.err, r
    code, _, err = runc("create", "--bundle", bundle.path, test_id)
    assert code == 1 and "console socket" in err


def test_console_socket_without_terminal_is_refused(pyrunc, bundle, test_id, tmp_path):
    set_args(bundle, "true")
    r = pyrunc("create", "--console-socket", str(tmp_path / "sock"), "--bundle", bundle.path, test_id)
    assert r.code == 1 and "process.terminal" in r.err, r
    assert pyrunc("state", test_id).code == 1


# --- list, spec, features, help -------------------------------------------------------


def test_list_table_json_and_quiet_match_runc(pyrunc, runc, bundle, test_id):
    runc.use(bundle)
    set_args(bundle, *SLEEP)
    for tool in (pyrunc, runc):
        r = tool("create", "--bundle", bundle.path, test_id)
        assert (r.code if tool is pyrunc else r[0]) == 0
    ours = pyrunc("list").out.splitlines()
    _, theirs, _ = runc("list")
    theirs = theirs.splitlines()
    # Same header and padding up to CREATED; that column's width follows the
    # timestamp, whose trailing zero nanoseconds Go's RFC3339Nano drops.
    assert ours[0].split() == theirs[0].split()
    cut = ours[0].index("CREATED")
    assert ours[0][:cut] == theirs[0][:cut]
    # ... and every column of ours starts where its header does
    assert ours[0].index("OWNER") == ours[1].rindex("root")
    created = json.loads(pyrunc("state", test_id).out)["created"]
    assert ours[0].index("CREATED") == ours[1].index(created)
    assert ours[1].split()[2:4] == theirs[1].split()[2:4] == ["created", bundle.path]
    assert ours[1].split()[-1] == theirs[1].split()[-1] == "root"
    # columns line up like runc's: the status starts at the same offset
    assert ours[1].index("created") == theirs[1].index("created")

    listed = json.loads(pyrunc("list", "--format", "json").out)
    _, theirs_json, _ = runc("list", "--format", "json")
    assert [list(s) for s in listed] == [list(s) for s in json.loads(theirs_json)]
    for s in listed:
        validate_state(s)
    assert pyrunc("list", "-q").out == runc("list", "-q")[1] == f"{test_id}\n"


def test_spec_writes_a_config_and_refuses_to_overwrite(tmp_path, runc):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    for rootless in ((), ("--rootless",)):
        for d in (ours, theirs):
            (d / "config.json").unlink(missing_ok=True)
        code, _, err = call("spec", "--bundle", str(ours), *rootless)
        assert code == 0, err
        code, _, err = runc("spec", "-b", str(theirs), *rootless)
        assert code == 0, err
        mine = json.loads((ours / "config.json").read_text())
        reference = json.loads((theirs / "config.json").read_text())
        assert sorted(mine) == sorted(reference)
        assert sorted(mine["linux"]) == sorted(reference["linux"])
        assert ("uidMappings" in mine["linux"]) == bool(rootless)
    code, _, err = call("spec", "-b", str(ours))
    assert code == 1 and "exists" in err and err.count("\n") == 1


def test_spec_defaults_to_the_current_directory(tmp_path):
    code, _, err = call("spec", cwd=str(tmp_path))
    assert code == 0, err
    assert json.loads((tmp_path / "config.json").read_text())["process"]["args"] == ["sh"]


def test_features_is_the_spec_document(tmp_path):
    code, out, err = call("features")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ociVersionMin"] == "1.0.0"
    assert {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"} <= set(
        doc["hooks"]
    )


def test_help_and_version():
    code, out, _ = call("--help")
    assert code == 0 and "COMMANDS:" in out and "--root" in out
    code, out, _ = call("help", "create")
    assert code == 0 and "--console-socket" in out and "--preserve-fds" in out
    code, out, _ = call("create", "--help")
    assert code == 0 and "--pid-file" in out
    code, out, _ = call("--version")
    assert code == 0 and "spec: 1.3.0" in out


def test_go_style_flags_on_commands(pyrunc, bundle, test_id):
    set_args(bundle, *SLEEP)
    r = pyrunc("create", "-bundle", bundle.path, test_id)
    assert r.code == 0, r
    r = pyrunc("list", "-format=json")
    assert r.code == 0 and json.loads(r.out)[0]["id"] == test_id
    r = pyrunc("delete", "-force", test_id)
    assert r.code == 0, r
