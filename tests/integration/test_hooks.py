"""Lifecycle hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle"): each kind
at its moment, with the state on stdin, args and env as given, in the right namespaces,
with a timeout, and failing the way the spec says.

Every hook is busybox run as `sh -c SCRIPT` (args[0] "sh" picks the applet, so a hook
only works when args[0] is passed as given) that appends one line to a record file inside
the rootfs: /record in the container, <rootfs>/record on the host."""

import json
import os

import pytest

from tests.conftest import BUSYBOX
from tests.integration.cli_util import assert_nothing_left, log_lines, pid_alive, runc, set_args, wait_for

__all__ = ["runc"]  # the fixture

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# startContainer resolves its path in the container, every other kind on the host.
IN_CONTAINER = {"startContainer"}

RECORD = (
    'state=$(cat); pid=$(echo "$state" | sed -n \'s/.*"pid": *\\([0-9]*\\).*/\\1/p\'); '
    'cmd=$(tr "\\0" " " < /proc/${pid:-0}/cmdline 2>/dev/null); '
    'echo "$0|$state|$(readlink /proc/self/ns/mnt)|$(readlink /proc/self/ns/uts)|'
    '${HOOKVAR-}|${HOME-unset}|$1|$cmd" >> "$REC"'
)


def hook(bundle, kind, script=RECORD, timeout=None, extra_args=("extra-arg",)):
    busybox = "/bin/busybox" if kind in IN_CONTAINER else BUSYBOX
    record = "/record" if kind in IN_CONTAINER else os.path.join(bundle.rootfs, "record")
    h = {
        "path": busybox,
        "args": ["sh", "-c", script, kind, *extra_args],
        "env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin", f"HOOKVAR=var-{kind}", f"REC={record}"],
    }
    if timeout:
        h["timeout"] = timeout
    return h


def with_hooks(bundle, *kinds, **special):
    """Recording hooks for `kinds`; `special` maps a kind to a replacement script."""
    hooks = {k: [hook(bundle, k)] for k in kinds}
    for kind, h in special.items():
        hooks.setdefault(kind, []).append(h)
    bundle.config["hooks"] = hooks
    bundle.write()


def records(bundle):
    path = os.path.join(bundle.rootfs, "record")
    if not os.path.exists(path):
        return []
    rows = []
    for line in open(path).read().splitlines():
        name, state, mnt, uts, var, home, arg, cmd = line.split("|")
        rows.append(
            {
                "name": name,
                "state": json.loads(state),
                "mnt": mnt,
                "uts": uts,
                "var": var,
                "home": home,
                "arg": arg,
                "cmd": cmd.strip(),
            }
        )
    return rows


def host_ns(kind):
    return os.readlink(f"/proc/self/ns/{kind}")


@pytest.fixture
def sleeper(bundle):
    set_args(bundle, "sleep", "300")
    return bundle


def test_every_hook_runs_in_order_with_the_state(pyrunc, sleeper, test_id):
    bundle = sleeper
    bundle.config["annotations"] = {"org.example.key": "value"}
    with_hooks(bundle, *KINDS)
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    pid = pyrunc.state(test_id)["pid"]
    container_ns = {k: os.readlink(f"/proc/{pid}/ns/{k}") for k in ("mnt", "uts")}
    assert [h["name"] for h in records(bundle)] == ["prestart", "createRuntime", "createContainer"]
    assert pyrunc("start", test_id).code == 0
    assert [h["name"] for h in records(bundle)][3:] == ["startContainer", "poststart"]
    assert pyrunc("kill", test_id, "KILL").code == 0
    wait_for(lambda: not pid_alive(pid), "the container to exit")
    assert pyrunc("delete", test_id).code == 0

    rows = records(bundle)
    assert [h["name"] for h in rows] == list(KINDS)
    expected_status = {
        "prestart": "creating",
        "createRuntime": "creating",
        "createContainer": "creating",
        "startContainer": "created",
        "poststart": "running",
        "poststop": "stopped",
    }
    for h in rows:
        st = h["state"]
        assert st["status"] == expected_status[h["name"]], h
        assert (st["id"], st["bundle"]) == (test_id, bundle.path)
        assert st["annotations"] == {"org.example.key": "value"}
        assert st["ociVersion"]
        if h["name"] == "poststop":
            assert st.get("pid", 0) == 0
        else:
            assert st["pid"] == pid, h  # the init's pid as the host sees it
        # args (args[0] included) and exactly the env given
        assert h["arg"] == "extra-arg" and h["var"] == f"var-{h['name']}" and h["home"] == "unset"
        # runtime namespace or container namespace
        in_container = h["name"] in ("createContainer", "startContainer")
        assert h["mnt"] == (container_ns["mnt"] if in_container else host_ns("mnt")), h
        assert h["uts"] == (container_ns["uts"] if in_container else host_ns("uts")), h
    # poststart runs once the user's program runs
    assert rows[4]["cmd"] == "sleep 300"


