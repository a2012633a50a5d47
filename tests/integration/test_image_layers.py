"""Layers built from busybox-static and synthetic files, stored in overlay form: flatten()
gives the tree an overlay mount of the stored layers shows (as root)."""

import gzip
import io
import os
import stat
import subprocess

import pytest

from pyrunc.image import layers
from tests.conftest import BUSYBOX
from tests.unit.test_image_layers import diff_id, dir_, hard, make_tar, opaque, reg, sym, whiteout

OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def base_layer():
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    return [dir_("bin", mtime=100), reg("bin/busybox", busybox, 0o755, mtime=101),
            sym("bin/sh", "busybox"), sym("bin/ls", "busybox"), hard("bin/bb", "bin/busybox"),
            dir_("etc", mtime=102), reg("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mtime=103),
            reg("etc/secret", b"s", 0o600, uid=7, gid=8, mtime=104),
            dir_("var/cache", mode=0o700, mtime=105), reg("var/cache/old", b"old"), reg("var/cache/old2"),
            dir_("opt", mtime=106), reg("opt/tool", b"#!/bin/sh\n", 0o4755, uid=0, gid=50, mtime=107),
            dir_("tmp", mode=0o1777, mtime=108)]


def top_layer():
    return [whiteout("etc/secret"), opaque("var/cache"), reg("var/cache/new", b"new", mtime=200),
            reg("etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n", mtime=201),
            whiteout("opt"), sym("opt", "/usr/local", mtime=202), reg("app/run", b"run", 0o750, uid=1000, gid=1000)]


def tree(root):
    """What a container sees: every path with type, mode, owner, size, link target and
    content hash; the root directory's own attributes are not compared."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            s = os.lstat(p)
            rel = os.path.relpath(p, root)
            entry = [stat.S_IFMT(s.st_mode), stat.S_IMODE(s.st_mode), s.st_uid, s.st_gid]
            if stat.S_ISLNK(s.st_mode):
                entry.append(os.readlink(p))
            elif stat.S_ISREG(s.st_mode):
                entry += [s.st_size, s.st_mtime_ns, hash(open(p, "rb").read())]
            elif stat.S_ISDIR(s.st_mode):
                entry.append(s.st_mtime_ns)
            out[rel] = tuple(entry)
    return out


@pytest.fixture
def stored(tmp_path):
    store = layers.Store(str(tmp_path / "cache"))
    paths = []
    for entries in (base_layer(), top_layer()):
        raw = make_tar(entries)
        paths.append(store.add(diff_id(raw), io.BytesIO(gzip.compress(raw)), OCI_GZIP))
    return paths


def test_store_keeps_overlay_form(stored):
    l1, l2 = stored
    st = os.lstat(os.path.join(l2, "etc/secret"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(l2, "var/cache"), "trusted.overlay.opaque") == b"y"
    assert os.readlink(os.path.join(l2, "opt")) == "/usr/local"  # replaced its own whiteout
    assert os.lstat(os.path.join(l1, "bin/bb")).st_ino == os.lstat(os.path.join(l1, "bin/busybox")).st_ino
    assert os.lstat(os.path.join(l1, "opt/tool")).st_mode & 0o7777 == 0o4755
    assert os.lstat(os.path.join(l1, "etc/secret")).st_uid == 7


def test_flatten_gives_the_expected_tree(stored, tmp_path):
    out = tmp_path / "flat"
    out.mkdir()
    layers.flatten(stored, str(out))
    t = tree(out)
    assert "etc/secret" not in t
    assert sorted(p for p in t if p.startswith("var/cache/")) == ["var/cache/new"]
    assert t["opt"][0] == stat.S_IFLNK and t["opt"][4] == "/usr/local" and "opt/tool" not in t
    assert t["app/run"][1:4] == (0o750, 1000, 1000)
    assert t["tmp"][1] == 0o1777
    assert (out / "etc/passwd").read_bytes().endswith(b"app:x:1000:1000::/app:/bin/sh\n")
    assert os.lstat(out / "bin/bb").st_ino == os.lstat(out / "bin/busybox").st_ino
    assert os.lstat(out / "bin/busybox").st_mtime == 101
    # the flattened tree runs: busybox through its symlink
    r = subprocess.run(["chroot", str(out), "/bin/sh", "-c", "ls /var/cache"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split() == ["new"], r.stderr


def test_overlay_mount_shows_the_flattened_tree(stored, tmp_path):
    l1, l2 = stored
    flat = tmp_path / "flat"
    flat.mkdir()
    layers.flatten(stored, str(flat))
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={l2}:{l1},upperdir={upper},workdir={work}", str(merged)], check=True)
    try:
        assert tree(merged) == tree(flat)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
