"""Image layers: unpack a layer safely, keep it in overlayfs form, stack layers.

pyrunc runs as root and layers come from anywhere, so a layer archive is hostile until
proven otherwise.  extract() therefore creates every member itself (never tarfile's
extract/extractall) and:

- cleans each member path lexically after making it relative: `/a/../b` is `b`, and a
  `..` that would climb above the layer root is clamped at the root (as umoci and
  filepath-securejoin do), so `../../etc/passwd` is `etc/passwd` inside the layer;
- resolves every parent directory inside `dest` without following any symlink
  (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, else one O_NOFOLLOW|O_DIRECTORY open
  per component): a member written "through" a symlink of the layer is refused;
- creates symlinks with their target unchanged (never followed while extracting);
- accepts a hard link only to a non-directory already extracted from this same layer;
- keeps FIFOs but skips char and block devices (a layer must not hand the host a device
  node), reporting each skipped member; the only device it makes is overlayfs' whiteout;
- sets owners, modes (setuid/setgid kept: images need them), mtimes and the xattrs of
  PAX `SCHILY.xattr.*` records (only `user.*` and `security.capability`) on the entry
  itself, through dir fds and the no-follow forms;
- copies file data in chunks, so a huge member never sits in memory, and fails with the
  member's name when the archive is truncated.

A layer is kept in overlayfs form: the OCI whiteout `.wh.NAME` becomes a character
device 0/0 named NAME, and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its
directory, so stored layers stack with an overlay mount as they are.  flatten() applies
the same layers into one plain directory for hosts or callers without overlayfs.

Store keeps layers by diff_id (the sha256 of the uncompressed tar) under
`<root>/layers/sha256/<hex>`; the default root is /var/lib/pyrunc/images (DEFAULT_ROOT;
the CLI takes `--cache DIR`).  A layer is extracted once into a temporary directory of
the store while its diff_id is computed, and renamed into place only when it matches.
"""

import errno
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile

from pyrunc.errors import ImageError, KernelError
from pyrunc.linux import kernel

# Annotations name typing's types only for mypy (quoted): importing typing costs.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Protocol

    from pyrunc.linux.kernel import Kernel

    class Readable(Protocol):
        """A binary stream as the layer code reads one: read(n) only."""

        def read(self, n: int = -1, /) -> bytes: ...


DEFAULT_ROOT = "/var/lib/pyrunc/images"

# Media type -> compression.  None in the map: plain tar.
_COMPRESSION = {
    "application/vnd.oci.image.layer.v1.tar": None,
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": None,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar": None,
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
    "application/x-tar": None,
    "application/tar": None,
}
# docker-save archives name layers by file, not media type: None means "look at the bytes".
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"))

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE = "trusted.overlay.opaque"

_CHUNK = 1 << 20
# How much of the decompressed stream to keep behind: tarfile reads ahead by one record
# (10 KiB), and the end-of-archive block must still be here when it stops.
_TAIL = 1 << 16
_BENEATH = kernel.RESOLVE_BENEATH | kernel.RESOLVE_NO_SYMLINKS | kernel.RESOLVE_NO_MAGICLINKS


class _Member(Exception):
    """A member-level refusal; extract() adds the layer and member names."""


def _clean(name: str) -> str:
    """The member path relative to the layer root, `..` clamped at the root ("" is the root)."""
    return posixpath.normpath("/" + name).lstrip("/").rstrip("/")


# --- reading the archive ------------------------------------------------------


class _Prefixed:
    """A stream with its first bytes (read to sniff the format) put back in front."""

    def __init__(self, head: bytes, rest: "Readable") -> None:
        self.head, self.rest = head, rest

    def read(self, n: int | None = -1) -> bytes:
        if self.head:
            if n is None or n < 0:
                data, self.head = self.head + self.rest.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            return data
        return self.rest.read(-1 if n is None else n)


