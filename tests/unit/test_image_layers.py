"""pyrunc.image.layers: extracting one layer, the store, flatten (docs in the module).

Most tests run without root (owners are then not set); whiteouts (device nodes) and the
opaque xattr (trusted.*) need root and skip without it."""

import gzip
import io
import os
import stat
import sys
import tarfile

import pytest

from pyrunc.errors import ImageError
from pyrunc.image import layers
from pyrunc.linux.kernel import Kernel
from tests.unit.tarballs import diff_id, dir_, hard, make_tar, node, opaque, reg, sym, whiteout

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="whiteouts and trusted.* xattrs need root")

OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def unpack(tmp_path, entries, media_type=OCI_TAR, raw=None, **kw):
    raw = make_tar(entries) if raw is None else raw
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    skipped = layers.extract(io.BytesIO(raw), media_type, str(dest), layer="sha256:test", **kw, k=Kernel())
    return dest, skipped


# --- extract ---------------------------------------------------------------------


def test_files_dirs_links_modes_and_times(tmp_path):
    dest, skipped = unpack(
        tmp_path,
        [
            dir_("bin", mode=0o750, mtime=5000),
            reg("bin/tool", b"#!", mode=0o4755, mtime=1234),
            sym("bin/sh", "/bin/busybox"),
            hard("bin/tool2", "bin/tool"),
            reg("etc/conf", b"a=b", 0o600),
            node("pipe", tarfile.FIFOTYPE, mode=0o620),
        ],
    )
    assert skipped == []
    tool = os.lstat(dest / "bin/tool")
    assert stat.S_IMODE(tool.st_mode) == 0o4755 and tool.st_mtime == 1234
    assert (dest / "bin/tool").read_bytes() == b"#!"
    assert os.readlink(dest / "bin/sh") == "/bin/busybox"
    assert os.lstat(dest / "bin/sh").st_mtime == 3000
    assert os.lstat(dest / "bin/tool2").st_ino == tool.st_ino
    assert stat.S_IMODE(os.lstat(dest / "etc/conf").st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(dest / "etc").st_mode) == 0o755  # a missing parent
    assert stat.S_ISFIFO(os.lstat(dest / "pipe").st_mode)
    assert stat.S_IMODE(os.lstat(dest / "pipe").st_mode) == 0o620
    b = os.lstat(dest / "bin")
    assert stat.S_IMODE(b.st_mode) == 0o750 and b.st_mtime == 5000  # set after its children


