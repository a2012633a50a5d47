"""linux.netDevices (config-linux.md, "Network Devices") on real devices: veth pairs the
tests make and remove (this kernel has no dummy driver), named pyrunc-test-nd*."""

import os
import subprocess
import uuid

import pytest

from tests.integration.cli_util import assert_nothing_left, last_error
from tests.integration.ns_util import HOST_ID

IP = "/usr/sbin/ip"
V4, V6 = "10.213.0.2/24", "fd00:213::2/64"


def ip(*args, check=True):
    r = subprocess.run([IP, *args], capture_output=True, text=True)
    if check:
        assert r.returncode == 0, (args, r.stderr)
    return r


def on_host(name):
    return ip("link", "show", "dev", name, check=False).returncode == 0


def host_addresses(name):
    return ip("-o", "addr", "show", "dev", name).stdout


@pytest.fixture
def veths():
    """make(n) -> n veth pairs (end, peer), pyrunc-test-nd0/1, nd2/3, ... (IFNAMSIZ leaves
    one character past the prefix), the peers up on the host; all removed afterwards,
    whatever the test did."""
    made = []

    def make(n):
        pairs = []
        for i in range(n):
            end, peer = f"pyrunc-test-nd{2 * i}", f"pyrunc-test-nd{2 * i + 1}"
            for name in (end, peer):  # a crashed run's
                if on_host(name):
                    ip("link", "del", name)
            made.extend([end, peer])
            ip("link", "add", end, "type", "veth", "peer", "name", peer)
            ip("link", "set", peer, "up")
            pairs.append((end, peer))
        return pairs

    yield make
    for name in made:
        if on_host(name):
            ip("link", "del", name, check=False)


@pytest.fixture
def netns():
    """A named network namespace pyrunc-test-nd<tag> for a container to join."""
    made = []

    def make():
        name = f"pyrunc-test-nd{uuid.uuid4().hex[:6]}"
        ip("netns", "add", name)
        made.append(name)
        return name

    yield make
    for name in made:
        ip("netns", "del", name, check=False)


def with_addresses(name):
    ip("addr", "add", V4, "brd", "+", "dev", name)
    ip("addr", "add", V6, "dev", name, "nodad")
    return name


def netdevices_bundle(bundle, devices, *args):
    os.symlink("busybox", os.path.join(bundle.rootfs, "bin", "ip"))
    bundle.config["linux"]["netDevices"] = devices
    bundle.config["process"]["args"] = list(args) or ["sleep", "300"]
    return bundle.write()


