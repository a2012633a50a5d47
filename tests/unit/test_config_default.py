"""default_spec: runc's default config with our version and hostname, valid as it stands."""

import json
import os
import shutil
import subprocess

import pytest

from pyrunc import OCI_VERSION
from pyrunc.config.default import default_spec
from pyrunc.config.schema import schema_errors
from pyrunc.config.semantic import semantic_errors


@pytest.fixture
def bundle_dir(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_passes_schema_and_semantic_checks(bundle_dir, rootless):
    doc = default_spec(rootless=rootless)
    assert schema_errors(doc) == []
    assert semantic_errors(doc, bundle_dir) == []


def test_default_spec_names_pyrunc_and_the_spec_version():
    doc = default_spec()
    assert doc["ociVersion"] == OCI_VERSION == "1.3.0"
    assert doc["hostname"] == "pyrunc"


def test_default_spec_returns_a_fresh_document_each_call():
    first = default_spec()
    first["process"]["args"].append("-c")
    first["mounts"][0]["options"] = ["ro"]
    first["linux"]["namespaces"].clear()
    assert default_spec()["process"]["args"] == ["sh"]
    assert "options" not in default_spec()["mounts"][0]
    assert len(default_spec()["linux"]["namespaces"]) == 5


def test_rootless_spec_maps_the_caller_and_drops_what_needs_privileges():
    doc = default_spec(rootless=True)
    linux = doc["linux"]
    types = [ns["type"] for ns in linux["namespaces"]]
    assert types == ["pid", "ipc", "uts", "mount", "user"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert "resources" not in linux
    sys_mount = next(m for m in doc["mounts"] if m["destination"] == "/sys")
    assert sys_mount["source"] == "/sys" and "rbind" in sys_mount["options"]
    pts = next(m for m in doc["mounts"] if m["destination"] == "/dev/pts")
    assert "gid=5" not in pts["options"]


def _runc_spec(tmp_path, rootless):
    args = ["runc", "spec", "--bundle", str(tmp_path)] + (["--rootless"] if rootless else [])
    subprocess.run(args, check=True, capture_output=True)
    with open(tmp_path / "config.json") as f:
        return json.load(f)


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_equals_runc_spec_apart_from_version_and_hostname(tmp_path, rootless):
    expected = _runc_spec(tmp_path, rootless)
    expected["ociVersion"] = OCI_VERSION
    expected["hostname"] = "pyrunc"
    ours = default_spec(rootless=rootless)
    assert ours == expected
    # Key order too, so `pyrunc spec` writes the same file layout as runc.
    assert json.dumps(ours, indent="\t") == json.dumps(expected, indent="\t")
