"""No input makes pyrunc crash or lose its error line (issue 18).

Every file pyrunc reads -- config.json (validate, create, run), process.json (exec -p),
the resources of update -r (a file and stdin), a container's state.json (state, list,
delete -f) and a trace file (trace show) -- is fed generated malformed and truncated
versions of a valid one.  Each command must end with exit status 1 (255 for exec, as
runc's), one line on stderr,
one error line in the --log file (text or JSON), no traceback, and nothing left behind:
no state directory, no mount under the bundle, no cgroup under the test's parent, no
process.  A broken state.json is shown by `list` as broken and removed by `delete -f`.

The console socket and the notify socket carry nothing pyrunc parses: pyrunc only sends
the pty master to the first, and looks for READY=1 in what the container sends to the
second (any other datagram is ignored, as runc does): no reader of theirs to feed.
"""

import json
import os
import re
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_bundle
from tests.integration.cli_util import processes_mentioning, wait_for

EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


# -- generated damage ---------------------------------------------------------------------


def _parses(data):
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


def _flipped(data, flips):
    out = bytearray(data)
    for pos, action, byte in flips:
        if not out:
            break
        pos %= len(out)
        if action == 0:
            out[pos] = byte
        elif action == 1:
            out.insert(pos, byte)
        else:
            del out[pos]
    return bytes(out)


JSON_BYTES = st.sampled_from(list(b'{}[]:,"\\ \n0-.etn') + [0x00, 0x80, 0xFF, 0xC3])


def damaged(valid):
    """Malformed versions of the valid document `valid` (bytes): cut short, or with a few
    bytes replaced, inserted or dropped; never one that still parses."""
    cut = st.integers(0, len(valid) - 1).map(lambda n: valid[:n])
    flipped = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), JSON_BYTES), min_size=1, max_size=3).map(
        lambda flips: _flipped(valid, flips)
    )
    return st.one_of(cut, flipped).filter(lambda d: not _parses(d))


FORMATS = st.sampled_from(["text", "json"])


# -- running pyrunc and checking what it says ----------------------------------------------


def run(pyrunc, fmt, *args, stdin=None):
    """pyrunc with a --log of its own in `fmt`: (result, the log's lines)."""
    pyrunc.log = os.path.join(pyrunc.tmp, f"log-{uuid.uuid4().hex}")
    r = pyrunc(*args, extra=("--log-format", fmt), **({"stdin": stdin} if stdin is not None else {}))
    lines = []
    if os.path.exists(pyrunc.log):
        with open(pyrunc.log) as f:
            lines = f.read().splitlines()
        os.unlink(pyrunc.log)
    return r, lines


def levels(lines, fmt):
    """The level of each log line; a JSON line must parse as JSON."""
    if fmt == "json":
        return [json.loads(line)["level"] for line in lines]
    found = []
    for line in lines:
        m = re.match(r'time="[^"]*" level=(\w+) msg="', line)
        assert m, f"not a log line: {line!r}"
        found.append(m.group(1))
    return found


def assert_one_error(r, lines, fmt, code=1):
    """Exit 1 (exec: 255, runc's status for a runtime failure), one `pyrunc: ` line on
    stderr, one error line in the log, no traceback."""
    assert r.code == code, r
    assert r.err.endswith("\n") and r.err.count("\n") == 1 and r.err.startswith("pyrunc: "), r
    assert levels(lines, fmt).count("error") == 1, lines
    assert "Traceback" not in r.out + r.err + "".join(lines)
    assert "internal error" not in r.err, r  # the net caught it: this input needs its own message
    return r.err[len("pyrunc: ") : -1]


