"""The read side of the container lifecycle: a container's status and its state as
the spec and runc print it.  Apart from lifecycle.py so that `state` and `list`, which
only read, import no more than this."""

from pyrunc import OCI_VERSION
from pyrunc.linux import procfs

CREATED, RUNNING, STOPPED, PAUSED, CREATING = "created", "running", "stopped", "paused", "creating"
# Not a spec status: `list` shows it for a state directory whose state.json is missing or
# corrupt; `state` says why, `delete -f` removes it (docs/cli.md).
BROKEN = "broken"


def status_of(st):
    """The status from the stored state: no pid yet is `creating`; a pid whose process
    is gone, or is another process by now (its start time differs), is `stopped`."""
    if st is None or not st.get("pid"):
        return CREATING
    if not procfs.is_alive(st["pid"], st.get("pid_start")):
        return STOPPED
    if st.get("paused"):
        return PAUSED
    return RUNNING if st.get("started") else CREATED


def oci_state(cid, st):
    """The spec's state JSON (runtime.md, "State") in runc's field order, with runc's
    extra fields.  `pid` is 0 once the process is gone, as runc prints it."""
    status = status_of(st)
    out = {"ociVersion": OCI_VERSION, "id": cid,
           "pid": st["pid"] if status in (CREATED, RUNNING, PAUSED) else 0,
           "status": status, "bundle": st["bundle"], "rootfs": st.get("rootfs", ""),
           "created": st.get("created", "")}
    if st.get("annotations"):
        out["annotations"] = st["annotations"]
    out["owner"] = ""
    return out


def hook_state(cid, st, status, pid=None):
    state = {"ociVersion": OCI_VERSION, "id": cid, "status": status, "bundle": st["bundle"]}
    if pid:
        state["pid"] = pid
    if st.get("annotations"):
        state["annotations"] = st["annotations"]
    return state


def state(store, cid):
    return oci_state(cid, store.peek(cid))


def broken_state(cid, partial):
    """A broken container as `list` shows it: what its state still says of it."""
    partial = partial or {}
    return {"ociVersion": OCI_VERSION, "id": cid, "pid": 0, "status": BROKEN,
            "bundle": partial.get("bundle", ""), "rootfs": partial.get("rootfs", ""),
            "created": partial.get("created", ""), "owner": ""}


def list_states(store):
    from pyrunc.store import CorruptState, read_state_file
    result = []
    for cid in store.ids():  # valid ids only
        path = f"{store.root}/{cid}"
        try:
            st = read_state_file(path, cid)
        except CorruptState as e:
            result.append(broken_state(cid, e.partial))
            continue
        if st is not None:
            result.append(oci_state(cid, st))
        elif store.stateless(cid):  # else deleted while we listed
            result.append(broken_state(cid, None))
    return result
