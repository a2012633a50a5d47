"""The e2e suite's own pieces, without an engine: the offline image archive, the argv log's
parsing and the CRI client's protobuf encoding."""

import hashlib
import json
import tarfile

import pytest

from tests.e2e import cri_client
from tests.e2e.harness import ArgvLog, Call
from tests.e2e.image import build_image, find_busybox, full_name


@pytest.fixture
def archive(tmp_path):
    if not find_busybox():
        pytest.skip("no static busybox (scripts/setup-engines.sh installs busybox-static)")
    path = tmp_path / "image.tar"
    name = build_image(str(path), "e2e/busybox:latest")
    return path, name


def members(path):
    with tarfile.open(path) as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()}


def test_image_archive_is_an_oci_layout_and_a_docker_archive(archive):
    path, name = archive
    assert name == "docker.io/e2e/busybox:latest"
    files = members(path)
    for fname, (_, data) in files.items():
        if fname.startswith("blobs/sha256/") and data is not None:
            assert hashlib.sha256(data).hexdigest() == fname.rsplit("/", 1)[1], fname
    assert json.loads(files["oci-layout"][1]) == {"imageLayoutVersion": "1.0.0"}
    [entry] = json.loads(files["index.json"][1])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == name
    manifest = json.loads(files["blobs/sha256/" + entry["digest"][7:]][1])
    assert entry["size"] == len(files["blobs/sha256/" + entry["digest"][7:]][1])
    config_blob = files["blobs/sha256/" + manifest["config"]["digest"][7:]][1]
    config = json.loads(config_blob)
    assert config["config"]["Cmd"] == ["sh"]
    [layer_desc] = manifest["layers"]
    assert config["rootfs"]["diff_ids"] == [layer_desc["digest"]]  # uncompressed layer
    [docker] = json.loads(files["manifest.json"][1])
    assert docker["RepoTags"] == ["e2e/busybox:latest"]
    assert docker["Config"] == "blobs/sha256/" + manifest["config"]["digest"][7:]
    assert docker["Layers"] == ["blobs/sha256/" + layer_desc["digest"][7:]]


def test_image_layer_holds_busybox_and_its_links(archive, tmp_path):
    path, _ = archive
    files = members(path)
    [layer] = [data for fname, (_, data) in files.items() if data is not None and data[257:262] == b"ustar"]
    (tmp_path / "layer.tar").write_bytes(layer)
    with tarfile.open(tmp_path / "layer.tar") as tar:
        got = {m.name: m for m in tar.getmembers()}
    assert got["bin/busybox"].isfile() and got["bin/busybox"].mode == 0o755
    assert got["bin/sh"].issym() and got["bin/sh"].linkname == "busybox"
    assert got["usr/bin"].linkname == "../bin" and got["sbin"].linkname == "bin"
    assert got["tmp"].mode == 0o1777
    assert all(m.uid == 0 and m.gid == 0 and m.mtime == 0 for m in got.values())


def test_image_is_reproducible(archive, tmp_path):
    path, _ = archive
    again = tmp_path / "again.tar"
    build_image(str(again), "e2e/busybox:latest")
    assert again.read_bytes() == path.read_bytes()


def test_full_name_follows_docker_hub_normalization():
    assert full_name("e2e/pause:latest") == "docker.io/e2e/pause:latest"
    assert full_name("busybox:1") == "docker.io/library/busybox:1"
    assert full_name("localhost/x:y") == "localhost/x:y"
    assert full_name("registry.example:5000/a/b:c") == "registry.example:5000/a/b:c"


def test_call_splits_global_flags_command_and_arguments():
    c = Call(
        [
            "runtime-wrapper",
            "--root",
            "/r/moby",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "exec",
            "--process",
            "/tmp/p",
            "--detach",
            "--pid-file",
            "/b/e1.pid",
            "cid",
        ]
    )
    assert c.globals == {"--root": "/r/moby", "--log": "/b/log.json", "--log-format": "json"}
    assert (c.command, c.text) == ("exec", "exec --process /tmp/p --detach --pid-file /b/e1.pid cid")
    assert Call(["runc", "--version"]).globals == {"--version": True}
    assert Call(["w", "--systemd-cgroup", "start", "x"]).command == "start"


def test_argv_log_finds_container_ids(tmp_path):
    log = ArgvLog(str(tmp_path / "argv.log"))
    with open(log.path, "a") as f:
        for argv in (
            ["w", "create", "--bundle", "/b", "--pid-file", "/b/p", "c1"],
            ["w", "kill", "--all", "c2", "9"],
            ["w", "update", "--resources=/f", "c3"],
            ["w", "--version"],
        ):
            f.write("\t".join(argv) + "\n")
    assert log.container_ids() == {"c1", "c2", "c3"}
    assert [c.command for c in log.matching(r"kill --all \S+ 9")] == ["kill"]


def test_cri_encoding_round_trips_and_matches_the_wire_format():
    request = {
        "config": {
            "metadata": {"name": "p", "uid": "u", "namespace": "n", "attempt": 1},
            "linux": {"cgroup_parent": "/x", "security_context": {"namespace_options": {"network": 2}}},
        },
        "runtime_handler": "pyrunc",
    }
    assert cri_client.decode("RunPodSandboxRequest", cri_client.encode("RunPodSandboxRequest", request)) == request
    # field 1 "a", field 3 = -1 as a ten-byte varint; proto3 leaves defaults out
    assert (
        cri_client.encode("ExecSyncRequest", {"container_id": "a", "cmd": [], "timeout": -1})
        == b"\n\x01a\x18" + b"\xff" * 9 + b"\x01"
    )
    assert cri_client.encode("StopContainerRequest", {"container_id": "", "timeout": 0}) == b""
    assert cri_client.decode("ExecSyncResponse", b"\n\x03out\x18\x05") == {"stdout": "out", "exit_code": 5}
    with pytest.raises(ValueError):
        cri_client.encode("ImageSpec", {"nope": 1})
