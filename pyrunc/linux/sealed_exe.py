"""Run the commands that start container processes from a copy of the interpreter that
cannot be written (CVE-2019-5736).

pyrunc forks its container's init, so until the init execs the user's program its
executable is the host's Python interpreter.  program.py refuses every way it knows to
make the kernel exec that executable again (/proc/self/exe in the program, its `#!`
chain, its ELF interpreter, a binfmt_misc handler), but the kernel resolves the program
once more inside execve: a writer of the rootfs could swap it in the microseconds after
the last check, and the container would then hold a process whose /proc/<pid>/exe is the
host's interpreter, to be opened for writing once nothing runs it.  runc closes that
window by running from a sealed copy of itself; pyrunc does the same before create:

- a read-only clone of the interpreter's mount (open_tree + mount_setattr), detached so
  that no mount namespace has it and nobody can make it writable again; no copy is made,
  but it needs CAP_SYS_ADMIN;
- else a memfd copy of the interpreter file, sealed against writes.

The installed command (pyrunc/launcher) starts the interpreter from such a copy in the
first place, so this module only checks; started any other way (python -m pyrunc, pip's
script), create, run and exec re-execute.  The re-exec keeps the pid, argv, environment
and every inherited fd (stdio, --preserve-fds, LISTEN_FDS, the console), so the caller
sees one process throughout.
"""

import fcntl
import os
import sys

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.linux.kernel import Kernel

SELF_EXE = "/proc/self/exe"
_REEXECUTED = "_PYRUNC_SEALED_EXE"  # set across the re-exec, so a seal that fails cannot loop
_MFD_EXEC = 0x10  # kernels with vm.memfd_noexec need it to keep a memfd executable
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def is_sealed(path: str = SELF_EXE) -> bool:
    """Whether nobody can write `path` (the running interpreter by default): it is on a
    read-only mount, or it is a memfd sealed against writes."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
            return True
        try:
            return bool(fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE)
        except OSError:  # not a memfd
            return False
    finally:
        os.close(fd)


def read_only_clone(k: "Kernel", path: str = SELF_EXE) -> int:
    """An fd of `path` (by default the running program) on a detached, read-only clone of
    its mount."""
    from pyrunc.linux import kernel

    fd: int = k.open_tree_clone(path)
    try:
        k.mount_setattr(fd, "", kernel.AT_EMPTY_PATH, kernel.MOUNT_ATTR_RDONLY)
    except BaseException:
        os.close(fd)
        raise
    return fd


def sealed_memfd_copy(path: str = SELF_EXE) -> int:
    """An fd of a memfd holding a copy of `path` (by default the running program), sealed
    against any change."""
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("pyrunc-sealed-exe", flags | _MFD_EXEC)
    except OSError:  # a kernel older than MFD_EXEC (6.3) refuses the flag
        fd = os.memfd_create("pyrunc-sealed-exe", flags)
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(src).st_size
            offset = 0
            while offset < size:
                sent = os.sendfile(fd, src, offset, size - offset)
                if sent == 0:
                    break
                offset += sent
        finally:
            os.close(src)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def sealed_copy(k: "Kernel", path: str = SELF_EXE) -> int:
    from pyrunc.errors import KernelError

    try:
        return read_only_clone(k, path)
    except KernelError:  # no CAP_SYS_ADMIN, or a kernel without the new mount API
        return sealed_memfd_copy(path)


def reexec_command(argv: list[str]) -> list[str]:
    """The interpreter's argv that runs `pyrunc argv...` again with this process's sys.path
    (an editable install's import hook, in site, is not needed for it); -I -S skip the
    work the first start already did."""
    import pyrunc

    path = [os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__)))]
    path += [p for p in sys.path if p and p not in path]
    boot = f"import sys; sys.path[:] = {path!r}; from pyrunc.cli import launch; launch()"  # no teardown
    return [sys.executable, "-I", "-S", "-c", boot, *argv]


def run_sealed(k: "Kernel") -> None:
    """Return when this process runs from a sealed interpreter; else re-execute the
    command (sys.argv) from one."""
    from pyrunc.errors import PyruncError

    if os.environ.pop(_REEXECUTED, None) is not None:
        if not is_sealed():
            raise PyruncError(f"re-executed, but {SELF_EXE} is still writable")
        return
    if is_sealed():
        return
    try:
        # The interpreter, not SELF_EXE: that is the launcher where it runs Python itself
        # (pyrunc/launcher), and the launcher does not take python's arguments.
        fd = sealed_copy(k, sys.executable or SELF_EXE)
    except OSError as e:
        raise PyruncError(f"seal the runtime's executable: {e.strerror or e}") from None
    from pyrunc import log

    log.current.debug("re-executing from a sealed copy of the interpreter")
    os.execve(fd, reexec_command(sys.argv[1:]), {**os.environ, _REEXECUTED: "1"})
