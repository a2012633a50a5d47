"""Hostile layers, generated: whatever the archive holds, extract() writes nothing outside
`dest`, follows no symlink, creates no device but a whiteout, and fails only with a
one-line ImageError naming the layer."""

import io
import os
import shutil
import stat
import tarfile
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.errors import ImageError
from pyrunc.image import layers
from pyrunc.linux.kernel import Kernel
from tests.unit.tarballs import dir_, hard, make_tar, node, reg, sym

ROOT = os.geteuid() == 0
COMPONENTS = ["a", "link", "..", ".", "", ".wh.a", ".wh..wh..opq", "sib", "etc"]


def paths():
    return st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=5).map("/".join) | st.sampled_from(
        ["/etc/passwd", "../../etc/passwd", "/", "..", "../sib/x", "link/x", "link/../x", "a/link/evil"]
    )


def link_targets(outside):
    return (
        st.sampled_from([outside, outside + "/x", "../sib", "../../", "/", "/etc", "a", "../outside", "link", "."])
        | paths()
    )


def members(outside):
    """Lists of members: single ones, or a symlink followed by something written below it."""
    one = member(outside)
    through = st.builds(
        lambda n, t, rest, m: [sym(n, t), _under(m, n + "/" + rest)], paths(), link_targets(outside), paths(), one
    )
    return st.one_of(one.map(lambda m: [m]), through)


def _under(m, name):
    ti, data = m
    ti.name = name
    return ti, data


def member(outside):
    name = paths()
    return st.one_of(
        st.builds(lambda n, d: reg(n, d), name, st.binary(max_size=600)),
        st.builds(dir_, name),
        st.builds(sym, name, link_targets(outside)),
        st.builds(hard, name, link_targets(outside)),
        st.builds(lambda n, k: node(n, k, 1, 3), name, st.sampled_from([tarfile.CHRTYPE, tarfile.BLKTYPE])),
        st.builds(lambda n: node(n, tarfile.CHRTYPE, 0, 0), name),
        st.builds(lambda n: node(n, tarfile.FIFOTYPE), name),
    )


def snapshot(path):
    """Every entry under path with what identifies it; [] for an empty directory."""
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            s = os.lstat(p)
            out.append((p, s.st_mode, s.st_size, s.st_mtime_ns, s.st_ino))
    return sorted(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_nothing_escapes_dest(data):
    base = tempfile.mkdtemp(prefix="pyrunc-hostile-")
    try:
        dest, sib, outside = (os.path.join(base, n) for n in ("dest", "sib", "outside"))
        for d in (dest, sib, outside):
            os.mkdir(d)
        with open(os.path.join(outside, "victim"), "w") as f:
            f.write("keep")
        before = snapshot(outside)
        entries = [m for ms in data.draw(st.lists(members(outside), max_size=8)) for m in ms]
        raw = make_tar(entries)
        truncate = data.draw(st.sampled_from([None, None, None, 1, 2, 3]))
        if truncate:
            raw = raw[: max(0, len(raw) - truncate * 700)]
        try:
            layers.extract(io.BytesIO(raw), None, dest, layer="sha256:hostile", k=Kernel())
        except ImageError as e:
            msg = str(e)
            assert msg.startswith("layer sha256:hostile: ") and "\n" not in msg
        assert os.listdir(sib) == []
        assert snapshot(outside) == before
        assert sorted(os.listdir(base)) == ["dest", "outside", "sib"]
        for dirpath, dirnames, filenames in os.walk(dest):
            for n in dirnames + filenames:
                s = os.lstat(os.path.join(dirpath, n))
                if stat.S_ISCHR(s.st_mode) or stat.S_ISBLK(s.st_mode):
                    assert stat.S_ISCHR(s.st_mode) and s.st_rdev == 0, "only whiteouts are devices"
                if stat.S_ISLNK(s.st_mode):
                    continue
                # hard links can only join files of dest: none shares an inode with outside
                assert s.st_ino not in {e[4] for e in before}
    finally:
        shutil.rmtree(base)


def test_the_classic_attacks_one_by_one(tmp_path):
    """The cases the generator should find, spelled out, with the error each gives."""
    outside = tmp_path / "outside"
    outside.mkdir()
    cases = [
        ([sym("link", str(outside)), reg("link/evil")], r'member "link/evil": a parent is a symlink'),
        ([sym("link", "../outside"), dir_("link/d")], r'member "link/d": a parent is a symlink'),
        ([hard("h", "../../etc/passwd")], r'member "h": hard link to'),
        ([hard("h", str(outside / "victim"))], r'member "h": hard link to'),
        ([sym("a", "/"), sym("a/etc", "x")], r'member "a/etc": a parent is a symlink'),
    ]
    (outside / "victim").write_text("keep")
    for entries, message in cases:
        dest = tmp_path / "dest"
        dest.mkdir()
        try:
            layers.extract(io.BytesIO(make_tar(entries)), None, str(dest), layer="sha256:x", k=Kernel())
        except ImageError as e:
            import re

            assert re.search(message, str(e)), str(e)
        else:
            raise AssertionError(f"{entries} was accepted")
        finally:
            shutil.rmtree(dest)
        assert sorted(os.listdir(outside)) == ["victim"] and (outside / "victim").read_text() == "keep"
    # escaping names are clamped at the root, not refused
    dest = tmp_path / "dest"
    dest.mkdir()
    layers.extract(
        io.BytesIO(make_tar([reg("../../outside/victim", b"pwned"), reg("/etc/passwd")])),
        None,
        str(dest),
        layer="sha256:x",
        k=Kernel(),
    )
    assert (dest / "outside/victim").read_bytes() == b"pwned"
    assert (outside / "victim").read_text() == "keep"
