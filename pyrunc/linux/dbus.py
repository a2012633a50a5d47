"""A small synchronous D-Bus client, written from the D-Bus specification: the wire
format (marshalling with alignment), the message header, AUTH EXTERNAL, method calls
and signals over a unix socket.  It is imported on the create path of a container run
with --systemd-cgroup, so it stays cheap to import: _socket rather than socket.py, no
struct (a double is the only type that needs it, imported when one is met), no
typing, no re.  docs/cgroups.md ("D-Bus client") has the numbers and the reasons.

Every byte read from the socket is untrusted: lengths, alignment padding, booleans,
strings, object paths, signatures and nesting depth are checked as they are read,
and a malformed message raises one DBusError naming what is wrong."""

import os
import time

from pyrunc.linux import unix

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable
    from typing import Any

METHOD_CALL = 1
METHOD_RETURN = 2
ERROR = 3
SIGNAL = 4
NO_REPLY_EXPECTED = 0x1

# The specification's limits.
MAX_MESSAGE = 1 << 27  # 128 MiB, header and body
MAX_ARRAY = 1 << 26  # 64 MiB of array data
MAX_SIGNATURE = 255
MAX_ARRAY_DEPTH = 32
MAX_STRUCT_DEPTH = 32
MAX_DEPTH = 64  # arrays, structs and variants together
MAX_QUEUED = 1024  # signals kept while waiting; the oldest are dropped beyond it
MAX_AUTH_LINE = 4096

INCONSISTENT = "org.freedesktop.DBus.Error.InconsistentMessage"
INVALID_ARGS = "org.freedesktop.DBus.Error.InvalidArgs"
DISCONNECTED = "org.freedesktop.DBus.Error.Disconnected"
NO_SERVER = "org.freedesktop.DBus.Error.NoServer"
AUTH_FAILED = "org.freedesktop.DBus.Error.AuthFailed"
BAD_ADDRESS = "org.freedesktop.DBus.Error.BadAddress"
UNKNOWN_METHOD = "org.freedesktop.DBus.Error.UnknownMethod"

BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"

# type code: (alignment, size, signed) for the integers; alignment for the rest.
_INTS = {
    "y": (1, 1, False),
    "n": (2, 2, True),
    "q": (2, 2, False),
    "i": (4, 4, True),
    "u": (4, 4, False),
    "x": (8, 8, True),
    "t": (8, 8, False),
    "h": (4, 4, False),
}
_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "h": 4}
_ALIGN.update({"s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1})
_BASIC = frozenset("ybnqiuxtdsogh")

# Header field codes: (name, the signature its variant must have).
_FIELDS = {
    1: ("path", "o"),
    2: ("interface", "s"),
    3: ("member", "s"),
    4: ("error_name", "s"),
    5: ("reply_serial", "u"),
    6: ("destination", "s"),
    7: ("sender", "s"),
    8: ("signature", "g"),
    9: ("unix_fds", "u"),
}
_REQUIRED = {
    METHOD_CALL: ("path", "member"),
    METHOD_RETURN: ("reply_serial",),
    ERROR: ("error_name", "reply_serial"),
    SIGNAL: ("path", "interface", "member"),
}


class DBusError(Exception):
    """An error reply (name: the D-Bus error name, message: its text), or anything else
    that goes wrong speaking D-Bus, under one of the specification's error names."""

    def __init__(self, name: str, message: str = "") -> None:
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message


def _malformed(what: str) -> DBusError:
    return DBusError(INCONSISTENT, f"malformed D-Bus message: {what}")


class Variant:
    """A value of type `v`: its signature (one complete type) and the value."""

    __slots__ = ("signature", "value")

    def __init__(self, signature: str, value: "Any") -> None:
        self.signature = signature
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Variant):
            return NotImplemented
        return self.signature == other.signature and self.value == other.value

    __hash__ = None  # type: ignore[assignment]  # mutable value inside

    def __repr__(self) -> str:
        return f"Variant({self.signature!r}, {self.value!r})"


class Message:
    """One D-Bus message: the header fields by name and the body as a tuple."""

    __slots__ = (
        "type",
        "flags",
        "serial",
        "reply_serial",
        "path",
        "interface",
        "member",
        "error_name",
        "destination",
        "sender",
        "signature",
        "unix_fds",
        "body",
    )

    def __init__(
        self,
        type: int,
        serial: int = 0,
        *,
        flags: int = 0,
        reply_serial: int | None = None,
        path: str | None = None,
        interface: str | None = None,
        member: str | None = None,
        error_name: str | None = None,
        destination: str | None = None,
        sender: str | None = None,
        signature: str = "",
        unix_fds: int | None = None,
        body: tuple = (),
    ) -> None:
        self.type = type
        self.flags = flags
        self.serial = serial
        self.reply_serial = reply_serial
        self.path = path
        self.interface = interface
        self.member = member
        self.error_name = error_name
        self.destination = destination
        self.sender = sender
        self.signature = signature
        self.unix_fds = unix_fds
        self.body = body

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__ if getattr(self, k) not in (None, ""))
        return f"Message({shown})"


