"""pyrunc.image.source: OCI layouts, OCI archives and docker save archives, built here
with the standard library; tampered blobs are refused before anything reads them."""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from pyrunc.errors import ImageError
from pyrunc.image import source as src
from pyrunc.image.source import open_image
from pyrunc.linux.kernel import Kernel


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files, compress=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tf.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return (gzip.compress(raw, mtime=0) if compress else raw), raw


class Layout:
    """An OCI image layout under construction, in a directory."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        self.write("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        self.entries = []

    def write(self, name, data):
        with open(os.path.join(self.path, name), "wb") as f:
            f.write(data)

    def blob(self, data, media_type, **extra):
        digest = sha(data)
        self.write(os.path.join("blobs", "sha256", digest.split(":")[1]), data)
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def blob_path(self, desc):
        return os.path.join(self.path, "blobs", "sha256", desc["digest"].split(":")[1])

    def image(self, arch="amd64", files=None, config=None):
        """A manifest descriptor: one gzip layer and one plain layer."""
        files = files or {"bin/hello": f"hello {arch}\n".encode()}
        gz, raw1 = layer_tar(files, compress=True)
        plain, raw2 = layer_tar({"etc/os-release": b"ID=test\n"})
        l1 = self.blob(gz, "application/vnd.oci.image.layer.v1.tar+gzip")
        l2 = self.blob(plain, "application/vnd.oci.image.layer.v1.tar")
        cfg = {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(raw1), sha(raw2)]},
        }
        cfg.update(config or {})
        c = self.blob(json.dumps(cfg).encode(), src.OCI_CONFIG)
        manifest = {"schemaVersion": 2, "mediaType": src.OCI_MANIFEST, "config": c, "layers": [l1, l2]}
        return self.blob(
            json.dumps(manifest).encode(), src.OCI_MANIFEST, platform={"os": "linux", "architecture": arch}
        )

    def index(self, descs):
        idx = {"schemaVersion": 2, "mediaType": src.OCI_INDEX, "manifests": descs}
        return self.blob(json.dumps(idx).encode(), src.OCI_INDEX)

    def save(self, entries):
        idx = {"schemaVersion": 2, "mediaType": src.OCI_INDEX, "manifests": entries}
        self.write("index.json", json.dumps(idx).encode())


def tagged(desc, tag, **more):
    return {**desc, "annotations": {src.REF_NAME: tag, **more}}


def untagged(desc):
    return {k: v for k, v in desc.items() if k != "platform"}


def tar_dir(directory, out, prefix="", compress=False):
    with tarfile.open(out, "w:gz" if compress else "w") as tf:
        for name in sorted(os.listdir(directory)):
            tf.add(os.path.join(directory, name), arcname=prefix + name)
    return out


@pytest.fixture
def layout(tmp_path):
    return Layout(str(tmp_path / "layout"))


def read_layers(image):
    out = []
    for desc in image.layers:
        with image.open_blob(desc) as f:
            data = f.read()
        if desc.media_type.endswith("gzip"):
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            out.append({m.name: tf.extractfile(m).read() for m in tf.getmembers()})
    return out


# --- OCI layout directory ---------------------------------------------------


def test_single_manifest_layout(layout):
    layout.save([tagged(untagged(layout.image()), "latest")])
    with open_image(Kernel(), f"oci:{layout.path}") as img:
        assert img.config["config"]["Cmd"] == ["/bin/hello"]
        assert [d.media_type for d in img.layers] == [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar",
        ]
        assert len(img.diff_ids) == 2 and all(d.startswith("sha256:") for d in img.diff_ids)
        files = read_layers(img)
    assert files == [{"bin/hello": b"hello amd64\n"}, {"etc/os-release": b"ID=test\n"}]
    # diff_ids are the uncompressed layers' digests
    with open_image(Kernel(), f"oci:{layout.path}:latest") as img:
        with img.open_blob(img.layers[0]) as f:
            assert sha(gzip.decompress(f.read())) == img.diff_ids[0]


def test_tag_selection_and_missing_tag(layout):
    a, b = layout.image("amd64", {"a": b"1"}), layout.image("amd64", {"b": b"2"})
    layout.save([tagged(untagged(a), "one"), tagged(untagged(b), "two")])
    with open_image(Kernel(), f"oci:{layout.path}:two") as img:
        assert read_layers(img)[0] == {"b": b"2"}
    with pytest.raises(ImageError, match=r"no image tagged 'three' \(tags: one, two\)"):
        open_image(Kernel(), f"oci:{layout.path}:three")
    with pytest.raises(ImageError, match=r"several images; name one with :TAG \(tags: one, two\)"):
        open_image(Kernel(), f"oci:{layout.path}")


def test_platform_from_index_and_nested_index(layout):
    amd, arm = layout.image("amd64"), layout.image("arm64")
    nested = layout.index([layout.index([amd]), arm])
    layout.save([tagged(nested, "multi")])
    for plat, want in (
        ("linux/amd64", b"hello amd64\n"),
        ("linux/arm64", b"hello arm64\n"),
        ("linux/arm64/v8", b"hello arm64\n"),
    ):
        with open_image(Kernel(), f"oci:{layout.path}:multi", platform=plat) as img:
            assert read_layers(img)[0]["bin/hello"] == want
            assert img.config["architecture"] == plat.split("/")[1]
    # default: this machine
    arch = src.GOARCH.get(os.uname().machine)
    if arch in ("amd64", "arm64"):
        with open_image(Kernel(), f"oci:{layout.path}:multi") as img:
            assert img.config["architecture"] == arch


def test_wrong_platform_lists_platforms(layout):
    layout.save([layout.index([layout.image("amd64"), layout.image("arm64")])])
    with pytest.raises(
        ImageError,
        match=r"no manifest for platform linux/s390x "
        r"\(platforms: linux/amd64, linux/arm64\)",
    ):
        open_image(Kernel(), f"oci:{layout.path}", platform="linux/s390x")


def test_single_manifest_for_another_machine_refused(layout):
    layout.save([untagged(layout.image("riscv64"))])
    with pytest.raises(ImageError, match="image is for linux/riscv64, not linux/"):
        open_image(Kernel(), f"oci:{layout.path}")
    with open_image(Kernel(), f"oci:{layout.path}", platform="linux/riscv64") as img:
        assert img.config["architecture"] == "riscv64"


def test_index_entries_at_top_level_select_by_platform(layout):
    # index.json itself listing per-platform manifests, untagged
    layout.save([layout.image("arm64"), layout.image("amd64")])
    with open_image(Kernel(), f"oci:{layout.path}", platform="linux/amd64") as img:
        assert img.config["architecture"] == "amd64"


def test_docker_media_types(layout):
    gz, raw = layer_tar({"x": b"x"}, compress=True)
    layer = layout.blob(gz, src.DOCKER_LAYER_GZIP)
    cfg = layout.blob(
        json.dumps(
            {"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(raw)]}}
        ).encode(),
        src.DOCKER_CONFIG,
    )
    m = layout.blob(
        json.dumps({"schemaVersion": 2, "mediaType": src.DOCKER_MANIFEST, "config": cfg, "layers": [layer]}).encode(),
        src.DOCKER_MANIFEST,
        platform={"os": "linux", "architecture": "arm64"},
    )
    lst = layout.blob(
        json.dumps({"schemaVersion": 2, "mediaType": src.DOCKER_LIST, "manifests": [m]}).encode(), src.DOCKER_LIST
    )
    layout.save([lst])
    with open_image(Kernel(), f"oci:{layout.path}", platform="linux/arm64") as img:
        assert img.layers[0].media_type == src.DOCKER_LAYER_GZIP
        assert img.manifest["mediaType"] == src.DOCKER_MANIFEST


# --- tampering ----------------------------------------------------------------


def flip_byte(path, at=-1):
    data = bytearray(open(path, "rb").read())
    data[at] ^= 0x01
    open(path, "wb").write(bytes(data))


def test_one_byte_changed_in_layer_refused(layout):
    m = layout.image()
    layout.save([untagged(m)])
    with open_image(Kernel(), f"oci:{layout.path}") as img:
        desc = img.layers[0]
        flip_byte(layout.blob_path({"digest": desc.digest}), at=40)
        with pytest.raises(ImageError) as e:
            img.open_blob(desc)
    msg = str(e.value)
    assert msg.startswith(f"image oci:{layout.path}: blob {desc.digest[:19]}..: digest mismatch (sha256:")
    assert "\n" not in msg


def test_wrong_size_refused(layout):
    m = layout.image()
    layout.save([untagged(m)])
    with open_image(Kernel(), f"oci:{layout.path}") as img:
        desc = img.layers[1]
        with open(layout.blob_path({"digest": desc.digest}), "ab") as f:
            f.write(b"\0")
        with pytest.raises(ImageError, match=r"size mismatch \(more than \d+ bytes read"):
            img.open_blob(desc)
        shorter = src.Descriptor(desc.media_type, desc.digest, desc.size + 10)
        with pytest.raises(ImageError, match=r"size mismatch \(\d+ bytes read, \d+ expected\)"):
            img.open_blob(shorter)


def test_tampered_manifest_refused_at_open(layout):
    m = layout.image()
    layout.save([untagged(m)])
    flip_byte(layout.blob_path(m), at=-2)
    with pytest.raises(ImageError, match=r"blob sha256:\w+\.\.: digest mismatch"):
        open_image(Kernel(), f"oci:{layout.path}")


def test_tampered_config_refused_at_open(layout):
    m = layout.image()
    layout.save([untagged(m)])
    manifest = json.load(open(layout.blob_path(m)))
    path = layout.blob_path(manifest["config"])
    doc = json.load(open(path))
    doc["config"]["Cmd"] = ["/bin/evil"]
    data = json.dumps(doc).encode()
    open(path, "wb").write(data[: manifest["config"]["size"]].ljust(manifest["config"]["size"]))
    with pytest.raises(ImageError, match="digest mismatch"):
        open_image(Kernel(), f"oci:{layout.path}")


def test_wrong_digest_in_manifest_refused(layout):
    # A manifest whose layer digest names a blob file holding other content.
    gz, raw = layer_tar({"good": b"good"}, compress=True)
    evil, _ = layer_tar({"evil": b"evil"}, compress=True)
    claimed = sha(gz)
    layout.write(os.path.join("blobs", "sha256", claimed.split(":")[1]), evil)
    cfg = layout.blob(json.dumps({"rootfs": {"type": "layers", "diff_ids": [sha(raw)]}}).encode(), src.OCI_CONFIG)
    m = layout.blob(
        json.dumps(
            {
                "schemaVersion": 2,
                "config": cfg,
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": claimed, "size": len(evil)}
                ],
            }
        ).encode(),
        src.OCI_MANIFEST,
    )
    layout.save([m])
    with open_image(Kernel(), f"oci:{layout.path}") as img:
        with pytest.raises(ImageError, match=f"blob {claimed[:19]}..: digest mismatch"):
            img.open_blob(img.layers[0])


def test_missing_blob_and_bad_digest(layout):
    m = layout.image()
    layout.save([untagged(m)])
    manifest = json.load(open(layout.blob_path(m)))
    os.unlink(layout.blob_path(manifest["layers"][0]))
    with open_image(Kernel(), f"oci:{layout.path}") as img:
        with pytest.raises(ImageError, match="no such file"):
            img.open_blob(img.layers[0])
    bad = {**untagged(m), "digest": "sha256:../../etc/passwd"}
    layout.save([bad])
    with pytest.raises(ImageError, match="bad or unsupported digest"):
        open_image(Kernel(), f"oci:{layout.path}")


def test_blob_symlink_out_of_layout_not_followed(layout, tmp_path):
    # A blob that is a symlink to a host file with the right content: resolved inside
    # the layout, so the host file is never read.
    m = layout.image()
    layout.save([untagged(m)])
    manifest = json.load(open(layout.blob_path(m)))
    path = layout.blob_path(manifest["layers"][1])
    outside = tmp_path / "outside"
    shutil.copy(path, outside)
    os.unlink(path)
    os.symlink(str(outside), path)
    with open_image(Kernel(), f"oci:{layout.path}") as img:
        with pytest.raises(ImageError, match="no such file"):
            img.open_blob(img.layers[1])


def test_fifo_blob_refused(layout):
    m = layout.image()
    layout.save([untagged(m)])
    manifest = json.load(open(layout.blob_path(m)))
    path = layout.blob_path(manifest["layers"][1])
    os.unlink(path)
    os.mkfifo(path)
    with open_image(Kernel(), f"oci:{layout.path}") as img:
        with pytest.raises(ImageError, match="not a regular file"):
            img.open_blob(img.layers[1])


def test_bad_sources(tmp_path):
    with pytest.raises(ImageError, match="expected oci:DIR"):
        open_image(Kernel(), "docker://busybox")
    with pytest.raises(ImageError, match="no such file"):
        open_image(Kernel(), f"oci:{tmp_path}/nothing:latest")
    with pytest.raises(ImageError, match="no oci-layout file"):
        open_image(Kernel(), f"oci:{tmp_path}")
    with pytest.raises(ImageError, match="platform 'amd64'"):
        open_image(Kernel(), f"oci:{tmp_path}", platform="amd64")


# --- OCI archive --------------------------------------------------------------


@pytest.mark.parametrize("compress,prefix", [(False, ""), (False, "./"), (True, "")])
def test_oci_archive(layout, tmp_path, compress, prefix):
    layout.save([tagged(layout.index([layout.image("amd64"), layout.image("arm64")]), "v1")])
    archive = tar_dir(layout.path, str(tmp_path / "img.tar"), prefix, compress)
    with open_image(Kernel(), f"oci-archive:{archive}:v1", platform="linux/arm64") as img:
        assert read_layers(img)[0] == {"bin/hello": b"hello arm64\n"}
    with pytest.raises(ImageError, match=r"no image tagged 'v2' \(tags: v1\)"):
        open_image(Kernel(), f"oci-archive:{archive}:v2")


def test_oci_archive_tampered_member_refused(layout, tmp_path):
    m = layout.image()
    layout.save([untagged(m)])
    manifest = json.load(open(layout.blob_path(m)))
    flip_byte(layout.blob_path(manifest["layers"][0]), at=30)
    archive = tar_dir(layout.path, str(tmp_path / "img.tar"))
    with open_image(Kernel(), f"oci-archive:{archive}") as img:
        with pytest.raises(ImageError, match="digest mismatch"):
            img.open_blob(img.layers[0])
        img.open_blob(img.layers[1]).close()


def test_archive_member_names_never_host_paths(tmp_path):
    # Members named with `..` are skipped; nothing is written to disk.
    archive = str(tmp_path / "evil.tar")
    with tarfile.open(archive, "w") as tf:
        for name in ("../oci-layout", "a/../../oci-layout", "x/../oci-layout"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tf.addfile(info, io.BytesIO(b"{}"))
    before = set(os.listdir(tmp_path))
    with pytest.raises(ImageError, match="no oci-layout file"):
        open_image(Kernel(), f"oci-archive:{archive}")
    assert set(os.listdir(tmp_path)) == before


def test_archive_symlink_member_resolved_inside(tmp_path):
    store = src._TarStore("t", tar_with_links(tmp_path))
    assert store.open_file("link").read() == b"data"  # relative, inside
    assert store.open_file("abs").read() == b"data"  # absolute: from the archive root
    assert store.open_file("hard").read() == b"data"
    assert store.open_file("escape", must_exist=False) is None  # ../ leaves the archive
    with pytest.raises(ImageError, match="too many links"):
        store.open_file("loop")
    store.close()


def tar_with_links(tmp_path):
    archive = str(tmp_path / "links.tar")
    with tarfile.open(archive, "w") as tf:
        info = tarfile.TarInfo("dir/file")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"data"))
        for name, target, kind in (
            ("link", "dir/file", tarfile.SYMTYPE),
            ("abs", "/dir/file", tarfile.SYMTYPE),
            ("hard", "dir/file", tarfile.LNKTYPE),
            ("escape", "../../etc/passwd", tarfile.SYMTYPE),
            ("loop", "loop", tarfile.SYMTYPE),
        ):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return archive


# --- docker save ----------------------------------------------------------------


def docker_archive(tmp_path, oci_layout=False, tampered=False, images=(("busybox:latest",),)):
    """A `docker save` tar: old style (<id>/layer.tar, <config>.json, manifest.json), or
    Docker 25 style (also index.json + oci-layout, blobs/sha256/...)."""
    root = tmp_path / ("docker-oci" if oci_layout else "docker-old")
    root.mkdir()
    entries, index = [], []
    for n, repo_tags in enumerate(images):
        plain1, raw1 = layer_tar({"bin/hello": f"image {n}\n".encode()})
        plain2, raw2 = layer_tar({"etc/hostname": b"box\n"})
        cfg = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Cmd": ["/bin/hello"]},
                "rootfs": {"type": "layers", "diff_ids": [sha(raw1), sha(raw2)]},
            }
        ).encode()
        if tampered:
            plain1 = plain1[:600] + bytes([plain1[600] ^ 1]) + plain1[601:]
        if oci_layout:
            (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            names = []
            for data in (plain1, plain2, cfg):
                hexa = hashlib.sha256(data).hexdigest() if data is not plain1 else sha(raw1)[7:]
                (root / "blobs" / "sha256" / hexa).write_bytes(data)
                names.append(f"blobs/sha256/{hexa}")
            layers = [
                {"mediaType": OCI_TAR, "digest": "sha256:" + nm.rsplit("/", 1)[1], "size": len(d)}
                for nm, d in zip(names[:2], (plain1, plain2))
            ]
            man = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": src.OCI_MANIFEST,
                    "config": {"mediaType": src.OCI_CONFIG, "digest": sha(cfg), "size": len(cfg)},
                    "layers": layers,
                }
            ).encode()
            (root / "blobs" / "sha256" / sha(man)[7:]).write_bytes(man)
            index.append(
                {
                    "mediaType": src.OCI_MANIFEST,
                    "digest": sha(man),
                    "size": len(man),
                    "annotations": {
                        src.CONTAINERD_NAME: docker_name(repo_tags[0]),
                        src.REF_NAME: repo_tags[0].split(":")[1],
                    },
                }
            )
            entries.append({"Config": names[2], "RepoTags": list(repo_tags), "Layers": names[:2]})
        else:
            names = []
            for i, data in enumerate((plain1, plain2)):
                d = root / f"{n}{i}".ljust(64, "f")
                d.mkdir()
                (d / "layer.tar").write_bytes(data)
                names.append(f"{d.name}/layer.tar")
            cname = hashlib.sha256(cfg).hexdigest() + ".json"
            (root / cname).write_bytes(cfg)
            entries.append({"Config": cname, "RepoTags": list(repo_tags), "Layers": names})
    (root / "manifest.json").write_text(json.dumps(entries))
    if oci_layout:
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": index}))
    return tar_dir(str(root), str(tmp_path / (root.name + ".tar")))


OCI_TAR = "application/vnd.oci.image.layer.v1.tar"


def docker_name(tag):
    return tag if "." in tag.split("/")[0] else "docker.io/library/" + tag


@pytest.mark.parametrize("oci_layout", [False, True])
def test_docker_archive(tmp_path, oci_layout):
    archive = docker_archive(tmp_path, oci_layout, images=(("busybox:latest",), ("example.com/app:1.0", "app:1.0")))
    for tag, n in (("busybox:latest", 0), ("busybox", 0), ("example.com/app:1.0", 1)):
        with open_image(Kernel(), f"docker-archive:{archive}:{tag}") as img:
            assert img.config["config"]["Cmd"] == ["/bin/hello"]
            assert read_layers(img) == [{"bin/hello": f"image {n}\n".encode()}, {"etc/hostname": b"box\n"}]
            # uncompressed layers: each digest is its diff_id
            assert [d.digest for d in img.layers] == img.diff_ids
    with pytest.raises(ImageError, match="several images; name one with :TAG"):
        open_image(Kernel(), f"docker-archive:{archive}")
    with pytest.raises(ImageError, match=r"no image tagged 'nginx'"):
        open_image(Kernel(), f"docker-archive:{archive}:nginx")


def test_docker_archive_old_style_app_tag(tmp_path):
    archive = docker_archive(tmp_path, images=(("busybox:latest",), ("app:1.0",)))
    with open_image(Kernel(), f"docker-archive:{archive}:app:1.0") as img:
        assert read_layers(img)[0] == {"bin/hello": b"image 1\n"}


@pytest.mark.parametrize("oci_layout", [False, True])
def test_docker_archive_tampered_layer_refused(tmp_path, oci_layout):
    archive = docker_archive(tmp_path, oci_layout, tampered=True)
    with open_image(Kernel(), f"docker-archive:{archive}") as img:
        with pytest.raises(ImageError, match=f"blob {img.diff_ids[0][:19]}..: digest mismatch"):
            img.open_blob(img.layers[0])
        img.open_blob(img.layers[1]).close()


def test_docker_archive_tampered_config_refused(tmp_path):
    root = tmp_path / "x"
    archive = docker_archive(tmp_path)
    with tarfile.open(archive) as tf:
        members = {m.name: (m, tf.extractfile(m).read() if m.isreg() else None) for m in tf.getmembers()}
    out = str(root) + ".tar"
    with tarfile.open(out, "w") as tf:
        for name, (m, data) in members.items():
            if name.endswith(".json") and name != "manifest.json":
                data = data.replace(b"/bin/hello", b"/bin/evil!")
            tf.addfile(m, io.BytesIO(data) if data is not None else None)
    with pytest.raises(ImageError, match=r"blob sha256:\w+\.\.: digest mismatch"):
        open_image(Kernel(), f"docker-archive:{out}")


def test_oci_archive_of_docker_save_is_an_oci_layout(tmp_path):
    archive = docker_archive(tmp_path, oci_layout=True)
    with open_image(Kernel(), f"oci-archive:{archive}:latest") as img:
        assert img.manifest["mediaType"] == src.OCI_MANIFEST


# --- a real image -----------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="needs busybox-static")
def test_busybox_image_runs_from_layer(tmp_path, layout):
    # A one-layer image holding the host's static busybox: read back through the
    # verified stream, it still runs.
    data = open("/bin/busybox", "rb").read()
    if b"ld-linux" in data[:4096]:
        pytest.skip("/bin/busybox is not static")
    arch = src.host_platform().architecture
    m = layout.image(arch, files={"bin/busybox": data})
    layout.save([tagged(m, "latest")])
    with open_image(Kernel(), f"oci:{layout.path}:latest") as img:
        got = read_layers(img)[0]["bin/busybox"]
    exe = tmp_path / "busybox"
    exe.write_bytes(got)
    exe.chmod(0o755)
    out = subprocess.run([str(exe), "echo", "from the image"], capture_output=True, text=True)
    assert out.stdout == "from the image\n"
