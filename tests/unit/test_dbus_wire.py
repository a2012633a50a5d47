"""pyrunc/linux/dbus.py's wire format against byte strings worked out by hand from the
D-Bus specification ("Marshaling (Wire Format)", "Message Format"), round trips over
generated signatures and values, and hostile bytes, each giving one DBusError."""

import os
import subprocess
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc import launcher
from pyrunc.linux import dbus, unix
from pyrunc.linux.dbus import DBusError, Message, Variant, decode_message, encode_message, marshal, unmarshal
from tests.unit.import_probe import SLOW


def h(text):
    """Bytes from hex written with spaces, as the tables below are."""
    return bytes.fromhex(text.replace(" ", ""))


# Each case: signature, values, the bytes, starting at offset 0 of a body (8-aligned).
# A leading byte `01` shifts what follows off its alignment so the padding shows.
BY_HAND = [
    ("y", (0x12,), "12"),
    ("yb", (1, True), "01 000000 01000000"),
    ("yb", (1, False), "01 000000 00000000"),
    ("yn", (1, -2), "01 00 feff"),
    ("yq", (1, 0x1234), "01 00 3412"),
    ("yi", (1, -1), "01 000000 ffffffff"),
    ("yu", (1, 0x01020304), "01 000000 04030201"),
    ("yx", (1, -2), "01 00000000000000 feffffffffffffff"),
    ("yt", (1, 0x0102030405060708), "01 00000000000000 0807060504030201"),
    ("yd", (1, 1.5), "01 00000000000000 000000000000f83f"),  # 1.5 = 0x3ff8000000000000
    ("yh", (1, 3), "01 000000 03000000"),
    ("ys", (1, "abc"), "01 000000 03000000 616263 00"),
    ("ys", (1, ""), "01 000000 00000000 00"),
    ("ys", (1, "é"), "01 000000 02000000 c3a9 00"),  # the length counts UTF-8 bytes
    ("yo", (1, "/a_1"), "01 000000 04000000 2f615f31 00"),
    ("yg", (1, "as"), "01 02 6173 00"),  # a signature: one length byte, no alignment
    ("yay", (1, b"\x05\x06"), "01 000000 02000000 0506"),
    # as: the length (15) counts the elements and the padding between them, not the
    # padding after the length
    ("yas", (1, ["a", "bc"]), "01 000000 0f000000 01000000 6100 0000 02000000 626300"),
    # an empty array of 8-aligned elements still pads to 8 after its length
    ("ax", ([],), "00000000 00000000"),
    ("yax", (1, [7]), "01 000000 08000000 0700000000000000"),
    ("y(yu)", (1, (2, 5)), "01 00000000000000 02 000000 05000000"),
    ("a{sv}", ({"k": Variant("u", 7)},), "10000000 00000000 01000000 6b00 017500 000000 07000000"),
    ("yv", (1, Variant("ay", b"xy")), "01 02617900 000000 02000000 7879"),
    ("v", (Variant("(sb)", ("x", True)),), "04 28736229 00 0000 01000000 7800 0000 01000000"),
]


@pytest.mark.parametrize("sig,values,wire", BY_HAND, ids=[f"{c[0]}:{c[1]!r}" for c in BY_HAND])
def test_marshalling_matches_the_specification(sig, values, wire):
    assert marshal(sig, values) == h(wire)
    assert unmarshal(sig, h(wire)) == values


def test_big_endian_is_read_too():
    # a message bus forwards a big-endian peer's message as it came
    assert unmarshal("yqs", h("01 00 1234 00000003 616263 00"), "big") == (1, 0x1234, "abc")


def test_a_method_call_header_by_hand():
    msg = Message(dbus.METHOD_CALL, 1, path="/", member="M")
    wire = h(
        "6c 01 00 01"  # little-endian, METHOD_CALL, no flags, version 1
        "00000000 01000000"  # body length 0, serial 1
        "1a000000"  # header fields: 26 bytes
        "01 016f00 01000000 2f00"  # (PATH, <o "/">)
        "000000000000"  # to the next struct's 8-byte boundary
        "03 017300 01000000 4d00"  # (MEMBER, <s "M">)
        "000000000000"  # the header ends on an 8-byte boundary
    )
    assert encode_message(msg) == wire
    got = decode_message(wire)
    assert (got.type, got.serial, got.path, got.member, got.body) == (dbus.METHOD_CALL, 1, "/", "M", ())


