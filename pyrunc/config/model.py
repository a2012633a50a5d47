"""The frozen internal config: config.json converted once, after validation.

Past this module no code reads raw JSON dictionaries; every field has a name and a
type here, and defaults are filled in once.  The classes use __slots__ rather than
dataclasses because dataclasses costs several milliseconds of import on every run.
"""

import os

from pyrunc.linux.tables import CAPABILITY_SETS

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    JsonObject = dict[str, Any]  # a part of config.json the model keeps as JSON


class Frozen:
    __slots__: tuple[str, ...] = ()

    def __init__(self, **fields: object) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, fields.pop(name, None))
        if fields:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(fields)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)


class Hook(Frozen):
    __slots__ = ("path", "args", "env", "timeout")

    path: str
    args: tuple[str, ...]
    env: tuple[str, ...]
    timeout: int | None


class Hooks(Frozen):
    __slots__ = ("prestart", "create_runtime", "create_container", "start_container", "poststart", "poststop")

    prestart: tuple[Hook, ...]
    create_runtime: tuple[Hook, ...]
    create_container: tuple[Hook, ...]
    start_container: tuple[Hook, ...]
    poststart: tuple[Hook, ...]
    poststop: tuple[Hook, ...]


class Mount(Frozen):
    # index: the entry's place in config.json's mounts, for errors (mounts[3])
    __slots__ = ("destination", "type", "source", "options", "index")

    destination: str
    type: str | None
    source: str | None
    options: tuple[str, ...]
    index: int


class User(Frozen):
    __slots__ = ("uid", "gid", "umask", "additional_gids")

    uid: int
    gid: int
    umask: int | None
    additional_gids: tuple[int, ...]


class Capabilities(Frozen):
    __slots__ = CAPABILITY_SETS

    bounding: tuple[str, ...]
    effective: tuple[str, ...]
    inheritable: tuple[str, ...]
    permitted: tuple[str, ...]
    ambient: tuple[str, ...]


class Rlimit(Frozen):
    __slots__ = ("type", "soft", "hard")

    type: str
    soft: int
    hard: int


class Process(Frozen):
    __slots__ = (
        "terminal",
        "console_size",
        "user",
        "args",
        "env",
        "cwd",
        "capabilities",
        "rlimits",
        "no_new_privileges",
        "apparmor_profile",
        "oom_score_adj",
        "selinux_label",
        "scheduler",
        "io_priority",
        "exec_cpu_affinity",
    )

    terminal: bool
    console_size: tuple[int, int] | None  # (height, width)
    user: User
    args: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    capabilities: Capabilities
    rlimits: tuple[Rlimit, ...]
    no_new_privileges: bool
    apparmor_profile: str | None
    oom_score_adj: int | None
    selinux_label: str | None
    scheduler: "JsonObject | None"
    io_priority: "JsonObject | None"
    exec_cpu_affinity: "JsonObject | None"


class Namespace(Frozen):
    __slots__ = ("type", "path")

    type: str
    path: str | None


class IDMapping(Frozen):
    __slots__ = ("container_id", "host_id", "size")

    container_id: int
    host_id: int
    size: int


class Device(Frozen):
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")

    path: str
    type: str
    major: int
    minor: int
    file_mode: int | None
    uid: int | None
    gid: int | None


class Linux(Frozen):
    __slots__ = (
        "namespaces",
        "uid_mappings",
        "gid_mappings",
        "time_offsets",
        "devices",
        "cgroups_path",
        "resources",
        "rootfs_propagation",
        "masked_paths",
        "readonly_paths",
        "sysctl",
        "seccomp",
        "personality",
        "mount_label",
        "net_devices",
        "memory_policy",
        "intel_rdt",
    )

    namespaces: tuple[Namespace, ...]
    uid_mappings: tuple[IDMapping, ...]
    gid_mappings: tuple[IDMapping, ...]
    time_offsets: dict[str, tuple[int, int]]  # clock: (secs, nanosecs)
    devices: tuple[Device, ...]
    cgroups_path: str | None
    resources: "JsonObject"
    rootfs_propagation: str | None
    masked_paths: tuple[str, ...]
    readonly_paths: tuple[str, ...]
    sysctl: dict[str, str]
    seccomp: "JsonObject | None"
    personality: "JsonObject | None"
    mount_label: str | None
    net_devices: "JsonObject"
    memory_policy: "JsonObject | None"
    intel_rdt: "JsonObject | None"

    def namespace(self, nstype: str) -> Namespace | None:
        """The Namespace entry of a type, or None when the container shares the host's."""
        for ns in self.namespaces:
            if ns.type == nstype:
                return ns
        return None


class Config(Frozen):
    __slots__ = (
        "oci_version",
        "bundle",
        "root_path",
        "root_readonly",
        "mounts",
        "process",
        "hostname",
        "domainname",
        "hooks",
        "annotations",
        "linux",
        "raw",
    )

    oci_version: str
    bundle: str
    root_path: str
    root_readonly: bool
    mounts: tuple[Mount, ...]
    process: Process | None
    hostname: str | None
    domainname: str | None
    hooks: Hooks
    annotations: dict[str, str]
    linux: Linux
    raw: "JsonObject"  # the document it was made from

    @property
    def terminal(self) -> bool:
        """Whether the process wants a pty (a config may have no process at all)."""
        return self.process is not None and self.process.terminal


