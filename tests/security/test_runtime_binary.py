"""CVE-2019-5736: a container that gets hold of the runtime's own executable can overwrite
it on the host, and the next runtime command runs the attacker's code as root.

pyrunc forks and never re-execs, so its executable is the host's Python interpreter: the
container's init is that interpreter until it execs the user's program.  Two ways in:

- another process in the container's pid namespace opens /proc/1/exe of the waiting
  init (it is non-dumpable: container_init's PR_SET_DUMPABLE 0);
- the init itself is made to exec /proc/self/exe (the image's entrypoint is that path, a
  symlink to it, a script whose #! names it, an ELF whose PT_INTERP does, or a file a
  host binfmt_misc handler sends there), which runs the host's Python inside the
  container with the container's root (program.checked_program refuses it, at create
  and again at start).

Each test checks afterwards that the host's interpreter is byte for byte what it was.
`pyrunc exec`, the third way in for runc, has the same defenses: tests/security/test_exec.py.
"""

import ast
import errno
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from pyrunc import launcher
from pyrunc.linux import sealed_exe
from tests.conftest import make_bundle, userns_copy
from tests.security.sec_util import assert_create_refused, digest, run_ok

INTERPRETER = os.path.realpath(sys.executable)  # what `python -m pyrunc` runs
USERNS_HOST_ID = 100000  # the pod's user namespace maps its root here


def interpreter_files():
    """The host's interpreter and its shared library: what the attack would overwrite."""
    found = [INTERPRETER]
    libdir = os.path.join(sys.base_prefix, "lib")
    for name in sorted(os.listdir(libdir)):
        if name.startswith("libpython") and ".so" in name and not os.path.islink(os.path.join(libdir, name)):
            found.append(os.path.join(libdir, name))
    return found


@pytest.fixture
def host_interpreter():
    """Digests of the host's interpreter files, checked unchanged after the test."""
    before = {path: digest(path) for path in interpreter_files()}
    yield before
    assert {path: digest(path) for path in before} == before


# --- another container opens /proc/1/exe of a waiting init ------------------------------


@pytest.fixture
def other_bundle(tmp_path, rootfs_template):
    return make_bundle(tmp_path / "other", rootfs_template, "/pyrunc-test-sec-")


PROBE_INIT = (
    # Proof that /proc/1 is the other container's waiting init: its command line.
    "echo cmdline=$(busybox tr '\\0' ' ' < /proc/1/cmdline); "
    "echo fds=$(ls /proc/1/fd | wc -l); "
    "readlink /proc/1/exe >/dev/null 2>&1 && echo readlink-exe; "
    "cat /proc/1/exe >/dev/null 2>&1 && echo read-exe; "
    # O_RDWR without O_TRUNC: nothing is written even where the open succeeds.
    "(: 1<>/proc/1/exe) 2>/dev/null && echo open-exe-for-writing; "
    # Listing the numbers is allowed; following the links is not.
    "for f in /proc/1/fd/* /proc/1/map_files/*; do "
    "readlink $f >/dev/null 2>&1 && echo readlink-$f; (: < $f) 2>/dev/null && echo open-$f; done; "
    "readlink /proc/1/cwd >/dev/null 2>&1 && echo readlink-cwd; "
    "readlink /proc/1/root >/dev/null 2>&1 && echo readlink-root; "
    "cat /proc/1/environ >/dev/null 2>&1 && echo read-environ; "
    "echo end"
)


def test_a_waiting_init_cannot_be_opened_from_the_containers_pid_namespace(
    pyrunc, bundle, other_bundle, test_id, host_interpreter
):
    """A container created but not started: its init is the host's Python, holding the
    start socket.  A second container joins its pid namespace, as `exec` would, with the
    same user and capabilities, and tries every /proc/1 link to the interpreter."""
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    init = pyrunc.state(test_id)["pid"]
    other_bundle.config["linux"]["namespaces"] = [
        ns if ns["type"] != "pid" else {"type": "pid", "path": f"/proc/{init}/ns/pid"}
        for ns in other_bundle.config["linux"]["namespaces"]
    ]
    out = run_ok(pyrunc, other_bundle, test_id + "-b", PROBE_INIT)
    lines = out.split("\n")
    assert "pyrunc" in lines[0] and test_id in lines[0], out  # it is the waiting init
    assert lines[1].startswith("fds=") and int(lines[1][4:]) >= 3, out  # the loop had work
    assert lines[2:] == ["end", ""], out
    # What it would have reached: the interpreter, on a mount nobody can write through.
    assert os.path.samestat(os.stat(f"/proc/{init}/exe"), os.stat(INTERPRETER))
    assert sealed_exe.is_sealed(f"/proc/{init}/exe")


