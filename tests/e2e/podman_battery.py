"""What pyrunc under podman must do as root and rootless alike: the helpers and the tests
test_podman.py and test_podman_rootless.py share, each run against its own `pm` fixture (an
engine with `podman`, `podman_argv`, `run_flags`, `image`, `cname`, `argv`, `explain` and
`tty_kw`, what run_tty needs to run podman as that engine's user)."""

import re

import pytest

from tests.e2e.harness import run_tty, wait_until

HEX64 = r"[0-9a-f]{64}"


@pytest.fixture(autouse=True)
def _calls_of_this_test(pm):
    pm.mark_calls()


def explain(pm, cid=None):
    return pm.explain(cid)


def run_rm(pm, *args, flags=(), **kw):
    return pm.podman("run", "--rm", *pm.run_flags, *flags, pm.image, *args, **kw)


def call(pm, cid, pattern):
    """The runtime calls about cid matching pattern (ID stands for cid): conmon and podman
    pass no global flags (rootless: the runtime picks its state root itself)."""
    found = pm.argv.expect(pattern.replace("ID", re.escape(cid)), f"for {cid}")
    for c in found:
        assert c.globals == {}, c
    return found


def created_ids(pm, before):
    """Container ids created since the argv log had `before` calls."""
    return [c.args[-1] for c in pm.argv.calls()[before:] if c.command == "create"]


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


class Battery:
    """The shared tests: a test module collects them with `class TestX(Battery)`."""

    def test_run_exit_code_3(self, pm):
        r = run_rm(pm, "sh", "-c", "exit 3")
        assert r.rc == 3, f"{r!r}\n{explain(pm)}"

    def test_run_env_workdir_user(self, pm):
        r = run_rm(pm, "sh", "-c", "echo $FOO $(pwd) $(id -u) $$", flags=("-e", "FOO=bar", "-w", "/tmp", "-u", "65534"))
        assert (r.rc, r.lines) == (0, ["bar /tmp 65534 1"]), f"{r!r}\n{explain(pm)}"

    def test_run_stdin(self, pm):
        r = run_rm(pm, "sh", "-c", "read x; echo got-$x", flags=("-i",), stdin="piped-in\n")
        assert (r.rc, r.lines) == (0, ["got-piped-in"]), f"{r!r}\n{explain(pm)}"

    def test_run_read_only(self, pm):
        r = run_rm(pm, "touch", "/x", flags=("--read-only",))
        assert r.rc == 1 and "Read-only file system" in r.out, f"{r!r}\n{explain(pm)}"

    def test_run_tty_exit_code_4(self, pm):
        before = len(pm.argv.calls())
        r = run_tty(
            pm.podman_argv("run", "--rm", "-t", *pm.run_flags, pm.image, "sh", "-c", "tty; exit 4"), **pm.tty_kw
        )
        assert r.rc == 4 and re.search(r"/dev/pts/\d+$", r.out, re.M), f"{r!r}\n{explain(pm)}"
        [cid] = created_ids(pm, before)
        call(pm, cid, r"create --bundle \S+ --pid-file \S+ --console-socket \S+ ID")

    def test_create_then_start(self, pm):
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

    def test_exec_output_and_exit_code_5(self, pm, detached):
        name, cid = detached
        r = pm.podman("exec", name, "sh", "-c", "echo in-exec; exit 5")
        assert (r.rc, r.lines) == (5, ["in-exec"]), f"{r!r}\n{explain(pm, cid)}"
        call(pm, cid, r"exec --pid-file \S+/exec_pid --process \S+ --detach ID")

    def test_exec_tty_exit_code_6(self, pm, detached):
        name, cid = detached
        r = run_tty(pm.podman_argv("exec", "-t", name, "sh", "-c", "tty; exit 6"), **pm.tty_kw)
        assert r.rc == 6 and re.search(r"/dev/pts/\d+$", r.out, re.M), f"{r!r}\n{explain(pm, cid)}"
        call(pm, cid, r"exec --pid-file \S+ --process \S+ --detach --tty --console-socket \S+ ID")

    def test_exec_in_background(self, pm, detached):
        name, cid = detached
        r = pm.podman("exec", "-d", name, "sleep", "500")
        assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
        r = wait_until(
            lambda: (lambda t: t if "sleep 500" in t.out else None)(pm.podman("top", name)),
            "the background exec in podman top",
            timeout=10,
        )
        assert "sleep 1000" in r.out, r

    def test_stop_escalates_to_kill(self, pm, detached):
        name, cid = detached
        r = pm.podman("stop", "-t", "1", name)
        assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
        assert status(pm, name) == "exited 137", explain(pm, cid)
        call(pm, cid, r"kill ID 9")
