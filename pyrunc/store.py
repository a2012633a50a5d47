"""The state store under --root: one directory per container, one lock per container.

Layout: <root>/<id>/state.json (written atomically: temp file, rename), the validated
config.json (lifecycle.CONFIG_COPY) and <root>/<id>/start.sock while the container is
created but not started.  Nothing is fsynced: the root is a tmpfs on real hosts (/run),
and a container's state cannot outlive a reboot anyway (its processes, cgroups and mounts
do not); the rename alone gives readers the old file or the new one, whole.  Every command
that changes a container holds flock(LOCK_EX) on its directory, so commands racing on
one id are serialized while commands on different ids run in parallel.

A new container's directory is built and locked under a temporary name that is not a
valid id, then renamed into place: no other command can ever see it unlocked and
empty, and of two creates racing on one id exactly one wins the rename.  Its first files
are written in place, before that rename: nobody can see them before they are whole.
"""

# Not os: its import costs `state` and `list` a fifth of their time.  The read paths and
# the state's rewrite use posix alone; create's and delete's paths import os (and errno,
# whose table of names costs a light command more than its one use) where they need it.
import posix

from pyrunc import getenv, jsonc
from pyrunc.errors import NoSuchContainer, StateError
from pyrunc.linux.procfs import read_whole

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

DEFAULT_ROOT = "/run/pyrunc"
ROOTLESS_ROOT = "pyrunc"  # under $XDG_RUNTIME_DIR
STATE_FILE = "state.json"

# runc's rule, `^[\w+-\.]+$` in Go: the class holds the range `+`..`.`, so `,` is valid too.
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+,-.")
_NAME_MAX = 255
_TMP_PREFIX = "~creating~"  # `~` is not valid in an id, so ids() never lists these


def check_id(cid: str) -> None:
    """runc's rule: letters, digits and `_ + , - .`; never `.` or `..` (they name a path);
    at most 255 characters, the longest name of a directory."""
    if not cid:
        raise StateError("container id cannot be empty")
    if not _valid_id(cid):
        raise StateError(f"invalid container id {cid!r}: use letters, digits and _ + , - . only")
    if len(cid) > _NAME_MAX:
        raise StateError(f"invalid container id {cid[:20]!r}...: {len(cid)} characters long; at most {_NAME_MAX}")


def _valid_id(name: str) -> bool:
    return bool(name) and _ID_CHARS.issuperset(name) and name not in (".", "..")


_in_user_namespace: bool | None = None  # read once: a create asks in the parent and the child


def in_user_namespace() -> bool:
    """Whether this process runs in a user namespace other than the initial one, whose
    uid_map is the identity of every id (the test runc makes).  The runtime's own: its
    children that make a user namespace of their own know that they did."""
    global _in_user_namespace
    if _in_user_namespace is None:
        try:
            with open("/proc/self/uid_map", "rb") as f:
                _in_user_namespace = f.read().split() != [b"0", b"0", b"4294967295"]
        except FileNotFoundError:  # a kernel without user namespaces
            _in_user_namespace = False
    return _in_user_namespace


def uses_xdg_runtime_dir() -> bool:
    """runc's rule for the default state root: $XDG_RUNTIME_DIR when it is set and the
    runtime is not root, or is root in a user namespace where $USER is not root (a real
    root's /run/user/0 is not taken, so root keeps seeing the containers it made)."""
    if not getenv("XDG_RUNTIME_DIR"):
        return False
    if posix.geteuid() != 0:
        return True
    return in_user_namespace() and getenv("USER") != "root"


def default_root() -> str:
    """--root when not given: $XDG_RUNTIME_DIR/pyrunc (uses_xdg_runtime_dir), else
    /run/pyrunc (which a user without root cannot write: runc's answer as well)."""
    if uses_xdg_runtime_dir():
        return _join(getenv("XDG_RUNTIME_DIR"), ROOTLESS_ROOT)
    return DEFAULT_ROOT


