"""The code pack (pyrunc/codepack.py): a module is served from the pack only while its
source is the one the pack was built from; a stale module, or a pack of another format
or interpreter, falls back to the normal import.  Each check runs in a fresh interpreter
(-I -S, as the launcher starts it) on a package of its own in tmp_path."""

import os
import subprocess
import sys

from pyrunc import codepack
from tests.unit.import_probe import LEAN, modules_imported_by

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Which loader served each module, and what the module says.
REPORT = """
import sys
sys.path[:0] = [{top!r}, {repo!r}]
from pyrunc import codepack
codepack.install({pack!r})
import pyrunc_test_pkg.sub.leaf as leaf, pyrunc_test_pkg.plain as plain
for m in (leaf, plain, sys.modules["pyrunc_test_pkg.sub"]):
    print(m.__name__, type(m.__loader__).__name__, m.__file__, m.VALUE)
"""


def make_package(top):
    pkg = os.path.join(top, "pyrunc_test_pkg")
    os.makedirs(os.path.join(pkg, "sub"))
    for rel, value in (("__init__.py", 0), ("plain.py", 1), ("sub/__init__.py", 2), ("sub/leaf.py", 3)):
        with open(os.path.join(pkg, rel), "w") as f:
            f.write(f"VALUE = {value}\n")
    return pkg


def report(top, pack):
    r = subprocess.run(
        [sys.executable, "-I", "-S", "-c", REPORT.format(top=top, repo=REPO, pack=pack)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {name: (loader, path, value) for name, loader, path, value in (ln.split() for ln in r.stdout.splitlines())}


def test_fresh_modules_come_from_the_pack_with_their_source_as_file(tmp_path):
    pkg = make_package(str(tmp_path))
    pack, count = codepack.build(pkg, str(tmp_path / "p.pack"))
    assert count == 4
    got = report(str(tmp_path), pack)
    assert got["pyrunc_test_pkg.sub.leaf"] == ("PackFinder", os.path.join(pkg, "sub", "leaf.py"), "3")
    assert got["pyrunc_test_pkg.plain"] == ("PackFinder", os.path.join(pkg, "plain.py"), "1")
    assert got["pyrunc_test_pkg.sub"][0] == "PackFinder"  # a package, its submodules found through it


def test_a_module_edited_after_the_build_is_imported_from_its_source(tmp_path):
    pkg = make_package(str(tmp_path))
    pack, _ = codepack.build(pkg, str(tmp_path / "p.pack"))
    leaf = os.path.join(pkg, "sub", "leaf.py")
    with open(leaf, "w") as f:
        f.write("VALUE = 33\n")
    got = report(str(tmp_path), pack)
    assert got["pyrunc_test_pkg.sub.leaf"] == ("SourceFileLoader", leaf, "33")
    assert got["pyrunc_test_pkg.plain"][0] == "PackFinder"  # the others still come from the pack


def test_a_touched_or_removed_source_is_not_served_from_the_pack(tmp_path):
    pkg = make_package(str(tmp_path))
    pack, _ = codepack.build(pkg, str(tmp_path / "p.pack"))
    st = os.stat(os.path.join(pkg, "plain.py"))
    os.utime(os.path.join(pkg, "plain.py"), ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    os.rename(os.path.join(pkg, "sub", "leaf.py"), os.path.join(pkg, "sub", "gone.py"))
    r = subprocess.run(
        [sys.executable, "-I", "-S", "-c", REPORT.format(top=str(tmp_path), repo=REPO, pack=pack)],
        capture_output=True,
        text=True,
    )
    assert "No module named 'pyrunc_test_pkg.sub.leaf'" in r.stderr
    got = report_plain(str(tmp_path), pack)
    assert got == "SourceFileLoader 1"


def report_plain(top, pack):
    code = (
        f"import sys; sys.path[:0] = [{top!r}, {REPO!r}]\n"
        f"from pyrunc import codepack; codepack.install({pack!r})\n"
        "import pyrunc_test_pkg.plain as m; print(type(m.__loader__).__name__, m.VALUE)"
    )
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    return r.stdout.strip()


def test_a_pack_of_another_interpreter_or_format_is_not_used(tmp_path):
    pkg = make_package(str(tmp_path))
    pack, _ = codepack.build(pkg, str(tmp_path / "p.pack"))
    with open(pack, "rb") as f:
        data = f.read()
    head = codepack.FORMAT + codepack.MAGIC_NUMBER
    for name, bad in (
        ("magic", codepack.FORMAT + b"\0\0\r\n" + data[len(head) :]),
        ("format", b"pyrunc-codepack 0\n" + data[len(codepack.FORMAT) :]),
        ("cut", data[: len(data) // 2]),
    ):
        path = str(tmp_path / f"{name}.pack")
        with open(path, "wb") as f:
            f.write(bad)
        assert report_plain(str(tmp_path), path) == "SourceFileLoader 1", name
    assert report_plain(str(tmp_path), str(tmp_path / "missing.pack")) == "SourceFileLoader 1"


def test_the_commands_import_pins_hold_with_pyruncs_own_pack(tmp_path, monkeypatch):
    """A pack of this checkout's pyrunc: the state commands import only their pins
    through it, and their pyrunc modules are the pack's."""
    pack, _ = codepack.build(dest=str(tmp_path / "pyrunc.pack"))
    monkeypatch.setenv("PYRUNC_TEST_CODEPACK", pack)
    root = str(tmp_path / "state")
    for argv in (("state", "pyrunc-test-none"), ("list",)):
        loaded = modules_imported_by("--root", root, *argv)
        assert loaded <= LEAN, (argv, sorted(loaded - LEAN))
    probe = (
        f"import sys; sys.path += {[REPO]!r}\n"
        f"from pyrunc.codepack import install; install({pack!r})\n"
        "import pyrunc.store, pyrunc.cli.commands\n"
        "print(type(pyrunc.store.__loader__).__name__, type(pyrunc.cli.commands.__loader__).__name__)"
    )
    r = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    assert r.stdout.split() == ["PackFinder", "PackFinder"]


def test_the_launchers_boot_code_installs_the_pack_before_the_cli():
    from pyrunc import launcher

    boot = launcher.boot_code(["/x"])
    assert boot.index("codepack import install;install()") < boot.index("pyrunc.cli import launch")


def test_a_pack_replaced_after_install_is_not_read_at_the_old_offsets(tmp_path):
    """`make setup` may rebuild the pack while a command runs: the index it read names
    offsets in the old file.  Here the new pack has the same layout but other code at
    those offsets (built from an edit since undone, mtime and all): the module still
    comes from its source as it is."""
    top = str(tmp_path)
    pkg = make_package(top)
    plain = os.path.join(pkg, "plain.py")
    pack, _ = codepack.build(pkg, str(tmp_path / "p.pack"))
    code = (
        f"import os, sys; sys.path[:0] = [{top!r}, {REPO!r}]\n"
        f"from pyrunc import codepack; codepack.install({pack!r})\n"
        f"st = os.stat({plain!r})\n"
        f"open({plain!r}, 'w').write('VALUE = 9\\n')\n"
        f"codepack.build({pkg!r}, {pack!r})\n"
        f"open({plain!r}, 'w').write('VALUE = 1\\n')\n"
        f"os.utime({plain!r}, ns=(st.st_atime_ns, st.st_mtime_ns))\n"
        "import pyrunc_test_pkg.plain as m, pyrunc_test_pkg.sub.leaf as leaf\n"
        "print(type(m.__loader__).__name__, m.VALUE, leaf.VALUE)"
    )
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["PackFinder", "1", "3"]
