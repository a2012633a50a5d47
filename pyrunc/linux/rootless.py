"""What a runtime without root can build, checked before create makes anything.

runc's rule, kept: a container made by a user without root needs a user namespace of
its own (joined by path, or new with a mapping), since every other namespace and
mount needs privilege in a user namespace the runtime owns.  The checks here are the
ones that would otherwise fail deep in the init with a bare errno (`unshare: operation
not permitted`, `setgid 1000: invalid argument`): each becomes one line naming the field.
What rootless skips rather than refuses (cgroups it may not make, the devices it may not
mknod) is in docs/rootless.md.  Imported only by a runtime whose euid is not 0.
"""

import os

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from pyrunc.config.model import Config, IDMapping


def _mapped(mappings: "Sequence[IDMapping]", cid: int) -> bool:
    return any(m.container_id <= cid < m.container_id + m.size for m in mappings)


def problems(cfg: "Config") -> "Iterator[str]":
    lx = cfg.linux
    who = f"pyrunc runs as uid {os.geteuid()}, not root"
    userns = lx.namespace("user")
    if userns is None:
        yield f"linux.namespaces: a rootless container needs a user namespace ({who}; `pyrunc spec --rootless`)"
        return
    if userns.path:
        return  # the namespace's own maps apply, whatever the config says
    for field, mappings in (("linux.uidMappings", lx.uid_mappings), ("linux.gidMappings", lx.gid_mappings)):
        if not mappings:
            yield f"{field}: a new user namespace made without root needs a mapping ({who})"
    proc = cfg.process
    if proc is None:
        return
    if lx.uid_mappings and not _mapped(lx.uid_mappings, proc.user.uid):
        yield f"process.user.uid {proc.user.uid} is not mapped by linux.uidMappings"
    if lx.gid_mappings:
        if not _mapped(lx.gid_mappings, proc.user.gid):
            yield f"process.user.gid {proc.user.gid} is not mapped by linux.gidMappings"
        for i, gid in enumerate(proc.user.additional_gids):
            if not _mapped(lx.gid_mappings, gid):
                yield f"process.user.additionalGids[{i}] {gid} is not mapped by linux.gidMappings"
    if proc.oom_score_adj is not None and proc.oom_score_adj < _own_oom_score_adj():
        yield (
            f"process.oomScoreAdj {proc.oom_score_adj}: below the runtime's own ({_own_oom_score_adj()}), "
            "which only root may lower"
        )


def _own_oom_score_adj() -> int:
    with open("/proc/self/oom_score_adj") as f:
        return int(f.read())


def check_config(cfg: "Config") -> None:
    """Raise PyruncError with every problem, on one line, where a runtime without root
    cannot build this config."""
    from pyrunc.errors import PyruncError

    found = list(problems(cfg))
    if found:
        raise PyruncError("; ".join(found))


def raise_strict_cgroup_error(e: Exception) -> None:
    """A cgroup the runtime may not make, with --rootless=false: the same error, saying
    why and what would do (a delegated cgroup, or letting rootless skip it)."""
    import errno

    from pyrunc.errors import ContainerError

    if getattr(e, "errno", None) in (errno.EACCES, errno.EPERM):
        raise ContainerError(
            None,
            f"{e} (rootless with --rootless=false: no cgroup there is delegated to uid {os.geteuid()}; "
            "set linux.cgroupsPath in a cgroup v2 subtree you own, or leave --rootless to skip cgroups)",
        ) from None


def pid_namespace_members(init_pid: int) -> "list[int] | None":
    """`ps` of a container without a cgroup (rootless): the processes in the pid
    namespace of its init, when that is not the caller's own; None otherwise (a
    container sharing the host's pid namespace has no set of its own to list)."""
    try:
        ns = os.stat(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return None
    if os.path.samestat(ns, os.stat("/proc/self/ns/pid")):
        return None
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.path.samestat(os.stat(f"/proc/{entry}/ns/pid"), ns):
                    found.append(int(entry))
            except OSError:  # gone, or not ours to look at
                continue
    return sorted(found)
