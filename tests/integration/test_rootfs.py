"""The container's root filesystem: propagation, read-only root, every mount and its
options, destinations resolved inside the rootfs, sysctls, pivot_root, failures.

Each test runs a real busybox container that prints what it sees (mostly its own
/proc/self/mountinfo) and checks it against the config.
"""

import os

import pytest

from tests.integration.rootfs_util import (  # noqa: F401
    add_mount,
    host_dir,
    host_mount_lines,
    host_mounts_under,
    mount,
    mount_at,
    parse_mountinfo,
    run_ok,
    run_sh,
)

MOUNTINFO = "cat /proc/self/mountinfo"


# --- rootfsPropagation ------------------------------------------------------------------


@pytest.fixture
def shared_rootfs(bundle, host_dir):
    """The bundle's rootfs seen through a shared host mount, so that slave shows a master."""
    d = host_dir("shared-root")
    mount("--bind", bundle.rootfs, d)
    mount("--make-shared", d)
    bundle.config["root"]["path"] = d
    return d


# value -> (optional fields of "/" must contain, of a tmpfs mounted on /tmp must contain)
PROPAGATION = {
    "shared": ("shared:", None),
    "rshared": ("shared:", "shared:"),
    "slave": ("master:", None),
    "rslave": ("master:", None),
    "private": (None, None),
    "rprivate": (None, None),
    "unbindable": ("unbindable", None),
    "runbindable": ("unbindable", "unbindable"),
}


def _host_peer_group(point):
    with open("/proc/self/mountinfo") as f:
        [line] = [line for line in f if line.split()[4] == point]
    [group] = [f for f in line.split(" - ")[0].split()[6:] if f.startswith("shared:")]
    return group


def _fields(entry):
    return " ".join(entry.optional)


@pytest.mark.parametrize("value", sorted(v for v in PROPAGATION if v.startswith("r")))
def test_recursive_rootfs_propagation_is_refused_as_the_schema_says(pyrunc, bundle, test_id, value):
    """runc accepts rprivate & co.; the spec's schema (which pyrunc applies exactly) does not."""
    bundle.config["linux"]["rootfsPropagation"] = value
    bundle.write()
    r = pyrunc("run", test_id, "--bundle", bundle.path)
    assert r.code == 1 and "linux.rootfsPropagation" in r.err and value in r.err, r
    assert pyrunc("list", "-q").out == ""


@pytest.mark.parametrize("value", sorted(v for v in PROPAGATION if not v.startswith("r")))
def test_rootfs_propagation_is_set_on_the_root_mount(pyrunc, bundle, test_id, shared_rootfs, value):
    bundle.config["linux"]["rootfsPropagation"] = value
    add_mount(bundle, "/tmp", "tmpfs", "tmpfs")
    before = host_mounts_under(shared_rootfs)
    mounts = parse_mountinfo(run_ok(pyrunc, bundle, test_id, MOUNTINFO))
    root, tmp = mount_at(mounts, "/"), mount_at(mounts, "/tmp")
    want_root, want_tmp = PROPAGATION[value]
    if want_root is None:
        assert root.optional == [], root
    else:
        assert want_root in _fields(root), root
    if want_root == "master:":  # a slave receives from the host and sends to no one
        assert "shared:" not in _fields(root), root
    if want_root == "shared:":  # a new peer group, not the host's
        assert _host_peer_group(shared_rootfs) not in root.optional, root
    if want_tmp is None:
        assert not any(f.startswith(("shared:", "unbindable")) for f in tmp.optional), tmp
    else:
        assert want_tmp in _fields(tmp), tmp
    # Whatever the propagation, none of the container's mounts reached the host.
    assert host_mounts_under(shared_rootfs) == before


def test_default_propagation_makes_the_root_a_slave_of_the_host(pyrunc, bundle, test_id, shared_rootfs):
    bundle.config["linux"].pop("rootfsPropagation", None)
    root = mount_at(parse_mountinfo(run_ok(pyrunc, bundle, test_id, MOUNTINFO)), "/")
    assert "master:" in _fields(root) and "shared:" not in _fields(root), root


