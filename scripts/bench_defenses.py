"""What pyrunc's defenses cost: `run` of a busybox `true`, with and without them.

    .venv/bin/python scripts/bench_defenses.py [--runs N]

Variants: runc's default config (masked and read-only paths, dropped capabilities,
no_new_privs), the same stripped of those, and the default plus a Docker-shaped seccomp
profile (cached after its first compile, which is timed on its own).  The re-exec from a
sealed interpreter (linux/sealed_exe.py) is timed by running pyrunc also from a copy of
the interpreter that is read-only already, which needs none.  runc runs the default
config alongside when it is installed.  Prints medians and ratios; asserts nothing.
"""

import argparse
import copy
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from pyrunc.config.default import default_spec  # noqa: E402

PYRUNC = [sys.executable, "-I", "-m", "pyrunc"]


def rootfs(path):
    os.makedirs(os.path.join(path, "bin"))
    shutil.copy2(shutil.which("busybox") or "/bin/busybox", os.path.join(path, "bin", "busybox"))
    os.symlink("busybox", os.path.join(path, "bin", "true"))
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(path, d))


def docker_like_seccomp():
    import pyseccomp

    names = set()
    for nr in range(460):
        try:
            names.add(pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, nr).decode())
        except (OSError, ValueError):
            pass
    names -= {"mount", "umount2", "ptrace", "reboot", "kexec_load", "init_module", "bpf", "setns", "unshare"}
    return {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": sorted(names), "action": "SCMP_ACT_ALLOW"}]}


def variants():
    base = default_spec()
    base["process"]["terminal"] = False
    base["process"]["args"] = ["true"]
    base["linux"]["cgroupsPath"] = "/pyrunc-bench"
    bare = copy.deepcopy(base)
    bare["linux"].pop("maskedPaths")
    bare["linux"].pop("readonlyPaths")
    bare["process"]["noNewPrivileges"] = False
    caps = [
        "CAP_" + c
        for c in (
            "CHOWN",
            "DAC_OVERRIDE",
            "FSETID",
            "FOWNER",
            "MKNOD",
            "NET_RAW",
            "SETGID",
            "SETUID",
            "SETFCAP",
            "SETPCAP",
            "NET_BIND_SERVICE",
            "SYS_CHROOT",
            "KILL",
            "AUDIT_WRITE",
            "SYS_ADMIN",
        )
    ]
    bare["process"]["capabilities"] = {s: caps for s in ("bounding", "effective", "permitted")}
    seccomp = copy.deepcopy(base)
    seccomp["linux"]["seccomp"] = docker_like_seccomp()
    return {"no defenses": bare, "runc default": base, "default + seccomp": seccomp}


def read_only_interpreter(tmp):
    """A venv whose interpreter is a copy bind-mounted read-only on itself (unmount it
    after): pyrunc run by it is sealed from the start and never re-executes."""
    venv = os.path.join(tmp, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--copies", "--without-pip", venv], check=True)
    site = os.path.join(venv, "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}", "site-packages")
    with open(os.path.join(site, "pyrunc-bench.pth"), "w") as f:
        f.write("\n".join([os.path.dirname(HERE)] + [p for p in sys.path if p.endswith("site-packages")]) + "\n")
    python = os.path.realpath(os.path.join(venv, "bin", "python"))
    subprocess.run(["mount", "--bind", python, python], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", python], check=True)
    return python


def timed(cmd, cwd):
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="pyrunc-bench-")
    try:
        state = os.path.join(tmp, "state")
        presealed = read_only_interpreter(tmp)
        runs = {}  # variant -> (bundle, command); timed in alternation, so drift hits all alike
        for name, cfg in variants().items():
            path = os.path.join(tmp, name.replace(" ", "-"))
            rootfs(os.path.join(path, "rootfs"))
            with open(os.path.join(path, "config.json"), "w") as f:
                json.dump(cfg, f)
            if name != "default + seccomp":
                runs[name + ", no re-exec"] = (path, [presealed] + PYRUNC[1:] + ["--root", state, "run"])
            runs[name] = (path, PYRUNC + ["--root", state, "run"])
            if name == "runc default" and shutil.which("runc"):
                runs["runc, runc default"] = (path, ["runc", "--root", os.path.join(tmp, "runc-state"), "run"])
        seccomp_bundle, seccomp_run = runs["default + seccomp"]
        first = timed(seccomp_run + [f"pyrunc-bench-{uuid.uuid4().hex[:8]}"], seccomp_bundle)
        print(f"seccomp profile's first run (compiles, fills the cache): {first * 1000:.0f} ms")
        results = {name: [] for name in runs}
        for _ in range(args.runs):
            for name, (path, cmd) in runs.items():
                results[name].append(timed(cmd + [f"pyrunc-bench-{uuid.uuid4().hex[:8]}"], path))
        ref = statistics.median(results["no defenses, no re-exec"])
        print(f"{'variant':<32} {'median ms':>10} {'vs no defenses':>15}")
        for name, times in results.items():
            med = statistics.median(times)
            print(f"{name:<32} {med * 1000:>10.1f} {med / ref:>14.2f}x")
    finally:
        subprocess.run(["umount", os.path.join(tmp, "venv", "bin", "python")], stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
