"""pyrunc/linux/dbus.py against a real message bus: a private dbus-daemon started here
(its own config, a socket in tmp_path; ended by its pid), never the host's system bus
or systemd.  Signals come from other implementations' marshallers: dbus-send (libdbus)
and busctl (sd-bus, the one systemd itself uses, pointed at this private bus only);
dbus-daemon validates every message it routes, so our calls and replies pass libdbus's
checks too."""

import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from pyrunc.linux import dbus
from pyrunc.linux.dbus import Connection, DBusError, Message, Variant

pytestmark = pytest.mark.skipif(shutil.which("dbus-daemon") is None, reason="dbus-daemon is not installed")

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""
BUS = ("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus")
START_TRANSIENT_UNIT = "ssa(sv)a(sa(sv))"


@pytest.fixture
def bus_address(tmp_path):
    """A private dbus-daemon's address; the daemon is ended by its pid afterwards."""
    conf = tmp_path / "pyrunc-test-dbus.conf"
    conf.write_text(CONFIG.format(path=tmp_path / "bus"))
    out = subprocess.run(
        ["dbus-daemon", f"--config-file={conf}", "--print-address", "--fork", "--print-pid", "--nosyslog"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    address, pid = out[0], int(out[1])
    try:
        yield address
    finally:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):  # not our child (it forked): wait for it to go
            if not running(pid):
                break
            time.sleep(0.05)


def running(pid):
    """pid is a live process (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def conn(bus_address):
    c = Connection.open(bus_address)
    yield c
    c.close()


def test_hello_and_the_bus_methods(conn):
    assert conn.unique_name.startswith(":")
    (names,) = conn.call(*BUS, "ListNames")
    assert "org.freedesktop.DBus" in names and conn.unique_name in names
    assert conn.call(*BUS, "GetNameOwner", "s", (conn.unique_name,)) == (conn.unique_name,)
    ((bus_id,),) = [conn.call(*BUS, "GetId")]
    assert len(bus_id) == 32 and int(bus_id, 16) >= 0


def test_an_error_reply_is_a_dbus_error(conn):
    with pytest.raises(DBusError) as e:
        conn.call(*BUS, "GetNameOwner", "s", ("pyrunc.test.none",))
    assert e.value.name == "org.freedesktop.DBus.Error.NameHasNoOwner"
    assert "pyrunc.test.none" in e.value.message
    assert str(e.value) == f"{e.value.name}: {e.value.message}"
    with pytest.raises(DBusError) as e:
        conn.call(*BUS, "NoSuchMethod")
    assert e.value.name == "org.freedesktop.DBus.Error.UnknownMethod"


def test_a_call_nobody_answers_times_out(conn, bus_address):
    silent = Connection.open(bus_address)  # never reads: the call waits for nothing
    try:
        with pytest.raises(TimeoutError) as e:
            conn.call(silent.unique_name, "/p", "pyrunc.Test", "Silent", timeout=0.3)
        assert "pyrunc.Test.Silent" in str(e.value)
    finally:
        silent.close()


def test_signals_from_libdbus_are_decoded(conn, bus_address):
    conn.add_match("type='signal',interface='pyrunc.Test'")
    args = [
        "string:héllo wörld",
        "array:string:a,b,c",
        "dict:string:int32:k,1,j,-2",
        "variant:uint64:18446744073709551615",
        "variant:objpath:/a/b_c",
        "dict:uint32:double:7,0.5",
        "int16:-3",
        "uint16:65535",
        "byte:255",
        "boolean:true",
        "double:2.5",
        "int64:-9223372036854775808",
        "objpath:/org/freedesktop/systemd1/job/7",
        "array:byte:1,2,3",
        "array:int64:-1,2",
    ]
    emit = ["dbus-send", f"--bus={bus_address}", "--type=signal", "/pyrunc/test"]
    subprocess.run([*emit, "pyrunc.Test.First", "string:first"], check=True, timeout=30)
    subprocess.run([*emit, "pyrunc.Test.Many", *args], check=True, timeout=30)
    got = conn.wait_signal(lambda m: m.member == "Many", timeout=10)
    assert (got.path, got.interface, got.signature) == ("/pyrunc/test", "pyrunc.Test", "sasa{si}vva{ud}nqybdxoayax")
    assert got.body == (
        "héllo wörld",
        ["a", "b", "c"],
        {"k": 1, "j": -2},
        Variant("t", 2**64 - 1),
        Variant("o", "/a/b_c"),
        {7: 0.5},
        -3,
        65535,
        255,
        True,
        2.5,
        -(2**63),
        "/org/freedesktop/systemd1/job/7",
        b"\x01\x02\x03",
        [-1, 2],
    )
    # the signal that came first, not accepted then, was kept
    first = conn.wait_signal(lambda m: m.member == "First", timeout=0)
    assert first.body == ("first",)


@pytest.mark.skipif(shutil.which("busctl") is None, reason="busctl (systemd's sd-bus) is not installed")
def test_structs_and_variants_from_sd_bus_are_decoded(conn, bus_address):
    """dbus-send cannot write a struct, nor a container in a variant or a dict's value:
    busctl (sd-bus, as systemd marshals) can."""
    conn.add_match("type='signal',interface='pyrunc.Test'")
    # what StartTransientUnit's properties and JobRemoved's arguments look like
    argv = ["busctl", f"--address={bus_address}", "--", "emit", "/pyrunc/test", "pyrunc.Test", "Props"]
    argv += ["a(sv)(uos)a{sv}a(sa(sv))v"]
    argv += ["3", "PIDs", "au", "2", "1", "2", "Delegate", "b", "true", "DeviceAllow", "a(ss)", "1", "/dev/null", "rwm"]
    argv += ["7", "/org/freedesktop/systemd1/job/7", "done"]
    argv += ["1", "MemoryMax", "t", "1073741824"]
    argv += ["1", "x.slice", "1", "CPUWeight", "t", "100"]
    argv += ["(xd)", "-1", "0.5"]
    subprocess.run(argv, check=True, timeout=30)
    got = conn.wait_signal(lambda m: m.member == "Props", timeout=10)
    assert got.body == (
        [
            ("PIDs", Variant("au", [1, 2])),
            ("Delegate", Variant("b", True)),
            ("DeviceAllow", Variant("a(ss)", [("/dev/null", "rwm")])),
        ],
        (7, "/org/freedesktop/systemd1/job/7", "done"),
        {"MemoryMax": Variant("t", 1 << 30)},
        [("x.slice", [("CPUWeight", Variant("t", 100))])],
        Variant("(xd)", (-1, 0.5)),
    )


def test_signals_arriving_during_a_call_are_kept(conn, bus_address):
    conn.add_match("type='signal',interface='pyrunc.Test'")
    other = Connection.open(bus_address)
    try:
        for n in range(3):
            other.send(
                Message(dbus.SIGNAL, path="/p", interface="pyrunc.Test", member="Tick", signature="u", body=(n,))
            )
        # the bus handles one connection's messages in order: once this is answered,
        # the signals are on their way to conn, ahead of conn's next reply
        other.call(*BUS, "GetId")
        conn.call(*BUS, "GetId")
    finally:
        other.close()
    ticks = [conn.wait_signal(lambda m: m.member == "Tick", timeout=0).body for _ in range(3)]
    assert ticks == [(0,), (1,), (2,)]


def answer_one_call(responder, reply_with):
    """The smallest responder: wait for one method call, answer it with reply_with(call)."""
    while True:
        call = responder.receive(timeout=10)
        if call.type == dbus.METHOD_CALL:
            break
    kind, error_name, signature, body = reply_with(call)
    responder.send(
        Message(
            kind,
            reply_serial=call.serial,
            destination=call.sender,
            error_name=error_name,
            signature=signature,
            body=body,
        )
    )
    return call


def serve_in_thread(responder, reply_with):
    seen = []
    t = threading.Thread(target=lambda: seen.append(answer_one_call(responder, reply_with)), daemon=True)
    t.start()
    return t, seen


def test_a_call_with_start_transient_units_signature_between_two_connections(conn, bus_address):
    responder = Connection.open(bus_address)
    body = (
        "pyrunc-test-dbus-1.scope",
        "fail",
        [
            ("Description", Variant("s", "pyrunc-test-dbus")),
            ("PIDs", Variant("au", [1, 4294967295])),
            ("Delegate", Variant("b", True)),
            ("MemoryMax", Variant("t", 2**64 - 1)),
            ("CPUQuotaPerSecUSec", Variant("t", 50000)),
            ("AllowedCPUs", Variant("ay", b"\x0f")),
            ("DeviceAllow", Variant("a(ss)", [("/dev/null", "rwm"), ("char-pts", "rw")])),
            ("Nested", Variant("v", Variant("a{sv}", {"x": Variant("d", -0.25)}))),
        ],
        [("pyrunc-test-dbus-aux.service", [("Description", Variant("s", "aux"))])],
    )
    try:
        t, seen = serve_in_thread(
            responder, lambda c: (dbus.METHOD_RETURN, None, "o" + c.signature, ("/job/1", *c.body))
        )
        reply = conn.call(
            responder.unique_name,
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            START_TRANSIENT_UNIT,
            body,
        )
        t.join(10)
    finally:
        responder.close()
    (call,) = seen
    assert (call.member, call.signature, call.body, call.sender) == (
        "StartTransientUnit",
        START_TRANSIENT_UNIT,
        body,
        conn.unique_name,
    )
    assert reply == ("/job/1", *body)


def test_an_error_reply_from_a_peer(conn, bus_address):
    responder = Connection.open(bus_address)
    no_such = ("org.freedesktop.systemd1.NoSuchUnit", "Unit x.scope not loaded.")
    try:
        t, _ = serve_in_thread(responder, lambda c: (dbus.ERROR, no_such[0], "s", (no_such[1],)))
        with pytest.raises(DBusError) as e:
            conn.call(responder.unique_name, "/", "org.freedesktop.systemd1.Manager", "StopUnit", "ss", ("x", "fail"))
        t.join(10)
    finally:
        responder.close()
    assert (e.value.name, e.value.message) == no_such
    assert str(e.value) == "org.freedesktop.systemd1.NoSuchUnit: Unit x.scope not loaded."


@pytest.mark.skipif(shutil.which("busctl") is None, reason="busctl (systemd's sd-bus) is not installed")
def test_sd_bus_reads_our_reply(bus_address):
    """busctl calls our responder and prints the reply as sd-bus decoded it."""
    responder = Connection.open(bus_address)
    reply = ("o", "/org/freedesktop/systemd1/job/7")
    props = [("PIDs", Variant("au", [1, 2])), ("Delegate", Variant("b", True)), ("Q", Variant("(sx)", ("a", -1)))]
    try:
        t, seen = serve_in_thread(responder, lambda c: (dbus.METHOD_RETURN, None, "oa(sv)", (reply[1], props)))
        out = subprocess.run(
            ["busctl", f"--address={bus_address}", "call", responder.unique_name, "/p", "pyrunc.Test", "M"]
            + ["sa(sv)", "x", "1", "PIDs", "au", "1", "5"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        t.join(10)
    finally:
        responder.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        'oa(sv) "/org/freedesktop/systemd1/job/7" 3 "PIDs" au 2 1 2 "Delegate" b true "Q" (sx) "a" -1'
    )
    (call,) = seen
    assert call.body == ("x", [("PIDs", Variant("au", [5]))])


def test_a_peer_to_peer_connection_says_no_hello(bus_address):
    """bus=False (as on systemd's private socket) skips Hello; on a bus the daemon then
    refuses anything else, which shows no Hello was sent."""
    peer = Connection.open(bus_address, bus=False)
    try:
        assert peer.unique_name is None
        peer.add_match("type='signal'")  # a no-op without a bus
        with pytest.raises(DBusError):
            peer.call(*BUS, "GetId", timeout=10)
    finally:
        peer.close()
