"""`pyrunc features` tells a rootless caller what it gets (docs/rootless.md)."""

import json
import shutil

from pyrunc.linux import cgroups
from pyrunc.linux.kernel import Kernel


def test_features_as_the_user(rootless_user, user_pyrunc):
    r = user_pyrunc("features")
    assert r.code == 0, r
    notes = json.loads(r.out)["annotations"]
    assert notes["io.github.pyrunc.rootless"] == "true"
    helpers = [h for h in ("newuidmap", "newgidmap") if shutil.which(h)]
    assert notes["io.github.pyrunc.rootless.idmapHelpers"] == ",".join(helpers)
    # Nothing is delegated to the test user: its process sits in root's cgroup (on this
    # host's v1 or hybrid hierarchy there is no delegation at all).
    assert notes["io.github.pyrunc.rootless.cgroups"] == "skipped"


def test_features_as_root(pyrunc):
    notes = json.loads(pyrunc("features").out)["annotations"]
    assert notes["io.github.pyrunc.rootless"] == "false"
    assert "io.github.pyrunc.rootless.cgroups" not in notes
    assert notes["io.github.pyrunc.cgroup.host"] == cgroups.probe(Kernel())
