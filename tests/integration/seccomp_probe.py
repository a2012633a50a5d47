"""Load a compiled seccomp program in a forked child and make raw syscalls under it, so a
profile's every action and argument rule can be observed without a container."""

import ctypes
import json
import os
import signal
import threading

from pyrunc.linux import kernel, seccomp

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# x86_64 and aarch64 numbers of the syscalls the probes make.
NR = {
    "x86_64": {"personality": 135, "getppid": 110, "umask": 95, "getpid": 39, "mkdirat": 258},
    "aarch64": {"personality": 92, "getppid": 173, "umask": 166, "getpid": 172, "mkdirat": 34},
}[os.uname().machine]


def _call(name, args):
    """A syscall by name, or by number (one no table has)."""
    ctypes.set_errno(0)
    ret = _libc.syscall(ctypes.c_long(NR.get(name, name)), *[ctypes.c_ulong(a) for a in args])
    return [ret, ctypes.get_errno() if ret == -1 else 0]


def probe(program, calls, flags=0, in_thread=False, trap_handler=False):
    """Run `calls` [(syscall name or number, [args])] under `program` in a child.
    Returns (results [[ret, errno], ...] as far as the child got, signal that ended it or 0)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            out = os.fdopen(w, "w", buffering=1)
            if trap_handler:
                signal.signal(signal.SIGSYS, lambda *_: out.write(json.dumps(["trapped"]) + "\n"))
            k = kernel.Kernel()
            k.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1)
            k.seccomp_set_filter(flags, program)

            def run():
                for name, args in calls:
                    out.write(json.dumps(_call(name, args)) + "\n")

            if in_thread:
                # A thread the filter kills never finishes Python's join: watch its task go.
                t = threading.Thread(target=run, daemon=True)
                t.start()
                while t.native_id is None:
                    pass
                while os.path.exists(f"/proc/self/task/{t.native_id}") and t.is_alive():
                    threading.Event().wait(0.01)
                out.write(json.dumps(["main thread alive"]) + "\n")
            else:
                run()
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        lines = [json.loads(line) for line in f]
    _, status = os.waitpid(pid, 0)
    return lines, (os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0)


def compiled(profile):
    return seccomp.compile_profile(profile)
