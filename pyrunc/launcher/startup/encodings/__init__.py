"""The `encodings` package the launcher's interpreter starts on (pyrunc/launcher).

An interpreter cannot start without a codec registry: it imports `encodings` and asks it
for the codec of the filesystem and of the standard streams: UTF-8 under a UTF-8 locale
and under the C locale (Python's UTF-8 mode).  The standard library's package builds its
whole alias table and loads
`codecs` (a dozen classes) and `encodings.utf_8` to answer that; in a process that lives
a few milliseconds that is 0.85 ms of CPU, a tenth of the interpreter's start
(docs/performance.md).  This one answers UTF-8 itself, from `_codecs`, with what the
interpreter and `io` ask of a codec; any other name, and any other attribute of this
package, loads the standard library's `encodings` here, in this module, first: from then
on everything is the standard library's.  Its submodules (`encodings.latin_1`, ...) are
always the standard library's (__path__).

The launcher puts this directory first on the module search path, and this module takes
it off again; it holds nothing else.
"""

import _codecs
import posix
import sys

TYPE_CHECKING = False  # typing is not imported at start
if TYPE_CHECKING:
    from typing import Any

_HERE = __file__.rsplit("/", 2)[0]


def _standard_dir() -> str:
    """The standard library's encodings directory: beside the interpreter's other modules
    (sys._stdlib_dir, set since 3.11 where it could tell), else on the search path."""
    stdlib = getattr(sys, "_stdlib_dir", None)
    for top in ([stdlib] if stdlib else []) + [p for p in sys.path if p != _HERE]:
        try:
            posix.stat(f"{top}/encodings/__init__.py")
        except OSError:
            continue
        return f"{top}/encodings"
    return f"{stdlib}/encodings"  # none found: its submodules then fail to import, as they would


# encodings.<name> is the standard library's module of that name.
__path__ = [_standard_dir()]
# The launcher put our directory first on the search path for this one import: off it
# again, so that later imports search only the interpreter's entries and pyrunc's.
if sys.path and sys.path[0] == _HERE:
    del sys.path[0]

_UTF_8_NAMES = ("utf_8", "utf8", "u8", "utf", "cp65001")


def _utf_8_decode(data: bytes, errors: str = "strict") -> "tuple[str, int]":
    return _codecs.utf_8_decode(data, errors, True)


class _IncrementalEncoder:
    """codecs.IncrementalEncoder's interface: UTF-8 keeps no state between calls."""

    def __init__(self, errors: str = "strict") -> None:
        self.errors = errors

    def encode(self, text: str, final: bool = False) -> bytes:
        return _codecs.utf_8_encode(text, self.errors)[0]

    def reset(self) -> None:
        pass

    def getstate(self) -> int:
        return 0

    def setstate(self, state: int) -> None:
        pass


class _IncrementalDecoder:
    """codecs.BufferedIncrementalDecoder's interface: the bytes of a character cut at the
    end of one call wait for the next."""

    def __init__(self, errors: str = "strict") -> None:
        self.errors = errors
        self.buffer = b""

    def decode(self, data: bytes, final: bool = False) -> str:
        data = self.buffer + data
        text, used = _codecs.utf_8_decode(data, self.errors, final)
        self.buffer = data[used:]
        return text

    def reset(self) -> None:
        self.buffer = b""

    def getstate(self) -> "tuple[bytes, int]":
        return (self.buffer, 0)

    def setstate(self, state: "tuple[bytes, int]") -> None:
        self.buffer = state[0]


def _standard_utf_8(attr: str) -> object:
    from encodings import utf_8  # the standard library's (__path__)

    return getattr(utf_8.getregentry(), attr)


def _stream_reader(stream: object, errors: str = "strict") -> object:
    """codecs.StreamReader for UTF-8: the standard library's, loaded when first made."""
    return _standard_utf_8("streamreader")(stream, errors)  # type: ignore[operator]


def _stream_writer(stream: object, errors: str = "strict") -> object:
    """codecs.StreamWriter for UTF-8: the standard library's, loaded when first made."""
    return _standard_utf_8("streamwriter")(stream, errors)  # type: ignore[operator]


class _Utf8Info(tuple[object, ...]):
    """codecs.CodecInfo of UTF-8: the 4-tuple the registry hands out and every attribute
    a CodecInfo has."""

    name = "utf-8"
    _is_text_encoding = True
    encode = staticmethod(_codecs.utf_8_encode)
    decode = staticmethod(_utf_8_decode)
    incrementalencoder = _IncrementalEncoder
    incrementaldecoder = _IncrementalDecoder
    streamreader = staticmethod(_stream_reader)
    streamwriter = staticmethod(_stream_writer)

    def __repr__(self) -> str:
        return f"<UTF-8 codec info of pyrunc's start at {id(self):#x}>"


_loaded = False


def _load_standard() -> None:
    """Run the standard library's encodings/__init__ in this module: its search function
    (registered after ours), its alias table, its helpers."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from _frozen_importlib_external import SourceFileLoader

    path = f"{__path__[0]}/__init__.py"
    code = SourceFileLoader(__name__, path).get_code(__name__)
    assert code is not None  # a source file's
    exec(code, globals())


def _search(name: str) -> "Any":  # a CodecInfo, or what stands for one
    if name.replace("-", "_").replace(" ", "_").lower() in _UTF_8_NAMES:
        return _Utf8Info((_codecs.utf_8_encode, _utf_8_decode, _stream_reader, _stream_writer))
    _load_standard()
    standard = globals()["search_function"]
    return standard(name)


def __getattr__(attr: str) -> object:
    """The standard library's module attributes (normalize_encoding, aliases, ...)."""
    if attr.startswith("__") or _loaded:
        raise AttributeError(attr)
    _load_standard()
    return globals()[attr] if attr in globals() else __getattr__(attr)


_codecs.register(_search)
