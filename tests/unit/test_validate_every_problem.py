"""`pyrunc validate` reports every problem of a config in one pass, the schema's and the
semantic checks' together, one per line, on any document it can parse: runc's default
config (`pyrunc spec`) broken in several places at once by hypothesis."""

import contextlib
import copy
import io
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.cli import main
from pyrunc.config.default import default_spec
from pyrunc.config.schema import schema_errors

DEFAULT = default_spec()
OTHER_TYPES = [0, -1, 1.5, 2**64, "x", "", True, None, [], ["x"], {}, {"x": 1}]


def _paths(value, parts=()):
    """Every path into `value`, deepest last."""
    yield parts
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, parts + (key,))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _paths(sub, parts + (i,))


PATHS = [p for p in _paths(DEFAULT) if p]
CWD = ("process", "cwd")


def _at(doc, parts):
    for part in parts:
        doc = doc[part]
    return doc


def _reachable(doc, parts):
    """Whether parts names a value that can be replaced: its container is still an object
    or an array (an earlier draw may have made it a string, whose [0] reads but cannot be
    assigned)."""
    try:
        container = _at(doc, parts[:-1])
        container[parts[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    return isinstance(container, (dict, list))


@st.composite
def wrong_type(draw, doc, avoid=()):
    """Replace a value with one of another JSON type."""
    parts = draw(st.sampled_from([p for p in PATHS if p not in avoid and _reachable(doc, p)]))
    old = _at(doc, parts)
    new = draw(st.sampled_from([v for v in OTHER_TYPES if type(v) is not type(old)]))
    _at(doc, parts[:-1])[parts[-1]] = new
    return parts


@st.composite
def missing_field(draw, doc, avoid=()):
    """Delete a key, required or not."""
    keys = [p for p in PATHS if p not in avoid and isinstance(p[-1], str) and _reachable(doc, p)]
    parts = draw(st.sampled_from(keys))
    del _at(doc, parts[:-1])[parts[-1]]
    return parts


@st.composite
def relative_path(draw, doc):
    """A path field the spec wants absolute, made relative."""
    choices = [("mounts", i, "destination") for i in range(len(doc["mounts"]))]
    choices += [("linux", "maskedPaths", i) for i in range(len(doc["linux"]["maskedPaths"]))]
    parts = draw(st.sampled_from(choices))
    _at(doc, parts[:-1])[parts[-1]] = draw(st.sampled_from(["rel", "a/b", "./x", "../y"]))
    return parts


@st.composite
def bad_id(draw, doc):
    """A uid or gid no kernel takes, or not a number at all."""
    parts = ("process", "user", draw(st.sampled_from(["uid", "gid"])))
    _at(doc, parts[:-1])[parts[-1]] = draw(st.sampled_from([-1, 2**32, 2**32 - 1, "0", 1.5, None]))
    return parts


@st.composite
def broken(draw):
    """runc's default config with 1 to 5 things wrong."""
    doc = copy.deepcopy(DEFAULT)
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["type", "missing", "relative", "id"]))
        try:
            if kind == "type":
                draw(wrong_type(doc))
            elif kind == "missing":
                draw(missing_field(doc))
            elif (
                kind == "relative"
                and isinstance(doc.get("mounts"), list)
                and all(isinstance(m, dict) for m in doc["mounts"])
                and isinstance(doc.get("linux"), dict)
                and isinstance(doc["linux"].get("maskedPaths"), list)
                and doc["mounts"]
            ):
                draw(relative_path(doc))
            elif kind == "id" and isinstance(doc.get("process"), dict) and isinstance(doc["process"].get("user"), dict):
                draw(bad_id(doc))
        except (KeyError, IndexError, TypeError):  # an earlier change took the place away
            pass
    return doc


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("validate-every")
    (path / "rootfs").mkdir()
    return str(path)


def validate(bundle, doc):
    """(exit code, stdout lines, stderr lines) of `pyrunc validate` in this process: an
    exception escaping main is the traceback a user would see."""
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(doc, f)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", "--bundle", bundle])
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


def assert_one_problem_per_line(code, out, err):
    assert code == 1, (out, err)
    assert out and len(out) == len(set(out)), out
    for line in out:
        path, sep, message = line.partition(": ")
        assert sep and path and message.strip(), line
        assert path == "(root)" or path[0].isalpha() or path.startswith("["), line
    more = f" (1 of {len(out)} problems, all listed on stdout)" if len(out) > 1 else ""
    assert (
        len(err) == 1 and err[0].startswith("pyrunc: validate: /") and err[0].endswith(f"/config.json: {out[0]}{more}")
    ), err


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(doc=broken())
def test_any_broken_default_config_gets_one_problem_per_line_and_no_traceback(bundle, doc):
    if doc == DEFAULT:
        return  # every change undone by a later one: nothing to report
    code, out, err = validate(bundle, doc)
    if code == 0:  # a change the spec allows (an optional field deleted): truly valid
        assert schema_errors(doc) == [] and out[0].endswith("config.json is valid"), out
        return
    assert_one_problem_per_line(code, out, err)
    # Every schema error is among them: the semantic checks add to it, never hide it.
    assert set(schema_errors(doc)) <= set(out), (out, schema_errors(doc))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_schema_error_does_not_hide_a_semantic_one(bundle, data):
    """Both kinds at once: the relative cwd is listed beside whatever the schema says."""
    doc = copy.deepcopy(DEFAULT)
    avoid = {("process",), CWD}
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.booleans()):
            data.draw(wrong_type(doc, avoid))
        else:
            data.draw(missing_field(doc, avoid))
    if not isinstance(doc.get("process"), dict):
        return
    flagged = schema_errors(doc)
    doc["process"]["cwd"] = "relative"
    code, out, err = validate(bundle, doc)
    assert_one_problem_per_line(code, out, err)
    assert "process.cwd: 'relative' must be an absolute path" in out, out
    assert set(flagged) <= set(out), (flagged, out)


def test_a_relative_mount_destination_is_listed_beside_a_wrong_type(bundle):
    doc = copy.deepcopy(DEFAULT)
    doc["process"]["terminal"] = "yes"
    doc["mounts"][2]["destination"] = "dev/pts"
    doc["linux"]["namespaces"][0] = {"type": 7}
    code, out, err = validate(bundle, doc)
    assert code == 1
    assert out[0].startswith("linux.namespaces[0].type: 7 is not "), out
    assert out[-2:] == [
        "mounts[2].destination: 'dev/pts' must be an absolute path",
        "process.terminal: 'yes' is not of type 'boolean'",
    ], out
