"""An image config made into a runtime config.json, as the image-spec's conversion.md says.

Start: pyrunc's `runc spec` defaults (pyrunc.config.default), with no terminal and a
writable root as engines give.  Then the image: Entrypoint + Cmd, Env, WorkingDir, User
(resolved in the image's own /etc/passwd and /etc/group), and the annotations.
linux.cgroupsPath is left to the caller.
"""

import errno
import os
import stat

from pyrunc.config.default import default_spec
from pyrunc.errors import ImageError

# Annotations name typing's types only for mypy (quoted), as everywhere in pyrunc.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    Json = dict[str, Any]

    from pyrunc.linux.kernel import Kernel

MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to the kernel
MAX_DB = 4 << 20  # /etc/passwd and /etc/group are read whole: bound them

PREFIX = "org.opencontainers.image."
VOLUMES_ANNOTATION = "io.github.pyrunc.image.volumes"


def runtime_config(
    image_config: "Json",
    rootfs: str,
    k: "Kernel",
    args: "Iterable[str] | None" = None,
    entrypoint: "Iterable[str] | None" = None,
    env: "Iterable[str]" = (),
    user: str | None = None,
    cwd: str | None = None,
    terminal: bool = False,
    readonly: bool = False,
    root_path: str = "rootfs",
    where: str = "image",
) -> "Json":
    """A config.json dict for `image_config` (the parsed image config) whose root
    filesystem is the directory `rootfs` (used only to read /etc/passwd and /etc/group).

    args: replaces Cmd (as `docker run IMAGE ARGS`); entrypoint: replaces Entrypoint and,
    as in Docker, drops Cmd unless args are given; env: KEY=VALUE entries over the image's;
    user, cwd: replace Config.User, Config.WorkingDir; root_path: root.path as written
    (relative to the bundle).  ImageError, naming `where` and the
    field, when the image cannot be run as asked.
    """
    cfg = image_config.get("config") or {}
    if not isinstance(cfg, dict):
        raise ImageError(f"{where}: config.config: not an object")
    spec = default_spec()
    spec["root"] = {"path": root_path, "readonly": bool(readonly)}
    process = spec["process"]
    process["terminal"] = bool(terminal)
    process["args"] = _args(where, cfg, args, entrypoint)
    process["env"] = _env(where, cfg, env, terminal)
    process["cwd"] = _cwd(where, cfg.get("WorkingDir") if cwd is None else cwd)
    user_text = cfg.get("User") if user is None else user
    process["user"] = resolve_user(where, user_text or "", rootfs, k)
    annotations = _annotations(where, image_config, cfg)
    if annotations:
        spec["annotations"] = annotations
    return spec


def _strings(where: str, name: str, value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"{where}: {name}: not a list of strings")
    return list(value)


def _args(where: str, cfg: "Json", args: "Iterable[str] | None", entrypoint: "Iterable[str] | None") -> list[str]:
    if entrypoint is not None:
        ep = _strings(where, "entrypoint", list(entrypoint))
        # Docker: a new entrypoint drops the image's Cmd (made for the old one).
        cmd = [] if args is None else _strings(where, "args", list(args))
    else:
        ep = _strings(where, "config.Entrypoint", cfg.get("Entrypoint"))
        cmd = _strings(where, "config.Cmd", cfg.get("Cmd")) if args is None else _strings(where, "args", list(args))
    argv = ep + cmd
    if not argv:
        raise ImageError(f"{where}: no command: the image has neither Entrypoint nor Cmd, and no args were given")
    return argv


def _env_name(entry: str) -> str:
    return entry.split("=", 1)[0]


def _env(where: str, cfg: "Json", extra: "Iterable[str]", terminal: bool) -> list[str]:
    env = _strings(where, "config.Env", cfg.get("Env"))
    names = {_env_name(e) for e in env}
    # Defaults only fill in names the image lacks (conversion.md: never change its own).
    defaults = [e for e in default_spec()["process"]["env"] if terminal or _env_name(e) != "TERM"]
    env += [e for e in defaults if _env_name(e) not in names]
    # The caller's entries are a changed image config: they replace in place.
    for entry in _strings(where, "env", list(extra)):
        if "=" not in entry or not _env_name(entry):
            raise ImageError(f"{where}: env {entry!r}: expected KEY=VALUE")
        name = _env_name(entry)
        for i, old in enumerate(env):
            if _env_name(old) == name:
                env[i] = entry
                break
        else:
            env.append(entry)
    return env


def _cwd(where: str, wd: object) -> str:
    if wd is None or wd == "":
        return "/"
    if not isinstance(wd, str):
        raise ImageError(f"{where}: config.WorkingDir: not a string")
    # Docker accepts a relative WorkingDir and reads it from "/"; the runtime spec wants
    # an absolute cwd.
    return wd if wd.startswith("/") else "/" + wd


# --- Config.User -----------------------------------------------------------------