def json_message(data):
    """What json says of a malformed document: `line L column C: msg`, or None when it is
    not even UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        return f"line {e.lineno} column {e.colno}: {e.msg}"
    except (ValueError, RecursionError):
        return None
    raise AssertionError(f"{data!r} parses")


def assert_names_json_error(line, path, data):
    assert path in line, line
    expected = json_message(data)
    if expected is not None:
        assert f"invalid JSON at {expected}" in line, (line, expected)
    else:
        assert "not UTF-8 at byte" in line or "invalid JSON" in line, line


def mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def cgroups_named(parent):
    """The directories of the cgroup parent `parent` (`/pyrunc-test-...`) in any hierarchy."""
    found = []
    for hierarchy in os.listdir("/sys/fs/cgroup"):
        path = os.path.join("/sys/fs/cgroup", hierarchy, parent.lstrip("/"))
        if os.path.isdir(path):
            found.append(path)
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # cgroup v2 alone
        path = os.path.join("/sys/fs/cgroup", parent.lstrip("/"))
        if os.path.isdir(path):
            found.append(path)
    return found


def parent_of(bundle):
    return bundle.config["linux"]["cgroupsPath"].rsplit("/", 1)[0]


def assert_nothing_left(pyrunc, bundle, keep=()):
    ids = [n for n in os.listdir(pyrunc.root) if n not in keep] if os.path.isdir(pyrunc.root) else []
    assert ids == [], ids
    assert mounts_under(bundle.path) == []
    assert cgroups_named(parent_of(bundle)) == []
    assert processes_mentioning(bundle.path) == []


# -- a running container, for exec -p and update -r ---------------------------------------


@pytest.fixture
def running(pyrunc, tmp_path, rootfs_template, test_id):
    """A container running `sleep`, in a bundle of its own."""
    b = make_bundle(tmp_path / "running", rootfs_template, "/pyrunc-test-")
    b.config["process"]["args"] = ["sleep", "1000"]
    b.write()
    r = pyrunc("run", "-d", "--bundle", b.path, test_id)
    assert r.code == 0, r
    yield test_id, b
    assert pyrunc("delete", "-f", test_id).code == 0
    assert cgroups_named(parent_of(b)) == []


def container_processes(pyrunc, cid):
    r = pyrunc("ps", "--format", "json", cid)
    assert r.code == 0, r
    return json.loads(r.out)


# -- the readers --------------------------------------------------------------------------


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("command", ["validate", "create", "run"])
def test_a_malformed_config_is_one_error(pyrunc, bundle, test_id, command):
    valid = json.dumps(bundle.config, indent=2).encode()
    path = os.path.join(bundle.path, "config.json")

    @EXAMPLES
    @given(damaged(valid), FORMATS)
    def check(data, fmt):
        write(path, data)
        args = [command, "--bundle", bundle.path] + ([] if command == "validate" else [test_id])
        r, lines = run(pyrunc, fmt, *args)
        line = assert_one_error(r, lines, fmt)
        if command == "validate":  # the problems go to stdout, the first to stderr too
            assert line.startswith(f"validate: {path}: ") and line[len(path) + 12 :] == r.out.strip(), (line, r)
            assert_names_json_error(r.out, "config.json", data)
        else:
            assert_names_json_error(line, "config.json", data)
        assert_nothing_left(pyrunc, bundle)

    check()


def test_a_malformed_process_json_is_one_error(pyrunc, running, tmp_path):
    cid, b = running
    valid = json.dumps(dict(b.config["process"], args=["true"])).encode()
    path = str(tmp_path / "process.json")
    before = container_processes(pyrunc, cid)

    @EXAMPLES
    @given(damaged(valid), FORMATS)
    def check(data, fmt):
        write(path, data)
        r, lines = run(pyrunc, fmt, "exec", "-p", path, cid)
        line = assert_one_error(r, lines, fmt, code=255)
        assert line.startswith(f"exec: --process {path}: ")
        assert_names_json_error(line, path, data)
        assert container_processes(pyrunc, cid) == before
        assert [n for n in os.listdir(pyrunc.root) if n != cid] == []

    check()


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_malformed_resources_are_one_error(pyrunc, running, tmp_path, source):
    cid, b = running
    valid = json.dumps(
        {"memory": {"limit": 300 * 1024 * 1024}, "pids": {"limit": 200}, "cpu": {"shares": 512}}
    ).encode()
    path = str(tmp_path / "resources.json")

    @EXAMPLES
    @given(damaged(valid), FORMATS)
    def check(data, fmt):
        write(path, data)
        if source == "file":
            r, lines = run(pyrunc, fmt, "update", "-r", path, cid)
        else:
            with open(path, "rb") as f:
                r, lines = run(pyrunc, fmt, "update", "-r", "-", cid, stdin=f)
        line = assert_one_error(r, lines, fmt)
        assert_names_json_error(line, path if source == "file" else "stdin", data)

    check()
    assert pyrunc.state(cid)["status"] == "running"


def a_state(cid, bundle_path, parent):
    """A state.json as create writes it, its init long gone, its cgroup (never made)
    under the test's own parent."""
    return {
        "id": cid,
        "bundle": bundle_path,
        "rootfs": f"{bundle_path}/rootfs",
        "created": "2026-01-01T00:00:00.000000000Z",
        "started": True,
        "annotations": {"a": "b"},
        "hooks": {},
        "cgroup_path": f"{parent}/c",
        "systemd_cgroup": False,
        "rootless": "auto",
        "cgroup": {"version": 2, "dir": f"{parent}/c", "made": [parent, f"{parent}/c"]},
        "pid": 4194304,
        "pid_start": 123456,
    }


