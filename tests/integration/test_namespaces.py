"""Namespaces of a real busybox container: new ones, joined ones, user mappings, time
offsets, hostname and domainname.  Each test prints what the container sees and
compares it with the host's view."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

import pytest

from tests.conftest import Bundle
from tests.integration.cli_util import runc  # noqa: F401  (a fixture)
from tests.integration.ns_util import ALL_TYPES, HOST_ID, ID_RANGE, set_namespaces
from tests.integration.rootfs_util import (  # noqa: F401  (fixtures)
    bind_unreachable,
    host_dir,
    mount,
    parse_mountinfo,
    unmount_all_under,
    unreachable_sources,
)

# /proc/self/ns/<file> for each namespace type of the config.
NS_FILE = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}
PRINT_NS = "for n in cgroup ipc mnt net pid time user uts; do echo $n $(readlink /proc/self/ns/$n); done"


def run_sh(pyrunc, bundle, test_id, script, *flags):
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.write()
    r = pyrunc("run", *flags, "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    return r.out


def parse_ns(out):
    """{'net': 'net:[4026532181]', ...} from PRINT_NS output."""
    pairs = (line.split(" ", 1) for line in out.splitlines())
    return {p[0]: p[1] for p in pairs if len(p) == 2 and p[1].startswith(p[0] + ":[")}


def host_ns(pid="self"):
    return {f: os.readlink(f"/proc/{pid}/ns/{f}") for f in NS_FILE.values()}


class Helper:
    """A process the test starts with `unshare` to own namespaces a container joins."""

    def __init__(self, unshare_args):
        self.proc = subprocess.Popen(
            ["unshare", *unshare_args, "sleep", "600"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
        )
        self.pid = None
        try:
            self.pid = self._find_sleep("--fork" in unshare_args)
        except BaseException:
            self.stop()
            raise

    def _find_sleep(self, forks):
        """The pid of `sleep`, once it runs (its namespaces are in place by then)."""
        for _ in range(500):
            pids = [self.proc.pid]
            if forks:
                try:
                    with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                        pids = [int(p) for p in f.read().split()]
                except OSError:
                    pids = []
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/comm") as f:
                        if f.read().strip() == "sleep":
                            return pid
                except OSError:
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"unshare {self.proc.args} exited with {self.proc.returncode}")
            time.sleep(0.01)
        raise RuntimeError("the unshare helper did not start sleep")

    def ns_path(self, nstype):
        return f"/proc/{self.pid}/ns/{NS_FILE[nstype]}"

    def stop(self):
        for pid in {self.pid, self.proc.pid} - {None}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()


@pytest.fixture
def helpers():
    started = []

    def start(*unshare_args):
        h = Helper(unshare_args)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()


@pytest.fixture
def netns():
    """A network namespace of our own under /run/netns, removed afterwards."""
    name = f"pyrunc-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


# --- new namespaces ----------------------------------------------------------------------


def test_all_eight_namespace_types_are_new(pyrunc, userns_bundle, test_id):
    inside = parse_ns(run_sh(pyrunc, userns_bundle, test_id, PRINT_NS))
    host = host_ns()
    assert sorted(inside) == sorted(host)
    for name in host:
        assert inside[name] != host[name], f"{name} namespace is the host's"


@pytest.mark.parametrize("nstype", [t for t in ALL_TYPES if t != "user"])
def test_each_namespace_type_alone_is_new_and_the_rest_are_the_hosts(pyrunc, bundle, test_id, nstype):
    # mount is needed for the rootfs; the other types stay the host's.
    wanted = {nstype, "mount"}
    set_namespaces(bundle, **{t: None for t in wanted})
    if nstype != "uts":
        bundle.config.pop("hostname", None)  # a hostname needs a uts namespace of its own
    inside = parse_ns(run_sh(pyrunc, bundle, test_id, PRINT_NS))
    host = host_ns()
    new = {NS_FILE[t] for t in wanted}
    for name in host:
        if name in new:
            assert inside[name] != host[name], f"{name} namespace is the host's"
        else:
            assert inside[name] == host[name], f"{name} namespace is not the host's"


def test_pid_1_is_the_users_process(pyrunc, bundle, test_id):
    out = run_sh(
        pyrunc, bundle, test_id, "echo pid=$$; cat /proc/1/comm; cat /proc/1/cmdline; echo; ps -o pid,comm; true"
    )
    lines = out.splitlines()
    assert lines[0] == "pid=1"
    assert lines[1] == "sh"
    assert lines[2].split("\0")[:2] == ["sh", "-c"]
    # Only the shell and ps itself: the runtime left no process behind in the container.
    rows = [line.split() for line in lines[4:]]
    assert rows[0] == ["1", "sh"]
    assert [r[1] for r in rows[1:]] == ["ps"]


def test_the_runtime_makes_the_pid_namespace_and_its_later_children_stay_the_hosts(pyrunc, bundle, test_id):
    """Without a user namespace the runtime unshares the pid namespace just before its
    fork (spawn.pid_ns_in_parent): its one child is the init, pid 1.  The processes the
    runtime starts after that fork (the prestart and createRuntime hooks) are in the
    runtime's pid namespace, not the container's; the createContainer hook, started by
    the init, is in the container's."""
    from tests.conftest import BUSYBOX

    record = os.path.join(bundle.rootfs, "pidns")

    def hook(path, rec):
        return {"path": path, "args": ["sh", "-c", f'echo "$0 $(readlink /proc/self/ns/pid)" >> {rec}', "h"]}

    bundle.config["hooks"] = {
        "prestart": [hook(BUSYBOX, record)],
        "createRuntime": [hook(BUSYBOX, record)],
        "createContainer": [hook(BUSYBOX, record)],
    }
    out = run_sh(pyrunc, bundle, test_id, "echo pid=$$; readlink /proc/self/ns/pid")
    pid_line, container_ns = out.splitlines()[:2]
    assert pid_line == "pid=1"
    host_ns = os.readlink("/proc/self/ns/pid")
    assert container_ns != host_ns
    with open(record) as f:
        seen = [line.split()[1] for line in f.read().splitlines()]
    assert seen == [host_ns, host_ns, container_ns], seen


