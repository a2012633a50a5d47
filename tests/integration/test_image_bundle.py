"""`pyrunc image unpack` / `image remove` end to end: a two-layer busybox image (a
whiteout and an opaque directory in the top layer) as an OCI layout, an OCI archive and
a docker-save archive, unpacked as an overlay of the stored layers and as a flattened
copy, run by `pyrunc run`, removed again; a failed unpack leaves nothing behind."""

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tarfile

import pytest

from tests.integration.image_util import base_layer, top_layer, tree
from tests.unit.tarballs import dir_, make_tar, reg

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_TAR = "application/vnd.oci.image.layer.v1.tar"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_layers():
    """As image builders write them, with an entry for every directory a layer changes
    (a parent directory a layer leaves out gets mode 0755 and the time of extraction in
    pyrunc's store, where umoci keeps the lower layer's: docs/images.md)."""
    base = make_tar(
        [dir_("var", mtime=109)] + base_layer() + [reg("etc/group", b"root:x:0:\napp:x:1000:\nextra:x:2000:app\n")]
    )
    top = make_tar(
        [
            dir_("etc", mtime=210),
            dir_("var", mtime=211),
            dir_("var/cache", mode=0o755, mtime=212),
            dir_("app", mtime=213),
        ]
        + top_layer()
    )
    return [(gzip.compress(base, mtime=0), OCI_GZIP, base), (top, OCI_TAR, top)]


IMAGE_CONFIG = {
    "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
    "os": "linux",
    "config": {
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": [
            "echo user=$(id -u):$(id -g):$(id -G) cwd=$(pwd) greeting=$GREETING; "
            "ls /var/cache; test -e /etc/secret || echo secret-gone"
        ],
        "Env": ["PATH=/bin", "GREETING=hi"],
        "WorkingDir": "/app",
        "User": "app",
        "StopSignal": "SIGQUIT",
        "Labels": {"org.example.owner": "tests"},
    },
}


