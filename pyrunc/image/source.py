"""Open an image: an OCI layout (directory or tar) or a `docker save` archive.

SOURCE strings, in the spirit of skopeo and umoci:

    oci:DIR[:TAG]               an OCI image layout directory
    oci-archive:FILE[:TAG]      a tar (optionally compressed) of an OCI image layout
    docker-archive:FILE[:TAG]   `docker save` output: manifest.json, and since Docker 25 also
                                an OCI layout (index.json, oci-layout, blobs/sha256/...)

The path ends at the first ':' unless the whole string names an existing file, so a path
holding ':' works only without a TAG.

Every blob is checked against its descriptor (digest and size) before anything reads it:
the index.json (or manifest.json) is the one trusted root, and each step down (index ->
manifest -> config, layers) is content-addressed.  Archives are read in place with tarfile;
no member name is ever used as a host path.
"""

import hashlib
import json
import os
import posixpath
import re
import stat
import tarfile
from dataclasses import dataclass, field

from pyrunc.errors import ImageError

# Annotations name typing's types only for mypy (quoted), as everywhere in pyrunc.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import IO, Any, TypeAlias

    Json = Any  # a parsed JSON document, not yet checked
    Store: TypeAlias = "_DirStore | _TarStore"

    from pyrunc.linux.kernel import Kernel

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
CONFIG_TYPES = (OCI_CONFIG, DOCKER_CONFIG)

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"  # what Docker 25+ writes in index.json

# Manifests, indexes and configs are read whole into memory: bound them.
MAX_JSON = 8 << 20
MAX_NESTING = 8
MAX_LINKS = 40
CHUNK = 1 << 20

_HASHES = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^(sha256|sha512):([a-f0-9]+)$")

# Go's GOARCH for the machine names uname reports.
GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "i386": "386",
    "i686": "386",
    "armv7l": "arm",
    "armv6l": "arm",
    "armv8l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
    "loongarch64": "loong64",
}


def short(digest: str) -> str:
    """sha256:0123456789ab.. for messages."""
    return digest[:19] + ".." if len(digest) > 21 else digest


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: "dict[str, Any]" = field(default_factory=dict, compare=False)
    platform: "dict[str, Any] | None" = field(default=None, compare=False)


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, plat: "dict[str, Any]") -> bool:
        if plat.get("os") != self.os or plat.get("architecture") != self.architecture:
            return False
        if self.variant is None:
            return True
        # arm64 without a variant is v8 (containerd's normalisation).
        theirs = plat.get("variant") or ("v8" if self.architecture == "arm64" else None)
        return theirs == self.variant


def host_platform() -> Platform:
    machine = os.uname().machine
    return Platform("linux", GOARCH.get(machine, machine))


def parse_platform(value: "Platform | str | None") -> Platform:
    """None (this machine), a Platform, or "os/arch[/variant]"."""
    if value is None:
        return host_platform()
    if isinstance(value, Platform):
        return value
    parts = str(value).split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageError(f"platform {value!r}: expected OS/ARCH[/VARIANT], e.g. linux/arm64")
    return Platform(*parts)


def _platform_text(plat: "dict[str, Any] | None") -> str:
    plat = plat or {}
    text = "/".join(str(plat.get(k) or "") for k in ("os", "architecture"))
    return text + (f"/{plat['variant']}" if plat.get("variant") else "")


# --- blob stores -------------------------------------------------------------


class _Verifier:
    """Hashes and counts a stream, refusing a mismatch with the descriptor."""

    def __init__(self, where: str, desc: Descriptor) -> None:
        self.where = where
        self.desc = desc

    def check(self, stream: "IO[bytes]") -> None:
        algo, _ = _split_digest(self.where, self.desc.digest)
        h = hashlib.new(algo)
        n = 0
        limit = self.desc.size
        while True:
            # Never read much past the declared size: an endless stream stops here.
            chunk = stream.read(min(CHUNK, limit - n + 1))
            if not chunk:
                break
            n += len(chunk)
            if n > limit:
                raise ImageError(
                    f"{self.where}: blob {short(self.desc.digest)}: size mismatch "
                    f"(more than {limit} bytes read, {limit} expected)"
                )
            h.update(chunk)
        if n != limit:
            raise ImageError(
                f"{self.where}: blob {short(self.desc.digest)}: size mismatch ({n} bytes read, {limit} expected)"
            )
        got = f"{algo}:{h.hexdigest()}"
        if got != self.desc.digest:
            raise ImageError(f"{self.where}: blob {short(self.desc.digest)}: digest mismatch ({short(got)} read)")


