"""`linux.intelRdt` (config-linux.md, "IntelRdt"): the container's resctrl group.

A group is a directory of the resctrl filesystem: its `schemata` file holds the cache
and memory bandwidth allocations, its `tasks` file the processes in it (a fork inherits
the group).  The group is `closID`, or the container's id; `/` is the default group, the
root.  A monitoring group (`enableMonitoring`) is `mon_groups/<id>` under it.  `root` is
a parameter so that unit tests can stand a temporary directory in for /sys/fs/resctrl.

The parent does all of it, before the init can run user code: `apply` with stage 1's
pid (the init, forked later, inherits the group), `add` for an exec'd process, `remove`
at delete (the group only when pyrunc made it and closID was not set; the monitoring
group always), `update_schemata` for `update --l3-cache-schema/--mem-bw-schema`.
"""

import errno
import os

from pyrunc.errors import ContainerError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

RESCTRL_ROOT = "/sys/fs/resctrl"
FIELD = "linux.intelRdt"


def available(root: str | None = None) -> bool:
    """Whether a resctrl filesystem is mounted at `root`: its root group's files are there."""
    root = root or RESCTRL_ROOT
    return all(os.path.isfile(os.path.join(root, name)) for name in ("schemata", "tasks"))


def check_host(rdt: "Mapping[str, Any]", root: str | None = None) -> None:
    """Refuse intelRdt where the host has no resctrl (the spec: an error), before create
    makes anything."""
    root = root or RESCTRL_ROOT
    if not available(root):
        raise ContainerError(
            None,
            f"{FIELD}: no resctrl filesystem is mounted at {root} (this host has no Intel RDT, or it is not mounted)",
        )


def schema_lines(rdt: "Mapping[str, Any]") -> list[tuple[str, str]]:
    """The lines for `schemata`, in the spec's order: l3CacheSchema, memBwSchema, then
    each line of schemata."""
    lines = [(f"{FIELD}.{key}", rdt[key]) for key in ("l3CacheSchema", "memBwSchema") if rdt.get(key)]
    lines += [(f"{FIELD}.schemata[{i}]", line) for i, line in enumerate(rdt.get("schemata") or ())]
    return lines


def apply(container_id: str, rdt: "Mapping[str, Any]", pid: int, root: str | None = None) -> "dict[str, Any]":
    """Put `pid` in the container's group, made and written as the spec says; the record
    of what was made, for `add` and `remove` (saved in the state before anything else
    can fail)."""
    root = root or RESCTRL_ROOT
    clos = rdt.get("closID")
    group = root if clos == "/" else os.path.join(root, clos or container_id)
    lines = schema_lines(rdt)
    saved: dict[str, Any] = {"root": root, "group": group, "remove_group": False, "mon_group": None}
    exists = os.path.isdir(group)
    if clos and not lines and not exists:
        raise ContainerError(None, f"{FIELD}.closID {clos!r}: no such group in {root}")
    try:
        if not exists:
            _mkdir(group, f"{FIELD}.closID {clos or container_id!r}")
            # The spec: pyrunc removes only a group it made for the container's own id.
            saved["remove_group"] = not clos
        if clos and exists and lines:
            _check_matches(group, lines)  # a group that others may use: never rewritten
        else:
            for field, line in lines:
                _write_schema(group, root, field, line)
        if rdt.get("enableMonitoring"):
            mon = os.path.join(group, "mon_groups", container_id)
            _mkdir(mon, f"{FIELD}.enableMonitoring")
            saved["mon_group"] = mon
        add(saved, pid)
    except BaseException:
        remove(saved)
        raise
    return saved


def add(saved: "Mapping[str, Any]", pid: int) -> None:
    """Put `pid` in the group (and in its monitoring group: a task is in both)."""
    target = saved["mon_group"] or saved["group"]
    what = f"{FIELD}: add process {pid} to {target}"
    err = _write(os.path.join(target, "tasks"), f"{pid}\n", what)
    if err:
        raise ContainerError(None, f"{what}: {os.strerror(err).lower()}")


def remove(saved: "Mapping[str, Any]") -> None:
    """Remove what `apply` made; the kernel moves any task left back to the parent group."""
    for key in ("mon_group", "group"):
        path = saved.get(key)
        if path and (key == "mon_group" or saved.get("remove_group")):
            try:
                os.rmdir(path)
            except FileNotFoundError:
                pass
            except OSError as e:
                raise ContainerError(None, f"{FIELD}: remove {path}: {_strerror(e)}") from None


def update_schemata(
    saved: "Mapping[str, Any]", l3_cache_schema: str | None = None, mem_bw_schema: str | None = None
) -> None:
    """`update --l3-cache-schema/--mem-bw-schema`: write them to the container's group."""
    for field, line in ((f"{FIELD}.l3CacheSchema", l3_cache_schema), (f"{FIELD}.memBwSchema", mem_bw_schema)):
        if line is not None:
            _write_schema(saved["group"], saved["root"], field, line)


def _mkdir(path: str, field: str) -> None:
    try:
        os.mkdir(path, 0o755)
    except OSError as e:
        raise ContainerError(None, f"{field}: create {path}: {_strerror(e)}") from None


def _strerror(e: OSError) -> str:
    return os.strerror(e.errno).lower() if e.errno is not None else str(e)


def _write(path: str, text: str, what: str) -> int:
    """0, or the errno of a refused write (an open that fails raises, naming `what`)."""
    # Appending: resctrl takes each write whole, whatever the offset; a plain directory
    # standing in for it in tests then holds every line written, in order.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise ContainerError(None, f"{what}: {_strerror(e)}") from None
    try:
        os.write(fd, text.encode())
    except OSError as e:
        return e.errno or errno.EIO  # never 0: the write was refused
    finally:
        os.close(fd)
    return 0


def _write_schema(group: str, root: str, field: str, line: str) -> None:
    err = _write(os.path.join(group, "schemata"), line + "\n", f"{field}: open {group}/schemata")
    if err:
        # The kernel says why in info/last_cmd_status ("Unknown or unsupported resource").
        why = _read(os.path.join(root, "info", "last_cmd_status")) or os.strerror(err).lower()
        raise ContainerError(None, f"{field} {line!r}: the kernel refused it: {why}")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read(4096).strip()
    except OSError:
        return ""


def _parse(line: str) -> tuple[str, dict[str, int | str]]:
    """'L3:0=7f0;1=1f' -> ('L3', {'0': 0x7f0, '1': 0x1f}); values as numbers (bitmasks in
    hex, MB in decimal), as the kernel shows them padded or not."""
    name, _, domains = line.strip().partition(":")
    base = 10 if name.strip().upper().startswith("MB") else 16
    values: dict[str, int | str] = {}
    for part in domains.split(";"):
        dom, _, value = part.partition("=")
        try:
            values[dom.strip()] = int(value.strip(), base)
        except ValueError:
            values[dom.strip()] = value.strip()
    return name.strip().upper(), values


def _check_matches(group: str, lines: list[tuple[str, str]]) -> None:
    """An existing closID group must already hold the schema the config asks for."""
    have: dict[str, tuple[dict[str, int | str], str]] = {}
    for text in _read(os.path.join(group, "schemata")).splitlines():
        name, values = _parse(text)
        if name:
            have[name] = (values, text.strip())
    for field, line in lines:
        name, want = _parse(line)
        values, shown = have.get(name, ({}, "nothing"))
        if any(values.get(dom) != value for dom, value in want.items()):
            raise ContainerError(
                None, f"{field} {line!r} does not match the existing group {group}, which has {shown!r}"
            )
