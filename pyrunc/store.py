"""The state store under --root: one directory per container, one lock per container.

Layout: <root>/<id>/state.json (written atomically: temp file, fsync, rename) and
<root>/<id>/start.sock while the container is created but not started.  Every command
that changes a container holds flock(LOCK_EX) on its directory, so commands racing on
one id are serialized while commands on different ids run in parallel.

A new container's directory is built and locked under a temporary name that is not a
valid id, then renamed into place: no other command can ever see it unlocked and
empty, and of two creates racing on one id exactly one wins the rename.
"""

import errno
import os

from pyrunc import jsonc
from pyrunc.errors import StateError
from pyrunc.linux.procfs import read_whole

DEFAULT_ROOT = "/run/pyrunc"
STATE_FILE = "state.json"

# runc's rule, `^[\w+-\.]+$` in Go: the class holds the range `+`..`.`, so `,` is valid too.
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+,-.")
_NAME_MAX = 255
_TMP_PREFIX = "~creating~"  # `~` is not valid in an id, so ids() never lists these


def check_id(cid):
    """runc's rule: letters, digits and `_ + , - .`; never `.` or `..` (they name a path)."""
    if not cid:
        raise StateError("container id cannot be empty")
    if not _valid_id(cid) or len(cid) > _NAME_MAX:
        raise StateError(f"invalid container id {cid!r}: use letters, digits and _ + , - . only")


def _valid_id(name):
    return bool(name) and _ID_CHARS.issuperset(name) and name not in (".", "..")


NOTIFY_DIR = "notify"  # notify.py's directory for the container's NOTIFY_SOCKET


class ContainerDir:
    """A container's state directory, held under an exclusive lock until closed."""

    def __init__(self, cid, path, fd):
        self.id = cid
        self.path = path
        self.fd = fd

    def file(self, name):
        return os.path.join(self.path, name)

    def read_state(self):
        return read_state_file(self.path, self.id)

    def write_state(self, state):
        write_state_file(self.path, state)

    def remove(self):
        """Remove the directory and everything in it; the lock goes with the last close."""
        for name in os.listdir(self.path):
            try:
                os.unlink(os.path.join(self.path, name))
            except IsADirectoryError:  # the empty mount point of a host-namespace rootfs
                if name == NOTIFY_DIR:  # notify.py's: a socket at most, never a mount
                    for inner in os.listdir(os.path.join(self.path, name)):
                        os.unlink(os.path.join(self.path, name, inner))
                os.rmdir(os.path.join(self.path, name))
        os.rmdir(self.path)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_atomic(path, data, mode=0o600):
    tmp = f"{path}.{os.urandom(8).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)


def write_state_file(dirpath, state):
    write_atomic(os.path.join(dirpath, STATE_FILE), jsonc.dumps(state).encode())


def read_state_file(path, cid):
    try:
        return jsonc.loads(read_whole(f"{path}/{STATE_FILE}"))
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise StateError(f"container {cid}: corrupt state file: {e}") from None


def _lock_fd(fd):
    import fcntl  # here: state and list read without a lock, and without loading fcntl
    fcntl.flock(fd, fcntl.LOCK_EX)


class Store:
    def __init__(self, root=DEFAULT_ROOT):
        self.root = os.path.abspath(root)

    def _path(self, cid):
        check_id(cid)
        return os.path.join(self.root, cid)

    def _lock(self, cid, path):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StateError(f"container {cid} does not exist") from None
        _lock_fd(fd)
        # The holder before us may have deleted the container while we waited.
        if os.fstat(fd).st_nlink == 0:
            os.close(fd)
            raise StateError(f"container {cid} does not exist")
        return fd

    def create(self, cid, initial_state):
        """Make and lock the directory of a new container, holding `initial_state`.

        Fails with `already exists`, touching nothing, when the id is taken.
        """
        path = self._path(cid)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        tmp = os.path.join(self.root, f"{_TMP_PREFIX}{cid}~{os.urandom(8).hex()}")
        os.mkdir(tmp, 0o700)
        fd = None
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            _lock_fd(fd)
            # Non-empty, so that a rename onto it by a racing create fails.
            write_state_file(tmp, initial_state)
            try:
                os.rename(tmp, path)
            except OSError as e:
                if e.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                    raise StateError(f"container {cid} already exists") from None
                raise
        except BaseException:
            if fd is not None:
                os.close(fd)
            _remove_tree(tmp)
            raise
        return ContainerDir(cid, path, fd)

    def open(self, cid):
        """Lock an existing container's directory for a command that reads or changes it."""
        path = self._path(cid)
        return ContainerDir(cid, path, self._lock(cid, path))

    def peek(self, cid):
        """Read a container's state without locking (for `state` and `list`)."""
        path = self._path(cid)
        st = read_state_file(path, cid)
        if st is None:
            raise StateError(f"container {cid} does not exist")
        return st

    def ids(self):
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as e:
            if e.errno == errno.ENOTDIR:
                raise StateError(f"state root {self.root} is not a directory") from None
            raise
        return sorted(n for n in names if _valid_id(n))


def _remove_tree(path):
    """Remove a half-made state directory (its files only: create makes no subdirectory
    before the rename), ignoring errors as shutil.rmtree(ignore_errors=True) would."""
    try:
        for name in os.listdir(path):
            try:
                os.unlink(os.path.join(path, name))
            except OSError:
                pass
        os.rmdir(path)
    except OSError:
        pass