def oci_layout(path, built=None, config=None, diff_ids=None):
    """An OCI layout tagged `latest`: `built` [(blob, media type, uncompressed tar)] (the
    test image's by default), `config` the image config's "config", `diff_ids` instead of
    the layers' own."""
    os.makedirs(os.path.join(path, "blobs", "sha256"))

    def blob(data, media_type):
        with open(os.path.join(path, "blobs", "sha256", sha(data)[7:]), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": sha(data), "size": len(data)}

    built = image_layers() if built is None else built
    cfg = dict(IMAGE_CONFIG, rootfs={"type": "layers", "diff_ids": diff_ids or [sha(raw) for _, _, raw in built]})
    if config is not None:
        cfg["config"] = config
    descs = [blob(data, mt) for data, mt, _ in built]
    config = blob(json.dumps(cfg).encode(), OCI_CONFIG)
    manifest = blob(
        json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": descs}).encode(),
        OCI_MANIFEST,
    )
    manifest["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    return path


def docker_archive(path, workdir):
    """`docker save`'s old layout: <id>/layer.tar, <config>.json, manifest.json."""
    os.makedirs(workdir)
    built = image_layers()
    cfg = json.dumps(
        dict(IMAGE_CONFIG, rootfs={"type": "layers", "diff_ids": [sha(raw) for _, _, raw in built]})
    ).encode()
    names = []
    for i, (_, _, raw) in enumerate(built):
        os.makedirs(os.path.join(workdir, f"layer{i}"))
        with open(os.path.join(workdir, f"layer{i}", "layer.tar"), "wb") as f:
            f.write(raw)
        names.append(f"layer{i}/layer.tar")
    with open(os.path.join(workdir, sha(cfg)[7:] + ".json"), "wb") as f:
        f.write(cfg)
    with open(os.path.join(workdir, "manifest.json"), "w") as f:
        json.dump([{"Config": sha(cfg)[7:] + ".json", "RepoTags": ["pyrunc-test/app:latest"], "Layers": names}], f)
    with tarfile.open(path, "w") as tf:
        for name in sorted(os.listdir(workdir)):
            tf.add(os.path.join(workdir, name), arcname=name)
    return path


@pytest.fixture
def sources(tmp_path):
    layout = oci_layout(str(tmp_path / "layout"))
    archive = str(tmp_path / "image.tar")
    with tarfile.open(archive, "w") as tf:
        for name in sorted(os.listdir(layout)):
            tf.add(os.path.join(layout, name), arcname=name)
    return {
        "oci": f"oci:{layout}:latest",
        "oci-archive": f"oci-archive:{archive}",
        "docker-archive": f"docker-archive:{docker_archive(str(tmp_path / 'docker.tar'), str(tmp_path / 'docker'))}"
        ":pyrunc-test/app:latest",
    }


def pyrunc_image(*args):
    return subprocess.run([sys.executable, "-m", "pyrunc", "image", *args], capture_output=True, text=True)


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


@pytest.mark.parametrize("kind", ["oci", "oci-archive", "docker-archive"])
@pytest.mark.parametrize("flatten", [False, True], ids=["overlay", "flatten"])
def test_an_image_runs_from_its_bundle_and_is_removed(pyrunc, tmp_path, test_id, sources, kind, flatten):
    bundle, cache = str(tmp_path / "bundle"), str(tmp_path / "cache")
    rootfs = os.path.join(bundle, "rootfs")
    r = pyrunc_image("unpack", "--cache", cache, *(["--flatten"] if flatten else []), sources[kind], bundle)
    assert r.returncode == 0, r.stderr
    try:
        assert mounted(rootfs) is not flatten
        with open(os.path.join(bundle, "config.json")) as f:
            cfg = json.load(f)
        assert cfg["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [2000]}
        assert cfg["annotations"]["org.opencontainers.image.stopSignal"] == "SIGQUIT"
        assert cfg["annotations"]["org.example.owner"] == "tests"
        cfg["linux"]["cgroupsPath"] = f"/pyrunc-test-image/{test_id}"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f)
        try:
            r = pyrunc("run", "--bundle", bundle, test_id)
            assert r.code == 0, r
            assert "user=1000:1000:1000 2000 cwd=/app greeting=hi" in r.out, r.out
            assert r.out.split()[-2:] == ["new", "secret-gone"], r.out  # opaque dir, whiteout
        finally:
            pyrunc("delete", "--force", test_id)
            for d in (f"/sys/fs/cgroup/{c}/pyrunc-test-image" for c in os.listdir("/sys/fs/cgroup")):
                if os.path.isdir(d) and not os.path.islink(d):
                    os.rmdir(d)
        # The layers stay in the store for the next bundle of this image.
        assert len(os.listdir(os.path.join(cache, "layers", "sha256"))) == 2
    finally:
        r = pyrunc_image("remove", bundle)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(bundle) and not mounted(rootfs)


def test_two_bundles_share_the_stored_layers(tmp_path, sources):
    cache = str(tmp_path / "cache")
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    try:
        assert pyrunc_image("unpack", "--cache", cache, sources["oci"], a).returncode == 0
        assert pyrunc_image("unpack", "--cache", cache, sources["docker-archive"], b).returncode == 0
        stored = os.listdir(os.path.join(cache, "layers", "sha256"))
        assert len(stored) == 2  # one copy of each layer for both bundles
        # A file written in one bundle goes to its own upper directory only.
        with open(os.path.join(a, "rootfs", "etc", "only-in-a"), "w") as f:
            f.write("a")
        assert not os.path.exists(os.path.join(b, "rootfs", "etc", "only-in-a"))
        assert all(not os.path.exists(os.path.join(cache, "layers", "sha256", h, "etc", "only-in-a")) for h in stored)
    finally:
        for bundle in (a, b):
            if os.path.exists(bundle):
                assert pyrunc_image("remove", bundle).returncode == 0


def test_a_failed_unpack_leaves_nothing(tmp_path):
    """A layer whose content does not hash to its diff_id: refused, and neither the
    bundle, nor a mount, nor a stored layer is left."""
    built = image_layers()
    layout = oci_layout(str(tmp_path / "layout"), built=built, diff_ids=[sha(built[0][2]), "sha256:" + "0" * 64])
    bundle, cache = str(tmp_path / "bundle"), str(tmp_path / "cache")
    r = pyrunc_image("unpack", "--cache", cache, f"oci:{layout}:latest", bundle)
    assert r.returncode != 0
    assert r.stderr.count("\n") == 1 and "diff_id" in r.stderr, r.stderr
    assert not os.path.exists(bundle) and not mounted(os.path.join(bundle, "rootfs"))
    stored = os.listdir(os.path.join(cache, "layers", "sha256"))
    assert len(stored) <= 1 and not any(n.startswith(".") for n in stored), stored  # the good base layer at most


def test_remove_refuses_a_bundle_it_did_not_make(tmp_path):
    (tmp_path / "bundle").mkdir()
    r = pyrunc_image("remove", str(tmp_path / "bundle"))
    assert r.returncode != 0 and "not a bundle made by" in r.stderr
    assert (tmp_path / "bundle").is_dir()


def test_an_existing_non_empty_bundle_is_refused(tmp_path, sources):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "keep").write_text("mine")
    r = pyrunc_image("unpack", "--cache", str(tmp_path / "cache"), sources["oci"], str(tmp_path / "bundle"))
    assert r.returncode != 0 and "not an empty directory" in r.stderr
    assert (tmp_path / "bundle" / "keep").read_text() == "mine"


@pytest.mark.skipif(
    not os.path.exists("/usr/bin/umoci"), reason="Debian's umoci is not installed (make setup installs it)"
)
def test_the_rootfs_is_what_umoci_unpacks(tmp_path, sources):
    """The same image through Debian's umoci: the same tree (types, modes, owners, sizes,
    contents, link targets, file mtimes), in both of pyrunc's modes."""
    layout = sources["oci"][len("oci:") :].rsplit(":", 1)[0]
    theirs = str(tmp_path / "umoci")
    r = subprocess.run(["umoci", "unpack", "--image", f"{layout}:latest", theirs], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    expected = tree(os.path.join(theirs, "rootfs"))
    for flatten in (True, False):
        bundle = str(tmp_path / f"pyrunc-{flatten}")
        r = pyrunc_image(
            "unpack", "--cache", str(tmp_path / "cache"), *(["--flatten"] if flatten else []), sources["oci"], bundle
        )
        assert r.returncode == 0, r.stderr
        try:
            assert tree(os.path.join(bundle, "rootfs")) == expected
        finally:
            assert pyrunc_image("remove", bundle).returncode == 0


def test_a_failure_after_the_mount_unmounts_and_removes(tmp_path):
    """The rootfs is mounted before config.json can be made (User is read from the
    image's /etc/passwd): a user the image does not have fails unpack, and the overlay
    is unmounted and the bundle removed."""
    raw = make_tar([dir_("etc"), reg("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")])
    layout = oci_layout(
        str(tmp_path / "layout"), built=[(raw, OCI_TAR, raw)], config={"Cmd": ["true"], "User": "ghost"}
    )
    bundle = str(tmp_path / "bundle")
    r = pyrunc_image("unpack", "--cache", str(tmp_path / "cache"), f"oci:{layout}", bundle)
    assert r.returncode != 0 and "ghost" in r.stderr, r.stderr
    assert not mounted(os.path.join(bundle, "rootfs")) and not os.path.exists(bundle)
