"""What CRIU is told of a container, as runc tells it: the mounts whose source lies
outside the container (external mounts), its namespaces joined by path (external
namespaces), the namespaces it gets empty.  Pure: the config in, criu_opts fields out
(linux/criu.py sends them).

An external mount is a pair at each end.  At dump, {key: mount point in the container,
val: the name it is saved under}; at restore, {key: that name, val: the host path to bind
there}.  Binds are saved under their own mount point and come back from the config's
source (which may differ on the restoring host); masked files are binds of the host's
/dev/null, all saved as "/dev/null"; default and config devices, bound from the host in a
user namespace, are saved under their path and come back from it.
"""

import os

from pyrunc.linux.devices import DEFAULT_DEVICES
from pyrunc.linux.kernel import CLONE_NEWNET, CLONE_NEWPID

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.config.model import Config, Mount

# The inherit_fd keys under which a joined namespace is handed to CRIU at restore.
NS_KEYS = {"network": ("net", "extRootNetNS", CLONE_NEWNET), "pid": ("pid", "extRootPidNS", CLONE_NEWPID)}
# --empty-ns's names, and the namespaces CRIU leaves empty anyway: pyrunc, like runc, does
# not manage network devices, so the network namespace is made new and left to hooks.
EMPTY_NS = {"network": CLONE_NEWNET}
ALWAYS_EMPTY = CLONE_NEWNET


def is_bind(m: "Mount") -> bool:
    return m.type == "bind" or "bind" in m.options or "rbind" in m.options


def _clean(dest: str) -> str:
    return "/" + os.path.normpath(dest).lstrip("/")


def _device_paths(cfg: "Config") -> "list[str]":
    paths = [p for p, *_ in DEFAULT_DEVICES]
    paths += [d.path for d in cfg.linux.devices if d.path not in paths]
    return paths


def cgroup_binds(cfg: "Config", hierarchies: "list[str] | None" = None) -> "list[str]":
    """The mount points of the binds of the container's own cgroup directories that a
    `cgroup` mount becomes without a cgroup namespace (linux/cgroupfs.py): their root is
    not the filesystem's, which CRIU cannot save, so they are external, and come back as
    the restored container's new cgroup directories.  On a pure cgroup v2 host
    (`hierarchies` None) the mount point itself; on a v1 or hybrid host, the mount is a
    tmpfs (CRIU saves it) holding one bind per hierarchy: DEST/NAME for each name in
    `hierarchies` (the host's mounts under /sys/fs/cgroup), as runc describes them."""
    if cfg.linux.namespace("cgroup") is not None:
        return []
    dests = [_clean(m.destination) for m in cfg.mounts if m.type == "cgroup" and not is_bind(m)]
    if hierarchies is None:
        return dests
    return [f"{d.rstrip('/')}/{name}" for d in dests for name in hierarchies]


def dump_mounts(
    cfg: "Config", masked_files: "list[str]", cgroup_v2: bool = False, hierarchies: "list[str] | None" = None
) -> "list[dict[str, str]]":
    """ext_mnt for a dump; `masked_files`: the masked paths that are files in the
    running container (a masked directory is a tmpfs, which CRIU saves); `cgroup_v2`:
    the host is pure cgroup v2; else `hierarchies`: the names of a v1 host's cgroup mounts."""
    out = [{"key": _clean(m.destination), "val": _clean(m.destination)} for m in cfg.mounts if is_bind(m)]
    if cgroup_v2:
        out += [{"key": p, "val": p} for p in cgroup_binds(cfg)]
    elif hierarchies:
        out += [{"key": p, "val": p} for p in cgroup_binds(cfg, hierarchies)]
    out += [{"key": _clean(p), "val": "/dev/null"} for p in masked_files]
    out += [{"key": p, "val": p} for p in _device_paths(cfg)]
    return out


