"""The runc-compatible command line: flag syntaxes, global flags, errors and the log file."""

import json
import re

import pytest

from pyrunc import log
from pyrunc.cli import GLOBAL_FLAGS, _split_global, main
from pyrunc.cli.commands import COMMANDS, CREATE_FLAGS
from pyrunc.cli.flags import Flag, boolean, parse
from pyrunc.cli.light import _table
from pyrunc.errors import UsageError

FLAGS = (
    Flag("bundle|b", default=""),
    Flag("preserve-fds", default=0, convert=int),
    boolean("detach|d"),
    boolean("keep"),
)


@pytest.mark.parametrize(
    "argv",
    [
        ["--bundle", "/x", "id"],
        ["--bundle=/x", "id"],
        ["-bundle", "/x", "id"],
        ["-bundle=/x", "id"],
        ["-b", "/x", "id"],
        ["id", "--bundle", "/x"],
    ],
)
def test_value_flag_in_every_syntax(argv):
    opts, pos = parse(argv, FLAGS, "create")
    assert opts["bundle"] == "/x"
    assert pos == ["id"]


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["-d"], True),
        (["--detach"], True),
        (["--detach=true"], True),
        (["-detach=false"], False),
        (["--detach=0"], False),
        ([], False),
    ],
)
def test_boolean_flags(argv, expected):
    opts, _ = parse(argv, FLAGS, "run")
    assert opts["detach"] is expected


def test_defaults_and_conversion():
    opts, pos = parse(["--preserve-fds", "3"], FLAGS, "create")
    assert opts == {"bundle": "", "preserve_fds": 3, "detach": False, "keep": False}
    assert pos == []


def test_double_dash_ends_flags():
    opts, pos = parse(["-d", "--", "--keep", "x"], FLAGS, "run")
    assert opts["detach"] and not opts["keep"]
    assert pos == ["--keep", "x"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--nope"], "unknown flag '--nope'"),
        (["-x=1"], "unknown flag '-x'"),
        (["--bundle"], "needs a value"),
        (["--preserve-fds", "many"], "invalid value 'many'"),
        (["--detach=maybe"], "invalid boolean 'maybe'"),
    ],
)
def test_bad_flags_are_usage_errors(argv, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        parse(argv, FLAGS, "run")


def test_global_flags_split_before_the_command():
    head, rest, unknown = _split_global(["-root", "/r", "--log=/l", "--debug", "state", "--bundle", "x"])
    assert head == ["-root", "/r", "--log=/l", "--debug"]
    assert rest == ["state", "--bundle", "x"]
    assert unknown is None
    opts, _ = parse(head, GLOBAL_FLAGS, "pyrunc")
    assert (opts["root"], opts["log"], opts["debug"]) == ("/r", "/l", True)


def test_unknown_global_flag_is_reported_not_taken_for_a_command():
    head, rest, unknown = _split_global(["--root", "/r", "--bogus", "list"])
    assert head == ["--root", "/r"] and unknown == "--bogus"


def test_every_runc_global_flag_is_known():
    names = {n for f in GLOBAL_FLAGS for n in f.names}
    assert {"root", "log", "log-format", "debug", "systemd-cgroup", "rootless", "criu"} <= names


def test_create_and_run_take_runcs_flags():
    names = {n for f in CREATE_FLAGS for n in f.names}
    assert {"bundle", "b", "pid-file", "console-socket", "no-pivot", "no-new-keyring", "preserve-fds"} <= names
    run_names = {n for f in COMMANDS["run"].flags for n in f.names}
    assert {"detach", "d", "keep"} <= run_names


# --- main(): errors are one line, exit 1, and a line in the --log file -------------------


@pytest.fixture
def cli(tmp_path, capsys):
    logfile = tmp_path / "log"

    def call(*argv, fmt=None):
        extra = ["--log-format", fmt] if fmt else []
        code = main(["--root", str(tmp_path / "state"), "--log", str(logfile), *extra, *argv])
        out, err = capsys.readouterr()
        return code, out, err, logfile.read_text() if logfile.exists() else ""

    yield call
    log.setup()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["--bogus", "list"], "unknown global flag '--bogus'"),
        (["list", "--bogus"], "list: unknown flag '--bogus'"),
        (["state"], "state: missing container id"),
        (["kill"], "kill: missing container id"),
        (["state", "pyrunc-test-none"], "container pyrunc-test-none does not exist"),
        (["kill", "pyrunc-test-none"], "container pyrunc-test-none does not exist"),
        (["start", "pyrunc-test-none"], "container pyrunc-test-none does not exist"),
        (["delete", "pyrunc-test-none"], "container pyrunc-test-none does not exist"),
        (["state", "a/b"], "invalid container id 'a/b'"),
        (["kill", "pyrunc-test-none", "SIGNOPE"], "invalid signal 'SIGNOPE'"),
        (["list", "--format", "yaml"], "invalid format 'yaml'"),
        (
            ["--trace", "/nonexistent-pyrunc-test/t.jsonl", "state", "x"],
            "cannot open the trace file /nonexistent-pyrunc-test/t.jsonl: no such file or directory",
        ),
    ],
)
def test_errors_are_one_line_exit_1_and_logged(cli, argv, message):
    code, out, err, logged = cli(*argv)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("pyrunc: ") and message in err
    assert out == ""
    line = logged.strip().splitlines()[-1]
    assert "level=error" in line and message in line


def test_json_log_lines_have_level_msg_and_time(cli):
    code, _, err, logged = cli("state", "pyrunc-test-none", fmt="json")
    assert code == 1
    entry = json.loads(logged.strip().splitlines()[-1])
    assert entry["level"] == "error"
    assert entry["msg"] == "container pyrunc-test-none does not exist"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", entry["time"])