def rootless_mode(flag: str) -> bool:
    """--rootless (lowercased): true or false as given; auto, runc's detection: not root,
    or in a user namespace."""
    if flag in ("true", "1", "t"):
        return True
    if flag in ("false", "0", "f"):
        return False
    return posix.geteuid() != 0 or in_user_namespace()


NOTIFY_DIR = "notify"  # notify.py's directory for the container's NOTIFY_SOCKET

# The newest state.json this pyrunc reads.  2: the v1 cgroup record may be compact
# (v1.py's to_dict).  A state is written with the lowest version that reads it (to_json):
# 2 only where it holds that record, else 1, so that an older pyrunc still reads every
# state it can, and names the version of those it cannot instead of calling them corrupt.
STATE_VERSION = 2


class State:
    """A container's state.json: what create wrote and later commands changed, one
    attribute per field.  Built by create (the constructor) and by `from_json` (the store's
    read, after its checks, _FIELDS, passed); `to_json` is what the store writes.
    docs/architecture.md, "State", says which command writes which field:

    version        1, or 2 once it holds a compact v1 cgroup record (to_json); 0 for a
                   state written before versions (read the same way)
    id, bundle, rootfs, created, annotations, hooks, cgroup_path   create, at once
    notify_socket  create, when the caller set NOTIFY_SOCKET (start forwards READY=1)
    host_mounts    create, for a config without a mount namespace (delete detaches them)
    cgroup         create, once it made or joined the cgroup (the manager's record)
    intel_rdt      create, for linux.intelRdt (resctrl's record)
    pid, pid_start create, once the init reported created (no pid: `creating`)
    started        create (false), start (true)
    paused         pause, resume; start when the cgroup was frozen meanwhile

    None is a field not in the file (not yet written); to_json leaves it out, so that a
    state is written back as it was read.  A version-0 state also has `systemd_cgroup` and
    `rootless`, which nothing reads: kept only to write such a state back unchanged."""

    # In the order of the file's keys: the order create adds them.
    __slots__ = (
        "version",
        "id",
        "bundle",
        "rootfs",
        "created",
        "started",
        "annotations",
        "hooks",
        "cgroup_path",
        "systemd_cgroup",
        "rootless",
        "notify_socket",
        "host_mounts",
        "cgroup",
        "intel_rdt",
        "pid",
        "pid_start",
        "paused",
    )

    version: int
    id: str
    bundle: str
    rootfs: str
    created: str
    started: bool
    annotations: "dict[str, str]"
    hooks: "dict[str, Any]"  # config.json's hooks, as given
    cgroup_path: str
    systemd_cgroup: bool | None  # version 0 only
    rootless: str | None  # version 0 only
    notify_socket: str | None
    host_mounts: "dict[str, Any] | None"  # host_mounts.record's
    cgroup: "dict[str, Any] | None"  # the cgroup manager's to_dict()
    intel_rdt: "dict[str, Any] | None"  # resctrl.apply's
    pid: int | None
    pid_start: int | None  # None with a pid: the init gone before create read it
    paused: bool | None

    def __init__(
        self,
        id: str,
        bundle: str,
        rootfs: str = "",
        created: str = "",
        annotations: "dict[str, str] | None" = None,
        hooks: "dict[str, Any] | None" = None,
        cgroup_path: str = "",
        notify_socket: str | None = None,
        *,
        version: int = 1,  # to_json writes 2 where the state needs it
        started: bool = False,
        host_mounts: "dict[str, Any] | None" = None,
        cgroup: "dict[str, Any] | None" = None,
        intel_rdt: "dict[str, Any] | None" = None,
        pid: int | None = None,
        pid_start: int | None = None,
        paused: bool | None = None,
        systemd_cgroup: bool | None = None,
        rootless: str | None = None,
    ) -> None:
        self.version = version
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.started = started
        self.annotations = {} if annotations is None else annotations
        self.hooks = {} if hooks is None else hooks
        self.cgroup_path = cgroup_path
        self.systemd_cgroup = systemd_cgroup
        self.rootless = rootless
        self.notify_socket = notify_socket or None  # an empty one is not written
        self.host_mounts = host_mounts
        self.cgroup = cgroup
        self.intel_rdt = intel_rdt
        self.pid = pid
        self.pid_start = pid_start
        self.paused = paused

    @classmethod
    def from_json(cls, doc: "dict[str, Any]") -> "State":
        """The state a checked state.json holds (or the sound part of a corrupt one: a
        field missing is its default, or None).  `list` builds a thousand: no loop."""
        st = cls.__new__(cls)
        g = doc.get
        st.version = g("version", 0)
        st.id = g("id", "")
        st.bundle = g("bundle", "")
        st.rootfs = g("rootfs", "")
        st.created = g("created", "")
        st.started = g("started", False)
        st.annotations = g("annotations") or {}
        st.hooks = g("hooks") or {}
        st.cgroup_path = g("cgroup_path", "")
        st.systemd_cgroup = g("systemd_cgroup")
        st.rootless = g("rootless")
        st.notify_socket = g("notify_socket")
        st.host_mounts = g("host_mounts")
        st.cgroup = g("cgroup")
        st.intel_rdt = g("intel_rdt")
        st.pid = g("pid")
        st.pid_start = g("pid_start")
        st.paused = g("paused")
        return st

    def to_json(self) -> "dict[str, Any]":
        """state.json's object: the fields in create's order, None ones left out (pid and
        pid_start go together: a pid_start of None is written)."""
        version = self.version
        if version == 1 and _compact_v1(self.cgroup):
            version = 2
        doc: dict[str, Any] = {"version": version} if version else {}
        doc["id"] = self.id
        doc["bundle"] = self.bundle
        doc["rootfs"] = self.rootfs
        doc["created"] = self.created
        doc["started"] = self.started
        doc["annotations"] = self.annotations
        doc["hooks"] = self.hooks
        doc["cgroup_path"] = self.cgroup_path
        for key in ("systemd_cgroup", "rootless", "notify_socket", "host_mounts", "cgroup", "intel_rdt"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        if self.pid is not None:
            doc["pid"] = self.pid
            doc["pid_start"] = self.pid_start
        if self.paused is not None:
            doc["paused"] = self.paused
        return doc

    def __eq__(self, other: object) -> bool:
        return type(other) is State and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self) -> str:
        return f"State({self.to_json()!r})"