def test_hooks_of_run(pyrunc, bundle, test_id):
    set_args(bundle, "true")
    with_hooks(bundle, *KINDS)
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    assert [h["name"] for h in records(bundle)] == list(KINDS)


def test_config_changes_after_create_do_not_change_the_hooks(pyrunc, sleeper, test_id):
    bundle = sleeper
    with_hooks(bundle, "poststart", "poststop")
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    bundle.config["hooks"] = {}
    bundle.write()
    assert pyrunc("start", test_id).code == 0
    assert pyrunc("delete", "--force", test_id).code == 0
    assert [h["name"] for h in records(bundle)] == ["poststart", "poststop"]


FAIL = 'echo "hook says no" >&2; exit 3'


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(pyrunc, sleeper, test_id, kind):
    bundle = sleeper
    with_hooks(bundle, *KINDS, **{kind: hook(bundle, kind, FAIL)})
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1
    assert r.err.startswith(f"pyrunc: create {test_id}: {kind} hook #1 ") and r.err.count("\n") == 1, r
    assert "exit status 3: hook says no" in r.err
    assert_nothing_left(pyrunc, test_id, bundle)
    names = [h["name"] for h in records(bundle)]
    assert names == list(KINDS[: KINDS.index(kind) + 1])  # nothing ran after the failure


def test_hook_timeout_fails_create_and_kills_the_hook(pyrunc, sleeper, test_id):
    bundle = sleeper
    slow = hook(bundle, "createRuntime", "sleep 600; true", timeout=1)
    with_hooks(bundle, createRuntime=slow)
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and "createRuntime hook #0" in r.err and "timed out after 1s" in r.err, r
    # the hook ran in the bundle: a `sleep 600` left over would be found by its cwd
    assert_nothing_left(pyrunc, test_id, bundle)


def test_hook_within_its_timeout_succeeds(pyrunc, sleeper, test_id):
    bundle = sleeper
    with_hooks(bundle, createRuntime=hook(bundle, "createRuntime", timeout=30))
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    assert [h["name"] for h in records(bundle)] == ["createRuntime"]


def test_missing_hook_binary_fails_create(pyrunc, sleeper, test_id):
    bundle = sleeper
    bundle.config["hooks"] = {"createRuntime": [{"path": "/nonexistent/pyrunc-test-hook"}]}
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and "createRuntime hook #0 (/nonexistent/pyrunc-test-hook)" in r.err, r
    assert_nothing_left(pyrunc, test_id, bundle)


def test_failing_start_container_hook_fails_start_and_stops(pyrunc, sleeper, test_id):
    bundle = sleeper
    with_hooks(bundle, "poststart", startContainer=hook(bundle, "startContainer", FAIL))
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    r = pyrunc("start", test_id)
    assert r.code == 1 and "startContainer hook #0" in r.err and "hook says no" in r.err, r
    assert pyrunc.state(test_id)["status"] == "stopped"
    assert records(bundle) == []  # no poststart
    assert pyrunc("delete", test_id).code == 0
    assert_nothing_left(pyrunc, test_id, bundle)


def test_failing_poststart_hook_stops_the_container_and_errors(pyrunc, sleeper, test_id):
    bundle = sleeper
    with_hooks(bundle, poststart=hook(bundle, "poststart", FAIL))
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    r = pyrunc("start", test_id)
    assert r.code == 1 and f"start {test_id}: poststart hook #0" in r.err and "hook says no" in r.err, r
    assert pyrunc.state(test_id)["status"] == "stopped"
    assert pyrunc("delete", test_id).code == 0


