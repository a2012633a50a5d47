"""checkpoint and restore with CRIU, on a busybox container that counts into a file of
its rootfs (runc's checkpoint.bats is the reference).  The containers' stdio are pipes of
the test's, as runc's tests give them: CRIU saves a pipe and restore hands a new one in
its place (descriptors.json); a host file as stdio is not something CRIU can save."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.checkpoint.counter import count, settled_count, wait_count

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done"


class Pipes:
    """Three pipes for a container's stdin, stdout and stderr; the test keeps its ends."""

    def __init__(self):
        self.stdin_r, self.stdin_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.err_r, self.err_w = os.pipe()

    def close(self):
        for fd in (self.stdin_r, self.stdin_w, self.out_r, self.out_w, self.err_r, self.err_w):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def pipes():
    made = []

    def make():
        p = Pipes()
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def criu_errors(text):
    """The Error lines of the CRIU logs an error line points at, to show in a failure."""
    import re

    found = []
    for path in re.findall(r"see (\S+\.log)", text):
        try:
            with open(path) as f:
                log = f.readlines()
            first = next((i for i, line in enumerate(log) if "Error" in line), len(log))
            found += log[max(0, first - 12) : first + 4]
        except OSError:
            pass
    return text + "".join(found)


def with_pipes(pyrunc, pipes, *args):
    """pyrunc with `pipes` as its stdio, which a container it runs or restores keeps;
    (exit code, what pyrunc wrote on stderr)."""
    command = pyrunc.command or [pyrunc.interpreter, "-m", "pyrunc"]
    proc = subprocess.run(
        [*command, "--root", pyrunc.root, "--log", pyrunc.log, *args],
        stdin=pipes.stdin_r,
        stdout=pipes.out_w,
        stderr=pipes.err_w,
        timeout=300,
    )
    os.set_blocking(pipes.err_r, False)
    text = b""
    try:
        while chunk := os.read(pipes.err_r, 65536):
            text += chunk
    except BlockingIOError:
        pass
    return proc.returncode, text.decode(errors="replace")


def count_file(bundle):
    return os.path.join(bundle.rootfs, "tmp", "count")


def start_counter(pyrunc, bundle, cid, pipes, script=COUNTER, resources=None):
    bundle.config["process"]["args"] = ["sh", "-c", script]
    if resources:
        bundle.config["linux"]["resources"] = resources
    bundle.write()
    code, err = with_pipes(pyrunc, pipes(), "run", "-d", "--bundle", bundle.path, cid)
    assert code == 0, criu_errors(err)
    return wait_count(count_file(bundle), 2) if script == COUNTER else None


def checkpointed_counter(pyrunc, bundle, cid, pipes, tmp_path):
    """The counter started, then checkpointed (and so stopped) to tmp_path/image:
    (the image's path, the count it had reached)."""
    start_counter(pyrunc, bundle, cid, pipes)
    image = tmp_path / "image"
    code, err = with_pipes(pyrunc, pipes(), "checkpoint", "--image-path", str(image), cid)
    assert code == 0, criu_errors(err)
    return image, settled_count(count_file(bundle))


def cgroup_dir(bundle):
    return "/sys/fs/cgroup" + bundle.config["linux"]["cgroupsPath"]


