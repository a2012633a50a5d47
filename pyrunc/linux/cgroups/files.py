"""Reading and writing cgroup files: every error a one-line CgroupError naming the field
or the file.  Shared by the v1 and v2 managers."""

import errno
import os
import time

from pyrunc.errors import CgroupError

def mkdirs(hierarchy_root, path):
    """mkdir each missing level of path; returns the made ones, top-most first."""
    made = []
    cur = hierarchy_root
    rel = ""
    for part in [p for p in path.split("/") if p]:
        cur = os.path.join(cur, part)
        rel += "/" + part
        try:
            os.mkdir(cur, 0o755)
            made.append(rel)
        except FileExistsError:
            pass
        except OSError as e:
            for rel_made in reversed(made):  # leave nothing half made
                rmdir(os.path.join(hierarchy_root, rel_made.lstrip("/")))
            raise CgroupError(None, f"create cgroup {cur}: {os.strerror(e.errno).lower()}") from None
    return made


def inherit_cpuset(directory):
    parent = os.path.dirname(directory)
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not read(os.path.join(directory, name)).strip():
            write(os.path.join(directory, name), read(os.path.join(parent, name)).strip(), None)


def enable_down(hierarchy_root, path, controller):
    """On cgroup2 a controller reaches a cgroup only when each ancestor enables it for its
    children.  The root is the host's to configure: start below it."""
    parts = [p for p in path.split("/") if p]
    cur = os.path.join(hierarchy_root, parts[0]) if parts else hierarchy_root
    for part in parts[1:]:
        try:
            write(os.path.join(cur, "cgroup.subtree_control"), "+" + controller, None)
        except CgroupError:
            return  # a parent with processes of its own cannot delegate; leave it be
        cur = os.path.join(cur, part)


def write(path, value, field):
    try:
        # O_TRUNC as a shell's `>` does: cgroupfs ignores it, a test's plain file needs it.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(field, f"open {path}: {os.strerror(e.errno).lower()}") from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise CgroupError(field, f"write {value!r} to {path}: {os.strerror(e.errno).lower()}", e.errno) from None
    finally:
        os.close(fd)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except (OSError, TypeError):
        return ""


def read_words(path):
    return set(read(path).split())


def read_int(path):
    try:
        return int(read(path).split()[0])
    except (ValueError, IndexError):
        return 0


def read_ints(path):
    return [int(x) for x in read(path).split()]


def read_keyed(path):
    out = {}
    for line in read(path).splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def cgroup2_frozen(directory):
    """A cgroup2 directory frozen or freezing: its own cgroup.freeze asks it, or
    cgroup.events says it is frozen (an ancestor's freeze shows only there)."""
    return (read(os.path.join(directory, "cgroup.freeze")).strip() == "1"
            or read_keyed(os.path.join(directory, "cgroup.events")).get("frozen") == 1)


def rmdir_unused(path):
    """rmdir a parent level once: busy means another container's cgroup is in it."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def rmdir(path):
    """rmdir, retrying briefly while the last processes finish exiting."""
    for _ in range(100):
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno != errno.EBUSY:
                return False
            time.sleep(0.01)
    return False