def _allow_mounting(bundle):
    caps = bundle.config["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind] = sorted(set(caps.get(kind, [])) | {"CAP_SYS_ADMIN"})


@pytest.mark.parametrize(
    "value, reaches_host", [("shared", True), (None, False)], ids=["shared-bidirectional", "default-slave"]
)
def test_mounts_in_an_rshared_volume_reach_the_host_only_when_asked(
    pyrunc, bundle, test_id, host_dir, value, reaches_host
):
    """Bidirectional volumes (runc's behaviour, used by Kubernetes): with a shared root and
    an `rshared` bind of a shared host directory, a mount made inside reaches the host."""
    vol = host_dir("volume")
    mount("--bind", vol, vol)
    mount("--make-shared", vol)
    os.mkdir(os.path.join(vol, "sub"))
    if value:
        bundle.config["linux"]["rootfsPropagation"] = value
    add_mount(bundle, "/vol", "bind", vol, ["rbind", "rshared"])
    _allow_mounting(bundle)
    run_ok(pyrunc, bundle, test_id, "mount -t tmpfs pyrunc-test-inner /vol/sub")
    assert (os.path.join(vol, "sub") in host_mounts_under(vol)) == reaches_host


# --- root.readonly ----------------------------------------------------------------------


def test_readonly_root_refuses_writes_but_a_tmpfs_stays_writable(pyrunc, bundle, test_id):
    bundle.config["root"]["readonly"] = True
    add_mount(bundle, "/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev"])
    out = run_ok(pyrunc, bundle, test_id, "touch /newfile 2>&1; echo rc=$?; touch /tmp/ok && echo tmp-ok; " + MOUNTINFO)
    assert "Read-only file system" in out and "rc=1" in out
    assert "tmp-ok" in out
    assert "ro" in mount_at(parse_mountinfo(out), "/").options
    assert not os.path.exists(os.path.join(bundle.rootfs, "newfile"))


def test_writable_root_by_default(pyrunc, bundle, test_id):
    out = run_ok(pyrunc, bundle, test_id, "touch /newfile && echo written; " + MOUNTINFO)
    assert "written" in out
    assert "rw" in mount_at(parse_mountinfo(out), "/").options
    assert os.path.exists(os.path.join(bundle.rootfs, "newfile"))


# --- mounts and their options -----------------------------------------------------------


def test_tmpcopyup_fills_the_tmpfs_with_what_it_covers(pyrunc, bundle, test_id, tmp_path):
    """podman's --read-only mounts tmpfs on /tmp, /var/tmp and /run with runc's tmpcopyup:
    the image's files there are copied in, symlinks as symlinks (never followed out of
    the rootfs), owners and modes kept; writes go to the tmpfs, not the image."""
    image = os.path.join(bundle.rootfs, "cu")
    os.makedirs(os.path.join(image, "sub"))
    with open(os.path.join(image, "sub", "file"), "w") as f:
        f.write("from-the-image\n")
    os.chown(os.path.join(image, "sub", "file"), 1000, 1001)
    os.chmod(os.path.join(image, "sub", "file"), 0o646)  # the default caps lack DAC_OVERRIDE
    host = tmp_path / "host-secret"
    host.write_text("host\n")
    os.symlink(str(host), os.path.join(image, "escape"))
    add_mount(bundle, "/cu", "tmpfs", "tmpfs", ["rw", "nosuid", "nodev", "tmpcopyup"])
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "cat /cu/sub/file; stat -c '%u:%g %a' /cu/sub/file; readlink /cu/escape; "
        "echo new > /cu/sub/file; cat /cu/sub/file; grep ' /cu ' /proc/self/mountinfo | grep -c tmpfs",
    )
    assert out.split("\n") == ["from-the-image", "1000:1001 646", str(host), "new", "1", ""], out
    with open(os.path.join(image, "sub", "file")) as f:
        assert f.read() == "from-the-image\n"  # the image is untouched
    assert host.read_text() == "host\n"


