"""ctypes for the kernel seam (kernel.py), built on _ctypes, the C module under it.

`syscall` and `address` are the seam's primitive where the launcher's built-in one
(`_pyrunc_kernel`, pyrunc/launcher/launcher.c) is not there: under `python -m pyrunc`, or
a launcher that execs the interpreter.  The rest serves the calls that need ctypes
itself: clone3 between the interpreter's own fork hooks, libseccomp's version.

`import ctypes` costs about 4 ms here (its package defines some thirty types and loads
struct and the endian helpers at import), a third of the interpreter's own start.  The
types below are ctypes' own classes as ctypes/__init__.py defines them; libc's
functions are looked up from the process's own symbols, as ctypes.CDLL(None) does.
"""

import _ctypes
from _ctypes import addressof, get_errno, sizeof  # noqa: F401  (get_errno: kernel.py's)


class c_uint(_ctypes._SimpleCData):
    _type_ = "I"


class c_long(_ctypes._SimpleCData):
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_char(_ctypes._SimpleCData):
    _type_ = "c"


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


class c_char_p(_ctypes._SimpleCData):
    _type_ = "z"


c_size_t = c_ulong


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
    """libc's syscall(), and any function of libc's or the interpreter's called with the
    GIL held (with_gil); errno is saved after each call (get_errno reads it)."""

    # A function pointer reads only `_handle` of the library it is given: a Libc does for
    # the CDLL typeshed asks for.
    def __init__(self) -> None:
        self._handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]  # the process's own symbols
        self.syscall = _LongFunction(("syscall", self))  # type: ignore[arg-type]

    def with_gil(self, name: str) -> _GilLongFunction:
        """`name` (libc's or the interpreter's own), called without releasing the GIL."""
        return _GilLongFunction((name, self))  # type: ignore[arg-type]


# The kernel seam's primitive (kernel.py) where the launcher's built-in _pyrunc_kernel
# (pyrunc/launcher/launcher.c) is not there: the same two functions, over ctypes.
_raw_syscall: "_LongFunction | None" = None
_LONG_BITS = (1 << (8 * sizeof(c_ulong))) - 1


def syscall(nr: int, *args: "int | bytes | bytearray | None") -> int:
    """syscall(2) with up to six arguments: an int passed as a long (a negative one in two's
    complement), None as NULL, bytes as a pointer to them, a bytearray as a pointer to its
    bytes (what the kernel fills in).  Returns the result, or -errno."""
    global _raw_syscall
    if _raw_syscall is None:
        _raw_syscall = Libc().syscall
    passed: list[object] = []
    for arg in args:
        if isinstance(arg, int):
            passed.append(c_ulong(arg & _LONG_BITS))
        elif isinstance(arg, bytearray):
            passed.append((c_char * len(arg)).from_buffer(arg))
        elif arg is None or isinstance(arg, bytes):
            passed.append(arg)
        else:
            raise TypeError(f"syscall: an argument of type {type(arg).__name__}")
    ret: int = _raw_syscall(c_long(nr), *passed)
    return -get_errno() if ret == -1 else ret


def address(obj: "bytes | bytearray") -> int:
    """Where obj's bytes lie, for a structure that points at them; valid while obj lives
    (and, a bytearray, keeps its size)."""
    if isinstance(obj, bytes):
        pointer: int | None = c_void_p.from_buffer(c_char_p(obj)).value  # c_char_p points into obj
        return pointer or 0
    return addressof((c_char * len(obj)).from_buffer(obj))