def _compact_v1(cgroup: "dict[str, Any] | None") -> bool:
    """Whether a cgroup record is (or, the systemd driver's, holds) v1's compact one."""
    inner = cgroup.get("inner", cgroup) if cgroup else None
    return type(inner) is dict and inner.get("version") == 1 and "dirs" not in inner


class ContainerDir:
    """A container's state directory, held under an exclusive lock until closed."""

    def __init__(self, cid: str, path: str, fd: int | None) -> None:
        self.id = cid
        self.path = path
        self.fd = fd

    def file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def read_state(self) -> State | None:
        return read_state_file(self.path, self.id)

    def write_state(self, state: State) -> None:
        write_state_file(self.path, state)

    def remove(self) -> None:
        """Remove the directory and everything in it; the lock goes with the last close.
        On posix: `delete` does without os."""
        for name in posix.listdir(self.path):
            path = f"{self.path}/{name}"
            try:
                posix.unlink(path)
            except IsADirectoryError:  # the empty mount point of a host-namespace rootfs
                if name == NOTIFY_DIR:  # notify.py's: a socket at most, never a mount
                    for inner in posix.listdir(path):
                        posix.unlink(f"{path}/{inner}")
                posix.rmdir(path)
        posix.rmdir(self.path)

    def close(self) -> None:
        if self.fd is not None:
            posix.close(self.fd)
            self.fd = None

    def __enter__(self) -> "ContainerDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_atomic(path: str, data: bytes, mode: int = 0o600) -> None:
    """path holds data, whole: a temp file beside it, renamed over it.  No fsync (the
    module's docstring): it cost a disk flush per write and protected nothing that
    survives a reboot.  On posix: `start` writes its state without importing os."""
    tmp = f"{path}.{posix.urandom(8).hex()}.tmp"
    fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, mode)
    try:
        _write_all(fd, data)
    except BaseException:
        posix.close(fd)
        posix.unlink(tmp)
        raise
    posix.close(fd)
    posix.rename(tmp, path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[posix.write(fd, view) :]


def _write_new(path: str, data: bytes) -> None:
    """A new file in a directory nobody sees yet (create's, before its rename): in place."""
    fd = posix.open(path, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, data)
    finally:
        posix.close(fd)


def write_state_file(dirpath: str, state: State) -> None:
    write_atomic(f"{dirpath}/{STATE_FILE}", jsonc.dumps(state.to_json()).encode())


class CorruptState(StateError):
    """A state.json that cannot be read, is not JSON or is not of the shape pyrunc writes
    (a disk error, an edit, a copy cut short).  `partial` is a State of the fields that
    are still of their shape, each other field its default or None, as in a state where it
    was never written (a delete -f cleans what it names, through delete's own code); None
    when nothing could be read."""

    def __init__(self, cid: str, path: str, why: str, partial: "dict[str, Any] | None" = None) -> None:
        self.partial = None if partial is None else State.from_json(partial)
        super().__init__(f"container {cid}: corrupt state file {path}: {why}")


def read_state_file(path: str, cid: str, root_fd: int | None = None) -> State | None:
    """The container's state; None when it has no state.json (deleted, or never written
    whole); CorruptState when its state.json is unreadable or not pyrunc's.  root_fd: the
    state root, open (Store.open_root), path's parent: the file is opened relative to it,
    without walking the root's path again (`list` reads a thousand)."""
    name = f"{path}/{STATE_FILE}"
    try:
        st = jsonc.loads(_read_regular(name) if root_fd is None else _read_regular(f"{cid}/{STATE_FILE}", root_fd))
    except FileNotFoundError:
        return None
    except OSError as e:  # a directory in its place, an I/O error
        raise CorruptState(cid, name, posix.strerror(e.errno).lower() if e.errno else str(e)) from None
    except (ValueError, RecursionError) as e:
        raise CorruptState(cid, name, jsonc.problem(e), _partial(_salvage(name), path)) from None
    if not isinstance(st, dict):
        raise CorruptState(cid, name, "not a JSON object")
    if _sound(st, path):
        return State.from_json(st)
    partial = _fields(st, path)
    if "version" in st and "version" not in partial and type(st["version"]) is int and st["version"] > 0:
        raise CorruptState(
            cid,
            name,
            f"written by a newer pyrunc (state version {st['version']}; this one reads up to {STATE_VERSION})",
            partial,
        )
    for key in _REQUIRED:
        if key not in st:
            raise CorruptState(cid, name, f"no {key!r}", partial)
    for key in st:
        if key not in partial:
            raise CorruptState(cid, name, f"{key!r} is not what pyrunc writes: {_short(st[key])}", partial)
    if ("pid" in st) != ("pid_start" in st):
        raise CorruptState(cid, name, "a 'pid' without its 'pid_start'", partial)
    return State.from_json(st)


def _read_regular(path: str, dir_fd: int | None = None) -> bytes:
    """A regular file's bytes: a read shorter than asked for is its end (a regular file's
    reads are never short otherwise), so a state.json takes one read, not two (list
    reads a thousand)."""
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC, dir_fd=dir_fd)
    try:
        size = 65536
        data = posix.read(fd, size)
        if len(data) < size:
            return data
        chunks = [data]
        while chunk := posix.read(fd, size):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        posix.close(fd)