@pytest.fixture
def reachable_dir():
    """A directory a user namespace's mapped root can reach (pytest's are 0700)."""
    path = tempfile.mkdtemp(prefix="pyrunc-test-sec-userns-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_waiting_init_in_a_user_namespace_cannot_be_opened_by_a_container_sharing_it(
    pyrunc, bundle, test_id, host_interpreter, reachable_dir
):
    """The same attack where dumpability is all that stands in the way: a pod's two
    containers share a user namespace, so the second one's root is the very user the
    waiting init runs as (the kernel's uid check passes).  The first process of create
    makes itself dumpable in the user namespace to write its time offsets: the init must
    be non-dumpable before anyone can see it, and stay so until it execs."""
    first = userns_copy(bundle, f"{reachable_dir}/first", USERNS_HOST_ID)
    first.config["linux"]["namespaces"] += [{"type": "user"}]
    first.write()
    r = pyrunc("create", "--bundle", first.path, test_id)
    assert r.code == 0, r
    init = pyrunc.state(test_id)["pid"]
    second = userns_copy(bundle, f"{reachable_dir}/second", USERNS_HOST_ID)
    second.config["linux"]["namespaces"] = [{"type": t} for t in ("mount", "ipc", "uts", "network")] + [
        {"type": "user", "path": f"/proc/{init}/ns/user"},
        {"type": "pid", "path": f"/proc/{init}/ns/pid"},
    ]
    del second.config["linux"]["uidMappings"], second.config["linux"]["gidMappings"]
    out = run_ok(pyrunc, second, test_id + "-b", PROBE_INIT)
    lines = out.split("\n")
    assert "pyrunc" in lines[0] and test_id in lines[0], out  # it is the waiting init
    # Not even the numbers: the init's /proc files belong to the host's root, not ours.
    assert lines[1] == "fds=0", out
    assert lines[2:] == ["end", ""], out


# --- the init made to exec its own executable -------------------------------------------

PAYLOAD = (
    "import os\nfd = os.open('/proc/self/exe', os.O_RDONLY)\nst = os.fstat(fd)\nprint('HOLDS', st.st_dev, st.st_ino)\n"
)


def _holds_line():
    st = os.stat(INTERPRETER)
    return f"HOLDS {st.st_dev} {st.st_ino}"


def _ship_the_interpreters_runtime(bundle):
    """What a hostile image would ship so that the host's interpreter can start in it: its
    loader and libraries, its prefix, at the paths it looks for them.  Read-only binds of
    the host's own stand in for that here."""
    for top in ("/lib", "/lib64"):  # merged /usr: the same links as the host's
        if os.path.islink(top):
            os.symlink(os.readlink(top), os.path.join(bundle.rootfs, top[1:]))
    out = subprocess.run(["ldd", INTERPRETER], capture_output=True, text=True, check=True).stdout
    libs = [w for w in out.split() if w.startswith("/")]
    dirs = {os.path.realpath(os.path.dirname(lib)) for lib in libs}
    dirs |= {os.path.dirname(os.path.realpath(lib)) for lib in libs} | {sys.base_prefix}
    for d in sorted(dirs):
        bundle.config["mounts"].append({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]})
    bundle.config["process"]["env"].append(f"PYTHONHOME={sys.base_prefix}")


def _write(bundle, path, text, mode=0o755):
    full = os.path.join(bundle.rootfs, path.lstrip("/"))
    with open(full, "w") as f:
        f.write(text)
    os.chmod(full, mode)


def _args(bundle):
    return ["/proc/self/exe", "-c", PAYLOAD]


def _args_through_pid_1(bundle):
    return ["/proc/1/exe", "-c", PAYLOAD]


