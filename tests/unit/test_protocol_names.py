"""Every parent/child message type pyrunc sends is a constant declared in
linux/protocol.py, where the protocol is documented once: the sources are read (AST)
for each send on a channel and each answer to a request."""

import ast
import os

import pyrunc
from pyrunc.linux import protocol

ROOT = os.path.dirname(pyrunc.__file__)
# The names protocol.py declares as message types (its upper-case string constants).
DECLARED = {
    name
    for name, value in vars(protocol).items()
    if name.isupper() and isinstance(value, str) and value in protocol.TYPES
}


def _is_channel(node):
    """`chan`, `ctx.chan`, `self.chan`, `parent_ch`...: what a message is sent on."""
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
    return name in ("chan", "channel") or name.endswith("_ch")


# Functions that pass their caller's type on (their callers' sends are checked).
FORWARDERS = {"answer"}


def _message_sends(tree):
    """(line, type expression) of every message send: chan.send(TYPE, ...) and
    answer(chan, TYPE, ...), but a forwarder's send of its own parameter."""
    forwarded = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef) and fn.name in FORWARDERS:
            params = {a.arg for a in fn.args.args}
            forwarded |= {id(n) for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id in params}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "send" and _is_channel(func.value):
            if not (node.args and id(node.args[0]) in forwarded):
                yield node.lineno, (node.args[0] if node.args else None)
        fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if fname == "answer" and len(node.args) >= 2 and _is_channel(node.args[0]):
            yield node.lineno, node.args[1]


def _undeclared(source, filename="<src>"):
    """Each send whose type is not `protocol.NAME` (or `NAME`) for a declared NAME."""
    bad = []
    for line, arg in _message_sends(ast.parse(source, filename)):
        if (
            isinstance(arg, ast.Attribute)
            and isinstance(arg.value, ast.Name)
            and arg.value.id == "protocol"
            and arg.attr in DECLARED
        ):
            continue
        if isinstance(arg, ast.Name) and arg.id in DECLARED:
            continue
        bad.append(f"{filename}:{line}: {ast.unparse(arg) if arg is not None else '(no type)'}")
    return bad


def _sources():
    for top, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(top, name)
                with open(path) as f:
                    yield os.path.relpath(path, os.path.dirname(ROOT)), f.read()


def test_every_message_type_sent_is_declared_in_protocol_py():
    sends, bad = 0, []
    for path, source in _sources():
        found = list(_message_sends(ast.parse(source, path)))
        sends += len(found)
        bad += _undeclared(source, path)
    assert not bad, "message types not declared in linux/protocol.py:\n" + "\n".join(bad)
    assert sends >= 20  # the scan sees the protocol's sends (init.py, join.py, spawn.py...)


def test_a_bare_string_or_an_unknown_name_is_caught():
    source = (
        "def f(ctx, chan, parent_ch):\n"
        "    ctx.chan.send('created')\n"
        "    child_death.answer(chan, 'ok')\n"
        "    parent_ch.send(protocol.NOT_A_MESSAGE)\n"
        "    ctx.chan.send(protocol.CREATED)\n"
        "    answer(chan, protocol.OK, paths={})\n"
    )
    assert [b.split(": ", 1)[1] for b in _undeclared(source)] == ["'created'", "'ok'", "protocol.NOT_A_MESSAGE"]


def test_every_declared_type_is_documented_in_the_protocol_table():
    table = protocol.__doc__.split("\n\n")[2]  # the table after the first paragraph
    documented = {line.split()[0] for line in table.splitlines()[1:] if line.startswith("  ") and line[2] != " "}
    assert documented == protocol.TYPES, sorted(documented ^ protocol.TYPES)
