"""pyrunc under podman (root, conmon, cgroupfs, file events, vfs, no network), with private
containers.conf, storage.conf and registries.conf and `--runtime <wrapper>`.  conmon and
podman call the runtime with no global flags, so pyrunc keeps its state in its default root."""

import os
import re

import pytest

from tests.e2e.engines import PODMAN_NEEDS, Podman
from tests.e2e.harness import cgroup_dirs, engine_fixture, run_tty, skip_reason, wait_until

SKIP = skip_reason("podman", PODMAN_NEEDS)
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
HEX64 = r"[0-9a-f]{64}"


@pytest.fixture(scope="module")
def pm(busybox_image):
    tar, ref = busybox_image
    yield from engine_fixture(Podman(tar, ref))


@pytest.fixture(autouse=True)
def _calls_of_this_test(pm):
    pm.mark_calls()


def explain(pm, cid=None):
    return pm.explain(cid)


def run_rm(pm, *args, flags=(), **kw):
    return pm.podman("run", "--rm", *pm.run_flags, *flags, pm.image, *args, **kw)


def call(pm, cid, pattern):
    """The runtime calls about cid matching pattern (ID stands for cid): conmon and podman
    pass no global flags."""
    found = pm.argv.expect(pattern.replace("ID", re.escape(cid)), f"for {cid}")
    for c in found:
        assert c.globals == {}, c
    return found


def created_ids(pm, before):
    """Container ids created since the argv log had `before` calls."""
    return [c.args[-1] for c in pm.argv.calls()[before:] if c.command == "create"]


def test_info_names_the_runtime_and_cgroupfs(pm):
    r = pm.podman("info", "--format", "{{.Host.CgroupManager}} {{.Host.OCIRuntime.Path}}")
    assert (r.rc, r.lines[-1:]) == (0, [f"cgroupfs {pm.wrapper}"]), r
    versions = [c for c in pm.argv.calls() if c.argv[1:] == ["--version"]]
    assert versions, f"podman info did not ask the runtime's --version:\n{pm.argv.summary()}"


def test_run_output_and_exit_code_0(pm):
    before = len(pm.argv.calls())
    r = run_rm(pm, "echo", "hello")
    assert (r.rc, r.lines) == (0, ["hello"]), f"{r!r}\n{explain(pm)}"
    [cid] = created_ids(pm, before)
    call(
        pm,
        cid,
        r"create --bundle \S+/vfs-containers/ID/userdata"
        r" --pid-file \S+/vfs-containers/ID/userdata/pidfile ID",
    )
    call(pm, cid, r"start ID")
    call(pm, cid, r"delete --force ID")


def test_run_exit_code_3(pm):
    r = run_rm(pm, "sh", "-c", "exit 3")
    assert r.rc == 3, f"{r!r}\n{explain(pm)}"


def test_run_env_workdir_user(pm):
    r = run_rm(pm, "sh", "-c", "echo $FOO $(pwd) $(id -u) $$", flags=("-e", "FOO=bar", "-w", "/tmp", "-u", "65534"))
    assert (r.rc, r.lines) == (0, ["bar /tmp 65534 1"]), f"{r!r}\n{explain(pm)}"


def test_run_stdin(pm):
    r = run_rm(pm, "sh", "-c", "read x; echo got-$x", flags=("-i",), stdin="piped-in\n")
    assert (r.rc, r.lines) == (0, ["got-piped-in"]), f"{r!r}\n{explain(pm)}"


def test_run_read_only(pm):
    r = run_rm(pm, "touch", "/x", flags=("--read-only",))
    assert r.rc == 1 and "Read-only file system" in r.out, f"{r!r}\n{explain(pm)}"


def test_run_tty_exit_code_4(pm):
    before = len(pm.argv.calls())
    r = run_tty(pm.podman_argv("run", "--rm", "-t", *pm.run_flags, pm.image, "sh", "-c", "tty; exit 4"), env=pm.env)
    assert r.rc == 4 and re.search(r"/dev/pts/\d+$", r.out, re.M), f"{r!r}\n{explain(pm)}"
    [cid] = created_ids(pm, before)
    call(pm, cid, r"create --bundle \S+ --pid-file \S+ --console-socket \S+ ID")


