#!/usr/bin/env python3
"""The bundle of docs/trace.md's guided tour: Debian's busybox-static as the rootfs,
`pyrunc spec`'s config running `echo`, and a small seccomp profile.

    .venv/bin/python docs/examples/trace_tour.py /tmp/tour
    pyrunc --trace /tmp/tour.jsonl run --bundle /tmp/tour tour
    pyrunc trace show /tmp/tour.jsonl

tests/integration/test_trace.py builds the same bundle and checks that the tour names
every step its trace shows.
"""

import json
import os
import shutil
import sys

BUSYBOX = "/bin/busybox"  # apt-get install busybox-static: one static binary


def tour_config(cgroups_path="/pyrunc-test-tour/tour"):
    from pyrunc.config.default import default_spec

    cfg = default_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["echo", "hello from busybox"]
    cfg["linux"]["cgroupsPath"] = cgroups_path
    # Deny the kernel keyring to the container (as Docker's default profile does), allow the rest.
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["add_key", "keyctl", "request_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    return cfg


def make_bundle(path, cfg=None, busybox=BUSYBOX):
    bindir = os.path.join(path, "rootfs", "bin")
    os.makedirs(bindir)
    shutil.copy2(busybox, os.path.join(bindir, "busybox"))
    for applet in ("sh", "echo"):
        os.symlink("busybox", os.path.join(bindir, applet))
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg or tour_config(), f, indent="\t")
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} BUNDLE")
    make_bundle(sys.argv[1])
