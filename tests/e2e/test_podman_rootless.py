"""pyrunc under rootless podman: podman run by a fresh unprivileged user (useradd with
subordinate ids, removed afterwards) with its own vfs storage, configs and XDG_RUNTIME_DIR,
cgroupfs, file events and `--runtime <wrapper>` (tests/e2e/rootless_podman.py).  podman
makes the user namespace; the runtime runs in it, as that namespace's root, and keeps its
state in $XDG_RUNTIME_DIR/pyrunc.  PYRUNC_E2E_RUNTIME=runc runs the same against runc."""

import os
import socket
import urllib.error
import urllib.request

import pytest

from tests.e2e.harness import engine_fixture, missing, pids_mentioning, wait_until
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
from tests.e2e.rootless_podman import RootlessPodman, rootless_runtime, skip_reason
from tests.e2e.tun import TUN

SKIP = skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


@pytest.fixture(scope="module")
def pm(busybox_image):
    tar, ref = busybox_image
    yield from engine_fixture(RootlessPodman(tar, ref, rootless_runtime()))


class TestRootlessPodman(Battery):
    """The tests podman_battery.py shares with the other podman module."""


def proc_ids(pid):
    """(real uid, real gid) of a host process."""
    with open(f"/proc/{pid}/status") as f:
        fields = {line.split(":")[0]: line.split()[1:] for line in f if ":" in line}
    return int(fields["Uid"][0]), int(fields["Gid"][0])


def test_the_user_can_execute_the_runtime(pm):
    r = pm.as_user(pm.runtime, "--version")
    assert r.rc == 0 and "spec" in r.out, f"{pm.user.name} cannot run the runtime:{r!r}"


def test_info_is_rootless_with_the_runtime_and_cgroupfs(pm):
    r = pm.podman("info", "--format", "{{.Host.Security.Rootless}} {{.Host.CgroupManager}} {{.Host.OCIRuntime.Path}}")
    assert (r.rc, r.lines[-1:]) == (0, [f"true cgroupfs {pm.wrapper}"]), r


def test_run_as_root_of_the_users_namespace(pm):
    before = len(pm.argv.calls())
    r = run_rm(pm, "sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map")
    assert r.rc == 0, f"{r!r}\n{explain(pm)}"
    sub_uid, sub_gid = pm.user.subuid, pm.user.subgid
    maps = [line.split() for line in r.lines[1:]]
    assert r.lines[0] == "0", r
    assert maps == [
        ["0", str(pm.user.uid), "1"],
        ["1", str(sub_uid[0]), str(sub_uid[1])],
        ["0", str(pm.user.gid), "1"],
        ["1", str(sub_gid[0]), str(sub_gid[1])],
    ], r
    [cid] = created_ids(pm, before)
    call(pm, cid, r"create --bundle \S+/ID/userdata --pid-file \S+/vfs-containers/ID/userdata/pidfile ID")
    call(pm, cid, r"start ID")
    call(pm, cid, r"delete --force ID")
    assert not os.path.exists(os.path.join(pm.default_root(), cid)), explain(pm, cid)


def test_run_bind_mount_of_the_users_file_read_only(pm):
    vol = os.path.join(pm.user.home, "vol")
    r = pm.as_user("sh", "-c", f"mkdir -p {vol} && echo vol-content > {vol}/file")
    assert r.rc == 0, r
    r = run_rm(pm, "sh", "-c", "cat /vol/file; touch /vol/x", flags=("-v", f"{vol}:/vol:ro"))
    assert r.rc == 1 and r.lines[0] == "vol-content" and "Read-only file system" in r.out, f"{r!r}\n{explain(pm)}"


@pytest.mark.parametrize("userns", ["", "keep-id"])
def test_files_written_to_a_bind_mount_are_the_users(pm, userns):
    """The container's root (by default) or the user's own id (--userns=keep-id: a nested
    user namespace with uidMappings, which the runtime makes) writes as the user."""
    vol = os.path.join(pm.user.home, f"rw{userns}")
    r = pm.as_user("mkdir", "-p", vol)
    assert r.rc == 0, r
    flags = ("-v", f"{vol}:/vol") + ((f"--userns={userns}",) if userns else ())
    r = run_rm(pm, "sh", "-c", "id -u; touch /vol/made", flags=flags)
    want = str(pm.user.uid) if userns else "0"
    assert (r.rc, r.lines) == (0, [want]), f"{r!r}\n{explain(pm)}"
    st = os.stat(os.path.join(vol, "made"))
    assert (st.st_uid, st.st_gid) == (pm.user.uid, pm.user.gid)


# ---------------------------------------------------------------- a detached container