def test_start_transient_unit_arguments_round_trip():
    sig = "ssa(sv)a(sa(sv))"
    body = (
        "pyrunc-x.scope",
        "fail",
        [
            ("PIDs", Variant("au", [1234])),
            ("Delegate", Variant("b", True)),
            ("MemoryMax", Variant("t", 1 << 30)),
            ("DeviceAllow", Variant("a(ss)", [("/dev/null", "rwm")])),
        ],
        [],
    )
    msg = Message(dbus.METHOD_CALL, 9, path="/org/freedesktop/systemd1", member="StartTransientUnit", signature=sig)
    msg.body = body
    got = decode_message(encode_message(msg))
    assert got.signature == sig and got.body == body


# -- round trips over generated types ---------------------------------------------------

BASIC = "ybnqiuxtdsogh"
basic_types = st.sampled_from(list(BASIC))
complete_types = st.recursive(
    basic_types | st.just("v"),
    lambda inner: st.one_of(
        inner.map(lambda t: "a" + t),
        st.lists(inner, min_size=1, max_size=3).map(lambda ts: "(" + "".join(ts) + ")"),
        st.tuples(basic_types, inner).map(lambda kv: "a{" + kv[0] + kv[1] + "}"),
    ),
    max_leaves=6,
)
INT_RANGES = {
    "y": (0, 255),
    "n": (-(2**15), 2**15 - 1),
    "q": (0, 2**16 - 1),
    "i": (-(2**31), 2**31 - 1),
    "u": (0, 2**32 - 1),
    "h": (0, 2**32 - 1),
    "x": (-(2**63), 2**63 - 1),
    "t": (0, 2**64 - 1),
}
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=8)
paths = st.lists(st.text("abcXYZ019_", min_size=1, max_size=4), max_size=3).map(lambda p: "/" + "/".join(p))


def values_of(t):
    c = t[0]
    if c in INT_RANGES:
        return st.integers(*INT_RANGES[c])
    if c == "b":
        return st.booleans()
    if c == "d":
        return st.floats(allow_nan=False)
    if c == "s":
        return texts
    if c == "o":
        return paths
    if c == "g":
        return complete_types.map(lambda s: s[:255])
    if c == "v":
        return complete_types.flatmap(lambda s: values_of(s).map(lambda v: Variant(s, v)))
    if t == "ay":
        return st.binary(max_size=8)
    if t.startswith("a{"):
        key, value = dbus.split_signature(t[2:-1])
        return st.dictionaries(values_of(key), values_of(value), max_size=3)
    if c == "a":
        return st.lists(values_of(t[1:]), max_size=3)
    return st.tuples(*[values_of(m) for m in dbus.split_signature(t[1:-1])])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_values_round_trip(data):
    types = data.draw(st.lists(complete_types, min_size=1, max_size=4))
    sig = "".join(types)
    values = tuple(data.draw(values_of(t)) for t in types)
    wire = marshal(sig, values)
    assert unmarshal(sig, wire) == values
    # and inside a message, after a header of any length
    msg = Message(dbus.SIGNAL, 5, path="/p", interface="a.b", member="C", signature=sig, body=values)
    assert decode_message(encode_message(msg)).body == values


# -- hostile bytes ----------------------------------------------------------------------


def one_clean_error(call, *args):
    """call(*args) fails with exactly one DBusError whose text is one line."""
    with pytest.raises(DBusError) as e:
        call(*args)
    text = str(e.value)
    assert text and "\n" not in text
    return text


def sample_message():
    msg = Message(
        dbus.SIGNAL,
        3,
        path="/org/freedesktop/systemd1",
        interface="org.freedesktop.systemd1.Manager",
        member="JobRemoved",
        signature="uoss",
        body=(7, "/org/freedesktop/systemd1/job/7", "pyrunc-x.scope", "done"),
    )
    return encode_message(msg)


def test_every_truncation_of_a_message_is_one_error():
    wire = sample_message()
    for n in range(len(wire)):
        one_clean_error(decode_message, wire[:n])


def test_every_truncation_of_a_body_is_one_error():
    wire = marshal("sa{sv}(ux)", ("a", {"k": Variant("as", ["x", "y"])}, (1, 2)))
    for n in range(len(wire)):
        one_clean_error(unmarshal, "sa{sv}(ux)", wire[:n])


@pytest.mark.parametrize(
    "sig,wire,why",
    [
        ("ay", "01000004", "over the limit"),  # 64 MiB + 1 of array
        ("s", "ffffffff", "truncated"),
        ("ay", "05000000 0102", "truncated"),
        ("b", "02000000", "boolean"),
        ("s", "01000000 6101", "NUL-terminated"),
        ("s", "02000000 ff61 00", "UTF-8"),
        ("s", "02000000 0061 00", "holds a NUL"),
        ("o", "02000000 2f2f 00", "object path"),
        ("g", "02 617b 00", "signature"),
        ("v", "02 7979 00 0101", "one complete type"),
        ("yu", "01 010000 05000000", "padding"),
        ("au", "06000000 01000000 0200", "truncated"),  # an element crosses the array's end
        ("s", "01000000 6100 ff", "left over"),
    ],
)
def test_malformed_values_are_one_error(sig, wire, why):
    assert why in one_clean_error(unmarshal, sig, h(wire))