def test_a_malformed_state_json_is_broken_not_a_crash(pyrunc, running, bundle):
    """state: one error; list: the container shown broken beside a sound one; delete -f:
    the directory gone, nothing else touched."""
    sound, _ = running
    cid = f"pyrunc-test-{uuid.uuid4().hex[:10]}"
    valid = json.dumps(a_state(cid, bundle.path, parent_of(bundle)), separators=(",", ":")).encode()
    directory = os.path.join(pyrunc.root, cid)

    @EXAMPLES
    @given(damaged(valid), FORMATS)
    def check(data, fmt):
        os.mkdir(directory, 0o700)
        write(os.path.join(directory, "state.json"), data)
        r, lines = run(pyrunc, fmt, "state", cid)
        line = assert_one_error(r, lines, fmt)
        assert line.startswith(f"container {cid}: corrupt state file {directory}/state.json: ")
        assert_names_json_error(line, "state.json", data)

        r, lines = run(pyrunc, fmt, "list", "--format", "json")
        assert (r.code, r.err, levels(lines, fmt)) == (0, "", []), r
        listed = {s["id"]: s["status"] for s in json.loads(r.out)}
        assert listed == {cid: "broken", sound: "running"}

        r, lines = run(pyrunc, fmt, "delete", "-f", cid)
        assert (r.code, r.err) == (0, ""), r
        assert "error" not in levels(lines, fmt) and "Traceback" not in "".join(lines)
        assert not os.path.exists(directory)
        assert_nothing_left(pyrunc, bundle, keep=(sound,))
        assert pyrunc.state(sound)["status"] == "running"

    check()


def test_a_malformed_trace_is_one_error(pyrunc, running, tmp_path):
    cid, _ = running
    trace = str(tmp_path / "trace.jsonl")
    assert pyrunc("--trace", trace, "state", cid).code == 0
    with open(trace, "rb") as f:
        valid = f.read()
    assert valid.count(b"\n") > 2
    path = str(tmp_path / "damaged.jsonl")

    def has_bad_line(data):
        return any(line.strip() and not _parses(line) for line in data.decode("utf-8", "replace").splitlines())

    @EXAMPLES
    @given(damaged(valid).filter(has_bad_line), FORMATS)
    def check(data, fmt):
        write(path, data)
        r, lines = run(pyrunc, fmt, "trace", "show", path)
        line = assert_one_error(r, lines, fmt)
        assert re.match(rf"trace show: {re.escape(path)}: line \d+: ", line), line

    check()


# -- a running container whose state.json is cut short ------------------------------------


@pytest.mark.parametrize("cut", ["the closing brace", "pid_start"])
def test_delete_force_cleans_what_a_cut_state_still_names(pyrunc, bundle, test_id, cut):
    """Its init is killed (pid and start time still whole) or, the start time lost, its
    cgroup's processes are; the cgroup and the directory are gone."""
    bundle.config["process"]["args"] = ["sleep", "1000"]
    bundle.write()
    assert pyrunc("run", "-d", "--bundle", bundle.path, test_id).code == 0
    pid = pyrunc.state(test_id)["pid"]
    path = os.path.join(pyrunc.root, test_id, "state.json")
    with open(path, "rb") as f:
        text = f.read()
    text = text[:-1] if cut == "the closing brace" else text[: text.index(b'"pid_start"') + 3]
    write(path, text)
    r = pyrunc("list", "--format", "json")
    assert [s["status"] for s in json.loads(r.out)] == ["broken"]
    assert pyrunc("state", test_id).code == 1
    r = pyrunc("delete", "-f", test_id)
    assert (r.code, r.err) == (0, ""), r
    wait_for(
        lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z",
        f"the container's init {pid} to die",
    )
    assert_nothing_left(pyrunc, bundle)


def test_ps_options_ps_refuses_are_one_line(pyrunc, running):
    """Found by hand: ps's usage text came through whole, a dozen lines."""
    cid, _ = running
    for fmt in ("text", "json"):
        r, lines = run(pyrunc, fmt, "ps", cid, "--no-such-ps-option")
        line = assert_one_error(r, lines, fmt)
        assert line.startswith("ps --no-such-ps-option: "), line