def init_pid(pm, name):
    r = pm.podman("inspect", "-f", "{{.State.Pid}}", name)
    assert r.rc == 0 and r.lines and r.lines[-1].isdigit(), r
    return int(r.lines[-1])


def test_the_host_sees_the_users_ids(pm, detached):
    name, cid = detached
    pid = init_pid(pm, name)
    assert proc_ids(pid) == (pm.user.uid, pm.user.gid), explain(pm, cid)
    # the runtime keeps its state in the user's XDG_RUNTIME_DIR
    assert os.path.isdir(os.path.join(pm.default_root(), cid)), os.listdir(pm.user.runtime_dir)
    r = pm.podman("ps", "--format", "{{.Names}} {{.Status}}")
    assert any(line.startswith(f"{name} Up") for line in r.lines), r
    r = pm.podman("exec", "-d", "-u", "65534", name, "sleep", "300")
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    nobody = pm.user.subuid[0] + 65534 - 1  # container uid 65534 is subordinate id 65533
    found = wait_until(
        lambda: [p for p in pids_mentioning("sleep 300") if proc_ids(p)[0] == nobody],
        f"a 'sleep 300' running as host uid {nobody}",
        timeout=10,
    )
    assert len(found) == 1, found


def test_update_without_a_cgroup_fails_cleanly(pm, detached):
    """cgroup v1 gives a rootless container no cgroup (podman passes no cgroupsPath): the
    runtime refuses `update`, naming that, and the container runs on."""
    name, cid = detached
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pytest.skip("cgroup v2: a rootless container may have a delegated cgroup here")
    r = pm.podman("update", "--memory", "64m", name)
    assert r.rc != 0 and "cgroup" in r.out, f"{r!r}\n{explain(pm, cid)}"
    call(pm, cid, r"update --resources=\S+ ID")
    assert status(pm, name) == "running 0", explain(pm, cid)


def test_kill_exit_status_137(pm, detached):
    name, cid = detached
    r = pm.podman("kill", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    r = pm.podman("wait", name)
    assert (r.rc, r.lines[-1:]) == (0, ["137"]), f"{r!r}\n{explain(pm, cid)}"
    # "stopped" until conmon's exit command (podman container cleanup) has run
    wait_until(lambda: status(pm, name) == "exited 137", f"{name} to be exited 137", timeout=30)
    call(pm, cid, r"kill ID 9")


@pytest.mark.parametrize("detached", ['trap "exit 42" TERM; while :; do sleep 0.1; done'], indirect=True)
def test_stop_honours_the_term_trap_then_rm(pm, detached):
    name, cid = detached
    pid = init_pid(pm, name)
    wait_until(lambda: "sleep" in pm.podman("top", name).out, "the trap loop to run", timeout=10)
    r = pm.podman("stop", "-t", "10", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    assert status(pm, name) == "exited 42", explain(pm, cid)
    r = pm.podman("rm", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    assert pm.container_id(name) is None
    call(pm, cid, r"kill ID 15")
    call(pm, cid, r"delete --force ID")
    # the runtime's rootless state and the container's processes are gone
    assert not os.path.exists(os.path.join(pm.default_root(), cid)), explain(pm, cid)
    assert not os.path.exists(f"/proc/{pid}") or proc_ids(pid)[0] != pm.user.uid


# ---------------------------------------------------------------- rootless network


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
            return resp.read().decode()
    except (OSError, urllib.error.URLError):
        return None


@pytest.mark.skipif(bool(missing("slirp4netns")), reason="no slirp4netns (scripts/setup-engines.sh installs it)")
@pytest.mark.skipif(not os.path.exists(TUN), reason=f"no {TUN}: this kernel has no tun device for slirp4netns")
def test_published_port_reached_from_the_host(pm):
    """The default rootless network: slirp4netns joins the container's network namespace
    (podman passes it to the runtime by path) and rootlessport listens on the host."""
    pm.grant_tun()
    port = free_port()
    name = pm.cname("web")
    serve = "mkdir /www && echo hello-port > /www/index.html && exec httpd -f -p 8080 -h /www"
    publish = ("--network", "slirp4netns", "-p", f"127.0.0.1:{port}:8080")
    r = pm.podman("run", "-d", "--name", name, *publish, pm.image, "sh", "-c", serve)
    assert r.rc == 0, f"{r!r}\n{explain(pm)}"
    cid = r.lines[-1]
    try:
        body = wait_until(lambda: fetch(port), f"the published port {port} to answer", timeout=30, interval=0.2)
        assert body == "hello-port\n", body
        call(pm, cid, r"create --bundle \S+ --pid-file \S+ ID")
    finally:
        r = pm.podman("rm", "-f", "-t", "0", name)
    assert r.rc == 0, f"{r!r}\n{explain(pm, cid)}"
    assert fetch(port) is None, f"port {port} still answers after podman rm"