def restore_mounts(
    cfg: "Config", cgroup_dir: str | None = None, cgroup_dirs: "dict[str, str] | None" = None
) -> "list[dict[str, str]]":
    """ext_mnt for a restore: each name a dump saved, and where it comes from now;
    `cgroup_dir`: the restored container's cgroup directory on a pure cgroup v2 host;
    `cgroup_dirs`: on a v1 host, {hierarchy name: its cgroup directory in that hierarchy}."""
    out = []
    if cgroup_dir is not None:
        out += [{"key": p, "val": cgroup_dir} for p in cgroup_binds(cfg)]
    if cgroup_dirs:
        names = list(cgroup_dirs)
        for point in cgroup_binds(cfg, names):
            out.append({"key": point, "val": cgroup_dirs[point.rsplit("/", 1)[1]]})
    for m in cfg.mounts:
        if is_bind(m) and m.source:
            source = m.source if os.path.isabs(m.source) else os.path.join(cfg.bundle, m.source)
            out.append({"key": _clean(m.destination), "val": source})
    if cfg.linux.masked_paths:
        out.append({"key": "/dev/null", "val": "/dev/null"})
    out += [{"key": p, "val": p} for p in _device_paths(cfg)]
    return out


# Mounts whose content CRIU makes again itself (a tmpfs's files are in the image, the
# others are the kernel's): no mount point under them is made in the rootfs.
_RECREATED = ("tmpfs", "proc", "sysfs", "cgroup", "cgroup2", "devpts", "mqueue")


def _below(path: str, tops: "list[str]") -> bool:
    """Below one of `tops` (not one of them: their own mount point is needed)."""
    return any(path != t and path.startswith(t.rstrip("/") + "/") for t in tops)


def restore_mountpoints(cfg: "Config") -> "list[tuple[str, str | None]]":
    """The mount points a restore needs in the rootfs, in the config's order, as runc
    makes them: (destination, the bind's source or None for a directory).  A fresh rootfs
    lacks them and CRIU does not make them.  None under a mount whose content CRIU makes
    again (a tmpfs /dev, proc, sysfs); a cgroup mount's point lies in sysfs.  With a user
    namespace the devices are binds of the host's (files), needed when /dev is not a tmpfs."""
    tops = [_clean(m.destination) for m in cfg.mounts if not is_bind(m) and m.type in _RECREATED]
    out: list[tuple[str, str | None]] = []
    for m in cfg.mounts:
        dest = _clean(m.destination)
        if m.type in ("cgroup", "cgroup2") and not is_bind(m):
            continue
        if dest == "/" or _below(dest, tops):
            continue
        if is_bind(m):
            source = m.source or ""
            out.append((dest, source if os.path.isabs(source) else os.path.join(cfg.bundle, source)))
        else:
            out.append((dest, None))
    if cfg.linux.namespace("user") is not None:
        out += [(p, "/dev/null") for p in _device_paths(cfg) if not _below(p, tops)]
    return out


def empty_ns(names: "tuple[str, ...]") -> int:
    """--empty-ns's namespaces (only `network`), as CRIU's flag mask."""
    mask = ALWAYS_EMPTY
    for name in names:
        if name not in EMPTY_NS:
            raise ValueError(f"--empty-ns: namespace {name!r} is not supported (only network)")
        mask |= EMPTY_NS[name]
    return mask


def joined_namespaces(cfg: "Config") -> "list[tuple[str, str, str]]":
    """(CRIU's name for it, the inherit_fd key, the path) of each network or pid
    namespace the config joins by path: CRIU saves it as external, and joins the one at
    that path again at restore."""
    out = []
    for nstype, (name, key, _flag) in NS_KEYS.items():
        ns = cfg.linux.namespace(nstype)
        if ns is not None and ns.path:
            out.append((name, key, ns.path))
    return out


def external_namespaces(cfg: "Config") -> "list[str]":
    """`external` entries for a dump: `net[INODE]:extRootNetNS` for a joined namespace."""
    return [f"{name}[{os.stat(path).st_ino}]:{key}" for name, key, path in joined_namespaces(cfg)]
