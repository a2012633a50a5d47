"""The cgroup managers' paths without os (linux/cgroups/__init__.py): `join` is
os.path.join, `exists` os.path.exists, `cgroup_dirs_deepest_first` lists what os.walk(top, topdown=False) lists, in
its order, so that delete removes the same directories in the same order as before;
`own_cgroups` reads /proc/self/cgroup's lines whatever bytes their paths hold."""

import os
import subprocess
import sys

import pytest

from pyrunc import launcher
from pyrunc.linux.cgroups import cgroup_dirs_deepest_first, exists, join, own_cgroups


@pytest.mark.parametrize(
    "parts",
    [
        ("/sys/fs/cgroup", "memory", "a/b"),
        ("/sys/fs/cgroup/", "memory"),
        ("/sys/fs/cgroup", "/abs", "x"),
        ("", "rel", "x"),
        ("/a", "", "b"),
        ("a//", "b/"),
        ("/",),
    ],
)
def test_join_is_os_path_join(parts):
    assert join(*parts) == os.path.join(*parts)


def test_the_walk_is_os_walks_bottom_up(tmp_path):
    top = tmp_path / "top"
    for d in ("a/x/deep", "a/y", "b", "c/z"):
        (top / d).mkdir(parents=True)
    (top / "a" / "cgroup.procs").write_text("")
    (top / "link").symlink_to(top / "c")  # not followed, not listed
    expected = [d for d, _, _ in os.walk(top, topdown=False, followlinks=False)]
    assert cgroup_dirs_deepest_first(str(top)) == expected
    assert expected.index(str(top / "a" / "x" / "deep")) < expected.index(str(top / "a"))


def test_the_walk_of_a_missing_directory_is_empty(tmp_path):
    assert cgroup_dirs_deepest_first(str(tmp_path / "none")) == []


@pytest.mark.parametrize("name", ["dir", "file", "missing", "dir/file/x", "bad\0name"])
def test_exists_is_os_path_exists(tmp_path, name):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "file").write_text("")
    (tmp_path / "file").write_text("")
    path = f"{tmp_path}/{name}"
    assert exists(path) == os.path.exists(path)


def test_the_managers_delete_loads_import_no_os():
    # delete and kill load these (load_manager); os and what it brings cost them a third
    code = (
        f"import sys; sys.path += {launcher.import_path()!r}; "
        "import pyrunc.linux.cgroups.v1, pyrunc.linux.cgroups.v2, pyrunc.linux.cgroups.files; "
        "print(sorted({'os', 'errno'} & set(sys.modules)))"
    )
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "[]", r.stderr


def test_own_cgroups_splits_lines_at_newlines_alone(tmp_path):
    """A path may hold a carriage return, a NEL or bytes that are not UTF-8: each stays in
    its line (str.splitlines, or io's universal newlines, would cut it there)."""
    odd = "/a\rb\x85c\x1cd/\u2028e"
    proc = tmp_path / "cgroup"
    proc.write_bytes(b"12:cpu,cpuacct:" + odd.encode() + b"\n1:name=systemd:/x\xff\n0::/\n")
    assert own_cgroups(str(proc)) == {"cpu,cpuacct": odd, "name=systemd": "/x\udcff", "": "/"}
