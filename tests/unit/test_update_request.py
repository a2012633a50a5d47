"""update's input is read on the command line into one typed request (cli/update.py,
control.UpdateRequest); control.update takes that request, never the flag dict."""

import subprocess

import pytest

from pyrunc import control
from pyrunc.cli import update
from pyrunc.cli.commands import UPDATE_FLAGS
from pyrunc.cli.flags import parse
from pyrunc.errors import StateError
from pyrunc.linux import Seams
from pyrunc.store import State, Store


def request(*argv):
    opts, pos = parse(list(argv), UPDATE_FLAGS, "update")
    return update.request(opts)


def test_the_flags_become_a_request():
    r = request(
        "--memory",
        "64m",
        "--cpu-quota",
        "5000",
        "--cpuset-cpus",
        "0-1",
        "--pids-limit",
        "9",
        "--l3-cache-schema",
        "L3:0=7f0",
    )
    assert isinstance(r, control.UpdateRequest)
    assert r.resources == {"memory": {"limit": 64 << 20}, "cpu": {"quota": 5000, "cpus": "0-1"}, "pids": {"limit": 9}}
    assert (r.l3_cache_schema, r.mem_bw_schema) == ("L3:0=7f0", None)
    assert r.rdt() == {"l3CacheSchema": "L3:0=7f0"}


def test_a_resources_file_wins_over_the_flags(tmp_path):
    (tmp_path / "r.json").write_text('{"pids": {"limit": 3}}')
    r = request("--resources", str(tmp_path / "r.json"), "--memory", "64m", "--mem-bw-schema", "MB:0=20")
    assert r.resources == {"pids": {"limit": 3}} and r.rdt() == {"memBwSchema": "MB:0=20"}


def test_update_of_a_stopped_container_is_refused(tmp_path):
    store = Store(str(tmp_path / "state"))
    proc = subprocess.Popen(["true"])
    proc.wait()
    st = State("pyrunc-test-u", "/nonexistent-bundle", "/r", "2024-01-01T00:00:00Z", {}, {}, "/pyrunc-test-u")
    with store.create("pyrunc-test-u", st) as cdir:
        st.pid, st.pid_start, st.started = proc.pid, 1, True
        cdir.write_state(st)
    with pytest.raises(StateError, match="^cannot update container pyrunc-test-u: container not running$"):
        control.update(store, "pyrunc-test-u", request("--pids-limit", "9"), Seams())
