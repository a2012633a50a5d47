"""Help text as runc shows it (defaults as values, never Python reprs), and docs/cli.md
naming every flag of the command table."""

import json
import re
from pathlib import Path

import pytest

from pyrunc import cli
from pyrunc.cli import commands
from pyrunc.cli.flags import Flag, default_text, repeated

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
PYTHON_REPRS = ("()", "[]", "{}", "None", "True", "False", "5.0", "'", "<function")


def _help(capsys, *argv):
    """`pyrunc --help`, or `pyrunc CMD --help` through the command's dispatch (main would
    re-exec this test for the sealed commands, create, run and exec)."""
    if argv[0] == "--help":
        assert cli.main(list(argv)) == 0
    else:
        assert commands.dispatch(argv[0], list(argv[1:]), {}, None) == 0
    return capsys.readouterr().out


def _defaults(text):
    return re.findall(r"\(default: (.*?)\)$", text, re.M)


@pytest.mark.parametrize("name", sorted(commands.COMMANDS))
def test_no_command_help_shows_a_python_value(capsys, name):
    out = _help(capsys, name, "--help")
    assert f"pyrunc {name} - " in out
    for flag in commands.COMMANDS[name].flags:
        assert "--" + flag.names[0] in out
    for default in _defaults(out):
        assert not any(r in default for r in PYTHON_REPRS), default
    options = out.split("OPTIONS:")[-1].split("\n\n")[0]
    assert not any(r in options for r in ("()", "None", "True", "False", "5.0")), options


def test_global_help_shows_defaults_as_runc_does(capsys):
    out = _help(capsys, "--help")
    assert "--root value" in out and '(default: "/run/pyrunc")' in out
    assert "--log-format value" in out and '(default: "text")' in out
    assert not any(r in out for r in ("()", "None", "True", "False"))


def test_defaults_render_as_values():
    assert default_text(Flag("x", default="text")) == '"text"'
    assert default_text(Flag("x", default=0)) == "0"
    assert default_text(Flag("x", default=5.0, shown="5s")) == "5s"
    assert default_text(repeated("x")) == ""
    assert default_text(Flag("x", default=None)) == ""
    assert default_text(Flag("x", default=5.0)) == ""  # never `5.0`: such a flag needs shown=


def test_every_flags_default_renders_or_is_shown_explicitly():
    """A default that is not text, a number, a switch or a list must say how help shows it."""
    flags = [*cli.GLOBAL_FLAGS, *(f for c in commands.COMMANDS.values() for f in c.flags)]
    unshown = [
        f.names[0]
        for f in flags
        if f.takes_value
        and not f.repeat
        and f.shown is None
        and not (f.default is None or isinstance(f.default, (str, int)))
    ]
    assert unshown == []


def test_events_interval_default_is_a_duration(capsys):
    out = _help(capsys, "events", "--help")
    assert "(default: 5s)" in out and "5.0" not in out and out.count("(default:") == 1


def test_shown_root_default_is_the_stores():
    from pyrunc.store import DEFAULT_ROOT

    root = next(f for f in cli.GLOBAL_FLAGS if f.names[0] == "root")
    assert default_text(root) == f'"{DEFAULT_ROOT}"'


def test_update_help_shows_a_resources_template_the_schema_accepts(capsys):
    from pyrunc.config.schema import resources_errors

    out = _help(capsys, "update", "--help")
    template = json.loads(out[out.index("\n{\n") + 1 : out.rindex("\n}\n") + 2])
    assert resources_errors(template) == []
    assert {"memory", "cpu", "blockIO", "pids"} <= set(template)
    assert resources_errors({**template, "memory": {"limit": "lots"}}) != []


def _doc_rows():
    """docs/cli.md's table rows: global flags as one text, and each command's row."""
    text = DOCS.read_text()
    glob = text.split("## Global flags")[1].split("\n## ")[0]
    rows = {}
    for line in text.split("## Commands")[1].split("\n## ")[0].splitlines():
        m = re.match(r"\| `(\w+)", line)
        if m:
            rows[m.group(1)] = rows.get(m.group(1), "") + line
    return glob, rows


def _named(flag, text):
    missing = []
    for n in flag.names:
        spelled = ("-" if len(n) == 1 else "--") + n
        if not re.search(rf"(?<![\w-]){re.escape(spelled)}(?![\w-])", text):
            missing.append(spelled)
    return missing


def test_every_global_flag_is_in_the_docs():
    glob, _ = _doc_rows()
    assert [m for f in cli.GLOBAL_FLAGS for m in _named(f, glob)] == []


@pytest.mark.parametrize("name", sorted(commands.COMMANDS))
def test_every_command_and_its_flags_are_in_the_docs(name):
    _, rows = _doc_rows()
    assert name in rows, f"docs/cli.md has no row for {name}"
    assert [m for f in commands.COMMANDS[name].flags for m in _named(f, rows[name])] == []
