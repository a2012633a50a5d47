"""A cgroup2 mount on a plain directory, for the managers' unit tests (test_cgroups_v2.py,
test_cgroups_systemd.py): the files the kernel puts in a new cgroup, and a CgroupFiles
that makes and removes cgroups as the kernel does."""

import os

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups.files import CgroupFiles

ALL = "cpuset cpu io memory hugetlb pids rdma misc"

# What the kernel puts in a new cgroup (with every controller delegated to it).
CHILD_FILES = {
    "cgroup.procs": "",
    "cgroup.subtree_control": "",
    "cgroup.type": "domain\n",
    "cgroup.events": "populated 0\nfrozen 0\n",
    "cgroup.freeze": "0\n",
    "cgroup.kill": "",
    "cgroup.max.depth": "max\n",
    "memory.max": "max\n",
    "memory.low": "0\n",
    "memory.high": "max\n",
    "memory.swap.max": "max\n",
    "memory.current": "0\n",
    "memory.swap.current": "0\n",
    "memory.peak": "0\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
    "memory.swap.events": "high 0\nmax 0\nfail 0\n",
    "memory.stat": "anon 0\nfile 0\n",
    "cpu.max": "max 100000\n",
    "cpu.max.burst": "0\n",
    "cpu.weight": "100\n",
    "cpu.idle": "0\n",
    "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
    "cpuset.cpus": "",
    "cpuset.mems": "",
    "io.max": "",
    "io.weight": "default 100\n",
    "io.stat": "",
    "pids.max": "max\n",
    "pids.current": "0\n",
    "hugetlb.2MB.max": "max\n",
    "hugetlb.2MB.rsvd.max": "max\n",
    "hugetlb.2MB.current": "0\n",
    "hugetlb.2MB.rsvd.current": "0\n",
    "hugetlb.2MB.events": "max 0\n",
    "rdma.max": "",
    "misc.max": "",
}


class KernelLike(CgroupFiles):
    """The files of a cgroup2 mount on a plain directory: mkdir fills a new cgroup with its
    interface files, its controllers its parent's; rmdir refuses a cgroup with children
    or processes; every write is recorded in `writes`, [(path, value)] in order.  A test
    may set `refuse_write(path, value)` or `refuse_mkdir(path)` to return the errno the
    kernel would fail that call with (None: it succeeds)."""

    def __init__(self):
        self.writes = []
        self.refuse_write = self.refuse_mkdir = lambda *a: None

    def mkdir(self, path):
        err = self.refuse_mkdir(path)
        if err:
            raise OSError(err, os.strerror(err))
        super().mkdir(path)
        for name, text in CHILD_FILES.items():
            with open(os.path.join(path, name), "w") as f:
                f.write(text)
        with open(os.path.join(os.path.dirname(path), "cgroup.controllers")) as f:
            controllers = f.read()
        with open(os.path.join(path, "cgroup.controllers"), "w") as f:
            f.write(controllers)

    def rmdir(self, path):
        if not os.path.isdir(path):
            return True
        names = os.listdir(path)
        if any(os.path.isdir(os.path.join(path, n)) for n in names):
            return False
        if (
            os.path.exists(os.path.join(path, "cgroup.procs"))
            and open(os.path.join(path, "cgroup.procs")).read().strip()
        ):
            return False
        for n in names:
            os.unlink(os.path.join(path, n))
        os.rmdir(path)
        return True

    rmdir_unused = rmdir

    def write(self, path, value, field):
        err = self.refuse_write(path, value)
        if err:
            raise CgroupError(field, f"write {value!r} to {path}: {os.strerror(err).lower()}", err)
        self.writes.append((path, value))
        super().write(path, value, field)


def existing(root, path):
    """A cgroup someone else made, as the kernel lays it out."""
    d = root / path.lstrip("/")
    d.mkdir(parents=True)
    for name, text in CHILD_FILES.items():
        (d / name).write_text(text)
    (d / "cgroup.controllers").write_text(ALL + "\n")
    return d
