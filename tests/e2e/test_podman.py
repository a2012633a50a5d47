"""pyrunc under podman (root, conmon, cgroupfs, file events, vfs, no network), with private
containers.conf, storage.conf and registries.conf and `--runtime <wrapper>`.  conmon and
podman call the runtime with no global flags, so pyrunc keeps its state in its default root."""

import os

import pytest

from tests.e2e.engines import PODMAN_NEEDS, Podman
from tests.e2e.harness import cgroup_dirs, engine_fixture, skip_reason, wait_until
from tests.e2e.podman_battery import (  # noqa: F401  (the shared fixtures, found here)
    Battery,
    _calls_of_this_test,
    call,
    created_ids,
    detached,
    explain,
    run_rm,
    status,
)

SKIP = skip_reason("podman", PODMAN_NEEDS)
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


@pytest.fixture(scope="module")
def pm(busybox_image):
    tar, ref = busybox_image
    yield from engine_fixture(Podman(tar, ref))


class TestRootPodman(Battery):
    """The tests podman_battery.py shares with the other podman module."""


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


# ---------------------------------------------------------------- a detached container


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
