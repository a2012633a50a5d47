"""The user's program: process.args[0] found as execvp finds it, and checked never to
lead back to the runtime's own executable (CVE-2019-5736).

The init is a fork of the runtime, so until it execs the user's program its
/proc/self/exe is the host's Python interpreter.  Anything the kernel resolves *during*
that exec through a /proc magic link (/proc/self/exe, /proc/1/exe, /proc/self/fd/N)
leads out of the container to that interpreter: the program itself, each interpreter of
a #! chain (binfmt_script), the ELF interpreter of a dynamic binary (PT_INTERP), and the
interpreter of a host binfmt_misc handler registered without the F flag.  Running it
would give the container a process of the runtime's binary and a way to write it.  So
each of those is looked up with RESOLVE_NO_MAGICLINKS first, at create (to fail early)
and again just before the exec at start (so that nothing swapped in between is run).
Ordinary symlinks still resolve, inside the container's root.
"""

import errno
import fcntl
import os
import stat

from pyrunc.errors import ContainerError, KernelError
from pyrunc.linux import kernel

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from pyrunc.linux.kernel import Kernel

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# binfmt_script reads this much of a file, and lets interpreters nest this deep.
_BINPRM_BUF_SIZE = 256
_MAX_INTERPRETERS = 4
# The kernel's bound on an ELF's program headers (fs/binfmt_elf.c).
_ELF_MAX_PHDRS_SIZE = 65536
_PT_INTERP = 3
_BINFMT_MISC = "/proc/sys/fs/binfmt_misc"


def find_executable(name: str, env: "Iterable[str]") -> str:
    """Resolve args[0] like execvp, before start, so a missing binary fails create."""
    if "/" in name:
        candidates = [name]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    for cand in candidates:
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(cand, os.X_OK):
            return cand
    where = "" if "/" in name else " in $PATH"
    raise ContainerError(None, f'exec: "{name}": executable file not found{where}')


def binfmt_handlers() -> list[tuple[str, str]]:
    """(name, interpreter) of the host's enabled binfmt_misc handlers that the kernel
    resolves at exec time, in the exec'ing process's root: those without the F flag.
    Read before pivot_root, while the host's binfmt_misc mount is in view."""
    try:
        names = os.listdir(_BINFMT_MISC)
    except OSError:
        return []
    handlers: list[tuple[str, str]] = []
    for name in names:
        if name in ("register", "status"):
            continue
        try:
            with open(os.path.join(_BINFMT_MISC, name), "rb") as f:
                lines = f.read(4096).decode(errors="replace").splitlines()
        except OSError:
            continue
        fields = dict(line.split(" ", 1) for line in lines if " " in line)
        if lines[:1] == ["enabled"] and "F" not in fields.get("flags:", ""):
            handlers.append((name, fields.get("interpreter", "")))
    return handlers


def checked_program(
    k: "Kernel", path: str, lowest_fd: int, handlers: "Iterable[tuple[str, str]]" = (), strict: bool = True
) -> str | int:
    """What execve is to be given for `path`, found by find_executable (after pivot_root):
    `path` itself, or, for a program the user cannot read (so cannot be checked), an
    O_PATH fd numbered from `lowest_fd`, by which the kernel refuses to run a script.

    Raises ContainerError for anything reached through a magic link.  Not `strict` (the
    second check, at start, under the container's seccomp filter): a lookup that fails
    for another reason is left to the exec, which the first check already vouched for.
    """
    for name, interpreter in handlers:
        _check_chain(k, interpreter, path, f" (binfmt_misc handler {name!r} runs {interpreter!r})", strict=False)
    if _check_chain(k, path, path, "", strict):
        return path
    return _unreadable_program(k, path, lowest_fd)


def _check_chain(k: "Kernel", what: str, path: str, via: str, strict: bool) -> bool:
    """Follow `what` as exec would: through its #! interpreters, to the ELF interpreter of
    the last.  False if `what` itself is unreadable (EACCES), so could not be checked."""
    for depth in range(_MAX_INTERPRETERS + 1):
        try:
            fd: int = k.openat2(
                kernel.AT_FDCWD, what, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY, kernel.RESOLVE_NO_MAGICLINKS
            )
        except KernelError as e:
            if depth == 0 and e.errno == errno.EACCES:
                return False
            _lookup_failed(k, e, what, path, via, strict)
            return True
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return True
            head = os.pread(fd, _BINPRM_BUF_SIZE, 0)
            if head.startswith(b"\x7fELF"):
                loader = _elf_interpreter(fd, head)
                if loader is not None:
                    # binfmt_elf needs no read permission on it, nor follows its PT_INTERP.
                    _check_path(k, loader, path, f"{via} (its ELF interpreter {loader!r})", strict)
                return True
            interpreter = _script_interpreter(head)
        finally:
            os.close(fd)
        if interpreter is None:
            return True
        what, via = interpreter, f"{via} (its interpreter {interpreter!r})"
    raise ContainerError(None, f'exec: "{path}": too many levels of #! interpreters')