def _sound(st: "dict[str, Any]", path: str) -> bool:
    """Whether every field is of its shape: _partial's verdict without building a dict
    (list reads a thousand states); _partial then says what is wrong."""
    g = st.get
    if not (
        type(g("id")) is str
        and type(g("bundle")) is str
        and type(g("rootfs", "")) is str
        and type(g("created", "")) is str
        and type(g("started", False)) is bool
        and type(g("paused", False)) is bool
        and type(g("cgroup_path", "")) is str
        and type(g("systemd_cgroup", False)) is bool
        and type(g("rootless", "")) is str
        and type(g("notify_socket", "")) is str
        and _version(g("version", STATE_VERSION))
    ):
        return False
    if "pid" in st and not ("pid_start" in st and _pid(st["pid"]) and _pid_start(st["pid_start"])):
        return False
    if "pid_start" in st and "pid" not in st:
        return False
    for key in ("annotations", "hooks", "cgroup"):
        if key in st and not _FIELDS[key](st[key]):
            return False
    if "host_mounts" in st or "intel_rdt" in st:  # rare: a host-namespace rootfs, RDT
        rare: dict[str, Any] = {k: st[k] for k in ("host_mounts", "intel_rdt") if k in st}
        return len(_fields(rare, path)) == len(rare)
    return True


