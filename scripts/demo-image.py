"""`make demo`'s second part: an image run without an engine.

Builds a one-layer OCI image of Debian's busybox in demo/image (what `docker save` or
`skopeo copy` would hand you), makes a bundle of it with `pyrunc image unpack` (an overlay
of the layer stored in demo/image-cache), runs it with `pyrunc run`, and removes the
bundle again with `pyrunc image remove`.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(HERE, "demo")
PYRUNC = os.path.join(HERE, ".venv", "bin", "pyrunc")
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)


def layer():
    busybox = shutil.which("busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name in ("bin", "etc", "tmp", "proc", "sys", "dev"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tf.addfile(info)
        tf.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tf.addfile(info)
        for name, text in (
            ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
            ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
            ("etc/os-release", "NAME=pyrunc-demo-image\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tf.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


def oci_image(path):
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs)

    def blob(data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    raw = layer()
    config = {
        "architecture": ARCH,
        "os": "linux",
        "config": {
            "Entrypoint": ["sh", "-c"],
            "User": "nobody",
            "WorkingDir": "/tmp",
            "Cmd": ["echo hello from an image: $(cat /etc/os-release); id; pwd"],
            "Labels": {"org.opencontainers.image.title": "pyrunc demo"},
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [blob(gzip.compress(raw, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip")],
    }
    desc = blob(json.dumps(manifest).encode(), "application/vnd.oci.image.manifest.v1+json")
    desc["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [desc]}, f)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')


def say(*argv):
    print("+ " + " ".join(argv), flush=True)
    return subprocess.run(argv, check=True)


def main():
    image, bundle = os.path.join(DEMO, "image"), os.path.join(DEMO, "image-bundle")
    for path in (image, bundle):
        if os.path.exists(os.path.join(path, ".pyrunc-image")):
            subprocess.run([PYRUNC, "image", "remove", path])
        shutil.rmtree(path, ignore_errors=True)
    oci_image(image)
    say(PYRUNC, "image", "unpack", "--cache", os.path.join(DEMO, "image-cache"), f"oci:{image}:latest", bundle)
    try:
        with open(os.path.join(bundle, "config.json")) as f:
            cfg = json.load(f)
        cfg["linux"]["cgroupsPath"] = "/pyrunc-demo-image"  # the demo's own, not the caller's
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f, indent="\t")
        say(PYRUNC, "--root", "/run/pyrunc", "run", "--bundle", bundle, f"pyrunc-demo-image-{os.getpid()}")
    finally:
        say(PYRUNC, "image", "remove", bundle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
