"""Reading and writing cgroup files: every error a one-line CgroupError naming the field
or the file.  Shared by the v1 and v2 managers.

The managers touch the cgroup file system only through a `CgroupFiles` object they are
given: the real one (REAL_FILES) by default, the step trace's recording one when --trace
is on (trace.RecordingCgroupFiles, which the CLI puts in the command's linux.Seams), a test double
in unit tests.  Its primitives (mkdir, rmdir, rmdir_unused, write, read) are the calls on
the file system; everything else here is built on them, so that an object which varies
the primitives (a double, the recording wrapper) varies what is built on them too.
"""

import posix  # not os (nor errno's table): `delete` and `kill` read and remove cgroups without it
import time

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import join as _join  # os.path.join
from pyrunc.linux.procfs import read_whole

_EBUSY = 16  # errno.EBUSY (Linux)


def _why(e: OSError) -> str:
    return posix.strerror(e.errno or 0).lower()


class CgroupFiles:
    __slots__ = ()

    # -- the primitives -------------------------------------------------------------------

    def mkdir(self, path: str) -> None:
        """One directory (OSError as os.mkdir raises it)."""
        posix.mkdir(path, 0o755)

    def rmdir(self, path: str) -> bool:
        """rmdir, retrying briefly while the last processes finish exiting."""
        for _ in range(100):
            try:
                posix.rmdir(path)
                return True
            except FileNotFoundError:
                return True
            except OSError as e:
                if e.errno != _EBUSY:
                    return False
                time.sleep(0.01)
        return False

    def rmdir_unused(self, path: str) -> bool:
        """rmdir a parent level once: busy means another container's cgroup is in it."""
        try:
            posix.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True

    def write(self, path: str, value: str, field: str | None) -> None:
        try:
            # O_TRUNC as a shell's `>` does: cgroupfs ignores it, a test's plain file needs it.
            fd = posix.open(path, posix.O_WRONLY | posix.O_TRUNC | posix.O_CLOEXEC)
        except OSError as e:
            raise CgroupError(field, f"open {path}: {_why(e)}") from None
        try:
            posix.write(fd, value.encode())
        except OSError as e:
            raise CgroupError(field, f"write {value!r} to {path}: {_why(e)}", e.errno) from None
        finally:
            posix.close(fd)

    def read(self, path: str) -> str:
        """The file's text; "" when it cannot be read.  posix calls, not io's file objects
        (delete reads cgroup.procs in every v1 hierarchy)."""
        try:
            return read_whole(path).decode()
        except (OSError, TypeError):
            return ""

    # -- built on them ----------------------------------------------------------------------

    def mkdirs(self, hierarchy_root: str, path: str) -> list[str]:
        """mkdir each missing level of path; returns the made ones, top-most first."""
        made: list[str] = []
        cur = hierarchy_root
        rel = ""
        for part in [p for p in path.split("/") if p]:
            cur = _join(cur, part)
            rel += "/" + part
            try:
                self.mkdir(cur)
                made.append(rel)
            except FileExistsError:
                pass
            except OSError as e:
                for rel_made in reversed(made):  # leave nothing half made
                    self.rmdir(_join(hierarchy_root, rel_made.lstrip("/")))
                raise CgroupError(None, f"create cgroup {cur}: {_why(e)}", e.errno) from None
        return made

    def inherit_cpuset(self, directory: str) -> None:
        import os.path  # create's

        parent = os.path.dirname(directory)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not self.read(_join(directory, name)).strip():
                self.write(_join(directory, name), self.read(_join(parent, name)).strip(), None)

    def enable_down(self, hierarchy_root: str, path: str, controller: str) -> None:
        """On cgroup2 a controller reaches a cgroup only when each ancestor enables it for
        its children.  The root is the host's to configure: start below it."""
        parts = [p for p in path.split("/") if p]
        cur = _join(hierarchy_root, parts[0]) if parts else hierarchy_root
        for part in parts[1:]:
            try:
                self.write(_join(cur, "cgroup.subtree_control"), "+" + controller, None)
            except CgroupError:
                return  # a parent with processes of its own cannot delegate; leave it be
            cur = _join(cur, part)

    def read_words(self, path: str) -> set[str]:
        return set(self.read(path).split())

    def read_int(self, path: str) -> int:
        try:
            return int(self.read(path).split()[0])
        except (ValueError, IndexError):
            return 0

    def read_ints(self, path: str) -> list[int]:
        return [int(x) for x in self.read(path).split()]

    def read_keyed(self, path: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for line in self.read(path).splitlines():
            key, _, value = line.partition(" ")
            try:
                out[key] = int(value)
            except ValueError:
                continue
        return out

    def cgroup2_frozen(self, directory: str) -> bool:
        """A cgroup2 directory frozen or freezing: its own cgroup.freeze asks it, or
        cgroup.events says it is frozen (an ancestor's freeze shows only there)."""
        return (
            self.read(_join(directory, "cgroup.freeze")).strip() == "1"
            or self.read_keyed(_join(directory, "cgroup.events")).get("frozen") == 1
        )


REAL_FILES = CgroupFiles()


class Write:
    """One write a manager plans before it makes any: `value` to `file` (a file name in
    the container's cgroup) for the config `field`, which its error names.  v2 only:
    `optional`, skipped where the kernel lacks the file; `after_cpu_max`, tried again
    after cpu.max when refused (a burst the old quota does not allow)."""

    __slots__ = ("file", "value", "field", "optional", "after_cpu_max")

    def __init__(
        self, file: str, value: str | int | None, field: str, optional: bool = False, after_cpu_max: bool = False
    ) -> None:
        self.file, self.value, self.field = file, value, field
        self.optional, self.after_cpu_max = optional, after_cpu_max

    def __repr__(self) -> str:
        return f"Write({self.file!r}, {self.value!r}, {self.field!r})"
