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
    """runc's rule: letters, digits and `_ + , - .`; never `.` or `..` (they name a path);
    at most 255 characters, the longest name of a directory."""
    if not cid:
        raise StateError("container id cannot be empty")
    if not _valid_id(cid):
        raise StateError(f"invalid container id {cid!r}: use letters, digits and _ + , - . only")
    if len(cid) > _NAME_MAX:
        raise StateError(f"invalid container id {cid[:20]!r}...: {len(cid)} characters long; "
                         f"at most {_NAME_MAX}")


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


class CorruptState(StateError):
    """A state.json that cannot be read, is not JSON or is not of the shape pyrunc writes
    (a disk error, an edit, a copy cut short).  `partial` holds the fields that are still
    of their type (a delete -f cleans what they name), None when nothing could be read."""

    def __init__(self, cid, path, why, partial=None):
        self.partial = partial
        super().__init__(f"container {cid}: corrupt state file {path}: {why}")


def read_state_file(path, cid):
    """The container's state; None when it has no state.json (deleted, or never written
    whole); CorruptState when its state.json is unreadable or not pyrunc's."""
    name = f"{path}/{STATE_FILE}"
    try:
        st = jsonc.loads(read_whole(name))
    except FileNotFoundError:
        return None
    except OSError as e:  # a directory in its place, an I/O error
        raise CorruptState(cid, name, os.strerror(e.errno).lower() if e.errno else str(e)) from None
    except (ValueError, RecursionError) as e:
        raise CorruptState(cid, name, jsonc.problem(e), _partial(_salvage(name), path)) from None
    if not isinstance(st, dict):
        raise CorruptState(cid, name, "not a JSON object")
    partial = _partial(st, path)
    for key in _REQUIRED:
        if key not in st:
            raise CorruptState(cid, name, f"no {key!r}", partial)
    for key in st:
        if key not in partial:
            raise CorruptState(cid, name, f"{key!r} is not what pyrunc writes: {_short(st[key])}", partial)
    if ("pid" in st) != ("pid_start" in st):
        raise CorruptState(cid, name, "a 'pid' without its 'pid_start'", partial)
    return st


def _partial(st, path):
    """The fields of a state that are still of their shape.  The mount point of a
    host-namespace rootfs is the container's own, in its state directory (lifecycle's
    HOST_ROOT): delete detaches every new mount under it, so no other path is taken."""
    if not isinstance(st, dict):
        return None
    part = {k: v for k, v in st.items() if k not in _FIELDS or _FIELDS[k](v)}
    if "host_mounts" in part and part["host_mounts"]["root"] != os.path.realpath(f"{path}/rootfs"):
        del part["host_mounts"]
    if "intel_rdt" in part and not _rdt_shape(part["intel_rdt"], os.path.basename(path)):
        del part["intel_rdt"]
    return part


def _rdt_shape(v, cid):
    """resctrl.apply's record: the group the root or a group in it; delete removes only
    the container's own (named for its id) and its monitoring group."""
    if v is None:
        return True
    if type(v) is not dict or type(v.get("remove_group")) is not bool:
        return False
    root, group, mon = v.get("root"), v.get("group"), v.get("mon_group")
    if not _cgroup_paths([root, group]) or not (group == root or os.path.dirname(group) == root):
        return False
    if v["remove_group"] and group != f"{root}/{cid}":
        return False
    return mon is None or mon == f"{group}/mon_groups/{cid}"


def _salvage(name):
    """What a state.json cut short still says: its text up to the last complete member,
    its open objects and arrays closed.  None when nothing of it parses.  (A number cut
    short reads as a smaller one: a start time then no longer matches, nothing is killed.)"""
    try:
        text = read_whole(name).decode("utf-8", "replace")
    except OSError:
        return None
    cuts, stack, in_string, escaped = [], [], False, False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            cuts.append((i + 1, "".join(reversed(stack))))
        elif ch in "}]":
            if not stack:
                break
            stack.pop()
        elif ch == ",":
            cuts.append((i, "".join(reversed(stack))))
        if len(stack) > 64:  # far deeper than any state pyrunc writes
            break
    if not in_string and stack:  # cut between members, or in a number or a word
        cuts.append((len(text), "".join(reversed(stack))))
    for at, closers in reversed(cuts[-200:]):
        try:
            return jsonc.loads(text[:at] + closers)
        except (ValueError, RecursionError):
            continue
    return None


