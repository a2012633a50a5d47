"""linux.seccomp: compile a profile to a classic BPF program once, load it with seccomp(2).

libseccomp (through the `seccomp` bindings, or the API-compatible `pyseccomp`) does the
compiling: syscall names per architecture, argument comparisons, the arch checks.  Its
import and compilation cost more than the rest of a `run`, so each distinct profile is
compiled once and the program kept in a cache under the state root; a later container
with the same profile loads the cached program directly, without importing libseccomp.
"""

import errno
import os

from pyrunc import jsonc
from pyrunc.errors import ConfigError, ContainerError
from pyrunc.linux.tables import SECCOMP_TAKES_ERRNO

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from hashlib import sha256  # the same function as _sha256's, typed
    from typing import Any

    from pyrunc.config.model import JsonObject
else:
    try:
        from _sha256 import sha256  # hashlib would load OpenSSL first, for a few ms
    except ImportError:
        from hashlib import sha256

# Return values of a filter (linux/seccomp.h); ERRNO and TRACE carry data in the low 16 bits.
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
FLAG_NEW_LISTENER = 8
CACHE_DIR = "@seccomp"  # "@" is outside the container id alphabet: no id can collide
# Part of every key and entry: bumped whenever the program for one profile changes
# (2: the ENOSYS stub in front), so an older program is never loaded.
CACHE_MAGIC = b"pyrunc-seccomp-bpf 2\n"
BPF_INSTRUCTION_SIZE = 8  # struct sock_filter
CACHE_SUFFIX = ".bpf"
# The cache's bound: one entry per distinct profile (and libseccomp release) would
# otherwise grow under the state root for as long as the host runs.  A program is a few
# to a few tens of kilobytes; the count bounds the directory, the bytes a hostile profile.
CACHE_MAX_ENTRIES = 64
CACHE_MAX_BYTES = 8 << 20


# The kernel release that brought each flag.
_FLAG_SINCE = {
    "SECCOMP_FILTER_FLAG_TSYNC": (3, 17),
    "SECCOMP_FILTER_FLAG_LOG": (4, 14),
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": (4, 17),
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": (5, 19),
}


def kernel_flags() -> list[str]:
    """The flags this kernel takes, by its release."""
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    return sorted(f for f, since in _FLAG_SINCE.items() if release >= since)


def uses_notify(profile: "JsonObject") -> bool:
    return profile["defaultAction"] == "SCMP_ACT_NOTIFY" or any(
        s["action"] == "SCMP_ACT_NOTIFY" for s in profile.get("syscalls") or ()
    )


def load_flags(profile: "JsonObject") -> int:
    flags = 0
    for name in profile.get("flags") or ():
        flags |= FLAGS[name]
    if uses_notify(profile):
        flags |= FLAG_NEW_LISTENER
    return flags


def action_value(action: str, errno_ret: int | None, default_errno: int) -> int:
    """The filter's return value for a spec action (semantic.py refused an errnoRet on an
    action that takes none)."""
    if action in SECCOMP_TAKES_ERRNO:
        data = errno_ret if errno_ret is not None else default_errno
        return ACTIONS[action] | (data & 0xFFFF)
    return ACTIONS[action]


# -- compiling (libseccomp) ----------------------------------------------------------


def bindings() -> "Any":
    try:
        import seccomp as lib
    except ImportError:
        try:
            import pyseccomp as lib
        except ImportError:
            raise ConfigError(
                ["linux.seccomp: the libseccomp Python bindings (seccomp or pyseccomp) are not installed"]
            ) from None
    return lib


def compile_profile(profile: "JsonObject") -> bytes:
    """The BPF program (struct sock_filter array, as bytes) for a linux.seccomp object:
    libseccomp's, behind the stub that answers ENOSYS for syscalls newer than the profile."""
    from pyrunc.linux import seccomp_enosys

    lib = bindings()
    program = libseccomp_program(profile, lib)
    if not seccomp_enosys.applies(profile):
        return program
    return seccomp_enosys.stub(seccomp_enosys.highest_named(profile, lib)) + program


