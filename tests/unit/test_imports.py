"""Which modules each command imports, by name: what a command does not need stays
unimported (docs/performance.md).  The probe and the pins (SLOW, LEAN, READ_ONLY) are in
tests/unit/import_probe.py.

A new import on these paths must be added there on purpose."""

import os
import subprocess
import sys

from pyrunc import launcher
from tests.unit.import_probe import BUILD_ERRORS, CHECKPOINT, KILL, LEAN, READ_ONLY, SLOW, modules_imported_by


def test_state_list_kill_and_delete_import_only_the_store_and_the_cli(tmp_path):
    root = str(tmp_path / "state")
    for argv in (
        ("state", "pyrunc-test-none"),
        ("list",),
        ("kill", "pyrunc-test-none", "KILL"),
        ("delete", "pyrunc-test-none"),
    ):
        loaded = modules_imported_by("--root", root, *argv)
        assert loaded <= LEAN, (argv, sorted(loaded - LEAN))


def test_state_and_list_import_neither_os_nor_the_lifecycle_nor_fcntl(tmp_path):
    from pyrunc.store import State, Store

    root = str(tmp_path / "state")
    with Store(root).create("pyrunc-test-a", State("pyrunc-test-a", "/nonexistent-bundle", pid=1, pid_start=1)):
        pass
    for argv in (
        ("state", "pyrunc-test-a"),
        ("state", "pyrunc-test-none"),
        ("list",),
        ("list", "--format", "json"),
        ("list", "--quiet"),
    ):
        loaded = modules_imported_by("--root", root, *argv)
        assert loaded <= READ_ONLY, (argv, sorted(loaded - READ_ONLY))


def test_kill_imports_neither_os_nor_the_lifecycle_nor_the_kernel_seam(tmp_path):
    from pyrunc.store import State, Store

    root = str(tmp_path / "state")
    # pid 1 did not start at tick 1: stopped, and kill of a stopped one succeeds (runc 1.1)
    with Store(root).create("pyrunc-test-a", State("pyrunc-test-a", "/nonexistent-bundle", pid=1, pid_start=1)):
        pass
    for argv in (("kill", "pyrunc-test-a", "KILL"), ("kill", "pyrunc-test-none"), ("kill", "--all", "pyrunc-test-a")):
        loaded = modules_imported_by("--root", root, *argv)
        assert loaded <= KILL, (argv, sorted(loaded - KILL))


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


def test_a_plain_config_is_checked_without_schema_py_or_the_rare_checks(tmp_path):
    # schema.py is what explains a config that fails (with jsonschema); semantic_rare.py
    # checks fields few configs set; execve's limit on argv and envp depends on the stack
    # limit only past 128 KiB, and below that the check does not look it up (importing
    # `resource` loads a shared library).
    from pyrunc import jsonc
    from pyrunc.config.default import default_spec

    os.mkdir(tmp_path / "rootfs")
    doc = default_spec()
    (tmp_path / "config.json").write_text(jsonc.dumps(doc))
    loaded = modules_imported_by("validate", "--bundle", str(tmp_path))
    unwanted = {"pyrunc.config.schema", "pyrunc.config.schema_check_other", "pyrunc.config.semantic_rare", "resource"}
    assert "pyrunc.config.schema_check" in loaded  # the probe saw the check run
    assert not loaded & unwanted, sorted(loaded & unwanted)
    # The pin names the right module: a config with a scheduler brings it in.
    doc["process"]["scheduler"] = {"policy": "SCHED_OTHER"}
    (tmp_path / "config.json").write_text(jsonc.dumps(doc))
    assert "pyrunc.config.semantic_rare" in modules_imported_by("validate", "--bundle", str(tmp_path))