def test_tmpfs_mount_flags_and_data(pyrunc, bundle, test_id):
    cases = {
        "/m/ro": (["ro"], {"ro"}, set()),
        "/m/noexec": (["nosuid", "nodev", "noexec"], {"nosuid", "nodev", "noexec", "rw"}, set()),
        "/m/noatime": (["noatime"], {"noatime"}, {"relatime"}),
        "/m/relatime": (["relatime"], {"relatime"}, {"noatime"}),
        "/m/strictatime": (["strictatime"], set(), {"relatime", "noatime"}),
        "/m/nodiratime": (["nodiratime"], {"nodiratime"}, set()),
        "/m/rw-wins": (["ro", "rw"], {"rw"}, {"ro"}),
    }
    for dest, (opts, _, _) in cases.items():
        add_mount(bundle, dest, "tmpfs", "tmpfs", opts)
    add_mount(bundle, "/m/data", "tmpfs", "pyrunc-src", ["mode=0710", "size=2m"])
    out = run_ok(pyrunc, bundle, test_id, "stat -c 'mode=%a' /m/data; " + MOUNTINFO)
    mounts = parse_mountinfo(out)
    for dest, (_, present, absent) in cases.items():
        m = mount_at(mounts, dest)
        assert m.fstype == "tmpfs"
        assert present <= m.options and not absent & m.options, (dest, m)
    data = mount_at(mounts, "/m/data")
    assert {"mode=710", "size=2048k"} <= data.super and data.source == "pyrunc-src", data
    assert "mode=710" in out


def test_bind_mounts_with_flags(pyrunc, bundle, test_id, host_dir):
    src = host_dir("bind-src")
    with open(os.path.join(src, "marker"), "w") as f:
        f.write("from-host")
    add_mount(bundle, "/b/ro", "bind", src, ["bind", "ro"])
    add_mount(bundle, "/b/rw", "none", src, ["rbind", "rw"])
    add_mount(bundle, "/b/flags", "bind", src, ["bind", "nosuid", "nodev", "noexec", "noatime"])
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "cat /b/ro/marker; echo; touch /b/ro/x 2>&1; echo container > /b/rw/written; " + MOUNTINFO,
    )
    mounts = parse_mountinfo(out)
    assert "from-host" in out and "Read-only file system" in out
    assert "ro" in mount_at(mounts, "/b/ro").options
    assert "rw" in mount_at(mounts, "/b/rw").options
    assert {"nosuid", "nodev", "noexec", "noatime"} <= mount_at(mounts, "/b/flags").options
    with open(os.path.join(src, "written")) as f:  # the rw bind is the host directory itself
        assert f.read() == "container\n"
    assert not os.path.exists(os.path.join(src, "x"))


def test_bind_of_a_relative_source_is_taken_from_the_bundle(pyrunc, bundle, test_id):
    os.makedirs(os.path.join(bundle.path, "vol"))
    with open(os.path.join(bundle.path, "vol", "f"), "w") as f:
        f.write("in-bundle")
    add_mount(bundle, "/vol", "bind", "vol", ["rbind"])
    assert run_ok(pyrunc, bundle, test_id, "cat /vol/f") == "in-bundle"


def test_file_bind_creates_the_file_and_missing_directories(pyrunc, bundle, test_id, host_dir):
    src = os.path.join(host_dir("file-src"), "conf")
    with open(src, "w") as f:
        f.write("file-content")
    add_mount(bundle, "/etc/new/dir/conf", "bind", src, ["bind", "ro"])
    add_mount(bundle, "/a/b/c", "tmpfs", "tmpfs")
    out = run_ok(
        pyrunc, bundle, test_id, "cat /etc/new/dir/conf; echo; stat -c '%F' /etc/new/dir/conf /a/b/c; " + MOUNTINFO
    )
    assert "file-content" in out
    assert "regular file" in out and "directory" in out
    mounts = parse_mountinfo(out)
    assert "ro" in mount_at(mounts, "/etc/new/dir/conf").options
    assert mount_at(mounts, "/a/b/c").fstype == "tmpfs"