def test_create_then_start(pm):
    name = pm.cname("c0")
    r = pm.podman("create", "--name", name, *pm.run_flags, pm.image, "echo", "created-then-started")
    assert r.rc == 0, r
    cid = r.lines[-1]
    r = pm.podman("start", "-a", name)
    assert (r.rc, r.lines) == (0, ["created-then-started"]), f"{r!r}\n{explain(pm, cid)}"
    r = pm.podman("rm", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    call(pm, cid, r"create --bundle \S+ --pid-file \S+ ID")
    call(pm, cid, r"start ID")


# ---------------------------------------------------------------- a detached container


@pytest.fixture
def detached(pm, request):
    """(name, id) of a container run with `podman run -d` whose init sleeps; removed after."""
    name = pm.cname("d-" + request.node.name[5:][:20].replace("_", "-").strip("-"))
    script = getattr(request, "param", "sleep 1000")
    r = pm.podman("run", "-d", "--name", name, *pm.run_flags, pm.image, "sh", "-c", script)
    assert r.rc == 0, f"{r!r}\n{explain(pm)}"
    cid = r.lines[-1]
    assert re.fullmatch(HEX64, cid), r
    yield name, cid
    pm.podman("rm", "-f", "-t", "0", name)


def status(pm, name):
    r = pm.podman("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
    return r.lines[-1] if r.rc == 0 and r.lines else f"(inspect failed: {r.out.strip()})"


def test_exec_output_and_exit_code_5(pm, detached):
    name, cid = detached
    r = pm.podman("exec", name, "sh", "-c", "echo in-exec; exit 5")
    assert (r.rc, r.lines) == (5, ["in-exec"]), f"{r!r}\n{explain(pm, cid)}"
    call(pm, cid, r"exec --pid-file \S+/exec_pid --process \S+ --detach ID")


def test_exec_tty_exit_code_6(pm, detached):
    name, cid = detached
    r = run_tty(pm.podman_argv("exec", "-t", name, "sh", "-c", "tty; exit 6"), env=pm.env)
    assert r.rc == 6 and re.search(r"/dev/pts/\d+$", r.out, re.M), f"{r!r}\n{explain(pm, cid)}"
    call(pm, cid, r"exec --pid-file \S+ --process \S+ --detach --tty --console-socket \S+ ID")


def test_exec_in_background(pm, detached):
    name, cid = detached
    r = pm.podman("exec", "-d", name, "sleep", "500")
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    r = wait_until(
        lambda: (lambda t: t if "sleep 500" in t.out else None)(pm.podman("top", name)),
        "the background exec in podman top",
        timeout=10,
    )
    assert "sleep 1000" in r.out, r


def test_pause_and_unpause(pm, detached):
    name, cid = detached
    r = pm.podman("pause", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    assert status(pm, name).split()[0] == "paused"
    r = pm.podman("unpause", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    assert status(pm, name).split()[0] == "running"
    call(pm, cid, r"pause ID")
    call(pm, cid, r"resume ID")


def test_kill_exit_status_137(pm, detached):
    name, cid = detached
    r = pm.podman("kill", "-s", "TERM", name)  # pid 1 with no handler ignores it
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    assert status(pm, name).split()[0] == "running"
    r = pm.podman("kill", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    r = pm.podman("wait", name)
    assert (r.rc, r.lines[-1:]) == (0, ["137"]), f"{r!r}\n{explain(pm, cid)}"
    assert status(pm, name) == "exited 137"
    call(pm, cid, r"kill ID 15")
    call(pm, cid, r"kill ID 9")


@pytest.mark.parametrize("detached", ['trap "exit 42" TERM; while :; do sleep 0.1; done'], indirect=True)
def test_stop_honours_the_term_trap_then_rm(pm, detached):
    name, cid = detached
    wait_until(lambda: "sleep" in pm.podman("top", name).out, "the trap loop to run", timeout=10)
    r = pm.podman("stop", "-t", "10", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    assert status(pm, name) == "exited 42", explain(pm, cid)
    r = pm.podman("rm", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    assert pm.container_id(name) is None
    call(pm, cid, r"kill ID 15")
    call(pm, cid, r"delete --force ID")
    # the runtime's state (its default root) and the container's cgroup are gone
    assert not os.path.exists(os.path.join(pm.default_root(), cid)), explain(pm, cid)
    assert cgroup_dirs(f"{pm.cgroup_parent}/libpod-{cid}") == []


def test_stop_escalates_to_kill(pm, detached):
    name, cid = detached
    r = pm.podman("stop", "-t", "1", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    assert status(pm, name) == "exited 137", explain(pm, cid)
    call(pm, cid, r"kill ID 9")