# -- signatures ---------------------------------------------------------------------


def _type_end(sig: str, i: int, arrays: int = 0, structs: int = 0) -> int:
    """The index just past the single complete type that starts at sig[i]."""
    if i >= len(sig):
        raise _bad_signature(sig, "a complete type is missing")
    c = sig[i]
    if c in _BASIC or c == "v":
        return i + 1
    if c == "a":
        if arrays >= MAX_ARRAY_DEPTH or arrays + structs >= MAX_DEPTH:
            raise _bad_signature(sig, "arrays nested too deeply")
        if sig[i + 1 : i + 2] == "{":
            if structs >= MAX_STRUCT_DEPTH or arrays + structs + 1 >= MAX_DEPTH:
                raise _bad_signature(sig, "structs nested too deeply")
            if i + 2 >= len(sig) or sig[i + 2] not in _BASIC:
                raise _bad_signature(sig, "a dict key must be a basic type")
            j = _type_end(sig, i + 3, arrays + 1, structs + 1)
            if sig[j : j + 1] != "}":
                raise _bad_signature(sig, "a dict entry holds exactly one key and one value")
            return j + 1
        return _type_end(sig, i + 1, arrays + 1, structs)
    if c == "(":
        if structs >= MAX_STRUCT_DEPTH or arrays + structs >= MAX_DEPTH:
            raise _bad_signature(sig, "structs nested too deeply")
        j = i + 1
        if sig[j : j + 1] == ")":
            raise _bad_signature(sig, "an empty struct")
        while sig[j : j + 1] != ")":
            j = _type_end(sig, j, arrays, structs + 1)
        return j + 1
    raise _bad_signature(sig, f"unexpected {c!r}")


def _bad_signature(sig: str, why: str) -> DBusError:
    return DBusError(INVALID_ARGS, f"invalid D-Bus signature {sig!r}: {why}")


_split_cache: dict[str, tuple[str, ...]] = {}


def split_signature(sig: str) -> tuple[str, ...]:
    """The complete types of a signature, in order; DBusError if it is not valid."""
    found = _split_cache.get(sig)
    if found is not None:
        return found
    if len(sig) > MAX_SIGNATURE:
        raise _bad_signature(sig[:40] + "...", f"longer than {MAX_SIGNATURE}")
    types = []
    i = 0
    while i < len(sig):
        j = _type_end(sig, i)
        types.append(sig[i:j])
        i = j
    found = tuple(types)
    if len(_split_cache) < 512:  # signatures read from the wire must not grow it without end
        _split_cache[sig] = found
    return found


def _single(sig: str) -> str:
    types = split_signature(sig)
    if len(types) != 1:
        raise _bad_signature(sig, "a variant holds exactly one complete type")
    return types[0]


def _valid_path(path: str) -> bool:
    if path == "/":
        return True
    if not path.startswith("/") or path.endswith("/"):
        return False
    for part in path[1:].split("/"):
        if not part or not all(c.isascii() and (c.isalnum() or c == "_") for c in part):
            return False
    return True


# -- marshalling --------------------------------------------------------------------


def _pad(buf: bytearray, align: int) -> None:
    n = -len(buf) % align
    if n:
        buf += bytes(n)