def test_propagation_flags_per_mount(pyrunc, bundle, test_id):
    add_mount(bundle, "/p/shared", "tmpfs", "tmpfs", ["shared"])
    add_mount(bundle, "/p/unbindable", "tmpfs", "tmpfs", ["unbindable"])
    add_mount(bundle, "/p/private", "tmpfs", "tmpfs", ["private"])
    add_mount(bundle, "/p/rshared", "tmpfs", "tmpfs", ["rshared"])
    add_mount(bundle, "/p/rshared/inner", "tmpfs", "tmpfs")
    mounts = parse_mountinfo(run_ok(pyrunc, bundle, test_id, MOUNTINFO))
    assert _fields(mount_at(mounts, "/p/shared")).startswith("shared:")
    assert mount_at(mounts, "/p/unbindable").optional == ["unbindable"]
    assert mount_at(mounts, "/p/private").optional == []
    # A mount made under a shared one is shared too.
    assert _fields(mount_at(mounts, "/p/rshared/inner")).startswith("shared:")


def test_default_mounts_proc_sysfs_mqueue_devpts(pyrunc, bundle, test_id):
    out = run_ok(
        pyrunc,
        bundle,
        test_id,
        "ls /proc/self/ns >/dev/null && echo proc-ok; ls /sys/kernel >/dev/null && echo sys-ok; "
        "touch /sys/pyrunc 2>&1; ls -l /dev/ptmx; " + MOUNTINFO,
    )
    mounts = parse_mountinfo(out)
    assert "proc-ok" in out and "sys-ok" in out and "Read-only file system" in out
    assert mount_at(mounts, "/proc").fstype == "proc"
    sysfs = mount_at(mounts, "/sys")
    assert sysfs.fstype == "sysfs" and {"ro", "nosuid", "nodev", "noexec"} <= sysfs.options
    mq = mount_at(mounts, "/dev/mqueue")
    assert mq.fstype == "mqueue" and {"nosuid", "nodev", "noexec"} <= mq.options
    pts = mount_at(mounts, "/dev/pts")
    assert pts.fstype == "devpts" and {"ptmxmode=666", "mode=620", "gid=5"} <= pts.super, pts
    shm = mount_at(mounts, "/dev/shm")
    assert shm.fstype == "tmpfs" and "size=65536k" in shm.super
    dev = mount_at(mounts, "/dev")
    assert dev.fstype == "tmpfs" and "mode=755" in dev.super and "nosuid" in dev.options


def test_devpts_newinstance_is_not_the_hosts(pyrunc, bundle, test_id):
    out = run_ok(pyrunc, bundle, test_id, "ls /dev/pts; " + MOUNTINFO)
    assert out.split("\n")[0].split() == ["ptmx"]  # a fresh instance: no host terminals
    pts = mount_at(parse_mountinfo(out), "/dev/pts")
    with open("/proc/self/mountinfo") as f:
        host_devs = {line.split()[2] for line in f if " - devpts " in line}
    assert pts.fstype == "devpts" and pts.dev not in host_devs


CGROUP_CHECK = (
    "ls /sys/fs/cgroup; mkdir /sys/fs/cgroup/pyrunc-test-x 2>&1; "
    "mkdir /sys/fs/cgroup/pids/pyrunc-test-x 2>&1; " + MOUNTINFO
)


def _host_hierarchies():
    with open("/proc/self/mountinfo") as f:
        return sorted(
            os.path.basename(line.split()[4])
            for line in f
            if line.split(" - ")[1].split()[0] in ("cgroup", "cgroup2")
            and os.path.dirname(line.split()[4]) == "/sys/fs/cgroup"
        )


