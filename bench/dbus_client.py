"""The D-Bus client's costs (docs/cgroups.md, "D-Bus client"): pyrunc/linux/dbus.py
beside jeepney (and dbus-fast's import) when a path to them is given; neither is a
dependency of pyrunc.

    .venv/bin/python bench/dbus_client.py [--others SITE_PACKAGES] [--runs N]

1. Import: `python -X importtime -I -S`, the median over runs of what the import adds,
   cold (from a bare interpreter) and on top of the modules every pyrunc command
   already has (tests/unit/import_probe.py's LEAN).
2. Round trip, against a private dbus-daemon started here (its own config and socket in
   a temp dir, ended by its pid): opening a connection (connect, AUTH EXTERNAL, Hello)
   and one method call (org.freedesktop.DBus.GetId), medians.  Each client runs in an
   interpreter of its own.
3. Encoding and decoding a StartTransientUnit call with ten properties, medians.
Nothing is asserted."""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.unit.import_probe import LEAN  # noqa: E402

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={path}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/>
</policy></busconfig>
"""

IMPORTS = {
    "pyrunc.linux.dbus": "import pyrunc.linux.dbus",
    "jeepney (+ io.blocking)": "import jeepney, jeepney.io.blocking",
    "dbus-fast (+ aio)": "import dbus_fast, dbus_fast.aio",
}

ROUND_TRIP = {
    "pyrunc.linux.dbus": """
from pyrunc.linux.dbus import Connection
def open_():
    return Connection.open(ADDRESS)
def call(c):
    return c.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetId")
def close(c):
    c.close()
""",
    "jeepney (+ io.blocking)": """
from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection
BUS = DBusAddress("/org/freedesktop/DBus", bus_name="org.freedesktop.DBus", interface="org.freedesktop.DBus")
def open_():
    return open_dbus_connection(bus=ADDRESS)
def call(c):
    return c.send_and_get_reply(new_method_call(BUS, "GetId")).body
def close(c):
    c.close()
""",
}

# A StartTransientUnit call such as the systemd driver sends, encoded and decoded.
CODEC = {
    "pyrunc.linux.dbus": """
from pyrunc.linux import dbus
V = dbus.Variant
def make(props, aux):
    return dbus.Message(dbus.METHOD_CALL, 1, path="/org/freedesktop/systemd1", member="StartTransientUnit",
        interface="org.freedesktop.systemd1.Manager", destination="org.freedesktop.systemd1",
        signature="ssa(sv)a(sa(sv))", body=("pyrunc-x.scope", "fail", props, aux))
def encode(m):
    return dbus.encode_message(m)
def decode(data):
    return dbus.decode_message(data).body
""",
    "jeepney (+ io.blocking)": """
from jeepney import DBusAddress, new_method_call
from jeepney.low_level import Message
V = lambda sig, value: (sig, value)
SD = DBusAddress("/org/freedesktop/systemd1", bus_name="org.freedesktop.systemd1",
    interface="org.freedesktop.systemd1.Manager")
def make(props, aux):
    return new_method_call(SD, "StartTransientUnit", "ssa(sv)a(sa(sv))", ("pyrunc-x.scope", "fail", props, aux))
def encode(m):
    return m.serialise(serial=1)
def decode(data):
    return Message.from_buffer(data).body
""",
}

CODEC_TIMER = """
import json, time
props = [("Description", V("s", "pyrunc container x")), ("PIDs", V("au", [12345])), ("Delegate", V("b", True)),
    ("DefaultDependencies", V("b", False)), ("MemoryMax", V("t", 1 << 30)), ("CPUWeight", V("t", 100)),
    ("CPUQuotaPerSecUSec", V("t", 500000)), ("TasksMax", V("t", 1024)), ("DevicePolicy", V("s", "strict")),
    ("DeviceAllow", V("a(ss)", [("/dev/null", "rwm"), ("/dev/zero", "rwm"), ("char-pts", "rwm")]))]
msg = make(props, [])
enc, dec = [], []
for _ in range(RUNS * 20):
    t = time.perf_counter(); data = encode(msg); enc.append(time.perf_counter() - t)
    t = time.perf_counter(); decode(data); dec.append(time.perf_counter() - t)
