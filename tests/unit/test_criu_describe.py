"""What CRIU is told of a container (pyrunc/linux/criu_describe.py), from a config: the
external mounts at each end, the namespaces it leaves empty or joins by path."""

import os

import pytest

from pyrunc.config import model
from pyrunc.config.default import default_spec
from pyrunc.linux import criu_describe as d
from pyrunc.linux.kernel import CLONE_NEWNET


def config(tmp_path, mounts=(), masked=None, namespaces=None):
    doc = default_spec()
    doc["mounts"] += list(mounts)
    if masked is not None:
        doc["linux"]["maskedPaths"] = masked
    if namespaces is not None:
        doc["linux"]["namespaces"] = namespaces
    return model.from_dict(doc, str(tmp_path))


BIND = {"destination": "/data/", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]}
OPTION_BIND = {"destination": "/cfg", "source": "cfg", "options": ["bind"]}


def test_binds_are_saved_under_their_mount_point_and_restored_from_their_source(tmp_path):
    cfg = config(tmp_path, mounts=[BIND, OPTION_BIND])
    dumped = d.dump_mounts(cfg, [])
    assert {"key": "/data", "val": "/data"} in dumped
    assert {"key": "/cfg", "val": "/cfg"} in dumped
    restored = d.restore_mounts(cfg)
    assert {"key": "/data", "val": "/srv/data"} in restored
    # a relative source is the bundle's, as create reads it
    assert {"key": "/cfg", "val": os.path.join(str(tmp_path), "cfg")} in restored
    # proc, tmpfs, sysfs...: CRIU saves those itself
    assert not any(m["key"] in ("/proc", "/dev", "/sys") for m in dumped + restored)


def test_masked_files_are_saved_as_dev_null_and_come_back_from_it(tmp_path):
    cfg = config(tmp_path, masked=["/proc/kcore", "/proc/acpi"])
    dumped = d.dump_mounts(cfg, ["/proc/kcore"])  # /proc/acpi: a directory, a tmpfs
    assert {"key": "/proc/kcore", "val": "/dev/null"} in dumped
    assert not any(m["key"] == "/proc/acpi" for m in dumped)
    assert {"key": "/dev/null", "val": "/dev/null"} in d.restore_mounts(cfg)


def test_devices_are_named_at_both_ends(tmp_path):
    cfg = config(tmp_path)
    for side in (d.dump_mounts(cfg, []), d.restore_mounts(cfg)):
        assert {"key": "/dev/null", "val": "/dev/null"} in side
        assert {"key": "/dev/tty", "val": "/dev/tty"} in side


def test_the_network_namespace_is_always_left_empty(tmp_path):
    assert d.empty_ns(()) == CLONE_NEWNET
    assert d.empty_ns(("network",)) == CLONE_NEWNET
    with pytest.raises(ValueError, match="'pid' is not supported"):
        d.empty_ns(("pid",))


def test_a_joined_network_namespace_is_external(tmp_path):
    path = "/proc/self/ns/net"
    cfg = config(tmp_path, namespaces=[{"type": "pid"}, {"type": "network", "path": path}, {"type": "mount"}])
    assert d.joined_namespaces(cfg) == [("net", "extRootNetNS", path)]
    assert d.external_namespaces(cfg) == [f"net[{os.stat(path).st_ino}]:extRootNetNS"]
    assert d.joined_namespaces(config(tmp_path)) == []


def test_the_cgroup_v2_bind_is_external_and_comes_back_as_the_new_cgroup(tmp_path):
    cfg = config(tmp_path)  # runc's default: a cgroup mount at /sys/fs/cgroup, no cgroup namespace
    assert {"key": "/sys/fs/cgroup", "val": "/sys/fs/cgroup"} in d.dump_mounts(cfg, [], cgroup_v2=True)
    assert not any(m["key"] == "/sys/fs/cgroup" for m in d.dump_mounts(cfg, []))
    restored = d.restore_mounts(cfg, "/sys/fs/cgroup/pyrunc-test-x/c")
    assert {"key": "/sys/fs/cgroup", "val": "/sys/fs/cgroup/pyrunc-test-x/c"} in restored
    # With a cgroup namespace the mount is a fresh one, which CRIU saves itself.
    ns = [{"type": t} for t in ("pid", "network", "mount", "cgroup")]
    assert d.cgroup_binds(config(tmp_path, namespaces=ns)) == []