def test_over_deep_values_are_one_error():
    # 70 variants nested: past the 64 containers the specification allows
    wire = b"\x01v\x00" * 70 + b"\x01y\x00\x05"
    assert "nested too deeply" in one_clean_error(unmarshal, "v", wire)
    # 33 arrays in a signature
    assert "too deeply" in one_clean_error(unmarshal, "a" * 33 + "y", b"\0\0\0\0")
    # 33 structs in a variant's signature
    inner = "(" * 33 + "y" + ")" * 33
    wire = bytes([len(inner)]) + inner.encode() + b"\0"
    assert "too deeply" in one_clean_error(unmarshal, "v", wire)
    # nested variants on the way out too
    v = Variant("y", 1)
    for _ in range(70):
        v = Variant("v", v)
    assert "too deeply" in one_clean_error(marshal, "v", (v,))


def test_an_over_long_message_is_refused_from_its_first_16_bytes():
    fixed = h("6c 01 00 01") + (1 << 28).to_bytes(4, "little") + h("01000000 00000000")
    assert "over the limit" in one_clean_error(dbus.message_length, fixed)
    fixed = h("6c 01 00 01 00000000 01000000") + (1 << 27).to_bytes(4, "little")
    assert "over the limit" in one_clean_error(dbus.message_length, fixed)
    assert "endianness" in one_clean_error(dbus.message_length, h("58 01 00 01 00000000 01000000 00000000"))
    assert "version" in one_clean_error(dbus.message_length, h("6c 01 00 02 00000000 01000000 00000000"))


def test_header_fields_are_checked():
    # a signal without its member, an unknown type, serial 0, a field of the wrong type
    wire = bytearray(encode_message(Message(dbus.SIGNAL, 1, path="/", interface="a.b", member="C")))
    no_member = encode_message(Message(dbus.SIGNAL, 1, path="/", interface="a.b"))
    assert "member" in one_clean_error(decode_message, no_member)
    bad = bytearray(wire)
    bad[1] = 9
    assert "message type" in one_clean_error(decode_message, bytes(bad))
    bad = bytearray(wire)
    bad[8:12] = bytes(4)
    assert "serial 0" in one_clean_error(decode_message, bytes(bad))
    bad = bytearray(wire)
    bad[17:20] = b"\x01s\x00"  # PATH given as a string
    assert "type 's'" in one_clean_error(decode_message, bytes(bad))


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_damaged_messages_never_raise_anything_but_dbus_error(data):
    wire = bytearray(sample_message())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at] = data.draw(st.integers(0, 255))
    try:
        decode_message(bytes(wire))
    except DBusError as e:
        assert "\n" not in str(e)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise_anything_but_dbus_error(wire):
    try:
        decode_message(wire)
    except DBusError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize(
    "sig,values,why",
    [
        ("s", ("a\0b",), "NUL"),
        ("o", ("a/b",), "object path"),
        ("y", (256,), "out of range"),
        ("d", (10**400,), "out of range"),
        ("u", (-1,), "out of range"),
        ("b", (1,), "bool"),
        ("s", (1,), "str"),
        ("(su)", (("a",),), "2 fields"),
        ("v", ("x",), "Variant"),
        ("v", (Variant("ss", ("a", "b")),), "one complete type"),
        ("a{sv}", ([],), "dict"),
        ("a{vs}", ({},), "basic type"),
        ("ss", ("a",), "2 values"),
        ("()", ((),), "empty struct"),
    ],
)
def test_bad_values_are_refused_when_marshalled(sig, values, why):
    assert why in one_clean_error(marshal, sig, values)


# -- a connection to a hostile peer (a real socket, a canned peer) ---------------------


def serve_once(path, replies, linger=True):
    """A peer on a unix socket at path that answers each read with the next of
    replies, then reads until the client hangs up (linger) or once more and hangs up."""
    listener = unix.socket()
    listener.bind(path)
    listener.listen(1)

    def run():
        conn = unix.accept(listener)
        try:
            for reply in replies:
                conn.recv(4096)
                conn.sendall(reply)
            while conn.recv(4096) and linger:
                pass
        finally:
            conn.close()
            listener.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_refused_authentication_is_one_error(tmp_path):
    path = str(tmp_path / "peer")
    t = serve_once(path, [b"REJECTED EXTERNAL\r\n"])
    assert "refused EXTERNAL" in one_clean_error(dbus.Connection.open, path, False)
    t.join()