@pytest.mark.parametrize("cgroupns", [False, True], ids=["host-cgroupns", "new-cgroupns"])
def test_cgroup_mount_is_read_only_and_shows_the_hierarchies(pyrunc, bundle, test_id, cgroupns):
    if cgroupns:
        bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    out = run_ok(pyrunc, bundle, test_id, CGROUP_CHECK)
    mounts = parse_mountinfo(out)
    top = mount_at(mounts, "/sys/fs/cgroup")
    assert "ro" in top.options
    hierarchies = _host_hierarchies()
    assert hierarchies, "the host has no cgroup hierarchies under /sys/fs/cgroup"
    for name in hierarchies:
        m = mount_at(mounts, f"/sys/fs/cgroup/{name}")
        assert m.fstype in ("cgroup", "cgroup2") and "ro" in m.options, m
        assert name in out.split()
    assert out.count("Read-only file system") == 2
    for name in hierarchies:
        assert not os.path.exists(f"/sys/fs/cgroup/{name}/pyrunc-test-x")


def test_rbind_carries_submounts_and_bind_does_not(pyrunc, bundle, test_id, host_dir):
    src = host_dir("rbind-src")
    os.mkdir(os.path.join(src, "sub"))
    mount("-t", "tmpfs", "pyrunc-test-sub", os.path.join(src, "sub"))
    with open(os.path.join(src, "sub", "marker"), "w") as f:
        f.write("submount")
    add_mount(bundle, "/r/rbind", "bind", src, ["rbind"])
    add_mount(bundle, "/r/bind", "bind", src, ["bind"])
    out = run_ok(pyrunc, bundle, test_id, "cat /r/rbind/sub/marker; echo; echo bind:; ls /r/bind/sub; " + MOUNTINFO)
    assert out.startswith("submount\nbind:\n")
    mounts = parse_mountinfo(out)
    assert mount_at(mounts, "/r/rbind/sub").fstype == "tmpfs"
    assert not [m for m in mounts if m.point == "/r/bind/sub"]


@pytest.mark.parametrize(
    "options, flags",
    [
        (["rbind", "rro"], {"ro"}),
        (["rbind", "rnosuid", "rnodev", "rnoexec"], {"nosuid", "nodev", "noexec"}),
        (["rbind", "rnoatime"], {"noatime"}),
    ],
)
def test_recursive_attributes_reach_the_submounts(pyrunc, bundle, test_id, host_dir, options, flags):
    src = host_dir("rattr-src")
    os.mkdir(os.path.join(src, "sub"))
    mount("-t", "tmpfs", "pyrunc-test-sub", os.path.join(src, "sub"))
    add_mount(bundle, "/r", "bind", src, options)
    out = run_ok(pyrunc, bundle, test_id, "touch /r/sub/x 2>&1; " + MOUNTINFO)
    mounts = parse_mountinfo(out)
    for point in ("/r", "/r/sub"):
        assert flags <= mount_at(mounts, point).options, (point, mount_at(mounts, point))
    if "rro" in options:
        assert "Read-only file system" in out
        assert not os.path.exists(os.path.join(src, "sub", "x"))
    # The host's own mounts keep their flags.
    host = host_mount_lines(os.path.join(src, "sub") + " ")
    assert host and all(" rw," in line for line in host)


def test_plain_ro_on_an_rbind_leaves_submounts_writable(pyrunc, bundle, test_id, host_dir):
    src = host_dir("ro-src")
    os.mkdir(os.path.join(src, "sub"))
    mount("-t", "tmpfs", "pyrunc-test-sub", os.path.join(src, "sub"))
    add_mount(bundle, "/r", "bind", src, ["rbind", "ro"])
    mounts = parse_mountinfo(run_ok(pyrunc, bundle, test_id, MOUNTINFO))
    assert "ro" in mount_at(mounts, "/r").options
    assert "rw" in mount_at(mounts, "/r/sub").options


def test_mounts_are_made_in_order(pyrunc, bundle, test_id):
    add_mount(bundle, "/o", "tmpfs", "tmpfs", ["mode=755"])
    add_mount(bundle, "/o/inner", "tmpfs", "tmpfs", ["size=1m"])
    add_mount(bundle, "/q/inner", "tmpfs", "tmpfs", ["size=1m"])
    add_mount(bundle, "/q", "tmpfs", "tmpfs", ["size=2m"])  # covers /q/inner
    out = run_ok(pyrunc, bundle, test_id, "echo q:; ls /q; " + MOUNTINFO)
    mounts = parse_mountinfo(out)
    assert mount_at(mounts, "/o/inner").parent == mount_at(mounts, "/o").id
    assert out.split("\n")[1] != "inner"  # `ls /q` printed nothing
    q_points = [m.point for m in mounts if m.point.startswith("/q")]
    assert q_points == ["/q/inner", "/q"]