def _hooks(doc: "JsonObject") -> Hooks:
    def hook_list(name: str) -> tuple[Hook, ...]:
        return tuple(
            Hook(
                path=h["path"],
                args=tuple(h.get("args") or (h["path"],)),
                env=tuple(h.get("env") or ()),
                timeout=h.get("timeout"),
            )
            for h in doc.get(name) or ()
        )

    return Hooks(
        prestart=hook_list("prestart"),
        create_runtime=hook_list("createRuntime"),
        create_container=hook_list("createContainer"),
        start_container=hook_list("startContainer"),
        poststart=hook_list("poststart"),
        poststop=hook_list("poststop"),
    )


def hooks_from_dict(doc: "JsonObject | None") -> Hooks:
    return _hooks(doc or {})


def process_from_dict(p: "JsonObject") -> Process:
    user = p.get("user") or {}
    caps = p.get("capabilities") or {}
    size = p.get("consoleSize")
    return Process(
        terminal=bool(p.get("terminal", False)),
        console_size=(size["height"], size["width"]) if size else None,
        user=User(
            uid=user.get("uid", 0),
            gid=user.get("gid", 0),
            umask=user.get("umask"),
            additional_gids=tuple(user.get("additionalGids") or ()),
        ),
        args=tuple(p.get("args") or ()),
        env=tuple(p.get("env") or ()),
        cwd=p.get("cwd", "/"),
        capabilities=Capabilities(**{k: tuple(caps.get(k) or ()) for k in Capabilities.__slots__}),
        rlimits=tuple(Rlimit(type=r["type"], soft=r["soft"], hard=r["hard"]) for r in p.get("rlimits") or ()),
        no_new_privileges=bool(p.get("noNewPrivileges", False)),
        apparmor_profile=p.get("apparmorProfile") or None,
        oom_score_adj=p.get("oomScoreAdj"),
        selinux_label=p.get("selinuxLabel") or None,
        scheduler=p.get("scheduler"),
        io_priority=p.get("ioPriority"),
        exec_cpu_affinity=p.get("execCPUAffinity") or None,
    )


def _mappings(items: "Iterable[JsonObject] | None") -> tuple[IDMapping, ...]:
    return tuple(IDMapping(container_id=m["containerID"], host_id=m["hostID"], size=m["size"]) for m in items or ())


def from_dict(doc: "JsonObject", bundle: str) -> "Config":
    """Convert a validated config.json document into the frozen Config."""
    bundle = os.path.abspath(bundle)
    root = doc.get("root") or {}
    root_path = os.path.join(bundle, root.get("path", "rootfs"))
    lx = doc.get("linux") or {}
    linux = Linux(
        namespaces=tuple(Namespace(type=n["type"], path=n.get("path") or None) for n in lx.get("namespaces") or ()),
        uid_mappings=_mappings(lx.get("uidMappings")),
        gid_mappings=_mappings(lx.get("gidMappings")),
        time_offsets={k: (v.get("secs", 0), v.get("nanosecs", 0)) for k, v in (lx.get("timeOffsets") or {}).items()},
        devices=tuple(
            Device(
                path=d["path"],
                type=d["type"],
                major=d.get("major", 0),
                minor=d.get("minor", 0),
                file_mode=d.get("fileMode"),
                uid=d.get("uid"),
                gid=d.get("gid"),
            )
            for d in lx.get("devices") or ()
        ),
        cgroups_path=lx.get("cgroupsPath"),
        resources=lx.get("resources") or {},
        rootfs_propagation=lx.get("rootfsPropagation") or None,
        masked_paths=tuple(lx.get("maskedPaths") or ()),
        readonly_paths=tuple(lx.get("readonlyPaths") or ()),
        sysctl=dict(lx.get("sysctl") or {}),
        seccomp=lx.get("seccomp"),
        personality=lx.get("personality"),
        mount_label=lx.get("mountLabel") or None,
        net_devices=lx.get("netDevices") or {},
        memory_policy=lx.get("memoryPolicy"),
        intel_rdt=lx.get("intelRdt"),
    )
    return Config(
        oci_version=doc["ociVersion"],
        bundle=bundle,
        root_path=os.path.normpath(root_path),
        root_readonly=bool(root.get("readonly", False)),
        mounts=tuple(
            Mount(
                destination=m["destination"],
                type=m.get("type"),
                source=m.get("source"),
                options=tuple(m.get("options") or ()),
                index=i,
            )
            for i, m in enumerate(doc.get("mounts") or ())
        ),
        process=process_from_dict(doc["process"]) if doc.get("process") else None,
        hostname=doc.get("hostname"),
        domainname=doc.get("domainname"),
        hooks=_hooks(doc.get("hooks") or {}),
        annotations=dict(doc.get("annotations") or {}),
        linux=linux,
        raw=doc,
    )
