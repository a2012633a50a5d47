"""No module of pyrunc/linux imports, directly or through others, a module that imports it
back.  Imports inside functions count too: a cycle there works only as long as the order
in which the modules happen to load keeps it working.  Read from the source with ast,
nothing is imported.  An import under `if TYPE_CHECKING:` is no edge: it never runs (it
names a type for mypy, as rootfs.py names init.py's InitContext).

One kind of edge is left out: a package's __init__ importing its own submodules (the
cgroups package picks v1 or v2 inside a function).  Python always runs a package's
__init__ before any of its submodules, so a submodule's import of its package is no edge
the load order can break; a package reaching down is how a package works."""

import ast
import pathlib

import pyrunc.linux

LINUX = pathlib.Path(pyrunc.linux.__file__).parent
PREFIX = "pyrunc.linux"


def _module_name(path):
    rel = path.relative_to(LINUX).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PREFIX, *parts])


def _linux_modules():
    return {_module_name(p): p for p in LINUX.rglob("*.py")}


def _typing_only(tree):
    """The nodes under `if TYPE_CHECKING:` (its body, not its else), which never run."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _imports(path, known):
    """The pyrunc.linux modules that `path` imports anywhere in its text, but for mypy."""
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    skip = _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pyrunc.linux import rootfs` names a module; `from x import NAME`, x itself.
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name in known:
                found.add(name)
    return found


def import_graph():
    modules = _linux_modules()
    graph = {}
    for name, path in modules.items():
        edges = _imports(path, modules)
        # A package's own name stands for its __init__: importing pyrunc.linux.cgroups.v1
        # from inside pyrunc.linux.cgroups is not a cycle through the package.
        edges.discard(name)
        edges.discard(PREFIX)
        if path.name == "__init__.py":
            edges = {e for e in edges if not e.startswith(name + ".")}
        graph[name] = edges
    return graph


def find_cycles(graph):
    """Every cycle found by a depth-first walk, each as the list of modules around it."""
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def test_the_walk_sees_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_holds_the_modules_and_their_imports():
    graph = import_graph()
    assert "pyrunc.linux.kernel" in graph["pyrunc.linux.rootfs"]
    assert "pyrunc.linux.cgroups" in graph["pyrunc.linux.cgroupfs"]  # from pyrunc.linux.cgroups import ...
    assert "pyrunc.linux.cgroups" in graph["pyrunc.linux.cgroups.v1"]
    assert "pyrunc.linux.cgroups.v1" not in graph["pyrunc.linux.cgroups"]


def test_an_import_for_mypy_only_is_no_edge(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        "TYPE_CHECKING = False\n"
        "if TYPE_CHECKING:\n"
        "    from pyrunc.linux.init import InitContext\n"
        "else:\n"
        "    from pyrunc.linux import kernel\n"
        "def f():\n"
        "    from pyrunc.linux import paths\n"
    )
    known = {"pyrunc.linux.init", "pyrunc.linux.kernel", "pyrunc.linux.paths"}
    assert _imports(path, known) == {"pyrunc.linux.kernel", "pyrunc.linux.paths"}


def test_no_module_of_pyrunc_linux_imports_in_a_cycle():
    cycles = find_cycles(import_graph())
    assert cycles == [], "\n".join(" -> ".join(c) for c in cycles)
