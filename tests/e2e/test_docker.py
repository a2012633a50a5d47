"""pyrunc under docker: a private dockerd (and the containerd it starts) with
`--add-runtime pyrunc=<wrapper>`, every container run with `--runtime pyrunc --network none`.
docker's containerd shim calls the runtime as containerd's does, in the namespace moby."""

import re

import pytest

from tests.e2e.engines import DOCKER_NEEDS, Docker
from tests.e2e.harness import cgroup_dirs, cgroup_hierarchies, engine_fixture, run_tty, skip_reason, wait_until

SKIP = skip_reason("docker", DOCKER_NEEDS)
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
HEX64 = r"[0-9a-f]{64}"


@pytest.fixture(scope="module")
def dk(busybox_image):
    tar, _ = busybox_image
    yield from engine_fixture(Docker(tar, "e2e/busybox:latest"))


@pytest.fixture(autouse=True)
def _calls_of_this_test(dk):
    dk.mark_calls()


def explain(dk, cid=None):
    return dk.explain(cid)


def run_rm(dk, *args, flags=(), **kw):
    return dk.docker("run", "--rm", *dk.run_flags, *flags, dk.image, *args, **kw)


def call(dk, cid, pattern):
    """The shim's calls about cid matching pattern (ID stands for cid), after checking their
    global flags: --root <exec-root>/runtime-runc/moby --log <bundle>/log.json --log-format json."""
    found = dk.argv.expect(pattern.replace("ID", re.escape(cid)), f"for {cid}")
    for c in found:
        assert c.globals.get("--root") == dk.path("exec", "runtime-runc", "moby"), c
        assert str(c.globals.get("--log")).endswith(f"/moby/{cid}/log.json"), c
        assert c.globals.get("--log-format") == "json", c
    return found


def created_ids(dk, before):
    return [c.args[-1] for c in dk.argv.calls()[before:] if c.command == "create"]


def test_runtime_registered(dk):
    r = dk.docker("info", "--format", "{{json .Runtimes}}")
    assert r.rc == 0 and '"pyrunc"' in r.out and dk.wrapper in r.out, r


def test_run_output_and_exit_code_0(dk):
    before = len(dk.argv.calls())
    r = run_rm(dk, "echo", "hello")
    assert (r.rc, r.lines) == (0, ["hello"]), f"{r!r}\n{explain(dk)}"
    [cid] = created_ids(dk, before)
    call(dk, cid, r"create --bundle \S+/moby/ID --pid-file \S+/moby/ID/init\.pid ID")
    call(dk, cid, r"start ID")
    call(dk, cid, r"delete ID")


def test_run_exit_code_3(dk):
    r = run_rm(dk, "sh", "-c", "exit 3")
    assert r.rc == 3, f"{r!r}\n{explain(dk)}"


def test_run_env_workdir_user(dk):
    r = run_rm(dk, "sh", "-c", "echo $FOO $(pwd) $(id -u) $$", flags=("-e", "FOO=bar", "-w", "/tmp", "-u", "65534"))
    assert (r.rc, r.lines) == (0, ["bar /tmp 65534 1"]), f"{r!r}\n{explain(dk)}"


def test_run_stdin(dk):
    r = run_rm(dk, "sh", "-c", "read x; echo got-$x", flags=("-i",), stdin="piped-in\n")
    assert (r.rc, r.lines) == (0, ["got-piped-in"]), f"{r!r}\n{explain(dk)}"


def test_run_read_only(dk):
    r = run_rm(dk, "touch", "/x", flags=("--read-only",))
    assert r.rc == 1 and "Read-only file system" in r.out, f"{r!r}\n{explain(dk)}"


def test_run_tty_exit_code_4(dk):
    before = len(dk.argv.calls())
    r = run_tty(dk.docker_argv("run", "--rm", "-t", *dk.run_flags, dk.image, "sh", "-c", "tty; exit 4"), env=dk.env)
    assert r.rc == 4 and re.search(r"/dev/pts/\d+$", r.out, re.M), f"{r!r}\n{explain(dk)}"
    [cid] = created_ids(dk, before)
    call(dk, cid, r"create --bundle \S+ --pid-file \S+ --console-socket \S+ ID")


def test_create_then_start(dk):
    name = dk.cname("c0")
    r = dk.docker("create", "--name", name, *dk.run_flags, dk.image, "echo", "created-then-started")
    assert r.rc == 0, r
    cid = r.lines[-1]
    r = dk.docker("start", "-a", name)
    assert (r.rc, r.lines) == (0, ["created-then-started"]), f"{r!r}\n{explain(dk, cid)}"
    r = dk.docker("rm", name)
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    call(dk, cid, r"start ID")


