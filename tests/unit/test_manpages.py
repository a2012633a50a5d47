"""Man pages and bash completion, generated from the command table: a page for every
command naming every flag, rendered by man without a warning; completion offering the
commands and a command's flags; `make install` putting both in place."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyrunc.cli import GLOBAL_FLAGS, commands, completion, manpages

TREE = Path(__file__).resolve().parents[2]


def _spelled(name):
    return ("\\-" if len(name) == 1 else "\\-\\-") + name.replace("-", "\\-")


def test_a_page_for_pyrunc_and_for_every_command():
    pages = manpages.pages()
    assert set(pages) == {"pyrunc.8", *(f"pyrunc-{c}.8" for c in commands.COMMANDS)}


@pytest.mark.parametrize("name", sorted(commands.COMMANDS))
def test_every_flag_of_a_command_is_on_its_page(name):
    page = manpages.pages()[f"pyrunc-{name}.8"]
    assert page.startswith(f".TH PYRUNC-{name.upper()} 8 ")
    missing = [n for f in commands.COMMANDS[name].flags for n in f.names if _spelled(n) not in page]
    assert missing == []
    assert f"pyrunc\\-{name}" in manpages.main_page()


def test_every_global_flag_is_on_the_main_page():
    page = manpages.main_page()
    assert [n for f in GLOBAL_FLAGS for n in f.names if _spelled(n) not in page] == []


def test_a_flag_added_to_the_table_gets_onto_the_page(monkeypatch):
    from pyrunc.cli.flags import boolean

    cmd = commands.COMMANDS["state"]
    monkeypatch.setattr(cmd, "flags", cmd.flags + (boolean("pyrunc-test-flag", help="x"),))
    assert "\\-\\-pyrunc\\-test\\-flag" in manpages.command_page("state")
    assert "--pyrunc-test-flag" in completion.script()


def test_roff_escapes_leading_dots_and_backslashes():
    assert manpages.roff(".x\n'y\na\\b-c") == "\\&.x\n\\&'y\na\\eb\\-c"


@pytest.mark.skipif(shutil.which("man") is None, reason="man-db is not installed (scripts/setup.sh)")
def test_pages_render_without_warnings(tmp_path):
    manpages.write(str(tmp_path))
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8", "MAN_KEEP_FORMATTING": ""}
    for page in sorted(tmp_path.iterdir()):
        r = subprocess.run(["man", "--warnings=all", "-l", str(page)], capture_output=True, text=True, env=env)
        assert r.returncode == 0 and r.stderr == "", (page.name, r.stderr)
        assert page.name.removesuffix(".8").upper() in r.stdout


def _complete(script_path, *words):
    """What bash offers for the last of `words`, as readline would ask _pyrunc."""
    quoted = " ".join(f"'{w}'" for w in words)
    r = subprocess.run(
        [
            "bash",
            "--norc",
            "--noprofile",
            "-c",
            f'source "$1"; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; '
            f'_pyrunc; printf "%s\\n" "${{COMPREPLY[@]}}"',
            "bash",
            str(script_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [w for w in r.stdout.splitlines() if w]


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "pyrunc"
    path.write_text(completion.script())
    return path


def test_completion_offers_the_commands(script):
    assert set(_complete(script, "pyrunc", "")) == {*commands.COMMANDS, "help"}
    assert _complete(script, "pyrunc", "--root", "/x", "cr") == ["create"]
    assert set(_complete(script, "pyrunc", "--")) >= {"--root", "--log", "--systemd-cgroup", "--version"}


@pytest.mark.parametrize("name", sorted(commands.COMMANDS))
def test_completion_offers_each_commands_flags(script, name):
    offered = set(_complete(script, "pyrunc", "--debug", name, "-"))
    wanted = {("-" if len(n) == 1 else "--") + n for f in commands.COMMANDS[name].flags for n in f.names}
    assert wanted <= offered and "--help" in offered


def test_completion_gives_file_names_for_a_flags_value(script, tmp_path):
    (tmp_path / "config-here.json").write_text("{}")
    assert _complete(script, "pyrunc", "create", "--bundle", str(tmp_path / "config-h")) == [
        str(tmp_path / "config-here.json")
    ]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_puts_the_pages_and_completion_under_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    r = subprocess.run(
        ["make", "-s", "install", f"PREFIX={prefix}"], cwd=TREE, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stderr
    man8 = prefix / "share" / "man" / "man8"
    assert {p.name for p in man8.iterdir()} == set(manpages.pages())
    assert (man8 / "pyrunc-exec.8").read_text() == manpages.command_page("exec")
    comp = prefix / "share" / "bash-completion" / "completions" / "pyrunc"
    assert comp.read_text() == completion.script()
    # The launcher every user can execute (scripts/setup-users.sh) where setup made one.
    venv = ".venv-users" if (TREE / ".venv-users" / "bin" / "pyrunc").exists() else ".venv"
    assert os.path.realpath(prefix / "bin" / "pyrunc") == os.path.realpath(TREE / venv / "bin" / "pyrunc")
