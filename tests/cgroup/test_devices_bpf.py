"""The device program on the real kernel: a forked child joins a cgroup2 directory with
rules applied and reports which device opens and mknods the kernel let through.

Works on a hybrid host (cgroup2 at /sys/fs/cgroup/unified; the v1 devices controller,
where this process sits at its root, allows everything) and on a pure v2 host."""

import errno
import json
import os
import stat
import uuid

import pytest

from pyrunc.config.default import default_spec
from pyrunc.linux import kernel
from pyrunc.linux.cgroups import CGROUP_MOUNT_ROOT, device_rules, probe
from pyrunc.linux.cgroups import devices_bpf as bpf

K = kernel.Kernel()  # the real kernel, passed to what is tested
MODE = probe(K)
CGROUP2 = CGROUP_MOUNT_ROOT if MODE == "v2" else os.path.join(CGROUP_MOUNT_ROOT, "unified")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(MODE == "v1", reason="this host has no cgroup2 mount"),
]

DENY_ALL = {"allow": False, "access": "rwm"}
NULL_RW = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}


@pytest.fixture
def cgroup():
    path = os.path.join(CGROUP2, f"pyrunc-test-bpf-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    yield path
    # The children have exited and been reaped: the cgroup is empty, and removing it
    # detaches and frees its programs.
    os.rmdir(path)


def in_cgroup(cgroup, *actions):
    """Fork a child that joins `cgroup` and runs each action; returns "ok" or the errno
    name of each.  Actions: ("open", path, flags), ("mknod", path, "b"|"c", major, minor),
    ("tmpfs", dir): a private tmpfs there, for nodes that must be opened (a nodev /tmp
    would refuse them with EACCES before the device program is asked)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(read_end)
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            results = [_act(*action) for action in actions]
            os.write(write_end, json.dumps(results).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and data, "the child failed before reporting"
    return json.loads(data)


def _act(verb, path, *args):
    try:
        if verb == "open":
            os.close(os.open(path, args[0] | os.O_CLOEXEC | os.O_NONBLOCK))
        elif verb == "mknod":
            kind, major, minor = args
            mode = 0o600 | (stat.S_IFBLK if kind == "b" else stat.S_IFCHR)
            os.mknod(path, mode, os.makedev(major, minor))
        elif verb == "tmpfs":
            K.unshare(kernel.CLONE_NEWNS)
            K.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
            K.mount("tmpfs", path, "tmpfs")
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]


def all_device_programs(cgroup):
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return K.bpf_prog_query(fd, kernel.BPF_CGROUP_DEVICE)
    finally:
        os.close(fd)


def test_allows_only_the_listed_device(cgroup, tmp_path):
    bpf.apply(K, cgroup, [DENY_ALL, NULL_RW])
    node = str(tmp_path / "null-again")
    assert in_cgroup(
        cgroup,
        ("open", "/dev/null", os.O_RDWR),
        ("open", "/dev/null", os.O_RDONLY),
        ("open", "/dev/zero", os.O_RDONLY),
        ("open", "/dev/full", os.O_WRONLY),
        ("mknod", node, "c", 1, 3),
    ) == ["ok", "ok", "EPERM", "EPERM", "EPERM"]
    assert not os.path.lexists(node)
    # The control: outside the cgroup the same calls succeed.
    assert _act("open", "/dev/zero", os.O_RDONLY) == "ok"


def test_read_only_rule_refuses_a_read_write_open(cgroup):
    bpf.apply(K, cgroup, [DENY_ALL, dict(NULL_RW, access="r")])
    assert in_cgroup(
        cgroup, ("open", "/dev/null", os.O_RDONLY), ("open", "/dev/null", os.O_RDWR), ("open", "/dev/null", os.O_WRONLY)
    ) == ["ok", "EPERM", "EPERM"]


def test_deny_all_blocks_dev_null(cgroup):
    bpf.apply(K, cgroup, [{"allow": True}, DENY_ALL])
    assert in_cgroup(cgroup, ("open", "/dev/null", os.O_RDONLY)) == ["EPERM"]


def test_second_apply_replaces_the_first(cgroup):
    bpf.apply(K, cgroup, [DENY_ALL, NULL_RW])
    first = bpf.attached(K, cgroup)
    assert len(first) == 1 and all_device_programs(cgroup) == first

    bpf.apply(K, cgroup, [DENY_ALL])
    second = bpf.attached(K, cgroup)
    assert len(second) == 1 and second != first and all_device_programs(cgroup) == second
    assert in_cgroup(cgroup, ("open", "/dev/null", os.O_RDONLY)) == ["EPERM"]

    # Back to allowing /dev/null: only possible if the deny-all program is gone, since
    # every attached program must allow.
    bpf.apply(K, cgroup, [DENY_ALL, NULL_RW])
    assert len(all_device_programs(cgroup)) == 1
    assert in_cgroup(cgroup, ("open", "/dev/null", os.O_RDONLY)) == ["ok"]


def test_a_program_apply_did_not_load_stays(cgroup):
    # Someone else's allow-all program (r0 = 1; exit) is left attached.
    code = bpf.insn(bpf.ALU32_MOV_K, bpf.R0, imm=1) + bpf.insn(bpf.JMP_EXIT)
    prog = K.bpf_prog_load(kernel.BPF_PROG_TYPE_CGROUP_DEVICE, code, "GPL", "other_devices")
    dir_fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        K.bpf_prog_attach(dir_fd, prog, kernel.BPF_CGROUP_DEVICE, kernel.BPF_F_ALLOW_MULTI)
    finally:
        os.close(dir_fd)
        os.close(prog)
    foreign = all_device_programs(cgroup)
    bpf.apply(K, cgroup, [DENY_ALL, NULL_RW])
    bpf.apply(K, cgroup, [DENY_ALL, NULL_RW])
    ours = bpf.attached(K, cgroup)
    assert len(ours) == 1 and sorted(all_device_programs(cgroup)) == sorted(foreign + ours)
    assert in_cgroup(cgroup, ("open", "/dev/null", os.O_RDWR), ("open", "/dev/zero", os.O_RDONLY)) == ["ok", "EPERM"]


def test_runc_default_rules(cgroup, tmp_path):
    rules = device_rules(default_spec()["linux"]["resources"])
    bpf.apply(K, cgroup, rules)
    disk = str(tmp_path / "disk")
    results = in_cgroup(
        cgroup,
        ("open", "/dev/null", os.O_RDWR),
        ("open", "/dev/urandom", os.O_RDONLY),
        ("open", "/dev/zero", os.O_RDONLY),
        ("open", "/dev/tty", os.O_RDWR),
        ("tmpfs", str(tmp_path)),
        ("mknod", disk, "b", 8, 0),
        ("open", disk, os.O_RDONLY),
    )
    assert results[:3] == ["ok", "ok", "ok"]
    # /dev/tty is allowed; without a controlling terminal the open itself fails with ENXIO.
    assert results[3] in ("ok", "ENXIO")
    # The default list allows mknod of any node (b *:* m), but not using a block device.
    assert results[4:] == ["ok", "ok", "EPERM"]

    # The control: with every device allowed the same open gets past the device check.
    bpf.apply(K, cgroup, [{"allow": True}])
    results = in_cgroup(cgroup, ("tmpfs", str(tmp_path)), ("mknod", disk, "b", 8, 0), ("open", disk, os.O_RDONLY))
    assert results[:2] == ["ok", "ok"] and results[2] != "EPERM"
