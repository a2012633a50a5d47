"""Shared fixtures: busybox bundles, a pyrunc command runner, and leak checks."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = (
    "sh",
    "ls",
    "cat",
    "echo",
    "hostname",
    "id",
    "mount",
    "true",
    "false",
    "sleep",
    "ps",
    "grep",
    "stat",
    "touch",
    "mkdir",
    "readlink",
    "test",
    "ulimit",
    "umask",
    "env",
    "pwd",
    "wc",
    "head",
    "kill",
    "dd",
    "nproc",
    "whoami",
    "find",
    "rm",
    "printf",
)


def is_root():
    return os.geteuid() == 0


def mark_needs_root(items, where, reason):
    """Mark the collected tests under `where` as root tests; skip them, with reason, without root."""
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if where in str(item.fspath):
            item.add_marker(pytest.mark.root)
            if not is_root():
                item.add_marker(skip)


def make_rootfs(path):
    """A minimal rootfs: static busybox and links for the applets tests use."""
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc", "root"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    for a in APPLETS:
        link = os.path.join(path, "bin", a)
        if not os.path.lexists(link):
            os.symlink("busybox", link)
    with open(os.path.join(path, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    with open(os.path.join(path, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")


class Bundle:
    def __init__(self, path, config):
        self.path = path
        self.config = config
        self.rootfs = os.path.join(path, "rootfs")

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        return self


class Result:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


class Pyrunc:
    """Runs the real pyrunc command line against a private state root.

    Output goes through files, not pipes: a created container keeps the caller's
    stdio open, and a pipe held open by it would block the test forever.
    """

    def __init__(self, root, tmp, interpreter=sys.executable):
        self.root = root
        self.tmp = tmp
        self.log = os.path.join(tmp, "pyrunc.log")
        self.interpreter = interpreter
        self.command = None  # else the command line that runs pyrunc, e.g. a launcher

    def __call__(self, *args, stdin=subprocess.DEVNULL, timeout=60, extra=()):
        out_path = os.path.join(self.tmp, f"out-{uuid.uuid4().hex}")
        err_path = out_path + ".err"
        with open(out_path, "w+b") as out, open(err_path, "w+b") as err:
            command = self.command or [self.interpreter, "-m", "pyrunc"]
            code = subprocess.call(
                [*command, "--root", self.root, "--log", self.log, *extra, *args],
                stdin=stdin,
                stdout=out,
                stderr=err,
                timeout=timeout,
            )
            out.seek(0)
            err.seek(0)
            r = Result(code, out.read().decode(errors="replace"), err.read().decode(errors="replace"))
        os.unlink(out_path)
        os.unlink(err_path)
        return r

    def state(self, cid):
        r = self("state", cid)
        assert r.code == 0, r
        return json.loads(r.out)


def base_config(args, cgroup_parent):
    """runc's default config (what `runc spec` writes), with terminal off and our args."""
    from pyrunc.config.default import default_spec

    cfg = default_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = list(args)
    cfg["root"]["readonly"] = False
    cfg["linux"]["cgroupsPath"] = f"{cgroup_parent}/{uuid.uuid4().hex[:8]}"
    return cfg


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("pyrunc-test-rootfs"))
    os.chmod(path, 0o755)  # mktemp makes it 0700: a non-root container user could not reach /
    make_rootfs(path)
    return path


@pytest.fixture
def test_id():
    return f"pyrunc-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def pyrunc(tmp_path):
    root = tmp_path / "state"
    runner = Pyrunc(str(root), str(tmp_path))
    yield runner
    # Leave nothing behind: force-delete whatever a failed test left in its root.
    if root.exists():
        for cid in os.listdir(root):
            runner("delete", "--force", cid)


@pytest.fixture
def bundle(tmp_path, rootfs_template):
    """A bundle with a fresh copy of the busybox rootfs; tests edit .config then .write()."""
    return make_bundle(tmp_path / "bundle", rootfs_template, "/pyrunc-test-")


@pytest.fixture
def running(pyrunc, bundle, test_id):
    """A detached container whose init sleeps; its id."""
    bundle.config["process"]["args"] = ["sleep", "1000"]
    bundle.write()
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    return test_id


@pytest.fixture
def three_files(tmp_path):
    """Files holding 'three', 'four', 'five', to be opened as fds 3, 4 and 5."""
    paths = []
    for word in ("three", "four", "five"):
        path = tmp_path / word
        path.write_text(word + "\n")
        paths.append(str(path))
    return paths


def make_bundle(path, rootfs_template, cgroup_prefix):
    """A bundle at path with a copy of the rootfs, its cgroup under a new cgroup_prefix... parent."""
    path.mkdir()
    shutil.copytree(rootfs_template, path / "rootfs", symlinks=True)
    return Bundle(str(path), base_config(["true"], f"{cgroup_prefix}{uuid.uuid4().hex[:6]}"))


def userns_copy(bundle, parent, host_id, size=65536):
    """The bundle copied to `parent` (made 0755), where a user namespace's mapped root can
    reach it, its rootfs owned by that root (host_id); ids 0..size-1 mapped from host_id.
    The pytest tmp dirs are 0700 and owned by unmapped host root."""
    os.makedirs(parent, exist_ok=True)
    os.chmod(parent, 0o755)
    rootfs = os.path.join(parent, "rootfs")
    shutil.copytree(bundle.rootfs, rootfs, symlinks=True)
    os.chmod(rootfs, 0o755)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            os.lchown(name, host_id, host_id)
    copy = Bundle(parent, json.loads(json.dumps(bundle.config)))
    mapping = [{"containerID": 0, "hostID": host_id, "size": size}]
    copy.config["linux"]["uidMappings"] = mapping
    copy.config["linux"]["gidMappings"] = list(mapping)
    return copy
