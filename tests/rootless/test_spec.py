"""`pyrunc spec --rootless` as the test user is runc 1.1's, run the same way: the user's
own uid and gid mapped to root."""

import json
import os
import shutil

import pytest

from pyrunc import OCI_VERSION


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_spec_rootless_as_a_user_is_runcs(rootless_user, user_pyrunc):
    configs = []
    for name, argv in (("ours", [user_pyrunc.command]), ("runc", ["runc"])):
        bundle = os.path.join(rootless_user.home, name)
        rootless_user.run(["mkdir", bundle], check=True)
        rootless_user.run([*argv, "spec", "--rootless", "--bundle", bundle], check=True)
        with open(os.path.join(bundle, "config.json")) as f:
            configs.append(json.load(f))
    ours, runc = configs
    runc["ociVersion"], runc["hostname"] = OCI_VERSION, "pyrunc"
    assert ours == runc
    assert ours["linux"]["uidMappings"] == [{"containerID": 0, "hostID": rootless_user.uid, "size": 1}]
    assert ours["linux"]["gidMappings"] == [{"containerID": 0, "hostID": rootless_user.gid, "size": 1}]
