"""An init that dies before it reports (a signal, an exit, the OOM killer: nothing it can
tell) is reported in the user's terms: which step it was in and how it died; nothing is
left behind.  The OOM case is in tests/cgroup/test_init_oom.py."""

import os
import sys

import pytest

from tests.integration.cli_util import assert_nothing_left, log_lines, set_args

# A createRuntime hook, run by the runtime while the init waits for it, that kills the
# init (the state on its stdin names it): the init dies in the middle of its set-up.
KILL_INIT = "import json, os, sys; os.kill(json.load(sys.stdin)['pid'], 9)"


def killing_hook(bundle):
    set_args(bundle, "sleep", "300")
    bundle.config["hooks"] = {"createRuntime": [{"path": sys.executable, "args": [sys.executable, "-c", KILL_INIT]}]}
    bundle.write()


@pytest.mark.parametrize("command", ["create", "run"])
def test_init_killed_during_setup_names_the_step_and_the_signal(pyrunc, bundle, test_id, command):
    killing_hook(bundle)
    args = [command, "--bundle", bundle.path, test_id]
    if command == "run":
        args.insert(1, "-d")
    r = pyrunc(*args)
    assert r.code == 1, r
    assert r.err == (
        f"pyrunc: create {test_id}: container init was killed by signal SIGKILL in step "
        f'"run createRuntime hooks" before it was ready\n'
    ), r
    assert "exited unexpectedly" not in r.err and "cgroup_joined" not in r.err
    # The --log line says where too, and the init's step in its "steps:" suffix.
    errors = [msg for level, msg in log_lines(pyrunc.log) if level == "error"]
    assert errors and 'killed by signal SIGKILL in step "run createRuntime hooks"' in errors[-1]
    assert errors[-1].endswith("; init: run createRuntime hooks)"), errors
    assert_nothing_left(pyrunc, test_id, bundle)
    cg = bundle.config["linux"]["cgroupsPath"].lstrip("/").split("/")[0]
    assert [h for h in os.listdir("/sys/fs/cgroup") if os.path.exists(f"/sys/fs/cgroup/{h}/{cg}")] == []


def test_init_that_dies_without_a_pid_namespace_is_reported_too(pyrunc, bundle, test_id):
    """Without a new pid namespace the init is the runtime's own child, not an orphan."""
    killing_hook(bundle)
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1, r
    assert r.err.endswith(
        'container init was killed by signal SIGKILL in step "run createRuntime hooks" before it was ready\n'
    ), r
    assert_nothing_left(pyrunc, test_id, bundle)