class _Digesting:
    """The decompressed layer as tarfile reads it: hashed (its diff_id), counted, and its
    last bytes kept so that the block where tarfile stopped can be checked."""

    def __init__(self, raw: "Readable") -> None:
        self.raw = raw
        self.hash = hashlib.sha256()
        self.pos = 0
        self.tail = b""

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.pos += len(data)
        self.tail = data[-_TAIL:] if len(data) >= _TAIL else (self.tail + data)[-_TAIL:]
        return data

    def block_at(self, offset: int) -> bytes:
        """The 512 bytes at `offset`, read on if needed; shorter when the stream ends."""
        while self.pos < offset + tarfile.BLOCKSIZE:
            if not self.read(_CHUNK):
                break
        start = offset - (self.pos - len(self.tail))
        if start < 0:  # cannot happen with tarfile's read-ahead; refuse rather than guess
            return b""
        return self.tail[start : start + tarfile.BLOCKSIZE]

    def drain(self) -> str:
        while self.read(_CHUNK):
            pass
        return "sha256:" + self.hash.hexdigest()


def _decompressed(stream: "Readable", media_type: str | None, where: str) -> "Readable":
    kind = _COMPRESSION.get(media_type, "?") if media_type else "sniff"
    if kind == "?":
        raise ImageError(f"{where}: unsupported layer media type {media_type!r}")
    if kind == "sniff":
        head = stream.read(4)
        kind = next((k for magic, k in _MAGIC if head.startswith(magic)), None)
        stream = _Prefixed(head, stream)
    if kind == "gzip":
        import gzip

        gz: Readable = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[call-overload]  # read() is all it uses
        return gz
    if kind == "zstd":
        try:
            import zstandard
        except ImportError:
            raise ImageError(
                f"{where}: media type {media_type or 'tar+zstd'} needs the Python "
                f"module zstandard: install it (pip install zstandard)"
            ) from None
        reader: Readable = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True, closefd=False)
        return reader
    return stream


def _is_decode_error(e: BaseException) -> bool:
    if isinstance(e, (EOFError, tarfile.TarError)):
        return True
    import zlib

    if isinstance(e, zlib.error) or type(e).__name__ in ("BadGzipFile", "ZstdError"):
        return True
    return False


# --- paths inside dest ----------------------------------------------------------


