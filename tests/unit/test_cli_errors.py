"""What the CLI does with a failure: a --log file it cannot open is the command's error,
and an exception nothing turned into a message (a bug) is still one line on stderr and
one error line in --log, exit 1, its traceback in the log only with --debug."""

import json
import os
import subprocess
import sys

import pytest

from pyrunc import launcher
from pyrunc.linux import Seams

# The command as the launcher runs it (-I -S): main, with one function of `list` and one
# of `exec` made to fail as a bug would (the net under test is main's, not theirs).
PROBE = """
import os, sys
sys.path += %r
from pyrunc.linux import sealed_exe
if "exec" in sys.argv and not sealed_exe.is_sealed():  # as test_imports' probe: seal first
    from pyrunc.linux.kernel import Kernel
    os.execve(sealed_exe.sealed_copy(Kernel()), [sys.executable, *sys.orig_argv[1:]], os.environ)
from pyrunc import exec_in, status
def broken(*args):
    raise KeyError("a bug")
status.list_states = exec_in.exec_process = broken
from pyrunc.cli import main
sys.exit(main(sys.argv[1:]))
""" % (launcher.import_path(),)  # noqa: UP031 -- a code template


def run(*argv, probe=False):
    command = [sys.executable, "-I", "-S", "-c", PROBE] if probe else [sys.executable, "-m", "pyrunc"]
    return subprocess.run([*command, *argv], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "where, why",
    [
        ("missing/log", "no such file or directory"),
        (".", "is a directory"),
        ("/sys/kernel/notes", "permission denied"),  # read-only: sysfs refuses even root
    ],
)
def test_a_log_that_cannot_be_opened_is_an_error(tmp_path, where, why):
    path = where if where.startswith("/") else str(tmp_path / where)
    if where.startswith("/") and not os.path.exists(where):
        pytest.skip(f"{where} is not on this host")
    r = run("--root", str(tmp_path / "state"), "--log", path, "list")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", f"pyrunc: --log {path}: {why}\n")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_unexpected_exception_is_one_line_in_stderr_and_in_the_log(tmp_path, fmt):
    log = tmp_path / "log"
    r = run("--root", str(tmp_path / "state"), "--log", str(log), "--log-format", fmt, "list", probe=True)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "pyrunc: internal error: KeyError: 'a bug'\n"
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    if fmt == "json":
        rec = json.loads(lines[0])
        assert (rec["level"], rec["msg"]) == ("error", "internal error: KeyError: 'a bug'")
    else:
        assert "level=error msg=\"internal error: KeyError: 'a bug'\"" in lines[0]


def test_with_debug_the_traceback_goes_to_the_log(tmp_path):
    log = tmp_path / "log"
    r = run("--root", str(tmp_path / "state"), "--log", str(log), "--debug", "list", probe=True)
    assert (r.returncode, r.stderr) == (1, "pyrunc: internal error: KeyError: 'a bug'\n")
    text = log.read_text()
    assert "level=debug" in text and "Traceback (most recent call last)" in text and "in broken" in text
    assert [line for line in text.splitlines() if "level=error" in line] == [
        line for line in text.splitlines() if "internal error: KeyError" in line and "level=error" in line
    ]


@pytest.mark.parametrize(
    "doc, message",
    [
        (
            b'{"cpu": {"cpus": "\\ud800"}}',
            "cpu.cpus: contains '\\ud800', a lone UTF-16 surrogate, which is not a character",
        ),
        (b'{"cpu": {"mems": "0\\u0000"}}', "cpu.mems: contains a NUL byte"),
        (b'{"pids": {"limit": 1}, "unified": {"\\udfff": "1"}}', "unified: key '\\udfff' contains '\\udfff'"),
    ],
)
def test_update_refuses_strings_no_cgroup_write_can_carry(tmp_path, doc, message):
    """Found by hand: these reached the last net as a UnicodeEncodeError."""
    (tmp_path / "r.json").write_bytes(doc)
    r = run("--root", str(tmp_path / "state"), "update", "-r", str(tmp_path / "r.json"), "pyrunc-test-none")
    assert r.returncode == 1 and r.stderr.startswith(f"pyrunc: update: {tmp_path}/r.json: {message}"), r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize("flag", ["--cpuset-cpus", "--cpuset-mems"])
def test_update_refuses_a_cpu_list_that_is_not_ascii(tmp_path, flag):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyrunc",
            "--root",
            str(tmp_path / "state"),
            "update",
            flag,
            b"\xed\xa0\x80",
            "pyrunc-test-none",
        ],
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert (
        r.stderr
        == (f"pyrunc: update: invalid value '\\udced\\udca0\\udc80' for {flag}: expected a list like 0-3,5\n").encode()
    )


@pytest.mark.parametrize(
    "record, why",
    [(b"[1]", "not a JSON object"), (b'{"rootfs": "ove', "invalid JSON at line 1 column 12: Unterminated")],
)
def test_image_remove_of_a_bundle_whose_record_is_not_pyruncs(tmp_path, record, why):
    """Found by hand: a record of another shape reached the last net (AttributeError)."""
    meta = tmp_path / "bundle" / ".pyrunc-image"
    meta.mkdir(parents=True)
    (meta / "image.json").write_bytes(record)
    r = run("image", "remove", str(tmp_path / "bundle"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"pyrunc: image remove {tmp_path}/bundle: .pyrunc-image/image.json: {why}")
    assert meta.exists()


def test_an_unexpected_exception_in_exec_exits_255_as_its_other_failures(tmp_path):
    r = run("--root", str(tmp_path / "state"), "exec", "pyrunc-test-none", "true", probe=True)
    assert (r.returncode, r.stderr) == (255, "pyrunc: internal error: KeyError: 'a bug'\n")


class _Log:
    def warning(self, msg):
        raise AssertionError(msg)


def test_delete_force_of_a_container_that_does_not_exist_succeeds(tmp_path):
    from pyrunc.cli import commands
    from pyrunc.errors import NoSuchContainer

    g = {"root": str(tmp_path / "state"), "seams": Seams()}
    assert commands.cmd_delete(g, {"force": True}, ["pyrunc-test-none"], _Log()) == 0
    with pytest.raises(NoSuchContainer, match="^container pyrunc-test-none does not exist$"):
        commands.cmd_delete(g, {"force": False}, ["pyrunc-test-none"], _Log())


def test_delete_force_decides_by_the_errors_type_not_its_words(tmp_path, monkeypatch):
    """A failure of delete -f whose line happens to say "does not exist" (here in a path)
    is still a failure."""
    from pyrunc import deletion
    from pyrunc.cli import commands
    from pyrunc.errors import StateError

    line = (
        "cannot delete container pyrunc-test-d: cannot unmount what it left under "
        "/srv/does not exist/rootfs: no such file or directory"
    )

    def failing(store, cid, seams, force=False, warn=None):
        raise StateError(line)

    monkeypatch.setattr(deletion, "delete", failing)
    with pytest.raises(StateError, match="^cannot delete container pyrunc-test-d: "):
        commands.cmd_delete(
            {"root": str(tmp_path / "state"), "seams": Seams()}, {"force": True}, ["pyrunc-test-d"], _Log()
        )
