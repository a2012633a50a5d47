"""Helpers for the lifecycle, CLI, hooks and terminal tests: runc side by side, waiting
for a container's state, the state schema, and the check that nothing is left behind."""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(REPO, "spec")
RUNC = shutil.which("runc")


def wait_for(predicate, what, timeout=30.0, interval=0.05):
    """Poll until predicate() is true and return its value; a deadline only so that a
    broken test ends."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def wait_for_file(path, what=None):
    def ready():
        try:
            with open(path) as f:
                return f.read() or None
        except FileNotFoundError:
            return None

    return wait_for(ready, what or path)


def validate_state(doc):
    """Validate a state document against the spec's state-schema.json (draft 4, with
    defs.json resolved from the same directory)."""
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    def load(name):
        with open(os.path.join(SPEC, name)) as f:
            return json.load(f)

    registry = Registry().with_resources(
        (name, Resource.from_contents(load(name), default_specification=DRAFT4))
        for name in ("defs.json", "state-schema.json")
    )
    Draft4Validator(load("state-schema.json"), registry=registry).validate(doc)
    return doc


def log_lines(path):
    """(level, msg) of each logrus text line of a --log file, msg unescaped."""
    import re

    found = []
    with open(path) as f:
        for line in f:
            m = re.match(r'time="[^"]*" level=(\w+) msg="((?:[^"\\]|\\.)*)"', line)
            assert m, f"not a log line: {line!r}"
            msg = re.sub(r"\\(.)", lambda g: {"n": "\n"}.get(g.group(1), g.group(1)), m.group(2))
            found.append((m.group(1), msg))
    return found


def last_error(path):
    """The msg of the last error line of a --log file."""
    errors = [msg for level, msg in log_lines(path) if level == "error"]
    assert errors, f"no error line in {path}"
    return errors[-1]


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def processes_mentioning(*needles):
    """Pids (not ours) whose command line or cwd contains one of the needles."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{name}/cwd")
        except OSError:
            continue
        if not pid_alive(int(name)):
            continue
        if any(n in cmdline or n in cwd for n in needles):
            found.append((int(name), cmdline, cwd))
    return found


def assert_nothing_left(pyrunc, test_id, bundle):
    """No state directory and no process carrying the id or the bundle path."""
    if os.path.isdir(pyrunc.root):  # not even a half-made temporary directory
        assert [n for n in os.listdir(pyrunc.root) if test_id in n] == []
    wait_for(
        lambda: not processes_mentioning(test_id, bundle.path),
        f"processes of {test_id}: {processes_mentioning(test_id, bundle.path)}",
        timeout=10,
    )


class Runc:
    """runc on the same bundle, with its own state root, for side-by-side comparisons."""

    def __init__(self, root, tmp):
        self.root = root
        self.tmp = tmp
        self.log = os.path.join(tmp, "runc.log")
        self.ids = set()
        self.cgroups = set()

    def use(self, bundle):
        """Give the bundle a flat cgroup of our own: runc removes the leaf it made but not
        the parents, so a nested path would leave a directory behind."""
        name = f"pyrunc-test-runc-{uuid.uuid4().hex[:8]}"
        bundle.config["linux"]["cgroupsPath"] = "/" + name
        bundle.write()
        self.cgroups.add(name)

    def remove_cgroups(self):
        for name in self.cgroups:
            remove_empty_cgroup(name)

    def __call__(self, *args, timeout=60):
        for a in args:
            if a.startswith("pyrunc-test-"):
                self.ids.add(a)
        out = os.path.join(self.tmp, f"runc-{uuid.uuid4().hex}")
        with open(out, "w+b") as o, open(out + ".err", "w+b") as e:
            code = subprocess.call(
                [RUNC, "--root", self.root, "--log", self.log, *args],
                stdin=subprocess.DEVNULL,
                stdout=o,
                stderr=e,
                timeout=timeout,
            )
            o.seek(0)
            e.seek(0)
            result = (code, o.read().decode(errors="replace"), e.read().decode(errors="replace"))
        os.unlink(out)
        os.unlink(out + ".err")
        return result

    def state(self, cid):
        code, out, err = self("state", cid)
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def runc(tmp_path):
    if RUNC is None:
        pytest.skip("runc is not installed")
    r = Runc(str(tmp_path / "runc-state"), str(tmp_path))
    yield r
    for cid in r.ids:
        r("delete", "--force", cid)
    r.remove_cgroups()


def pyrunc_cmd(pyrunc, *args):
    """The argv of a pyrunc call like the `pyrunc` fixture's, for tests that need Popen."""
    command = pyrunc.command or [sys.executable, "-m", "pyrunc"]
    return [*command, "--root", pyrunc.root, "--log", pyrunc.log, *args]


def set_args(bundle, *args):
    bundle.config["process"]["args"] = list(args)
    bundle.write()


def remove_empty_cgroup(name):
    """Remove the top-level cgroup `name` (one a test owns) and the empty ones below it,
    deepest first, in every hierarchy (v1's, or v2's single one); one still in use stays."""
    tops = [os.path.join("/sys/fs/cgroup", name)]
    tops += [os.path.join("/sys/fs/cgroup", h, name) for h in os.listdir("/sys/fs/cgroup")]
    for top in tops:
        if not name.startswith("pyrunc-test-") or not os.path.isdir(top):
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
