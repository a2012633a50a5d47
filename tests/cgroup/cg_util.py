"""Helpers for the cgroup tests: where a container's cgroup files are on this host,
whatever its kind (v1, hybrid or pure v2)."""

import json
import os
import subprocess
import sys
import time

from pyrunc.linux.cgroups import CGROUP_MOUNT_ROOT, probe
from pyrunc.linux.kernel import Kernel

MODE = probe(Kernel())
V2 = MODE == "v2"

# The v2 file, and the v1 (controller, file), of each thing the tests look at.
FILES = {
    "memory.limit": ("memory.max", "memory", "memory.limit_in_bytes"),
    "pids.max": ("pids.max", "pids", "pids.max"),
    "cpu.quota": ("cpu.max", "cpu", "cpu.cfs_quota_us"),
    "procs": ("cgroup.procs", "pids", "cgroup.procs"),
    "memory.stat": ("memory.stat", "memory", "memory.stat"),
}


def cgroup_file(cgroups_path, what):
    v2_name, controller, v1_name = FILES[what]
    if V2:
        return os.path.join(CGROUP_MOUNT_ROOT, cgroups_path.lstrip("/"), v2_name)
    return os.path.join(CGROUP_MOUNT_ROOT, controller, cgroups_path.lstrip("/"), v1_name)


def read(path):
    with open(path) as f:
        return f.read().strip()


def hierarchy_dirs(cgroups_path):
    """The container's directory in every hierarchy of the host."""
    if V2:
        return [os.path.join(CGROUP_MOUNT_ROOT, cgroups_path.lstrip("/"))]
    return [
        os.path.join(CGROUP_MOUNT_ROOT, h, cgroups_path.lstrip("/"))
        for h in sorted(os.listdir(CGROUP_MOUNT_ROOT))
        if not os.path.islink(os.path.join(CGROUP_MOUNT_ROOT, h))
        and os.path.isfile(os.path.join(CGROUP_MOUNT_ROOT, h, "cgroup.procs"))
    ]


def any_left(cgroups_path):
    parent = "/" + cgroups_path.strip("/").split("/")[0]
    return [d for d in hierarchy_dirs(parent) if os.path.exists(d)]


def wait_for(predicate, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_detached(pyrunc, bundle, test_id, script):
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.write()
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    return pyrunc.state(test_id)["pid"]


def events_stream(pyrunc, test_id, out_path, *flags):
    """`pyrunc events` in the background, writing to a file (see conftest's Pyrunc)."""
    out = open(out_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyrunc", "--root", pyrunc.root, "events", *flags, test_id],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    out.close()
    return proc


def json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def freezer_dir(cgroups_path):
    """The directory whose freeze file freezes the cgroup: v1's freezer hierarchy, or v2's."""
    if V2:
        return os.path.join(CGROUP_MOUNT_ROOT, cgroups_path.lstrip("/"))
    return os.path.join(CGROUP_MOUNT_ROOT, "freezer", cgroups_path.lstrip("/"))


def set_frozen(directory, frozen):
    """Freeze (or thaw) a cgroup directory of freezer_dir's, as an outsider would."""
    name, value = (
        ("cgroup.freeze", "1" if frozen else "0") if V2 else ("freezer.state", "FROZEN" if frozen else "THAWED")
    )
    with open(os.path.join(directory, name), "w") as f:
        f.write(value)


def freeze_command(cgroups_path):
    """A shell line that freezes the cgroup (for a hook)."""
    d = freezer_dir(cgroups_path)
    return f"echo 1 > {d}/cgroup.freeze" if V2 else f"echo FROZEN > {d}/freezer.state"
