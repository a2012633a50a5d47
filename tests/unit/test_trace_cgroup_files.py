"""The step trace records the cgroup file operations of a manager that new_manager or
load_manager made while tracing is on (cgroup_mkdirs, cgroup_write, cgroup_rmdir), also
when the manager modules were imported before the trace began; with tracing off the
managers get the real files object itself."""

import errno
import json
import os

import pytest

from pyrunc import trace
from pyrunc.errors import CgroupError
from pyrunc.linux import Seams, cgroups
from pyrunc.linux.cgroups import v1, v2  # imported before the trace begins  # noqa: F401
from pyrunc.linux.cgroups.files import REAL_FILES
from tests.unit.fake_cgroup1 import KernelLike


@pytest.fixture
def tracing(tmp_path, monkeypatch):
    """A tracer writing to a file of the test's; the records it wrote, read back."""
    path = tmp_path / "trace.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    monkeypatch.setattr(trace, "_tracer", trace.Tracer(fd, "runtime"))
    yield lambda: [json.loads(line) for line in path.read_text().splitlines()]
    os.close(fd)


def calls(records):
    return [(r["name"], r["args"]) for r in records if r["t"] == "call"]


def v2_root(tmp_path):
    root = tmp_path / "cg"
    root.mkdir()
    (root / "cgroup.controllers").write_text("")
    return root


def test_without_tracing_managers_get_the_real_files_and_with_it_the_recording_ones():
    assert Seams().cgroup_files is REAL_FILES
    traced = Seams(tracing=True).cgroup_files
    assert isinstance(traced, trace.RecordingCgroupFiles) and traced.inner is REAL_FILES


def test_a_v2_managers_mkdirs_writes_and_rmdirs_are_recorded(tmp_path, tracing):
    root = v2_root(tmp_path)
    files = Seams(tracing=True).cgroup_files  # as the CLI makes them for --trace
    mgr = cgroups.new_manager("/pyrunc-test-t/box", "id", root=str(root), mode="v2", files=files, kernel=None)
    mgr.create()
    (root / "pyrunc-test-t" / "box" / "cgroup.procs").write_text("")
    mgr.add(4242)
    again = cgroups.load_manager(mgr.to_dict(), root=str(root), files=files)
    os.unlink(root / "pyrunc-test-t" / "box" / "cgroup.procs")
    again.destroy()
    box = str(root / "pyrunc-test-t" / "box")
    assert calls(tracing()) == [
        ("cgroup_mkdirs", {"hierarchy_root": str(root), "path": "/pyrunc-test-t"}),
        ("cgroup_mkdirs", {"hierarchy_root": str(root), "path": "/pyrunc-test-t/box"}),
        ("cgroup_write", {"path": box + "/cgroup.procs", "value": "4242", "field": None}),
        ("cgroup_rmdir", {"path": box}),
    ]
    assert not (root / "pyrunc-test-t").exists()  # rmdir_unused: not recorded, as before


class Cgroupfs(KernelLike):
    """No room for a directory named `full`."""

    def mkdir(self, path):
        if os.path.basename(path) == "full":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().mkdir(path)


def cpuset_root(tmp_path):
    root = tmp_path / "cg"
    (root / "cpuset").mkdir(parents=True)
    for name, text in (("cgroup.procs", ""), ("cpuset.cpus", "0-1\n"), ("cpuset.mems", "0\n")):
        (root / "cpuset" / name).write_text(text)
    return root


def test_what_the_files_object_builds_on_write_and_rmdir_is_recorded_too(tmp_path, tracing):
    """A double given to new_manager is wrapped as the real files are; the writes of a
    new cpuset's inherited cpus and mems, made inside the files object, are recorded."""
    root = cpuset_root(tmp_path)
    mgr = cgroups.new_manager(
        "/pyrunc-test-t", "id", root=str(root), mode="v1", files=trace.RecordingCgroupFiles(Cgroupfs()), kernel=None
    )
    mgr.create()
    cpuset = str(root / "cpuset" / "pyrunc-test-t")
    assert calls(tracing()) == [
        ("cgroup_mkdirs", {"hierarchy_root": str(root / "cpuset"), "path": "/pyrunc-test-t"}),
        ("cgroup_write", {"path": cpuset + "/cpuset.cpus", "value": "0-1", "field": None}),
        ("cgroup_write", {"path": cpuset + "/cpuset.mems", "value": "0", "field": None}),
    ]


def test_the_undo_of_a_failed_mkdirs_is_recorded_inside_it(tmp_path, tracing):
    root = cpuset_root(tmp_path)
    mgr = cgroups.new_manager(
        "/pyrunc-test-t/full",
        "id",
        root=str(root),
        mode="v1",
        files=trace.RecordingCgroupFiles(Cgroupfs()),
        kernel=None,
    )
    with pytest.raises(CgroupError, match="no space left on device"):
        mgr.create()
    records = [r for r in tracing() if r["t"] == "call"]
    assert [(r["name"], r["args"]) for r in records] == [
        ("cgroup_rmdir", {"path": str(root / "cpuset" / "pyrunc-test-t")}),
        ("cgroup_mkdirs", {"hierarchy_root": str(root / "cpuset"), "path": "/pyrunc-test-t/full"}),
    ]
    assert records[1]["error"]["msg"].endswith("pyrunc-test-t/full: no space left on device")
    assert not (root / "cpuset" / "pyrunc-test-t").exists()
