"""maskedPaths cannot be read, readonlyPaths cannot be written, and a /dev/null that is
not the null device is never used to mask (CVE-2025-31133)."""

import os

import pytest

from tests.integration.rootfs_util import (  # noqa: F401
    add_mount,
    host_dir,
    host_mounts_under,
    mount_at,
    parse_mountinfo,
    run_ok,
    run_sh,
)


def test_runc_default_masked_paths_show_nothing(pyrunc, bundle, test_id):
    masked = bundle.config["linux"]["maskedPaths"]
    assert "/proc/kcore" in masked and "/sys/firmware" in masked and "/proc/keys" in masked
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "echo keys=$(wc -c < /proc/keys); echo timer=$(wc -c < /proc/timer_list); "
        "echo firmware=$(ls -A /sys/firmware | wc -l); touch /sys/firmware/x 2>&1; "
        "if [ -e /proc/kcore ]; then echo kcore=$(head -c 16 /proc/kcore | wc -c); fi; "
        "cat /proc/self/mountinfo",
    )
    assert "keys=0" in out and "timer=0" in out and "firmware=0" in out
    assert "Read-only file system" in out
    if os.path.exists("/proc/kcore"):
        assert "kcore=0" in out
    mounts = parse_mountinfo(out)
    assert mount_at(mounts, "/sys/firmware").fstype == "tmpfs"
    assert "ro" in mount_at(mounts, "/sys/firmware").options
    assert mount_at(mounts, "/proc/keys").point == "/proc/keys"


def test_unmasked_proc_files_do_have_content(pyrunc, bundle, test_id):
    """The other side of the previous test: without masking the same reads see data."""
    bundle.config["linux"]["maskedPaths"] = []
    out = run_ok(
        pyrunc, bundle, test_id, "echo timer=$(wc -c < /proc/timer_list); echo firmware=$(ls -A /sys/firmware | wc -l)"
    )
    assert "timer=0" not in out and "firmware=0" not in out


def test_masked_paths_from_the_image(pyrunc, bundle, test_id):
    with open(os.path.join(bundle.rootfs, "etc", "secret"), "w") as f:
        f.write("secret-data")
    os.makedirs(os.path.join(bundle.rootfs, "secretdir", "inner"))
    os.symlink("/etc/passwd", os.path.join(bundle.rootfs, "masklink"))
    bundle.config["linux"]["maskedPaths"] = ["/etc/secret", "/secretdir", "/masklink", "/no/such/path"]
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "echo secret=$(cat /etc/secret); echo dir=$(ls -A /secretdir | wc -l); "
        "echo passwd=$(wc -c < /etc/passwd); mkdir /secretdir/x 2>&1; true",
    )
    assert "secret=\n" in out and "dir=0" in out
    assert "passwd=0" in out  # a masked symlink masks its target inside the container
    assert "Read-only file system" in out
    with open(os.path.join(bundle.rootfs, "etc", "secret")) as f:
        assert f.read() == "secret-data"


def test_masked_symlink_to_a_host_path_touches_nothing_there(pyrunc, bundle, test_id, host_dir):
    host = host_dir("victim")
    victim = os.path.join(host, "secret")
    with open(victim, "w") as f:
        f.write("host-secret")
    os.symlink(victim, os.path.join(bundle.rootfs, "hostlink"))
    bundle.config["linux"]["maskedPaths"] = ["/hostlink"]
    run_ok(pyrunc, bundle, test_id, "true")
    with open(victim) as f:
        assert f.read() == "host-secret"
    assert host_mounts_under(host) == []


def test_runc_default_readonly_paths_refuse_writes(pyrunc, bundle, test_id):
    readonly = bundle.config["linux"]["readonlyPaths"]
    assert "/proc/sys" in readonly and "/proc/sysrq-trigger" in readonly
    # kernel.hostname is per UTS namespace: harmless to the host even if the write went through.
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "(echo pyrunc-changed > /proc/sys/kernel/hostname) 2>&1; echo rc=$?; hostname; "
        "cat /proc/sys/kernel/ostype; cat /proc/self/mountinfo",
    )
    assert "Read-only file system" in out and "rc=1" in out
    assert "pyrunc-changed" not in out
    assert "Linux" in out  # still readable
    mounts = parse_mountinfo(out)
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq"):
        if os.path.exists(path):
            assert "ro" in mount_at(mounts, path).options, path


def test_readonly_path_from_the_image(pyrunc, bundle, test_id):
    # /bin holds the shell itself: read-only must not also mean noexec.
    bundle.config["linux"]["readonlyPaths"] = ["/etc", "/bin", "/no/such/path"]
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "touch /etc/new 2>&1; echo rc=$?; cat /etc/group; touch /root/ok && echo root-ok; "
        "touch /bin/new 2>&1; cat /proc/self/mountinfo",
    )
    assert "Read-only file system" in out and "rc=1" in out
    assert "root:x:0:" in out and "root-ok" in out
    assert not os.path.exists(os.path.join(bundle.rootfs, "etc", "new"))
    assert not os.path.exists(os.path.join(bundle.rootfs, "bin", "new"))
    mounts = parse_mountinfo(out)
    for path in ("/etc", "/bin"):
        m = mount_at(mounts, path)
        assert "ro" in m.options and "noexec" not in m.options, m


def _fake_dev(bundle, null):
    """A bind-mounted /dev from the bundle whose `null` is whatever `null(path)` makes."""
    fake = os.path.join(bundle.path, "fakedev")
    os.mkdir(fake)
    null(os.path.join(fake, "null"))
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if not m["destination"].startswith("/dev")]
    add_mount(bundle, "/dev", "bind", fake, ["rbind"])


def _regular_file(path):
    with open(path, "w") as f:
        f.write("not-null")


def _symlink_to_procfs(path):
    os.symlink("/proc/sys/kernel/core_pattern", path)


def _symlink_to_writable_file(path):
    os.symlink("/etc/passwd", path)


@pytest.mark.parametrize(
    "null",
    [_regular_file, _symlink_to_procfs, _symlink_to_writable_file],
    ids=["regular-file", "symlink-to-procfs", "symlink-to-file"],
)
def test_fake_dev_null_is_never_used_to_mask(pyrunc, bundle, test_id, null):
    _fake_dev(bundle, null)
    bundle.config["linux"]["maskedPaths"] = ["/proc/keys", "/proc/timer_list"]
    r = run_sh(pyrunc, bundle, test_id, "cat /proc/self/mountinfo")
    assert r.code == 1, r
    assert r.err.startswith(f"pyrunc: create {test_id}: mask /proc/keys with /dev/null: "), r
    assert "not the null device" in r.err, r
    assert len(r.err.strip().splitlines()) == 1
    assert not os.path.exists(pyrunc.root) or os.listdir(pyrunc.root) == []


def test_real_dev_null_from_a_bound_dev_masks_fine(pyrunc, bundle, test_id):
    """The check refuses only fakes: a bind-mounted /dev with the real null device works."""
    _fake_dev(bundle, lambda path: os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3)))
    bundle.config["linux"]["maskedPaths"] = ["/proc/timer_list"]
    out = run_ok(pyrunc, bundle, test_id, "echo timer=$(wc -c < /proc/timer_list)")
    assert "timer=0" in out
