"""Helpers of the security tests: running a script in a container, a second process that
races pyrunc, what the host looks like before and after, and the capability sets a
process reports."""

import ctypes
import hashlib
import os
import subprocess
import sys

from tests.integration.rootfs_util import _unescape

_libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2


def set_script(bundle, script, **process):
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.config["process"].update(process)
    bundle.write()


def run_sh(pyrunc, bundle, test_id, script, *flags, **process):
    """`pyrunc run` of `sh -c script`; the Result."""
    set_script(bundle, script, **process)
    return pyrunc("run", *flags, "--bundle", bundle.path, test_id)


def run_ok(pyrunc, bundle, test_id, script, *flags, **process):
    r = run_sh(pyrunc, bundle, test_id, script, *flags, **process)
    assert r.code == 0, r
    return r.out


def assert_create_refused(pyrunc, r, test_id, *fragments):
    """A create that failed the way it should: exit 1, one line naming the cause, and no
    container left behind."""
    assert r.code == 1, r
    assert r.err.startswith(f"pyrunc: create {test_id}: "), r
    assert len(r.err.strip().splitlines()) == 1, r
    for fragment in fragments:
        assert fragment in r.err, r
    assert not os.path.exists(pyrunc.root) or os.listdir(pyrunc.root) == []


def exchange(a, b):
    """renameat2(RENAME_EXCHANGE): swap two names atomically."""
    if _libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), a)


class Racer:
    """A separate process that swaps two names (a directory and a symlink, two files, ...)
    with RENAME_EXCHANGE as fast as it can, until stopped, while pyrunc runs."""

    def __init__(self, a, b):
        code = (
            "import sys; from tests.security.sec_util import exchange\n"
            "a, b = sys.argv[1], sys.argv[2]\n"
            "while True:\n"
            "    try:\n        exchange(a, b)\n"
            "    except OSError:\n        pass  # one name is briefly gone: pyrunc replaced it\n"
        )
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen([sys.executable, "-c", code, a, b], cwd=repo)

    def stop(self):
        self.proc.kill()  # only the racer we started, by its pid
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def host_mount_points():
    with open("/proc/self/mountinfo") as f:
        return {_unescape(line.split()[4]) for line in f}


def new_host_mounts(before):
    """Mounts the host gained since `before`, but for other tests' own scratch mounts
    (tests run side by side make theirs under /tmp/pyrunc-test-*, never ours)."""
    return sorted(p for p in host_mount_points() - before if "pyrunc-test-" not in p or "pyrunc-test-sec-" in p)


def tree(path):
    """Every name under `path` with its type and content digest: the host's view of a
    directory, to compare before and after an attack."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                found[rel] = "link:" + os.readlink(full)
            elif os.path.isdir(full):
                found[rel] = "dir"
            else:
                found[rel] = digest(full)
    return found


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    st = os.stat(path)
    return f"{h.hexdigest()} {st.st_size} {st.st_mtime_ns}"


def _status(out):
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = value.strip()
    return fields


def cap_sets(out):
    """The five capability sets of a /proc/<pid>/status text, as numbers."""
    f = _status(out)
    return {k: int(f[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