def _put(buf: bytearray, t: str, v: "Any", depth: tuple[int, int, int]) -> None:
    """Append value v of the complete type t, little-endian, aligned from buf's start."""
    c = t[0]
    ints = _INTS.get(c)
    if ints is not None:
        align, size, signed = ints
        if type(v) is not int and type(v) is not bool:
            raise DBusError(INVALID_ARGS, f"D-Bus {c!r} wants an int, got {type(v).__name__}")
        _pad(buf, align)
        try:
            buf += v.to_bytes(size, "little", signed=signed)
        except OverflowError:
            raise DBusError(INVALID_ARGS, f"D-Bus {c!r} value out of range: {v}") from None
    elif c == "b":
        if v is not True and v is not False:
            raise DBusError(INVALID_ARGS, f"D-Bus 'b' wants a bool, got {v!r}")
        _pad(buf, 4)
        buf += b"\1\0\0\0" if v else b"\0\0\0\0"
    elif c == "d":
        if type(v) is not float and type(v) is not int:
            raise DBusError(INVALID_ARGS, f"D-Bus 'd' wants a float, got {type(v).__name__}")
        import _struct  # only a double needs it

        _pad(buf, 8)
        try:
            buf += _struct.pack("<d", float(v))
        except OverflowError:
            raise DBusError(INVALID_ARGS, f"D-Bus 'd' value out of range: {v}") from None
    elif c == "s" or c == "o" or c == "g":
        if type(v) is not str:
            raise DBusError(INVALID_ARGS, f"D-Bus {c!r} wants a str, got {type(v).__name__}")
        if "\0" in v:
            raise DBusError(INVALID_ARGS, f"D-Bus string holds a NUL: {v!r}")
        if c == "o" and not _valid_path(v):
            raise DBusError(INVALID_ARGS, f"invalid D-Bus object path {v!r}")
        try:
            data = v.encode()
        except UnicodeEncodeError:
            raise DBusError(INVALID_ARGS, f"D-Bus string is not valid Unicode: {v!r}") from None
        if c == "g":
            split_signature(v)
            buf.append(len(data))
        else:
            _pad(buf, 4)
            buf += len(data).to_bytes(4, "little")
        buf += data
        buf.append(0)
    elif c == "v":
        if not isinstance(v, Variant):
            raise DBusError(INVALID_ARGS, f"D-Bus 'v' wants a Variant, got {type(v).__name__}")
        held = _single(v.signature)
        if sum(depth) + 1 > MAX_DEPTH:
            raise DBusError(INVALID_ARGS, "D-Bus variants nested too deeply")
        buf.append(len(held))
        buf += held.encode()
        buf.append(0)
        _put(buf, held, v.value, (depth[0], depth[1], depth[2] + 1))
    elif c == "a":
        _put_array(buf, t, v, depth)
    elif c == "(":
        if not isinstance(v, (tuple, list)):
            raise DBusError(INVALID_ARGS, f"D-Bus struct {t} wants a tuple, got {type(v).__name__}")
        members = split_signature(t[1:-1])
        if len(v) != len(members):
            raise DBusError(INVALID_ARGS, f"D-Bus struct {t} wants {len(members)} fields, got {len(v)}")
        inner = (depth[0], depth[1] + 1, depth[2])
        _check_depth(inner, False)
        _pad(buf, 8)
        for m, x in zip(members, v):
            _put(buf, m, x, inner)
    else:
        raise _bad_signature(t, f"unexpected {c!r}")


def _put_array(buf: bytearray, t: str, v: "Any", depth: tuple[int, int, int]) -> None:
    elem = t[1:]
    inner = (depth[0] + 1, depth[1], depth[2])
    _check_depth(inner, False)
    _pad(buf, 4)
    at = len(buf)
    buf += b"\0\0\0\0"
    _pad(buf, _ALIGN[elem[0]])  # the padding after the length is not counted in it
    start = len(buf)
    if elem == "y" and isinstance(v, (bytes, bytearray)):
        buf += v
    elif elem[0] == "{":
        if not isinstance(v, dict):
            raise DBusError(INVALID_ARGS, f"D-Bus {t} wants a dict, got {type(v).__name__}")
        key, value = split_signature(elem[1:-1])
        entry = (inner[0], inner[1] + 1, inner[2])
        _check_depth(entry, False)
        for k, x in v.items():
            _pad(buf, 8)
            _put(buf, key, k, entry)
            _put(buf, value, x, entry)
    else:
        if not isinstance(v, (list, tuple)):
            raise DBusError(INVALID_ARGS, f"D-Bus {t} wants a list, got {type(v).__name__}")
        for x in v:
            _put(buf, elem, x, inner)
    n = len(buf) - start
    if n > MAX_ARRAY:
        raise DBusError(INVALID_ARGS, f"D-Bus array of {n} bytes is over the limit of {MAX_ARRAY}")
    buf[at : at + 4] = n.to_bytes(4, "little")


