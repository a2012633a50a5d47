"""A prototype of an order `create` does not have yet: its first child forked before the
runtime loads its own create-side code, so that the child loads the init's code while the
parent checks the config (issue 23; docs/performance.md, part L).

    python bench/early_fork.py [--runs N]          (as root or not: nothing is mounted)

Both orders run the same program, PROTOTYPE, in a launcher built for it (pyrunc's own
launcher.c with PROTOTYPE as its boot code: the same interpreter, static libpython, startup
`encodings` and built-in kernel primitive as `pyrunc`), on the suite's busybox bundle:

* `now`, create's order today: the runtime imports its create side (the lifecycle, the
  store, the config's model and checks, the kernel seam, the requests and the spawn
  side), checks config.json, then forks; the child moves to the other CPU (as
  spawn.cpus_apart), loads the init's code (init, rootfs, mounts, devices, paths,
  network, cgroupfs) and reports ready.
* `early`: the runtime forks first, with only its CLI loaded; the child moves to the
  other CPU, loads the init's code and the config's model, and waits; the runtime
  imports its create side, checks config.json, and sends the checked document; the child
  builds the model from it and forks the init (as the stage-1 process of a container
  with a user namespace does today), which reports ready.

Each round times both, alternating which goes first, from the fork of the launcher to its
exit, which follows the ready report: what lies before the init's first namespace.
Medians, and the per-round ratio early / now with its middle half.  No container is made:
no namespace, mount or cgroup; the built launcher is removed at the end.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import bundle  # noqa: E402
from report import median, per_round, quartiles  # noqa: E402

from pyrunc import launcher  # noqa: E402

PROTOTYPE = r"""
import os, sys
sys.path += %(path)r
from pyrunc.cli import containers  # noqa: F401  (the CLI create, run and exec load first)
mode, bundle_dir = sys.argv[1], sys.argv[2]
CREATE_SIDE = ("pyrunc.run", "pyrunc.lifecycle", "pyrunc.store", "pyrunc.options", "pyrunc.config.model",
               "pyrunc.config.validate", "pyrunc.notify", "pyrunc.linux.kernel", "pyrunc.linux.requests",
               "pyrunc.linux.spawn")
INIT_SIDE = ("pyrunc.linux.init", "pyrunc.linux.rootfs", "pyrunc.linux.mounts", "pyrunc.linux.devices",
             "pyrunc.linux.paths", "pyrunc.linux.network", "pyrunc.linux.cgroupfs")

def load(names):
    for name in names:
        __import__(name)

def checked():
    from pyrunc.config import validate
    return validate.load_config(bundle_dir)

def apart():
    from pyrunc.linux.kernel import Kernel
    every = set(range(os.cpu_count() or 1))
    if len(every) > 1:
        os.sched_setaffinity(0, every - {Kernel().current_cpu()})

ready_r, ready_w = os.pipe()
if mode == "now":
    load(CREATE_SIDE)
    doc = checked()
    from pyrunc.config import model
    cfg = model.from_dict(doc, bundle_dir)
    if os.fork() == 0:
        apart()
        load(INIT_SIDE)
        os.write(ready_w, b"r")
        os._exit(0)
else:
    go_r, go_w = os.pipe()
    if os.fork() == 0:
        apart()
        load(INIT_SIDE)
        from pyrunc import jsonc
        from pyrunc.config import model
        data = b""
        while not data.endswith(b"\n"):
            data += os.read(go_r, 1 << 16)
        cfg = model.from_dict(jsonc.loads(data.decode()), bundle_dir)
        if os.fork() == 0:  # the init
            os.write(ready_w, b"r")
        os._exit(0)
    load(CREATE_SIDE)
    doc = checked()
    from pyrunc import jsonc
    os.write(go_w, (jsonc.dumps(doc) + "\n").encode())
os.read(ready_r, 1)
os.wait()
os._exit(0)
"""


def build(dest):
    boot = PROTOTYPE % {"path": launcher.import_path()}
    kind = launcher.compile_launcher(dest, sys.executable, boot, True, True)
    if kind != "compiled, interpreter linked in":
        sys.exit("early_fork.py: this interpreter has no static libpython to build the prototype's launcher on")


def timed(argv):
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.execv(argv[0], argv)
    _, status, _ = os.wait4(pid, 0)
    if status != 0:
        sys.exit(f"early_fork.py: {argv} exited {status}")
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix=f"{bundle.PREFIX}-early-")
    try:
        rootfs = os.path.join(scratch, "rootfs")
        bundle.make_rootfs(rootfs)
        config = bundle.base_config(scratch)
        config["root"]["path"] = rootfs
        bundle_dir = os.path.join(scratch, "bundle")
        os.mkdir(bundle_dir)
        with open(os.path.join(bundle_dir, "config.json"), "w") as f:
            json.dump(config, f)
        proto = os.path.join(scratch, "prototype")
        build(proto)
        samples = {"now": [], "early": []}
        for i in range(args.runs + 1):
            order = ("now", "early") if i % 2 else ("early", "now")
            for mode in order:
                t = timed([proto, mode, bundle_dir])
                if i:  # the first round warms the caches, untimed
                    samples[mode].append(t)
        ratios = per_round(samples["early"], samples["now"])
        q1, q3 = quartiles(ratios)
        print(f"{args.runs} rounds, load {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
        for mode, xs in samples.items():
            print(f"{mode:5}  median {median(xs) * 1e3:.2f} ms")
        print(f"early / now, per round: {median(ratios):.3f} ({q1:.3f}-{q3:.3f})")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