def _partial(st: object, path: str) -> "dict[str, Any] | None":
    """_fields of what may not be a state at all (None then)."""
    return _fields(st, path) if isinstance(st, dict) else None


def _fields(st: "dict[str, Any]", path: str) -> "dict[str, Any]":
    """The fields of a state that are still of their shape.  The mount point of a
    host-namespace rootfs is the container's own, in its state directory (lifecycle's
    HOST_NS_MOUNT_POINT): delete detaches every new mount under it, so no other path is taken."""
    import os.path  # rare fields only (_sound)

    part = {k: v for k, v in st.items() if k not in _FIELDS or _FIELDS[k](v)}
    if "host_mounts" in part and part["host_mounts"]["root"] != os.path.realpath(f"{path}/rootfs"):
        del part["host_mounts"]
    if "intel_rdt" in part and not _rdt_shape(part["intel_rdt"], os.path.basename(path)):
        del part["intel_rdt"]
    return part


def _rdt_shape(v: "Any", cid: str) -> bool:
    """resctrl.apply's record: the group the root or a group in it; delete removes only
    the container's own (named for its id) and its monitoring group."""
    if v is None:
        return True
    if type(v) is not dict or type(v.get("remove_group")) is not bool:
        return False
    root, mon = v.get("root"), v.get("mon_group")
    import os.path  # rare: a container with intel_rdt

    group: Any = v.get("group")  # a string once _cgroup_paths passes it
    if not _cgroup_paths([root, group]) or not (group == root or os.path.dirname(group) == root):
        return False
    if v["remove_group"] and group != f"{root}/{cid}":
        return False
    return mon is None or mon == f"{group}/mon_groups/{cid}"


def _salvage(name: str) -> "Any":
    """What a state.json cut short still says: its text up to the last complete member,
    its open objects and arrays closed.  None when nothing of it parses.  (A number cut
    short reads as a smaller one: a start time then no longer matches, nothing is killed.)"""
    try:
        text = read_whole(name).decode("utf-8", "replace")
    except OSError:
        return None
    cuts: list[tuple[int, str]] = []
    stack: list[str] = []
    in_string, escaped = False, False
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


def _short(value: object) -> str:
    try:
        text = jsonc.dumps(value)
    except (ValueError, RecursionError):
        return f"a JSON {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


# The shape of what lifecycle.create writes; each check takes the value of one field.
# `list` checks a thousand states: type() and str.join do the work in C where they can.
def _str(v: object) -> bool:
    return type(v) is str


def _bool(v: object) -> bool:
    return type(v) is bool


def _strings(v: "Any") -> bool:
    """A list of strings (join raises TypeError on anything else)."""
    if type(v) is not list:
        return False
    try:
        "".join(v)
    except TypeError:
        return False
    return True


def _str_map(v: "Any") -> bool:
    return type(v) is dict and _strings([*v.values()])


