"""create and run refuse an invalid config.json on one line: the first problem, how many
there are, and the validate command that lists them all; nothing is left behind."""

import pytest

from tests.integration.cli_util import assert_nothing_left


@pytest.mark.parametrize("command", ["create", "run"])
def test_create_names_the_first_problem_and_how_many(pyrunc, bundle, test_id, command):
    bundle.config["process"]["terminal"] = "yes"  # schema
    bundle.config["process"]["cwd"] = "relative"  # semantic, beside it
    bundle.config["mounts"][1]["destination"] = "dev"  # semantic
    bundle.write()
    r = pyrunc(command, "--bundle", bundle.path, test_id)
    assert r.code == 1, r
    assert r.err == (
        f"pyrunc: invalid config.json: mounts[1].destination: 'dev' must be an "
        f"absolute path (1 of 3 problems; `pyrunc validate --bundle {bundle.path}` "
        f"lists them all)\n"
    ), r
    assert_nothing_left(pyrunc, test_id, bundle)
    v = pyrunc("validate", "--bundle", bundle.path)
    assert v.code == 1 and v.out.splitlines() == [
        "mounts[1].destination: 'dev' must be an absolute path",
        "process.cwd: 'relative' must be an absolute path",
        "process.terminal: 'yes' is not of type 'boolean'",
    ], v