def test_new_network_namespace_has_only_lo_and_lo_is_up(pyrunc, bundle, test_id):
    out = run_sh(
        pyrunc,
        bundle,
        test_id,
        "ls /sys/class/net; cat /sys/class/net/lo/flags; tail -n +3 /proc/net/dev | cut -d: -f1",
    )
    lines = out.split()
    assert lines[0] == "lo"
    assert int(lines[1], 16) & 0x1, "lo is not up"  # IFF_UP
    assert lines[2:] == ["lo"]


def test_the_kernel_seam_brings_an_interface_up_and_names_one_it_cannot():
    """Kernel.interface_up, which the init brings lo up with, in a child's own new network
    namespace: lo down before, up after with its flags kept; an unknown name fails
    as a KernelError naming it."""
    from pyrunc.errors import KernelError
    from pyrunc.linux import kernel, unix

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        out = []
        try:
            k = kernel.Kernel()
            k.unshare(kernel.CLONE_NEWNET)
            s = unix.socket(unix.AF_INET, unix.SOCK_DGRAM)
            with open("/proc/self/net/dev") as f:
                out.append(f.read().count(":"))  # the interfaces in it
            before = _flags(s, "lo")
            k.interface_up(s.fileno(), "lo")
            out += [before, _flags(s, "lo")]
            try:
                k.interface_up(s.fileno(), "pyrunc-nope0")
            except KernelError as e:
                out.append(str(e))
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        got = f.read()
    os.waitpid(pid, 0)
    count, before, after, error = json.loads(got)
    assert count == 1  # lo alone
    assert not before & 0x1, "lo is up in a new network namespace already"
    assert after & 0x1 and after & before == before  # up (and running: the kernel's), nothing cleared
    assert error == "bring up pyrunc-nope0: no such device"


