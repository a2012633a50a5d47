#!/bin/sh
# Build a busybox bundle in demo/ and run a container in it that shows what it sees.
set -eu
cd "$(dirname "$0")/.."
rm -rf demo
mkdir -p demo/rootfs/bin demo/rootfs/proc demo/rootfs/dev demo/rootfs/sys demo/rootfs/tmp demo/rootfs/etc
cp "$(command -v busybox)" demo/rootfs/bin/busybox
for applet in $(demo/rootfs/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "demo/rootfs/bin/$applet"
done
.venv/bin/pyrunc spec --bundle demo
.venv/bin/python - <<'PY'
import json
path = "demo/config.json"
cfg = json.load(open(path))
cfg["process"]["terminal"] = False
# A cgroup of the demo's own at the top, not under whatever cgroup runs `make demo`.
cfg["linux"]["cgroupsPath"] = "/pyrunc-demo"
cfg["process"]["args"] = ["sh", "-c",
    "echo \"hostname: $(hostname)\"; echo \"pid 1: $(cat /proc/1/cmdline | tr '\\0' ' ')\"; "
    "echo \"uid: $(id)\"; grep Cap /proc/self/status; echo mounts:; cat /proc/self/mounts"]
json.dump(cfg, open(path, "w"), indent=2)
PY
cd demo
../.venv/bin/pyrunc --root /run/pyrunc run "pyrunc-demo-$$"
cd ..
# An image, without an engine: OCI layout -> bundle (overlay of the stored layer) -> run.
exec .venv/bin/python scripts/demo-image.py