def _open_dir(k: "Kernel", root_fd: int, parts: list[str], create: bool) -> int:
    """An O_PATH fd of the directory `parts` beneath root_fd, no symlink followed; missing
    directories created (0755, root's) when `create`."""
    if not parts:
        return os.dup(root_fd)
    try:
        fd: int = k.openat2(root_fd, "/".join(parts), os.O_PATH | os.O_DIRECTORY, _BENEATH)
        return fd
    except KernelError as e:
        if e.errno == errno.ELOOP or e.errno == errno.ENOTDIR:
            raise _Member("a parent is a symlink or not a directory") from None
        if e.errno == errno.EXDEV:
            raise _Member("a parent is a mount point") from None
        if e.errno == errno.ENOSYS:  # no openat2 (kernel < 5.6): walk component by component
            pass
        elif e.errno != errno.ENOENT or not create:
            raise
    fd = os.dup(root_fd)
    try:
        for name in parts:
            try:
                nfd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(name, 0o755, dir_fd=fd)
                nfd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except (NotADirectoryError, OSError) as e:
                if e.errno in (errno.ENOTDIR, errno.ELOOP):
                    raise _Member("a parent is a symlink or not a directory") from None
                raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(dir_fd: int, name: str) -> None:
    """Remove whatever `name` is (a directory with its contents), never following links."""
    st = _lstat(dir_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based on Linux: symlinks inside are not followed
    else:
        os.unlink(name, dir_fd=dir_fd)


def _is_whiteout(st: os.stat_result | None) -> bool:
    return st is not None and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _set_opaque(dir_fd: int, name: str) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        _set_xattrs(fd, [(OVERLAY_OPAQUE, b"y")])
    finally:
        os.close(fd)


def _set_xattrs(fd: int, xattrs: "Iterable[tuple[str, bytes]]") -> None:
    for name, value in xattrs:
        try:
            os.setxattr(fd, name, value)
        except OSError as e:
            raise _Member(f"set xattr {name}: {os.strerror(e.errno or 0).lower()}") from None


# --- extract ----------------------------------------------------------------------


class _Extractor:
    def __init__(self, dest_fd: int, same_owner: bool, max_member_size: int | None, k: "Kernel") -> None:
        self.kernel = k
        self.root = dest_fd
        self.same_owner = same_owner
        self.max_size = max_member_size
        self.files: set[str] = set()  # non-directories extracted in this layer: hard link targets
        self.dirs: dict[str, int] = {}  # path -> mtime in ns, applied last (children change it)
        self.skipped: list[str] = []

    def member(self, tf: tarfile.TarFile, m: tarfile.TarInfo, path: str) -> None:
        parts = path.split("/") if path else []
        base = parts[-1] if parts else ""
        if any(p.startswith(WHITEOUT_PREFIX * 2) for p in parts[:-1]):
            # aufs' own directories (.wh..wh.plnk, .wh..wh.orph): Docker drops them too
            self.skipped.append(f"{path}: aufs metadata, not part of the image")
            return
        if base == OPAQUE:
            return self.opaque(parts[:-1])
        if base.startswith(WHITEOUT_PREFIX):
            return self.whiteout(parts[:-1], base[len(WHITEOUT_PREFIX) :])
        if not parts:
            if not m.isdir():
                raise _Member("the layer root can only be a directory")
            return self.directory(None, "", m, path)
        if m.ischr() or m.isblk():
            self.skipped.append(f"{path}: device node not created (a layer may not add devices)")
            return
        if not (m.isreg() or m.isdir() or m.issym() or m.islnk() or m.isfifo()):
            self.skipped.append(f"{path}: unsupported tar entry type {m.type!r}")
            return
        pfd = _open_dir(self.kernel, self.root, parts[:-1], create=True)
        try:
            if m.isdir():
                return self.directory(pfd, base, m, path)
            _remove(pfd, base)  # a later entry replaces an earlier one, as tar does
            self.files.discard(path)
            if m.isreg():
                self.regular(tf, pfd, base, m)
            elif m.issym():
                os.symlink(m.linkname, base, dir_fd=pfd)
                self.metadata(pfd, base, m, chmod=False)
            elif m.islnk():
                self.hardlink(pfd, base, m)
            else:
                os.mkfifo(base, 0o600, dir_fd=pfd)
                self.metadata(pfd, base, m)
            self.files.add(path)
        finally:
            os.close(pfd)

    def whiteout(self, parent: list[str], name: str) -> None:
        if name in ("", ".", "..") or name.startswith(WHITEOUT_PREFIX):
            # `.wh..wh.*` other than the opaque marker are aufs internals: Docker skips them too
            self.skipped.append(f"{'/'.join(parent + [WHITEOUT_PREFIX + name])}: not a whiteout pyrunc knows")
            return
        pfd = _open_dir(self.kernel, self.root, parent, create=True)
        try:
            st = _lstat(pfd, name)
            if st is None:
                self.kernel.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd, what=f"whiteout {name}")
            elif stat.S_ISDIR(st.st_mode):
                # the whiteout deletes the lower layers' directory, this layer's replaces it
                _set_opaque(pfd, name)
            # a non-directory of this same layer already hides the lower layers' entry
        finally:
            os.close(pfd)

    def opaque(self, parts: list[str]) -> None:
        pfd = _open_dir(self.kernel, self.root, parts, create=True)
        try:
            _set_opaque(pfd, ".")
        finally:
            os.close(pfd)

    def directory(self, pfd: int | None, base: str, m: tarfile.TarInfo, path: str) -> None:
        if pfd is None:
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.root)
        else:
            st = _lstat(pfd, base)
            if st is not None and not stat.S_ISDIR(st.st_mode):
                _remove(pfd, base)
                self.files.discard(path)
            if st is None or not stat.S_ISDIR(st.st_mode):
                os.mkdir(base, 0o700, dir_fd=pfd)
            if _is_whiteout(st):  # see whiteout(): this layer's directory replaces the lower ones'
                _set_opaque(pfd, base)
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            self.fd_metadata(fd, m)
        finally:
            os.close(fd)
        self.dirs[path] = _ns(m.mtime)

    def regular(self, tf: tarfile.TarFile, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        if self.max_size is not None and m.size > self.max_size:
            raise _Member(f"{m.size} bytes, more than the limit of {self.max_size}")
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        try:
            src = tf.extractfile(m)
            if src is None:  # not for a regular member, which this is
                raise tarfile.ReadError(f"no data for {m.name!r}")
            left = m.size
            while left > 0:
                data = src.read(min(_CHUNK, left))
                if not data:
                    raise tarfile.ReadError("unexpected end of data")
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                left -= len(data)
            self.fd_metadata(fd, m)
            os.utime(fd, ns=(_ns(m.mtime), _ns(m.mtime)))
        finally:
            os.close(fd)

    def hardlink(self, pfd: int, base: str, m: tarfile.TarInfo) -> None:
        target = _clean(m.linkname)
        if target not in self.files:
            raise _Member(f"hard link to {m.linkname!r}, which is not a file of this layer")
        tparts = target.split("/")
        tfd = _open_dir(self.kernel, self.root, tparts[:-1], create=False)
        try:
            if _is_whiteout(_lstat(tfd, tparts[-1])):
                raise _Member(f"hard link to {m.linkname!r}, a whiteout")
            os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def fd_metadata(self, fd: int, m: tarfile.TarInfo) -> None:
        # chown first: it clears setuid/setgid, which chmod then sets
        if self.same_owner:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)
        _set_xattrs(fd, _pax_xattrs(m))

    def metadata(self, pfd: int, base: str, m: tarfile.TarInfo, chmod: bool = True) -> None:
        if self.same_owner:
            os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            os.chmod(base, m.mode & 0o7777, dir_fd=pfd, follow_symlinks=False)
        os.utime(base, ns=(_ns(m.mtime), _ns(m.mtime)), dir_fd=pfd, follow_symlinks=False)

    def finish(self) -> None:
        # deepest first, so that setting a directory's time does not disturb its parent's
        for path in sorted(self.dirs, key=lambda p: -p.count("/") - bool(p)):
            parts = path.split("/") if path else []
            try:
                fd = _open_dir(self.kernel, self.root, parts, create=False)
            except (_Member, OSError):
                continue  # replaced by a non-directory later in the layer
            try:
                os.utime(fd_path(fd), ns=(self.dirs[path], self.dirs[path]))
            finally:
                os.close(fd)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _ns(mtime: float) -> int:
    return int(mtime * 1_000_000_000)