def _flags(sock, name):
    import fcntl
    import struct

    req = struct.pack("16sH14x", name.encode(), 0)
    return struct.unpack("16sH14x", fcntl.ioctl(sock, 0x8913, req))[1]  # SIOCGIFFLAGS


# --- joined namespaces -------------------------------------------------------------------


def test_joins_a_network_namespace_by_path(pyrunc, bundle, test_id, netns):
    set_namespaces(bundle, pid=None, network=netns, ipc=None, uts=None, mount=None)
    out = run_sh(pyrunc, bundle, test_id, PRINT_NS + "; cat /sys/class/net/lo/flags")
    inside = parse_ns(out)
    assert inside["net"] == f"net:[{os.stat(netns).st_ino}]"
    # The runtime leaves a joined network namespace alone: `ip netns add` makes lo down.
    assert int(out.split()[-1], 16) & 0x1 == 0


def test_joins_namespaces_of_another_process_by_path(pyrunc, bundle, test_id, helpers):
    h = helpers("--fork", "--kill-child", "--pid", "--ipc", "--uts", "--cgroup", "--time")
    joined = ("pid", "ipc", "uts", "cgroup", "time")
    set_namespaces(bundle, network=None, mount=None, **{t: h.ns_path(t) for t in joined})
    inside = parse_ns(run_sh(pyrunc, bundle, test_id, PRINT_NS))
    theirs = host_ns(h.pid)
    for t in joined:
        assert inside[NS_FILE[t]] == theirs[NS_FILE[t]], f"{t} namespace not joined"
    assert inside["net"] != theirs["net"]
    assert inside["user"] == theirs["user"]


def test_joins_a_mount_namespace_by_path_and_builds_the_root_in_it(pyrunc, bundle, test_id, helpers):
    """As runc: the rootfs is bound, mounted and pivoted inside the joined namespace (the
    caller's to rearrange); the host's mount table does not change."""
    h = helpers("--mount", "--propagation", "private")
    set_namespaces(bundle, pid=None, uts=None, mount=h.ns_path("mount"))
    with open("/proc/self/mountinfo") as f:
        host_before = f.read()
    out = run_sh(pyrunc, bundle, test_id, PRINT_NS + "; cat /proc/self/mountinfo")
    assert parse_ns(out)["mnt"] == host_ns(h.pid)["mnt"] != host_ns()["mnt"]
    points = {line.split()[4] for line in out.splitlines() if len(line.split()) > 9}
    assert {"/", "/proc", "/dev"} <= points  # its root, proc and dev, seen from inside
    with open("/proc/self/mountinfo") as f:
        assert f.read() == host_before


def test_joins_a_pid_namespace_through_the_extra_fork(pyrunc, bundle, test_id, helpers):
    h = helpers("--fork", "--kill-child", "--pid")
    set_namespaces(bundle, pid=h.ns_path("pid"), network=None, ipc=None, uts=None, mount=None)
    out = run_sh(pyrunc, bundle, test_id, PRINT_NS + "; echo pid=$$; cat /proc/1/comm")
    assert parse_ns(out)["pid"] == os.readlink(h.ns_path("pid"))
    lines = out.splitlines()
    # pid 1 of that namespace is the helper's sleep; the container is a later process.
    assert lines[-1] == "sleep"
    assert lines[-2] != "pid=1" and lines[-2].startswith("pid=")


def test_joins_a_user_namespace_by_path(pyrunc, bundle, test_id, helpers):
    # `unshare -r` maps host root to root and writes "deny" to setgroups.
    h = helpers("--user", "--map-root-user")
    set_namespaces(bundle, user=h.ns_path("user"), pid=None, network=None, ipc=None, uts=None, mount=None, cgroup=None)
    # Only root is mapped there: devpts cannot be given the unmapped gid 5.
    for m in bundle.config["mounts"]:
        if m["type"] == "devpts":
            m["options"] = [o for o in m["options"] if not o.startswith("gid=")]
    out = run_sh(pyrunc, bundle, test_id, PRINT_NS + "; cat /proc/self/uid_map; id -u")
    assert parse_ns(out)["user"] == os.readlink(h.ns_path("user"))
    lines = out.splitlines()
    assert lines[-2].split() == ["0", "0", "1"]
    assert lines[-1] == "0"