# --- destinations resolved inside the rootfs --------------------------------------------


def _link(bundle, path, target):
    full = os.path.join(bundle.rootfs, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    os.symlink(target, full)


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_symlinked_destination_cannot_reach_the_host(pyrunc, bundle, test_id, host_dir, kind):
    host = host_dir("victim")
    with open(os.path.join(host, "keep"), "w") as f:
        f.write("host")
    target = host if kind == "absolute" else "../../../../../../../.." + host
    _link(bundle, "/evil", target)
    _link(bundle, "/etc/evil", target + "/made-by-mkdir")
    src = host_dir("bind-src")
    add_mount(bundle, "/evil", "tmpfs", "tmpfs", ["size=1m"])
    add_mount(bundle, "/etc/evil/deeper", "bind", src, ["rbind"])
    out = run_ok(pyrunc, bundle, test_id, MOUNTINFO)
    mounts = parse_mountinfo(out)
    # The mounts landed inside the rootfs, where the links point when it is "/".
    assert mount_at(mounts, host).fstype == "tmpfs"
    mount_at(mounts, host + "/made-by-mkdir/deeper")
    assert os.path.isdir(os.path.join(bundle.rootfs, host.lstrip("/")))  # (made-by-mkdir was on the tmpfs)
    # The host directory is untouched and nothing is mounted on it.
    assert os.listdir(host) == ["keep"]
    assert host_mounts_under(host) == []


def test_symlinked_file_destination_cannot_reach_the_host(pyrunc, bundle, test_id, host_dir):
    host = host_dir("victim")
    victim = os.path.join(host, "passwd")
    with open(victim, "w") as f:
        f.write("host-file")
    src = os.path.join(host_dir("file-src"), "data")
    with open(src, "w") as f:
        f.write("container-file")
    _link(bundle, "/etc/trap", victim)
    _link(bundle, "/etc/trap-missing", os.path.join(host, "created"))
    add_mount(bundle, "/etc/trap", "bind", src, ["bind", "ro"])
    add_mount(bundle, "/etc/trap-missing", "bind", src, ["bind", "ro"])
    out = run_ok(pyrunc, bundle, test_id, "cat /etc/trap; echo; cat /etc/trap-missing")
    assert out == "container-file\ncontainer-file"
    with open(victim) as f:
        assert f.read() == "host-file"
    assert sorted(os.listdir(host)) == ["passwd"]
    assert host_mounts_under(host) == []


def test_symlinked_proc_destination_is_refused(pyrunc, bundle, test_id):
    os.rmdir(os.path.join(bundle.rootfs, "proc"))
    os.mkdir(os.path.join(bundle.rootfs, "fakeproc"))
    os.symlink("fakeproc", os.path.join(bundle.rootfs, "proc"))
    r = run_sh(pyrunc, bundle, test_id, "true")
    assert r.code == 1, r
    assert f'pyrunc: create {test_id}: mounts[0]: mount proc "proc" on "/proc": mount point: ' in r.err
    assert os.listdir(pyrunc.root) == []


# --- sysctl -----------------------------------------------------------------------------


def _read(path):
    with open(path) as f:
        return f.read().strip()


def test_sysctls_are_set_in_the_containers_namespaces(pyrunc, bundle, test_id):
    host_forward = _read("/proc/sys/net/ipv4/ip_forward")
    host_shmmax = _read("/proc/sys/kernel/shmmax")
    want_forward = "0" if host_forward == "1" else "1"
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": want_forward, "kernel.shmmax": "123456789"}
    out = run_ok(pyrunc, bundle, test_id, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax")
    assert out.split() == [want_forward, "123456789"]
    assert _read("/proc/sys/net/ipv4/ip_forward") == host_forward
    assert _read("/proc/sys/kernel/shmmax") == host_shmmax


# --- pivot_root and --no-pivot ----------------------------------------------------------

CONTAINER_MOUNTS = ("/", "/proc", "/dev", "/sys")


def _only_container_mounts(mounts):
    for m in mounts:
        assert (
            m.point == "/"
            or m.point.startswith(tuple(p + "/" for p in CONTAINER_MOUNTS[1:]))
            or m.point in CONTAINER_MOUNTS
        ), m


@pytest.mark.parametrize("flags", [(), ("--no-pivot",)], ids=["pivot_root", "no-pivot"])
def test_container_sees_only_its_own_mounts(pyrunc, bundle, test_id, flags):
    with open(os.path.join(bundle.rootfs, "marker"), "w") as f:
        f.write("in-rootfs")
    out = run_ok(pyrunc, bundle, test_id, "cat /marker; echo; ls /; " + MOUNTINFO, flags)
    assert out.startswith("in-rootfs\n")
    mounts = parse_mountinfo(out)
    _only_container_mounts(mounts)
    assert mount_at(mounts, "/").root == os.path.realpath(bundle.rootfs)
    assert bundle.path not in "\n".join(m.point for m in mounts)
    with open("/proc/self/mountinfo") as f:
        host_only = {line.split()[4] for line in f} - set(CONTAINER_MOUNTS)
    assert not host_only & {m.point for m in mounts if not m.point.startswith(CONTAINER_MOUNTS[1:])}


# --- failures ---------------------------------------------------------------------------


def _children_of_us():
    """Live processes whose parent is this test process (we are their subreaper)."""
    me, found = os.getpid(), []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            if fields[0] == "Z":
                os.waitpid(int(pid), os.WNOHANG)
            else:
                found.append(int(pid))
    return found


@pytest.fixture
def subreaper():
    """Make this process the subreaper, so that anything pyrunc leaves running shows up
    as our child."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield _children_of_us
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


# Each error names the entry (its index in config.json's mounts), its type, source,
# destination and options as given: {i} is the bad entry's index.
BAD_MOUNTS = {
    "unknown-type": (
        {"destination": "/bad", "type": "nosuchfs", "source": "nosuchfs"},
        'mounts[{i}]: mount nosuchfs "nosuchfs" on "/bad": no such device',
    ),
    "missing-bind-source": (
        {"destination": "/bad", "type": "bind", "source": "no/such/dir", "options": ["rbind"]},
        'mounts[{i}]: mount bind "no/such/dir" on "/bad" (options rbind): source: no such file or directory',
    ),
    "bad-tmpfs-data": (
        {"destination": "/bad", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=abc"]},
        'mounts[{i}]: mount tmpfs "tmpfs" on "/bad" (options nosuid,size=abc): invalid argument',
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_MOUNTS))
@pytest.mark.parametrize("command", ["create", "run"])
def test_bad_mount_fails_cleanly(pyrunc, bundle, test_id, host_dir, subreaper, case, command):
    entry, message = BAD_MOUNTS[case]
    good = host_dir("good-src")
    add_mount(bundle, "/good", "bind", good, ["rbind", "ro"])  # made before the bad one
    message = message.format(i=len(bundle.config["mounts"]))
    bundle.config["mounts"].append(entry)
    bundle.config["process"]["args"] = ["true"]
    bundle.write()
    before = host_mount_lines(bundle.path) + host_mount_lines(good)
    r = pyrunc(command, test_id, "--bundle", bundle.path)
    assert r.code == 1, r
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r
    assert lines[0] == f"pyrunc: create {test_id}: {message}", r
    assert not os.path.exists(pyrunc.root) or os.listdir(pyrunc.root) == []
    assert subreaper() == []
    assert host_mount_lines(bundle.path) + host_mount_lines(good) == before
    assert not os.path.exists(os.path.join(bundle.rootfs, "good")) or not os.listdir(
        os.path.join(bundle.rootfs, "good")
    )
    with open(pyrunc.log) as f:
        log = f.read()
    assert test_id in log and "/bad" in log
