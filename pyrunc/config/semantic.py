"""Checks of config.json that the JSON Schema cannot express.

Written for a document that passed the schema, so types and enums are already
right (on one that failed, validate.py first takes out what the schema flagged, and
semantic_problems skips a check that still trips); each check is a small generator of
(path parts, message) and looks only at the part of the document it is named after.
The rules come from the runtime-spec's MUST statements, from what the kernel would reject later with a vaguer error, and
from what runc refuses (written here from its documented behaviour).
"""

import os

from pyrunc.config.exec_limits import (
    PAGE_SIZE,
    PATH_MAX,
    _byte_len,
    _exec_problems,
    _path_length_problem,
    _program_problems,
    _shown,
    _string_problem,
)
from pyrunc.linux.tables import (
    CAPABILITIES,
    CAPABILITY_SETS,
    IDMAP_MOUNT_OPTIONS,
    MOUNT_PROPAGATIONS,
    PROC_NS_NAMES,
    RLIMITS,
    SECCOMP_TAKES_ERRNO,
    sysctl_name,
)

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any

    Doc = dict[str, Any]  # config.json, or a part of it, as JSON decodes it
    Parts = list[str | int]  # a path in the document: keys and indexes from its root
    Problems = Iterator[tuple[Sequence[str | int], str]]  # (path, message) of each problem found


PROPAGATION_OPTIONS = frozenset(MOUNT_PROPAGATIONS)
IDMAP_OPTIONS = frozenset(IDMAP_MOUNT_OPTIONS)

# sysctls the ipc namespace isolates (ipc_namespaces(7)); others under kernel.* are global.
IPC_SYSCTLS = frozenset(
    (
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    )
)

HOST_NAME_MAX = 64  # bytes; sethostname/setdomainname reject longer names
MAX_ID_MAP_LINES = 340  # uid_map/gid_map line limit since Linux 4.15
ID_LIMIT = 1 << 32
NO_ID = ID_LIMIT - 1  # (uid_t)-1: "leave unchanged" to setresuid/chown, refused elsewhere

# Kernel limits a hostile config could run into; each becomes an error naming its field
# here rather than a bare EINVAL, E2BIG or ENAMETOOLONG in the middle of create (PATH_MAX,
# NAME_MAX and execve's limits are exec_limits.py's, which exec checks its args with).
MOUNT_DATA_MAX = PAGE_SIZE - 1  # mount(2) copies one page of filesystem options
NGROUPS_MAX = 65536
SUN_PATH_MAX = 108  # sockaddr_un.sun_path
CGROUP_MOUNT_ALLOWANCE = 64  # room for /sys/fs/cgroup/<hierarchy>/ in front of cgroupsPath
MAJOR_MAX = (1 << 12) - 1  # dev_t: 12 bits of major, 20 of minor
MINOR_MAX = (1 << 20) - 1
SECCOMP_DATA_MAX = 65535  # SECCOMP_RET_DATA: the errno is the low 16 bits
CFS_PERIOD_RANGE = (1000, 1000000)  # cpu period and minimum quota, microseconds (1 ms .. 1 s)
CFS_QUOTA_MAX = (1 << 44) - 1  # microseconds: max_cfs_runtime
MANY_MOUNTS = 1000  # below this, fs.mount-max is not worth reading

_SEMVER = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z"
)
_CPU_LIST = r"\d+(-\d+)?(,\d+(-\d+)?)*\Z"


def _match(pattern: str, text: str) -> "re.Match[str] | None":
    # re (with enum under it) is imported only for the fields that need it: a plain
    # config never does.
    import re

    return re.match(pattern, text)


def semantic_errors(doc: "Doc", bundle_dir: str) -> list[str]:
    """Every semantic problem of a schema-valid config.json, as `path: message` lines."""
    from pyrunc.config import format_problems

    return format_problems(semantic_problems(doc, bundle_dir))


def semantic_problems(
    doc: "Doc", bundle_dir: str, schema_invalid: bool = False
) -> "list[tuple[Sequence[str | int], str]]":
    """semantic_errors as (path parts, message) pairs.  `schema_invalid`: the document
    failed the schema (validate.py has taken the flagged parts out); a check that still
    trips over a wrong type or a missing field there is skipped, keeping what it found
    before: the schema's error already says what is wrong."""
    found: list[tuple[Sequence[str | int], str]] = []
    for check in _checks_for(doc):
        try:
            for problem in check(doc, bundle_dir):
                found.append(problem)
        except (TypeError, AttributeError, KeyError, IndexError, ValueError, OverflowError, RecursionError):
            if not schema_invalid:
                raise
    return found


