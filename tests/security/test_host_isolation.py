"""After pivot_root the container sees its own filesystem only: the host's root is
detached (rootfs.pivot_root), no process of the runtime is in view (the init execs the
user's program as pid 1 of the new pid namespace), and the maskedPaths of the config
(/proc/kcore, /proc/keys, /sys/firmware, ...) show nothing (rootfs.mask_paths) while
the readonlyPaths refuse writes (rootfs.readonly_paths)."""

import os
import uuid

from tests.integration.rootfs_util import parse_mountinfo
from tests.security.sec_util import run_ok

CONTAINER_MOUNTS = ("/", "/proc", "/dev", "/sys")


def test_the_hosts_files_and_mounts_are_out_of_reach(pyrunc, bundle, test_id, host_dir):
    marker_dir = host_dir("sec-marker")
    token = uuid.uuid4().hex
    marker = os.path.join(marker_dir, "secret")
    with open(marker, "w") as f:
        f.write(token + "\n")
    tries = [
        marker,
        f"/proc/1/root{marker}",
        f"/proc/self/root{marker}",
        f"/proc/1/cwd/../../../../..{marker}",
        f"/..{marker}",
        f"/dev/../..{marker}",
    ]
    script = (
        "; ".join(f"cat {t} 2>/dev/null" for t in tries)
        + "; cd /..; echo up=$(pwd) $(ls | wc -l) $(ls / | wc -l)"
        + "; for p in /proc/[0-9]*; do busybox tr '\\0' ' ' < $p/cmdline; echo; done"
        + "; echo ===; cat /proc/self/mountinfo"
    )
    out = run_ok(pyrunc, bundle, test_id, script)
    assert token not in out
    head, _, mountinfo = out.partition("===\n")
    lines = head.splitlines()
    up = lines[0].split()
    assert up[0] == "up=/" and up[1] == up[2], out  # `..` of / is /
    assert not [c for c in lines[1:] if "python" in c or "-m pyrunc" in c], out  # no runtime in view
    for m in parse_mountinfo(mountinfo):
        assert m.point in CONTAINER_MOUNTS or m.point.startswith(tuple(p + "/" for p in CONTAINER_MOUNTS[1:])), m
    assert bundle.path not in mountinfo.replace(bundle.rootfs, "")  # only the rootfs is named


def test_masked_paths_show_nothing(pyrunc, bundle, test_id):
    """Every maskedPath of runc's default config that this kernel has."""
    masked = [p for p in bundle.config["linux"]["maskedPaths"] if os.path.exists(p)]
    assert "/proc/keys" in masked and "/sys/firmware" in masked  # (this kernel has no kcore)
    script = "; ".join(
        f"if [ -d {p} ]; then echo {p} $(ls -A {p} | wc -l) $(touch {p}/x 2>/dev/null && echo writable); "
        f"else echo {p} $(head -c 4096 {p} | wc -c); fi"
        for p in masked
    )
    out = run_ok(pyrunc, bundle, test_id, script)
    assert out.split("\n")[:-1] == [f"{p} 0" for p in masked], out


def test_readonly_paths_refuse_writes(pyrunc, bundle, test_id):
    """A write that would be harmless if it went through: the domain name of the
    container's own UTS namespace."""
    readonly = bundle.config["linux"]["readonlyPaths"]
    assert "/proc/sys" in readonly and "/proc/sysrq-trigger" in readonly
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "(echo changed > /proc/sys/kernel/domainname) 2>&1; echo rc=$?; cat /proc/self/mountinfo",
    )
    assert "Read-only file system" in out and "rc=1" in out, out
    mounts = {m.point: m for m in parse_mountinfo(out.partition("rc=1\n")[2])}
    for path in readonly:
        if os.path.exists(path):
            assert "ro" in mounts[path].options, (path, mounts.get(path))