def test_a_new_user_namespace_can_join_a_network_namespace_the_host_owns(pyrunc, userns_bundle, test_id, netns):
    # Joined before the user namespace is made: from inside it the host's netns is out of reach.
    set_namespaces(userns_bundle, **{t: None for t in ALL_TYPES if t != "network"}, network=netns)
    # sysfs may only be mounted by the user namespace owning the network namespace.
    userns_bundle.config["mounts"] = [m for m in userns_bundle.config["mounts"] if m["type"] != "sysfs"]
    inside = parse_ns(run_sh(pyrunc, userns_bundle, test_id, PRINT_NS))
    assert inside["net"] == f"net:[{os.stat(netns).st_ino}]"
    assert inside["user"] != os.readlink("/proc/self/ns/user")


def test_a_missing_namespace_path_fails_create(pyrunc, bundle, test_id):
    set_namespaces(bundle, pid=None, network="/run/netns/pyrunc-test-does-not-exist", uts=None, mount=None)
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 1
    assert "pyrunc-test-does-not-exist" in r.err


# --- no namespaces: the runtime's own -----------------------------------------------------

MARKER = "pyrunc-test-hostns marker\n"


@pytest.fixture
def host_ns_bundle(bundle, host_dir, pyrunc):
    """A bundle with no namespaces and no hostname, on a tmpfs of its own that is shared
    (as systemd makes "/"), so that a change to the propagation of the mount holding it
    shows.  A marker file in its rootfs tells it from the host's "/".  Whatever a failing
    test leaves mounted in the containers' state directories is unmounted afterwards."""
    top = host_dir("hostns")
    mount("-t", "tmpfs", "-o", "mode=755", "pyrunc-test-hostns", top)
    mount("--make-shared", top)
    b = Bundle(os.path.join(top, "bundle"), bundle.config)
    shutil.copytree(bundle.rootfs, b.rootfs, symlinks=True)
    with open(os.path.join(b.rootfs, "marker"), "w") as f:
        f.write(MARKER)
    b.config["linux"]["namespaces"] = []
    b.config.pop("hostname", None)
    yield b
    unmount_all_under(pyrunc.root)
    unmount_all_under(pyrunc.root)  # a lazy unmount may uncover another mount on the same point


def host_mount_table():
    with open("/proc/self/mountinfo") as f:
        return {e.id: e for e in parse_mountinfo(f.read())}


def mounts_under(table, path):
    return sorted(e.point for e in table.values() if e.point == path or e.point.startswith(path + "/"))


def assert_propagation_unchanged(before, after):
    """The optional fields (shared:N, master:N) of every host mount there before and after;
    others may come and go meanwhile (`ip netns add` of concurrent tests)."""
    for mount_id, e in before.items():
        if mount_id in after and after[mount_id].point == e.point:
            assert after[mount_id].optional == e.optional, (e.point, e.optional, after[mount_id].optional)


def test_without_namespaces_the_container_shares_the_runtimes_and_leaves_no_mount(pyrunc, host_ns_bundle, test_id):
    before = host_mount_table()
    out = run_sh(pyrunc, host_ns_bundle, test_id, PRINT_NS + "; cat /marker")
    after = host_mount_table()
    inside = parse_ns(out)
    assert inside == host_ns(), "a namespace of its own"
    assert out.endswith(MARKER), "its / is not the rootfs"
    # Its root was bound in its state directory: nothing is left there, nor in the bundle.
    assert mounts_under(after, host_ns_bundle.path) == mounts_under(after, pyrunc.root) == []
    holding = next(e for e in before.values() if e.point == os.path.dirname(host_ns_bundle.path))
    assert holding.optional and holding.optional[0].startswith("shared:")
    assert_propagation_unchanged(before, after)


