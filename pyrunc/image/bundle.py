"""From an image to a bundle, and back: `pyrunc image unpack SOURCE BUNDLE` and
`pyrunc image remove BUNDLE` (docs/images.md).

unpack opens the image (source.py: every blob's digest and size checked before use),
extracts each layer once into the content-addressed store (layers.py, by diff_id), and
makes BUNDLE/rootfs either an overlay mount of the stored layers, so that the bundles of
one image share one copy as containerd's snapshotters do, or, with --flatten, a plain
copy of them applied in order.  config.json comes from the image config on top of
`pyrunc spec`'s defaults (spec.py).  What unpack made is recorded in BUNDLE/.pyrunc-image/
(with the overlay's upper and work directories), so that remove takes back exactly
that: the mount, then the bundle.  A failed unpack leaves nothing behind.
"""

import errno
import os
import shutil

from pyrunc import jsonc
from pyrunc.errors import ImageError, KernelError

# Annotations name typing's types only for mypy (quoted), as everywhere in pyrunc.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from pyrunc.linux.kernel import Kernel

META = ".pyrunc-image"  # in the bundle: what unpack made
RECORD = "image.json"
OVERLAY_MAX_DATA = 4095  # the mount data of an overlay fits in one page


def unpack(
    k: "Kernel",
    source: str,
    bundle: str,
    flatten: bool = False,
    cache: str | None = None,
    platform: str | None = None,
    args: "Iterable[str] | None" = None,
) -> "dict[str, Any]":
    """Make `bundle` (a new or empty directory) from the image `source`; returns the
    record written to BUNDLE/.pyrunc-image/image.json.  `k`: the command's kernel.Kernel."""
    from pyrunc.image import layers, spec
    from pyrunc.image import source as sources

    bundle = os.path.abspath(bundle)
    made_bundle = _new_bundle_dir(bundle)
    meta = os.path.join(bundle, META)
    rootfs = os.path.join(bundle, "rootfs")
    mounted = False
    try:
        os.mkdir(meta, 0o700)
        os.mkdir(rootfs, 0o755)
        with sources.open_image(k, source, platform) as img:
            store = layers.Store(k, cache or layers.DEFAULT_ROOT)
            layer_dirs: list[str] = []
            for desc, diff_id in zip(img.layers, img.diff_ids):
                path = store.layer(diff_id)
                if path is None:
                    with img.open_blob(desc) as stream:
                        path = store.add(diff_id, stream, desc.media_type)
                layer_dirs.append(path)
            if flatten:
                layers.flatten(k, layer_dirs, rootfs)
            else:
                _mount_overlay(k, layer_dirs, meta, rootfs)
                mounted = True
            config = spec.runtime_config(img.config, rootfs, k, args=args, where=f"image {source}")
            record: dict[str, Any] = {
                "source": source,
                "rootfs": "flatten" if flatten else "overlay",
                "manifest": img.manifest_descriptor.digest if img.manifest_descriptor else None,
                "config": img.config_descriptor.digest,
                "layers": list(img.diff_ids),
            }
        _write(os.path.join(bundle, "config.json"), _pretty(config))
        _write(os.path.join(meta, RECORD), jsonc.dumps(record, compact=False) + "\n")
        return record
    except BaseException:
        if mounted:
            _unmount(k, rootfs)
        _remove_made(bundle, made_bundle)
        raise


def remove(k: "Kernel", bundle: str) -> None:
    """Unmount a bundle's rootfs and remove the bundle, if `pyrunc image unpack` made it."""
    bundle = os.path.abspath(bundle)
    record_path = os.path.join(bundle, META, RECORD)
    try:
        with open(record_path, "rb") as f:
            record = jsonc.loads(f.read())
    except FileNotFoundError:
        raise ImageError(
            f"image remove {bundle}: not a bundle made by `pyrunc image unpack` (no {META}/{RECORD})"
        ) from None
    except (ValueError, RecursionError) as e:
        raise ImageError(f"image remove {bundle}: {META}/{RECORD}: {jsonc.problem(e)}") from None
    if not isinstance(record, dict):
        raise ImageError(f"image remove {bundle}: {META}/{RECORD}: not a JSON object")
    if record.get("rootfs") == "overlay":
        _unmount(k, os.path.join(bundle, "rootfs"))
    shutil.rmtree(bundle)  # never follows a symlink out of the tree


def _new_bundle_dir(bundle: str) -> bool:
    """Whether unpack made the bundle directory itself (so a failure removes it)."""
    try:
        os.mkdir(bundle, 0o755)
        return True
    except FileExistsError:
        if not os.path.isdir(bundle) or os.listdir(bundle):
            raise ImageError(f"image unpack: bundle {bundle} exists and is not an empty directory") from None
        return False


def _remove_made(bundle: str, made_bundle: bool) -> None:
    """What a failed unpack made: the bundle directory, or its content when it was there."""
    if made_bundle:
        shutil.rmtree(bundle, ignore_errors=True)
        return
    for name in ("config.json", META, "rootfs"):
        path = os.path.join(bundle, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)


def _mount_overlay(k: "Kernel", layer_dirs: list[str], meta: str, rootfs: str) -> None:
    """rootfs: the layers (base first) under an upper directory of the bundle's own."""

    upper, work = os.path.join(meta, "upper"), os.path.join(meta, "work")
    os.mkdir(upper, 0o755)
    os.mkdir(work, 0o700)
    if not layer_dirs:  # an image with no layer: an empty lower directory
        layer_dirs = [os.path.join(meta, "empty")]
        os.mkdir(layer_dirs[0], 0o755)
    paths = [_overlay_escape(p) for p in reversed(layer_dirs)] + [_overlay_escape(upper), _overlay_escape(work)]
    data = f"lowerdir={':'.join(paths[:-2])},upperdir={paths[-2]},workdir={paths[-1]}"
    if len(data) > OVERLAY_MAX_DATA:
        raise ImageError(
            f"image unpack: {len(layer_dirs)} layers are more than one overlay mount "
            "can stack from these paths: use --flatten, or a shorter --cache path"
        )
    try:
        k.mount("overlay", rootfs, "overlay", 0, data)
    except KernelError as e:
        raise ImageError(f"image unpack: {e} (use --flatten where overlayfs is not available)") from None


def _overlay_escape(path: str) -> str:
    # overlayfs splits its options at "," and lowerdir at ":": a backslash escapes them.
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def _unmount(k: "Kernel", rootfs: str) -> None:
    try:
        k.umount(rootfs)
    except KernelError as e:
        if e.errno != errno.EINVAL:  # not mounted (any more)
            raise ImageError(f"image remove: {e}") from None


def _pretty(config: object) -> str:
    import json

    return json.dumps(config, indent="\t") + "\n"  # as `pyrunc spec` writes it


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
