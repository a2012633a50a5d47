"""A container created in a cgroup that already holds processes: runc's warning (one line
on stderr, a warning line in --log), and the container is made all the same."""

import json
import os
import subprocess

import pytest
from cg_util import V2, hierarchy_dirs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def busy_cgroup(pyrunc, bundle, test_id):
    """The bundle's cgroup, made in every hierarchy with a `sleep` of ours in it; afterwards
    the container goes, the sleep is killed by its pid and the directories removed."""
    cgpath = bundle.config["linux"]["cgroupsPath"]
    made = []
    for d in hierarchy_dirs(cgpath):
        for level in (os.path.dirname(d), d):
            if not os.path.isdir(level):
                os.mkdir(level)
                made.append(level)
            for name in ("cpuset.cpus", "cpuset.mems"):  # v1: an empty cpuset takes no process
                if not V2 and os.path.exists(os.path.join(level, name)):
                    with open(os.path.join(os.path.dirname(level), name)) as src:
                        value = src.read()
                    with open(os.path.join(level, name), "w") as dst:
                        dst.write(value)
    sleep = subprocess.Popen(["sleep", "600"])
    try:
        for d in hierarchy_dirs(cgpath):
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(sleep.pid))
        yield cgpath, sleep
    finally:
        pyrunc("delete", "--force", test_id)  # its init would keep the cgroup busy
        sleep.kill()
        sleep.wait()
        for d in sorted(made, key=len, reverse=True):
            os.rmdir(d)


def _log(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_create_in_a_cgroup_with_processes_warns_and_goes_on(pyrunc, bundle, test_id, busy_cgroup):
    cgpath, sleep = busy_cgroup
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id, extra=("--log-format", "json"))
    assert r.code == 0, r
    want = f"container's cgroup is not empty: 1 process(es) found in {cgpath}"
    assert r.err == f"pyrunc: warning: {want}\n", r
    assert [(e["level"], e["msg"]) for e in _log(pyrunc.log)] == [("warning", want)]
    assert pyrunc.state(test_id)["status"] == "created"
    init = pyrunc.state(test_id)["pid"]
    with open(os.path.join(hierarchy_dirs(cgpath)[0], "cgroup.procs")) as f:
        assert sorted(map(int, f.read().split())) == sorted([sleep.pid, init])
    # The cgroup is not the container's own: delete leaves it, and our sleep, be.
    assert pyrunc("delete", "--force", test_id).code == 0
    assert sleep.poll() is None
    assert all(os.path.isdir(d) for d in hierarchy_dirs(cgpath))


def test_create_in_a_new_cgroup_says_nothing(pyrunc, bundle, test_id):
    bundle.config["process"]["args"] = ["sleep", "600"]
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert (r.code, r.err) == (0, ""), r
    if os.path.exists(pyrunc.log):
        with open(pyrunc.log) as f:
            assert "level=warning" not in f.read()