def _pax_xattrs(m: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in m.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr.") :]
        if name.startswith("user.") or name == "security.capability":
            out.append((name, value.encode("utf-8", "surrogateescape")))
    return out


def extract(
    stream: "Readable",
    media_type: str | None,
    dest: str,
    *,
    layer: str | None = None,
    diff_id: str | None = None,
    same_owner: bool | None = None,
    max_member_size: int | None = None,
    k: "Kernel",
) -> list[str]:
    """Unpack one layer blob (a binary file object) into the empty directory `dest`, in
    overlayfs form (whiteouts as char devices 0/0, opaque directories by xattr).

    `media_type` is one of the OCI/Docker layer types (None: plain tar, gzip or zstd told
    by its first bytes).  `layer` names the layer in errors (default: diff_id).  With
    `diff_id`, the sha256 of the uncompressed tar must equal it.  `same_owner` (default:
    when root) sets owners from the archive.  `max_member_size` refuses larger files.
    `k`: the command's kernel.Kernel.  Returns one line per member skipped on purpose (device nodes, unknown entries).
    Raises ImageError `layer L: member "M": why` on anything refused; `dest` may then hold
    part of the layer (Store removes it).
    """
    where = f"layer {layer or diff_id or '(unnamed)'}"
    if same_owner is None:
        same_owner = os.geteuid() == 0
    dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    ex = _Extractor(dest_fd, same_owner, max_member_size, k)
    name = None
    try:
        reader = _Digesting(_decompressed(stream, media_type, where))
        try:
            tf = tarfile.open(fileobj=reader, mode="r|", errorlevel=2)  # type: ignore[call-overload]  # read() only
            for m in tf:
                name = m.name
                try:
                    ex.member(tf, m, _clean(m.name))
                except _Member as e:
                    raise ImageError(f'{where}: member "{name}": {e}') from None
                except (KernelError, OSError) as e:
                    if _is_decode_error(e):
                        raise
                    raise ImageError(f'{where}: member "{name}": {_why(e)}') from None
            # tarfile also stops, silently, at a bad or missing header: insist on the zero
            # block that ends a tar archive
            block = reader.block_at(tf.offset)
            after = f' after member "{name}"' if name is not None else ""
            if len(block) < tarfile.BLOCKSIZE:
                raise ImageError(f"{where}: archive truncated{after} (no end-of-archive marker)")
            if block.count(0) != tarfile.BLOCKSIZE:
                raise ImageError(f"{where}: unreadable tar header{after} at offset {tf.offset}")
            got = reader.drain()
        except ImageError:
            raise
        except Exception as e:
            if not _is_decode_error(e):
                raise
            member = f' member "{name}":' if name is not None else ""
            raise ImageError(f"{where}:{member} unreadable or truncated archive: {e}") from None
        if diff_id is not None and got != diff_id:
            raise ImageError(f"{where}: uncompressed content is {got}, not the diff_id {diff_id}")
        ex.finish()
    finally:
        os.close(dest_fd)
    return ex.skipped


def _why(e: OSError) -> str:
    if isinstance(e, KernelError):
        return str(e)
    return os.strerror(e.errno).lower() if e.errno else str(e)


# --- flatten ----------------------------------------------------------------------


def flatten(k: "Kernel", layer_dirs: "Iterable[str]", dest: str) -> None:
    """Apply layers (overlay-form directories, lowest first) into the directory `dest`, as
    overlayfs would show them stacked: a whiteout (char device 0/0) deletes its path, an
    opaque directory first empties dest's directory, other entries replace or merge.
    Modes, owners, mtimes, symlinks, FIFOs, xattrs (not trusted.overlay.*) and hard links
    between files of the same layer are kept.  No symlink is followed, in the layers or
    in dest."""
    dest_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for layer in layer_dirs:
            src_fd = os.open(layer, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                _Flattener(layer, dest_fd, k).merge(src_fd, dest_fd, "")
            finally:
                os.close(src_fd)
    finally:
        os.close(dest_fd)


class _Flattener:
    def __init__(self, layer: str, dest_fd: int, k: "Kernel") -> None:
        self.kernel = k
        self.layer = layer
        self.dest = dest_fd
        self.links: dict[tuple[int, int], str] = {}  # (dev, ino) of a multiply-linked file -> its dest path

    def merge(self, src_fd: int, dst_fd: int, rel: str) -> None:
        for entry in sorted(os.listdir(src_fd)):
            path = f"{rel}/{entry}" if rel else entry
            try:
                self.entry(src_fd, dst_fd, entry, path)
            except OSError as e:
                raise ImageError(f'flatten layer {self.layer}: "{path}": {_why(e)}') from None

    def entry(self, src_fd: int, dst_fd: int, name: str, path: str) -> None:
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        if _is_whiteout(st):
            _remove(dst_fd, name)
            return
        if stat.S_ISDIR(st.st_mode):
            return self.directory(src_fd, dst_fd, name, path, st)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
            return  # devices and sockets never come from extract()
        _remove(dst_fd, name)
        if stat.S_ISREG(st.st_mode):
            if st.st_nlink > 1 and self.link((st.st_dev, st.st_ino), dst_fd, name):
                return
            self.regular(src_fd, dst_fd, name, st)
            if st.st_nlink > 1:
                self.links[(st.st_dev, st.st_ino)] = path
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)
        else:
            os.mkfifo(name, 0o600, dir_fd=dst_fd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst_fd, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)

    def link(self, key: tuple[int, int], dst_fd: int, name: str) -> bool:
        first = self.links.get(key)
        if first is None:
            return False
        parts = first.split("/")
        try:
            fd = _open_dir(self.kernel, self.dest, parts[:-1], create=False)
        except (_Member, OSError):
            return False  # its directory was replaced meanwhile: copy instead
        try:
            os.link(parts[-1], name, src_dir_fd=fd, dst_dir_fd=dst_fd, follow_symlinks=False)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def regular(self, src_fd: int, dst_fd: int, name: str, st: os.stat_result) -> None:
        sfd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
        try:
            dfd = os.open(
                name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst_fd
            )
            try:
                _copy_data(sfd, dfd, st.st_size)
                _copy_meta(sfd, dfd, st)
                os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    def directory(self, src_fd: int, dst_fd: int, name: str, path: str, st: os.stat_result) -> None:
        dst = _lstat(dst_fd, name)
        if dst is not None and not stat.S_ISDIR(dst.st_mode):
            _remove(dst_fd, name)
            dst = None
        if dst is None:
            os.mkdir(name, 0o700, dir_fd=dst_fd)
        sfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd)
        try:
            dfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dst_fd)
            try:
                if dst is not None and _get_xattr(sfd, OVERLAY_OPAQUE) == b"y":
                    for child in os.listdir(dfd):
                        _remove(dfd, child)
                _copy_meta(sfd, dfd, st)
                self.merge(sfd, dfd, path)
                os.utime(dfd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)


