"""JSON through CPython's C accelerator (_json), without importing the json package.

`import json` costs about 10 ms on the machines pyrunc runs on (it imports re, and re
imports enum), more than the rest of a `state` command.  json itself parses and writes
through _json's scanner and encoder; this module calls them directly, with json's own
defaults: the same documents are accepted and written byte for byte alike, and errors
are json's JSONDecodeError (json.decoder is imported only to raise one).

_json's scanner raises its errors through json.decoder.JSONDecodeError, which (in
CPython 3.11) it looks up in sys.modules and never imports: without json.decoder
loaded, a malformed document makes it return NULL with no exception set, a
SystemError.  loads then imports json.decoder and scans again, to raise json's own
error; a valid document never takes that path.

Indented output (`state`, `features`) is written here too, as json.dumps(indent=N)
writes it.
"""

import _json

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from json import JSONDecodeError
    from typing import Any, NoReturn

_INFINITY = float("inf")
_CONSTANTS = {"-Infinity": -_INFINITY, "Infinity": _INFINITY, "NaN": float("nan")}
_WHITESPACE = " \t\n\r"


class _Context:
    """What _json.make_scanner reads from a json.JSONDecoder: its default settings."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo = None


def _reject_constant(name: str) -> "NoReturn":
    raise ValueError(f"{name} is not a JSON value")


# typeshed wants a JSONDecoder: the scanner reads only the attributes _Context has.
_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]
_scan_strict: "Callable[[str, int], tuple[Any, int]] | None" = None  # made when first asked for


def _strict_scanner() -> "Callable[[str, int], tuple[Any, int]]":
    """The scanner that refuses NaN and the infinities, as JSON (and Go's decoder, runc's)
    refuses them: config.json's.  Made on first use: its context class costs a light
    command, which reads only the runtime's own state, more than the scanner is worth."""
    global _scan_strict
    if _scan_strict is None:

        class _StrictContext(_Context):
            parse_constant = staticmethod(_reject_constant)

        _scan_strict = _json.make_scanner(_StrictContext())  # type: ignore[arg-type]
    return _scan_strict


def _error(msg: str, doc: str, pos: int) -> "JSONDecodeError":
    from json.decoder import JSONDecodeError

    return JSONDecodeError(msg, doc, pos)


def loads(data: str | bytes | bytearray, constants: bool = True) -> "Any":
    """json.loads(data) for str, or for bytes in UTF-8 (what runtimes write); with
    constants=False, NaN, Infinity and -Infinity raise ValueError."""
    if isinstance(data, (bytes, bytearray)):
        # json's decoding of UTF-8 (its guesses at UTF-16 and -32 aside): surrogates pass.
        data = data.decode("utf-8-sig" if data[:3] == b"\xef\xbb\xbf" else "utf-8", "surrogatepass")
    start = len(data) - len(data.lstrip(_WHITESPACE))
    scan = _scan if constants else _strict_scanner()
    try:
        value, end = scan(data, start)
    except StopIteration as e:
        raise _error("Expecting value", data, e.value) from None
    except SystemError:
        raise _rescan(scan, data, start) from None
    tail = data[end:]
    if tail.strip(_WHITESPACE):
        raise _error("Extra data", data, end + len(tail) - len(tail.lstrip(_WHITESPACE)))
    return value


def _rescan(scan: "Callable[[str, int], tuple[Any, int]]", data: str, start: int) -> Exception:
    """The scanner failed without json.decoder to raise through: load it and scan again;
    the error is then json's (message and position)."""
    import json.decoder  # noqa: F401  (the scanner finds it in sys.modules)

    try:
        scan(data, start)
    except StopIteration as e:
        return _error("Expecting value", data, e.value)
    except (ValueError, RecursionError) as e:
        return e
    return SystemError("_json's scanner failed twice on one document")


def problem(e: Exception) -> str:
    """One line for a document loads refused: json's message with its line and column."""
    if isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 at byte {e.start}"
    if isinstance(e, RecursionError):
        return "invalid JSON: nested too deeply"
    if hasattr(e, "lineno"):  # JSONDecodeError
        return f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"  # type: ignore[attr-defined]
    return f"invalid JSON: {e}"


def _default(o: object) -> "NoReturn":
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def _encoder(item_separator: str, key_separator: str, sort_keys: bool) -> "Callable[[Any, int], list[str]]":
    return _json.make_encoder(
        None, _default, _json.encode_basestring_ascii, None, key_separator, item_separator, sort_keys, False, True
    )


_COMPACT = _encoder(",", ":", False)
_COMPACT_SORTED = _encoder(",", ":", True)
_SPACED = _encoder(", ", ": ", False)


def _indented(obj: object, pad: str, depth: int, sort_keys: bool, out: list[str]) -> None:
    if isinstance(obj, dict) and obj:
        inner = pad * (depth + 1)
        items = sorted(obj.items()) if sort_keys else obj.items()
        out.append("{")
        for i, (key, value) in enumerate(items):
            if not isinstance(key, str):
                raise TypeError  # json's key coercions: let json do them
            out.append(("\n" if i == 0 else ",\n") + inner + _json.encode_basestring_ascii(key) + ": ")
            _indented(value, pad, depth + 1, sort_keys, out)
        out.append("\n" + pad * depth + "}")
    elif isinstance(obj, (list, tuple)) and obj:
        inner = pad * (depth + 1)
        out.append("[")
        for i, value in enumerate(obj):
            out.append(("\n" if i == 0 else ",\n") + inner)
            _indented(value, pad, depth + 1, sort_keys, out)
        out.append("\n" + pad * depth + "]")
    else:
        out.append("".join(_COMPACT(obj, 0)))


def dumps(obj: object, compact: bool = True, sort_keys: bool = False, indent: int | None = None) -> str:
    """json.dumps(obj) with separators (",", ":") when compact, else json's default
    (", ", ": "); with indent (a number of spaces), as json.dumps(obj, indent=indent)."""
    if indent is not None:
        out: list[str] = []
        try:
            _indented(obj, " " * indent, 0, sort_keys, out)
        except TypeError:
            import json

            return json.dumps(obj, indent=indent, sort_keys=sort_keys)
        return "".join(out)
    if compact:
        encode = _COMPACT_SORTED if sort_keys else _COMPACT
    elif sort_keys:
        encode = _encoder(", ", ": ", True)
    else:
        encode = _SPACED
    return "".join(encode(obj, 0))