def _check_depth(depth: tuple[int, int, int], reading: bool) -> None:
    """depth: (arrays, structs and dict entries, variants) around a value."""
    if depth[0] > MAX_ARRAY_DEPTH or depth[1] > MAX_STRUCT_DEPTH or sum(depth) > MAX_DEPTH:
        raise (
            _malformed("values nested too deeply")
            if reading
            else DBusError(INVALID_ARGS, "D-Bus values nested too deeply")
        )


def marshal(signature: str, values: "tuple[Any, ...] | list[Any]", buf: bytearray | None = None) -> bytes:
    """The little-endian encoding of values (one per complete type of signature),
    aligned as if it started at an 8-byte boundary (where a message body starts);
    appended to buf when given (the alignment is then from buf's start)."""
    types = split_signature(signature)
    if not isinstance(values, (tuple, list)) or len(values) != len(types):
        raise DBusError(INVALID_ARGS, f"D-Bus signature {signature!r} wants {len(types)} values, got {values!r}")
    out = bytearray() if buf is None else buf
    for t, v in zip(types, values):
        _put(out, t, v, (0, 0, 0))
    return bytes(out)


# -- unmarshalling ------------------------------------------------------------------


class _Reader:
    """Reads values from data[pos:end]; offsets count from data's start (8-aligned)."""

    __slots__ = ("data", "pos", "end", "order")

    def __init__(self, data: bytes, pos: int, end: int, order: str) -> None:
        self.data = data
        self.pos = pos
        self.end = end
        self.order = order

    def take(self, n: int) -> bytes:
        pos = self.pos
        if pos + n > self.end:
            raise _malformed(f"truncated: {n} bytes wanted at offset {pos}, {max(self.end - pos, 0)} left")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def align(self, n: int) -> None:
        pad = -self.pos % n
        if pad and any(self.take(pad)):
            raise _malformed(f"non-zero alignment padding before offset {self.pos}")

    def uint(self, size: int) -> int:
        self.align(size)
        return int.from_bytes(self.take(size), self.order)  # type: ignore[arg-type]

    def string(self, length: int) -> str:
        raw = self.take(length + 1)
        if raw[-1] != 0:
            raise _malformed("a string is not NUL-terminated")
        try:
            s = raw[:-1].decode()
        except UnicodeDecodeError:
            raise _malformed("a string is not UTF-8") from None
        if "\0" in s:
            raise _malformed("a string holds a NUL")
        return s

    def signature(self) -> str:
        sig = self.string(self.take(1)[0])
        try:
            split_signature(sig)
        except DBusError as e:
            raise _malformed(e.message) from None
        return sig

    def get(self, t: str, depth: tuple[int, int, int]) -> "Any":
        c = t[0]
        ints = _INTS.get(c)
        if ints is not None:
            align, size, signed = ints
            self.align(align)
            return int.from_bytes(self.take(size), self.order, signed=signed)  # type: ignore[arg-type]
        if c == "b":
            n = self.uint(4)
            if n > 1:
                raise _malformed(f"a boolean is {n}, not 0 or 1")
            return n == 1
        if c == "d":
            import _struct  # only a double needs it

            self.align(8)
            return _struct.unpack("<d" if self.order == "little" else ">d", self.take(8))[0]
        if c == "s" or c == "o":
            s = self.string(self.uint(4))
            if c == "o" and not _valid_path(s):
                raise _malformed(f"invalid object path {s[:80]!r}")
            return s
        if c == "g":
            return self.signature()
        if c == "v":
            sig = self.signature()
            types = split_signature(sig)
            if len(types) != 1:
                raise _malformed(f"a variant's signature {sig!r} is not one complete type")
            inner = (depth[0], depth[1], depth[2] + 1)
            _check_depth(inner, True)
            return Variant(sig, self.get(sig, inner))
        if c == "a":
            return self.array(t, depth)
        if c == "(":
            inner = (depth[0], depth[1] + 1, depth[2])
            _check_depth(inner, True)
            self.align(8)
            return tuple(self.get(m, inner) for m in split_signature(t[1:-1]))
        raise _malformed(f"unexpected type {c!r}")

    def array(self, t: str, depth: tuple[int, int, int]) -> "Any":
        inner = (depth[0] + 1, depth[1], depth[2])
        _check_depth(inner, True)
        n = self.uint(4)
        if n > MAX_ARRAY:
            raise _malformed(f"an array of {n} bytes is over the limit of {MAX_ARRAY}")
        elem = t[1:]
        self.align(_ALIGN[elem[0]])
        end = self.pos + n
        if end > self.end:
            raise _malformed(f"truncated: an array of {n} bytes at offset {self.pos}, {self.end - self.pos} left")
        if elem == "y":
            return self.take(n)
        outer_end, self.end = self.end, end  # an element must not cross the array's end
        try:
            if elem[0] == "{":
                key, value = split_signature(elem[1:-1])
                entry = (inner[0], inner[1] + 1, inner[2])
                _check_depth(entry, True)
                found: dict[Any, Any] = {}
                while self.pos < end:
                    self.align(8)
                    k = self.get(key, entry)
                    found[k] = self.get(value, entry)
                return found
            items = []
            while self.pos < end:
                items.append(self.get(elem, inner))
            return items
        finally:
            self.end = outer_end


