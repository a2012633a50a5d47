"""The probe of the import tests (tests/unit/test_imports.py, tests/integration/test_imports.py):
which modules a command imports, by name.  It starts the interpreter as the installed
launcher does (-I -S, pyrunc's import path appended) and lists sys.modules after main.
SLOW, LEAN, READ_ONLY and KILL are the pins the tests hold the commands to."""

import subprocess
import sys

from pyrunc import launcher

# create, run and exec re-execute from a sealed interpreter (linux/sealed_exe.py) that
# would run main, not this probe: for those the probe seals itself first (and imports
# sealed_exe); for the other commands it imports nothing main would not.
PROBE = """
import posix, sys
sys.path += %r
from pyrunc.cli import SEALED_COMMANDS, main
if set(sys.argv) & set(SEALED_COMMANDS):
    import os
    from pyrunc.linux import sealed_exe
    if not sealed_exe.is_sealed():
        from pyrunc.linux.kernel import Kernel
        os.execve(sealed_exe.sealed_copy(Kernel()), [sys.executable, *sys.orig_argv[1:]], os.environ)
main(sys.argv[1:])
posix.write(2, ("\\nMODULES " + " ".join(sorted(sys.modules))).encode())
""" % (launcher.import_path(),)  # noqa: UP031 -- a code template

# Never on a command's fast path: each costs milliseconds to import (re and signal.py
# bring enum; json brings re; socket.py brings selectors; ctypes' package alone takes
# 4 ms), or far more (jsonschema, pyroute2, libseccomp's bindings).
SLOW = {
    "re",
    "enum",
    "json",
    "socket",
    "signal",
    "selectors",
    "subprocess",
    "contextlib",
    "functools",
    "collections",
    "typing",
    "shutil",
    "pathlib",
    "hashlib",
    "_hashlib",
    "platform",
    "ipaddress",
    "copy",
    "ctypes",
    "jsonschema",
    "referencing",
    "pyroute2",
    "pyseccomp",
    "seccomp",
}

# checkpoint and restore's own modules (CRIU's RPC, what CRIU is told of a container):
# imported by those two commands only.
CHECKPOINT = {"pyrunc.checkpoint", "pyrunc.linux.criu", "pyrunc.linux.criu_describe"}

# state, list, start, kill and delete: the CLI, the store, the state machine, /proc readers;
# their handlers from cli/light.py, never the table of every command (cli/commands.py).
LEAN = {
    "_collections_abc",
    "_json",
    "_stat",
    "errno",
    "fcntl",
    "gc",  # built in: the CLI turns the cyclic GC off for these commands
    "genericpath",
    "os",
    "os.path",
    "posixpath",
    "stat",
    "pyrunc",
    "pyrunc.cli",
    "pyrunc.cli.flags",
    "pyrunc.cli.light",
    "pyrunc.errors",
    "pyrunc.deletion",
    "pyrunc.jsonc",
    "pyrunc.linux",
    "pyrunc.linux.pidfds",
    "pyrunc.linux.procfs",
    "pyrunc.linux.signals",
    "pyrunc.log",
    "pyrunc.signalling",
    "pyrunc.status",
    "pyrunc.store",
}

# os and what it brings: 1.3 ms of CPU, a fifth of what a `state` costs above the bare
# interpreter (docs/performance.md).  state and list do without it (posix alone).
OS = {"os", "os.path", "posixpath", "genericpath", "stat", "_stat", "_collections_abc"}

# delete: no os, no lifecycle (deletion.py on posix, the cgroup managers' removal on posix
# too), no errno: 1.8 ms of CPU when it had them (docs/performance.md).
NOT_DELETE = OS | {"errno", "pyrunc.lifecycle"}

# The exception types of the commands that build and run containers (errors.py reads them
# from build_errors.py when asked): none of the light commands raises them.
BUILD_ERRORS = {"pyrunc.build_errors"}

# state and list: read only, no lock, no signal, no state machine, no os: fewer still
# (a directory without state.json is checked under a lock, which brings fcntl back);
# list names each container's owner (pwd, built in).
# errno neither: its table of names costs more than the one check that used it.
READ_ONLY = (
    LEAN
    - OS
    - {"errno", "fcntl", "pyrunc.deletion", "pyrunc.linux.signals", "pyrunc.signalling", "pyrunc.linux.pidfds"}
) | {"pwd"}

# kill: the store, the state machine's rules and signalling.py, the pidfd calls through
# posix and _signal (linux/pidfds.py); no os, no lifecycle, no delete, no kernel seam (ctypes):
# together 3.9 ms of CPU when it had them (docs/performance.md).
KILL = LEAN - OS - {"pyrunc.deletion", "errno"}


def _interpreter_modules():
    r = subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import sys; print(*sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(r.stdout.split())


def modules_imported_by(*argv, cwd=None):
    """The modules a command imported beyond what the interpreter starts with."""
    r = subprocess.run([sys.executable, "-I", "-S", "-c", PROBE, *argv], capture_output=True, text=True, cwd=cwd)
    assert "\nMODULES " in r.stderr, r.stderr
    return set(r.stderr.rsplit("\nMODULES ", 1)[1].split()) - _interpreter_modules()