def test_without_namespaces_create_and_delete_force_leave_the_hosts_mounts_as_they_were(
    pyrunc, host_ns_bundle, test_id
):
    """root.readonly acts on the container's own bind of the rootfs: the host's mount at
    the rootfs (as an overlay of an engine would be) stays read-write, and stays."""
    b = host_ns_bundle
    out_dir = os.path.join(os.path.dirname(b.path), "out")
    os.mkdir(out_dir)
    mount("--bind", b.rootfs, b.rootfs)
    before = host_mount_table()
    [host_rootfs_id] = [i for i, e in before.items() if e.point == b.rootfs]
    b.config["root"]["readonly"] = True
    b.config["mounts"].append({"destination": "/out", "type": "bind", "source": out_dir, "options": ["rbind"]})
    b.config["process"]["args"] = [
        "sh",
        "-c",
        "cat /marker > /out/marker; touch /probe 2>/dev/null"
        " && echo writable > /out/root || echo read-only > /out/root",
    ]
    b.write()
    r = pyrunc("create", "--bundle", b.path, test_id)
    assert r.code == 0, r
    created = host_mount_table()
    assert "rw" in created[host_rootfs_id].options, "root.readonly made the host's mount read-only"
    assert len(mounts_under(created, pyrunc.root)) > 3  # the rootfs bind, proc, dev...
    assert mounts_under(created, b.path) == [b.rootfs]  # the host's, alone
    assert pyrunc("start", test_id).code == 0
    for _ in range(500):
        if os.path.exists(os.path.join(out_dir, "root")):
            break
        time.sleep(0.01)
    with open(os.path.join(out_dir, "root")) as f:
        assert f.read() == "read-only\n"
    with open(os.path.join(out_dir, "marker")) as f:
        assert f.read() == MARKER
    r = pyrunc("delete", "--force", test_id)
    assert r.code == 0, r
    after = host_mount_table()
    assert mounts_under(after, b.path) == [b.rootfs]
    assert mounts_under(after, pyrunc.root) == []
    assert host_rootfs_id in after and "rw" in after[host_rootfs_id].options
    assert not os.statvfs(b.path).f_flag & os.ST_RDONLY
    assert_propagation_unchanged(before, after)
    assert pyrunc("state", test_id).code != 0


def test_without_namespaces_a_failed_create_leaves_no_mount_and_no_state(pyrunc, host_ns_bundle, test_id):
    b = host_ns_bundle
    # After proc, /dev and the rest are mounted: a bind whose source is missing.
    b.config["mounts"].append(
        {"destination": "/data", "type": "bind", "source": "/pyrunc-test-hostns-missing", "options": ["rbind"]}
    )
    b.write()
    before = host_mount_table()
    r = pyrunc("create", "--bundle", b.path, test_id)
    assert r.code == 1 and "pyrunc-test-hostns-missing" in r.err, r
    after = host_mount_table()
    assert mounts_under(after, b.path) == mounts_under(after, pyrunc.root) == []
    assert_propagation_unchanged(before, after)
    assert pyrunc("list", "-q").out.split() == []
    assert os.listdir(pyrunc.root) == []


# --- user namespace ----------------------------------------------------------------------


def test_id_mappings_are_written_and_root_inside_is_the_mapped_host_uid(pyrunc, userns_bundle, test_id):
    out = run_sh(
        pyrunc,
        userns_bundle,
        test_id,
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g; touch /tmp/made-by-root",
    )
    lines = out.splitlines()
    assert lines[0].split() == ["0", str(HOST_ID), str(ID_RANGE)]
    assert lines[1].split() == ["0", str(HOST_ID), str(ID_RANGE)]
    assert lines[2:4] == ["0", "0"]
    st = os.stat(os.path.join(userns_bundle.rootfs, "tmp", "made-by-root"))
    assert (st.st_uid, st.st_gid) == (HOST_ID, HOST_ID)


