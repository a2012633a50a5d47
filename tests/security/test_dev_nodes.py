"""CVE-2025-31133, CVE-2025-52565, CVE-2025-52881: what the runtime bind-mounts from the
container's /dev is replaced, before or during create, by a symlink or another file.

- Masked files get /dev/null bound over them.  If /dev/null were a symlink to
  /proc/sys/kernel/core_pattern, "masking" /proc/kcore would put a writable
  core_pattern (the host's) in the container.  rootfs._dev_null opens /dev/null inside
  the root without magic links and checks it is the character device 1:3 before binding
  that very fd; rootfs._check_is_null checks what shows at the masked path afterwards.
- /dev/console gets the container's pty bound over it.  If the slave were opened by its
  path /dev/pts/N, an image (with no devpts mounted there) could make that any file, then
  bound on /dev/console and used as the container's stdio.  init._setup_terminal takes
  the slave from the master (TIOCGPTPEER) and init._bind_console checks the result.

Here /dev is the image's own (no tmpfs mounted on it), so that the image, and a racer
on the host standing in for another container, can reach it.
"""

import os

import pytest

from tests.integration.console_util import ConsoleSocket, read_until
from tests.security.sec_util import Racer, run_ok

MASKED_FILES = (
    "/proc/kcore",
    "/proc/keys",
    "/proc/timer_list",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/acpi",
    "/proc/scsi",
)

PROBE_MASKS = (
    "for f in " + " ".join(MASKED_FILES) + "; do if [ -e $f ] && [ ! -d $f ]; then stat -c '%n %F %t:%T' $f; fi; done"
)


def _image_dev(bundle):
    """Drop the config's /dev tmpfs: the rootfs's own /dev is the container's."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]


def _masks_are_null(out):
    lines = out.splitlines()
    assert lines, out
    for line in lines:
        assert line.endswith(" character special file 1:3"), out


def test_masked_files_are_the_null_device(pyrunc, bundle, test_id):
    _masks_are_null(run_ok(pyrunc, bundle, test_id, PROBE_MASKS))


@pytest.mark.parametrize("kind", ["symlink-to-procfs", "regular-file"])
def test_an_image_dev_null_is_replaced_by_the_device(pyrunc, bundle, test_id, kind):
    """The image ships /dev/null as a trap: pyrunc makes the real node in its place."""
    _image_dev(bundle)
    null = os.path.join(bundle.rootfs, "dev", "null")
    if kind == "regular-file":
        with open(null, "w") as f:
            f.write("trap\n")
    else:
        os.symlink("/proc/sys/kernel/core_pattern", null)
    _masks_are_null(run_ok(pyrunc, bundle, test_id, PROBE_MASKS))


def test_a_dev_null_swapped_during_create_is_never_used_to_mask(pyrunc, bundle, test_id):
    """/dev/null flips between the node pyrunc made and a symlink to core_pattern while
    containers are created: each create either fails cleanly or masks with the null
    device, never with core_pattern."""
    _image_dev(bundle)
    dev = os.path.join(bundle.rootfs, "dev")
    open(os.path.join(dev, "null"), "w").close()
    os.symlink("/proc/sys/kernel/core_pattern", os.path.join(dev, "null-link"))
    with open("/proc/sys/kernel/core_pattern") as f:
        core_pattern = f.read()
    results = []
    with Racer(os.path.join(dev, "null"), os.path.join(dev, "null-link")):
        for i in range(8):
            bundle.config["process"]["args"] = ["sh", "-c", PROBE_MASKS]
            bundle.write()
            results.append(pyrunc("run", "--bundle", bundle.path, f"{test_id}-{i}"))
    for r in results:
        if r.code == 0:
            _masks_are_null(r.out)
        else:
            assert r.err.startswith("pyrunc: create ") and len(r.err.splitlines()) == 1, results
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == core_pattern


# --- /dev/console ------------------------------------------------------------------------

PROBE_TTY = (
    "stat -L -c 'console %F %t' /dev/console; stat -L -c 'stdin %F %t' /proc/self/fd/0; "
    "stat -L -c 'stdout %F %t' /proc/self/fd/1; echo end"
)


def test_the_console_is_the_pty_whatever_the_images_dev_pts_holds(pyrunc, bundle, test_id, tmp_path):
    """The image's /dev/ptmx leads to a devpts mounted elsewhere (/devpts), and its
    /dev/pts/N are symlinks to a file of its own: the pty is used all the same, and the
    image's file is neither the console nor the container's stdio."""
    _image_dev(bundle)
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev/pts"]
    bundle.config["mounts"].append(
        {
            "destination": "/devpts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
        }
    )
    dev = os.path.join(bundle.rootfs, "dev")
    os.symlink("/devpts/ptmx", os.path.join(dev, "ptmx"))
    os.mkdir(os.path.join(dev, "pts"))
    for n in range(16):
        os.symlink("/canary", os.path.join(dev, "pts", str(n)))
    canary = os.path.join(bundle.rootfs, "canary")
    open(canary, "w").close()
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["args"] = ["sh", "-c", PROBE_TTY]
    bundle.write()
    console = ConsoleSocket(str(tmp_path / "console.sock"))
    try:
        r = pyrunc("create", "--console-socket", console.path, "--bundle", bundle.path, test_id)
        assert r.code == 0, r
        master = console.receive()
        try:
            assert pyrunc("start", test_id).code == 0
            out = read_until(master, b"end")
        finally:
            os.close(master)
    finally:
        console.close()
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    # 88 is 136 (the first pty slave major) in hex, as stat's %t prints it.
    assert lines[:3] == [
        "console character special file 88",
        "stdin character special file 88",
        "stdout character special file 88",
    ], out
    with open(canary) as f:
        assert f.read() == ""
