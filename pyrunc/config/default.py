"""The config `pyrunc spec` writes: runc's default, with our version and hostname."""

import os

from pyrunc import OCI_VERSION

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_spec(rootless: bool = False) -> "dict[str, Any]":
    """A fresh dict equal to `runc spec` (or `runc spec --rootless`) output, key order included."""
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": _process(),
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyrunc",
        "mounts": _mounts(),
        "linux": _linux(),
    }
    return _rootless(spec) if rootless else spec


def _process() -> "dict[str, Any]":
    return {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {key: list(DEFAULT_CAPS) for key in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    }


def _mount(destination: str, fstype: str, source: str, options: list[str] | None = None) -> "dict[str, Any]":
    mount: dict[str, Any] = {"destination": destination, "type": fstype, "source": source}
    if options:
        mount["options"] = options
    return mount


def _mounts() -> "list[dict[str, Any]]":
    return [
        _mount("/proc", "proc", "proc"),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount(
            "/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
        ),
        _mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
    ]


def _linux() -> "dict[str, Any]":
    return {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": list(MASKED_PATHS),
        "readonlyPaths": list(READONLY_PATHS),
    }


def _rootless(spec: "dict[str, Any]") -> "dict[str, Any]":
    """What runc's rootless conversion does to the default spec."""
    # A user without privileges can neither mount sysfs nor a devpts with gid=5 (no
    # such group is mapped), create a network namespace worth having, or own cgroups.
    for mount in spec["mounts"]:
        if mount["destination"] == "/sys":
            mount.update(type="none", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
        elif mount["destination"] == "/dev/pts":
            mount["options"].remove("gid=5")
    old = spec["linux"]
    namespaces = [ns for ns in old["namespaces"] if ns["type"] != "network"]
    spec["linux"] = {
        "uidMappings": [{"containerID": 0, "hostID": os.geteuid(), "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": os.getegid(), "size": 1}],
        "namespaces": namespaces + [{"type": "user"}],
        "maskedPaths": old["maskedPaths"],
        "readonlyPaths": old["readonlyPaths"],
    }
    return spec
