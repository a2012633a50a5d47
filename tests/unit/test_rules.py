"""The lifecycle's rules (status.py): which verb acts on a container in which status, and
the exact line each refusal gives.  Every command asks these; the table is the contract."""

import pytest

from pyrunc import status
from pyrunc.errors import StateError

CID = "pyrunc-test-r"
ALL = ("creating", "created", "running", "paused", "stopped")

# (verb, flags) -> {status: None when allowed, else the refusal's text}
TABLE = {
    ("start", ()): {
        "creating": f"cannot start container {CID}: it is creating, not created",
        "created": None,
        "running": f"cannot start container {CID}: it is running, not created",
        "paused": f"cannot start container {CID}: it is paused, not created",
        "stopped": f"cannot start container {CID}: it is stopped, not created",
    },
    ("kill", ()): {
        "creating": f"cannot kill container {CID}: container not running",
        "created": None,
        "running": None,
        "paused": None,
        "stopped": f"cannot kill container {CID}: container not running",
    },
    ("kill", ("all_processes",)): {
        "creating": f"cannot kill container {CID}: container not running",
        "created": None,
        "running": None,
        "paused": None,
        "stopped": None,
    },
    ("pause", ()): {
        "creating": f"cannot pause container {CID}: it is creating, not running or created",
        "created": None,
        "running": None,
        "paused": f"cannot pause container {CID}: it is paused, not running or created",
        "stopped": f"cannot pause container {CID}: it is stopped, not running or created",
    },
    ("resume", ()): {
        "creating": f"cannot resume container {CID}: it is creating, not paused",
        "created": f"cannot resume container {CID}: it is created, not paused",
        "running": f"cannot resume container {CID}: it is running, not paused",
        "paused": None,
        "stopped": f"cannot resume container {CID}: it is stopped, not paused",
    },
    ("exec", ()): {
        "creating": f"cannot exec in a creating container {CID}",
        "created": None,
        "running": None,
        "paused": f"cannot exec in a paused container {CID} (use --ignore-paused to override)",
        "stopped": f"cannot exec in a stopped container {CID}",
    },
    ("exec", ("ignore_paused",)): {
        "creating": f"cannot exec in a creating container {CID}",
        "created": None,
        "running": None,
        "paused": None,
        "stopped": f"cannot exec in a stopped container {CID}",
    },
    ("delete", ()): {
        "creating": None,
        "created": f"cannot delete container {CID} that is not stopped: created",
        "running": f"cannot delete container {CID} that is not stopped: running",
        "paused": f"cannot delete container {CID} that is not stopped: paused",
        "stopped": None,
    },
    ("delete", ("force",)): dict.fromkeys(ALL),
    ("update", ()): {
        "creating": None,
        "created": None,
        "running": None,
        "paused": None,
        "stopped": f"cannot update container {CID}: container not running",
    },
    ("checkpoint", ()): {
        "creating": f"cannot checkpoint container {CID}: it is creating, not running or paused",
        "created": f"cannot checkpoint container {CID}: it is created, not running or paused",
        "running": None,
        "paused": None,
        "stopped": f"cannot checkpoint container {CID}: it is stopped, not running or paused",
    },
    ("events", ()): {
        "creating": None,
        "created": None,
        "running": None,
        "paused": None,
        "stopped": f"cannot read events of container {CID}: container not running",
    },
}


@pytest.mark.parametrize("verb, flags, state", [(v, f, s) for (v, f) in TABLE for s in ALL])
def test_each_verb_in_each_status(verb, flags, state):
    want = TABLE[verb, flags][state]
    opts = dict.fromkeys(flags, True)
    if want is None:
        status.check(verb, CID, state, **opts)
    else:
        with pytest.raises(StateError) as e:
            status.check(verb, CID, state, **opts)
        assert str(e.value) == want


def test_every_verb_has_its_rows():
    assert {verb for verb, _ in TABLE} == set(status.RULES)
    assert all(set(row) == set(ALL) for row in TABLE.values())