def unmarshal(signature: str, data: bytes, order: str = "little") -> tuple:
    """The values encoded in data (all of it) by signature; DBusError if data is not
    exactly that."""
    r = _Reader(bytes(data), 0, len(data), order)
    values = tuple(r.get(t, (0, 0, 0)) for t in split_signature(signature))
    if r.pos != len(data):
        raise _malformed(f"{len(data) - r.pos} bytes left over after the values of {signature!r}")
    return values


# -- messages -----------------------------------------------------------------------


def encode_message(msg: Message) -> bytes:
    """The wire form of msg (little-endian)."""
    body = bytearray()
    marshal(msg.signature, msg.body, body)
    fields = []
    for code, (name, sig) in _FIELDS.items():
        value = getattr(msg, name)
        if value is not None and value != "" or (code == 8 and msg.signature):
            fields.append((code, Variant(sig, value)))
    head = bytearray(b"l")
    head += bytes((msg.type, msg.flags, 1))
    head += len(body).to_bytes(4, "little")
    head += msg.serial.to_bytes(4, "little")
    marshal("a(yv)", (fields,), head)
    _pad(head, 8)
    if len(head) + len(body) > MAX_MESSAGE:
        raise DBusError(INVALID_ARGS, f"D-Bus message of {len(head) + len(body)} bytes is over {MAX_MESSAGE}")
    return bytes(head + body)


def message_length(fixed: bytes) -> int:
    """The whole length of the message whose first 16 bytes are fixed."""
    if len(fixed) < 16:
        raise _malformed("a header shorter than 16 bytes")
    order = _order(fixed[0])
    if fixed[3] != 1:
        raise _malformed(f"protocol version {fixed[3]}, not 1")
    body = int.from_bytes(fixed[4:8], order)  # type: ignore[arg-type]
    fields = int.from_bytes(fixed[12:16], order)  # type: ignore[arg-type]
    if body > MAX_MESSAGE or fields > MAX_ARRAY:
        raise _malformed(f"a message over the limit of {MAX_MESSAGE} bytes")
    total = 16 + fields + (-fields % 8) + body
    if total > MAX_MESSAGE:
        raise _malformed(f"a message of {total} bytes, over the limit of {MAX_MESSAGE}")
    return total


def _order(byte: int) -> str:
    if byte == ord("l"):
        return "little"
    if byte == ord("B"):
        return "big"
    raise _malformed(f"endianness byte {byte!r}")


def decode_message(data: bytes) -> Message:
    """The message data holds (exactly one); DBusError if it is malformed."""
    data = bytes(data)
    total = message_length(data[:16])
    if len(data) != total:
        raise _malformed(f"{len(data)} bytes for a message of {total}")
    order = _order(data[0])
    kind, flags = data[1], data[2]
    if kind not in _REQUIRED:
        raise _malformed(f"message type {kind}")
    body_len = int.from_bytes(data[4:8], order)  # type: ignore[arg-type]
    serial = int.from_bytes(data[8:12], order)  # type: ignore[arg-type]
    if serial == 0:
        raise _malformed("serial 0")
    r = _Reader(data, 12, total - body_len, order)
    msg = Message(kind, serial, flags=flags)
    for code, v in r.array("a(yv)", (0, 0, 0)):
        known = _FIELDS.get(code)
        if known is None:
            continue  # the specification says to ignore unknown fields
        name, sig = known
        if v.signature != sig:
            raise _malformed(f"header field {name} has type {v.signature!r}, not {sig!r}")
        setattr(msg, name, v.value)
    r.align(8)
    if r.pos != total - body_len:
        raise _malformed("header padding")
    for name in _REQUIRED[kind]:
        if getattr(msg, name) is None:
            raise _malformed(f"a message of type {kind} without the {name} header field")
    if body_len and not msg.signature:
        raise _malformed(f"a body of {body_len} bytes without a signature")
    if msg.unix_fds:
        raise _malformed("unix fds were not negotiated")
    r.end = total
    msg.body = tuple(r.get(t, (0, 0, 0)) for t in split_signature(msg.signature))
    if r.pos != total:
        raise _malformed(f"{total - r.pos} bytes left over after a body of {msg.signature!r}")
    return msg


