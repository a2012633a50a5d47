"""Corners of runc's command line that engines meet: `ps` of a stopped container and
`run --no-subreaper`, each beside runc on the same bundle where runc is installed."""

import json

from tests.integration.cli_util import runc, set_args, wait_for  # noqa: F401 (runc: a fixture)


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
