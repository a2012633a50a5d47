"""Every public function of pyrunc/ says what it takes and returns (issue 20).

mypy checks the annotations; this checks they are there.  ruff's ANN rules cannot do it:
ANN001 (an unannotated parameter) fires on private functions too.  (mypy's
disallow_untyped_defs already asks it of every function of pyrunc/; this test says which
public one is short, without running mypy.)  Public: a module-level function or a method
of a module-level class, neither named with a leading underscore; `__init__` counts for
its parameters."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _modules():
    for dirpath, _, filenames in os.walk(os.path.join(ROOT, "pyrunc")):
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                yield module.removesuffix(".__init__"), path


def _public_functions(tree):
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    not item.name.startswith("_") or item.name == "__init__"
                ):
                    yield f"{node.name}.{item.name}", item


def missing_annotations(source):
    """`name: what is missing` for each public function of `source` short of annotations."""
    missing = []
    for name, fn in _public_functions(ast.parse(source)):
        args = fn.args
        params = args.posonlyargs + args.args + args.kwonlyargs
        if params and "." in name and params[0].arg in ("self", "cls"):
            params = params[1:]
        params += [a for a in (args.vararg, args.kwarg) if a is not None]
        bare = [a.arg for a in params if a.annotation is None]
        if bare:
            missing.append(f"{name}: parameters {', '.join(bare)}")
        if fn.returns is None and not name.endswith(".__init__"):
            missing.append(f"{name}: return")
    return missing


def test_the_checker_finds_what_is_missing():
    source = (
        "def f(a, b: int): pass\n"
        "def g(a: int) -> None: pass\n"
        "def _private(a): pass\n"
        "class C:\n"
        "    def __init__(self, x): pass\n"
        "    def m(self, y: int): pass\n"
        "    def _n(self, z): pass\n"
        "    @staticmethod\n"
        "    def s(*args: int, **kw) -> int: return 0\n"
    )
    assert missing_annotations(source) == [
        "f: parameters a",
        "f: return",
        "C.__init__: parameters x",
        "C.m: return",
        "C.s: parameters kw",
    ]


def test_every_public_function_is_annotated():
    missing = []
    for module, path in _modules():
        with open(path) as f:
            missing += [f"{module}.{m}" for m in missing_annotations(f.read())]
    assert not missing, "\n".join(missing)
