"""What `run` imports, by name (tests/unit/import_probe.py has the probe, and
tests/unit/test_imports.py the other commands): the container path needs _socket and
pyrunc's own modules, and none of the modules that cost milliseconds to import.  The
probe's interpreter is not the launcher, so its kernel seam runs on ctypes (ffi.py); under
the launcher it runs on the launcher's built-in primitive, and create maps no ctypes (the
last test)."""

import sys

import pytest

from pyrunc import launcher
from tests.unit.import_probe import BUILD_ERRORS, CHECKPOINT, KILL, LEAN, NOT_DELETE, OS, SLOW, modules_imported_by

# Beyond the state commands' modules: the config's check and model, the Linux mechanics,
# and the C modules under them.
RUN = {
    # the build commands' exception types (the light commands never load them)
    "pyrunc.build_errors",
    # create's, run's and exec's handlers and flags, without the table of every command
    # (cli/commands.py, for help alone), as the light commands have cli/light.py
    "pyrunc.cli.containers",
    # the lifecycle's create side, on os (delete does without it: deletion.py), and the
    # start it ends with (starting.py, which start loads without the lifecycle)
    "pyrunc.lifecycle",
    "pyrunc.starting",
    "_ctypes",
    "_socket",
    "_struct",
    "struct",
    "pyrunc.linux.ffi",
    "pyrunc.config",
    "pyrunc.config.exec_limits",
    "pyrunc.config.model",
    "pyrunc.config.patterns",
    "pyrunc.config.schema_check",
    "pyrunc.config.semantic",
    "pyrunc.config.validate",
    "pyrunc.linux.capabilities",
    "pyrunc.linux.cgroups",
    # v2's device program (a v1 or hybrid host's run does not import it)
    "pyrunc.linux.cgroups.devices_bpf",
    "pyrunc.linux.cgroups.files",
    # v1: the writes from devices.list's state to the rules' (pure Python, no import of its own)
    "pyrunc.linux.cgroups.devices_v1",
    "pyrunc.linux.cgroups.v1",
    "pyrunc.linux.cgroups.v2",
    "pyrunc.linux.devices",
    "pyrunc.linux.child_death",
    "pyrunc.linux.init",
    "pyrunc.linux.kernel",
    "pyrunc.linux.namespaces",
    "pyrunc.linux.passed_fds",
    "pyrunc.linux.paths",
    "pyrunc.linux.process",
    "pyrunc.linux.program",
    "pyrunc.linux.proctitle",
    "pyrunc.linux.protocol",
    "pyrunc.linux.rootfs",
    # run starts from a sealed interpreter (the state commands no longer list it)
    "pyrunc.linux.sealed_exe",
    "pyrunc.linux.spawn",
    # rootfs.py's mount options and helpers, and its checked procfs writes
    "pyrunc.linux.mounts",
    "pyrunc.linux.proc_writes",
    # the parent's answers to the child (create's, exec's), moved out of lifecycle.py
    "pyrunc.linux.requests",
    # the launcher's cgroup warm-up helper, stopped once create's moves are made (issue 23)
    "pyrunc.linux.cgroup_warm_up",
    # create's options, typed (pyrunc/options.py)
    "pyrunc.options",
    "pyrunc.linux.tables",
    "pyrunc.linux.unix",
    "pyrunc.notify",
    "pyrunc.run",
    # imported by init.py for the features a config may ask for
    "pyrunc.linux.hooks",
    "pyrunc.linux.seccomp",
    "_sha256",
    "pyrunc.linux.terminal",
    "termios",
}


def test_run_imports_only_what_the_container_needs(pyrunc, bundle, test_id):
    bundle.write()
    loaded = modules_imported_by("--root", pyrunc.root, "run", "--bundle", bundle.path, test_id)
    assert not loaded & SLOW, sorted(loaded & SLOW)
    assert loaded <= LEAN | RUN, sorted(loaded - LEAN - RUN)
    assert not loaded & CHECKPOINT, sorted(loaded & CHECKPOINT)
    assert "pyrunc.cli.commands" not in loaded
    # The device program's assembler is v2's; a v1 or hybrid host's manager writes
    # devices.allow and devices.deny from the package's model of the rules.
    from pyrunc.linux.cgroups import probe
    from pyrunc.linux.kernel import Kernel

    if probe(Kernel()) != "v2":
        assert "pyrunc.linux.cgroups.devices_bpf" not in loaded


# `delete` of a stopped container: the state commands' modules and the cgroup manager that
# removes its cgroup, never the kernel seam (ctypes) nor the container path; nor os, the
# lifecycle or errno (NOT_DELETE).
DELETE = {
    "pyrunc.linux.cgroups",
    "pyrunc.linux.cgroups.files",
    "pyrunc.linux.cgroups.v1",
    "pyrunc.linux.cgroups.v2",
}


