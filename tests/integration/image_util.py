"""A two-layer busybox image for the image tests (a whiteout and an opaque directory in the
top layer), and the tree a container sees, to compare rootfs directories."""

import os
import stat

from tests.conftest import BUSYBOX
from tests.unit.tarballs import dir_, hard, opaque, reg, sym, whiteout


def base_layer():
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    return [
        dir_("bin", mtime=100),
        reg("bin/busybox", busybox, 0o755, mtime=101),
        sym("bin/sh", "busybox"),
        sym("bin/ls", "busybox"),
        hard("bin/bb", "bin/busybox"),
        dir_("etc", mtime=102),
        reg("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mtime=103),
        reg("etc/secret", b"s", 0o600, uid=7, gid=8, mtime=104),
        dir_("var/cache", mode=0o700, mtime=105),
        reg("var/cache/old", b"old"),
        reg("var/cache/old2"),
        dir_("opt", mtime=106),
        reg("opt/tool", b"#!/bin/sh\n", 0o4755, uid=0, gid=50, mtime=107),
        dir_("tmp", mode=0o1777, mtime=108),
    ]


def top_layer():
    return [
        whiteout("etc/secret"),
        opaque("var/cache"),
        reg("var/cache/new", b"new", mtime=200),
        reg("etc/passwd", b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n", mtime=201),
        whiteout("opt"),
        sym("opt", "/usr/local", mtime=202),
        reg("app/run", b"run", 0o750, uid=1000, gid=1000),
    ]


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
