"""`exec --cgroup [<controller>[,<controller>...]:]<path>`: the process joins existing
cgroups below the container's own instead of the container's cgroup itself.

Without a controller the path is for every hierarchy (the one hierarchy on cgroup v2);
with controllers, for theirs only (cgroup v1), the others staying the container's.  As
runc: one value without a controller stands alone; a controller is named once.  The path
is relative to the container's cgroup and stays below it: no absolute path, no `..`.
"""

import os

from pyrunc.errors import UsageError

ALL = ""  # the key of a path given without a controller


def parse(values: list[str]) -> dict[str, str]:
    """{controller or ALL: normalized relative path} from the --cgroup values; {} for none."""
    subs: dict[str, str] = {}
    for value in values:
        ctrls, sep, path = value.rpartition(":") if ":" in value else ("", "", value)
        if ":" in ctrls:
            raise UsageError(f"--cgroup {value!r}: use [<controller>:]<path>, with one ':'")
        path = _relative(value, path)
        if not sep or ctrls == "":
            if len(values) > 1:
                raise UsageError(f"--cgroup {value!r}: a path without a <controller>: prefix must be the only --cgroup")
            return {ALL: path}
        for ctrl in ctrls.split(","):
            if not ctrl:
                raise UsageError(f"--cgroup {value!r}: empty controller name")
            if ctrl in subs:
                raise UsageError(f"--cgroup {value!r}: controller {ctrl} is given more than once")
            subs[ctrl] = path
    return subs


def _relative(value: str, path: str) -> str:
    if not path:
        raise UsageError(f"--cgroup {value!r}: empty cgroup path")
    if path.startswith("/"):
        raise UsageError(f"--cgroup {value!r}: the path must be relative to the container's cgroup, not absolute")
    parts = path.split("/")
    if ".." in parts:
        raise UsageError(f"--cgroup {value!r}: '..' is not allowed: the path must stay below the container's cgroup")
    if "\0" in path:
        raise UsageError(f"--cgroup {value!r}: the path has a NUL byte")
    path = os.path.normpath(path)
    if path == ".":
        raise UsageError(f"--cgroup {value!r}: the path names the container's cgroup itself, not a sub-cgroup")
    return path


def existing(container_dir: str, rel: str, where: str) -> str:
    """The host directory of sub-cgroup `rel` of the container's cgroup directory; it must
    exist (exec makes none).  `where` names the hierarchy for the error."""
    from pyrunc.errors import CgroupError

    path = os.path.join(container_dir, rel)
    if not os.path.isdir(path) or os.path.islink(path):
        raise CgroupError(None, f"no sub-cgroup {rel!r} in the container's cgroup{where}")
    return path
