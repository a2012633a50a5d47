"""Layers built from busybox-static and synthetic files, stored in overlay form: flatten()
gives the tree an overlay mount of the stored layers shows (as root)."""

import gzip
import io
import os
import stat
import subprocess

import pytest

from pyrunc.image import layers
from pyrunc.linux.kernel import Kernel
from tests.integration.image_util import base_layer, top_layer, tree
from tests.unit.tarballs import diff_id, make_tar

OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


@pytest.fixture
def stored(tmp_path):
    store = layers.Store(Kernel(), str(tmp_path / "cache"))
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
    layers.flatten(Kernel(), stored, str(out))
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
    layers.flatten(Kernel(), stored, str(flat))
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={l2}:{l1},upperdir={upper},workdir={work}", str(merged)],
        check=True,
    )
    try:
        assert tree(merged) == tree(flat)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
