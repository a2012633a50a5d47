"""Read-only mounts with more to make under them: a read-only /dev whose devpts, shm and
mqueue mount points, devices and links are made after it, as runc makes them (the
read-only remount last); a read-only bind with a mount below it.  Each runs runc on the
same bundle where runc can."""

import os
import shutil
import tempfile

from tests.conftest import userns_copy
from tests.integration.cli_util import runc, set_args  # noqa: F401  (runc: a fixture)
from tests.integration.console_util import ConsoleSocket, read_until
from tests.integration.rootfs_util import host_dir  # noqa: F401  (a fixture)

# What the container sees of its /dev: writes refused, devpts and the devices usable,
# each /dev mount's point and per-mount options.
PROBE = (
    "touch /dev/x 2>/dev/null && echo wrote-dev || echo dev-read-only; "
    "ls /dev/pts/ptmx; echo hi > /dev/null && echo null-ok; "
    "mkdir /dev/shm/d && echo shm-ok; readlink /dev/ptmx; "
    "cut -d' ' -f5,6 /proc/self/mountinfo | grep '^/dev'"
)

WANT = ["dev-read-only", "/dev/pts/ptmx", "null-ok", "shm-ok", "pts/ptmx"]


def _dev_read_only(bundle):
    """runc's default /dev tmpfs with `ro` added; devpts, shm and mqueue stay under it."""
    [dev] = [m for m in bundle.config["mounts"] if m["destination"] == "/dev"]
    dev["options"] = list(dev["options"]) + ["ro"]
    under = [m["destination"] for m in bundle.config["mounts"] if m["destination"].startswith("/dev/")]
    assert {"/dev/pts", "/dev/shm", "/dev/mqueue"} <= set(under)


def _run(tool, bundle, cid):
    """(exit status, stdout) of `run` with pyrunc's fixture or runc's."""
    r = tool("run", "--bundle", bundle.path, cid)
    return (r.code, r.out) if hasattr(r, "code") else r[:2]


def test_read_only_dev_with_mounts_under_it_as_runc(pyrunc, runc, bundle, test_id):
    _dev_read_only(bundle)
    set_args(bundle, "sh", "-c", PROBE)
    code, out = _run(pyrunc, bundle, test_id)
    assert code == 0, (code, out, pyrunc("state", test_id))
    lines = out.splitlines()
    assert lines[:5] == WANT, out
    assert lines[5].split() == ["/dev", "ro,nosuid"], out  # strictatime kept: no relatime
    runc.use(bundle)
    theirs = _run(runc, bundle, test_id + "-runc")
    assert theirs == (0, out), theirs


def test_read_only_dev_in_a_user_namespace(pyrunc, bundle, test_id):
    """The devices are bind-mounted there, onto files made in the read-only /dev."""
    parent = tempfile.mkdtemp(prefix="pyrunc-test-rodev-")
    try:
        b = userns_copy(bundle, parent, 100000)
        b.config["linux"]["namespaces"].append({"type": "user"})
        # sysfs needs a network namespace of our own, as in runc's rootless spec: bind it.
        for m in b.config["mounts"]:
            if m["type"] == "sysfs":
                m.update(type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
        # A user namespace may not give devpts a gid it has not mapped; it has 5 here.
        _dev_read_only(b)
        set_args(b, "sh", "-c", PROBE)
        r = pyrunc("run", "--bundle", b.path, test_id)
        assert r.code == 0, r
        assert r.out.splitlines()[:5] == WANT, r
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def test_read_only_dev_with_a_terminal(pyrunc, bundle, test_id, tmp_path):
    """/dev/console is made in the read-only /dev, and the pty comes from its devpts."""
    _dev_read_only(bundle)
    bundle.config["process"]["terminal"] = True
    set_args(bundle, "sh", "-c", 'while read -r line; do eval "$line"; done')
    console = ConsoleSocket(str(tmp_path / "console.sock"))
    try:
        r = pyrunc("create", "--console-socket", console.path, "--bundle", bundle.path, test_id)
        assert r.code == 0, r
        master = console.receive()
    finally:
        console.close()
    try:
        assert pyrunc("start", test_id).code == 0
        os.write(master, b"tty; touch /dev/x || echo dev-$((1+1))-read-only; stat -c %t:%T /dev/console; exit\n")
        out = read_until(master)
    finally:
        os.close(master)
    lines = [line.strip() for line in out.splitlines()]
    assert "/dev/pts/0" in lines and "dev-2-read-only" in lines, out
    assert "88:0" in lines, out  # /dev/console is the pty (devpts' major 136 = 0x88)


def test_read_only_bind_with_a_mount_under_it_is_refused_as_by_runc(pyrunc, runc, bundle, test_id, host_dir):
    """A read-only bind is never made read-write for a while: the mount point of the entry
    below it would be made in the host's directory the config asked to see read-only.
    runc 1.1 fails it (mkdir of the mount point: read-only file system); so does pyrunc,
    naming the entry, and the host's directory is left as it was."""
    src = host_dir("robind")
    with open(os.path.join(src, "f"), "w") as f:
        f.write("from-host\n")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid"]},
        {"destination": "/data/sub/deeper", "type": "tmpfs", "source": "tmpfs", "options": []},
    ]
    set_args(bundle, "true")
    runc.use(bundle)
    code, _, err = runc("run", "--bundle", bundle.path, test_id + "-runc")
    assert code != 0 and "read-only file system" in err, err
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 1 and len(r.err.splitlines()) == 1, r
    assert "/data/sub/deeper" in r.err and "read-only file system" in r.err, r
    assert sorted(os.listdir(src)) == ["f"]
