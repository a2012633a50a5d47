"""Install the `pyrunc` command: launcher.c compiled for this interpreter and this
checkout, so that the interpreter starts sealed and lean (no site, a fixed import path).
Where the interpreter is built as a shared libpython (pyenv's, Debian's python3 is not),
the launcher runs Python in its own process: one exec fewer per command.  It is built on
the interpreter's static library (libpython3.X.a) where that is there, else it loads the
shared one (dlopen, once it has sealed itself where it must).
Without a C compiler, a Python script that starts it lean; pyrunc then seals itself with
a re-exec where it must (linux/sealed_exe.py).

    python -m pyrunc.launcher DEST        (make setup: DEST is .venv/bin/pyrunc)
"""

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.c")
# Holds only the `encodings` package the launcher's interpreter starts on (its docstring).
STARTUP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "startup")


def import_path() -> list[str]:
    """Where the command imports from after the standard library: the directory holding
    this pyrunc package, then the installed packages (jsonschema, pyseccomp)."""
    paths = [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    return paths


def boot_code(paths: list[str]) -> str:
    return f"import sys;sys.path+={paths!r};from pyrunc.cli import launch;launch()"


def c_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a C string literal


def embed_flags(static: bool = True) -> list[str] | None:
    """The compiler flags that build the launcher on this interpreter's libpython; None
    where it has no shared one (a static build: Debian's python3 reports one), or, with
    static, no static library beside it.  static: on its static library (libpython3.X.a),
    linked into the launcher (no shared library to find and load at any start; still
    position-independent, for ASLR: a non-PIE build measured no faster), with the symbols
    exported for the extension modules; else on the shared one, which the launcher loads
    (dlopen, by this path) when it runs Python."""
    var = sysconfig.get_config_var
    libdir, library, include = var("LIBDIR"), var("LDLIBRARY"), sysconfig.get_path("include")
    if not (var("Py_ENABLE_SHARED") and libdir and library and include):
        return None
    path = os.path.join(libdir, library)
    if not (os.path.isfile(path) and os.path.isfile(os.path.join(include, "Python.h"))):
        return None
    if not static:
        return ["-DPYRUNC_EMBED", f"-DPYRUNC_LIBPYTHON={c_string(path)}", f"-I{include}", "-ldl"]
    archive = os.path.join(var("LIBPL") or "", var("LIBRARY") or "")
    if not (archive.endswith(".a") and os.path.isfile(archive)):
        return None
    return [
        "-DPYRUNC_EMBED",
        f"-I{include}",
        "-s",
        archive,
        "-Wl,--export-dynamic",
        *_libraries(var("LIBS"), var("SYSLIBS"), var("MODLIBS")),
    ]


def _libraries(*flag_strings: str | None) -> list[str]:
    """The libraries a static libpython needs (-l...), without the search paths and
    runpaths the interpreter's build put beside them (pyenv's LIBS names its own lib
    directory): the launcher links no shared library of there, and a runpath would have
    the dynamic loader search it for libc and libm at every start."""
    flags = [f for text in flag_strings for f in (text or "").split()]
    return [f for f in flags if not f.startswith(("-L", "-Wl,-rpath", "-Wl,-R", "-R"))]


def search_path(python: str) -> str | None:
    """The module search path of the launcher that runs Python: STARTUP, then what
    `python -I -S` has; ':'-separated, None where an entry holds ':' (the launcher then
    starts on the standard library's encodings)."""
    r = subprocess.run([python, "-I", "-S", "-c", "import sys; print(repr(sys.path))"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    entries = [STARTUP, *ast.literal_eval(r.stdout)]
    return None if any(":" in e for e in entries) else ":".join(entries)


def compile_launcher(dest: str, python: str, boot: str, embed: bool | None = None, static: bool = True) -> str | None:
    """Build launcher.c into dest: "compiled, interpreter linked in" when it runs Python
    itself, "compiled" when it execs `python`; None where there is no C compiler or it
    fails.  embed: run on this interpreter's libpython (None: where `python` is this
    interpreter, the only one whose library we know): on its static library where static
    and it links (Debian's is not position-independent), else on the shared one."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return None
    if embed is None:
        embed = os.path.realpath(python) == os.path.realpath(sys.executable)
    builds: list[tuple[list[str], str]] = []
    if embed:
        path = search_path(python)
        for flags in (embed_flags(True) if static else None, embed_flags(False)):
            if flags is not None:
                flags += [f"-DPYRUNC_SEARCH_PATH={c_string(path)}"] if path else []
                builds.append((flags, "compiled, interpreter linked in"))
    builds.append(([], "compiled"))
    base = [cc, "-O2", "-Wall", "-Werror", "-o", dest, SOURCE]
    base += [f"-DPYRUNC_PYTHON={c_string(python)}", f"-DPYRUNC_BOOT={c_string(boot)}"]
    for extra, kind in builds:
        r = subprocess.run(base + extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode == 0:
            return kind
        if extra:  # a libpython this compiler cannot build on: the next build, in one line
            library = next((f for f in extra if f.endswith(".a")), "the shared libpython")
            lines = r.stderr.strip().splitlines() or [f"exit {r.returncode}"]
            sys.stderr.write(f"pyrunc.launcher: not built on {library} ({lines[0]}); trying the next build\n")
        else:
            sys.stderr.write(f"pyrunc.launcher: {cc} failed, installing the script launcher:\n{r.stderr}")
    return None


def write_script(dest: str, python: str, boot: str) -> None:
    with open(dest, "w") as f:
        f.write(f"#!{python} -IS\n{boot}\n")
    os.chmod(dest, 0o755)


def install(dest: str, python: str = sys.executable) -> str:
    """Replace dest (pip's console script, or an older launcher) in one rename; returns
    compile_launcher's kind, or "script"."""
    boot = boot_code(import_path())
    tmp = f"{dest}.tmp{os.getpid()}"
    kind = compile_launcher(tmp, python, boot)
    if kind is None:
        kind = "script"
        write_script(tmp, python, boot)
    os.rename(tmp, dest)
    return kind


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m pyrunc.launcher DEST\n")
        return 2
    print(f"pyrunc.launcher: {argv[0]}: {install(argv[0])}")
    return 0