def test_files_of_a_user_inside_belong_to_the_mapped_host_ids(pyrunc, userns_bundle, test_id):
    userns_bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001}
    out = run_sh(pyrunc, userns_bundle, test_id, "id -u; id -g; touch /tmp/made-by-user")
    assert out.split() == ["1000", "1001"]
    st = os.stat(os.path.join(userns_bundle.rootfs, "tmp", "made-by-user"))
    assert (st.st_uid, st.st_gid) == (HOST_ID + 1000, HOST_ID + 1001)


def test_root_inside_a_user_namespace_has_no_power_over_unmapped_files(pyrunc, userns_bundle, test_id):
    # /proc/sys/kernel is the host's (owned by unmapped host root): not writable from inside.
    out = run_sh(
        pyrunc,
        userns_bundle,
        test_id,
        "stat -c %u /proc/sys/kernel/hostname; echo x > /proc/sys/kernel/domainname && echo wrote || echo denied",
    )
    assert out.split() == ["65534", "denied"]


def test_default_devices_are_bind_mounted_from_the_host_in_a_user_namespace(pyrunc, userns_bundle, test_id):
    out = run_sh(
        pyrunc,
        userns_bundle,
        test_id,
        "for d in null zero full random urandom tty; do "
        "grep -c \" /dev/$d \" /proc/self/mountinfo; stat -c '%F %t:%T %u' /dev/$d; done; "
        "echo discard > /dev/null && head -c 4 /dev/zero | wc -c",
    )
    lines = out.splitlines()
    expected = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}
    for i, (name, numbers) in enumerate(expected.items()):
        assert lines[2 * i] == "1", f"/dev/{name} is not a mount"
        # The host's own node: owned by host root, which is unmapped (the overflow uid).
        assert lines[2 * i + 1] == f"character special file {numbers} 65534", name
    assert lines[-1].strip() == "4"


# --- time namespace ----------------------------------------------------------------------


def read_uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def test_time_namespace_offsets_shift_the_clocks(pyrunc, bundle, test_id):
    monotonic, boottime = 3 * 86400, 7 * 86400
    set_namespaces(bundle, pid=None, network=None, ipc=None, uts=None, mount=None, time=None)
    bundle.config["linux"]["timeOffsets"] = {
        "monotonic": {"secs": monotonic, "nanosecs": 0},
        "boottime": {"secs": boottime, "nanosecs": 500},
    }
    before = read_uptime()
    out = run_sh(pyrunc, bundle, test_id, "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime; " + PRINT_NS)
    after = read_uptime()
    lines = out.splitlines()
    offsets = {fields[0]: fields[1:] for fields in (line.split() for line in lines[:2])}
    assert offsets == {"monotonic": [str(monotonic), "0"], "boottime": [str(boottime), "500"]}
    # /proc/uptime counts boottime: the host's uptime around the run, shifted by the offset.
    inside = float(lines[2])
    assert before + boottime - 0.01 <= inside <= after + boottime + 0.01
    assert parse_ns(out)["time"] != os.readlink("/proc/self/ns/time")


def test_time_namespace_offsets_in_a_new_user_namespace(pyrunc, userns_bundle, test_id):
    userns_bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400}}
    before = read_uptime()
    out = run_sh(pyrunc, userns_bundle, test_id, "cut -d' ' -f1 /proc/uptime; grep boottime /proc/self/timens_offsets")
    after = read_uptime()
    lines = out.splitlines()
    assert before + 86400 - 0.01 <= float(lines[0]) <= after + 86400 + 0.01
    assert lines[1].split() == ["boottime", "86400", "0"]


def test_time_namespace_without_offsets_keeps_the_hosts_clocks(pyrunc, bundle, test_id):
    set_namespaces(bundle, pid=None, network=None, ipc=None, uts=None, mount=None, time=None)
    before = read_uptime()
    out = run_sh(pyrunc, bundle, test_id, "cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets")
    after = read_uptime()
    lines = out.splitlines()
    assert before - 0.01 <= float(lines[0]) <= after + 0.01
    assert sorted(line.split() for line in lines[1:]) == [["boottime", "0", "0"], ["monotonic", "0", "0"]]