def test_delete_of_a_stopped_container_imports_no_kernel_seam(pyrunc, bundle, test_id):
    bundle.config["process"]["args"] = ["true"]
    bundle.write()
    pyrunc("run", "--bundle", bundle.path, "--keep", test_id)
    loaded = modules_imported_by("--root", pyrunc.root, "delete", test_id)
    assert not loaded & SLOW, sorted(loaded & SLOW)
    assert loaded <= LEAN | DELETE, sorted(loaded - LEAN - DELETE)
    assert "pyrunc.deletion" in loaded  # the pin names the module that deletes
    assert not loaded & BUILD_ERRORS
    assert not loaded & NOT_DELETE, sorted(loaded & NOT_DELETE)


def test_delete_force_of_a_running_container_imports_no_kernel_seam(pyrunc, running):
    # it kills the init through a pidfd and waits on it (linux/pidfds.py), not through
    # the container path's modules (spawn.py brought thirty of them, ctypes among them)
    loaded = modules_imported_by("--root", pyrunc.root, "delete", "--force", running)
    assert pyrunc("state", running).code != 0  # the probe's delete removed it
    assert not loaded & SLOW, sorted(loaded & SLOW)
    assert loaded <= LEAN | DELETE | {"select"}, sorted(loaded - LEAN - DELETE)
    assert "pyrunc.linux.pidfds" in loaded
    assert not loaded & NOT_DELETE, sorted(loaded & NOT_DELETE)


def test_kill_of_a_running_container_imports_no_kernel_seam(pyrunc, running):
    # the pidfd of the verified init through posix and _signal (linux/pidfds.py), not
    # ctypes; no os, no lifecycle (signalling.py)
    loaded = modules_imported_by("--root", pyrunc.root, "kill", running, "CONT")
    assert not loaded & SLOW, sorted(loaded & SLOW)
    assert loaded <= KILL, sorted(loaded - KILL)
    assert "pyrunc.linux.pidfds" in loaded  # the pin names the module that sent it
    assert not loaded & BUILD_ERRORS


VALIDATION = {"pyrunc.config.validate", "pyrunc.config.semantic", "pyrunc.config.schema_check"}


def test_exec_imports_nothing_slow(pyrunc, running):
    """exec's child joins the container and execs: none of the slow standard modules on
    its way (copy.deepcopy of the process cost it 1.5 ms of imports: weakref, types)."""
    loaded = modules_imported_by("--root", pyrunc.root, "exec", running, "true")
    assert "pyrunc.exec_in" in loaded
    assert not loaded & SLOW, sorted(loaded & SLOW)
    # Its process is the config copy create validated but for the args: those alone are
    # checked (config/exec_limits.py), not the whole config (a millisecond of imports).
    assert "pyrunc.config.exec_limits" in loaded
    assert not loaded & VALIDATION, sorted(loaded & VALIDATION)


# `start` of a container without hooks: the light commands' modules, the cgroup manager
# (a container frozen by someone else is paused, not started), the start socket's client
# (unix.py on _socket, the protocol's interval); no os, no lifecycle, no command table,
# no config model: 1.8 ms of CPU more when it had them (docs/performance.md).
START = (
    (LEAN - OS - {"pyrunc.deletion", "errno"})
    | DELETE
    | BUILD_ERRORS
    | {"pyrunc.starting", "pyrunc.linux.unix", "_socket", "pyrunc.linux.protocol"}
)


def test_start_imports_neither_os_nor_the_lifecycle_nor_the_config_model(pyrunc, bundle, test_id):
    """start reads the hooks the state keeps only when there are some: the config's model
    stays unloaded for the usual container, which has none; and start is a light command
    (cli/light.py), on posix."""
    bundle.config["process"]["args"] = ["true"]
    bundle.write()
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    loaded = modules_imported_by("--root", pyrunc.root, "start", test_id)
    assert pyrunc.state(test_id)["status"] in ("running", "stopped")  # the probe's start ran
    assert "pyrunc.starting" in loaded  # the pin names the module that starts
    assert loaded <= START, sorted(loaded - START)
    assert not loaded & ({"pyrunc.lifecycle", "pyrunc.cli.commands", "pyrunc.config.model"} | OS), sorted(loaded)


@pytest.fixture(scope="module")
def embedded_launcher(tmp_path_factory):
    """pyrunc's launcher on this interpreter's static libpython, with its built-in kernel
    primitive (_pyrunc_kernel, launcher.c)."""
    if launcher.embed_flags(True) is None:
        pytest.skip("this interpreter has no static libpython: the launcher has no built-in primitive")
    dest = str(tmp_path_factory.mktemp("pyrunc-test-launcher") / "pyrunc")
    kind = launcher.compile_launcher(dest, sys.executable, launcher.boot_code(launcher.import_path()), True, True)
    assert kind == "compiled, interpreter linked in"
    return dest


def test_create_under_the_launcher_maps_no_ctypes(pyrunc, bundle, test_id, embedded_launcher):
    """Under the launcher the kernel seam runs on its built-in primitive: neither create nor
    the init it forked has loaded ctypes' C module or libffi.  The init, waiting for start,
    has every mapping create's process had at the fork, and its own since."""
    bundle.write()
    pyrunc.command = [embedded_launcher]
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    pid = pyrunc.state(test_id)["pid"]
    with open(f"/proc/{pid}/maps") as f:
        maps = f.read()
    assert "libc.so" in maps  # the mappings were read
    assert "_ctypes" not in maps and "libffi" not in maps
