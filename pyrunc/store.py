"""The state store under --root: one directory per container, one lock per container.

Layout: <root>/<id>/state.json (written atomically: temp file, fsync, rename) and
<root>/<id>/exec.fifo while the container is created but not started.  Every command
that changes a container holds flock(LOCK_EX) on its directory, so commands racing on
one id are serialized while commands on different ids run in parallel.
"""

import errno
import fcntl
import json
import os
import re

from pyrunc.errors import StateError

DEFAULT_ROOT = "/run/pyrunc"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"

_VALID_ID = re.compile(r"^[\w+\-.]+$", re.ASCII)


def check_id(cid):
    """runc's rule: letters, digits, `_ + - .`; never `.` or `..` (they would name a path)."""
    if not cid or not _VALID_ID.match(cid) or cid in (".", ".."):
        raise StateError(f"invalid container id {cid!r}: use letters, digits and _ + - . only")


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
        write_atomic(self.file(STATE_FILE), json.dumps(state, separators=(",", ":")).encode())

    def remove(self):
        """Remove the directory and everything in it; the lock goes with the last close."""
        for name in os.listdir(self.path):
            os.unlink(os.path.join(self.path, name))
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
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def read_state_file(path, cid):
    try:
        with open(os.path.join(path, STATE_FILE), "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise StateError(f"container {cid}: corrupt state file: {e}") from None


class Store:
    def __init__(self, root=DEFAULT_ROOT):
        self.root = os.path.abspath(root)

    def _lock(self, cid, path):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise StateError(f"container {cid} does not exist") from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        # The holder before us may have deleted the container while we waited.
        if os.fstat(fd).st_nlink == 0:
            os.close(fd)
            raise StateError(f"container {cid} does not exist")
        return fd

    def create(self, cid):
        """Make and lock the directory of a new container; fails if the id is taken."""
        check_id(cid)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        path = os.path.join(self.root, cid)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise StateError(f"container {cid} already exists") from None
        return ContainerDir(cid, path, self._lock(cid, path))

    def open(self, cid):
        """Lock an existing container's directory for a command that reads or changes it."""
        check_id(cid)
        path = os.path.join(self.root, cid)
        return ContainerDir(cid, path, self._lock(cid, path))

    def peek(self, cid):
        """Read a container's state without locking (for `state` and `list`).

        Returns None while the container is still being created.
        """
        check_id(cid)
        path = os.path.join(self.root, cid)
        if not os.path.isdir(path):
            raise StateError(f"container {cid} does not exist")
        return read_state_file(path, cid)

    def ids(self):
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as e:
            if e.errno == errno.ENOTDIR:
                raise StateError(f"state root {self.root} is not a directory") from None
            raise
        return sorted(n for n in names if _VALID_ID.match(n) and n not in (".", ".."))
