"""Read a bundle's config.json and report every problem with it, or load it."""

import os

from pyrunc import jsonc

from pyrunc.config.schema import schema_errors
from pyrunc.config.semantic import semantic_errors
from pyrunc.errors import ConfigError

CONFIG_NAME = "config.json"


def validate_bundle(bundle_dir):
    """(document or None, problems): the document is None when it could not be parsed.

    Semantic checks run only on a schema-valid document: they rely on its types.
    """
    doc, problem = _read(bundle_dir)
    if problem:
        return None, [problem]
    problems = _oversized(doc)
    if problems:  # refused before the schema pass, which would take seconds over them
        return doc, problems
    problems = schema_errors(doc)
    if not problems:
        problems = semantic_errors(doc, bundle_dir)
    return doc, problems


def load_config(bundle_dir):
    """The parsed config.json of the bundle; ConfigError lists every problem otherwise."""
    doc, problems = validate_bundle(bundle_dir)
    if problems:
        raise ConfigError(problems, bundle_dir)
    return doc


def _read(bundle_dir):
    """(document, None) or (None, one-line problem)."""
    path = os.path.join(bundle_dir, CONFIG_NAME)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None, f"{CONFIG_NAME}: no such file in bundle {bundle_dir}"
    except OSError as e:
        return None, f"{CONFIG_NAME}: cannot read {path}: {e.strerror.lower()}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, f"{CONFIG_NAME}: not UTF-8 at byte {e.start}"
    try:
        doc = jsonc.loads(text, constants=False)
    except ValueError as e:
        if hasattr(e, "lineno"):  # json's JSONDecodeError
            return None, f"{CONFIG_NAME}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        return None, f"{CONFIG_NAME}: invalid JSON: {e}"
    except RecursionError:
        return None, f"{CONFIG_NAME}: invalid JSON: nested too deeply"
    if not isinstance(doc, dict):
        return None, f"{CONFIG_NAME}: the top level must be a JSON object, not {_json_type(doc)}"
    return doc, None


# Arrays whose length the kernel bounds far below what a hostile config may hold.
_MAX_ITEMS = {("process", "user", "additionalGids"): 65536,   # NGROUPS_MAX
              ("linux", "uidMappings"): 340, ("linux", "gidMappings"): 340,  # id map extents
              ("mounts",): 100000, ("process", "env"): 100000, ("process", "args"): 100000}


def _oversized(doc):
    problems = []
    for path, most in _MAX_ITEMS.items():
        value = doc
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, list) and len(value) > most:
            problems.append(f"{'.'.join(path)}: {len(value)} items; at most {most} can be applied")
    return problems


def _json_type(value):
    for kind, name in ((list, "an array"), (str, "a string"), (bool, "a boolean"),
                       (int, "a number"), (float, "a number")):
        if isinstance(value, kind):
            return name
    return "null"