def _short(value):
    try:
        text = jsonc.dumps(value)
    except (ValueError, RecursionError):
        return f"a JSON {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


# The shape of what lifecycle.create writes; each check takes the value of one field.
def _is(*types):
    return lambda v: isinstance(v, types) and not (isinstance(v, bool) and bool not in types)


def _strings(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _str_map(v):
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def _hooks_shape(v):
    return isinstance(v, dict) and all(
        isinstance(hooks, list) and all(isinstance(h, dict) and isinstance(h.get("path"), str)
                                        and _strings(h.get("args", [])) and _strings(h.get("env", []))
                                        and _is(int)(h.get("timeout", 1)) for h in hooks)
        for hooks in v.values())


def _cgroup_paths(paths):
    """Cgroup paths as create saves them: absolute, normalized, never a hierarchy's root
    (delete removes the cgroups below the one it names).  String tests on them all at
    once, not normpath on each: `list` reads a thousand states of a dozen paths."""
    if not all(type(p) is str and p for p in paths):  # "" would name the hierarchy's root
        return False
    if not paths:
        return True
    text = "\0" + "/\0".join(paths) + "/"  # each path as NUL, path, slash
    return (text.count("\0") == len(paths) and text.count("\0/") == len(paths)
            and "//" not in text and "/./" not in text and "/../" not in text)


def _hierarchies(names):
    return "/" not in "".join(names) and not {"", ".", ".."}.intersection(names)


def _cgroup_shape(v):
    """A container's cgroup may be a hierarchy's root (cgroupsPath "/") only when create
    made nothing: what it made ends with the container's own, which delete removes with
    everything below it."""
    if type(v) is not dict:
        return False
    if v.get("version") == 2:
        made = v.get("made")
        if type(made) is not list:
            return False
        if not made:
            return v.get("dir") == "/" or _cgroup_paths([v.get("dir")])
        return v.get("dir") == made[-1] and _cgroup_paths(made)
    dirs, made, ctrls = v.get("dirs"), v.get("made"), v.get("controllers")
    if v.get("version") != 1 or type(dirs) is not dict or type(made) is not dict or type(ctrls) is not dict \
            or type(v.get("hybrid", False)) is not bool:
        return False
    paths = [d for d in dirs.values() if d != "/"]
    for lists in (made, ctrls):
        for items in lists.values():
            if type(items) is not list:
                return False
    for name, items in made.items():
        if items and dirs.get(name) != items[-1]:
            return False
        paths += items
    return (_cgroup_paths(paths) and _hierarchies([*dirs, *made])
            and all(type(c) is str for items in ctrls.values() for c in items))


def _host_mounts_shape(v):
    return (isinstance(v, dict) and isinstance(v.get("root"), str) and isinstance(v.get("before"), list)
            and all(_is(int)(x) for x in v["before"]))


_PID_MAX = 1 << 22  # the kernel's PID_MAX_LIMIT
_FIELDS = {
    "id": _is(str), "bundle": _is(str), "rootfs": _is(str), "created": _is(str),
    "started": _is(bool), "paused": _is(bool), "annotations": _str_map, "hooks": _hooks_shape,
    "cgroup_path": _is(str), "systemd_cgroup": _is(bool), "rootless": _is(str),
    "notify_socket": _is(str), "cgroup": _cgroup_shape, "host_mounts": _host_mounts_shape,
    "pid": lambda v: _is(int)(v) and 0 < v <= _PID_MAX,
    # None: the init gone before create read its start time (it is then stopped)
    "pid_start": lambda v: v is None or (_is(int)(v) and 0 <= v < 1 << 63),
}
_REQUIRED = ("id", "bundle")


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
            if self.stateless(cid):
                raise StateError(f"container {cid}: no {STATE_FILE} in its directory {path}")
            raise StateError(f"container {cid} does not exist")
        return st

    def stateless(self, cid):
        """Whether the container's directory is there without a state.json, and no command
        holds its lock: no delete is removing it, so it stays broken.  (A create makes
        state.json before the directory has its name.)"""
        import fcntl
        try:
            fd = os.open(os.path.join(self.root, cid), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # locked: a delete under way
        finally:
            os.close(fd)
        return not os.path.exists(os.path.join(self.root, cid, STATE_FILE))

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