def resolve_user(where: str, text: object, rootfs: str, k: "Kernel") -> "Json":
    """process.user for a Config.User string: user, uid, user:group, uid:gid, user:gid,
    uid:group.  Names come from the image's /etc/passwd and /etc/group, read inside
    `rootfs`; a name they lack is an error.  Without a group, a named user gets its
    primary gid and its groups in /etc/group as additionalGids; a numeric uid gets its
    passwd gid (0 when it has no entry) and no additionalGids (conversion.md)."""
    if not isinstance(text, str):
        raise ImageError(f"{where}: config.User: not a string")
    if text == "":
        return {"uid": 0, "gid": 0}
    name, sep, group = text.partition(":")
    field = f"config.User {text!r}"
    if not name or (sep and not group):
        raise ImageError(f"{where}: {field}: expected USER[:GROUP]")
    db = _Databases(where, rootfs, k)
    entry: tuple[str, int, int] | None = None
    if name.isdigit():
        uid = _number(where, field, name)
        entry = db.passwd_by_uid(uid)
    else:
        entry = db.passwd_by_name(name)
        if entry is None:
            raise ImageError(f"{where}: {field}: no user {name!r} in the image's /etc/passwd")
        uid = entry[1]
    if sep:
        if group.isdigit():
            gid = _number(where, field, group)
        else:
            found = db.group_by_name(group)
            if found is None:
                raise ImageError(f"{where}: {field}: no group {group!r} in the image's /etc/group")
            gid = found
        return {"uid": uid, "gid": gid}
    gid = entry[2] if entry else 0
    user: Json = {"uid": uid, "gid": gid}
    if not name.isdigit():
        extra = sorted({g for g in db.groups_of(name) if g != gid})
        if extra:
            user["additionalGids"] = extra
    return user


def _number(where: str, field: str, text: str) -> int:
    value = int(text)
    if value > MAX_ID:
        raise ImageError(f"{where}: {field}: {value} is out of range")
    return value


class _Databases:
    """The image's /etc/passwd and /etc/group, read inside the rootfs only."""

    def __init__(self, where: str, rootfs: str, k: "Kernel") -> None:
        self.kernel = k
        self.where = where
        self.rootfs = rootfs
        self._passwd: list[tuple[str, int, int]] | None = None  # (name, uid, gid)
        self._group: list[tuple[str, int, list[str]]] | None = None  # (name, gid, members)

    def _read(self, path: str) -> list[list[str]]:
        return [
            line.split(":")
            for line in read_in_root(self.kernel, self.where, self.rootfs, path).splitlines()
            if line and not line.startswith("#")
        ]

    def passwd(self) -> list[tuple[str, int, int]]:
        if self._passwd is None:
            self._passwd = []
            for f in self._read("/etc/passwd"):
                if len(f) >= 4 and f[2].isdigit() and f[3].isdigit():
                    self._passwd.append((f[0], int(f[2]), int(f[3])))
        return self._passwd

    def group(self) -> list[tuple[str, int, list[str]]]:
        if self._group is None:
            self._group = []
            for f in self._read("/etc/group"):
                if len(f) >= 3 and f[2].isdigit():
                    members = [m for m in (f[3].split(",") if len(f) > 3 else []) if m]
                    self._group.append((f[0], int(f[2]), members))
        return self._group

    def passwd_by_name(self, name: str) -> tuple[str, int, int] | None:
        return next((e for e in self.passwd() if e[0] == name), None)

    def passwd_by_uid(self, uid: int) -> tuple[str, int, int] | None:
        return next((e for e in self.passwd() if e[1] == uid), None)

    def group_by_name(self, name: str) -> int | None:
        return next((g[1] for g in self.group() if g[0] == name), None)

    def groups_of(self, user: str) -> list[int]:
        return [g[1] for g in self.group() if user in g[2]]


def read_in_root(k: "Kernel", where: str, rootfs: str, path: str) -> str:
    """The text of `path` inside `rootfs`, "" when missing.  Symlinks resolve as if
    rootfs were "/" (openat2 RESOLVE_IN_ROOT): an image cannot make us read a host file."""
    from pyrunc.linux.paths import open_in_root

    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd: int = open_in_root(k, root, path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return ""
            raise ImageError(f"{where}: {path}: {os.strerror(e.errno or 0).lower()}") from None
    finally:
        os.close(root)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise ImageError(f"{where}: {path} in the image: not a regular file")
        data = f.read(MAX_DB + 1)
    if len(data) > MAX_DB:
        raise ImageError(f"{where}: {path} in the image: larger than {MAX_DB} bytes")
    return data.decode("utf-8", "replace")


# --- annotations --------------------------------------------------------------------


def _annotations(where: str, image_config: "Json", cfg: "Json") -> dict[str, str]:
    out: dict[str, str] = {}
    implicit = [
        ("os", "os"),
        ("architecture", "architecture"),
        ("variant", "variant"),
        ("os.version", "os.version"),
        ("author", "author"),
        ("created", "created"),
    ]
    for key, name in implicit:
        value = image_config.get(key)
        if isinstance(value, str) and value:
            out[PREFIX + name] = value
    features = image_config.get("os.features")
    if isinstance(features, list) and features:
        out[PREFIX + "os.features"] = ",".join(str(f) for f in features)
    stop = cfg.get("StopSignal")
    if isinstance(stop, str) and stop:
        out[PREFIX + "stopSignal"] = stop
    ports = cfg.get("ExposedPorts")
    if isinstance(ports, dict) and ports:
        out[PREFIX + "exposedPorts"] = ",".join(ports)
    volumes = cfg.get("Volumes")
    if isinstance(volumes, dict) and volumes:
        # No mounts are made (implementation-defined): the caller may; the list is kept.
        out[VOLUMES_ANNOTATION] = ",".join(volumes)
    labels = cfg.get("Labels") or {}
    if not isinstance(labels, dict):
        raise ImageError(f"{where}: config.Labels: not an object")
    for key, value in labels.items():
        if not isinstance(value, str):
            raise ImageError(f"{where}: config.Labels {key!r}: not a string")
        out[key] = value  # labels win over the implicit annotations (conversion.md)
    return out
