"""A tiny busybox image built offline, as one archive every engine loads.

The archive is hybrid: an OCI image layout (oci-layout, index.json, blobs/sha256/...) for
`ctr image import` and `podman load`, and a docker-archive manifest.json naming the same
blobs for `docker load` (dockerd 20.10 cannot load a plain OCI layout).  Its one layer is
uncompressed: static busybox at /bin/busybox with a link per applet, /sbin and /usr/{bin,sbin}
pointing at it, a minimal /etc/passwd and /etc/group, and the usual empty directories.
Every entry is owned by root with mtime 0, so the same busybox gives the same digests.
"""

import hashlib
import io
import json
import os
import subprocess
import tarfile

EMPTY_DIRS = ("dev", "etc", "proc", "root", "run", "sys", "tmp", "usr", "var")
PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
GROUP = b"root:x:0:\nnobody:x:65534:\n"
PATH_ENV = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"


def is_static(path):
    """True when path is an ELF executable with no program interpreter (statically linked)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only, like this host
                return False
            phoff = int.from_bytes(head[32:40], "little")
            phentsize = int.from_bytes(head[54:56], "little")
            phnum = int.from_bytes(head[56:58], "little")
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(
        int.from_bytes(table[i : i + 4], "little") != 3  # PT_INTERP
        for i in range(0, len(table), phentsize)
    )


def find_busybox():
    """The static busybox (Debian's busybox-static), or None."""
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.access(path, os.X_OK) and is_static(path):
            return path
    return None


def _entry(tar, name, kind, mode, data=b"", target=""):
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.linkname = target
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def layer_tar(busybox):
    """The uncompressed layer, as bytes."""
    with open(busybox, "rb") as f:
        binary = f.read()
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    entries = [("bin", tarfile.DIRTYPE, 0o755, b"", "")]
    entries += [(d, tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755, b"", "") for d in EMPTY_DIRS]
    entries += [("bin/busybox", tarfile.REGTYPE, 0o755, binary, "")]
    entries += [
        (f"bin/{a}", tarfile.SYMTYPE, 0o777, b"", "busybox") for a in applets if a != "busybox" and "/" not in a
    ]
    entries += [
        ("sbin", tarfile.SYMTYPE, 0o777, b"", "bin"),
        ("usr/bin", tarfile.SYMTYPE, 0o777, b"", "../bin"),
        ("usr/sbin", tarfile.SYMTYPE, 0o777, b"", "../bin"),
        ("etc/passwd", tarfile.REGTYPE, 0o644, PASSWD, ""),
        ("etc/group", tarfile.REGTYPE, 0o644, GROUP, ""),
    ]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, mode, data, target in sorted(entries):
            _entry(tar, name, kind, mode, data, target)
    return out.getvalue()


def full_name(ref):
    """How containerd and podman name a docker-hub style reference: e2e/busybox:latest ->
    docker.io/e2e/busybox:latest; busybox:latest -> docker.io/library/busybox:latest."""
    name, _, tag = ref.rpartition(":")
    first = name.split("/")[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return ref
    return f"docker.io/{name}:{tag}" if "/" in name else f"docker.io/library/{name}:{tag}"


def _blob(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _json(doc):
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def build_image(out_path, ref="e2e/busybox:latest", cmd=("sh",), busybox=None):
    """Write the hybrid archive to out_path; returns the name containerd and podman give it."""
    busybox = busybox or find_busybox()
    if not busybox:
        raise RuntimeError("no static busybox (install busybox-static)")
    blobs = {}
    layer = layer_tar(busybox)
    layer_desc = _blob(blobs, layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": EPOCH,
        "config": {"Env": [PATH_ENV], "Cmd": list(cmd), "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        "history": [{"created": EPOCH, "created_by": "tests/e2e/image.py"}],
    }
    config_desc = _blob(blobs, _json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}],
    }
    manifest_desc = _blob(blobs, _json(manifest))
    name = full_name(ref)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **manifest_desc,
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": ref.rpartition(":")[2],
                },
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    docker_manifest = [
        {
            "Config": "blobs/sha256/" + config_desc["digest"][7:],
            "RepoTags": [ref],
            "Layers": ["blobs/sha256/" + layer_desc["digest"][7:]],
        }
    ]
    files = [
        ("oci-layout", _json({"imageLayoutVersion": "1.0.0"})),
        ("index.json", _json(index)),
        ("manifest.json", _json(docker_manifest)),
    ]
    with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            _entry(tar, d, tarfile.DIRTYPE, 0o755)
        for digest in sorted(blobs):
            _entry(tar, f"blobs/sha256/{digest}", tarfile.REGTYPE, 0o644, blobs[digest])
        for fname, data in files:
            _entry(tar, fname, tarfile.REGTYPE, 0o644, data)
    return name