# --- uts namespace -----------------------------------------------------------------------


def test_hostname_and_domainname_in_a_new_uts_namespace(pyrunc, bundle, test_id):
    host_name = socket.gethostname()
    with open("/proc/sys/kernel/domainname") as f:
        host_domain = f.read().strip()
    bundle.config["hostname"] = "pyrunc-test-host"
    bundle.config["domainname"] = "pyrunc-test.example"
    out = run_sh(
        pyrunc,
        bundle,
        test_id,
        "hostname; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname; readlink /proc/self/ns/uts",
    )
    lines = out.splitlines()
    assert lines[:3] == ["pyrunc-test-host", "pyrunc-test-host", "pyrunc-test.example"]
    assert lines[3] != os.readlink("/proc/self/ns/uts")
    # The host's names are untouched.
    assert socket.gethostname() == host_name
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read().strip() == host_domain


def test_without_hostname_a_new_uts_namespace_keeps_the_hosts_names(pyrunc, bundle, test_id):
    bundle.config.pop("hostname", None)
    out = run_sh(pyrunc, bundle, test_id, "hostname")
    assert out.strip() == socket.gethostname()


# --- bind sources out of the mapped root's reach -----------------------------------------

READ_SOURCES = (
    "cat /mnt/a/f /mnt/b.txt; touch /mnt/b.txt 2>/dev/null || echo b-read-only; "
    "cut -d' ' -f4-6 /proc/self/mountinfo | grep ' /mnt/'"
)


def test_bind_sources_the_mapped_root_cannot_reach_are_mounted_as_runc_does(
    pyrunc, runc, userns_bundle, test_id, unreachable_sources
):
    """runc opens each source before its user namespace is in the way; so does pyrunc
    (linux/mount_sources.py): the mounts are made, and show the same in mountinfo."""
    b = userns_bundle
    set_namespaces(b, **{t: None for t in ALL_TYPES if t != "time"})  # runc 1.1 has no time namespace
    bind_unreachable(b, unreachable_sources)
    out = run_sh(pyrunc, b, test_id, READ_SOURCES)
    src_dir, src_file = unreachable_sources
    assert out.splitlines() == [
        "in-a",
        "in-b",
        "b-read-only",
        f"{src_dir} /mnt/a rw,relatime",
        f"{src_file} /mnt/b.txt ro,relatime",
    ], out
    runc.use(b)
    code, theirs, err = runc("run", "--bundle", b.path, test_id + "-runc")
    assert (code, theirs) == (0, out), err


def test_exec_into_a_container_with_unreachable_bind_sources(pyrunc, userns_bundle, test_id, unreachable_sources):
    """exec mounts nothing: it joins the mount namespace the sources were bound in."""
    bind_unreachable(userns_bundle, unreachable_sources)
    userns_bundle.config["process"]["args"] = ["sleep", "300"]
    userns_bundle.write()
    assert pyrunc("run", "-d", "--bundle", userns_bundle.path, test_id).code == 0
    r = pyrunc("exec", test_id, "sh", "-c", "cat /mnt/a/f /mnt/b.txt; id -u")
    assert (r.code, r.out) == (0, "in-a\nin-b\n0\n"), r
    assert pyrunc("delete", "--force", test_id).code == 0


def test_an_unreachable_missing_source_names_the_entry(pyrunc, userns_bundle, test_id, unreachable_sources):
    bind_unreachable(userns_bundle, unreachable_sources)
    missing = os.path.join(os.path.dirname(unreachable_sources[1]), "missing")
    userns_bundle.config["mounts"][-1]["source"] = missing
    userns_bundle.write()
    r = pyrunc("run", "--bundle", userns_bundle.path, test_id)
    index = len(userns_bundle.config["mounts"]) - 1
    assert r.code == 1 and r.err == (
        f'pyrunc: create {test_id}: mounts[{index}]: mount bind "{missing}" '
        'on "/mnt/b.txt" (options bind,ro): source: no such file or directory\n'
    ), r
    assert pyrunc("list", "-q").out == ""