def init_cgroup(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return [line.split(":", 2)[2].strip() for line in f if line.startswith("0::")][0]


def images(path):
    return set(os.listdir(path))


def test_checkpoint_then_restore_goes_on_counting(pyrunc, bundle, test_id, pipes, tmp_path):
    resources = {"memory": {"limit": 256 * 1024 * 1024}, "pids": {"limit": 64}}
    start_counter(pyrunc, bundle, test_id, pipes, resources=resources)
    old_pid = pyrunc.state(test_id)["pid"]
    image, work = tmp_path / "image", tmp_path / "work"

    code, err = with_pipes(pyrunc, pipes(), "checkpoint", "--image-path", str(image), "--work-path", str(work), test_id)
    assert code == 0, criu_errors(err)
    # As runc leaves it: CRIU ended the processes, and the container was deleted.
    assert pyrunc("state", test_id).code != 0
    assert not os.path.exists(f"/proc/{old_pid}") or init_cgroup(old_pid) != bundle.config["linux"]["cgroupsPath"]
    assert not os.path.exists(cgroup_dir(bundle))
    saved = settled_count(count_file(bundle))
    found = images(image)
    assert {"inventory.img", "pstree.img", "descriptors.json"} <= found, found
    assert any(n.startswith("core-") for n in found), found
    assert any(n.startswith("pages-") for n in found), found
    with open(image / "descriptors.json") as f:
        assert all(d.startswith("pipe:") for d in json.load(f))
    assert (work / "dump.log").exists()

    code, err = with_pipes(
        pyrunc,
        pipes(),
        "restore",
        "-d",
        "--image-path",
        str(image),
        "--work-path",
        str(work),
        "--bundle",
        bundle.path,
        test_id,
    )
    assert code == 0, criu_errors(err)
    st = pyrunc.state(test_id)
    assert st["status"] == "running"
    assert st["pid"] != old_pid
    # Back in its cgroup, with its limits.
    assert init_cgroup(st["pid"]) == bundle.config["linux"]["cgroupsPath"]
    with open(os.path.join(cgroup_dir(bundle), "memory.max")) as f:
        assert f.read().strip() == str(256 * 1024 * 1024)
    with open(os.path.join(cgroup_dir(bundle), "pids.max")) as f:
        assert f.read().strip() == "64"
    # The counter goes on from where it was, not from 1.
    n = wait_count(count_file(bundle), saved)
    assert n > saved
    assert (work / "restore.log").exists()

    assert pyrunc("delete", "--force", test_id).code == 0
    assert not os.path.exists(cgroup_dir(bundle))
    assert pyrunc("state", test_id).code != 0


def test_leave_running_then_restore_the_copy(pyrunc, bundle, test_id, pipes, tmp_path):
    start_counter(pyrunc, bundle, test_id, pipes)
    image = tmp_path / "image"
    code, err = with_pipes(pyrunc, pipes(), "checkpoint", "--leave-running", "--image-path", str(image), test_id)
    assert code == 0, criu_errors(err)
    st = pyrunc.state(test_id)
    assert st["status"] == "running"
    at_dump = count(count_file(bundle)) or 0
    wait_count(count_file(bundle), at_dump + 2)  # still counting
    assert "pstree.img" in images(image)

    assert pyrunc("delete", "--force", test_id).code == 0
    code, err = with_pipes(pyrunc, pipes(), "restore", "-d", "--image-path", str(image), "-b", bundle.path, test_id)
    assert code == 0, criu_errors(err)
    assert pyrunc.state(test_id)["status"] == "running"
    # The restored copy counts on from the value at the dump, which the live one had passed.
    bundle_count = wait_count(count_file(bundle), 0)
    assert bundle_count > 0
    wait_count(count_file(bundle), bundle_count)
    assert pyrunc("delete", "--force", test_id).code == 0


def test_pre_dump_then_dump(pyrunc, bundle, test_id, pipes, tmp_path):
    start_counter(pyrunc, bundle, test_id, pipes)
    images_root = tmp_path / "images"
    parent, final = images_root / "parent", images_root / "final"
    code, err = with_pipes(pyrunc, pipes(), "checkpoint", "--pre-dump", "--image-path", str(parent), test_id)
    assert code == 0, criu_errors(err)
    assert pyrunc.state(test_id)["status"] == "running"  # a pre-dump leaves it running
    assert any(n.startswith("pages-") for n in images(parent))

    code, err = with_pipes(
        pyrunc, pipes(), "checkpoint", "--image-path", str(final), "--parent-path", "../parent", test_id
    )
    assert code == 0, criu_errors(err)
    assert pyrunc("state", test_id).code != 0
    # The dump saved only what changed since the pre-dump, with a link to it.
    assert os.path.islink(final / "parent")
    saved = settled_count(count_file(bundle))

    code, err = with_pipes(pyrunc, pipes(), "restore", "-d", "--image-path", str(final), "-b", bundle.path, test_id)
    assert code == 0, criu_errors(err)
    assert wait_count(count_file(bundle), saved) > saved
    assert pyrunc("delete", "--force", test_id).code == 0


# A listener (its stdin a pipe that never ends: at EOF busybox nc closes the connection),
# and a client that connects to it over lo (again until the listener is up) and sends a
# line every 0.2 s over the one connection.
TCP = (
    "sleep 1000000 | busybox nc -l -p 5000 > /tmp/got & "
    "while true; do (while true; do echo tick; sleep 0.2; done) | busybox nc 127.0.0.1 5000; sleep 0.5; done"
)


def lines(bundle):
    try:
        with open(os.path.join(bundle.rootfs, "tmp", "got")) as f:
            return f.read().count("tick")
    except FileNotFoundError:
        return 0


def wait_lines(bundle, above, deadline=120):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if lines(bundle) > above:
            return lines(bundle)
        time.sleep(0.2)
    pytest.fail(f"no more than {above} lines came over the connection")


def test_tcp_established(pyrunc, bundle, test_id, pipes, tmp_path):
    start_counter(pyrunc, bundle, test_id, pipes, script=TCP)
    wait_lines(bundle, 2)
    image, work = tmp_path / "image", tmp_path / "work"

    # Without --tcp-established CRIU refuses the open connection: one line that points
    # at its log, and the container goes on.
    code, err = with_pipes(pyrunc, pipes(), "checkpoint", "--image-path", str(image), "--work-path", str(work), test_id)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith(f"pyrunc: checkpoint {test_id}: ")
    assert err.strip().endswith(f"see {work}/dump.log")
    assert pyrunc.state(test_id)["status"] == "running"

    code, err = with_pipes(pyrunc, pipes(), "checkpoint", "--tcp-established", "--image-path", str(image), test_id)
    assert code == 0, criu_errors(err)
    saved = lines(bundle)
    code, err = with_pipes(
        pyrunc, pipes(), "restore", "-d", "--tcp-established", "--image-path", str(image), "-b", bundle.path, test_id
    )
    assert code == 0, criu_errors(err)
    # The same connection carries on.
    wait_lines(bundle, saved + 2)
    assert pyrunc("delete", "--force", test_id).code == 0


def test_failed_restore_leaves_nothing(pyrunc, bundle, test_id, pipes, tmp_path):
    bundle.config["process"]["args"] = ["sleep", "100"]
    bundle.write()
    image = tmp_path / "image"
    image.mkdir()
    (image / "descriptors.json").write_text('["pipe:[1]", "pipe:[2]", "pipe:[3]"]')
    mounts_before = open("/proc/self/mountinfo").read().count("criu-root")

    code, err = with_pipes(pyrunc, pipes(), "restore", "-d", "--image-path", str(image), "-b", bundle.path, test_id)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith(f"pyrunc: restore {test_id}: ")
    assert err.strip().endswith(f"see {image}/restore.log")
    assert (image / "restore.log").exists()
    # Nothing left: no state, no cgroup, no mount.
    assert pyrunc("state", test_id).code != 0
    assert os.listdir(pyrunc.root) == []
    assert not os.path.exists(cgroup_dir(bundle))
    assert open("/proc/self/mountinfo").read().count("criu-root") == mounts_before
    with open(pyrunc.log) as f:
        assert "restore.log" in f.read()


def test_restore_runs_the_create_hooks_with_the_restored_pid(pyrunc, bundle, test_id, pipes, tmp_path):
    image, saved = checkpointed_counter(pyrunc, bundle, test_id, pipes, tmp_path)
    seen = tmp_path / "hooks"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\n(echo $1; cat; echo) >> {seen}\n")
    hook.chmod(0o755)
    bundle.config["hooks"] = {
        "prestart": [{"path": str(hook), "args": ["hook.sh", "prestart"]}],
        "createRuntime": [{"path": str(hook), "args": ["hook.sh", "createRuntime"]}],
    }
    bundle.write()
    code, err = with_pipes(pyrunc, pipes(), "restore", "-d", "--image-path", str(image), "-b", bundle.path, test_id)
    assert code == 0, criu_errors(err)
    pid = pyrunc.state(test_id)["pid"]
    lines = seen.read_text().split("\n")
    assert lines[0] == "prestart" and lines[2] == "createRuntime", lines
    for state in (json.loads(lines[1]), json.loads(lines[3])):
        assert state["id"] == test_id and state["pid"] == pid
    assert wait_count(count_file(bundle), saved) > saved
    assert pyrunc("delete", "--force", test_id).code == 0


def test_restore_in_the_foreground_waits_and_deletes(pyrunc, bundle, test_id, pipes, tmp_path):
    image, saved = checkpointed_counter(pyrunc, bundle, test_id, pipes, tmp_path)
    p = pipes()
    command = pyrunc.command or [pyrunc.interpreter, "-m", "pyrunc"]
    restore = subprocess.Popen(
        [*command, "--root", pyrunc.root, "restore", "--image-path", str(image), "-b", bundle.path, test_id],
        stdin=p.stdin_r,
        stdout=p.out_w,
        stderr=p.err_w,
    )
    try:
        assert wait_count(count_file(bundle), saved) > saved
        assert pyrunc.state(test_id)["status"] == "running"
        assert pyrunc("kill", test_id, "KILL").code == 0
        assert restore.wait(timeout=120) == 128 + 9  # the container's status, as run's
    finally:
        if restore.poll() is None:
            restore.kill()
            restore.wait()
    assert pyrunc("state", test_id).code != 0  # deleted, as run deletes
    assert not os.path.exists(cgroup_dir(bundle))


def test_restore_onto_a_fresh_rootfs_makes_the_mount_points(pyrunc, bundle, test_id, pipes, tmp_path):
    """Restored from a bundle whose rootfs is a copy without the mount points (/proc,
    /dev, /sys, a bind of a directory, a bind of a file): restore makes them, as runc."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "marker").write_text("from the host\n")
    hello = tmp_path / "hello"
    hello.write_text("hello\n")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind"]},
        {"destination": "/srv/hello", "type": "bind", "source": str(hello), "options": ["bind", "ro"]},
    ]
    image, saved = checkpointed_counter(pyrunc, bundle, test_id, pipes, tmp_path)

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    subprocess.run(["cp", "-a", bundle.rootfs, str(fresh / "rootfs")], check=True)
    for gone in ("proc", "dev", "sys", "data", "srv"):
        shutil.rmtree(fresh / "rootfs" / gone, ignore_errors=True)
    with open(fresh / "config.json", "w") as f:
        json.dump(bundle.config, f)
    code, err = with_pipes(pyrunc, pipes(), "restore", "-d", "--image-path", str(image), "-b", str(fresh), test_id)
    assert code == 0, criu_errors(err)
    pid = pyrunc.state(test_id)["pid"]
    # The counter goes on in the fresh rootfs, with the binds in place.
    end = time.monotonic() + 120
    while time.monotonic() < end:
        text = (fresh / "rootfs" / "tmp" / "count").read_text().strip()
        if text.isdigit() and int(text) > saved:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the restored counter never went above {saved} in the fresh rootfs")
    assert (fresh / "rootfs" / "data").is_dir() and (fresh / "rootfs" / "srv" / "hello").is_file()
    with open(f"/proc/{pid}/root/data/marker") as f:
        assert f.read() == "from the host\n"
    with open(f"/proc/{pid}/root/srv/hello") as f:
        assert f.read() == "hello\n"
    assert pyrunc("delete", "--force", test_id).code == 0


def kinds(path):
    """The kinds of image files in a directory: `core-1.img` and `core-7.img` are `core`."""
    return {n.split("-")[0].split(".")[0] for n in os.listdir(path) if n.endswith(".img")}


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_the_image_holds_what_runcs_does(pyrunc, bundle, test_id, pipes, tmp_path):
    """runc and pyrunc checkpoint the same container: the same kinds of image files."""
    runc_root = str(tmp_path / "runc")
    start_counter(pyrunc, bundle, test_id, pipes)
    ours = tmp_path / "ours"
    code, err = with_pipes(pyrunc, pipes(), "checkpoint", "--image-path", str(ours), test_id)
    assert code == 0, criu_errors(err)
    p = pipes()
    runc = [shutil.which("runc"), "--root", runc_root]
    subprocess.run(
        [*runc, "run", "-d", "-b", bundle.path, test_id],
        stdin=p.stdin_r,
        stdout=p.out_w,
        stderr=p.err_w,
        check=True,
        timeout=120,
    )
    try:
        wait_count(count_file(bundle), 0)
        theirs = tmp_path / "theirs"
        r = subprocess.run(
            [*runc, "checkpoint", "--image-path", str(theirs), test_id], capture_output=True, text=True, timeout=300
        )
        assert r.returncode == 0, r.stderr
    finally:
        subprocess.run([*runc, "delete", "-f", test_id], capture_output=True, timeout=120)
    assert kinds(ours) == kinds(theirs), (sorted(kinds(ours)), sorted(kinds(theirs)))
    assert os.path.exists(theirs / "descriptors.json") and os.path.exists(ours / "descriptors.json")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
