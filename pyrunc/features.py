"""The runtime-spec features document (`pyrunc features`): what pyrunc implements.

Kept truthful: a feature is listed only once the runtime supports it.
"""

import os

import pyrunc
from pyrunc.linux.process import lsm_enabled
from pyrunc.linux.tables import CAPABILITIES, PROC_NS_NAMES

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.linux.kernel import Kernel

OCI_VERSION_MIN = "1.0.0"

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]

NAMESPACES = sorted(PROC_NS_NAMES)  # every type pyrunc can create and join

# Cgroup managers built in: cgroupfs for v1, hybrid and v2 (pyrunc/linux/cgroups/), and
# the systemd driver (cgroups/systemd.py) where systemd is the host's init; no user
# (rootless) systemd.  What this host has is in the annotations below.
CGROUP_SUPPORT = {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True}
SECCOMP_SUPPORTED = True
INTEL_RDT_SUPPORTED = True  # linux/resctrl.py, where the host has resctrl mounted
IDMAP_MOUNTS_SUPPORTED = False  # mounts' uidMappings/gidMappings are not applied yet
NET_DEVICES_SUPPORTED = True  # linux/netdevices.py, when pyroute2 is installed


def features(k: "Kernel") -> "dict[str, Any]":
    """A fresh features document (features.md, features-linux.md)."""
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": pyrunc.OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": kernel_capabilities(),
            "cgroup": dict(CGROUP_SUPPORT, systemd=systemd_booted()),
            "seccomp": seccomp_features(),
            "apparmor": {"enabled": lsm_enabled("apparmor")},
            "selinux": {"enabled": lsm_enabled("selinux")},
            "intelRdt": {
                "enabled": INTEL_RDT_SUPPORTED,
                "schemata": INTEL_RDT_SUPPORTED,
                "monitoring": INTEL_RDT_SUPPORTED,
            },
            "memoryPolicy": memory_policy_features(),
            "mountExtensions": {"idmap": {"enabled": IDMAP_MOUNTS_SUPPORTED}},
            "netDevices": {"enabled": net_devices_enabled()},
        },
        "annotations": {
            "io.github.pyrunc.version": pyrunc.__version__,
            **host_cgroups(k),
            **rootless_notes(k),
            "io.github.pyrunc.checkpoint.enabled": "true" if criu_found() else "false",
        },
    }


def criu_found(path: str | None = None) -> bool:
    """checkpoint and restore run CRIU (`criu` on PATH, as --criu defaults to): whether
    it is there.  Whether it works on this kernel only `criu check` tells (docs/checkpoint.md)."""
    dirs = (os.environ.get("PATH") if path is None else path) or "/usr/sbin:/usr/bin:/sbin:/bin"
    return any(os.access(os.path.join(d, "criu"), os.X_OK) for d in dirs.split(":") if d)


def systemd_booted() -> bool:
    """Whether --systemd-cgroup works here: systemd is PID 1 (sd_booted(3))."""
    from pyrunc.linux.cgroups.systemd import RUN_SYSTEMD

    return os.path.isdir(RUN_SYSTEMD)


def memory_policy_features() -> dict[str, list[str]]:
    """linux.memoryPolicy: every mode and flag pyrunc recognises (linux/placement.py),
    whether or not this host's kernel takes them, as features-linux.md asks."""
    from pyrunc.linux.placement import MEMPOLICY_FLAGS, MEMPOLICY_MODES

    return {"modes": sorted(MEMPOLICY_MODES, key=MEMPOLICY_MODES.__getitem__), "flags": sorted(MEMPOLICY_FLAGS)}


def mount_options() -> list[str]:
    """The options the mount code recognises, from its own table (linux/mounts.py);
    filesystem-specific data such as "mode=755" goes to mount(2) as it is and is not
    listed, as features.md asks.  idmap and ridmap are refused until id-mapped mounts
    are done, so they are not listed either."""
    from pyrunc.linux.mounts import OPTION_NAMES

    return list(OPTION_NAMES)


def net_devices_enabled() -> bool:
    """linux.netDevices works through pyroute2: enabled only where it can be imported
    (found, not imported: its import costs more than this whole command)."""
    if not NET_DEVICES_SUPPORTED:
        return False
    from importlib.util import find_spec

    try:
        return find_spec("pyroute2") is not None
    except (ImportError, ValueError):
        return False


def host_cgroups(k: "Kernel") -> dict[str, str]:
    """The host's side of cgroup support: its kind and the controllers a container can use."""
    from pyrunc.linux import cgroups

    try:
        mode = cgroups.probe(k)
        controllers = cgroups.host_controllers(mode)
    except OSError:
        return {"io.github.pyrunc.cgroup.host": "none"}
    return {"io.github.pyrunc.cgroup.host": mode, "io.github.pyrunc.cgroup.controllers": ",".join(sorted(controllers))}


def rootless_notes(k: "Kernel") -> dict[str, str]:
    """What a rootless caller gets here (docs/rootless.md): whether this caller is one
    (--rootless auto's answer), the id-map helpers found (multi-id mappings need them),
    and for a rootless caller whether cgroups are used (a cgroup v2 tree it owns:
    delegated) or skipped."""
    import shutil

    from pyrunc.store import rootless_mode

    rootless = rootless_mode("auto")
    helpers = [h for h in ("newuidmap", "newgidmap") if shutil.which(h)]
    notes = {
        "io.github.pyrunc.rootless": "true" if rootless else "false",
        "io.github.pyrunc.rootless.idmapHelpers": ",".join(helpers),
    }
    if rootless:
        notes["io.github.pyrunc.rootless.cgroups"] = "delegated" if own_cgroup_delegated(k) else "skipped"
    return notes


def own_cgroup_delegated(k: "Kernel") -> bool:
    """On a pure v2 host, whether this process's cgroup belongs to its euid (systemd's
    Delegate=yes, a user@.service): a container's cgroup can then be made below it."""
    from pyrunc.linux import cgroups

    try:
        if cgroups.probe(k) != "v2":
            return False
        with open("/proc/self/cgroup") as f:
            rel = f.read().strip().partition("::")[2]
        return os.stat(os.path.join(cgroups.CGROUP_MOUNT_ROOT, rel.lstrip("/"))).st_uid == os.geteuid()
    except OSError:
        return False


def seccomp_features() -> "dict[str, Any]":
    from pyrunc.linux import seccomp

    try:
        lib = seccomp.bindings()
    except Exception:
        return {"enabled": False}
    archs = sorted(f"SCMP_ARCH_{name}" for name in vars(lib.Arch) if name.isupper() and name != "NATIVE")
    return {
        "enabled": SECCOMP_SUPPORTED,
        "actions": sorted(seccomp.ACTIONS),
        "operators": sorted(seccomp.OPERATORS),
        "archs": archs,
        "knownFlags": sorted(seccomp.FLAGS),
        "supportedFlags": seccomp.kernel_flags(),
    }


def kernel_capabilities(cap_last_cap: str = "/proc/sys/kernel/cap_last_cap") -> list[str]:
    """The capability names both pyrunc and the running kernel know."""
    try:
        with open(cap_last_cap) as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = len(CAPABILITIES) - 1
    return list(CAPABILITIES[: last + 1])