def running(pyrunc, bundle, test_id):
    r = pyrunc("run", "--detach", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    return test_id


def inside(pyrunc, cid, *args):
    r = pyrunc("exec", cid, *args)
    assert r.code == 0, r
    return r.out


def cgroup_dirs(bundle):
    path = bundle.config["linux"]["cgroupsPath"].strip("/").split("/")[0]
    return [h for h in os.listdir("/sys/fs/cgroup") if os.path.isdir(os.path.join("/sys/fs/cgroup", h, path))]


def test_a_device_moves_renamed_with_its_addresses_and_up(pyrunc, bundle, test_id, veths):
    dev = with_addresses(veths(1)[0][0])
    netdevices_bundle(bundle, {dev: {"name": "ceth0"}})
    cid = running(pyrunc, bundle, test_id)
    try:
        assert not on_host(dev)  # moved, not copied
        addrs = inside(pyrunc, cid, "ip", "addr", "show", "dev", "ceth0")
        assert "inet 10.213.0.2/24 brd 10.213.0.255 scope global ceth0" in addrs, addrs
        assert "inet6 fd00:213::2/64 scope global" in addrs, addrs
        v6 = [line for line in addrs.splitlines() if "fd00:213::2" in line]
        assert v6 and "tentative" not in v6[0], addrs  # nodad came along
        # Its own addresses only, none of another of the host's devices.
        assert len([line for line in addrs.splitlines() if "scope global" in line]) == 2, addrs
        link = inside(pyrunc, cid, "ip", "link", "show", "dev", "ceth0")
        assert ",UP," in link and "LOWER_UP" in link, link  # busybox prints no "state"
        # The container's /sys, mounted after the move in its namespace, has the device.
        assert inside(pyrunc, cid, "cat", "/sys/class/net/ceth0/operstate") == "up\n"
        assert dev not in inside(pyrunc, cid, "ip", "link")
    finally:
        pyrunc("delete", "--force", cid)
    # Never moved back: the veth died with the container's namespace, its peer with it.
    assert not on_host(dev)


def test_a_device_moves_into_a_user_namespaces_container(pyrunc, userns_bundle, test_id, veths):
    """The network namespace belongs to the container's user namespace: the runtime,
    root on the host, still moves into it and configures it through the init's socket."""
    dev = with_addresses(veths(1)[0][0])
    netdevices_bundle(userns_bundle, {dev: {"name": "ceth0"}})
    os.lchown(os.path.join(userns_bundle.rootfs, "bin", "ip"), HOST_ID, HOST_ID)
    cid = running(pyrunc, userns_bundle, test_id)
    try:
        addrs = inside(pyrunc, cid, "ip", "addr", "show", "dev", "ceth0")
        assert "inet 10.213.0.2/24 brd 10.213.0.255 scope global ceth0" in addrs, addrs
        assert "inet6 fd00:213::2/64 scope global" in addrs and ",UP," in addrs, addrs
        assert not on_host(dev)
    finally:
        pyrunc("delete", "--force", cid)


def test_the_device_is_not_moved_back_at_delete(pyrunc, bundle, test_id, netns, veths):
    """In a namespace that outlives the container (joined by path), the device stays."""
    ns = netns()
    dev = with_addresses(veths(1)[0][0])
    netdevices_bundle(bundle, {dev: {"name": "ceth0"}})
    for entry in bundle.config["linux"]["namespaces"]:
        if entry["type"] == "network":
            entry["path"] = f"/run/netns/{ns}"
    bundle.write()
    cid = running(pyrunc, bundle, test_id)
    assert pyrunc("delete", "--force", cid).code == 0
    assert not on_host(dev)
    out = ip("-n", ns, "-o", "addr", "show", "dev", "ceth0").stdout
    assert "inet 10.213.0.2/24 brd 10.213.0.255 scope global ceth0" in out, out
    v6 = [line for line in out.splitlines() if "fd00:213::2/64" in line]
    assert v6 and "scope global nodad" in v6[0], out  # its flag kept
    assert "UP" in ip("-n", ns, "link", "show", "dev", "ceth0").stdout


def test_templates_get_the_kernels_free_names(pyrunc, bundle, test_id, veths):
    (a, _), (b, _) = veths(2)
    netdevices_bundle(bundle, {a: {"name": "eth%d"}, b: {"name": "eth%d"}})
    cid = running(pyrunc, bundle, test_id)
    try:
        links = inside(pyrunc, cid, "ip", "-o", "link")
        names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
        assert names == ["eth0", "eth1", "lo"], links
        assert not on_host(a) and not on_host(b)
    finally:
        pyrunc("delete", "--force", cid)


def test_two_devices_to_one_name_are_refused_and_stay(pyrunc, bundle, test_id, veths):
    (a, _), (b, _) = veths(2)
    with_addresses(a)
    netdevices_bundle(bundle, {a: {"name": "ceth0"}, b: {"name": "ceth0"}})
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1, r
    assert "linux.netDevices" in r.err and "'ceth0' is the name" in r.err, r.err
    assert on_host(a) and on_host(b)
    out = host_addresses(a)
    assert "10.213.0.2/24" in out and "fd00:213::2/64" in out, out
    assert_nothing_left(pyrunc, test_id, bundle)


def test_a_name_the_containers_namespace_has_is_refused(pyrunc, bundle, test_id, netns, veths):
    """Only the container's namespace can tell: checked before anything moves."""
    ns = netns()
    (a, a_peer), (b, _) = veths(2)
    with_addresses(a)
    ip("link", "set", b, "netns", ns, "name", "ceth0")
    netdevices_bundle(bundle, {a: {}, a_peer: {"name": "ceth0"}})
    for entry in bundle.config["linux"]["namespaces"]:
        if entry["type"] == "network":
            entry["path"] = f"/run/netns/{ns}"
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1, r
    assert (
        f'create {test_id}: move network device "{a_peer}": the container\'s network '
        f'namespace has a device named "ceth0" already'
    ) in r.err, r.err
    assert on_host(a) and on_host(a_peer)  # the first entry was not moved either
    out = host_addresses(a)
    assert "10.213.0.2/24" in out and "fd00:213::2/64" in out, out
    assert ip("-n", ns, "-o", "link").stdout.count(": ceth0") == 1
    assert_nothing_left(pyrunc, test_id, bundle)
    assert cgroup_dirs(bundle) == []


def test_a_missing_device_is_refused_before_anything_is_made(pyrunc, bundle, test_id, veths):
    dev = with_addresses(veths(1)[0][0])
    missing = "pyrunc-test-ndz"
    assert not on_host(missing)
    netdevices_bundle(bundle, {dev: {"name": "ceth0"}, missing: {}})
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1, r
    want = f'create {test_id}: move network device "{missing}": no such device in the runtime\'s network namespace'
    assert want in r.err and last_error(pyrunc.log) == want, r.err
    assert not os.path.isdir(pyrunc.root) or os.listdir(pyrunc.root) == []
    assert cgroup_dirs(bundle) == []
    assert on_host(dev)
    out = host_addresses(dev)
    assert "10.213.0.2/24" in out and "fd00:213::2/64" in out, out
    assert_nothing_left(pyrunc, test_id, bundle)


def test_lo_is_refused(pyrunc, bundle, test_id):
    netdevices_bundle(bundle, {"lo": {"name": "lo0"}})
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1, r
    assert 'move network device "lo": the loopback device cannot leave its network namespace' in r.err, r.err
    assert_nothing_left(pyrunc, test_id, bundle)


def test_the_runtimes_own_namespace_joined_by_path_is_refused(pyrunc, bundle, test_id, veths):
    dev = with_addresses(veths(1)[0][0])
    netdevices_bundle(bundle, {dev: {"name": "ceth0"}})
    for entry in bundle.config["linux"]["namespaces"]:
        if entry["type"] == "network":
            entry["path"] = "/proc/self/ns/net"  # opened by the runtime: its own
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1, r
    # The config's check; the move checks the socket's namespace again (a path may change).
    assert "need a network namespace other than the host's" in r.err, r.err
    assert on_host(dev) and "10.213.0.2/24" in host_addresses(dev)
    assert_nothing_left(pyrunc, test_id, bundle)
