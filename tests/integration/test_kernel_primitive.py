"""The kernel seam's primitive, syscall(nr, *args) and address(obj): built into the
launcher (_pyrunc_kernel, launcher.c) and over ctypes (ffi.py) for any other interpreter.
A launcher built with a boot code of this test's own runs the same calls through both in
one process, and each check compares them with what the call must give."""

import errno
import json
import os
import subprocess
import sys

import pytest

from pyrunc import launcher

# Run by the launcher: each case through the built-in and through ffi, the results as JSON.
CHECKS = r"""
import json, os, sys
sys.path[:0] = %(path)r
import _pyrunc_kernel
from pyrunc.linux import ffi

NR = {"x86_64": dict(getcpu=309, openat2=437, prctl=157, uname=63),
      "aarch64": dict(getcpu=168, openat2=437, prctl=167, uname=160)}[os.uname().machine]
AT_FDCWD = -100
PR_GET_NAME = 16

def cases(syscall, address):
    out = {}
    cpu = bytearray(4)
    out["getcpu"] = [syscall(NR["getcpu"], cpu, None, None), int.from_bytes(cpu, sys.byteorder)]
    how = (os.O_RDONLY | os.O_CLOEXEC).to_bytes(8, sys.byteorder) + bytes(16)
    fd = syscall(NR["openat2"], AT_FDCWD, b"/proc/self/comm", how, len(how))
    out["openat2"] = [fd >= 0, os.read(fd, 64).decode() if fd >= 0 else ""]
    if fd >= 0:
        os.close(fd)
    out["missing"] = syscall(NR["openat2"], AT_FDCWD, b"/nonexistent-pyrunc-test", how, len(how))
    name = bytearray(16)
    out["prctl"] = [syscall(NR["prctl"], PR_GET_NAME, name, 0, 0, 0), bytes(name).rstrip(b"\0").decode()]
    uts = bytearray(6 * 65)
    out["uname"] = [syscall(NR["uname"], uts), bytes(uts[:65]).rstrip(b"\0").decode()]
    data = b"pyrunc\0test"
    out["address"] = [address(data) != 0, address(bytearray(8)) != 0]
    try:
        syscall(NR["getcpu"], 1.5)
        out["bad arg"] = "accepted"
    except TypeError:
        out["bad arg"] = "TypeError"
    return out

print(json.dumps({"builtin": cases(_pyrunc_kernel.syscall, _pyrunc_kernel.address),
                  "ffi": cases(ffi.syscall, ffi.address),
                  "cpu": sorted(os.sched_getaffinity(0))}))
"""


@pytest.fixture(scope="module")
def checks_launcher(tmp_path_factory):
    if launcher.embed_flags(True) is None:
        pytest.skip("this interpreter has no static libpython: the launcher has no built-in primitive")
    dest = str(tmp_path_factory.mktemp("pyrunc-test-primitive") / "checks")
    boot = CHECKS % {"path": launcher.import_path()}
    assert launcher.compile_launcher(dest, sys.executable, boot, True, True) == "compiled, interpreter linked in"
    return dest


def test_the_builtin_and_the_ctypes_primitive_give_what_the_kernel_gives(checks_launcher):
    r = subprocess.run([checks_launcher], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    comm = os.path.basename(checks_launcher)
    for kind in ("builtin", "ffi"):
        got = found[kind]
        result, cpu = got["getcpu"]
        assert result == 0 and cpu in found["cpu"], (kind, got)  # a bytearray filled in
        assert got["openat2"] == [True, comm + "\n"], (kind, got)  # bytes path, struct, AT_FDCWD
        assert got["missing"] == -errno.ENOENT, (kind, got)  # a failure is -errno
        assert got["prctl"] == [0, comm], (kind, got)
        assert got["uname"] == [0, os.uname().sysname], (kind, got)
        assert got["address"] == [True, True], (kind, got)
        assert got["bad arg"] == "TypeError", (kind, got)
