"""The Linux mechanics driven through the recording kernel double: no root needed."""

import errno
import os

import pytest

from pyrunc.config import model
from pyrunc.errors import KernelError
from pyrunc.linux import capabilities, kernel, mounts, namespaces, process, rootfs
from tests.unit.fakekernel import FakeKernel


@pytest.fixture
def fake():
    return FakeKernel()


def test_bounding_set_drops_every_capability_not_listed(fake, monkeypatch):
    monkeypatch.setattr(capabilities, "last_cap", lambda: 40)
    caps = model.Capabilities(
        bounding=("CAP_KILL", "CAP_CHOWN"), effective=(), inheritable=(), permitted=(), ambient=()
    )
    capabilities.drop_bounding(fake, caps)
    dropped = [args[1] for args in fake.of("prctl") if args[0] == kernel.PR_CAPBSET_DROP]
    assert sorted(set(range(41)) - set(dropped)) == [
        capabilities.NUMBERS["CAP_CHOWN"],
        capabilities.NUMBERS["CAP_KILL"],
    ]


def test_capset_gets_exact_masks_and_ambient_needs_inheritable(fake, monkeypatch):
    monkeypatch.setattr(capabilities, "last_cap", lambda: 40)
    caps = model.Capabilities(
        bounding=(),
        effective=("CAP_KILL",),
        inheritable=("CAP_CHOWN",),
        permitted=("CAP_KILL", "CAP_CHOWN"),
        ambient=("CAP_CHOWN", "CAP_KILL"),
    )
    capabilities.apply(fake, caps)
    assert fake.of("capset") == [(1 << 5, (1 << 5) | (1 << 0), 1 << 0)]
    raised = [a[2] for a in fake.of("prctl") if a[:2] == (kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_RAISE)]
    assert raised == [0]  # CAP_KILL is not inheritable, so it cannot be ambient


def test_unknown_capability_names_are_skipped():
    assert capabilities.mask(["CAP_KILL", "CAP_DOES_NOT_EXIST"]) == 1 << 5


def test_user_switch_order_keeps_capabilities_across_setuid(fake):
    process.switch_user(fake, model.User(uid=1000, gid=1001, umask=None, additional_gids=(5, 6)))
    assert fake.names() == ["prctl", "setgroups", "setresgid", "setresuid", "prctl", "prctl"]
    assert fake.of("prctl")[0] == (kernel.PR_SET_KEEPCAPS, 1)
    assert fake.of("setgroups") == [([5, 6],)]


def test_a_user_switch_leaves_the_process_non_dumpable(fake):
    """fs.suid_dumpable decides dumpability after a uid change, and a host may set it to
    1: the process still holds the runtime's fds until it execs (CVE-2016-9962)."""
    process.switch_user(fake, model.User(uid=1000, gid=1000, umask=None, additional_gids=()))
    last_uid_change = max(i for i, name in enumerate(fake.names()) if name in ("setresuid", "setresgid"))
    after = [c[1] for c in fake.calls[last_uid_change:] if c[0] == "prctl"]
    assert (kernel.PR_SET_DUMPABLE, 0) in after


class _Chan:
    """The parent's side of the protocol as stage 1 sees it: every request granted."""

    def __init__(self):
        self.sent = []

    def send(self, kind, **fields):
        self.sent.append(kind)

    def ask(self, kind, **fields):
        self.send(kind, **fields)

    def answer_to(self, kind):
        return {}

    def expect_ok(self):
        return {}

    def recv(self):
        """The answer to mount_sources: an fd for the one bind of _init_context."""
        return {"type": "ok"}, [os.open("/", os.O_PATH | os.O_CLOEXEC)]


@pytest.mark.parametrize("pid_namespace", [True, False])
def test_with_a_user_namespace_the_init_is_non_dumpable_before_anyone_can_see_it(
    fake, tmp_path, monkeypatch, pid_namespace
):
    """Stage 1 makes itself dumpable for its id maps and time offsets; the init, forked
    from it or stage 1 itself, must not be from the moment its pid is reported."""
    from pyrunc.linux import init

    monkeypatch.setattr(process, "check_lsm_support", lambda proc: None)
    spaces = [{"type": "user"}, {"type": "mount"}] + ([{"type": "pid"}] if pid_namespace else [])
    ctx = _init_context(fake, tmp_path, spaces)
    ctx.chan = _Chan()
    fake.calls_at_report = None
    real_send = ctx.chan.send

    def send(kind, **fields):
        if kind == "init":
            fake.calls_at_report = list(fake.calls)
        real_send(kind, **fields)

    ctx.chan.send = send
    assert init.setup_namespaces(ctx)  # the fake fork returns 0: we are the init
    assert "mount_sources" in ctx.chan.sent and list(ctx.mount_sources) == [0]
    os.close(ctx.mount_sources.pop(0))
    # With a pid namespace the init is forked (the parent reports it); else stage 1 is it.
    seen = fake.calls[: fake.names().index("fork")] if pid_namespace else fake.calls_at_report
    dumpable = [c[1][1] for c in seen if c[0] == "prctl" and c[1][0] == kernel.PR_SET_DUMPABLE]
    assert dumpable[0] == 1 and dumpable[-1] == 0, dumpable