# The fields semantic_rare.py checks, each check doing nothing without its own field.
RARE_PROCESS_FIELDS = ("consoleSize", "ioPriority", "scheduler", "execCPUAffinity")
RARE_LINUX_FIELDS = ("timeOffsets", "personality", "netDevices", "intelRdt", "memoryPolicy")


def _checks_for(doc: "Doc") -> "tuple[Callable[[Doc, str], Problems], ...]":
    """CHECKS, and semantic_rare's when the document sets one of the fields few configs
    set: that module's import is saved on every other create."""
    try:
        process, linux = _process(doc), _linux(doc)
        rare = any(k in process for k in RARE_PROCESS_FIELDS) or any(k in linux for k in RARE_LINUX_FIELDS)
    except TypeError:  # not objects (a document that failed the schema): let the checks trip
        rare = True
    if not rare:
        return CHECKS
    from pyrunc.config import semantic_rare

    return CHECKS + semantic_rare.CHECKS


# -- helpers -----------------------------------------------------------------


def _linux(doc: "Doc") -> "Doc":
    return doc.get("linux") or {}


def _process(doc: "Doc") -> "Doc":
    return doc.get("process") or {}


def _namespaces(doc: "Doc") -> "dict[str, tuple[int, Doc]]":
    """{type: (index, entry)} of the first entry of each type."""
    found: dict[str, tuple[int, Doc]] = {}
    for i, ns in enumerate(_linux(doc).get("namespaces") or ()):
        found.setdefault(ns["type"], (i, ns))
    return found


def _has_ns(doc: "Doc", nstype: str) -> bool:
    return nstype in _namespaces(doc)


def _new_ns(doc: "Doc", nstype: str) -> bool:
    entry = _namespaces(doc).get(nstype)
    return entry is not None and not entry[1].get("path")


def _has_dotdot(path: str) -> bool:
    return ".." in path.split("/")


def _is_abs(path: str) -> bool:
    return path.startswith("/")


def _abs_path_problem(path: str) -> str | None:
    """Why `path` is not a usable absolute path in the container, or None."""
    if not _is_abs(path):
        return f"{_shown(path)} must be an absolute path"
    if _has_dotdot(path):
        return f"{_shown(path)} must not contain '..' components"
    return _path_length_problem(path)


def _id_problem(value: object, use: str) -> str | None:
    """Why `value` cannot be a uid or gid (`use` says what the kernel would do), or None."""
    if value == NO_ID:
        return f"{value} is (uid_t)-1, which is no id: {use}"
    return None