def test_failing_poststop_hook_only_warns(pyrunc, sleeper, test_id):
    bundle = sleeper
    with_hooks(bundle, poststop=hook(bundle, "poststop", FAIL))
    bundle.config["hooks"]["poststop"].append(hook(bundle, "poststop"))  # still runs
    bundle.write()
    assert pyrunc("create", "--bundle", bundle.path, test_id).code == 0
    r = pyrunc("delete", "--force", test_id)
    assert r.code == 0, r
    warnings = [msg for level, msg in log_lines(pyrunc.log) if level == "warning"]
    assert any("poststop hook #0" in w and "hook says no" in w for w in warnings), warnings
    assert [h["name"] for h in records(bundle)] == ["poststop"]
    assert pyrunc("state", test_id).code == 1


def test_run_with_a_failing_poststart_exits_1_and_cleans_up(pyrunc, sleeper, test_id):
    bundle = sleeper
    with_hooks(bundle, "poststop", poststart=hook(bundle, "poststart", FAIL))
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 1 and "poststart hook #0" in r.err, r
    assert_nothing_left(pyrunc, test_id, bundle)
    assert [h["name"] for h in records(bundle)] == ["poststop"]


def test_runc_runs_the_same_hooks_in_the_same_namespaces(runc, sleeper, test_id):
    """runc on the same bundle: the same kinds, each in the same namespace as ours.  (runc
    runs startContainer in its init while `start` runs poststart, so their order races
    there; pyrunc waits for the exec before poststart, as runtime.md orders them.)"""
    bundle = sleeper
    runc.use(bundle)
    with_hooks(bundle, *KINDS)
    code, _, err = runc("create", "--bundle", bundle.path, test_id)
    assert code == 0, err
    assert runc("start", test_id)[0] == 0
    runc("delete", "--force", test_id)
    rows = {h["name"]: h for h in records(bundle)}
    assert sorted(rows) == sorted(KINDS)
    for name, h in rows.items():
        in_runtime = name not in ("createContainer", "startContainer")
        assert (h["mnt"] == host_ns("mnt")) == in_runtime, h
        assert (h["uts"] == host_ns("uts")) == in_runtime, h
        assert h["arg"] == "extra-arg" and h["var"] == f"var-{name}"


# --- the working directory of each kind --------------------------------------------------


def _pwd_hooks(bundle):
    """Every kind writes `kind pwd` to the record file; the process's cwd is /tmp."""
    hooks = {}
    for kind in KINDS:
        h = hook(bundle, kind, script='echo "$0 $(pwd)" >> "$REC"', extra_args=())
        hooks[kind] = [h]
    bundle.config["hooks"] = hooks
    bundle.config["process"]["cwd"] = "/tmp"
    set_args(bundle, "true")


def _pwds(bundle):
    path = os.path.join(bundle.rootfs, "record")
    with open(path) as f:
        rows = dict(line.split(" ", 1) for line in f.read().splitlines())
    os.unlink(path)
    return rows


def test_each_kind_of_hook_runs_in_the_directory_runc_gives_it(pyrunc, runc, bundle, test_id):
    """createContainer in the rootfs (before pivot_root, in the container's mount
    namespace), startContainer in process.cwd, the runtime's hooks in the bundle."""
    _pwd_hooks(bundle)
    runc.use(bundle)
    code, _, err = runc("run", "--bundle", bundle.path, test_id + "-runc")
    assert code == 0, err
    theirs = _pwds(bundle)
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    ours = _pwds(bundle)
    assert ours == theirs
    assert ours["createContainer"] == bundle.rootfs and ours["startContainer"] == "/tmp", ours
    assert {ours[k] for k in ("prestart", "createRuntime", "poststart", "poststop")} == {bundle.path}


def test_a_create_container_hook_can_bind_into_the_rootfs_by_a_relative_path(pyrunc, runc, bundle, test_id, tmp_path):
    """The use runc users rely on: `touch ./lib/x && mount --bind FILE ./lib/x`."""
    host_file = tmp_path / "from-the-hook"
    host_file.write_text("bound-by-the-hook\n")
    script = f"mkdir -p ./lib && touch ./lib/x && mount --bind {host_file} ./lib/x"
    bundle.config["hooks"] = {"createContainer": [{"path": BUSYBOX, "args": ["sh", "-c", script]}]}
    set_args(bundle, "cat", "/lib/x")
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert (r.code, r.out) == (0, "bound-by-the-hook\n"), r
    assert not os.path.exists(os.path.join(bundle.path, "lib")), "the hook ran in the bundle"
    runc.use(bundle)
    code, out, err = runc("run", "--bundle", bundle.path, test_id + "-runc")
    assert (code, out) == (0, "bound-by-the-hook\n"), err