def _check_path(k: "Kernel", what: str, path: str, via: str, strict: bool) -> None:
    try:
        os.close(k.openat2(kernel.AT_FDCWD, what, os.O_PATH, kernel.RESOLVE_NO_MAGICLINKS))
    except KernelError as e:
        _lookup_failed(k, e, what, path, via, strict)


def _lookup_failed(k: "Kernel", e: KernelError, what: str, path: str, via: str, strict: bool) -> None:
    """Refuse a lookup that met a magic link; let pass one whose failure the kernel's own
    lookup at exec meets too (or, not strict, any other)."""
    if e.errno == errno.ELOOP and _is_magic(k, what):
        raise ContainerError(
            None, f'exec: "{path}"{via}: reached through a /proc magic link, which leads out of the container: refused'
        ) from None
    if strict and e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
        # Unreadable interpreter, or the lookup itself denied (by seccomp, say).
        raise ContainerError(None, f'exec: "{path}"{via}: cannot check where it leads: {_reason(e)}') from None


def _reason(e: OSError) -> str:
    """The errno's text; a KernelError may carry none (errors.KernelError)."""
    return os.strerror(e.errno).lower() if e.errno is not None else "unknown error"


def _is_magic(k: "Kernel", path: str) -> bool:
    """Whether an ELOOP of RESOLVE_NO_MAGICLINKS came from a magic link, not a symlink loop."""
    try:
        os.close(k.openat2(kernel.AT_FDCWD, path, os.O_PATH, 0))
        return True
    except KernelError:
        return False


def _script_interpreter(head: bytes) -> str | None:
    """The interpreter a #! line names, read as binfmt_script reads it; None for no #!."""
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].lstrip(b" \t")
    name = line.replace(b"\t", b" ").replace(b"\0", b" ").split(b" ", 1)[0]
    return os.fsdecode(name) if name else None


def _elf_interpreter(fd: int, head: bytes) -> str | None:
    """The path of an ELF's PT_INTERP, as binfmt_elf reads it; None if it has none (a
    static binary) or the header is not one the kernel would load anyway."""
    if len(head) < 52 or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    little = head[5] == 1

    def uint(buf: bytes, at: int, size: int) -> int:
        return int.from_bytes(buf[at : at + size], "little" if little else "big")

    # int.from_bytes, not struct (whose import costs exec 0.2 ms): the header's e_phoff,
    # e_phentsize and e_phnum; of each program header, p_type (its first 4 bytes),
    # p_offset and p_filesz.
    if head[4] == 2:  # ELFCLASS64: Elf64_Phdr, 56 bytes; the fields up to p_filesz, 40
        if len(head) < 64:
            return None
        phoff, phentsize, phnum = uint(head, 32, 8), uint(head, 54, 2), uint(head, 56, 2)
        need, at_offset, at_size, width = 40, 8, 32, 8
    else:  # Elf32_Phdr: p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz: 24 bytes
        phoff, phentsize, phnum = uint(head, 28, 4), uint(head, 42, 2), uint(head, 44, 2)
        need, at_offset, at_size, width = 24, 4, 16, 4
    if phentsize < need or not 0 < phentsize * phnum <= _ELF_MAX_PHDRS_SIZE:
        return None
    table = os.pread(fd, phentsize * phnum, phoff)
    for i in range(len(table) // phentsize):
        at = i * phentsize
        if uint(table, at, 4) == _PT_INTERP:
            size = uint(table, at + at_size, width)
            if not 2 <= size <= 4096:
                return None  # the kernel refuses it (ENOEXEC)
            name = os.pread(fd, size, uint(table, at + at_offset, width))
            return os.fsdecode(name.split(b"\0", 1)[0]) or None
    return None


def _unreadable_program(k: "Kernel", path: str, lowest_fd: int) -> int:
    """An fd execve runs the program by, numbered above every fd the container gets."""
    try:
        fd: int = k.openat2(kernel.AT_FDCWD, path, os.O_PATH, kernel.RESOLVE_NO_MAGICLINKS)
    except KernelError as e:
        raise ContainerError(None, f'exec: "{path}": {_reason(e)}') from None
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest_fd)
    finally:
        os.close(fd)