@needs_root
def test_owners_come_from_the_archive(tmp_path):
    dest, _ = unpack(tmp_path, [reg("f", uid=12, gid=34, mode=0o2755), dir_("d", uid=5, gid=6), sym("s", "f")])
    st = os.lstat(dest / "f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (12, 34, 0o2755)  # setgid kept
    assert (os.lstat(dest / "d").st_uid, os.lstat(dest / "d").st_gid) == (5, 6)


@pytest.mark.parametrize(
    "media_type,compress",
    [
        (OCI_GZIP, gzip.compress),
        (DOCKER_GZIP, gzip.compress),
        (None, gzip.compress),
        (None, lambda raw: raw),
        ("application/vnd.docker.image.rootfs.diff.tar", lambda raw: raw),
    ],
)
def test_media_types(tmp_path, media_type, compress):
    raw = make_tar([reg("hello", b"world")])
    dest, _ = unpack(tmp_path, None, media_type, raw=compress(raw), diff_id=diff_id(raw))
    assert (dest / "hello").read_bytes() == b"world"


def test_zstd_without_the_module_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(ImageError, match=r"layer sha256:test: .*tar\+zstd.*install.*zstandard"):
        unpack(tmp_path, [reg("a")], OCI_ZSTD)


def test_zstd_with_the_module(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    raw = make_tar([reg("hello", b"world")])
    dest, _ = unpack(tmp_path, None, OCI_ZSTD, raw=zstandard.ZstdCompressor().compress(raw), diff_id=diff_id(raw))
    assert (dest / "hello").read_bytes() == b"world"


def test_unknown_media_type(tmp_path):
    with pytest.raises(ImageError, match=r"unsupported layer media type 'application/x-rar'"):
        unpack(tmp_path, [reg("a")], "application/x-rar")


def test_diff_id_mismatch(tmp_path):
    raw = make_tar([reg("a")])
    with pytest.raises(
        ImageError,
        match=r"uncompressed content is sha256:[0-9a-f]{64}, not the "
        r"diff_id sha256:0000",
    ):
        unpack(tmp_path, None, raw=raw, diff_id="sha256:" + "0" * 64)


def test_paths_are_cleaned_and_clamped_at_the_layer_root(tmp_path):
    dest, _ = unpack(
        tmp_path,
        [
            reg("/abs", b"1"),
            reg("a/../b", b"2"),
            reg("../../up", b"3"),
            reg("./c/./d", b"4"),
            reg("x/../../../y/z", b"5"),
        ],
    )
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert got == ["abs", "b", "c", "c/d", "up", "y", "y/z"]
    assert os.listdir(tmp_path) == ["dest"]


def test_a_member_through_a_symlink_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(ImageError, match=r'layer sha256:test: member "link/evil": a parent is a symlink'):
        unpack(tmp_path, [sym("link", str(outside)), reg("link/evil")])
    assert os.listdir(outside) == []


def test_hard_link_outside_or_missing_is_refused(tmp_path):
    with pytest.raises(
        ImageError, match=r'member "h": hard link to \'../../etc/passwd\', which is not a file of this layer'
    ):
        unpack(tmp_path, [hard("h", "../../etc/passwd")])
    with pytest.raises(ImageError, match=r'member "h2": hard link to \'d\''):
        unpack(tmp_path, [dir_("d"), hard("h2", "d")])


def test_devices_are_skipped_and_reported(tmp_path):
    dest, skipped = unpack(
        tmp_path, [node("dev/sda", tarfile.BLKTYPE, 8, 0), node("dev/null", tarfile.CHRTYPE, 1, 3), reg("ok")]
    )
    assert skipped == [
        "dev/sda: device node not created (a layer may not add devices)",
        "dev/null: device node not created (a layer may not add devices)",
    ]
    assert not os.path.lexists(dest / "dev/sda") and not os.path.lexists(dest / "dev/null")
    assert (dest / "ok").exists()


def test_later_duplicates_replace_earlier_ones(tmp_path):
    dest, _ = unpack(
        tmp_path,
        [
            reg("a", b"1"),
            reg("a", b"2"),
            reg("d/x"),
            reg("d", b"file"),
            reg("e"),
            dir_("e"),
            reg("e/in"),
            dir_("k"),
            reg("k/one"),
            dir_("k", 0o700),
        ],
    )
    assert (dest / "a").read_bytes() == b"2"
    assert (dest / "d").read_bytes() == b"file"
    assert (dest / "e/in").exists()
    assert (dest / "k/one").exists() and stat.S_IMODE(os.lstat(dest / "k").st_mode) == 0o700


def test_truncated_in_a_member_names_it(tmp_path):
    raw = make_tar([reg("small"), reg("big/file", b"y" * 5000)])
    cut = raw[: raw.index(b"y" * 100) + 1000]
    with pytest.raises(ImageError, match=r'layer sha256:test: member "big/file": unreadable or truncated'):
        unpack(tmp_path, None, raw=cut)


def test_truncated_between_members_is_an_error(tmp_path):
    raw = make_tar([reg("first", b"z" * 512), reg("second")])
    end = raw.index(b"z" * 512) + 512
    with pytest.raises(ImageError, match=r'layer sha256:test: archive truncated after member "first"'):
        unpack(tmp_path, None, raw=raw[:end])


def test_truncated_gzip_is_an_error(tmp_path):
    data = gzip.compress(make_tar([reg("a", os.urandom(20000))]))
    with pytest.raises(ImageError, match=r"unreadable or truncated archive"):
        unpack(tmp_path, None, OCI_GZIP, raw=data[: len(data) // 2])


def test_garbage_after_a_member_is_an_error(tmp_path):
    raw = make_tar([reg("first", b"z" * 512)])
    end = raw.index(b"z" * 512) + 512
    with pytest.raises(ImageError, match=r'unreadable tar header after member "first"'):
        unpack(tmp_path, None, raw=raw[:end] + b"\x01" * 1024)


def test_not_a_tar_is_an_error(tmp_path):
    with pytest.raises(ImageError, match=r"unreadable or truncated archive"):
        unpack(tmp_path, None, raw=b"")


def test_member_size_limit(tmp_path):
    with pytest.raises(ImageError, match=r'member "big": 100 bytes, more than the limit of 99'):
        unpack(tmp_path, [reg("big", b"b" * 100)], max_member_size=99)


def test_only_user_and_capability_xattrs_are_kept(tmp_path):
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.probe", b"1")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    dest, _ = unpack(tmp_path, [reg("f", xattrs={"user.a": "b", "trusted.x": "no", "security.selinux": "no"})])
    names = os.listxattr(dest / "f")
    assert "user.a" in names and "trusted.x" not in names and "security.selinux" not in names
    assert os.getxattr(dest / "f", "user.a") == b"b"


@needs_root
def test_capability_xattr_is_kept_as_bytes(tmp_path):
    cap = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"  # cap_net_bind_service+ep
    ti, data = reg("ping")
    ti.pax_headers = {"SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape")}
    dest, _ = unpack(tmp_path, [(ti, data)])
    assert os.getxattr(dest / "ping", "security.capability") == cap


@needs_root
def test_whiteouts_in_overlay_form(tmp_path):
    dest, _ = unpack(
        tmp_path,
        [
            dir_("etc"),
            whiteout("etc/gone"),
            opaque("var"),
            reg("var/new"),
            reg(".wh..wh.plnk/123"),
            whiteout("d"),
            dir_("d"),
            reg("kept"),
            whiteout("kept"),
        ],
    )
    st = os.lstat(dest / "etc/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "var", "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(dest / ".wh..wh.plnk")
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"  # whiteout then a new dir
    assert stat.S_ISREG(os.lstat(dest / "kept").st_mode)  # the layer's own entry wins


def test_hard_link_to_a_whiteout_is_refused(tmp_path):
    with pytest.raises(ImageError, match=r'member "h": hard link'):
        unpack(tmp_path, [whiteout("w"), hard("h", "w")])


# --- the store -----------------------------------------------------------------


def test_store_adds_once_and_finds(tmp_path):
    store = layers.Store(Kernel(), str(tmp_path / "cache"))
    raw = make_tar([reg("f", b"1")])
    did = diff_id(raw)
    assert store.layer(did) is None
    path = store.add(did, io.BytesIO(gzip.compress(raw)), OCI_GZIP)
    assert path == str(tmp_path / "cache/layers/sha256" / did[7:])
    assert store.layer(did) == path and open(os.path.join(path, "f"), "rb").read() == b"1"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "cache").st_mode) == 0o700
    assert store.add(did, io.BytesIO(b"not read again"), OCI_GZIP) == path
    assert os.listdir(tmp_path / "cache/layers/sha256") == [did[7:]]


@pytest.mark.parametrize(
    "raw,wrong_id",
    [
        (make_tar([reg("f")]), True),  # another layer's diff_id
        (make_tar([reg("f", b"q" * 3000)])[:2000], False),  # truncated
        (make_tar([sym("l", "/tmp"), reg("l/x")]), False),  # refused member
    ],
)
def test_store_leaves_nothing_on_failure(tmp_path, raw, wrong_id):
    store = layers.Store(Kernel(), str(tmp_path / "cache"))
    did = "sha256:" + "1" * 64 if wrong_id else diff_id(raw)
    with pytest.raises(ImageError, match=r"layer sha256:"):
        store.add(did, io.BytesIO(raw), OCI_TAR)
    assert os.listdir(tmp_path / "cache/layers/sha256") == []
    assert store.layer(did) is None


def test_store_refuses_a_bad_diff_id(tmp_path):
    store = layers.Store(Kernel(), str(tmp_path / "cache"))
    for bad in ("sha256:../../x", "sha512:" + "0" * 64, "0" * 64, "sha256:" + "A" * 64):
        with pytest.raises(ImageError, match=r"not a sha256 diff_id"):
            store.add(bad, io.BytesIO(b""), OCI_TAR)


def test_default_store_location():
    assert layers.DEFAULT_ROOT == "/var/lib/pyrunc/images"


# --- flatten ------------------------------------------------------------------------


def test_flatten_without_whiteouts(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    l1, _ = unpack(
        tmp_path / "1", [reg("a/f", b"1", 0o640, mtime=111), sym("a/s", "f"), reg("a/h", b"hh"), hard("a/h2", "a/h")]
    )
    l2, _ = unpack(tmp_path / "2", [reg("a/f", b"2", 0o600, mtime=222), reg("b", b"b")])
    out = tmp_path / "out"
    out.mkdir()
    layers.flatten(Kernel(), [str(l1), str(l2)], str(out))
    assert (out / "a/f").read_bytes() == b"2" and os.lstat(out / "a/f").st_mtime == 222
    assert stat.S_IMODE(os.lstat(out / "a/f").st_mode) == 0o600
    assert os.readlink(out / "a/s") == "f"
    assert os.lstat(out / "a/h").st_ino == os.lstat(out / "a/h2").st_ino
    assert (out / "b").read_bytes() == b"b"


@needs_root
def test_flatten_applies_whiteouts_and_opaque_dirs(tmp_path):
    dirs = []
    for i, entries in enumerate(
        [
            [reg("etc/passwd", b"root"), reg("etc/gone"), reg("var/old/x"), reg("var/keep"), dir_("sub"), reg("sub/x")],
            [whiteout("etc/gone"), opaque("var"), reg("var/new"), whiteout("sub"), sym("sub", "etc")],
        ]
    ):
        (tmp_path / str(i)).mkdir()
        d, _ = unpack(tmp_path / str(i), entries)
        dirs.append(str(d))
    out = tmp_path / "out"
    out.mkdir()
    layers.flatten(Kernel(), dirs, str(out))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["etc", "etc/passwd", "sub", "var", "var/new"]
    assert os.readlink(out / "sub") == "etc"
    assert "trusted.overlay.opaque" not in os.listxattr(out / "var")