def test_restore_mountpoints_are_the_config_mounts_outside_what_criu_recreates(tmp_path):
    under_tmpfs = {"destination": "/dev/extra", "type": "bind", "source": "/srv/x", "options": ["bind"]}
    under_proc = {"destination": "/proc/sys", "type": "bind", "source": "/proc/sys", "options": ["bind"]}
    cfg = config(tmp_path, mounts=[BIND, OPTION_BIND, under_tmpfs, under_proc])
    points = d.restore_mountpoints(cfg)
    # the default spec's /proc, /dev (a tmpfs) and /sys: directories
    assert ("/proc", None) in points and ("/dev", None) in points and ("/sys", None) in points
    # binds with their sources (a relative one the bundle's), to tell a file from a directory
    assert ("/data", "/srv/data") in points
    assert ("/cfg", os.path.join(str(tmp_path), "cfg")) in points
    # what lies in a tmpfs CRIU restores, or in proc or sysfs, is not made in the rootfs
    made = [p for p, _ in points]
    assert not any(p.startswith(("/dev/", "/proc/", "/sys/")) for p in made), made


def test_restore_mountpoints_in_a_user_namespace_include_the_devices_unless_dev_is_a_tmpfs(tmp_path):
    userns = [{"type": "user"}, {"type": "mount"}, {"type": "pid"}]
    cfg = config(tmp_path, namespaces=userns)
    assert not any(p.startswith("/dev/") for p, _ in d.restore_mountpoints(cfg))
    doc = default_spec()
    doc["mounts"] = [m for m in doc["mounts"] if m["destination"] != "/dev"]
    doc["linux"]["namespaces"] = userns
    cfg = model.from_dict(doc, str(tmp_path))
    assert ("/dev/null", "/dev/null") in d.restore_mountpoints(cfg)


def test_cgroup_v1_hierarchies_are_external_binds_under_the_cgroup_mount(tmp_path):
    """On a v1 (or hybrid) host without a cgroup namespace, /sys/fs/cgroup is a tmpfs with
    a bind of the container's cgroup in each hierarchy: each bind is external, saved under
    its mount point and restored from the new container's directory in that hierarchy."""
    cfg = config(tmp_path)
    hierarchies = ["memory", "cpu,cpuacct", "unified"]
    dumped = d.dump_mounts(cfg, [], hierarchies=hierarchies)
    for name in hierarchies:
        assert {"key": f"/sys/fs/cgroup/{name}", "val": f"/sys/fs/cgroup/{name}"} in dumped
    assert not any(m["key"] == "/sys/fs/cgroup" for m in dumped)  # the tmpfs: CRIU saves it
    dirs = {
        "memory": "/sys/fs/cgroup/memory/pyrunc-test/ctr",
        "cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/pyrunc-test/ctr",
        "unified": "/sys/fs/cgroup/unified/pyrunc-test/ctr",
    }
    restored = d.restore_mounts(cfg, cgroup_dirs=dirs)
    for name, where in dirs.items():
        assert {"key": f"/sys/fs/cgroup/{name}", "val": where} in restored
    # v2's single bind is not described on a v1 host, nor v1's on a v2 host
    assert {"key": "/sys/fs/cgroup", "val": "/sys/fs/cgroup"} not in dumped
    assert not any(m["key"].startswith("/sys/fs/cgroup/") for m in d.dump_mounts(cfg, [], cgroup_v2=True))


def test_with_a_cgroup_namespace_the_hierarchies_are_criu_s_own(tmp_path):
    cfg = config(tmp_path, namespaces=[{"type": "mount"}, {"type": "pid"}, {"type": "cgroup"}])
    assert not any(m["key"].startswith("/sys/fs/cgroup") for m in d.dump_mounts(cfg, [], hierarchies=["memory"]))
    restored = d.restore_mounts(cfg, cgroup_dirs={"memory": "/sys/fs/cgroup/memory/x"})
    assert not any(m["key"].startswith("/sys/fs/cgroup") for m in restored)