def _symlinked_shell(bundle):
    os.unlink(os.path.join(bundle.rootfs, "bin", "sh"))
    os.symlink("/proc/self/exe", os.path.join(bundle.rootfs, "bin", "sh"))
    return ["/bin/sh", "-c", PAYLOAD]


def _shebang(bundle):
    _write(bundle, "/entrypoint", "#!/proc/self/exe\n" + PAYLOAD)
    return ["/entrypoint"]


def _shebang_with_an_argument(bundle):
    # The #! line alone is the whole attack: python -c<code> never reads the script.
    _write(bundle, "/entrypoint", "#! /proc/self/exe -cprint('HOLDS')\n")
    return ["/entrypoint"]


def _nested_shebang(bundle):
    _write(bundle, "/entrypoint", "#!/bin/interp\n")
    _write(bundle, "/bin/interp", "#!/proc/self/exe\n" + PAYLOAD)
    return ["/entrypoint"]


def _unreadable_script(bundle):
    """Root without CAP_DAC_OVERRIDE cannot read a mode 0111 script, nor check its #!."""
    bundle.config["process"]["capabilities"] = {}
    _write(bundle, "/entrypoint", "#! /proc/self/exe -cprint('HOLDS')\n", mode=0o111)
    return ["/entrypoint"]


def _dynamic_binary(bundle, loader=None):
    """A copy of the host's `true`, a dynamic ELF, with its PT_INTERP made `loader`."""
    with open(shutil.which("true"), "rb") as f:
        data = f.read()
    if loader is not None:
        found = re.search(rb"/lib[^\0]*/ld-[^\0]*\.so\.\d\0", data)
        assert found and len(loader) < len(found.group()), found
        padded = loader.encode().ljust(len(found.group()), b"\0")
        data = data[: found.start()] + padded + data[found.end() :]
    full = os.path.join(bundle.rootfs, "entrypoint")
    with open(full, "wb") as f:
        f.write(data)
    os.chmod(full, 0o755)
    return ["/entrypoint"]


def _elf_interpreter(bundle):
    # The kernel maps the ELF interpreter while /proc/self/exe is still the host's Python.
    return _dynamic_binary(bundle, "/proc/self/exe")


def _script_through_a_symlinked_interpreter(bundle):
    os.symlink("/proc/1/exe", os.path.join(bundle.rootfs, "bin", "interp"))
    _write(bundle, "/entrypoint", "#!/bin/interp\n" + PAYLOAD)
    return ["/entrypoint"]