def test_authentication_sends_our_uid_in_hex_and_begin_before_the_ok(tmp_path):
    """AUTH and BEGIN in one write, as sd-bus and libdbus clients send them; the first
    message only once the OK is read, so it never shares a packet with BEGIN (systemd's
    private socket then left the call unanswered, about 1 connection in 100)."""
    path = str(tmp_path / "peer")
    listener = unix.socket()
    listener.bind(path)
    listener.listen(1)
    got = []

    def run():
        conn = unix.accept(listener)
        got.append(conn.recv(4096))
        conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
        got.append(conn.recv(4096))
        conn.close()
        listener.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    conn = dbus.Connection.open(f"unix:path={path}", bus=False)
    conn.send(dbus.Message(dbus.METHOD_CALL, path="/", interface="x.y", member="M"))
    t.join()
    conn.close()
    uid = str(os.geteuid()).encode().hex().encode()
    assert got[0] == b"\0AUTH EXTERNAL " + uid + b"\r\nBEGIN\r\n"
    assert got[1][:1] == b"l" and b"BEGIN" not in got[1]  # the method call alone


def test_a_peer_announcing_a_huge_message_is_one_error(tmp_path):
    path = str(tmp_path / "peer")
    huge = h("6c 02 00 01") + (1 << 28).to_bytes(4, "little") + h("01000000 00000000")
    t = serve_once(path, [b"OK 0123456789abcdef0123456789abcdef\r\n", huge])
    conn = dbus.Connection.open(path, bus=False)
    try:
        assert "over the limit" in one_clean_error(conn.call, "x.y", "/", "x.y", "M")
    finally:
        conn.close()
    t.join()


def test_a_peer_that_hangs_up_is_one_error(tmp_path):
    path = str(tmp_path / "peer")
    t = serve_once(path, [b"OK 0123456789abcdef0123456789abcdef\r\n"], linger=False)
    conn = dbus.Connection.open(path, bus=False)
    try:
        # it hangs up before or after our call is written: a closed connection, or a broken pipe
        assert one_clean_error(conn.call, "x.y", "/", "x.y", "M").startswith(dbus.DISCONNECTED)
    finally:
        conn.close()
    t.join()


def test_nothing_listening_is_one_error(tmp_path):
    text = one_clean_error(dbus.Connection.open, f"unix:path={tmp_path}/none;unix:path={tmp_path}/nor")
    assert text.startswith("org.freedesktop.DBus.Error.NoServer: connect to D-Bus at unix:path=")


@pytest.mark.parametrize(
    "address,want",
    [
        ("/run/x", ["/run/x"]),
        ("unix:path=/run/dbus/system_bus_socket", ["/run/dbus/system_bus_socket"]),
        ("unix:path=/a%20b,guid=00", ["/a b"]),
        ("tcp:host=x;unix:abstract=name", [b"\0name"]),
    ],
)
def test_addresses(address, want):
    assert dbus._socket_addresses(address) == want


def test_an_address_without_a_unix_socket_is_one_error():
    assert "no unix:path=" in one_clean_error(dbus._socket_addresses, "tcp:host=localhost,port=1")


def test_system_bus_address(monkeypatch):
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)
    assert dbus.system_bus_address() == "unix:path=/run/dbus/system_bus_socket"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/x")
    assert dbus.system_bus_address() == "unix:path=/x"


def test_a_peer_that_never_answers_times_out(tmp_path):
    path = str(tmp_path / "peer")
    listener = unix.socket()  # listens, never accepts: the connection waits in its backlog
    listener.bind(path)
    listener.listen(1)
    try:
        with pytest.raises(TimeoutError) as e:
            dbus.Connection.open(path, bus=False, timeout=0.2)
        assert "authentication" in str(e.value)
    finally:
        listener.close()


def test_the_client_is_cheap_to_import():
    """It is imported on every create with --systemd-cgroup: os, time, _socket through
    pyrunc.linux.unix, and nothing of the SLOW list; _struct only once a double is met."""
    probe = (
        f"import sys; sys.path += {launcher.import_path()!r}; before = set(sys.modules)\n"
        "from pyrunc.linux import dbus\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
        "dbus.marshal('d', (1.0,))\n"
        "print(' '.join(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    first, then = (set(line.split()) for line in out.stdout.splitlines())
    ours = {"pyrunc", "pyrunc.linux", "pyrunc.linux.unix", "pyrunc.linux.dbus"}
    stdlib = {"os", "os.path", "posixpath", "genericpath", "stat", "_stat", "_collections_abc", "_socket", "time"}
    assert first - stdlib == ours and not first & SLOW, sorted(first)
    assert then - first == {"_struct"}
