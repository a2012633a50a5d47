"""A cgroup v1 hierarchy on a plain directory, for the unit tests of the managers and of
the trace's recording of them (test_cgroups_v1.py, test_trace_cgroup_files.py)."""

import os

from pyrunc.linux.cgroups.files import CgroupFiles


class KernelLike(CgroupFiles):
    """cgroupfs on a plain directory: a new cgroup gets the interface files its parent
    has, empty; a cgroup's files go with it when it is removed."""

    def mkdir(self, path):
        super().mkdir(path)
        parent = os.path.dirname(path)
        for name in os.listdir(parent):
            if os.path.isfile(os.path.join(parent, name)):
                open(os.path.join(path, name), "w").close()

    def rmdir(self, path):
        for name in os.listdir(path) if os.path.isdir(path) else ():
            if os.path.isfile(os.path.join(path, name)):
                os.unlink(os.path.join(path, name))
        return super().rmdir(path)

    rmdir_unused = rmdir