@pytest.mark.parametrize(
    "way",
    [
        _args,
        _args_through_pid_1,
        _symlinked_shell,
        _shebang,
        _shebang_with_an_argument,
        _nested_shebang,
        _script_through_a_symlinked_interpreter,
        _elf_interpreter,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_the_init_never_execs_its_own_executable(pyrunc, bundle, test_id, host_interpreter, way):
    _ship_the_interpreters_runtime(bundle)
    bundle.config["process"]["args"] = way(bundle)
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert "HOLDS" not in r.out, r
    assert_create_refused(pyrunc, r, test_id, "reached through a /proc magic link")


def test_a_dynamic_binary_with_its_own_loader_still_runs(pyrunc, bundle, test_id):
    """The control of _elf_interpreter: the same binary, its PT_INTERP untouched."""
    _ship_the_interpreters_runtime(bundle)
    bundle.config["process"]["args"] = _dynamic_binary(bundle)
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r


def test_a_program_swapped_after_create_is_checked_again_at_start(pyrunc, bundle, test_id, host_interpreter):
    """A writer of the rootfs (another container sharing the directory) turns the checked
    entrypoint into one whose #! names /proc/self/exe between create and start."""
    _ship_the_interpreters_runtime(bundle)
    _write(bundle, "/entrypoint", "#!/bin/sh\necho benign\n")
    bundle.config["process"]["args"] = ["/entrypoint"]
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    _write(bundle, "/entrypoint.new", "#!/proc/self/exe\n" + PAYLOAD)
    os.rename(os.path.join(bundle.rootfs, "entrypoint.new"), os.path.join(bundle.rootfs, "entrypoint"))
    r = pyrunc("start", test_id)
    assert r.code == 1 and "reached through a /proc magic link" in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r
    assert pyrunc.state(test_id)["status"] == "stopped"


BINFMT_MISC = "/proc/sys/fs/binfmt_misc"


def _with_binfmt_handler(name, magic, interpreter, command):
    """Run `command` in a mount namespace of its own where binfmt_misc is mounted and a
    handler `name` (without the F flag) is registered; the handler is removed after."""
    script = (
        "import os, subprocess, sys\n"
        "name, magic, interp, bm = sys.argv[1:5]\n"
        "if not os.path.exists(bm + '/register'):\n"
        "    subprocess.run(['mount', '-t', 'binfmt_misc', 'binfmt_misc', bm], check=True)\n"
        "with open(bm + '/register', 'w') as f:\n"
        "    f.write(f':{name}:M::{magic}::{interp}:')\n"
        "try:\n"
        "    sys.exit(subprocess.call(sys.argv[5:]))\n"
        "finally:\n"
        "    with open(f'{bm}/{name}', 'w') as f:\n"
        "        f.write('-1')\n"
    )
    return subprocess.call(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            sys.executable,
            "-c",
            script,
            name,
            magic,
            interpreter,
            BINFMT_MISC,
            *command,
        ]
    )


@pytest.mark.skipif("binfmt_misc" not in open("/proc/filesystems").read(), reason="this kernel has no binfmt_misc")
def test_a_binfmt_misc_handler_never_runs_the_runtimes_executable(pyrunc, bundle, test_id, host_interpreter, tmp_path):
    """A host handler without the F flag looks its interpreter up in the container, at
    exec time; the image puts a magic link there and a file the handler matches."""
    magic = f"#{test_id}"
    _ship_the_interpreters_runtime(bundle)
    _write(bundle, "/entrypoint", magic + "\n" + PAYLOAD)
    os.symlink("/proc/self/exe", os.path.join(bundle.rootfs, "binfmt-interp"))
    bundle.config["process"]["args"] = ["/entrypoint"]
    bundle.write()
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-c",
        "import subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, "
        "text=True); print(r.returncode); print(r.stdout + r.stderr, end='')",
        sys.executable,
        "-m",
        "pyrunc",
        "--root",
        pyrunc.root,
        "run",
        "--bundle",
        bundle.path,
        test_id,
    ]
    open(out, "w").close()
    code = _with_binfmt_handler(test_id, magic, "/binfmt-interp", ["sh", "-c", '"$@" > ' + str(out), "sh", *command])
    assert code == 0
    result = out.read_text()
    assert not os.path.exists(f"{BINFMT_MISC}/{test_id}")
    assert "HOLDS" not in result, result
    assert result.startswith("1\n") and "binfmt_misc handler" in result, result
    assert "reached through a /proc magic link" in result, result

    # The control: the same handler with the host's interpreter by its own path runs the
    # payload in the container, so the refusal above is what stopped it.
    code = _with_binfmt_handler(test_id, magic, INTERPRETER, ["sh", "-c", '"$@" > ' + str(out), "sh", *command])
    assert code == 0
    assert out.read_text() == "0\n" + _holds_line() + "\n"


def test_an_unreadable_program_cannot_be_a_script_to_its_own_executable(pyrunc, bundle, test_id, host_interpreter):
    _ship_the_interpreters_runtime(bundle)
    bundle.config["process"]["args"] = _unreadable_script(bundle)
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert "HOLDS" not in r.out, r
    assert r.code != 0, r


def test_an_unreadable_binary_still_runs(pyrunc, bundle, test_id):
    """The other side of the previous test: an exec-only ELF runs as before."""
    os.chmod(os.path.join(bundle.rootfs, "bin", "busybox"), 0o111)
    bundle.config["process"]["capabilities"] = {}
    bundle.config["process"]["args"] = ["/bin/busybox", "echo", "ran"]
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert (r.code, r.out) == (0, "ran\n"), r


