"""mounts.remount_attrs against the kernel: mount_setattr(2) with its attributes leaves a
bind with the same per-mount flags as the bind remount it stands for (the cgroup mount
sets a v1 host's hierarchies' flags with one recursive mount_setattr, not a remount each)."""

import itertools
import json
import os
import tempfile

from pyrunc.linux import kernel
from pyrunc.linux.mounts import remount_attrs

BASIC = [kernel.MS_RDONLY, kernel.MS_NOSUID, kernel.MS_NODEV, kernel.MS_NOEXEC, kernel.MS_NOSYMFOLLOW]
ATIME = [
    0,
    kernel.MS_RELATIME,
    kernel.MS_NOATIME,
    kernel.MS_STRICTATIME,
    kernel.MS_NODIRATIME,
    kernel.MS_NOATIME | kernel.MS_NODIRATIME,
    kernel.MS_STRICTATIME | kernel.MS_NOATIME,
]
# The flags of the mount each bind starts from: none, and a host cgroup mount's and more.
SOURCES = {"plain": "", "restricted": "ro,nosuid,nodev,noexec,noatime,nodiratime"}


def _all_flags():
    for n in range(len(BASIC) + 1):
        for basic in itertools.combinations(BASIC, n):
            for atime in ATIME:
                yield sum(basic) | atime


def _mount_options(point):
    with open("/proc/self/mountinfo") as f:
        found = [line.split()[5] for line in f if line.split()[4] == point]
    return set(found[-1].split(","))


def _compare_in_own_mount_namespace(top):
    """([(source, flags, remounted options, setattr options)] where the two differ, how
    many pairs were compared)."""
    k = kernel.Kernel()
    k.unshare(kernel.CLONE_NEWNS)
    k.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE, None)
    differ = []
    compared = 0
    for label, opts in SOURCES.items():
        src = os.path.join(top, label)
        os.mkdir(src)
        k.mount("pyrunc-test-attrs", src, "tmpfs", 0, None)
        if opts:
            k.mount(None, src, None, kernel.MS_REMOUNT | kernel.MS_BIND | _flags_of(opts), None)
        for flags in _all_flags():
            a, b = os.path.join(top, "a"), os.path.join(top, "b")
            os.makedirs(a, exist_ok=True)
            os.makedirs(b, exist_ok=True)
            for point in (a, b):
                k.mount(src, point, None, kernel.MS_BIND, None)
            k.mount(None, a, None, kernel.MS_BIND | kernel.MS_REMOUNT | flags, None)
            attr_set, attr_clr = remount_attrs(flags)
            fd = os.open(b, os.O_PATH | os.O_CLOEXEC)
            try:
                k.mount_setattr(fd, "", kernel.AT_EMPTY_PATH, attr_set, attr_clr)
            finally:
                os.close(fd)
            remounted, set_attrs = _mount_options(a), _mount_options(b)
            compared += 1
            if remounted != set_attrs:
                differ.append((label, flags, sorted(remounted), sorted(set_attrs)))
            for point in (a, b):
                k.umount(point)
        k.umount(src)
    return differ, compared


def _flags_of(opts):
    names = {"ro": kernel.MS_RDONLY, "nosuid": kernel.MS_NOSUID, "nodev": kernel.MS_NODEV}
    names |= {"noexec": kernel.MS_NOEXEC, "noatime": kernel.MS_NOATIME, "nodiratime": kernel.MS_NODIRATIME}
    return sum(names[o] for o in opts.split(","))


def test_mount_setattr_with_remount_attrs_gives_what_a_bind_remount_gives():
    top = tempfile.mkdtemp(prefix="pyrunc-test-attrs-")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            differ, compared = _compare_in_own_mount_namespace(top)
            result = {"differ": differ, "compared": compared}
        except BaseException as e:
            result = {"error": repr(e)}
        os.write(w, json.dumps(result).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        result = json.loads(f.read())
    os.waitpid(pid, 0)
    for sub in ("plain", "restricted", "a", "b"):
        if os.path.isdir(os.path.join(top, sub)):
            os.rmdir(os.path.join(top, sub))
    os.rmdir(top)
    assert "error" not in result, result
    assert result["differ"] == [], result["differ"][:5]
    # Every combination was compared: two sources, 2^5 basic sets, seven atime choices.
    assert result["compared"] == len(SOURCES) * 32 * len(ATIME)
