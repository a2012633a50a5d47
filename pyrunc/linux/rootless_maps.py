"""The id maps of a container's new user namespace, written by a runtime without root.

The kernel lets an unprivileged process write one map line only: its own effective uid
(or gid) onto one id of the namespace, and a gid map only once "deny" is in the
process's /proc/<pid>/setgroups (so that nobody in the namespace can drop a group the
host gave them: CVE-2014-8989).  Anything more, say root plus 65536 ids of the user's
/etc/subuid range, goes through the setuid helpers newuidmap and newgidmap (Debian's
`uidmap`), which check each range against /etc/subuid and /etc/subgid first.  runc and
crun take the same two ways.  Imported only by a runtime that is not root.
"""

import os

from pyrunc.errors import ContainerError
from pyrunc.linux.proc_writes import write_proc

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyrunc.config.model import IDMapping, Linux

HELPERS = {"uid": "newuidmap", "gid": "newgidmap"}
SUBID_FILES = {"uid": "/etc/subuid", "gid": "/etc/subgid"}
FIELDS = {"uid": "linux.uidMappings", "gid": "linux.gidMappings"}


def is_own_id(mappings: "Sequence[IDMapping]", own: int) -> bool:
    """One id only, and it is the caller's own: the map the kernel lets us write."""
    return len(mappings) == 1 and mappings[0].size == 1 and mappings[0].host_id == own


def write_id_maps(pid: int, linux: "Linux") -> None:
    for kind, mappings, own in (
        ("uid", linux.uid_mappings, os.geteuid()),
        ("gid", linux.gid_mappings, os.getegid()),
    ):
        if not mappings:
            continue
        if is_own_id(mappings, own):
            if kind == "gid":
                write_proc(f"/proc/{pid}/setgroups", "deny", f"write setgroups of {pid}")
            m = mappings[0]
            write_proc(f"/proc/{pid}/{kind}_map", f"{m.container_id} {m.host_id} 1\n", f"write {kind}_map of {pid}")
        else:
            _run_helper(kind, pid, mappings)


def helper_argv(kind: str, pid: int, mappings: "Sequence[IDMapping]") -> list[str]:
    argv = [HELPERS[kind], str(pid)]
    for m in mappings:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    return argv


def _run_helper(kind: str, pid: int, mappings: "Sequence[IDMapping]") -> None:
    import shutil
    import subprocess

    helper = HELPERS[kind]
    step = f"write {kind}_map of {pid}"
    path = shutil.which(helper)
    if path is None:
        own = os.geteuid() if kind == "uid" else os.getegid()
        raise ContainerError(
            step,
            f"{FIELDS[kind]} maps more than your own {kind} and {helper} is not installed "
            f"(Debian's uidmap package): map only {kind} {own}, or install it",
        )
    argv = helper_argv(kind, pid, mappings)
    argv[0] = path
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, close_fds=True)
    if r.returncode != 0:
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        why = lines[-1].removeprefix(f"{helper}: ") if lines else f"exit status {r.returncode}"
        raise ContainerError(
            step,
            f"{helper} refused {FIELDS[kind]}: {why} (a user may map its own {kind} and the ranges "
            f"{SUBID_FILES[kind]} gives it)",
        )