# ---------------------------------------------------------------- a detached container


@pytest.fixture
def detached(dk, request):
    """(name, id) of a container run with `docker run -d` whose init sleeps; removed after."""
    name = dk.cname("d-" + request.node.name[5:][:20].replace("_", "-").strip("-"))
    script = getattr(request, "param", "sleep 1000")
    r = dk.docker("run", "-d", "--name", name, *dk.run_flags, dk.image, "sh", "-c", script)
    assert r.rc == 0, f"{r!r}\n{explain(dk)}"
    cid = r.lines[-1]
    assert re.fullmatch(HEX64, cid), r
    yield name, cid
    dk.docker("rm", "-f", name)


def status(dk, name):
    r = dk.docker("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
    return r.lines[-1] if r.rc == 0 and r.lines else f"(inspect failed: {r.out.strip()})"


def test_exec_output_and_exit_code_5(dk, detached):
    name, cid = detached
    r = dk.docker("exec", name, "sh", "-c", "echo in-exec; exit 5")
    assert (r.rc, r.lines) == (5, ["in-exec"]), f"{r!r}\n{explain(dk, cid)}"
    call(dk, cid, rf"exec --process \S+ --detach --pid-file \S+/{HEX64}\.pid ID")


def test_exec_tty_exit_code_6(dk, detached):
    name, cid = detached
    r = run_tty(dk.docker_argv("exec", "-t", name, "sh", "-c", "tty; exit 6"), env=dk.env)
    assert r.rc == 6 and re.search(r"/dev/pts/\d+$", r.out, re.M), f"{r!r}\n{explain(dk, cid)}"
    call(dk, cid, r"exec --process \S+ --console-socket \S+ --detach --pid-file \S+ ID")


def test_exec_in_background_and_top(dk, detached):
    name, cid = detached
    r = dk.docker("exec", "-d", name, "sleep", "500")
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    r = wait_until(
        lambda: (lambda t: t if "sleep 500" in t.out else None)(dk.docker("top", name)),
        "the background exec in docker top",
        timeout=10,
    )
    assert "sleep 1000" in r.out, r
    call(dk, cid, r"ps --format json ID")


def test_pause_and_unpause(dk, detached):
    name, cid = detached
    r = dk.docker("pause", name)
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    assert status(dk, name).split()[0] == "paused"
    r = dk.docker("unpause", name)
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    assert status(dk, name).split()[0] == "running"
    call(dk, cid, r"pause ID")
    call(dk, cid, r"resume ID")


def test_update_memory(dk, detached):
    name, cid = detached
    r = dk.docker("update", "--memory", "64m", "--memory-swap", "128m", name)
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    call(dk, cid, r"update --resources - ID")
    if "/sys/fs/cgroup/memory" in cgroup_hierarchies():  # the v1 memory controller docker uses here
        path = f"/sys/fs/cgroup/memory{dk.cgroup_parent}/{cid}/memory.limit_in_bytes"
        with open(path) as f:
            assert int(f.read()) == 64 << 20, path


def test_kill_exit_status_137(dk, detached):
    name, cid = detached
    r = dk.docker("kill", "-s", "TERM", name)  # pid 1 with no handler ignores it
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    r = dk.docker("kill", name)
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    r = dk.docker("wait", name)
    assert (r.rc, r.lines[-1:]) == (0, ["137"]), f"{r!r}\n{explain(dk, cid)}"
    assert status(dk, name) == "exited 137"
    call(dk, cid, r"kill ID 15")
    call(dk, cid, r"kill ID 9")


@pytest.mark.parametrize("detached", ['trap "exit 42" TERM; while :; do sleep 0.1; done'], indirect=True)
def test_stop_honours_the_term_trap_then_rm(dk, detached):
    name, cid = detached
    wait_until(lambda: "sleep" in dk.docker("top", name).out, "the trap loop to run", timeout=10)
    r = dk.docker("stop", "-t", "10", name)
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    assert status(dk, name) == "exited 42", explain(dk, cid)
    r = dk.docker("rm", name)
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    call(dk, cid, r"delete ID")
    assert cgroup_dirs(f"{dk.cgroup_parent}/{cid}") == []


def test_stop_escalates_to_kill(dk, detached):
    name, cid = detached
    r = dk.docker("stop", "-t", "1", name)
    assert r.rc == 0, f"{r!r}\n{explain(dk, cid)}"
    assert status(dk, name) == "exited 137", explain(dk, cid)
    call(dk, cid, r"kill ID 9")
