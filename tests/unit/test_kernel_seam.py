"""The kernel seam is passed, never patched (issue 20): pyrunc's code reaches the kernel only
through a kernel object it is given (kernel.Kernel, the trace's RecordingKernel, a test
double), so nothing can go around the seam and nothing depends on who imported what first.

Scanned in pyrunc/'s source (AST): no setattr on, or assignment to an attribute of, the
modules pyrunc.linux.kernel and pyrunc.linux.cgroups.files; no `__class__` assignment; no
call of a module-level function of pyrunc.linux.kernel (only methods of an object passed
in); and the kernel module keeps no public callable but its classes."""

import ast
import os

import pyrunc
from pyrunc.linux import kernel

SEAM_MODULES = {"pyrunc.linux.kernel", "pyrunc.linux.cgroups.files"}
ROOT = os.path.dirname(pyrunc.__file__)


def _sources():
    for dirpath, _, names in os.walk(ROOT):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                with open(path) as f:
                    yield os.path.relpath(path, os.path.dirname(ROOT)), ast.parse(f.read(), path)


def _module_aliases(tree):
    """{local name: module} for the seam modules a file imports, anywhere in it."""
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in SEAM_MODULES and a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                if f"{node.module}.{a.name}" in SEAM_MODULES:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def _is_kernel_function(attr):
    """A function of the module, or the name of a Kernel method used as one."""
    value = getattr(kernel, attr, None)
    if callable(value) and not isinstance(value, type):
        return True
    return not attr.startswith("_") and callable(getattr(getattr(kernel, "Kernel", None), attr, None))


class _Finder(ast.NodeVisitor):
    """Each use that goes around the seam, as `file:line: what`."""

    def __init__(self, path, aliases):
        self.path, self.aliases = path, aliases
        self.shadowed = [set()]  # a function's parameters hide a module of the same name
        self.found = []

    def _module(self, node):
        if isinstance(node, ast.Name) and node.id in self.aliases and node.id not in self.shadowed[-1]:
            return self.aliases[node.id]
        return None

    def _say(self, node, what):
        self.found.append(f"{self.path}:{node.lineno}: {what}")

    def visit_FunctionDef(self, node):
        a = node.args
        params = {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
        params |= {p.arg for p in (a.vararg, a.kwarg) if p is not None}
        self.shadowed.append(self.shadowed[-1] | params)
        self.generic_visit(node)
        self.shadowed.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node):
        f = node.func
        if isinstance(f, ast.Name) and f.id == "setattr" and node.args and self._module(node.args[0]):
            self._say(node, f"setattr on {self._module(node.args[0])}")
        if (
            isinstance(f, ast.Attribute)
            and self._module(f.value) == "pyrunc.linux.kernel"
            and _is_kernel_function(f.attr)
        ):
            self._say(node, f"a call of the module function kernel.{f.attr}")
        self.generic_visit(node)

    def _target(self, target):
        for t in ast.walk(target):
            if isinstance(t, ast.Attribute):
                if t.attr == "__class__":
                    self._say(t, "an assignment to __class__")
                elif self._module(t.value):
                    self._say(t, f"an assignment to {self._module(t.value)}.{t.attr}")

    def visit_Assign(self, node):
        for t in node.targets:
            self._target(t)
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._target(node.target)
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._target(node.target)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        if node.module == "pyrunc.linux.kernel":
            for a in node.names:
                if _is_kernel_function(a.name):
                    self._say(node, f"an import of the module function kernel.{a.name}")
        self.generic_visit(node)


def test_no_code_patches_the_seam_or_calls_around_it():
    found = []
    for path, tree in _sources():
        finder = _Finder(path, _module_aliases(tree))
        finder.visit(tree)
        found += finder.found
    assert found == []


def test_the_kernel_module_keeps_no_callable_outside_its_classes():
    loose = [n for n, v in vars(kernel).items() if callable(v) and not isinstance(v, type) and not n.startswith("_")]
    assert loose == []
    assert not hasattr(kernel, "_libc") and not hasattr(kernel, "_syscall")


def test_the_finder_sees_each_way_around_the_seam():
    """The scan itself, on code that does each thing it forbids."""
    code = (
        "from pyrunc.linux import kernel as k\n"
        "from pyrunc.linux.cgroups import files\n"
        "from pyrunc.linux.kernel import mount\n"
        "setattr(k, 'mount', None)\n"
        "files.REAL_FILES = None\n"
        "ctx.__class__ = object\n"
        "k.MS_BIND\n"
        "k.Kernel()\n"
        "def f(k):\n"
        "    k.mount('a', 'b', None)\n"  # a parameter: a kernel object passed in
        "k.umount('/x')\n"
    )
    tree = ast.parse(code)
    finder = _Finder("x.py", _module_aliases(tree))
    finder.visit(tree)
    assert [line.split(": ", 1)[1] for line in finder.found] == [
        "an import of the module function kernel.mount",
        "setattr on pyrunc.linux.kernel",
        "an assignment to pyrunc.linux.cgroups.files.REAL_FILES",
        "an assignment to __class__",
        "a call of the module function kernel.umount",
    ]