def _hooks_shape(v: "Any") -> bool:
    if type(v) is not dict:
        return False
    for hooks in v.values():
        if type(hooks) is not list:
            return False
        for h in hooks:
            if (
                type(h) is not dict
                or type(h.get("path")) is not str
                or not _strings(h.get("args", []))
                or not _strings(h.get("env", []))
                or type(h.get("timeout", 1)) is not int
            ):
                return False
    return True


def _cgroup_paths(paths: "Any") -> bool:
    """Cgroup paths as create saves them: absolute, normalized, never a hierarchy's root
    (delete removes the cgroups below the one it names): string tests on them all at once,
    each path between two NULs (a caller passes a set where paths repeat: v1's per
    hierarchy record)."""
    if not paths:
        return True
    try:
        text = "\0" + "\0".join(paths) + "\0"
    except TypeError:
        return False
    n = len(paths)
    return (
        text.count("\0") == n + 1  # no NUL in a path
        and text.count("\0/") == n  # each absolute, so none empty
        and "/\0" not in text  # "/", "a/"
        and "//" not in text
        # "." or ".." as a name; a name that starts with a dot is rare: one test for most
        and ("/." not in text or not ("/./" in text or "/../" in text or "/.\0" in text or "/..\0" in text))
    )


def _hierarchies(names: "Iterable[str]") -> bool:
    return "/" not in "".join(names) and not {"", ".", ".."}.intersection(names)


def _made_above(made: "Iterable[object]", own: object) -> bool:
    """What create made is the container's own cgroup or its ancestors, never a root:
    delete removes them (a create racing another for one cgroupsPath may have made only
    the parents, the other the leaf)."""
    if type(own) is not str:
        return False
    for m in made:  # a loop, not all() over a generator: a third of the time (list checks a thousand)
        if type(m) is not str or m == "/" or not (own == m or own.startswith(m + "/")):
            return False
    return True


def _own_and_made(own: "Any", made: "Any") -> bool:
    """A record of one path (v2's, v1's compact one): the cgroup and what create made of it,
    every one a path of _cgroup_paths' shape; the root only where nothing was made.  The
    own cgroup is checked too, not only through what was made above it: kill --all and
    pause act on it (`/a/..` is under `/a` as a string)."""
    if type(made) is not list:
        return False
    if not made:
        return own == "/" or _cgroup_paths([own])
    return _made_above(made, own) and _cgroup_paths([own, *made])


def _cgroup_shape(v: "Any") -> bool:
    """A container's cgroup may be a hierarchy's root (cgroupsPath "/") only when create
    made nothing; what it made is its own cgroup or an ancestor of it.  A v1 record comes
    in two forms (v1.py's to_dict): compact, one `dir` and one `made` for every hierarchy
    (`hierarchies`), checked as v2's one path is; or `dirs`, `made` and `controllers` per
    hierarchy (every state before version 2, and a cgroup whose hierarchies differ).
    Never a mix of the two."""
    if type(v) is not dict:
        return False
    if v.get("driver") == "systemd":
        return _systemd_shape(v)
    if v.get("version") == 2:
        return _own_and_made(v.get("dir"), v.get("made"))
    if v.get("version") != 1 or type(v.get("hybrid", False)) is not bool:
        return False
    if "dirs" not in v:
        return _compact_v1_shape(v)
    ctrls = v.get("controllers")
    if type(ctrls) is not dict or set(map(type, ctrls.values())) - {list}:
        return False
    try:
        "".join(map("".join, ctrls.values()))  # controller names: strings
    except TypeError:
        return False
    dirs, made = v["dirs"], v.get("made")
    if type(dirs) is not dict or type(made) is not dict or "dir" in v or "hierarchies" in v:
        return False
    checked: set[tuple[object, ...]] = set()  # v1 repeats one record per hierarchy: check it once
    for name, items in made.items():
        if type(items) is not list:
            return False
        if items:
            own = dirs.get(name)
            try:
                key = (own, *items)
                if key in checked:
                    continue
                checked.add(key)
            except TypeError:  # unhashable: not a string, so not a path
                return False
            if not _made_above(items, own):
                return False
    try:
        paths = set(dirs.values()).union(*made.values())
    except TypeError:
        return False
    paths.discard("/")  # a hierarchy's root joined, where nothing was made (checked above)
    return _cgroup_paths(paths) and _hierarchies([*dirs, *made])


