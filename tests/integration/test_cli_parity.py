"""Corners of runc's command line that engines meet: `ps` of a stopped container and
`run --no-subreaper`, each beside runc on the same bundle where runc is installed."""

import json
import os
import signal
import subprocess

import pytest

from tests.integration.cli_util import pid_alive, pyrunc_cmd, runc, set_args, wait_for, wait_for_file  # noqa: F401 (runc: a fixture)


def _stopped(state, cid):
    wait_for(lambda: state(cid)["status"] == "stopped", f"{cid} to stop")


def test_ps_of_a_stopped_container_is_the_header_alone_or_null(pyrunc, bundle, test_id):
    set_args(bundle, "sleep", "1000")
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id).code == 0
    assert pyrunc("kill", test_id, "KILL").code == 0
    _stopped(pyrunc.state, test_id)
    table = pyrunc("ps", test_id)
    assert table.code == 0 and table.err == "", table
    assert table.out.splitlines() == [table.out.splitlines()[0]] and "PID" in table.out.split(), table
    # runc encodes its empty list of pids as Go's nil slice.
    r = pyrunc("ps", "--format", "json", test_id)
    assert (r.code, r.out, json.loads(r.out)) == (0, "null\n", None), r
    custom = pyrunc("ps", test_id, "-o", "pid,comm")
    assert (custom.code, custom.out.split()) == (0, ["PID", "COMMAND"]), custom


def test_ps_of_a_stopped_container_prints_what_runc_prints(pyrunc, runc, bundle, test_id):
    set_args(bundle, "sleep", "1000")
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id).code == 0
    runc.use(bundle)
    rid = test_id + "-runc"
    assert runc("run", "-d", "--bundle", bundle.path, rid)[0] == 0
    assert pyrunc("kill", test_id, "KILL").code == 0 and runc("kill", rid, "KILL")[0] == 0
    _stopped(pyrunc.state, test_id)
    _stopped(runc.state, rid)
    for flags in ((), ("--format", "json")):
        r = pyrunc("ps", *flags, test_id)
        assert (r.code, r.out, r.err) == runc("ps", *flags, rid), flags


def test_ps_of_an_unknown_container_is_still_an_error(pyrunc):
    r = pyrunc("ps", "pyrunc-test-nosuch")
    assert r.code == 1 and "does not exist" in r.err, r


# --- run --no-subreaper --------------------------------------------------------------


def test_no_subreaper_still_returns_the_status_of_the_init(pyrunc, bundle, test_id):
    """With a pid namespace the init's first parent exits: the init must be ours all the
    same, or its status would be lost (255)."""
    set_args(bundle, "sh", "-c", "exit 3")
    r = pyrunc("run", "--no-subreaper", "--bundle", bundle.path, test_id)
    assert (r.code, r.err) == (3, ""), r


def _ppid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("flags", [(), ("--no-subreaper",)], ids=["subreaper", "no-subreaper"])
def test_an_orphan_of_the_container_goes_to_run_only_as_subreaper(pyrunc, bundle, test_id, flags):
    """In the host's pid namespace a process the container orphans goes to the nearest
    subreaper: `run` itself, or with --no-subreaper the host's (as runc's)."""
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "pid"]
    set_args(bundle, "sh", "-c", "sh -c 'sleep 999 & echo $! $$ > /tmp/orphan'; sleep 1000")
    run = subprocess.Popen(
        pyrunc_cmd(pyrunc, "run", *flags, "--bundle", bundle.path, test_id),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        orphan, middle = map(int, wait_for_file(os.path.join(bundle.rootfs, "tmp", "orphan")).split())
        parent = wait_for(lambda: (lambda p: p != middle and p)(_ppid(orphan)), "the middle shell to exit")
        init = pyrunc.state(test_id)["pid"]
        assert _ppid(init) == run.pid  # the init is run's child either way
        if flags:
            assert parent not in (run.pid, init), (parent, run.pid)
        else:
            assert parent == run.pid
    finally:
        pyrunc("kill", "--all", test_id, "KILL")
        code = run.wait(timeout=60)
    assert code == 128 + signal.SIGKILL
    assert not pid_alive(orphan)