def test_the_payload_works_where_it_is_allowed(pyrunc, bundle, test_id, host_interpreter):
    """The control of the tests above: the same interpreter, run by its ordinary path from
    the read-only bind, starts in the container and reports the file it runs, which is
    the host's (through a read-only mount, where writing it is refused)."""
    _ship_the_interpreters_runtime(bundle)
    bundle.config["process"]["args"] = [INTERPRETER, "-c", PAYLOAD]
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert (r.code, r.out) == (0, _holds_line() + "\n"), r


# --- a process that holds the init's executable -----------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def own_interpreter(tmp_path_factory):
    """A copy of the interpreter file that no other process runs, so that ETXTBSY cannot
    hide whether it is writable: a venv made with --copies, importing this checkout and
    the test venv's packages."""
    venv = tmp_path_factory.mktemp("pyrunc-test-venv")
    subprocess.run([sys.executable, "-m", "venv", "--copies", "--without-pip", str(venv)], check=True)
    (site,) = glob.glob(str(venv / "lib" / "python3*" / "site-packages"))
    with open(os.path.join(site, "pyrunc-test.pth"), "w") as f:
        f.write("\n".join([REPO] + [p for p in sys.path if p.endswith("site-packages")]) + "\n")
    return str(venv / "bin" / "python")


def _built(dest, python, boot, embed):
    """launcher.compile_launcher's build, skipped where this machine cannot make it.
    embed: False (it execs the interpreter), True (libpython built in: the static library
    where there is one) or "shared" (the shared libpython, loaded with dlopen)."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler: `make setup` installs gcc")
    static = embed is True
    if embed and launcher.embed_flags(static) is None:
        pytest.skip("this interpreter has no libpython of that kind (static, or shared) to build the launcher on")
    kind = launcher.compile_launcher(dest, python, boot, embed=bool(embed), static=static)
    assert kind == ("compiled, interpreter linked in" if embed else "compiled")
    return dest


@pytest.fixture(scope="module")
def own_launcher(own_interpreter, tmp_path_factory):
    """The `pyrunc` command as `make setup` installs it (pyrunc/launcher), built for the
    interpreter copy above: own_launcher(embed) is the build that execs the interpreter
    (False) or one that runs it in its own process (True: libpython built in; "shared":
    loaded)."""
    built: dict[object, str] = {}

    def build(embed):
        if embed not in built:
            dest = str(tmp_path_factory.mktemp("pyrunc-test-launcher") / "pyrunc")
            built[embed] = _built(dest, own_interpreter, launcher.boot_code(launcher.import_path()), embed)
        return built[embed]

    return build


LAUNCHERS = {"launcher": False, "launcher linking python": True, "launcher loading libpython": "shared"}


@pytest.mark.parametrize("started_by", ["python -m pyrunc", *LAUNCHERS])
def test_a_hold_on_the_inits_executable_never_writes_the_interpreter(
    pyrunc, bundle, test_id, own_interpreter, own_launcher, started_by
):
    """The window program.py cannot close: a writer of the rootfs swaps the program for
    `#!/proc/self/exe` after the last check, the kernel runs the init's own executable in
    the container, and a process there holds it by /proc/<pid>/exe until nothing runs the
    file, then opens it for writing.  The host plays that attacker: it holds the waiting
    init's exe, lets the container start, and opens its hold for writing.  Every way
    pyrunc starts is covered: `python -m pyrunc` seals itself by a re-exec, the launcher
    starts the interpreter sealed, or (linking it) starts sealed itself."""
    pyrunc.interpreter = own_interpreter
    executable = own_interpreter
    if started_by != "python -m pyrunc":
        pyrunc.command = [own_launcher(LAUNCHERS[started_by])]
        if LAUNCHERS[started_by]:
            executable = pyrunc.command[0]
    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    hold = os.open(f"/proc/{pyrunc.state(test_id)['pid']}/exe", os.O_PATH | os.O_CLOEXEC)
    try:
        assert os.path.samestat(os.fstat(hold), os.stat(executable))  # the host's file
        r = pyrunc("start", test_id)
        assert r.code == 0, r
        with pytest.raises(OSError) as refused:
            os.close(os.open(f"/proc/self/fd/{hold}", os.O_WRONLY))
        assert refused.value.errno == errno.EROFS
    finally:
        os.close(hold)
    # The control: by its own path, the file opens for writing (nothing else kept it).
    os.close(os.open(executable, os.O_WRONLY))


def test_a_caller_cannot_make_the_launcher_skip_its_seal(
    pyrunc, bundle, test_id, own_interpreter, own_launcher, monkeypatch
):
    """The launcher that links Python marks its exec of its sealed self in the
    environment; a caller that sets the mark gets no seal from the launcher, and pyrunc's
    own check (sealed_exe.py) re-executes the interpreter from a sealed copy: the waiting
    init's executable still cannot be written."""
    pyrunc.interpreter = own_interpreter
    pyrunc.command = [own_launcher(True)]
    monkeypatch.setenv("PYRUNC_LAUNCHER_SEALED", "1")
    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    exe = f"/proc/{pyrunc.state(test_id)['pid']}/exe"
    assert os.path.samestat(os.stat(exe), os.stat(own_interpreter))  # re-executed: the interpreter
    assert sealed_exe.is_sealed(exe)