def _compact_v1_shape(v: "dict[str, Any]") -> bool:
    """v1's compact record: its hierarchies by name (plain directory names; each one's
    controllers follow from it, but the unified hierarchy's, listed under `unified` when
    it is one of them), one path and one made list for them all."""
    names, unified = v.get("hierarchies"), v.get("unified", [])
    if type(names) is not list or not names or type(unified) is not list or "controllers" in v:
        return False
    try:
        if ("unified" in names) != ("unified" in v) or not _hierarchies(names):
            return False
        "".join(unified)  # controller names: strings
    except TypeError:  # not strings
        return False
    return _own_and_made(v.get("dir"), v.get("made"))


def _systemd_shape(v: "dict[str, Any]") -> bool:
    """The systemd driver's record (cgroups/systemd.py): its unit and slice by name, and
    the v1/v2 manager's record of the unit's cgroup, which ends in the unit's name (delete
    stops that unit and removes what is left of that cgroup)."""
    unit, slice_, inner = v.get("unit"), v.get("slice"), v.get("inner")
    if (
        type(unit) is not str
        or type(slice_) is not str
        or not unit.endswith((".scope", ".slice"))
        or not slice_.endswith(".slice")
        or "/" in unit + slice_
        or unit in (".scope", ".slice")
        or type(v.get("started")) is not bool
        or type(v.get("systemd", 0)) not in (int, type(None))
        or type(inner) is not dict
        or inner.get("driver") is not None
        or inner.get("version") != v.get("version")
        or not _cgroup_shape(inner)
    ):
        return False
    dirs: list[Any] = list(inner["dirs"].values()) if "dirs" in inner else [inner["dir"]]
    return all(type(d) is str and d.endswith("/" + unit) for d in dirs)


def _host_mounts_shape(v: "Any") -> bool:
    return (
        type(v) is dict
        and type(v.get("root")) is str
        and type(v.get("before")) is list
        and all(type(x) is int for x in v["before"])
    )


def _version(v: "Any") -> bool:
    return type(v) is int and 0 < v <= STATE_VERSION


_PID_MAX = 1 << 22  # the kernel's PID_MAX_LIMIT
_FIELDS: "dict[str, Callable[[Any], bool]]" = {
    "version": _version,
    "id": _str,
    "bundle": _str,
    "rootfs": _str,
    "created": _str,
    "started": _bool,
    "paused": _bool,
    "annotations": _str_map,
    "hooks": _hooks_shape,
    "cgroup_path": _str,
    "systemd_cgroup": _bool,
    "rootless": _str,  # the last two: version 0 only
    "notify_socket": _str,
    "cgroup": _cgroup_shape,
    "host_mounts": _host_mounts_shape,
    "pid": lambda v: _pid(v),
    "pid_start": lambda v: _pid_start(v),
}


def _pid(v: "Any") -> bool:
    return type(v) is int and 0 < v <= _PID_MAX


def _pid_start(v: "Any") -> bool:
    # None: the init gone before create read its start time (it is then stopped)
    return v is None or (type(v) is int and 0 <= v < 1 << 63)


_REQUIRED = ("id", "bundle")


def _lock_fd(fd: int) -> None:
    import fcntl  # here: state and list read without a lock, and without loading fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)


