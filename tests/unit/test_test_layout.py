"""How the tests are laid out: a helper two test files share lives in a helper module
(tests/*/..._util.py and the like) or, for a fixture, in a conftest.py.  No file under
tests/ imports a test_*.py module: that ties one test file to another's insides, and a
test function imported that way is collected a second time."""

import ast
import os

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def imported_test_modules(source, package):
    """The test_* modules a Python source imports (at any depth), as dotted names;
    `package` resolves relative imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found += [n for n in names if n.rsplit(".", 1)[-1].startswith("test_")]
    return found


def test_the_check_sees_every_form_of_import():
    """Absolute, from-package, relative and nested imports all count; helper modules do not."""
    source = (
        "import tests.unit.test_a\n"
        "from tests.unit.test_b import x\n"
        "from tests.unit import test_c\n"
        "from .test_d import y\n"
        "def f():\n    from tests.integration.test_e import z\n"
        "from tests.integration.cli_util import runc\n"
        "import testing_tools, pytest\n"
    )
    assert imported_test_modules(source, "tests.unit") == [
        "tests.unit.test_a",
        "tests.unit.test_b",
        "tests.unit.test_c",
        "tests.unit.test_d",
        "tests.integration.test_e",
    ]


def test_no_file_under_tests_imports_a_test_module():
    offenders = []
    for dirpath, dirnames, filenames in os.walk(TESTS):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        rel = os.path.relpath(dirpath, TESTS)
        package = ".".join(["tests", *([] if rel == "." else rel.split(os.sep))])
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            with open(path) as f:
                for module in imported_test_modules(f.read(), package):
                    offenders.append(f"{os.path.relpath(path, TESTS)} imports {module}")
    assert offenders == [], "share helpers through a helper module or conftest.py:\n" + "\n".join(offenders)