def test_rlimits_map_names_to_resource_numbers(fake):
    process.set_rlimits(fake, [model.Rlimit(type="RLIMIT_NOFILE", soft=100, hard=200)])
    assert fake.of("setrlimit") == [(7, 100, 200, "RLIMIT_NOFILE")]


def test_new_namespace_flags_exclude_joined_ones():
    lx = model.from_dict(
        {
            "ociVersion": "1.0.0",
            "process": {"args": ["x"], "cwd": "/"},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/x"}, {"type": "mount"}]},
        },
        "/tmp",
    ).linux
    assert namespaces.new_flags(lx) == kernel.CLONE_NEWPID | kernel.CLONE_NEWNS
    assert namespaces.needs_child(lx)


def test_id_mappings_format():
    maps = (model.IDMapping(container_id=0, host_id=100000, size=65536),)
    assert namespaces.format_mappings(maps) == "0 100000 65536\n"


def _mount(dest, mtype, source, options):
    return model.Mount(destination=dest, type=mtype, source=source, options=tuple(options))


class _Ctx:
    bundle = "/nonexistent"
    new_cgroupns = False
    mount_label = None
    mount_sources = {}

    def __init__(self, kernel):
        self.kernel = kernel


def test_tmpfs_mount_targets_the_resolved_fd_inside_the_rootfs(fake, tmp_path):
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.do_mount(root, _mount("/run/x", "tmpfs", "tmpfs", ["nosuid", "mode=755"]), _Ctx(fake))
    finally:
        os.close(root)
    assert (tmp_path / "run" / "x").is_dir()
    [(source, target, fstype, flags, data)] = fake.of("mount")
    assert (source, fstype, flags, data) == ("tmpfs", "tmpfs", kernel.MS_NOSUID, "mode=755")
    assert target.startswith("/proc/self/fd/")


def test_mount_label_is_the_context_of_new_filesystems_not_of_binds_or_proc(fake, tmp_path):
    class Labeled(_Ctx):
        mount_label = "system_u:object_r:container_file_t:s0:c1,c2"

    (tmp_path / "src").mkdir()
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.do_mount(root, _mount("/run/x", "tmpfs", "tmpfs", ["mode=755"]), Labeled(fake))
        rootfs.do_mount(root, _mount("/dev/mqueue", "mqueue", "mqueue", []), Labeled(fake))
        rootfs.do_mount(root, _mount("/proc", "proc", "proc", []), Labeled(fake))
        rootfs.do_mount(root, _mount("/data", "bind", str(tmp_path / "src"), ["rbind"]), Labeled(fake))
    finally:
        os.close(root)
    label = 'context="system_u:object_r:container_file_t:s0:c1,c2"'
    data = [call[4] for call in fake.of("mount")]
    assert data == ["mode=755," + label, label, None, None]


def test_every_scheduler_field_reaches_sched_setattr(fake):
    from pyrunc.linux import process

    process.set_scheduler(
        fake,
        {
            "policy": "SCHED_DEADLINE",
            "runtime": 2000000,
            "deadline": 20000000,
            "period": 40000000,
            "flags": ["SCHED_FLAG_RESET_ON_FORK"],
        },
    )
    process.set_scheduler(fake, {"policy": "SCHED_FIFO", "priority": 10, "nice": 3})
    assert fake.of("sched_setattr") == [(6, 0x01, 0, 0, 2000000, 20000000, 40000000), (1, 0, 3, 10, 0, 0, 0)]


