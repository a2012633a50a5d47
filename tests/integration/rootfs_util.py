"""Helpers shared by the rootfs, devices and masked-paths tests.

Host-side scratch directories and mounts are all named /tmp/pyrunc-test-* and are
unmounted and removed by the `host_dir` fixture even when a test fails.
"""

import ctypes
import shutil
import subprocess
import tempfile

import pytest

MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def run_sh(pyrunc, bundle, test_id, script, flags=()):
    """Run `sh -c script` in a container of the bundle; return the Result."""
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.write()
    return pyrunc("run", *flags, test_id, "--bundle", bundle.path)


def run_ok(pyrunc, bundle, test_id, script, flags=()):
    r = run_sh(pyrunc, bundle, test_id, script, flags)
    assert r.code == 0, r
    return r.out


class MountEntry:
    """One line of /proc/<pid>/mountinfo."""

    def __init__(self, line):
        pre, _, post = line.partition(" - ")
        f = pre.split()
        self.id, self.parent, self.dev = int(f[0]), int(f[1]), f[2]
        self.root, self.point = _unescape(f[3]), _unescape(f[4])
        self.options = set(f[5].split(","))
        self.optional = f[6:]
        p = post.split()
        self.fstype, self.source = p[0], _unescape(p[1])
        self.super = set(p[2].split(",")) if len(p) > 2 else set()

    def __repr__(self):
        return f"<{self.point} {self.fstype} {sorted(self.options)} {self.optional} {sorted(self.super)}>"


def _unescape(s):
    return s.encode().decode("unicode_escape") if "\\" in s else s


def parse_mountinfo(text):
    return [MountEntry(line) for line in text.splitlines() if " - " in line]


def mount_at(entries, point):
    """The top-most mount at `point` (mountinfo lists mounts in the order they were made)."""
    found = [e for e in entries if e.point == point]
    assert found, f"nothing mounted at {point}: {entries}"
    return found[-1]


def host_mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f if _unescape(line.split()[4]).startswith(path.rstrip("/")))


def host_mount_lines(fragment):
    with open("/proc/self/mountinfo") as f:
        return sorted(line for line in f if fragment in line)


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def unmount_all_under(path):
    """Lazily unmount every host mount at or below path, deepest first."""
    for point in sorted(host_mounts_under(path), key=len, reverse=True):
        _libc.umount2(point.encode(), MNT_DETACH)


@pytest.fixture
def host_dir():
    """A scratch directory on the host, /tmp/pyrunc-test-*, cleaned up after the test."""
    made = []

    def make(name="dir"):
        d = tempfile.mkdtemp(prefix=f"pyrunc-test-{name}-", dir="/tmp")
        made.append(d)
        return d

    yield make
    for d in made:
        unmount_all_under(d)
        unmount_all_under(d)  # a lazy unmount may uncover another mount on the same point
        assert not host_mounts_under(d), host_mounts_under(d)
        shutil.rmtree(d, ignore_errors=True)


def add_mount(bundle, destination, mtype, source, options=()):
    entry = {"destination": destination, "type": mtype, "source": source}
    if options:
        entry["options"] = list(options)
    bundle.config["mounts"].append(entry)
    return entry


@pytest.fixture
def unreachable_sources(host_dir):
    """Two bind sources a user namespace's mapped root cannot reach, each under a
    directory of host root's, mode 0700, in two places: (a directory holding a file `f`
    that reads "in-a", a file that reads "in-b")."""
    import os

    first, second = host_dir("hidden-a"), host_dir("hidden-b")
    for d in (first, second):  # as mkdtemp makes them; said again for the reader
        os.chmod(d, 0o700)
        assert os.stat(d).st_uid == 0
    src_dir = os.path.join(first, "src")
    os.mkdir(src_dir, 0o755)
    with open(os.path.join(src_dir, "f"), "w") as f:
        f.write("in-a\n")
    deep = os.path.join(second, "deep", "er")
    os.makedirs(deep, 0o755)
    src_file = os.path.join(deep, "b.txt")
    with open(src_file, "w") as f:
        f.write("in-b\n")
    os.chmod(src_file, 0o644)
    return src_dir, src_file


def bind_unreachable(bundle, sources):
    """The two sources of `unreachable_sources` bound at /mnt/a and (read-only) /mnt/b.txt."""
    src_dir, src_file = sources
    bundle.config["mounts"] += [
        {"destination": "/mnt/a", "type": "bind", "source": src_dir, "options": ["rbind"]},
        {"destination": "/mnt/b.txt", "type": "bind", "source": src_file, "options": ["bind", "ro"]},
    ]