def _split_digest(where: str, digest: object) -> tuple[str, str]:
    m = _DIGEST.match(digest) if isinstance(digest, str) else None
    if not m or len(m.group(2)) != _HASHES[m.group(1)]:
        raise ImageError(f"{where}: bad or unsupported digest {str(digest)[:80]!r}")
    return m.group(1), m.group(2)


class _DirStore:
    """An OCI layout directory.  Blob paths are built from validated digests only, and
    opened inside the layout (openat2 RESOLVE_IN_ROOT) so a symlink cannot point the
    reader at a host file."""

    def __init__(self, where: str, path: str, k: "Kernel") -> None:
        self.kernel = k
        self.where = where
        self.path = path
        try:
            self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise ImageError(f"{where}: cannot open {path}: {(e.strerror or str(e)).lower()}") from None

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def open_file(self, name: str, must_exist: bool = True) -> "IO[bytes] | None":
        from pyrunc.linux.paths import open_in_root

        try:
            # O_NONBLOCK: a FIFO planted in the layout must not hang us; refused below.
            fd: int = open_in_root(self.kernel, self.fd, name, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            if not must_exist and e.errno == 2:
                return None
            raise ImageError(f"{self.where}: {name}: {os.strerror(e.errno or 0).lower()}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ImageError(f"{self.where}: {name}: not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def has(self, name: str) -> bool:
        f = self.open_file(name, must_exist=False)
        if f is None:
            return False
        f.close()
        return True

    def open_blob(self, desc: Descriptor, name: str) -> "IO[bytes]":
        f = _opened(self.where, name, self.open_file(name))
        try:
            _Verifier(self.where, desc).check(f)
            # The same open file from its start: a rename over the path after the check
            # cannot swap the content in.
            f.seek(0)
        except BaseException:
            f.close()
            raise
        return f


class _TarStore:
    """A tar archive read in place: member names are keys, never host paths."""

    def __init__(self, where: str, path: str) -> None:
        self.where = where
        try:
            self.tar = tarfile.open(path, "r:*")
            members = self.tar.getmembers()
        except (OSError, tarfile.TarError, EOFError) as e:
            raise ImageError(f"{where}: cannot read archive {path}: {e}") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        self.duplicates: set[str] = set()
        for m in members:
            name = _member_key(m.name)
            if name is None:
                continue  # absolute or `..` names are nothing we would look up
            if name in self.members:
                self.duplicates.add(name)
            self.members[name] = m

    def close(self) -> None:
        self.tar.close()

    def _member(self, path: str) -> tarfile.TarInfo | None:
        name = _member_key(path)
        for _ in range(MAX_LINKS):
            if name is None or name not in self.members:
                return None
            if name in self.duplicates:
                raise ImageError(f"{self.where}: archive has more than one member {name}")
            m = self.members[name]
            if m.isreg():
                return m
            if m.issym():
                # Resolved inside the archive's own namespace, like a path in a rootfs.
                base = "" if m.linkname.startswith("/") else posixpath.dirname(name)
                name = _member_key(posixpath.join(base, m.linkname.lstrip("/")))
            elif m.islnk():
                name = _member_key(m.linkname)
            else:
                raise ImageError(f"{self.where}: archive member {name}: not a regular file")
        raise ImageError(f"{self.where}: archive member {name}: too many links")

    def has(self, name: str) -> bool:
        return self._member(name) is not None

    def open_file(self, name: str, must_exist: bool = True) -> "IO[bytes] | None":
        m = self._member(name)
        if m is None:
            if must_exist:
                raise ImageError(f"{self.where}: archive has no member {name}")
            return None
        return self.tar.extractfile(m)

    def size(self, name: str) -> int | None:
        m = self._member(name)
        return None if m is None else m.size

    def open_blob(self, desc: Descriptor, name: str) -> "IO[bytes]":
        _Verifier(self.where, desc).check(_opened(self.where, name, self.open_file(name)))
        # A fresh reader of the member just verified (the archive is ours, opened once).
        return _opened(self.where, name, self.open_file(name))


def _opened(where: str, name: str, f: "IO[bytes] | None") -> "IO[bytes]":
    """The file open_file gave; it gives None only when asked to (must_exist=False)."""
    if f is None:
        raise ImageError(f"{where}: {name}: no such file")
    return f


def _member_key(name: str) -> str | None:
    """The archive path a member name means; None for a name climbing with `..`.
    A leading / or ./ is dropped, as tar does."""
    if ".." in name.split("/"):
        return None
    name = posixpath.normpath("/" + name).lstrip("/")
    return name if name and name != "." else None


# --- the image -----------------------------------------------------------------


@dataclass
class Image:
    """One image, resolved to a single manifest for one platform.

    manifest: the parsed manifest; config: the parsed image config; layers: Descriptors,
    base layer first; diff_ids: config.rootfs.diff_ids (the uncompressed layers' digests),
    as many as layers.  open_blob(desc) gives a binary stream of a blob whose digest and
    size were checked first.
    """

    source: str
    manifest: "dict[str, Any]"
    manifest_descriptor: Descriptor | None  # None: a docker save archive has no manifest blob
    config: "dict[str, Any]"
    config_descriptor: Descriptor
    layers: list[Descriptor]
    diff_ids: list[str]
    _store: "Store" = field(repr=False)
    _names: "Callable[[Descriptor], str]" = field(repr=False)  # digest -> member/file name

    def open_blob(self, desc: "Descriptor | dict[str, Any]") -> "IO[bytes]":
        """A binary stream of the blob, after its digest and size matched `desc`."""
        if isinstance(desc, dict):
            desc = _descriptor(self.source, desc, "blob")
        return self._store.open_blob(desc, self._names(desc))

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> "Image":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_source(source: str) -> tuple[str, str, str | None]:
    """(transport, path, tag or None) of a SOURCE string."""
    transport, sep, rest = source.partition(":")
    if not sep or transport not in ("oci", "oci-archive", "docker-archive") or not rest:
        raise ImageError(f"image {source}: expected oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:TAG]")
    if os.path.exists(rest):
        return transport, rest, None
    path, _, tag = rest.partition(":")
    return transport, path, (tag or None)


def open_image(k: "Kernel", source: str, platform: "Platform | str | None" = None) -> Image:
    """The Image that SOURCE names, for `platform` ("os/arch[/variant]", default this
    machine); `k`: the command's kernel.Kernel.  Raises ImageError, one line naming the
    source, for anything unusable."""
    transport, path, tag = parse_source(source)
    where = f"image {source}"
    if not os.path.exists(path):
        raise ImageError(f"{where}: {path}: no such file or directory")
    want = parse_platform(platform)
    store: Store = _DirStore(where, path, k) if transport == "oci" else _TarStore(where, path)
    try:
        if isinstance(store, _TarStore) and transport == "docker-archive" and not store.has("index.json"):
            image = _open_docker(where, source, store, tag, want, platform is not None)
        else:
            image = _open_oci(
                where, source, store, tag, want, platform is not None, docker=(transport == "docker-archive")
            )
    except BaseException:
        store.close()
        raise
    return image


def _read_json(where: str, f: "IO[bytes] | None", what: str) -> "Json":
    f = _opened(where, what, f)
    with f:
        data = f.read(MAX_JSON + 1)
    if len(data) > MAX_JSON:
        raise ImageError(f"{where}: {what}: larger than {MAX_JSON} bytes")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ImageError(f"{where}: {what}: invalid JSON ({e})") from None
    return doc


def _descriptor(where: str, d: "Json", what: str) -> Descriptor:
    if not isinstance(d, dict):
        raise ImageError(f"{where}: {what}: descriptor is not an object")
    size, mt = d.get("size"), d.get("mediaType")
    algo, hexd = _split_digest(f"{where}: {what}", d.get("digest"))
    digest = f"{algo}:{hexd}"
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ImageError(f"{where}: {what} {short(digest)}: bad size {size!r}")
    if mt is not None and not isinstance(mt, str):
        raise ImageError(f"{where}: {what} {short(digest)}: bad mediaType")
    ann = d.get("annotations") or {}
    plat = d.get("platform")
    return Descriptor(
        mt or "", digest, size, ann if isinstance(ann, dict) else {}, plat if isinstance(plat, dict) else None
    )


def _blob_name(desc: Descriptor) -> str:
    algo, hexa = desc.digest.split(":", 1)
    return f"blobs/{algo}/{hexa}"


def _read_blob_json(where: str, store: "Store", desc: Descriptor, what: str) -> "dict[str, Any]":
    if desc.size > MAX_JSON:
        raise ImageError(f"{where}: {what} {short(desc.digest)}: larger than {MAX_JSON} bytes")
    doc = _read_json(where, store.open_blob(desc, _blob_name(desc)), f"{what} {short(desc.digest)}")
    if not isinstance(doc, dict):
        raise ImageError(f"{where}: {what} {short(desc.digest)}: not a JSON object")
    return dict(doc)


def _names_of(d: Descriptor) -> list[str]:
    ann = d.annotations
    return [n for n in (ann.get(REF_NAME), ann.get(CONTAINERD_NAME)) if isinstance(n, str)]


def _docker_forms(tag: str) -> set[str]:
    """The names a Docker tag may be written as: busybox, busybox:latest,
    docker.io/library/busybox:latest."""
    forms = {tag}
    last = tag.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        forms.add(tag + ":latest")
    for f in list(forms):
        first = f.split("/", 1)[0]
        if "/" not in f:
            forms.add("docker.io/library/" + f)
        elif "." not in first and ":" not in first and first != "localhost":
            forms.add("docker.io/" + f)
    return forms


def _select_by_tag(where: str, entries: list[Descriptor], tag: str | None, docker: bool) -> list[Descriptor]:
    """The index.json entries TAG names; without TAG, all of them if they name at most
    one image."""
    if tag is None:
        names = {tuple(_names_of(d)) for d in entries}
        if len(names) <= 1:
            return entries
        listed = ", ".join(sorted({_names_of(d)[-1] for d in entries if _names_of(d)}))
        raise ImageError(f"{where}: the layout holds several images; name one with :TAG (tags: {listed})")
    forms = _docker_forms(tag) if docker else {tag}
    chosen = [d for d in entries if forms & set(_names_of(d))]
    if not chosen:
        listed = ", ".join(sorted({n for d in entries for n in _names_of(d)})) or "none"
        raise ImageError(f"{where}: no image tagged {tag!r} (tags: {listed})")
    return chosen


def _open_oci(
    where: str, source: str, store: "Store", tag: str | None, want: Platform, explicit: bool, docker: bool
) -> Image:
    if not store.has("oci-layout"):
        raise ImageError(f"{where}: not an OCI image layout (no oci-layout file)")
    layout = _read_json(where, store.open_file("oci-layout"), "oci-layout")
    if not isinstance(layout, dict) or not isinstance(layout.get("imageLayoutVersion"), str):
        raise ImageError(f"{where}: oci-layout: no imageLayoutVersion")
    index = _read_json(where, store.open_file("index.json"), "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ImageError(f"{where}: index.json: no manifests list")
    entries = [_descriptor(where, d, "index.json entry") for d in index["manifests"]]
    entries = _select_by_tag(where, entries, tag, docker)
    mdesc = _pick_manifest(where, store, entries, want)
    manifest = _read_blob_json(where, store, mdesc, "manifest")
    mt = manifest.get("mediaType") or mdesc.media_type
    if mt not in MANIFEST_TYPES:
        raise ImageError(f"{where}: manifest {short(mdesc.digest)}: unsupported mediaType {mt!r}")
    cdesc = _descriptor(where, manifest.get("config"), "config")
    if cdesc.media_type not in CONFIG_TYPES:
        raise ImageError(
            f"{where}: config {short(cdesc.digest)}: unsupported mediaType {cdesc.media_type!r} (not a container image)"
        )
    config = _read_blob_json(where, store, cdesc, "config")
    listed = manifest.get("layers")
    if not isinstance(listed, list):
        raise ImageError(f"{where}: manifest {short(mdesc.digest)}: no layers list")
    layers = [_descriptor(where, d, f"layer {i}") for i, d in enumerate(listed)]
    diff_ids = _diff_ids(where, config, layers)
    _check_config_platform(where, config, want, explicit)
    return Image(source, manifest, mdesc, config, cdesc, layers, diff_ids, store, _blob_name)


def _pick_manifest(where: str, store: "Store", entries: list[Descriptor], want: Platform) -> Descriptor:
    """A single manifest is used as is (its config's platform is checked later); from
    indexes, the first manifest whose platform matches, nested indexes followed."""
    if len(entries) == 1 and entries[0].media_type in MANIFEST_TYPES:
        return entries[0]
    seen: list[str] = []
    found = _walk(where, store, entries, want, seen, 0)
    if found is None:
        listed = ", ".join(dict.fromkeys(seen)) or "none"
        raise ImageError(f"{where}: no manifest for platform {want} (platforms: {listed})")
    return found


def _walk(
    where: str, store: "Store", entries: "Iterable[Descriptor]", want: Platform, seen: list[str], depth: int
) -> Descriptor | None:
    if depth > MAX_NESTING:
        raise ImageError(f"{where}: indexes nested more than {MAX_NESTING} deep")
    for d in entries:
        if d.media_type in INDEX_TYPES:
            sub = _read_blob_json(where, store, d, "index")
            listed = sub.get("manifests")
            if not isinstance(listed, list):
                raise ImageError(f"{where}: index {short(d.digest)}: no manifests list")
            items = [_descriptor(where, x, f"index {short(d.digest)} entry") for x in listed]
            found = _walk(where, store, items, want, seen, depth + 1)
            if found is not None:
                return found
        elif d.media_type in MANIFEST_TYPES:
            if d.platform is None:
                continue  # nothing says what it runs on; artifacts, attestations
            if want.matches(d.platform):
                return d
            seen.append(_platform_text(d.platform))
        # Other media types must not be an error (image-layout.md): skipped.
    return None


def _diff_ids(where: str, config: "dict[str, Any]", layers: list[Descriptor]) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise ImageError(f"{where}: config: no rootfs.diff_ids")
    for d in diff_ids:
        _split_digest(f"{where}: config rootfs.diff_ids", d)
    if len(diff_ids) != len(layers):
        raise ImageError(f"{where}: config has {len(diff_ids)} rootfs.diff_ids for {len(layers)} layers")
    return list(diff_ids)


def _check_config_platform(where: str, config: "dict[str, Any]", want: Platform, explicit: bool) -> None:
    """A single-platform image for another machine is refused early: it would fail later
    with `exec format error`.  Naming its platform explicitly accepts it (binfmt)."""
    plat = {k: config.get(k) for k in ("os", "architecture", "variant")}
    if not plat["os"] or not plat["architecture"]:
        return
    if want.matches(plat):
        return
    if explicit and (want.os, want.architecture) == (plat["os"], plat["architecture"]):
        return  # a variant the config may not spell out
    raise ImageError(f"{where}: image is for {_platform_text(plat)}, not {want}")


# --- docker save without an OCI layout -------------------------------------------


def _open_docker(where: str, source: str, store: _TarStore, tag: str | None, want: Platform, explicit: bool) -> Image:
    if not store.has("manifest.json"):
        raise ImageError(f"{where}: not a docker save archive (no manifest.json)")
    entries = _read_json(where, store.open_file("manifest.json"), "manifest.json")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ImageError(f"{where}: manifest.json: not a list of objects")
    if not entries:
        raise ImageError(f"{where}: manifest.json: no images")
    tags = lambda e: [t for t in (e.get("RepoTags") or []) if isinstance(t, str)]  # noqa: E731
    listed = ", ".join(t for e in entries for t in tags(e)) or "none"
    if tag is None:
        if len(entries) > 1:
            raise ImageError(f"{where}: the archive holds several images; name one with :TAG (tags: {listed})")
        entry = entries[0]
    else:
        forms = _docker_forms(tag)
        chosen = [e for e in entries if forms & set(_docker_forms_all(tags(e)))]
        if not chosen:
            raise ImageError(f"{where}: no image tagged {tag!r} (tags: {listed})")
        entry = chosen[0]

    config_name = entry.get("Config")
    if not isinstance(config_name, str):
        raise ImageError(f"{where}: manifest.json: no Config")
    size = store.size(config_name)
    if size is None:
        raise ImageError(f"{where}: archive has no member {config_name}")
    # The config is named by its own digest (<hex>.json, or blobs/sha256/<hex>): that is
    # what makes it, and through its diff_ids the layers, verifiable.
    m = re.search(r"(?:^|/)([a-f0-9]{64})(?:\.json)?$", config_name)
    if not m:
        raise ImageError(f"{where}: Config {config_name}: not named by its digest")
    cdesc = Descriptor(DOCKER_CONFIG, f"sha256:{m.group(1)}", size)
    names = {cdesc.digest: config_name}
    config = _read_json(where, store.open_blob(cdesc, config_name), f"config {short(cdesc.digest)}")
    if not isinstance(config, dict):
        raise ImageError(f"{where}: config {short(cdesc.digest)}: not a JSON object")
    layer_names = entry.get("Layers")
    if not isinstance(layer_names, list) or not all(isinstance(n, str) for n in layer_names):
        raise ImageError(f"{where}: manifest.json: no Layers list")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(layer_names):
        raise ImageError(f"{where}: config rootfs.diff_ids do not match manifest.json's {len(layer_names)} Layers")
    layers: list[Descriptor] = []
    for i, name in enumerate(layer_names):
        size = store.size(name)
        if size is None:
            raise ImageError(f"{where}: archive has no member {name}")
        _split_digest(f"{where}: config rootfs.diff_ids", diff_ids[i])
        blob = re.search(r"(?:^|/)blobs/sha256/([a-f0-9]{64})$", name)
        if blob and f"sha256:{blob.group(1)}" != diff_ids[i]:
            # A compressed layer stored under its own digest (containerd's store).
            digest, mt = f"sha256:{blob.group(1)}", _sniff(store, name)
        else:
            # Docker's own layers are uncompressed: their digest is the diff_id.
            digest, mt = diff_ids[i], DOCKER_LAYER
        layers.append(Descriptor(mt, digest, size))
        names.setdefault(digest, name)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": cdesc.media_type, "digest": cdesc.digest, "size": cdesc.size},
        "layers": [{"mediaType": d.media_type, "digest": d.digest, "size": d.size} for d in layers],
    }
    _check_config_platform(where, config, want, explicit)

    def name_of(desc: Descriptor) -> str:
        if desc.digest not in names:
            raise ImageError(f"{where}: blob {short(desc.digest)}: not in the archive")
        return names[desc.digest]

    return Image(source, manifest, None, config, cdesc, layers, list(diff_ids), store, name_of)


def _docker_forms_all(repo_tags: "Iterable[str]") -> set[str]:
    out: set[str] = set()
    for t in repo_tags:
        out |= _docker_forms(t)
    return out


def _sniff(store: "Store", name: str) -> str:
    with _opened("archive", name, store.open_file(name)) as f:
        head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        return DOCKER_LAYER_GZIP
    if head == b"\x28\xb5\x2f\xfd":
        return "application/vnd.oci.image.layer.v1.tar+zstd"
    return DOCKER_LAYER


__all__ = ["open_image", "parse_source", "parse_platform", "host_platform", "Image", "Descriptor", "Platform"]