def _read_proc_int(path: str, default: int) -> int:
    """A number from /proc/sys, or `default` where it cannot be read."""
    try:
        with open(path, "rb") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _same_file(a: str, b: str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False  # joining will fail later, with the real error
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _shares_host_ns(doc: "Doc", nstype: str) -> bool:
    """True when the container would use the runtime's namespace: none listed, or a path to it."""
    entry = _namespaces(doc).get(nstype)
    if entry is None:
        return True
    path = entry[1].get("path")
    if not path:
        return False
    return _same_file(path, f"/proc/self/ns/{PROC_NS_NAMES[nstype]}")


def _env_problems(env: "Iterable[str] | None", parts: "Parts") -> "Problems":
    for i, entry in enumerate(env or ()):
        name, sep, _ = entry.partition("=")
        if not sep:
            yield parts + [i], f"{_shown(entry)} must have the form NAME=value"
        elif not name:
            yield parts + [i], f"{_shown(entry)} has an empty variable name"


def _cpu_list_problem(text: str) -> str | None:
    if text == "":
        return None
    if not _match(_CPU_LIST, text):
        return f"{_shown(text)} is not a list like '0-3,7'"
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            return f"{_shown(text)}: range {_shown(part)} is reversed"
    return None


# -- version and root --------------------------------------------------------


def check_oci_version(doc: "Doc", bundle: str) -> "Problems":
    version = doc.get("ociVersion")
    if version is None:
        return  # the schema says it is required
    major = _semver_major(version)
    if major is None:
        yield ["ociVersion"], f"{_shown(version)} is not a SemVer 2.0.0 version"
    elif major != "1":
        yield ["ociVersion"], f"{_shown(version)} is not supported: only runtime-spec 1.x configs are"


_SEMVER_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


def _semver_number(part: str) -> bool:  # 0|[1-9]\d*
    return part == "0" or (part[:1] in "123456789" and part.isdigit())


def _semver_major(version: str) -> str | None:
    """The major version of a SemVer 2.0.0 string, else None.  ASCII versions are read
    here by the grammar (MAJOR.MINOR.PATCH[-PRE][+BUILD]); others go to its regex, whose
    digit class also takes non-ASCII digits."""
    if not version.isascii():
        match = _match(_SEMVER, version)
        return match.group(1) if match else None
    main, plus, build = version.partition("+")
    if plus and not all(p and _SEMVER_CHARS.issuperset(p) for p in build.split(".")):
        return None
    core, dash, pre = main.partition("-")
    if dash and not all(
        p and _SEMVER_CHARS.issuperset(p) and (not p.isdigit() or _semver_number(p)) for p in pre.split(".")
    ):
        return None
    numbers = core.split(".")
    if len(numbers) != 3 or not all(_semver_number(p) for p in numbers):
        return None
    return numbers[0]


def check_root(doc: "Doc", bundle: str) -> "Problems":
    root = doc.get("root")
    if root is None:
        yield ["root"], "required on Linux: the container's root filesystem"
        return
    path = root.get("path")
    if path is None:
        return  # the schema says it is required
    if not path:
        yield ["root", "path"], "must not be empty"
        return
    if _string_problem(path):
        return  # check_strings reports it; the path cannot name a file, nor go in a message
    full = os.path.join(bundle, path)  # an absolute path replaces the bundle
    problem = _path_length_problem(full)
    if problem:
        yield ["root", "path"], problem
    elif not os.path.exists(full):
        yield ["root", "path"], f"{full} does not exist"
    elif not os.path.isdir(full):
        yield ["root", "path"], f"{full} is not a directory"


# -- process -----------------------------------------------------------------


def check_process(doc: "Doc", bundle: str) -> "Problems":
    process = doc.get("process")
    if process is None:
        return  # allowed: such a container can be created, and `start` then fails
    args = process.get("args")
    yield from _program_problems(args)
    problem = _abs_path_problem(process["cwd"]) if "cwd" in process else None  # else the schema's
    if problem:
        yield ["process", "cwd"], problem
    yield from _env_problems(process.get("env"), ["process", "env"])
    yield from _exec_problems(args or (), process.get("env") or (), ["process"], process.get("rlimits"))


def check_user(doc: "Doc", bundle: str) -> "Problems":
    user = _process(doc).get("user") or {}
    parts: Parts = ["process", "user"]
    umask = user.get("umask")
    if umask is not None and umask > 0o7777:
        yield parts + ["umask"], f"{umask} (0o{umask:o}) is above the maximum 0o7777"
    for key, use in (
        ("uid", "setresuid(2) would leave the process running as root"),
        ("gid", "setresgid(2) would leave the process in group root"),
    ):
        problem = _id_problem(user.get(key), use)
        if problem:
            yield parts + [key], problem
    gids = user.get("additionalGids") or ()
    if len(gids) > NGROUPS_MAX:
        yield parts + ["additionalGids"], f"{len(gids)} groups; setgroups(2) takes at most {NGROUPS_MAX}"
    for i, gid in enumerate(gids):
        problem = _id_problem(gid, "setgroups(2) refuses it")
        if problem:
            yield parts + ["additionalGids", i], problem


def check_rlimits(doc: "Doc", bundle: str) -> "Problems":
    seen: dict[str, int] = {}
    for i, rlimit in enumerate(_process(doc).get("rlimits") or ()):
        parts: Parts = ["process", "rlimits", i]
        kind = rlimit["type"]
        if kind not in RLIMITS:
            yield parts + ["type"], f"{_shown(kind)} is not a Linux resource limit (getrlimit(2))"
        if kind in seen:
            yield parts + ["type"], f"duplicate {_shown(kind)}, already set by process.rlimits[{seen[kind]}]"
        seen.setdefault(kind, i)
        if rlimit["soft"] > rlimit["hard"]:
            yield parts, f"soft limit {rlimit['soft']} is above hard limit {rlimit['hard']}"
        elif kind == "RLIMIT_NOFILE":
            # setrlimit(2) refuses more open files than fs.nr_open, even to root.
            nr_open = _read_proc_int("/proc/sys/fs/nr_open", 2**64 - 1)
            if rlimit["hard"] > nr_open:
                yield (
                    parts + ["hard"],
                    (f"{rlimit['hard']} is above fs.nr_open ({nr_open}), the most setrlimit(2) allows"),
                )


def check_capabilities(doc: "Doc", bundle: str) -> "Problems":
    caps = _process(doc).get("capabilities") or {}
    known = set(CAPABILITIES)
    for name in CAPABILITY_SETS:
        for i, cap in enumerate(caps.get(name) or ()):
            if cap not in known:
                yield ["process", "capabilities", name, i], f"unknown capability {_shown(cap)}"


def check_oom_score_adj(doc: "Doc", bundle: str) -> "Problems":
    adj = _process(doc).get("oomScoreAdj")
    if adj is not None and not -1000 <= adj <= 1000:
        yield ["process", "oomScoreAdj"], f"{adj} is outside the kernel's range -1000..1000"


# -- strings anywhere ---------------------------------------------------------


def _all_strings_clean(doc: "Any") -> bool:
    """Whether no string or key of the document has a problem: one pass that builds no
    paths, for the common case; check_strings walks again to name what it finds."""
    strings: list[str] = []
    pending = [doc]
    items: Iterable[Any]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            strings.extend(value)
            items = value.values()
        elif isinstance(value, list):
            items = value
        else:
            strings.append(value)  # only the document itself can be a scalar here
            continue
        for item in items:
            if isinstance(item, str):
                strings.append(item)
            elif isinstance(item, (dict, list)):
                pending.append(item)
    try:
        for text in strings:
            if "\0" in text or (not text.isascii() and _string_problem(text)):
                return False
    except TypeError:  # a key or a document that is no string: the full walk says so
        return False
    return True


def check_strings(doc: "Any", bundle: str | None) -> "Problems":
    """Every string and key of the document: no NUL, no lone surrogate."""
    if _all_strings_clean(doc):
        return
    # A loop, not recursion: unknown fields may nest as deep as the JSON parser allows.
    pending: list[tuple[Parts, Any]] = [([], doc)]
    while pending:
        parts, value = pending.pop()
        if isinstance(value, str):
            problem = _string_problem(value)
            if problem:
                yield parts, problem
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = _string_problem(key)
                if problem:
                    yield parts, f"key {_shown(key)} {problem}"
                pending.append((parts + [key], item))
        elif isinstance(value, list):
            pending.extend((parts + [i], item) for i, item in enumerate(value))


def check_annotations(doc: "Doc", bundle: str) -> "Problems":
    # The schema's patternProperties ".{1,}" skips the empty key (and keys of only
    # newlines), so neither the key nor its value is checked there.
    for key, value in (doc.get("annotations") or {}).items():
        if not key:
            yield ["annotations"], "keys must not be empty"
        if not isinstance(value, str):
            yield ["annotations", key], f"{_shown(value)} is not a string"


# -- hostname ----------------------------------------------------------------


def check_hostname(doc: "Doc", bundle: str) -> "Problems":
    for field in ("hostname", "domainname"):
        name = doc.get(field)
        if not name:
            continue
        if _byte_len(name) > HOST_NAME_MAX:
            yield [field], f"is longer than {HOST_NAME_MAX} bytes"
        # A joined namespace is allowed (as runc does), as long as it is not the host's.
        if _shares_host_ns(doc, "uts"):
            yield [field], 'needs its own uts namespace; add {"type": "uts"} to linux.namespaces'


# -- mounts ------------------------------------------------------------------

# No check asks for a mount namespace: without a mount entry the container shares the
# runtime's (the spec's MUST), where the init binds the rootfs on an empty directory of
# the container's state, never changing the propagation of a host mount, and chroots;
# delete detaches what it mounted there (linux/host_mounts.py).  A joined namespace is the
# caller's to rearrange, as with runc, but not the runtime's own by path: the init would
# make the host's mounts slaves and pivot its root.


def check_mount_namespace(doc: "Doc", bundle: str) -> "Problems":
    entry = _namespaces(doc).get("mount")
    if entry is not None and entry[1].get("path") and _shares_host_ns(doc, "mount"):
        yield (
            ["linux", "namespaces", entry[0], "path"],
            "is the runtime's own mount namespace: leave the mount entry out to share it",
        )


def check_mounts(doc: "Doc", bundle: str) -> "Problems":
    for i, mount in enumerate(doc.get("mounts") or ()):
        yield from _mount_problems(doc, mount, ["mounts", i], bundle)


def check_mount_count(doc: "Doc", bundle: str) -> "Problems":
    # Each mount, masked and read-only path is a mount in the container's namespace,
    # which starts as a copy of the host's; the kernel caps a namespace at fs.mount-max.
    linux = _linux(doc)
    count = sum(len(x or ()) for x in (doc.get("mounts"), linux.get("maskedPaths"), linux.get("readonlyPaths")))
    if count < MANY_MOUNTS:
        return
    limit = _read_proc_int("/proc/sys/fs/mount-max", 100000)
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            host = f.read().count(b"\n")
    except OSError:
        host = 0
    if count + host > limit:
        yield (
            ["mounts"],
            (
                f"{count} mounts, masked and read-only paths, with the {host} copied from "
                f"the host, are more than fs.mount-max ({limit}) allows in a mount namespace"
            ),
        )


def _mount_problems(doc: "Doc", mount: "Doc", parts: "Parts", bundle: str) -> "Problems":
    problem = _abs_path_problem(mount["destination"])
    if problem:
        yield parts + ["destination"], problem
    options = mount.get("options") or ()
    bind_option = "bind" in options or "rbind" in options
    is_bind = bind_option or mount.get("type") == "bind"
    if bind_option and not mount.get("source"):
        yield parts + ["source"], "a bind mount needs a source"
    # A bind's source is a path (a relative one is in the bundle); the source of any
    # other mount, and the type, are strings mount(2) copies up to PATH_MAX.
    for key in ("source", "type"):
        value = mount.get(key) or ""
        if key == "source" and is_bind and value:
            problem = _path_length_problem(os.path.join(bundle, value))
        elif _byte_len(value) >= PATH_MAX:
            problem = f"is {_byte_len(value)} bytes long; mount(2) takes at most {PATH_MAX - 1}"
        else:
            continue
        if problem:
            yield parts + [key], problem
    data = _mount_data_size(options)
    if data > MOUNT_DATA_MAX:
        yield (
            parts + ["options"],
            (f"the filesystem options come to {data} bytes; mount(2) takes one page, at most {MOUNT_DATA_MAX}"),
        )
    propagation = sorted(PROPAGATION_OPTIONS.intersection(options))
    if len(propagation) > 1:
        yield parts + ["options"], f"conflicting propagation options {propagation}"
    has_uid, has_gid = "uidMappings" in mount, "gidMappings" in mount
    if has_uid != has_gid:
        yield parts, "uidMappings and gidMappings must be given together"
    for key in ("uidMappings", "gidMappings"):
        if mount.get(key):
            yield from _mapping_problems(mount[key], parts + [key])
    idmapped = not IDMAP_OPTIONS.isdisjoint(options)
    if idmapped and not has_uid and not _has_ns(doc, "user"):
        yield parts + ["options"], "idmap needs uidMappings/gidMappings or a user namespace"


def _mount_data_size(options: "Sequence[str]") -> int:
    """Bytes of the data string mount(2) gets: the options that are not mount flags."""
    size = sum(_byte_len(o) + 1 for o in options)
    if size <= MOUNT_DATA_MAX:
        return size  # flags included, it fits: no need to tell them apart
    from pyrunc.linux.mounts import MountOptions  # the runtime's own split, flags from data

    data = MountOptions([o for o in options if o not in ("idmap", "ridmap")]).data
    return _byte_len(data or "")


def check_masked_and_readonly_paths(doc: "Doc", bundle: str) -> "Problems":
    linux = _linux(doc)
    for key in ("maskedPaths", "readonlyPaths"):
        for i, path in enumerate(linux.get(key) or ()):
            problem = _abs_path_problem(path)
            if problem:
                yield ["linux", key, i], problem


# -- namespaces, id mappings, time -------------------------------------------


def check_namespaces(doc: "Doc", bundle: str) -> "Problems":
    first: dict[str, int] = {}
    for i, ns in enumerate(_linux(doc).get("namespaces") or ()):
        parts: Parts = ["linux", "namespaces", i]
        kind = ns["type"]
        if kind in first:
            yield parts + ["type"], f"duplicate namespace type {kind!r}, also linux.namespaces[{first[kind]}]"
        first.setdefault(kind, i)
        path = ns.get("path")
        if path is not None and not _is_abs(path):
            yield parts + ["path"], f"{_shown(path)} must be an absolute path"
        elif path and (problem := _path_length_problem(path)):
            yield parts + ["path"], problem


def check_user_namespace(doc: "Doc", bundle: str) -> "Problems":
    linux = _linux(doc)
    entry = _namespaces(doc).get("user")
    for key in ("uidMappings", "gidMappings"):
        mappings = linux.get(key)
        if entry is None:
            if mappings is not None:
                yield ["linux", key], 'given without a user namespace; add {"type": "user"} to linux.namespaces'
        elif entry[1].get("path"):
            if mappings:
                yield ["linux", key], "cannot be applied to a joined user namespace (it has its own mappings)"
        elif not mappings:
            yield ["linux", key], "a new user namespace needs at least one mapping"
        yield from _mapping_problems(mappings or (), ["linux", key])


def _mapping_problems(mappings: "Sequence[Doc]", parts: "Parts") -> "Problems":
    if len(mappings) > MAX_ID_MAP_LINES:
        yield parts, f"{len(mappings)} entries; the kernel accepts at most {MAX_ID_MAP_LINES}"
    ranges: list[tuple[int, Doc]] = []
    for i, m in enumerate(mappings):
        if m["size"] == 0:
            yield parts + [i, "size"], "must be at least 1"
            continue
        for key in ("containerID", "hostID"):
            # (uid_t)-1 is no id: the kernel refuses a range that reaches it.
            if m[key] + m["size"] > NO_ID:
                yield parts + [i], f"{key} {m[key]} + size {m['size']} goes past the last id {NO_ID - 1}"
        ranges.append((i, m))
    yield from _overlaps(ranges, parts)


def _overlaps(ranges: "list[tuple[int, Doc]]", parts: "Parts") -> "Problems":
    for key in ("containerID", "hostID"):
        spans = sorted((m[key], m[key] + m["size"], i) for i, m in ranges)
        for (_, end, i), (start, _, j) in zip(spans, spans[1:]):
            if start < end:
                yield parts + [j], f"{key} range overlaps entry [{i}]"


# -- sysctl ------------------------------------------------------------------


def check_sysctl(doc: "Doc", bundle: str) -> "Problems":
    for key in _linux(doc).get("sysctl") or {}:
        problem = _sysctl_key_problem(key) or _sysctl_problem(doc, sysctl_name(key))
        if problem:
            yield ["linux", "sysctl", key], problem


def _sysctl_key_problem(key: str) -> str | None:
    # The key names a file under /proc/sys.  With an empty, "." or ".." part its prefix no
    # longer says which sysctl it is: in sysctl(8)'s "/" form "net/../kernel/core_pattern"
    # is the host's kernel.core_pattern, yet it starts like a namespaced net.* one.
    if not all(key.replace("/", ".").split(".")):
        return "must be names separated by '.' or '/', with no empty, '.' or '..' part"
    return _path_length_problem(key, PATH_MAX - 1 - len("/proc/sys/"))


def _sysctl_problem(doc: "Doc", name: str) -> str | None:
    if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
        if _shares_host_ns(doc, "ipc"):
            return "needs its own ipc namespace; it would change the host's"
        return None
    if name.startswith("net."):
        if _shares_host_ns(doc, "network"):
            return "needs its own network namespace; it would change the host's"
        return None
    if name in ("kernel.hostname", "kernel.domainname"):
        if _shares_host_ns(doc, "uts"):
            return "needs its own uts namespace; it would change the host's"
        return "set the 'hostname' field instead" if name == "kernel.hostname" else None
    return "not isolated by any namespace the container can have; it would change the host"


# -- devices -----------------------------------------------------------------


def check_devices(doc: "Doc", bundle: str) -> "Problems":
    seen: dict[str, int] = {}
    for i, dev in enumerate(_linux(doc).get("devices") or ()):
        parts: Parts = ["linux", "devices", i]
        problem = _abs_path_problem(dev["path"])
        if problem:
            yield parts + ["path"], problem
        path = os.path.normpath(dev["path"])
        if path in seen:
            yield parts + ["path"], f"duplicate device path, also linux.devices[{seen[path]}]"
        seen.setdefault(path, i)
        if dev["type"] != "p":
            for key, top in (("major", MAJOR_MAX), ("minor", MINOR_MAX)):
                if key not in dev:
                    yield parts, f"{key!r} is required for device type {dev['type']!r}"
                elif not 0 <= dev[key] <= top:
                    yield parts + [key], f"{dev[key]} is outside the kernel's 0..{top}"
        for key in ("uid", "gid"):
            problem = _id_problem(dev.get(key), "chown(2) would leave the device owned by root")
            if problem:
                yield parts + [key], problem


# -- hooks, cgroups, resources -------------------------------------------------


def check_hooks(doc: "Doc", bundle: str) -> "Problems":
    for stage, hooks in (doc.get("hooks") or {}).items():
        for i, hook in enumerate(hooks or ()):
            parts: Parts = ["hooks", stage, i]
            if not _is_abs(hook["path"]):
                yield parts + ["path"], f"{_shown(hook['path'])} must be an absolute path"
            elif problem := _path_length_problem(hook["path"]):
                yield parts + ["path"], problem
            yield from _env_problems(hook.get("env"), parts + ["env"])
            # Hooks run on the host, under the runtime's own stack limit.
            yield from _exec_problems(hook.get("args") or [hook["path"]], hook.get("env") or (), parts, None)


def check_cgroups_path(doc: "Doc", bundle: str) -> "Problems":
    path = _linux(doc).get("cgroupsPath")
    if not path:
        return
    parts: Parts = ["linux", "cgroupsPath"]
    if _has_dotdot(path):
        yield parts, f"{_shown(path)} must not contain '..' components"
    elif "\n" in path:
        yield parts, "must not contain a newline: the kernel refuses such cgroup names"
    else:
        problem = _path_length_problem(path, PATH_MAX - 1 - CGROUP_MOUNT_ALLOWANCE, names=False)
        if problem:
            yield parts, problem + ", leaving room for /sys/fs/cgroup/<hierarchy>/"


def check_resources(doc: "Doc", bundle: str) -> "Problems":
    res = _linux(doc).get("resources") or {}
    parts: Parts = ["linux", "resources"]
    yield from _memory_problems(res.get("memory") or {}, parts + ["memory"])
    yield from _cpu_problems(res.get("cpu") or {}, parts + ["cpu"])
    yield from _device_rule_problems(res.get("devices") or (), parts + ["devices"])
    yield from _unified_problems(res.get("unified") or {}, parts + ["unified"])
    for i, wd in enumerate((res.get("blockIO") or {}).get("weightDevice") or ()):
        if "weight" not in wd and "leafWeight" not in wd:
            yield parts + ["blockIO", "weightDevice", i], "needs weight or leafWeight"
    for name, rdma in (res.get("rdma") or {}).items():
        if "hcaHandles" not in rdma and "hcaObjects" not in rdma:
            yield parts + ["rdma", name], "needs hcaHandles or hcaObjects"


def _memory_problems(mem: "Doc", parts: "Parts") -> "Problems":
    for key in ("limit", "reservation", "swap", "kernel", "kernelTCP"):
        if mem.get(key, 0) < -1:
            yield parts + [key], f"{mem[key]} is negative; -1 means unlimited, other values are bytes"
    limit, swap = mem.get("limit", 0), mem.get("swap", 0)
    if limit > 0 and swap > 0 and swap < limit:
        yield parts + ["swap"], f"memory+swap {swap} is below the memory limit {limit}"
    swappiness = mem.get("swappiness")
    if swappiness is not None and swappiness > 100:
        yield parts + ["swappiness"], f"{swappiness} is outside 0..100"


def _cpu_problems(cpu: "Doc", parts: "Parts") -> "Problems":
    for key in ("cpus", "mems"):
        problem = _cpu_list_problem(cpu.get(key, ""))
        if problem:
            yield parts + [key], problem
    quota, burst = cpu.get("quota", 0), cpu.get("burst")
    if burst is not None and quota > 0 and burst > quota:
        yield parts + ["burst"], f"{burst} is above the quota {quota}"
    # The kernel's bounds for CFS bandwidth (tg_set_cfs_bandwidth); a negative quota is no limit.
    lo, hi = CFS_PERIOD_RANGE
    period = cpu.get("period", 0)
    if period and not lo <= period <= hi:
        yield parts + ["period"], f"{period} is outside the kernel's {lo}..{hi} microseconds"
    if 0 < quota < lo:
        yield parts + ["quota"], f"{quota} is below the kernel's minimum of {lo} microseconds"
    elif quota > CFS_QUOTA_MAX:
        yield parts + ["quota"], f"{quota} is above the kernel's maximum of {CFS_QUOTA_MAX} microseconds"
    if cpu.get("idle", 0) not in (0, 1):
        yield parts + ["idle"], "must be 0 or 1"


def _device_rule_problems(rules: "Iterable[Doc]", parts: "Parts") -> "Problems":
    for i, rule in enumerate(rules):
        if rule.get("type", "a") not in ("a", "b", "c"):
            yield parts + [i, "type"], f"{_shown(rule['type'])} is not one of 'a', 'b', 'c'"
        for key in ("major", "minor"):
            number = rule.get(key, -1)
            if not -1 <= number < ID_LIMIT:
                yield parts + [i, key], f"{number} is neither -1 (any) nor a 32-bit device number"
        access = rule.get("access", "")
        if set(access) - set("rwm"):
            yield parts + [i, "access"], f"{_shown(access)} may only contain r, w and m"


def _unified_problems(unified: "Doc", parts: "Parts") -> "Problems":
    # Keys become file names in the cgroup directory: a "/" would escape it.
    for key in unified:
        if "/" in key or key.startswith("."):
            yield parts + [key], "must be a plain cgroup file name like 'memory.max'"
        elif "." not in key:
            yield parts + [key], "must have the form <controller>.<file>"


# -- other linux fields ----------------------------------------------------------


def check_seccomp(doc: "Doc", bundle: str) -> "Problems":
    seccomp = _linux(doc).get("seccomp")
    if seccomp is None:
        return
    parts: Parts = ["linux", "seccomp"]
    if seccomp["defaultAction"] == "SCMP_ACT_NOTIFY":
        yield parts + ["defaultAction"], "SCMP_ACT_NOTIFY cannot be the default action"
    if "defaultErrnoRet" in seccomp and not _takes_errno(seccomp["defaultAction"]):
        yield parts + ["defaultErrnoRet"], f"{seccomp['defaultAction']} does not return an errno"
    if seccomp.get("listenerMetadata") and not seccomp.get("listenerPath"):
        yield parts + ["listenerMetadata"], "must not be set without listenerPath"
    listener = seccomp.get("listenerPath") or ""
    if _byte_len(listener) > SUN_PATH_MAX:
        yield (
            parts + ["listenerPath"],
            (f"is {_byte_len(listener)} bytes long; a unix socket path holds at most {SUN_PATH_MAX}"),
        )
    if seccomp.get("defaultErrnoRet", 0) > SECCOMP_DATA_MAX:
        yield parts + ["defaultErrnoRet"], _errno_ret_problem(seccomp["defaultErrnoRet"])
    for i, rule in enumerate(seccomp.get("syscalls") or ()):
        yield from _syscall_problems(seccomp, rule, parts + ["syscalls", i])


def _takes_errno(action: str) -> bool:
    return action in SECCOMP_TAKES_ERRNO


def _errno_ret_problem(value: int) -> str:
    return f"{value} does not fit the 16 bits a seccomp filter returns (at most {SECCOMP_DATA_MAX})"


def _syscall_problems(seccomp: "Doc", rule: "Doc", parts: "Parts") -> "Problems":
    if "errnoRet" in rule and not _takes_errno(rule["action"]):
        yield parts + ["errnoRet"], f"{rule['action']} does not return an errno"
    if rule.get("errnoRet", 0) > SECCOMP_DATA_MAX:
        yield parts + ["errnoRet"], _errno_ret_problem(rule["errnoRet"])
    if rule["action"] == "SCMP_ACT_NOTIFY" and not seccomp.get("listenerPath"):
        yield parts + ["action"], "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"
    for j, arg in enumerate(rule.get("args") or ()):
        if arg["index"] > 5:
            yield parts + ["args", j, "index"], f"{arg['index']} is past the sixth argument (5)"


# -- fields pyrunc refuses ------------------------------------------------------------

# Every property of the runtime-spec's schema is either applied or listed here, refused
# by name rather than accepted and dropped (tests/unit/test_spec_fields.py walks the
# schema and holds pyrunc to that).  A path is written as the schema nests it, `[]` for
# the items of an array; refusing a path refuses everything under it.
REFUSED_FIELDS = {
    "windows": "Windows containers are not supported: pyrunc runs Linux containers",
    "solaris": "Solaris zones are not supported: pyrunc runs Linux containers",
    "vm": "virtual-machine containers are not supported: pyrunc runs Linux containers",
    "zos": "z/OS containers are not supported: pyrunc runs Linux containers",
    "freebsd": "FreeBSD jails are not supported: pyrunc runs Linux containers",
    "process.commandLine": "is for Windows; on Linux the program and its arguments are process.args",
    "process.user.username": "is for Windows; on Linux the user is process.user.uid and gid",
    "mounts[].uidMappings": "id-mapped mounts are not supported by pyrunc",
    "mounts[].gidMappings": "id-mapped mounts are not supported by pyrunc",
}
# Mount options of a refused feature.
REFUSED_MOUNT_OPTIONS = dict.fromkeys(IDMAP_MOUNT_OPTIONS, "id-mapped mounts are not supported by pyrunc")


def _present(doc: "Doc", path: str) -> "list[Parts]":
    """The path parts of every place `path` ('a.b[].c') is set in doc."""
    found: list[tuple[Parts, Any]] = [([], doc)]
    for key in path.split("."):
        many = key.endswith("[]")
        key = key[:-2] if many else key
        step: list[tuple[Parts, Any]] = []
        for parts, node in found:
            if isinstance(node, dict) and key in node:
                if not many:
                    step.append((parts + [key], node[key]))
                elif isinstance(node[key], list):
                    step.extend((parts + [key, i], item) for i, item in enumerate(node[key]))
        found = step
    return [parts for parts, _ in found]


def check_unsupported(doc: "Doc", bundle: str) -> "Problems":
    for path, why in REFUSED_FIELDS.items():
        if path.partition(".")[0].removesuffix("[]") in doc:  # else nothing to walk
            for parts in _present(doc, path):
                yield parts, why
    for i, mount in enumerate(doc.get("mounts") or ()):
        options = mount.get("options") or ()
        if IDMAP_OPTIONS.isdisjoint(options):
            continue
        for j, option in enumerate(options):
            if option in REFUSED_MOUNT_OPTIONS:
                yield ["mounts", i, "options", j], f"{option!r}: {REFUSED_MOUNT_OPTIONS[option]}"


CHECKS = (
    check_oci_version,
    check_root,
    check_process,
    check_user,
    check_rlimits,
    check_capabilities,
    check_oom_score_adj,
    check_strings,
    check_annotations,
    check_hostname,
    check_mount_namespace,
    check_mounts,
    check_mount_count,
    check_masked_and_readonly_paths,
    check_namespaces,
    check_user_namespace,
    check_sysctl,
    check_devices,
    check_hooks,
    check_cgroups_path,
    check_resources,
    check_seccomp,
    check_unsupported,
)
