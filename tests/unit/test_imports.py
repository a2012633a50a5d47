"""Which modules each command imports, by name: what a command does not need stays
unimported (docs/performance.md).  The probe starts the interpreter as the installed
launcher does (-I -S, pyrunc's import path appended) and lists sys.modules after main.

A new import on these paths must be added here on purpose."""

import os
import subprocess
import sys

from pyrunc import launcher

# create, run and exec re-execute from a sealed interpreter (linux/sealed_exe.py) that
# would run main, not this probe: the probe seals itself first (and imports sealed_exe).
PROBE = """
import os, sys
sys.path += %r
from pyrunc.cli import SEALED_COMMANDS, main
from pyrunc.linux import sealed_exe
if set(sys.argv) & set(SEALED_COMMANDS) and not sealed_exe.is_sealed():
    os.execve(sealed_exe.sealed_copy(), [sys.executable, *sys.orig_argv[1:]], os.environ)
main(sys.argv[1:])
os.write(2, ("\\nMODULES " + " ".join(sorted(sys.modules))).encode())
""" % (launcher.import_path(),)  # noqa: UP031 -- a code template

# Never on a command's fast path: each costs milliseconds to import (re and signal.py
# bring enum; json brings re; socket.py brings selectors; ctypes' package alone takes
# 4 ms), or far more (jsonschema, pyroute2, libseccomp's bindings).
SLOW = {"re", "enum", "json", "socket", "signal", "selectors", "subprocess", "contextlib",
        "functools", "collections", "typing", "shutil", "pathlib", "hashlib", "_hashlib",
        "platform", "ipaddress", "copy", "ctypes", "jsonschema", "referencing", "pyroute2",
        "pyseccomp", "seccomp"}

# state, list, kill and delete: the CLI, the store, the state machine, /proc readers.
LEAN = {"_collections_abc", "_json", "_stat", "errno", "fcntl", "genericpath", "os", "os.path",
        "posixpath", "stat", "pyrunc", "pyrunc.cli", "pyrunc.cli.commands", "pyrunc.cli.flags",
        "pyrunc.errors", "pyrunc.jsonc", "pyrunc.lifecycle", "pyrunc.linux",
        "pyrunc.linux.procfs", "pyrunc.linux.sealed_exe", "pyrunc.linux.signals", "pyrunc.log",
        "pyrunc.status", "pyrunc.store"}


def _interpreter_modules():
    r = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; print(*sys.modules)"],
                       capture_output=True, text=True, check=True)
    return set(r.stdout.split())


def modules_imported_by(*argv, cwd=None):
    """The modules a command imported beyond what the interpreter starts with."""
    r = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, *argv],
                       capture_output=True, text=True, cwd=cwd)
    assert "\nMODULES " in r.stderr, r.stderr
    return set(r.stderr.rsplit("\nMODULES ", 1)[1].split()) - _interpreter_modules()


def test_state_list_kill_and_delete_import_only_the_store_and_the_cli(tmp_path):
    root = str(tmp_path / "state")
    for argv in (("state", "pyrunc-test-none"), ("list",), ("kill", "pyrunc-test-none", "KILL"),
                 ("delete", "pyrunc-test-none")):
        loaded = modules_imported_by("--root", root, *argv)
        assert loaded <= LEAN, (argv, sorted(loaded - LEAN))


def test_validate_does_import_jsonschema(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert "jsonschema" in modules_imported_by("validate", "--bundle", str(tmp_path))


def test_a_valid_config_is_checked_without_jsonschema_or_re(tmp_path):
    from pyrunc import jsonc
    from pyrunc.config.default import default_spec
    os.mkdir(tmp_path / "rootfs")
    (tmp_path / "config.json").write_text(jsonc.dumps(default_spec()))
    loaded = modules_imported_by("validate", "--bundle", str(tmp_path))
    assert not loaded & SLOW, sorted(loaded & SLOW)


def test_tracing_is_imported_only_when_asked_for(tmp_path, monkeypatch):
    root = str(tmp_path / "state")
    monkeypatch.delenv("PYRUNC_TRACE", raising=False)
    assert "pyrunc.trace" not in modules_imported_by("--root", root, "list")
    loaded = modules_imported_by("--root", root, "--trace", str(tmp_path / "t.jsonl"), "list")
    assert "pyrunc.trace" in loaded and not loaded & (SLOW - {"ctypes"}), sorted(loaded & SLOW)
    monkeypatch.setenv("PYRUNC_TRACE", str(tmp_path / "e.jsonl"))
    assert "pyrunc.trace" in modules_imported_by("--root", root, "list")
    assert (tmp_path / "t.jsonl").exists() and (tmp_path / "e.jsonl").exists()