class Store:
    def __init__(self, root: str = DEFAULT_ROOT, sticky: bool = False) -> None:
        self.root = _absolute(root)
        # A root under $XDG_RUNTIME_DIR is made sticky, as runc makes its own: systemd's
        # tmpfiles ages out what it finds there, but never a sticky directory.
        self.sticky = sticky

    def _path(self, cid: str) -> str:
        check_id(cid)
        return _join(self.root, cid)

    def _lock(self, cid: str, path: str) -> int:
        try:
            fd = posix.open(path, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        except FileNotFoundError:
            raise NoSuchContainer(cid) from None
        _lock_fd(fd)
        # The holder before us may have deleted the container while we waited.
        if posix.fstat(fd).st_nlink == 0:
            posix.close(fd)
            raise NoSuchContainer(cid)
        return fd

    def create(self, cid: str, initial_state: State, files: "dict[str, bytes] | None" = None) -> ContainerDir:
        """Make and lock the directory of a new container, holding `initial_state` and
        `files` (name: content), all there when the directory gets its name.

        Fails with `already exists`, touching nothing, when the id is taken.
        """
        import errno
        import os

        path = self._path(cid)
        if self.sticky and not os.path.isdir(self.root):
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            os.chmod(self.root, 0o1700)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        tmp = os.path.join(self.root, f"{_TMP_PREFIX}{cid}~{os.urandom(8).hex()}")
        os.mkdir(tmp, 0o700)
        fd = None
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            _lock_fd(fd)
            # Non-empty, so that a rename onto it by a racing create fails.
            _write_new(os.path.join(tmp, STATE_FILE), jsonc.dumps(initial_state.to_json()).encode())
            for name, data in (files or {}).items():
                _write_new(os.path.join(tmp, name), data)
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

    def open(self, cid: str) -> ContainerDir:
        """Lock an existing container's directory for a command that reads or changes it."""
        path = self._path(cid)
        return ContainerDir(cid, path, self._lock(cid, path))

    def peek(self, cid: str) -> State:
        """Read a container's state without locking (for `state` and `list`)."""
        path = self._path(cid)
        st = read_state_file(path, cid)
        if st is None:
            if self.stateless(cid):
                raise StateError(f"container {cid}: no {STATE_FILE} in its directory {path}")
            raise NoSuchContainer(cid)
        return st

    def stateless(self, cid: str) -> bool:
        """Whether the container's directory is there without a state.json, and no command
        holds its lock: no delete is removing it, so it stays broken.  (A create makes
        state.json before the directory has its name.)"""
        try:
            fd = posix.open(_join(self.root, cid), posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        except OSError:
            return False
        import fcntl  # after the open: `state` or `kill` of an unknown id never loads it

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # locked: a delete under way
        finally:
            posix.close(fd)
        try:
            posix.stat(_join(self.root, cid, STATE_FILE))
        except OSError:
            return True
        return False

    def ids(self, root_fd: int | None = None) -> list[str]:
        """The valid ids in the root, sorted; root_fd: the root, open (open_root)."""
        try:
            names = posix.listdir(self.root if root_fd is None else root_fd)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise StateError(f"state root {self.root} is not a directory") from None
        return sorted(n for n in names if _valid_id(n))

    def open_root(self) -> int | None:
        """The root, open for reads relative to it (`list`'s); None when there is none."""
        try:
            return posix.open(self.root, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            raise StateError(f"state root {self.root} is not a directory") from None


def _remove_tree(path: str) -> None:
    """Remove a half-made state directory (its files only: create makes no subdirectory
    before the rename), ignoring errors as shutil.rmtree(ignore_errors=True) would."""
    import os

    try:
        for name in os.listdir(path):
            try:
                os.unlink(os.path.join(path, name))
            except OSError:
                pass
        os.rmdir(path)
    except OSError:
        pass


def _absolute(path: str) -> str:
    """os.path.abspath(path) without importing os where it is already absolute and
    normal, as --root is (the default, and every engine's)."""
    if path[:1] == "/" and "" not in (parts := path.split("/")[1:]) and "." not in parts and ".." not in parts:
        return path
    import os

    return os.path.abspath(path)


def _join(root: str, *names: str) -> str:
    """os.path.join of an absolute, normal root and plain names (no slash in them)."""
    return "/".join((root.rstrip("/"), *names))
