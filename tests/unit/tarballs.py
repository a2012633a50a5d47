"""Layer archives built in memory for the image tests: one builder per member type
(each a (TarInfo, data) pair), whiteouts and opaque markers in their tar form, the
archive, and its diff id."""

import hashlib
import io
import tarfile


def reg(name, data=b"x", mode=0o644, mtime=1000, uid=0, gid=0, xattrs=None):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime, ti.uid, ti.gid = len(data), mode, mtime, uid, gid
    if xattrs:
        ti.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in xattrs.items()}
    return ti, data


def dir_(name, mode=0o755, mtime=2000, uid=0, gid=0):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime, ti.uid, ti.gid = tarfile.DIRTYPE, mode, mtime, uid, gid
    return ti, None


def sym(name, target, mtime=3000):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mtime = tarfile.SYMTYPE, target, mtime
    return ti, None


def hard(name, target):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname = tarfile.LNKTYPE, target
    return ti, None


def node(name, kind, major=0, minor=0, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type, ti.devmajor, ti.devminor, ti.mode = kind, major, minor, mode
    return ti, None


def whiteout(path):
    head, _, base = path.rpartition("/")
    return reg(f"{head}/.wh.{base}" if head else f".wh.{base}", b"")


def opaque(dirpath):
    return reg(f"{dirpath}/.wh..wh..opq", b"")


def make_tar(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def diff_id(raw):
    return "sha256:" + hashlib.sha256(raw).hexdigest()