REPORT_EXE = """import json, os, sys
from pyrunc import launcher
from pyrunc.linux import sealed_exe
print(json.dumps([os.readlink("/proc/self/exe"), os.stat("/proc/self/exe").st_ino, sealed_exe.is_sealed(),
                  sys.argv[1:], sys.flags.isolated, sys.flags.no_site, sys.executable]))
"""

EMBED = [False, True, "shared"]
EMBED_IDS = ["exec python", "python linked in", "libpython loaded"]


def _report_launcher(tmp_path, own_interpreter, embed):
    boot = f"import sys;sys.path+={[REPO]!r};exec({REPORT_EXE!r})"
    return _built(str(tmp_path / "report-exe"), own_interpreter, boot, embed)


@pytest.mark.parametrize("embed", EMBED, ids=EMBED_IDS)
def test_the_launcher_starts_the_interpreter_sealed_with_the_callers_arguments(tmp_path, own_interpreter, embed):
    """No re-exec needed: what runs Python (the interpreter, or the launcher that links
    it) is the same file, on a read-only clone of its mount, isolated and without site,
    with the interpreter as sys.executable, and gets every argument as given (empty ones
    and spaces included)."""
    command = _report_launcher(tmp_path, own_interpreter, embed)
    args = ["run", "", "a b", "--x=1", "é"]
    r = subprocess.run([command, *args], capture_output=True, text=True, check=True)
    link, ino, sealed, argv, isolated, no_site, executable = json.loads(r.stdout)
    assert sealed is True, r.stdout
    assert ino == os.stat(command if embed else own_interpreter).st_ino  # the file itself, not a copy
    assert argv == args
    assert (isolated, no_site, executable) == (1, 1, own_interpreter)


@pytest.mark.parametrize("embed", EMBED[1:], ids=EMBED_IDS[1:])
def test_the_launcher_that_links_python_runs_other_commands_in_its_own_process(tmp_path, own_interpreter, embed):
    """Commands that start no container process run in the launcher's process: no exec,
    so no seal (nothing of theirs enters a container), the same isolation and arguments.
    Sealing, where it is needed, is tested above."""
    command = _report_launcher(tmp_path, own_interpreter, embed)
    args = ["--root", "/x", "state", "", "a b"]
    r = subprocess.run([command, *args], capture_output=True, text=True, check=True)
    link, ino, sealed, argv, isolated, no_site, executable = json.loads(r.stdout)
    assert (link, ino, sealed) == (command, os.stat(command).st_ino, False), r.stdout
    assert (argv, isolated, no_site, executable) == (args, 1, 1, own_interpreter)


@pytest.mark.parametrize("embed", EMBED, ids=EMBED_IDS)
def test_the_launcher_without_cap_sys_admin_starts_from_a_sealed_memfd(tmp_path, own_interpreter, embed):
    r = subprocess.run(
        ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin"]
        + [_report_launcher(tmp_path, own_interpreter, embed), "exec"],
        capture_output=True,
        text=True,
        check=True,
    )
    link, ino, sealed, *_ = json.loads(r.stdout)
    assert link.startswith("/memfd:pyrunc-sealed-exe"), r.stdout
    assert ino != os.stat(own_interpreter).st_ino
    assert sealed is True


