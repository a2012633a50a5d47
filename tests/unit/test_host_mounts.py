"""host_mounts: which mounts a container without a mount namespace left, in what order
they go, and that each is detached only through its own mount point (no root needed:
mountinfo is a file the test writes, umount a recorder)."""

import os

import pytest

from pyrunc.linux import Seams, host_mounts, kernel
from tests.unit.fakekernel import FakeKernel

ROOT = "/b/rootfs"


def line(mount_id, parent_id, point, optional="shared:1"):
    return f"{mount_id} {parent_id} 0:1 / {point} rw,relatime {optional} - tmpfs tmpfs rw\n"


def entries(*rows):
    return host_mounts.parse_mountinfo("".join(line(*r) for r in rows).encode())


def test_mountinfo_octal_escapes_are_decoded():
    data = (
        b"30 1 0:1 / /b/root\\040fs rw - tmpfs t rw\n"
        b"31 30 0:1 / /b/tab\\011new\\012line\\134back rw master:3 - tmpfs t rw\n"
    )
    assert [(e.mount_id, e.parent_id, e.mount_point) for e in host_mounts.parse_mountinfo(data)] == [
        (30, 1, "/b/root fs"),
        (31, 30, "/b/tab\tnew\nline\\back"),
    ]


def test_only_new_mounts_at_or_under_the_root_are_chosen():
    got = host_mounts.new_mounts(
        {"root": ROOT, "before": [40]},
        entries(
            (20, 1, "/"),
            (40, 20, ROOT),
            (41, 40, ROOT),
            (42, 41, ROOT + "/proc"),
            (43, 20, "/b/rootfs2"),
            (44, 20, "/b"),
            (45, 20, "/b/rootfs-x/y"),
        ),
    )
    assert [e.mount_id for e in got] == [41, 42]


def test_children_go_before_parents_and_later_mounts_before_earlier_ones():
    got = host_mounts.detach_order(
        entries(
            (50, 1, ROOT),
            (51, 50, ROOT + "/a/b"),  # covered by 53, mounted after it on /a
            (52, 50, ROOT + "/dev"),
            (53, 50, ROOT + "/a"),
            (54, 52, ROOT + "/dev/pts"),
            (55, 54, ROOT + "/dev/pts"),  # stacked on 54
        )
    )
    order = [e.mount_id for e in got]
    assert order == [55, 54, 53, 52, 51, 50]
    for e in got:  # no mount before one of its children
        assert all(order.index(c.mount_id) < order.index(e.mount_id) for c in got if c.parent_id == e.mount_id)


def test_an_order_that_is_not_mount_order_still_puts_children_first():
    # A mount moved under a newer one shows before its parent in mountinfo.
    got = host_mounts.detach_order(entries((61, 62, ROOT + "/x/y"), (60, 1, ROOT), (62, 60, ROOT + "/x")))
    assert [e.mount_id for e in got] == [61, 62, 60]


def mount_id(path):
    fd = os.open(path, os.O_PATH)
    try:
        return host_mounts._mount_id_of(fd)
    finally:
        os.close(fd)


class _Unmounting(FakeKernel):
    """The kernel double: what umount was asked to detach, as the fd it was given names it."""

    def __init__(self):
        super().__init__()
        self.targets = []

    def umount(self, target, flags=0):
        assert flags == kernel.MNT_DETACH
        self.targets.append(os.readlink(target))


@pytest.fixture
def unmounted():
    return _Unmounting()


def test_a_mount_is_detached_only_through_a_mount_point_that_leads_to_it(tmp_path, monkeypatch, unmounted):
    root = tmp_path / "rootfs"
    (root / "ours").mkdir(parents=True)
    (root / "elsewhere").mkdir()
    real = mount_id(str(tmp_path))
    (root / "link").symlink_to(tmp_path)  # a container's symlink: never followed
    info = tmp_path / "mountinfo"
    # Only ours, and the link's target, are the mount the line names.
    info.write_text(
        line(real, 1, f"{root}/ours")
        + line(real + 1, 1, f"{root}/link")
        + line(real + 2, 1, f"{root}/elsewhere")
        + line(real + 3, 1, f"{tmp_path}/outside")
        + line(real + 4, 1, f"{root}/missing")
    )
    monkeypatch.setattr(host_mounts, "MOUNTINFO", str(info))
    left = host_mounts.detach_new(unmounted, {"root": str(root), "before": []})
    assert set(unmounted.targets) == {f"{root}/ours"}
    why = {e.mount_point: reason for e, reason in left}
    assert why[f"{root}/elsewhere"] == f"{root}/elsewhere now leads to another mount"
    assert "too many levels of symbolic links" in why[f"{root}/link"]
    assert "no such file" in why[f"{root}/missing"]
    # The recorder detached nothing, so it is still there, and said to be.
    assert why[f"{root}/ours"].startswith("it was mounted again")
    assert f"{tmp_path}/outside" not in why
    assert host_mounts.describe_left(left, str(root)).startswith(f"cannot unmount {root}/")


def test_mounts_there_before_are_left_alone(tmp_path, monkeypatch, unmounted):
    root = tmp_path / "rootfs"
    root.mkdir()
    real = mount_id(str(tmp_path))
    info = tmp_path / "mountinfo"
    info.write_text(line(real, 1, str(root)))
    monkeypatch.setattr(host_mounts, "MOUNTINFO", str(info))
    assert host_mounts.record(str(root)) == {"root": str(root), "before": [real]}
    assert host_mounts.detach_new(unmounted, host_mounts.record(str(root))) == []
    assert unmounted.targets == []


def test_the_root_is_recorded_with_symlinks_resolved(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    info = tmp_path / "mountinfo"
    info.write_text(line(70, 1, f"{tmp_path}/real") + line(71, 1, f"{tmp_path}/alias"))
    monkeypatch.setattr(host_mounts, "MOUNTINFO", str(info))
    assert host_mounts.record(str(tmp_path / "alias")) == {"root": f"{tmp_path}/real", "before": [70]}


def test_delete_that_cannot_unmount_fails_in_one_line_and_keeps_the_state_for_a_retry(tmp_path, monkeypatch):
    from pyrunc import lifecycle
    from pyrunc.errors import StateError
    from pyrunc.store import State, Store

    store = Store(str(tmp_path / "state"))
    cid = "pyrunc-test-hostns-unit"
    saved = {"root": f"{tmp_path}/state/{cid}/rootfs", "before": []}
    store.create(cid, State(cid, str(tmp_path), host_mounts=saved)).close()
    os.mkdir(saved["root"])
    stuck = host_mounts.MountEntry(90, 80, saved["root"] + "/proc")
    monkeypatch.setattr(host_mounts, "detach_new", lambda k, s: [(stuck, "umount: device or resource busy")])
    with pytest.raises(StateError) as exc:
        lifecycle.delete(store, cid, Seams(), force=True)
    assert str(exc.value) == (
        f"cannot delete container {cid}: cannot unmount {saved['root']}/proc "
        f"under {saved['root']}: umount: device or resource busy"
    )
    assert store.ids() == [cid]
    monkeypatch.setattr(host_mounts, "detach_new", lambda k, s: [])
    lifecycle.delete(store, cid, Seams(), force=True)
    assert store.ids() == []