def test_other_platforms_sections_are_checked_by_a_module_of_their_own(tmp_path):
    from pyrunc import jsonc
    from pyrunc.config.default import default_spec

    os.mkdir(tmp_path / "rootfs")
    doc = default_spec()
    doc["windows"] = {"layerFolders": ["C:\\layers"]}  # valid to the schema, refused by pyrunc
    (tmp_path / "config.json").write_text(jsonc.dumps(doc))
    loaded = modules_imported_by("validate", "--bundle", str(tmp_path))
    assert "pyrunc.config.schema_check_other" in loaded and "jsonschema" not in loaded


def test_tracing_is_imported_only_when_asked_for(tmp_path, monkeypatch):
    root = str(tmp_path / "state")
    monkeypatch.delenv("PYRUNC_TRACE", raising=False)
    assert "pyrunc.trace" not in modules_imported_by("--root", root, "list")
    loaded = modules_imported_by("--root", root, "--trace", str(tmp_path / "t.jsonl"), "list")
    assert "pyrunc.trace" in loaded and not loaded & (SLOW - {"ctypes"}), sorted(loaded & SLOW)
    monkeypatch.setenv("PYRUNC_TRACE", str(tmp_path / "e.jsonl"))
    assert "pyrunc.trace" in modules_imported_by("--root", root, "list")
    assert (tmp_path / "t.jsonl").exists() and (tmp_path / "e.jsonl").exists()


def test_checkpoint_code_is_imported_by_checkpoint_and_restore_only(tmp_path):
    root = str(tmp_path / "state")
    for argv in (("list",), ("state", "pyrunc-test-none"), ("features",), ("spec", "--bundle", str(tmp_path))):
        loaded = modules_imported_by("--root", root, *argv)
        assert not loaded & CHECKPOINT, (argv, sorted(loaded & CHECKPOINT))
    # The pin names the right module: checkpoint itself imports it (then finds no container).
    assert "pyrunc.checkpoint" in modules_imported_by("--root", root, "checkpoint", "pyrunc-test-none")


def test_light_commands_never_load_the_table_of_every_command(tmp_path):
    root = str(tmp_path / "state")
    none = "pyrunc-test-none"
    for argv in (("state", none), ("list",), ("kill", none), ("delete", none)):
        loaded = modules_imported_by("--root", root, *argv)
        assert "pyrunc.cli.light" in loaded and "pyrunc.cli.commands" not in loaded, argv
        assert not loaded & BUILD_ERRORS, argv
    # their --help is the table's, as every command's
    assert "pyrunc.cli.commands" in modules_imported_by("--root", root, "state", "--help")


def test_the_light_table_is_the_one_commands_lists():
    from pyrunc import cli
    from pyrunc.cli import commands, light

    assert set(light.HANDLERS) == set(cli.LIGHT_COMMANDS)
    for name, (func, flags) in light.HANDLERS.items():
        assert (commands.COMMANDS[name].func, commands.COMMANDS[name].flags) == (func, flags)
        assert not commands.COMMANDS[name].passthrough


GC_PROBE = """
import gc, posix, sys
sys.path += %r
from pyrunc.cli import main
main(sys.argv[1:])
posix.write(2, ("\\nGC %%s" %% gc.isenabled()).encode())
""" % (launcher.import_path(),)  # noqa: UP031 -- a code template


def test_the_gc_is_off_for_light_commands_only_when_started_as_the_command(tmp_path):
    root = str(tmp_path / "state")

    def gc_after(*flags_and_argv):
        r = subprocess.run(
            [sys.executable, *flags_and_argv[:-1], "-c", GC_PROBE, "--root", root, *flags_and_argv[-1]],
            capture_output=True,
            text=True,
        )
        return r.stderr.rsplit("\nGC ", 1)[1]

    assert gc_after("-I", "-S", ("list",)) == "False"
    assert gc_after("-I", "-S", ("state", "pyrunc-test-none")) == "False"
    assert gc_after("-I", "-S", ("--version",)) == "True"
    assert gc_after("-I", "-S", ("ps", "pyrunc-test-none")) == "True"
    assert gc_after("-I", ("list",)) == "True"  # not as the launcher starts it: left alone