# -- the connection -----------------------------------------------------------------


def system_bus_address() -> str:
    return os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or "unix:path=/run/dbus/system_bus_socket"


def _socket_addresses(address: str) -> list[str | bytes]:
    """Where to connect for a D-Bus address ("unix:path=...;unix:abstract=...") or a
    plain socket path; abstract names as bytes with their leading NUL."""
    if address.startswith("/"):
        return [address]
    found: list[str | bytes] = []
    for one in address.split(";"):
        if not one:
            continue
        transport, _, rest = one.partition(":")
        keys = {}
        for pair in rest.split(","):
            k, eq, v = pair.partition("=")
            if eq:
                keys[k] = _unescape(v, address)
        if transport == "unix" and "path" in keys:
            found.append(keys["path"])
        elif transport == "unix" and "abstract" in keys:
            found.append(b"\0" + keys["abstract"].encode())
    if not found:
        raise DBusError(BAD_ADDRESS, f"no unix:path= or unix:abstract= in D-Bus address {address!r}")
    return found


def _unescape(value: str, address: str) -> str:
    if "%" not in value:
        return value
    out = bytearray()
    i = 0
    raw = value.encode()
    while i < len(raw):
        if raw[i] == ord("%"):
            try:
                out.append(int(raw[i + 1 : i + 3], 16))
            except ValueError:
                raise DBusError(BAD_ADDRESS, f"bad %-escape in D-Bus address {address!r}") from None
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="surrogateescape")