print(json.dumps([enc, dec, len(data)]))
"""

TIMER = """
import json, time
opens, calls = [], []
for _ in range(RUNS):
    t = time.perf_counter(); c = open_(); opens.append(time.perf_counter() - t)
    for _ in range(20):
        t = time.perf_counter(); call(c); calls.append(time.perf_counter() - t)
    close(c)
print(json.dumps([opens, calls]))
"""


def import_cost(stmt, paths, runs, preload):
    """Median µs that stmt's imports take (the top-level importtime lines after preload)."""
    code = f"import sys; sys.path[:0] = {paths!r}\n"
    first_os = sorted(preload, key=lambda m: (m != "os", m))  # genericpath before os is circular
    code += "".join(f"try:\n import {m}\nexcept ImportError:\n pass\n" for m in first_os)
    code += "sys.stderr.write('MARK\\n')\n" + stmt
    totals, count = [], 0
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-I", "-S", "-c", code], capture_output=True, text=True, cwd="/"
        ).stderr
        if "MARK" not in err or "Error" in err.split("MARK", 1)[1]:
            return None
        lines = [line.split("|") for line in err.split("MARK", 1)[1].splitlines() if line.startswith("import time:")]
        totals.append(sum(int(c[1]) for c in lines if not c[2].startswith("  ")))
        count = len(lines)
    return statistics.median(totals), count


def private_bus(tmp):
    conf = os.path.join(tmp, "bus.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(path=os.path.join(tmp, "bus")))
    out = subprocess.run(
        ["dbus-daemon", f"--config-file={conf}", "--print-address", "--fork", "--print-pid", "--nosyslog"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], int(out[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--others", default="", help="a site-packages dir holding jeepney / dbus_fast")
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "pyrunc")], check=True)
    paths = [ROOT] + ([args.others] if args.others else [])
    print("| client | import, cold | modules | import, over pyrunc's lean set | modules |")
    print("| --- | --- | --- | --- | --- |")
    for name, stmt in IMPORTS.items():
        cold = import_cost(stmt, paths, args.runs, set())
        warm = import_cost(stmt, paths, args.runs, LEAN)
        if cold is None or warm is None:
            print(f"| {name} | not importable | | | |")
            continue
        print(f"| {name} | {cold[0] / 1000:.2f} ms | {cold[1]} | {warm[0] / 1000:.2f} ms | {warm[1]} |")
    with tempfile.TemporaryDirectory(prefix="pyrunc-test-dbus-bench-") as tmp:
        address, pid = private_bus(tmp)
        try:
            print("\n| client | open (connect, AUTH, Hello) | one call (GetId) |")
            print("| --- | --- | --- |")
            for name, code in ROUND_TRIP.items():
                prog = f"import sys; sys.path[:0] = {paths!r}\nADDRESS = {address!r}; RUNS = {args.runs}\n"
                run = subprocess.run([sys.executable, "-I", "-S", "-c", prog + code + TIMER], capture_output=True)
                if run.returncode:
                    print(f"| {name} | failed: {run.stderr.decode().strip().splitlines()[-1]} | |")
                    continue
                opens, calls = json.loads(run.stdout)
                print(f"| {name} | {statistics.median(opens) * 1e6:.0f} µs | {statistics.median(calls) * 1e6:.0f} µs |")
        finally:
            os.kill(pid, signal.SIGTERM)
            time.sleep(0.1)
    print("\n| client | encode a StartTransientUnit call | decode it | bytes |")
    print("| --- | --- | --- | --- |")
    for name, code in CODEC.items():
        prog = f"import sys; sys.path[:0] = {paths!r}\nRUNS = {args.runs}\n"
        run = subprocess.run([sys.executable, "-I", "-S", "-c", prog + code + CODEC_TIMER], capture_output=True)
        if run.returncode:
            print(f"| {name} | failed: {run.stderr.decode().strip().splitlines()[-1]} | | |")
            continue
        enc, dec, size = json.loads(run.stdout)
        print(f"| {name} | {statistics.median(enc) * 1e6:.0f} µs | {statistics.median(dec) * 1e6:.0f} µs | {size} |")


if __name__ == "__main__":
    main()
