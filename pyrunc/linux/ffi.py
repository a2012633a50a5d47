"""The part of ctypes kernel.py uses, built on _ctypes, the C module under it.

`import ctypes` costs about 4 ms here (its package defines some thirty types and loads
struct and the endian helpers at import), a third of the interpreter's own start.  The
types below are ctypes' own classes as ctypes/__init__.py defines them; libc's
functions are looked up from the process's own symbols, as ctypes.CDLL(None) does.
"""

import _ctypes
from _ctypes import Structure, addressof, byref, get_errno, sizeof  # noqa: F401  (kernel.py's)

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_uint(_ctypes._SimpleCData):
    _type_ = "I"


class c_long(_ctypes._SimpleCData):
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_ushort(_ctypes._SimpleCData):
    _type_ = "H"


class c_uint8(_ctypes._SimpleCData):
    _type_ = "B"


class c_uint64(_ctypes._SimpleCData):
    _type_ = "Q"


class c_char(_ctypes._SimpleCData):
    _type_ = "c"


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


c_int32, c_uint32, c_size_t = c_int, c_uint, c_ulong


class LazyStructure:
    """A Structure class made on its first use, then called like the class: making one
    costs 8 to 14 µs, and a command passes few of the seam's rarer structures (bpf's,
    clone3's, sched_setattr's), if any."""

    __slots__ = ("_name", "_fields", "_made")

    def __init__(self, name: str, fields: "Callable[[], list[tuple[str, Any]]]") -> None:
        self._name, self._fields = name, fields
        self._made: type[Structure] | None = None

    def made(self) -> "type[Structure]":
        if self._made is None:
            self._made = type(self._name, (Structure,), {"_fields_": self._fields()})
        return self._made

    def __call__(self, *args: "Any", **kwargs: "Any") -> "Any":
        return self.made()(*args, **kwargs)


def create_string_buffer(init: bytes | int, size: int | None = None) -> "_ctypes.Array[c_char]":
    """A mutable char array: `init` bytes copied in (NUL-padded), or `init` NULs."""
    if isinstance(init, int):
        return (c_char * init)()
    buf = (c_char * (len(init) + 1 if size is None else size))()
    # typeshed knows `raw` on ctypes.c_char arrays only; this c_char is the same class.
    buf.raw = init + bytes(len(buf) - len(init))  # type: ignore[misc, assignment]
    return buf


class _IntFunction(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _LongFunction(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_long


class _GilLongFunction(_ctypes.CFuncPtr):
    """A function called with the GIL held (ctypes' PyDLL kind): the interpreter's own
    fork hooks, and a clone3 that must not let go of the GIL between them."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_long


class _PointerFunction(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL
    _restype_ = c_void_p


def library_function(soname: str, name: str) -> _PointerFunction:
    """A function of a shared library (dlopen by soname) that returns a pointer, as an int
    (None for NULL); OSError where the library or the symbol is not there."""

    class Library:
        _handle = _ctypes.dlopen(soname, 0)

    try:
        return _PointerFunction((name, Library))  # type: ignore[arg-type]  # as Libc: _handle only
    except AttributeError as e:  # no such symbol
        raise OSError(str(e)) from None


class Libc:
    """libc's functions by name, errno saved after each call (get_errno reads it);
    they return int, syscall() returns long."""

    # A function pointer reads only `_handle` of the library it is given: a Libc does for
    # the CDLL typeshed asks for.
    def __init__(self) -> None:
        self._handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # the process's own symbols
        self.syscall = _LongFunction(("syscall", self))  # type: ignore[arg-type]

    def with_gil(self, name: str) -> _GilLongFunction:
        """`name` (libc's or the interpreter's own), called without releasing the GIL."""
        return _GilLongFunction((name, self))  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> _IntFunction:
        if name.startswith("_"):
            raise AttributeError(name)
        function = _IntFunction((name, self))  # type: ignore[arg-type]
        setattr(self, name, function)
        return function
