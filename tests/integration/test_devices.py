"""Device nodes in the container: the spec's default devices, the /dev links, the
config's linux.devices, and the bind-from-host fallback inside a user namespace."""

import os

import pytest

from tests.integration.rootfs_util import host_dir, host_mounts_under, mount_at, parse_mountinfo, run_ok  # noqa: F401

# path, major, minor (config-linux.md, "Default Devices")
DEFAULT_DEVICES = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
]

STAT = "stat -c '%n|%F|%t|%T|%a|%u|%g' "


def _stat_lines(out):
    """{path: (type, major, minor, mode, uid, gid)} from STAT output (major/minor in hex)."""
    result = {}
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 7:
            name, ftype, major, minor, mode, uid, gid = parts
            result[name] = (ftype, int(major, 16), int(minor, 16), mode, int(uid), int(gid))
    return result


def _check_default_devices(stats):
    for path, major, minor in DEFAULT_DEVICES:
        assert stats[path] == ("character special file", major, minor, "666", 0, 0), (path, stats[path])


def test_default_devices(pyrunc, bundle, test_id):
    paths = " ".join(p for p, _, _ in DEFAULT_DEVICES)
    out = run_ok(pyrunc, bundle, test_id, STAT + paths + "; echo data > /dev/null && head -c 5 /dev/zero | wc -c")
    _check_default_devices(_stat_lines(out))
    assert out.splitlines()[-1].strip() == "5"


def test_default_devices_replace_what_the_image_ships(pyrunc, bundle, test_id, host_dir):
    """Without a /dev mount the nodes are made in the rootfs's own /dev, replacing traps."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if not m["destination"].startswith("/dev")]
    host = host_dir("victim")
    os.symlink(os.path.join(host, "null"), os.path.join(bundle.rootfs, "dev", "null"))
    with open(os.path.join(bundle.rootfs, "dev", "zero"), "w") as f:
        f.write("not a device")
    out = run_ok(pyrunc, bundle, test_id, STAT + " ".join(p for p, _, _ in DEFAULT_DEVICES))
    _check_default_devices(_stat_lines(out))
    assert os.listdir(host) == []


def test_dev_links(pyrunc, bundle, test_id):
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "for l in ptmx fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done; "
        "ls /dev/fd/ >/dev/null && echo fd-ok; (echo to-stdout > /dev/stdout) | cat; "
        "echo via-stdin | cat /dev/stdin; "
        "test -c /dev/pts/ptmx && echo ptmx-ok",
    )
    assert "ptmx=pts/ptmx" in out
    assert "fd=/proc/self/fd" in out
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        assert f"{name}=/proc/self/fd/{i}" in out
    assert "fd-ok" in out and "to-stdout" in out and "via-stdin" in out and "ptmx-ok" in out


def test_config_devices_char_block_fifo(pyrunc, bundle, test_id):
    bundle.config["linux"]["devices"] = [
        {
            "path": "/dev/pyrunc-char",
            "type": "c",
            "major": 10,
            "minor": 200,
            "fileMode": 0o640,
            "uid": 1000,
            "gid": 1001,
        },
        {"path": "/dev/pyrunc-block", "type": "b", "major": 7, "minor": 3, "fileMode": 0o600, "uid": 0, "gid": 6},
        {"path": "/dev/pyrunc-fifo", "type": "p", "fileMode": 0o644},
        {"path": "/dev/deep/sub/pyrunc-u", "type": "u", "major": 1, "minor": 9},
    ]
    out = run_ok(pyrunc, bundle, test_id, STAT + "/dev/pyrunc-* /dev/deep/sub/pyrunc-u")
    stats = _stat_lines(out)
    assert stats["/dev/pyrunc-char"] == ("character special file", 10, 200, "640", 1000, 1001)
    assert stats["/dev/pyrunc-block"] == ("block special file", 7, 3, "600", 0, 6)
    ftype, _, _, mode, uid, gid = stats["/dev/pyrunc-fifo"]
    assert (ftype, mode, uid, gid) == ("fifo", "644", 0, 0)
    assert stats["/dev/deep/sub/pyrunc-u"] == ("character special file", 1, 9, "666", 0, 0)


def test_device_path_behind_a_symlink_stays_in_the_rootfs(pyrunc, bundle, test_id, host_dir):
    host = host_dir("victim")
    os.symlink(host, os.path.join(bundle.rootfs, "devlink"))
    os.symlink(os.path.join(host, "node2"), os.path.join(bundle.rootfs, "devnode"))
    bundle.config["linux"]["devices"] = [
        {"path": "/devlink/node", "type": "c", "major": 1, "minor": 3},
        {"path": "/devnode", "type": "c", "major": 1, "minor": 5},
    ]
    out = run_ok(pyrunc, bundle, test_id, STAT + f"{host}/node /devnode")
    stats = _stat_lines(out)
    assert stats[f"{host}/node"][:3] == ("character special file", 1, 3)
    assert stats["/devnode"][:3] == ("character special file", 1, 5)  # the link was replaced
    assert os.listdir(host) == []
    assert host_mounts_under(host) == []


@pytest.fixture
def userns_bundle(bundle):
    """The bundle in a new user namespace mapping ids 0-65535 onto themselves: the container
    can read the root-owned rootfs, and mknod is still refused (it needs the host's userns)."""
    lx = bundle.config["linux"]
    lx["namespaces"].append({"type": "user"})
    lx["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    lx["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    return bundle


def test_user_namespace_binds_the_hosts_devices(pyrunc, userns_bundle, test_id):
    bundle = userns_bundle
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "cat /proc/self/uid_map; "
        + STAT
        + " ".join(p for p, _, _ in DEFAULT_DEVICES)
        + "; echo x > /dev/null && echo null-ok; cat /proc/self/mountinfo",
    )
    assert out.split("\n")[0].split() == ["0", "0", "65536"]
    stats = _stat_lines(out)
    for path, major, minor in DEFAULT_DEVICES:
        assert stats[path][:3] == ("character special file", major, minor), (path, stats[path])
    assert "null-ok" in out
    mounts = parse_mountinfo(out)
    for path, _, _ in DEFAULT_DEVICES:
        assert mount_at(mounts, path).fstype == "devtmpfs"  # the host's node, bind-mounted