def _get_xattr(fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(fd, name)
    except OSError:
        return None


def _copy_data(sfd: int, dfd: int, size: int) -> None:
    left = size
    while left > 0:
        try:
            n = os.copy_file_range(sfd, dfd, min(left, 1 << 30))
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            n = None
        if n is None:  # no copy_file_range here: plain chunks
            while True:
                data = os.read(sfd, _CHUNK)
                if not data:
                    return
                view = memoryview(data)
                while view:
                    view = view[os.write(dfd, view) :]
        if n == 0:
            return
        left -= n


def _copy_meta(sfd: int, dfd: int, st: os.stat_result) -> None:
    os.fchown(dfd, st.st_uid, st.st_gid)
    os.fchmod(dfd, stat.S_IMODE(st.st_mode))
    try:
        names = os.listxattr(sfd)
    except OSError:
        names = []
    for name in names:
        if name.startswith("trusted.overlay."):
            continue
        value = _get_xattr(sfd, name)
        if value is not None:
            os.setxattr(dfd, name, value)


# --- the store ------------------------------------------------------------------


class Store:
    """Layers extracted once, by diff_id, under `<root>/layers/sha256/<hex>` (overlay form).

    The root is created 0700: layers hold images' setuid files, which no other user of
    the host should reach.
    """

    def __init__(self, k: "Kernel", root: str = DEFAULT_ROOT) -> None:
        self.kernel = k
        self.root = root
        self.dir = os.path.join(root, "layers", "sha256")

    def _path(self, diff_id: str | None) -> str:
        algo, _, hexd = (diff_id or "").partition(":")
        if algo != "sha256" or len(hexd) != 64 or any(c not in "0123456789abcdef" for c in hexd):
            raise ImageError(f"layer {diff_id}: not a sha256 diff_id")
        return os.path.join(self.dir, hexd)

    def layer(self, diff_id: str) -> str | None:
        """The directory of the layer with this diff_id, or None when not stored."""
        path = self._path(diff_id)
        return path if os.path.isdir(path) else None

    def add(self, diff_id: str, stream: "Readable", media_type: str | None) -> str:
        """Extract the layer blob `stream` (if not stored yet) and return its directory.

        The uncompressed tar must hash to diff_id; on any failure nothing is left in the
        store (the temporary directory is removed).
        """
        path = self._path(diff_id)
        if os.path.isdir(path):
            return path
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=self.dir)
        try:
            os.chmod(tmp, 0o755)  # a layer root without a "./" entry is a plain 0755 dir
            extract(stream, media_type, tmp, layer=diff_id, diff_id=diff_id, k=self.kernel)
            try:
                os.rename(tmp, path)
            except OSError as e:
                if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                shutil.rmtree(tmp)  # stored meanwhile by another pyrunc: same content
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path
