"""Install the `pyrunc` command: launcher.c compiled for this interpreter and this
checkout, so that the interpreter starts sealed and lean (no site, a fixed import path).
Without a C compiler, a Python script that starts it lean; pyrunc then seals itself with
a re-exec where it must (linux/sealed_exe.py).

    python -m pyrunc.launcher DEST        (make setup: DEST is .venv/bin/pyrunc)
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.c")


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


def compile_launcher(dest: str, python: str, boot: str) -> bool:
    """Build launcher.c into dest; False where there is no C compiler or it fails."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        return False
    r = subprocess.run(
        [
            cc,
            "-O2",
            "-Wall",
            "-Werror",
            "-o",
            dest,
            SOURCE,
            f"-DPYRUNC_PYTHON={c_string(python)}",
            f"-DPYRUNC_BOOT={c_string(boot)}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if r.returncode != 0:
        sys.stderr.write(f"pyrunc.launcher: {cc} failed, installing the script launcher:\n{r.stderr}")
    return r.returncode == 0


def write_script(dest: str, python: str, boot: str) -> None:
    with open(dest, "w") as f:
        f.write(f"#!{python} -IS\n{boot}\n")
    os.chmod(dest, 0o755)


def install(dest: str, python: str = sys.executable) -> str:
    """Replace dest (pip's console script, or an older launcher) in one rename; returns
    "compiled" or "script"."""
    boot = boot_code(import_path())
    tmp = f"{dest}.tmp{os.getpid()}"
    kind = "compiled" if compile_launcher(tmp, python, boot) else "script"
    if kind == "script":
        write_script(tmp, python, boot)
    os.rename(tmp, dest)
    return kind


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m pyrunc.launcher DEST\n")
        return 2
    print(f"pyrunc.launcher: {argv[0]}: {install(argv[0])}")
    return 0