def test_text_log_line_is_logrus_format(cli):
    _, _, _, logged = cli("state", "pyrunc-test-none")
    assert re.fullmatch(
        r'time="[^"]+" level=error msg="container pyrunc-test-none does not exist"', logged.strip().splitlines()[-1]
    )


def test_bad_log_format_is_rejected(cli):
    code, _, err, _ = cli("list", fmt="xml")
    assert code == 1 and "invalid --log-format 'xml'" in err


def test_bad_rootless_value_is_rejected(cli):
    code, _, err, _ = cli("--rootless", "perhaps", "list")
    assert code == 1 and "invalid --rootless 'perhaps'" in err
    for value in ("true", "false", "auto"):
        assert cli(f"--rootless={value}", "list")[0] == 0


def test_debug_writes_debug_lines(cli):
    code, _, _, logged = cli("--debug", "list")
    assert code == 0
    assert "level=debug" in logged and "command: list" in logged
    code, _, _, logged2 = cli("list")
    assert logged2 == logged  # without --debug nothing more is written


def test_systemd_cgroup_flag_is_accepted(cli):
    assert cli("--systemd-cgroup", "list")[0] == 0


def test_list_of_empty_root(cli):
    code, out, _, _ = cli("list")
    assert code == 0 and out.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    code, out, _, _ = cli("list", "--format=json")
    assert code == 0 and json.loads(out) == []
    code, out, _, _ = cli("list", "-q")
    assert code == 0 and out == ""


def test_table_is_padded_like_gos_tabwriter():
    table = _table([("ID", "PID", "OWNER"), ("a-long-container-id", "12", "root")])
    assert table.splitlines() == ["ID                    PID         OWNER", "a-long-container-id   12          root"]


def test_a_table_cell_is_text_whatever_it_holds():
    """The rows go through one %-format per row: a cell's own `%` is text."""
    table = _table([("ID", "BUNDLE", "OWNER"), ("a", "/b/%s%%d", "#1000")])
    assert table == "ID          BUNDLE      OWNER\na           /b/%s%%d    #1000\n"


def test_text_log_escapes_quotes():
    line = log.Logger(fmt="text").format("error", 'exec: "x": not found\nnext', now=0)
    assert line.endswith('level=error msg="exec: \\"x\\": not found\\nnext"\n')


# --- --systemd-cgroup: runc's slice:prefix:name, laid out as systemd would -----------------


class _Cfg:
    def __init__(self, path):
        self.linux = type("L", (), {"cgroups_path": path})()


@pytest.mark.parametrize(
    "path,systemd,expected",
    [
        ("/pyrunc-test/x", False, "/pyrunc-test/x"),
        ("", False, "ID"),
        ("system.slice:pyrunc:ID", True, "/system.slice/pyrunc-ID.scope"),
        ("a-b-c.slice:pre:name", True, "/a.slice/a-b.slice/a-b-c.slice/pre-name.scope"),
        ("-.slice:pre:name", True, "/pre-name.scope"),
        (":pre:name", True, "/system.slice/pre-name.scope"),
        ("", True, "/system.slice/pyrunc-ID.scope"),
        ("machine.slice::child.slice", True, "/machine.slice/child.slice"),
    ],
)
def test_cgroup_path(path, systemd, expected):
    from pyrunc.lifecycle import cgroup_path

    assert cgroup_path(_Cfg(path), "ID", systemd) == expected


@pytest.mark.parametrize("path", ["/plain/path", "a:b", "a:b:c:d", "bad-.slice:p:n", "noslice:p:n"])
def test_systemd_cgroup_path_errors(path):
    from pyrunc.errors import ConfigError
    from pyrunc.lifecycle import cgroup_path

    with pytest.raises(ConfigError):
        cgroup_path(_Cfg(path), "ID", True)


def test_an_unexpected_os_error_is_one_line_naming_its_file():
    from pyrunc.errors import KernelError, one_line

    assert one_line(FileNotFoundError(2, "No such file or directory", "/x/y")) == "/x/y: no such file or directory"
    assert one_line(KernelError(1, "signal 9")) == "signal 9: operation not permitted"


@pytest.mark.parametrize(
    "argv, help_of",
    [
        (["kill", "pyrunc-test-none", "-h"], "kill"),  # flags anywhere, as runc's kill
        (["state", "--help", "pyrunc-test-none"], "state"),
        (["ps", "--format", "json", "-h"], "ps"),
        (["ps", "pyrunc-test-none", "-h"], None),  # after the id: ps's own option
        (["update", "--memory", "-h", "pyrunc-test-none"], None),  # a flag's value
    ],
)
def test_a_commands_help_is_one_of_its_flags(cli, argv, help_of):
    """(exec, create and run re-execute a sealed interpreter: tests/integration/test_exec.py)"""
    code, out, err, _ = cli(*argv)
    if help_of:
        assert (code, err) == (0, "") and out.startswith(f"NAME:\n   pyrunc {help_of} - "), (out, err)
    else:
        assert code != 0 and "NAME:" not in out, (out, err)


@pytest.mark.parametrize(
    "path, message",
    [
        ("bad-.slice:p:n", "linux.cgroupsPath: invalid slice name: bad-.slice"),
        ("system.slice:p:../x", "linux.cgroupsPath: invalid unit name 'p-../x.scope': character '/'"),
    ],
)
def test_systemd_cgroup_path_errors_name_the_field_and_value(path, message):
    from pyrunc.errors import ConfigError
    from pyrunc.lifecycle import cgroup_path

    with pytest.raises(ConfigError) as e:
        cgroup_path(_Cfg(path), "ID", True)
    assert len(e.value.problems) == 1 and e.value.problems[0].startswith(message)
