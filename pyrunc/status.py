"""The read side of the container lifecycle: a container's status and its state as
the spec and runc print it.  Apart from lifecycle.py so that `state` and `list`, which
only read, import no more than this."""

import posix

from pyrunc import OCI_VERSION
from pyrunc.errors import StateError
from pyrunc.linux import procfs

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from pyrunc.store import State, Store

CREATED, RUNNING, STOPPED, PAUSED, CREATING = "created", "running", "stopped", "paused", "creating"
# Not a spec status: `list` shows it for a state directory whose state.json is missing or
# corrupt; `state` says why, `delete -f` removes it (docs/cli.md).
BROKEN = "broken"
LIVE = (CREATED, RUNNING, PAUSED)  # an init that is there: what kill signals, delete -f kills


# -- the lifecycle's rules: which verb acts on a container in which status ----------------
# Every command asks these, after reading the status (start and exec first take a created
# or running container whose cgroup someone else froze as paused, as runc does).


def can_start(status: str) -> bool:
    return status == CREATED


def can_kill(status: str, all_processes: bool = False) -> bool:
    """kill --all of a stopped container signals what is left in its cgroup (runc 1.1
    succeeds there, and engines send it while they clean up)."""
    return status in LIVE or (all_processes and status == STOPPED)


def can_pause(status: str) -> bool:
    return status in (CREATED, RUNNING)


def can_resume(status: str) -> bool:
    return status == PAUSED


def can_exec(status: str, ignore_paused: bool = False) -> bool:
    return status in (CREATED, RUNNING) or (ignore_paused and status == PAUSED)


def can_delete(status: str, force: bool = False) -> bool:
    """The spec makes delete of a container that is not stopped an error; -f kills it
    first.  A `creating` one is a create that died: nothing of it runs."""
    return force or status not in LIVE


def can_update(status: str) -> bool:
    """update and events: while the container can still run."""
    return status != STOPPED


def can_checkpoint(status: str) -> bool:
    """runc refuses a created or stopped container: CRIU saves processes that run."""
    return status in (RUNNING, PAUSED)


def _exec_refusal(cid: str, status: str) -> str:
    if status == PAUSED:
        return f"cannot exec in a paused container {cid} (use --ignore-paused to override)"
    return f"cannot exec in a {status} container {cid}"


# verb -> (rule, the refusal's text from the id and the status)
RULES: "dict[str, tuple[Callable[..., bool], Callable[[str, str], str]]]" = {
    "start": (can_start, lambda cid, status: f"cannot start container {cid}: it is {status}, not created"),
    "kill": (can_kill, lambda cid, status: f"cannot kill container {cid}: container not running"),
    "pause": (can_pause, lambda cid, status: f"cannot pause container {cid}: it is {status}, not running or created"),
    "resume": (can_resume, lambda cid, status: f"cannot resume container {cid}: it is {status}, not paused"),
    "exec": (can_exec, _exec_refusal),
    "delete": (can_delete, lambda cid, status: f"cannot delete container {cid} that is not stopped: {status}"),
    "update": (can_update, lambda cid, status: f"cannot update container {cid}: container not running"),
    "checkpoint": (
        can_checkpoint,
        lambda cid, status: f"cannot checkpoint container {cid}: it is {status}, not running or paused",
    ),
    "events": (can_update, lambda cid, status: f"cannot read events of container {cid}: container not running"),
}


def check(verb: str, cid: str, status: str, **opts: bool) -> None:
    """Raise the verb's StateError when the rules refuse it `status`; `opts` are the
    rule's flags (all_processes, ignore_paused, force)."""
    rule, refusal = RULES[verb]
    if not rule(status, **opts):
        raise StateError(refusal(cid, status))


def status_of(st: "State | None") -> str:
    """The status from the stored state: no pid yet is `creating`; a pid whose process
    is gone, or is another process by now (its start time differs), is `stopped`."""
    if st is None or not st.pid:
        return CREATING
    if not procfs.is_alive(st.pid, st.pid_start):
        return STOPPED
    if st.paused:
        return PAUSED
    return RUNNING if st.started else CREATED


def oci_state(cid: str, st: "State") -> "dict[str, Any]":
    """The spec's state JSON (runtime.md, "State") in runc's field order, with runc's
    extra fields.  `pid` is 0 once the process is gone, as runc prints it."""
    status = status_of(st)
    out: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "id": cid,
        "pid": st.pid if status in (CREATED, RUNNING, PAUSED) else 0,
        "status": status,
        "bundle": st.bundle,
        "rootfs": st.rootfs,
        "created": st.created,
    }
    if st.annotations:
        out["annotations"] = st.annotations
    out["owner"] = ""
    return out


def hook_state(
    cid: str, bundle: str, annotations: "Mapping[str, str]", status: str, pid: int | None = None
) -> "dict[str, Any]":
    """The state a hook (or a seccomp listener) reads on its stdin."""
    state: dict[str, Any] = {"ociVersion": OCI_VERSION, "id": cid, "status": status, "bundle": bundle}
    if pid:
        state["pid"] = pid
    if annotations:
        state["annotations"] = annotations
    return state


def state(store: "Store", cid: str) -> "dict[str, Any]":
    return oci_state(cid, store.peek(cid))


def broken_state(cid: str, partial: "State | None") -> "dict[str, Any]":
    """A broken container as `list` shows it: what its state still says of it."""
    return {
        "ociVersion": OCI_VERSION,
        "id": cid,
        "pid": 0,
        "status": BROKEN,
        "bundle": partial.bundle if partial else "",
        "rootfs": partial.rootfs if partial else "",
        "created": partial.created if partial else "",
        "owner": "",
    }


def list_states(store: "Store", owner: "Callable[[int], str] | None" = None) -> "list[dict[str, Any]]":
    """Each container under the root as `list` shows it, by id; with `owner`, its
    "owner" is owner(uid) of the user owning its state directory ("" when it is gone).
    The root is opened once and every file read relative to it."""
    from pyrunc.store import CorruptState, read_state_file

    fd = store.open_root()
    if fd is None:
        return []
    result = []
    try:
        for cid in store.ids(fd):  # valid ids only
            path = f"{store.root}/{cid}"
            try:
                st = read_state_file(path, cid, fd)
            except CorruptState as e:
                result.append(broken_state(cid, e.partial))
            else:
                if st is not None:
                    result.append(oci_state(cid, st))
                elif store.stateless(cid):  # else deleted while we listed
                    result.append(broken_state(cid, None))
                else:
                    continue
            if owner is not None:
                try:
                    result[-1]["owner"] = owner(posix.stat(cid, dir_fd=fd).st_uid)
                except OSError:
                    pass  # deleted meanwhile: ""
    finally:
        posix.close(fd)
    return result
