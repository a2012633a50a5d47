"""Validation against the vendored OCI JSON Schema files in spec/.

jsonschema and referencing are imported inside the functions: they cost tens of
milliseconds to import, and only create, run and validate need them. A config.json is
first checked by schema_check.py, compiled from spec/ ahead of time (compile_schema.py),
which gives jsonschema's verdict without importing it; jsonschema then runs only to
explain a config that failed.

Every problem is one line, `<json path>: <message>`, with paths written like
`linux.namespaces[2].type` (`(root)` for the document itself).
"""

import os

# Problems are formatted in the package (pyrunc/config/__init__.py), which create and
# exec load without this module; the names stay importable from here.
from pyrunc.config import format_problems as format_problems
from pyrunc.config import json_path as json_path

MAX_REPR = 200

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path
    from typing import Any

    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

    JsonPath = Sequence[str | int]  # keys and indexes from the document's root


def spec_dir() -> "Path":
    """The directory of schema files: spec/ of the source tree, or $PYRUNC_SPEC_DIR."""
    from pathlib import Path

    override = os.environ.get("PYRUNC_SPEC_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "spec"


def schema_errors(doc: "Any") -> list[str]:
    """Every way `doc` (a parsed config.json) fails spec/config-schema.json."""
    return format_problems(schema_problems(doc))


def schema_problems(doc: "Any") -> "list[tuple[JsonPath, str]]":
    """schema_errors as (path parts, message) pairs, unformatted."""
    # schema_check.py was compiled from the source tree's spec/; another spec dir gets
    # jsonschema alone.
    if "PYRUNC_SPEC_DIR" not in os.environ:
        from pyrunc.config import schema_check

        if schema_check.is_valid(doc):
            return []
    return _raw_errors("config-schema.json", doc)


def state_schema_errors(doc: "Any") -> list[str]:
    """Every way `doc` (a container state) fails spec/state-schema.json."""
    return _errors("state-schema.json", doc)


def features_schema_errors(doc: "Any") -> list[str]:
    """Every way `doc` (a features document) fails spec/features-schema.json."""
    return _errors("features-schema.json", doc)


def resources_errors(doc: "Any") -> list[str]:
    """Every way `doc` fails the schema of linux.resources (what `update --resources` reads)."""
    return _errors("config-linux.json", doc, "#/linux/properties/resources")


def _errors(schema_name: str, doc: "Any", pointer: str = "") -> list[str]:
    return format_problems(_raw_errors(schema_name, doc, pointer))


def _raw_errors(schema_name: str, doc: "Any", pointer: str = "") -> "list[tuple[JsonPath, str]]":
    validator = _validator(str(spec_dir()), schema_name, pointer)
    found: list[tuple[JsonPath, str]] = []
    for error in validator.iter_errors(doc):
        for leaf in _specific(error):
            found.append((list(leaf.absolute_path), _one_line(leaf)))
    return found


_VALIDATORS: "dict[tuple[str, str, str], Validator]" = {}


def _validator(directory: str, schema_name: str, pointer: str = "") -> "Validator":
    key = (directory, schema_name, pointer)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = _make_validator(directory, schema_name, pointer)
    return _VALIDATORS[key]


def _make_validator(directory: str, schema_name: str, pointer: str) -> "Validator":
    import json
    from pathlib import Path

    from jsonschema.validators import validator_for
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    # The files carry no $id and refer to each other by bare file name
    # ("defs.json#/definitions/uint32"); registering each under its file name makes
    # those refs resolve against the entry schema's empty base URI. Only the entry
    # files declare $schema, so the others default to the draft they declare (4).
    resources = []
    for path in sorted(Path(directory).glob("*.json")):
        contents = json.loads(path.read_text())
        resources.append((path.name, Resource.from_contents(contents, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = registry.contents(schema_name)
    cls = validator_for(schema)
    if pointer:  # a part of a schema file, by reference, so its own refs still resolve
        return cls({"$ref": schema_name + pointer}, registry=registry)
    return cls(schema, registry=registry)


def _specific(error: "ValidationError") -> "Iterator[ValidationError]":
    """The errors worth showing for `error`.

    A failed anyOf/oneOf only says "is not valid under any of the given schemas";
    descend into the branch that came closest (best_match) and report all of that
    branch's errors, so `linux.namespaces[2]` becomes `linux.namespaces[2].type: ...`.
    """
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        yield error
        return
    from jsonschema.exceptions import best_match

    best = best_match(error.context)
    while best.parent is not error:  # best_match may return a deeper, nested error
        best = best.parent
    branch = best.relative_schema_path[0]
    for sub in error.context:
        if sub.relative_schema_path[0] == branch:
            yield from _specific(sub)


def _one_line(error: "ValidationError") -> str:
    message = error.message
    shown = repr(error.instance)
    if len(shown) > MAX_REPR and shown in message:
        message = message.replace(shown, shown[:MAX_REPR] + "...")
    return " ".join(message.splitlines())
