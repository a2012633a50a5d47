"""Commands import only what they need: heavy modules stay off the fast paths."""

import json
import subprocess
import sys

HEAVY = ("jsonschema", "referencing", "subprocess", "pyrunc.linux.init", "pyrunc.config.validate")

# create and run re-execute from a sealed interpreter (linux/sealed_exe.py) that would
# run main, not this probe: the probe seals itself first.
PROBE = """
import json, os, sys
from pyrunc.cli import SEALED_COMMANDS, main
from pyrunc.linux import sealed_exe
if set(sys.argv) & set(SEALED_COMMANDS) and not sealed_exe.is_sealed():
    os.execve(sealed_exe.sealed_copy(), [sys.executable, *sys.orig_argv[1:]], os.environ)
main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def modules_imported_by(*argv):
    r = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True)
    return set(json.loads(r.stderr.strip().splitlines()[-1]))


def test_state_list_and_kill_do_not_import_heavy_modules(tmp_path):
    root = str(tmp_path / "state")
    for argv in (("state", "pyrunc-test-none"), ("list",), ("kill", "pyrunc-test-none", "KILL"),
                 ("delete", "pyrunc-test-none")):
        loaded = modules_imported_by("--root", root, *argv)
        assert not loaded & set(HEAVY), (argv, loaded & set(HEAVY))


def test_validate_does_import_jsonschema(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert "jsonschema" in modules_imported_by("validate", "--bundle", str(tmp_path))
