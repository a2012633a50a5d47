"""Read a bundle's config.json and report every problem with it, or load it.

Every problem is one line, `<json path>: <message>` (format_problems).  A valid config
is checked by schema_check.py and semantic.py alone: schema.py, which imports
jsonschema to explain a failure, is imported only then."""

import os

from pyrunc import jsonc
from pyrunc.config import format_problems
from pyrunc.errors import ConfigError

CONFIG_NAME = "config.json"

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

    Doc = dict[str, Any]  # a parsed config.json
    JsonPath = Sequence[str | int]
    Cut = tuple[str | int, ...]


def validate_bundle(bundle_dir: str) -> "tuple[Doc | None, list[str]]":
    """(document or None, problems): the document is None when it could not be parsed."""
    doc, problem = _read(bundle_dir)
    if doc is None:
        return None, [str(problem)]
    problems = _oversized(doc)
    if problems:  # refused before the schema pass, which would take seconds over them
        return doc, problems
    return doc, config_problems(doc, bundle_dir)


def config_problems(doc: "Doc", bundle_dir: str) -> list[str]:
    """Every problem of a parsed config.json, the schema's and the semantic checks', as
    sorted `path: message` lines.  On a document that fails the schema the semantic
    checks still run, on what is left once the parts the schema flagged are taken out,
    so that one pass reports them all."""
    from pyrunc.config.semantic import semantic_problems

    flagged = [] if _plainly_valid(doc) else _schema_problems(doc)
    if not flagged:
        return format_problems(semantic_problems(doc, bundle_dir))
    rest, kept = _without(doc, [parts for parts, message in flagged if not _is_missing_field(parts, message)])
    found = [
        (_original_path(parts, kept), message)
        for parts, message in semantic_problems(rest, bundle_dir, schema_invalid=True)
    ]
    return format_problems([*flagged, *found])


def _plainly_valid(doc: "Doc") -> bool:
    """schema_check's verdict, without importing schema.py: it was compiled from the
    source tree's spec/, so another spec dir ($PYRUNC_SPEC_DIR) gets no verdict here."""
    if "PYRUNC_SPEC_DIR" in os.environ:
        return False
    from pyrunc.config import schema_check

    return schema_check.is_valid(doc)


def _schema_problems(doc: "Doc") -> "list[tuple[JsonPath, str]]":
    from pyrunc.config.schema import schema_problems

    return schema_problems(doc)


def _is_missing_field(parts: "JsonPath", message: str) -> bool:
    # A required field missing from an object outside any array: the object's other
    # fields are still worth checking (an object in an array goes, as with any error).
    return message.endswith("is a required property") and not any(isinstance(p, int) for p in parts)


def _cut_point(parts: "JsonPath") -> "Cut":
    """What to take out for a schema error at `parts`: the array element it is in (the
    outermost), so that no check meets half an entry; else the value itself."""
    for i, part in enumerate(parts):
        if isinstance(part, int):
            return tuple(parts[: i + 1])
    return tuple(parts)


def _without(doc: "Doc", paths: "Iterable[JsonPath]") -> "tuple[Doc, dict[Cut, list[int]]]":
    """(a copy of doc without the values at `paths`, {array path: the original index of
    each element kept}) for the arrays that lost elements.  Only what changes is copied."""
    cuts = sorted({_cut_point(p) for p in paths if p}, key=len)
    chosen: list[Cut] = []
    for cut in cuts:  # shortest first: a cut inside one already made is no cut
        if not any(cut[: len(c)] == c for c in chosen):
            chosen.append(cut)
    top = dict(doc)
    copies: dict[Cut, Any] = {(): top}

    def copied(path: "Cut") -> "Any":
        """The copy of the container at `path` in the new document, made on first use."""
        if path not in copies:
            parent = copied(path[:-1])
            node = parent[path[-1]]
            copies[path] = dict(node) if isinstance(node, dict) else list(node)
            parent[path[-1]] = copies[path]
        return copies[path]

    dropped: dict[Cut, set[int]] = {}  # array path: indexes to drop
    for cut in chosen:
        try:
            parent = copied(cut[:-1])
        except (KeyError, IndexError, TypeError):  # not there to take out
            continue
        if isinstance(parent, dict):
            parent.pop(cut[-1], None)
        else:
            dropped.setdefault(cut[:-1], set()).add(int(cut[-1]))
    kept: dict[Cut, list[int]] = {}
    for path, indexes in dropped.items():
        array = copies[path]
        kept[path] = [i for i in range(len(array)) if i not in indexes]
        array[:] = [array[i] for i in kept[path]]
    return top, kept


def _original_path(parts: "JsonPath", kept: "dict[Cut, list[int]]") -> "list[str | int]":
    """A semantic problem's path in the shortened document, back in config.json's indexes."""
    path = list(parts)
    for i, part in enumerate(path):
        where = tuple(path[:i])
        if isinstance(part, int) and where in kept and 0 <= part < len(kept[where]):
            path[i] = kept[where][part]
    return path


def load_config(bundle_dir: str) -> "Doc":
    """The parsed config.json of the bundle; ConfigError lists every problem otherwise."""
    doc, problems = validate_bundle(bundle_dir)
    if problems or doc is None:
        raise ConfigError(problems, bundle_dir)
    return doc


def _read(bundle_dir: str) -> "tuple[Doc, None] | tuple[None, str]":
    """(document, None) or (None, one-line problem)."""
    path = os.path.join(bundle_dir, CONFIG_NAME)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, f"{CONFIG_NAME}: no such file in bundle {bundle_dir}"
    except OSError as e:
        return None, f"{CONFIG_NAME}: cannot read {path}: {(e.strerror or str(e)).lower()}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"{CONFIG_NAME}: not UTF-8 at byte {e.start}"
    try:
        doc = jsonc.loads(text, constants=False)
    except (ValueError, RecursionError) as e:
        return None, f"{CONFIG_NAME}: {jsonc.problem(e)}"
    if not isinstance(doc, dict):
        return None, f"{CONFIG_NAME}: the top level must be a JSON object, not {_json_type(doc)}"
    return doc, None


# Arrays whose length the kernel bounds far below what a hostile config may hold.
_MAX_ITEMS = {
    ("process", "user", "additionalGids"): 65536,  # NGROUPS_MAX
    ("linux", "uidMappings"): 340,
    ("linux", "gidMappings"): 340,  # id map extents
    ("mounts",): 100000,
    ("process", "env"): 100000,
    ("process", "args"): 100000,
}


def _oversized(doc: "Doc") -> list[str]:
    problems = []
    for path, most in _MAX_ITEMS.items():
        value: object = doc
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, list) and len(value) > most:
            problems.append(f"{'.'.join(path)}: {len(value)} items; at most {most} can be applied")
    return problems


def _json_type(value: object) -> str:
    for kind, name in (
        (list, "an array"),
        (str, "a string"),
        (bool, "a boolean"),
        (int, "a number"),
        (float, "a number"),
    ):
        if isinstance(value, kind):
            return name
    return "null"