def libseccomp_program(profile: "JsonObject", lib: "Any") -> bytes:
    """libseccomp's program for the profile, as it exports it."""
    default_errno = profile.get("defaultErrnoRet", errno.EPERM)
    default = action_value(profile["defaultAction"], profile.get("defaultErrnoRet"), errno.EPERM)
    flt = lib.SyscallFilter(default)
    # no_new_privs is the config's to set (process.noNewPrivileges), not libseccomp's.
    flt.set_attr(lib.Attr.CTL_NNP, 0)
    for arch in profile.get("architectures") or ():
        value = getattr(lib.Arch, arch[len("SCMP_ARCH_") :], None)
        if value is None:
            continue  # an architecture these bindings do not know cannot run here either
        try:
            flt.add_arch(value)
        except OSError as e:
            if e.errno != errno.EEXIST:  # the native one is there from the start
                raise
    for i, rule in enumerate(profile.get("syscalls") or ()):
        action = action_value(rule["action"], rule.get("errnoRet"), default_errno)
        if action == default:
            continue  # libseccomp refuses a rule that changes nothing
        for name in rule["names"]:
            if lib.resolve_syscall(lib.Arch.NATIVE, name) < 0:
                continue  # unknown to this kernel's tables: skipped, as runc does
            for args in _argument_sets(rule.get("args") or ()):
                try:
                    flt.add_rule(
                        action,
                        name,
                        *[lib.Arg(a["index"], OPERATORS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in args],
                    )
                except OSError as e:
                    raise ConfigError([f"linux.seccomp.syscalls[{i}]: rule for {name!r}: {_reason(e)}"]) from None
    fd = os.memfd_create("pyrunc-seccomp", os.MFD_CLOEXEC)
    try:
        with os.fdopen(os.dup(fd), "rb") as f:
            flt.export_bpf(f)
        return _read_all(fd)
    finally:
        os.close(fd)


def _reason(e: OSError) -> str:
    """An OSError's reason; its errno may be None, which os.strerror refuses."""
    return os.strerror(e.errno).lower() if e.errno is not None else str(e)


def _argument_sets(args: "Sequence[JsonObject]") -> "list[list[JsonObject]]":
    """libseccomp ANDs the comparisons of one rule but takes each argument once: the same
    index twice means either may match, so that becomes one rule per comparison."""
    if not args:
        return [[]]
    indexes = [a["index"] for a in args]
    if len(set(indexes)) == len(indexes):
        return [list(args)]
    return [[a] for a in args]


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks: list[bytes] = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# -- the cache -----------------------------------------------------------------------


def profile_key(profile: "JsonObject", version: str | None = None) -> str:
    """A profile's identity: its canonical JSON, the machine, the program format and the
    libseccomp that compiles it (another release may compile the same profile otherwise:
    a program from one is never loaded in place of the other's)."""
    text = jsonc.dumps(profile, sort_keys=True)
    version = library_version() if version is None else version
    return sha256(f"{os.uname().machine}\n{version}\n{text}".encode() + CACHE_MAGIC).hexdigest()


def program_for(profile: "JsonObject", state_root: str) -> bytes:
    """The compiled program, from the cache when a valid entry is there."""
    directory = os.path.join(state_root, CACHE_DIR)
    path = os.path.join(directory, profile_key(profile) + CACHE_SUFFIX)
    program = _read_cached(path)
    if program is None:
        program = compile_profile(profile)
        if _write_cached(directory, path, program):
            _evict(directory, keep=path)
    return program


def _read_cached(path: str) -> bytes | None:
    """A cache entry is trusted only if we own it, nobody else may write it, and its
    checksum matches: a stale or tampered program is compiled afresh."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return None
        data = _read_all(fd)
        if not data.startswith(CACHE_MAGIC):
            return None
        digest, _, program = data[len(CACHE_MAGIC) :].partition(b"\n")
        if sha256(program).hexdigest().encode() != digest or not program or len(program) % BPF_INSTRUCTION_SIZE:
            return None
        _touch(fd)
        return program
    finally:
        os.close(fd)


def _touch(fd: int) -> None:
    """A hit makes the entry the most recently used: eviction goes by mtime."""
    try:
        os.utime(fd)
    except OSError:
        pass  # only its place in the eviction order is lost


def _write_cached(directory: str, path: str, program: bytes) -> bool:
    try:
        os.makedirs(directory, 0o700, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, CACHE_MAGIC + sha256(program).hexdigest().encode() + b"\n" + program)
        finally:
            os.close(fd)
        os.rename(tmp, path)
        return True
    except OSError:
        return False  # a cache that cannot be written only costs the next container a compile


def _evict(directory: str, keep: str) -> None:
    """Least recently used entries go until the cache holds at most CACHE_MAX_ENTRIES
    programs and CACHE_MAX_BYTES bytes; `keep`, just written, stays.  Safe beside other
    creates: an entry removed under a reader was already open (or is a miss, compiled
    again), and a name another evictor removed first is skipped.  Temporary files a
    writer left behind (killed between open and rename) go once they are an hour old."""
    import time

    entries: list[tuple[int, str, int]] = []
    now = time.time()
    try:
        names = os.listdir(directory)
    except OSError:
        return
    count = size = 0
    for name in names:
        path = os.path.join(directory, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if name.endswith(CACHE_SUFFIX):
            count, size = count + 1, size + st.st_size
            if path != keep:
                entries.append((st.st_mtime_ns, path, st.st_size))
        elif name.endswith(".tmp") and now - st.st_mtime > 3600:
            _unlink(path)
    for _, path, entry_size in sorted(entries):  # oldest use first
        if count <= CACHE_MAX_ENTRIES and size <= CACHE_MAX_BYTES:
            break
        _unlink(path)
        count, size = count - 1, size - entry_size


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # gone already: another create evicted it


def send_to_listener(path: str, fd: int, process_state: "JsonObject") -> None:
    """One connection, one state object with the fd (SCM_RIGHTS), then close."""
    from pyrunc.linux import unix

    sock = unix.socket()
    try:
        sock.connect(path)
        unix.send_fds(sock, jsonc.dumps(process_state, compact=False).encode(), [fd])
    except OSError as e:
        raise ContainerError(None, f"send the seccomp fd to listenerPath {path}: {_reason(e)}") from None
    finally:
        sock.close()


_library_version: str | None = None


def library_version() -> str:
    """The version of the libseccomp that compiles filters ("2.5.4"), from the library
    itself (seccomp_version); "" where it cannot be loaded.  Both bindings load
    libseccomp.so.2, as this does; a dlopen, not an import of the bindings, so that a
    cached program's key costs a fraction of a millisecond."""
    global _library_version
    if _library_version is None:
        from pyrunc.linux import ffi

        try:
            version = ffi.library_function("libseccomp.so.2", "seccomp_version")()
        except OSError:
            version = None
        # struct scmp_version: three unsigned ints, major, minor, micro
        _library_version = (
            ".".join(str(ffi.c_uint.from_address(version + 4 * i).value) for i in range(3)) if version else ""
        )
    return _library_version