def test_the_installed_command_is_the_launcher():
    """`make setup` replaced pip's console script: the command starts no second
    interpreter to seal itself."""
    command = os.path.join(os.path.dirname(sys.executable), "pyrunc")
    if shutil.which("cc") is None:
        pytest.skip("no C compiler: `make setup` installs gcc")
    with open(command, "rb") as f:
        assert f.read(4) == b"\x7fELF", f"{command} is not the compiled launcher"


MEMFD_CHILD = """
import os
from pyrunc import launcher
from pyrunc.linux import sealed_exe
print(os.readlink("/proc/self/exe"), os.stat("/proc/self/exe").st_ino, sealed_exe.is_sealed())
"""

MEMFD_PARENT = """
import os, sys
from pyrunc import launcher
from pyrunc.linux import sealed_exe
os.execve(sealed_exe.sealed_memfd_copy(), [sys.executable, "-c", sys.argv[1]], os.environ)
"""


def test_without_cap_sys_admin_the_interpreter_runs_from_a_sealed_memfd():
    """Where a read-only clone of the mount cannot be made (no CAP_SYS_ADMIN), pyrunc
    re-executes from a memfd copy: a file of its own, sealed so that nobody can write it."""
    env = dict(os.environ, PYTHONPATH=":".join([REPO] + sys.path))
    r = subprocess.run(
        [sys.executable, "-c", MEMFD_PARENT, MEMFD_CHILD], env=env, capture_output=True, text=True, check=True
    )
    link, ino, sealed = r.stdout.rsplit(maxsplit=2)
    assert link.startswith("/memfd:pyrunc-sealed-exe"), r.stdout
    assert int(ino) != os.stat(INTERPRETER).st_ino
    assert sealed == "True", r.stdout


def test_a_plain_interpreter_is_not_sealed(own_interpreter):
    """The other side of the two tests above: is_sealed, which decides the re-exec, says
    no for the interpreter file as it lies on the host."""
    assert not sealed_exe.is_sealed(own_interpreter)


STARTUP_REPORT = """import sys
loaded = sorted(m for m in sys.modules if m.startswith(("codecs", "encodings")))
print(repr([sys.modules["encodings"].__file__, sys.path, loaded, sys.argv[1:]]))
"""


@pytest.mark.parametrize("embed", EMBED[1:], ids=EMBED_IDS[1:])
def test_the_launcher_that_runs_python_starts_it_on_pyruncs_encodings(tmp_path, own_interpreter, embed):
    """pyrunc/launcher/startup first on the module search path, for the start's import of
    `encodings` alone (it is off the path afterwards: what `python -I -S` has is left): the
    interpreter starts without the codecs module and the standard library's alias table
    (tests/unit/test_startup_encodings.py), and still reads its arguments as UTF-8."""
    command = _built(str(tmp_path / "report-startup"), own_interpreter, f"exec({STARTUP_REPORT!r})", embed)
    r = subprocess.run([command, "state", "é"], capture_output=True, text=True, check=True)
    encodings, path, loaded, argv = ast.literal_eval(r.stdout)
    assert encodings == os.path.join(launcher.STARTUP, "encodings", "__init__.py")
    probe = [own_interpreter, "-I", "-S", "-c", "import sys; print(repr(sys.path))"]
    plain = subprocess.run(probe, capture_output=True, text=True, check=True)
    assert path == ast.literal_eval(plain.stdout)
    assert loaded == ["encodings"] and argv == ["state", "é"], r.stdout


def test_the_launcher_that_links_python_has_no_runpath(tmp_path, own_interpreter):
    """Built on the static libpython, it needs no library from the interpreter's lib
    directory: a runpath there (pyenv's build flags carry one) would only have the dynamic
    loader search it for libc and libm at every start, and load them from there if found."""
    if shutil.which("readelf") is None:
        pytest.skip("no readelf: binutils comes with `make setup`'s gcc")
    command = _built(str(tmp_path / "no-runpath"), own_interpreter, "pass", True)
    dynamic = subprocess.run(["readelf", "-d", command], capture_output=True, text=True, check=True).stdout
    assert "(NEEDED)" in dynamic
    assert "RUNPATH" not in dynamic and "RPATH" not in dynamic, dynamic