def test_symlinked_destination_stays_inside_the_rootfs(fake, tmp_path):
    outside = tmp_path / "host"
    outside.mkdir()
    rfs = tmp_path / "rootfs"
    rfs.mkdir()
    os.symlink(str(outside), rfs / "evil")
    seen = []
    real_mount = fake.mount  # the fake: record where the fd points when mount is called

    def spy(source, target, *rest):
        seen.append(os.readlink(target))
        return real_mount(source, target, *rest)

    fake.mount = spy
    root = os.open(rfs, os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.do_mount(root, _mount("/evil/sub", "tmpfs", "tmpfs", []), _Ctx(fake))
    finally:
        os.close(root)
    assert seen == [str(rfs / str(outside).lstrip("/") / "sub")]
    assert not (outside / "sub").exists()


def test_read_only_bind_is_bound_then_remounted(fake, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    rfs = tmp_path / "rootfs"
    rfs.mkdir()
    root = os.open(rfs, os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.do_mount(root, _mount("/data", "bind", str(src), ["rbind", "ro", "nosuid"]), _Ctx(fake))
    finally:
        os.close(root)
    first, second = fake.of("mount")
    assert first[0] == str(src) and first[3] == kernel.MS_BIND | kernel.MS_REC
    assert second[3] == kernel.MS_BIND | kernel.MS_REMOUNT | kernel.MS_RDONLY | kernel.MS_NOSUID


def test_failed_mount_names_the_destination(fake, tmp_path):
    fake.fail("mount", errno.EPERM)
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(KernelError) as exc:
            rootfs.do_mount(root, _mount("/proc", "proc", "proc", []), _Ctx(fake))
    finally:
        os.close(root)
    assert str(exc.value) == 'mount proc "proc" on "/proc": operation not permitted'


def _init_context(k, tmp_path, namespaces, no_pivot=False):
    """An init's context for a rootfs under tmp_path whose /dev is a bind (no devices made)."""
    from pyrunc.linux import init

    (tmp_path / "rootfs").mkdir()
    (tmp_path / "dev").mkdir()
    doc = {
        "ociVersion": "1.0.0",
        "root": {"path": "rootfs"},
        "process": {"args": ["x"], "cwd": "/"},
        "mounts": [{"destination": "/dev", "type": "bind", "source": str(tmp_path / "dev"), "options": ["rbind"]}],
        "linux": {"namespaces": namespaces},
    }
    cfg = model.from_dict(doc, str(tmp_path))
    (tmp_path / "state-rootfs").mkdir()
    return init.InitContext(
        cfg,
        "pyrunc-test-seam",
        chan=None,
        start_sock=None,
        kernel=k,
        no_pivot=no_pivot,
        host_root=str(tmp_path / "state-rootfs"),
    )


def _spy_mount_targets(fake):
    """[(source, target as the fd names it, flags)] of every mount, read when it is made."""
    seen = []
    fake_mount = fake.mount

    def spy(source, target, fstype, flags=0, data=None):
        named = os.readlink(target) if target.startswith("/proc/self/fd/") else target
        seen.append((source, named, flags))
        return fake_mount(source, target, fstype, flags, data)

    fake.mount = spy
    return seen


@pytest.mark.parametrize("no_pivot", [False, True])
def test_without_a_mount_namespace_the_root_is_bound_and_chrooted_and_no_host_mount_changes(
    fake, tmp_path, monkeypatch, no_pivot
):
    from pyrunc.linux import init

    monkeypatch.chdir(tmp_path)  # chroot_root changes directory
    seen = _spy_mount_targets(fake)
    ctx = _init_context(fake, tmp_path, [], no_pivot)
    init._setup_rootfs(ctx)
    rootfs_dir, bound = str(tmp_path / "rootfs"), ctx.host_root
    assert seen[:2] == [
        (rootfs_dir, bound, kernel.MS_BIND | kernel.MS_REC),
        (None, bound, kernel.MS_SLAVE | kernel.MS_REC),
    ]
    # Nothing acts on "/", the rootfs or the mount holding it: every target is in the bind.
    assert all(target == bound or target.startswith(bound + "/") for _, target, _ in seen), seen
    assert (tmp_path / "state-rootfs" / "dev").is_dir()  # the /dev mount point: made in the bind
    assert "pivot_root" not in fake.names() and "umount" not in fake.names()
    assert fake.of("chroot") == [(".",)]


def test_with_a_mount_namespace_the_root_is_pivoted_after_slaving_the_hosts_mounts(fake, tmp_path, monkeypatch):
    from pyrunc.linux import init

    monkeypatch.chdir(tmp_path)
    seen = _spy_mount_targets(fake)
    init._setup_rootfs(_init_context(fake, tmp_path, [{"type": "mount"}]))
    assert seen[0] == (None, "/", kernel.MS_SLAVE | kernel.MS_REC)
    assert fake.of("pivot_root") == [(".", ".")] and "chroot" not in fake.names()


@pytest.mark.parametrize(
    "options, failing, step",
    [
        (["rbind", "ro"], 2, "remount"),  # the read-only remount after the bind
        (["rbind", "rslave"], 2, "set propagation"),
    ],
)
def test_a_later_step_of_a_mount_names_the_entry_and_its_options(fake, tmp_path, options, failing, step):
    """Not only the mount itself: its remount and propagation name mounts[i] too."""
    src = tmp_path / "src"
    src.mkdir()
    rfs = tmp_path / "rootfs"
    rfs.mkdir()
    calls = []

    def fail_nth(args):
        calls.append(args)
        return len(calls) == failing

    fake.fail("mount", errno.EINVAL, fail_nth)
    m = model.Mount(destination="/data", type="bind", source=str(src), options=tuple(options), index=9)
    root = os.open(rfs, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(KernelError) as exc:
            rootfs.do_mount(root, m, _Ctx(fake))
    finally:
        os.close(root)
    assert str(exc.value).startswith(
        f'mounts[9]: mount bind "{src}" on "/data" (options {",".join(options)}): {step}: '
    ), str(exc.value)


def _mount_all(fake, rfs, entries, written_later=()):
    later = mounts.ReadonlyLater(fake, entries, written_later)
    root = os.open(rfs, os.O_PATH | os.O_DIRECTORY)
    try:
        for m in entries:
            rootfs.do_mount(root, m, _Ctx(fake), later)
        later.finish()
    finally:
        later.close()
        os.close(root)


def test_a_read_only_dev_is_made_read_only_after_the_mounts_under_it(fake, tmp_path, monkeypatch):
    seen = _spy_mount_targets(fake)
    rfs = tmp_path / "rootfs"
    rfs.mkdir()
    dev = model.Mount(
        destination="/dev", type="tmpfs", source="tmpfs", index=0, options=("nosuid", "strictatime", "mode=755", "ro")
    )
    pts = model.Mount(destination="/dev/pts", type="devpts", source="devpts", index=1, options=("ro",))
    _mount_all(fake, rfs, [dev, pts])
    assert seen == [
        ("tmpfs", str(rfs / "dev"), kernel.MS_NOSUID | kernel.MS_STRICTATIME),
        ("devpts", str(rfs / "dev" / "pts"), kernel.MS_RDONLY),  # nothing under it
        (
            None,
            str(rfs / "dev"),
            kernel.MS_BIND | kernel.MS_REMOUNT | kernel.MS_RDONLY | kernel.MS_NOSUID | kernel.MS_STRICTATIME,
        ),
    ]


@pytest.mark.parametrize("under, held", [("/dev/null", True), ("/devices/x", False), ("/dev", False)])
def test_a_read_only_mount_is_held_back_only_for_what_is_made_below_it(fake, tmp_path, under, held):
    rfs = tmp_path / "rootfs"
    rfs.mkdir()
    dev = model.Mount(destination="/dev/", type="tmpfs", source="tmpfs", index=0, options=("ro",))
    _mount_all(fake, rfs, [dev], written_later=[under])
    first = fake.of("mount")[0]
    assert bool(first[3] & kernel.MS_RDONLY) != held
    assert len(fake.of("mount")) == (2 if held else 1)


def test_a_read_only_filesystem_on_a_device_is_never_mounted_read_write(fake, tmp_path):
    """Mounted read-write, it could be written to (a journal replayed): it stays as asked,
    and what needs a mount point below it fails as in runc."""
    rfs = tmp_path / "rootfs"
    rfs.mkdir()
    disk = model.Mount(destination="/data", type="ext4", source="/dev/sdz", index=0, options=("ro",))
    sub = model.Mount(destination="/data/sub", type="tmpfs", source="tmpfs", index=1, options=())
    _mount_all(fake, rfs, [disk, sub])
    assert fake.of("mount")[0][3] == kernel.MS_RDONLY and len(fake.of("mount")) == 2


def test_a_bind_source_the_runtime_opened_is_bound_from_its_fd_then_closed(fake, tmp_path):
    """User namespaces (linux/mount_sources.py): the source path is not looked up again
    (the init may not reach it); the fd is bound, and closed at once."""
    src = tmp_path / "src"
    src.mkdir()
    rfs = tmp_path / "rootfs"
    rfs.mkdir()
    ctx = _Ctx(fake)
    held = os.open(src, os.O_PATH | os.O_CLOEXEC)
    ctx.mount_sources = {3: held}
    m = model.Mount(destination="/data", type="bind", source="/unreachable/src", options=("rbind",), index=3)
    root = os.open(rfs, os.O_PATH | os.O_DIRECTORY)
    try:
        rootfs.do_mount(root, m, ctx)
        with pytest.raises(OSError):
            os.fstat(held)
    finally:
        os.close(root)
    [(source, _, fstype, flags, _)] = fake.of("mount")
    assert (source, fstype, flags) == (f"/proc/self/fd/{held}", None, kernel.MS_BIND | kernel.MS_REC)
    assert ctx.mount_sources == {} and (rfs / "data").is_dir()  # a directory, as the fd says