class Connection:
    """One connection to a bus (bus=True: authenticated, then Hello) or to a peer such
    as systemd's private socket (bus=False).  Not thread-safe; close it in a finally."""

    def __init__(self, sock: "_socket.socket", address: str, bus: bool) -> None:
        self._sock: _socket.socket | None = sock
        self.address = address
        self.bus = bus
        self.unique_name: str | None = None
        self._serial = 0
        self._buf = bytearray()
        self._queued: list[Message] = []

    @classmethod
    def open(cls, address: str, bus: bool = True, timeout: float = 25.0) -> "Connection":
        """Connect, authenticate (EXTERNAL, our uid) and, on a bus, say Hello; each
        step within timeout (TimeoutError)."""
        error: OSError | None = None
        for target in _socket_addresses(address):
            sock = unix.socket()
            try:
                sock.settimeout(timeout)  # a full listen backlog would block connect
                sock.connect(target)
            except OSError as e:
                sock.close()
                error = e
                continue
            conn = cls(sock, address, bus)
            try:
                conn._authenticate(timeout)
                if bus:
                    (conn.unique_name,) = conn.call(BUS_NAME, BUS_PATH, BUS_NAME, "Hello", timeout=timeout)
            except BaseException:
                conn.close()
                raise
            return conn
        assert error is not None
        raise DBusError(NO_SERVER, f"connect to D-Bus at {address}: {error.strerror or error}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _authenticate(self, timeout: float) -> None:
        # BEGIN goes with AUTH, before the OK, as sd-bus and libdbus clients send it: sent
        # after the OK, it could reach systemd's private socket in one read with the first
        # method call, which then went unanswered (about 1 connection in 100 in the
        # systemd guest); our first message now follows the OK, never BEGIN's packet.
        uid = str(os.geteuid()).encode().hex()
        self._send(b"\0AUTH EXTERNAL " + uid.encode() + b"\r\nBEGIN\r\n")
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self._buf:
            if len(self._buf) > MAX_AUTH_LINE:
                raise DBusError(AUTH_FAILED, f"D-Bus at {self.address}: an over-long authentication reply")
            self._recv(deadline, "authentication")
        line, _, rest = bytes(self._buf).partition(b"\r\n")
        self._buf[:] = rest
        if not line.startswith(b"OK "):
            shown = line[:200].decode(errors="replace")
            raise DBusError(AUTH_FAILED, f"D-Bus at {self.address} refused EXTERNAL authentication: {shown!r}")

    def _send(self, data: bytes) -> None:
        if self._sock is None:
            raise DBusError(DISCONNECTED, f"D-Bus connection to {self.address} is closed")
        try:
            self._sock.settimeout(None)
            self._sock.sendall(data)
        except OSError as e:
            raise DBusError(DISCONNECTED, f"write to D-Bus at {self.address}: {e.strerror or e}") from None

    def _recv(self, deadline: float, waiting_for: str) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"D-Bus at {self.address}: no {waiting_for} in time")
        if self._sock is None:
            raise DBusError(DISCONNECTED, f"D-Bus connection to {self.address} is closed")
        try:
            self._sock.settimeout(left)
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise TimeoutError(f"D-Bus at {self.address}: no {waiting_for} in time") from None
        except OSError as e:
            raise DBusError(DISCONNECTED, f"read from D-Bus at {self.address}: {e.strerror or e}") from None
        if not chunk:
            raise DBusError(DISCONNECTED, f"D-Bus at {self.address} closed the connection")
        self._buf += chunk

    def send(self, msg: Message) -> int:
        """Send msg under the next serial (set on msg) and return that serial."""
        self._serial = self._serial % 0xFFFFFFFF + 1
        msg.serial = self._serial
        self._send(encode_message(msg))
        return msg.serial

    def receive(self, timeout: float, waiting_for: str = "message") -> Message:
        """The next message from the peer; TimeoutError if none comes in time."""
        deadline = time.monotonic() + timeout
        while len(self._buf) < 16:
            self._recv(deadline, waiting_for)
        total = message_length(bytes(self._buf[:16]))
        while len(self._buf) < total:
            self._recv(deadline, waiting_for)
        data = bytes(self._buf[:total])
        del self._buf[:total]
        return decode_message(data)

    def call(
        self,
        destination: str | None,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: tuple = (),
        timeout: float = 25.0,
    ) -> tuple:
        """Call a method and return its reply's body; DBusError on an error reply,
        TimeoutError when none comes in time.  Signals that arrive meanwhile are kept
        for wait_signal."""
        call = Message(
            METHOD_CALL,
            path=path,
            interface=interface,
            member=member,
            destination=destination,
            signature=signature,
            body=body,
        )
        serial = self.send(call)
        deadline = time.monotonic() + timeout
        what = f"reply to {interface}.{member}"
        while True:
            msg = self.receive(max(deadline - time.monotonic(), 0), what)
            if msg.type in (METHOD_RETURN, ERROR) and msg.reply_serial == serial:
                if msg.type == ERROR:
                    text = msg.body[0] if msg.body and isinstance(msg.body[0], str) else ""
                    raise DBusError(msg.error_name or "", text)
                return msg.body
            self._other(msg)

    def _other(self, msg: Message) -> None:
        """A message that is not what we wait for: a signal is queued; a method call
        gets an error reply (we serve nothing); a stray reply is dropped."""
        if msg.type == SIGNAL:
            self._queued.append(msg)
            if len(self._queued) > MAX_QUEUED:
                del self._queued[0]
        elif msg.type == METHOD_CALL and not msg.flags & NO_REPLY_EXPECTED:
            self.send(
                Message(
                    ERROR,
                    reply_serial=msg.serial,
                    destination=msg.sender,
                    error_name=UNKNOWN_METHOD,
                    signature="s",
                    body=(f"{msg.interface}.{msg.member} is not served here",),
                )
            )

    def add_match(self, rule: str) -> None:
        """Ask the bus to route the signals rule matches to us (a peer sends its own)."""
        if self.bus:
            self.call(BUS_NAME, BUS_PATH, BUS_NAME, "AddMatch", "s", (rule,))

    def wait_signal(self, accept: "Callable[[Message], bool]", timeout: float) -> Message:
        """The first signal, queued or arriving within timeout, that accept takes;
        the others stay queued."""
        for i, msg in enumerate(self._queued):
            if accept(msg):
                del self._queued[i]
                return msg
        deadline = time.monotonic() + timeout
        while True:
            msg = self.receive(max(deadline - time.monotonic(), 0), "signal")
            if msg.type == SIGNAL and accept(msg):
                return msg
            self._other(msg)
