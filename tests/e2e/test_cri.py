"""pyrunc under Kubernetes' Container Runtime Interface: a private containerd with its CRI
plugin, where config.toml names pyrunc (through the wrapper) as the BinaryName of a runtime
handler "pyrunc", driven over CRI gRPC by cri_client.py as kubelet or crictl would: a
host-network pod, containers created and started in it, ExecSync, logs, exit codes, stop
and removal."""

import os
import re

import pytest

from tests.e2e.engines import CONTAINERD_NEEDS, CriContainerd, cri_interpreter
from tests.e2e.harness import cgroup_dirs, engine_fixture, skip_reason, wait_until

SKIP = skip_reason("containerd (CRI)", CONTAINERD_NEEDS)
PYTHON = None if SKIP else cri_interpreter()
if not SKIP and not PYTHON:
    SKIP = "no Python with grpcio for the CRI client (scripts/setup-engines.sh installs python3-grpcio)"
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
CREATED, RUNNING, EXITED = 0, 1, 2


@pytest.fixture(scope="module")
def cri(busybox_image, pause_image):
    (tar, ref), (pause_tar, pause_ref) = busybox_image, pause_image
    yield from engine_fixture(CriContainerd(tar, ref, pause_tar, pause_ref, PYTHON))


@pytest.fixture(autouse=True)
def _calls_of_this_test(cri):
    cri.mark_calls()


@pytest.fixture(scope="module")
def pod(cri):
    """(name, id) of a pod sandbox run with runtime_handler "pyrunc"."""
    name = f"{cri.name}-pod"
    doc, r = cri.cri("RunPodSandbox", {"config": cri.pod_config(name), "runtime_handler": "pyrunc"})
    assert "pod_sandbox_id" in doc, f"{r!r}\n{cri.explain()}\n{cri.daemon_log('containerd.log')}"
    cri.pods.append(doc["pod_sandbox_id"])
    return name, doc["pod_sandbox_id"]


def shim_call(cri, cid, pattern):
    """The shim's calls about cid matching pattern (ID stands for cid), after checking their
    global flags: --root <Root option>/k8s.io --log <bundle>/log.json --log-format json."""
    found = cri.argv.expect(pattern.replace("ID", re.escape(cid)), f"for {cid}")
    for c in found:
        assert c.globals.get("--root") == os.path.join(cri.runc_root, "k8s.io"), c
        assert c.globals.get("--log") == os.path.join(cri.bundle(cid), "log.json"), c
        assert c.globals.get("--log-format") == "json", c
    return found


def create_and_start(cri, pod, name, command):
    pod_name, pod_id = pod
    config = {"metadata": {"name": name}, "image": {"image": cri.image}, "command": command, "log_path": f"{name}.log"}
    doc, r = cri.cri(
        "CreateContainer", {"pod_sandbox_id": pod_id, "config": config, "sandbox_config": cri.pod_config(pod_name)}
    )
    assert "container_id" in doc, f"{r!r}\n{cri.explain()}"
    cid = doc["container_id"]
    doc, r = cri.cri("StartContainer", {"container_id": cid})
    assert "error" not in doc, f"{r!r}\n{cri.explain(cid)}"
    return cid


def status(cri, cid):
    doc, r = cri.cri("ContainerStatus", {"container_id": cid})
    assert "error" not in doc or doc["error"] == "NOT_FOUND", r
    return doc.get("status")


@pytest.fixture
def running(cri, pod, request):
    """A container of the pod whose process sleeps; stopped and removed afterwards."""
    cid = create_and_start(cri, pod, request.node.name[5:][:30].replace("_", "-"), ["sleep", "1000"])
    yield cid
    cri.cri("StopContainer", {"container_id": cid, "timeout": 0})
    cri.cri("RemoveContainer", {"container_id": cid})


def test_version(cri):
    doc, r = cri.cri("Version", {"version": "v1"})
    assert doc.get("runtime_name") == "containerd", r


def test_pod_sandbox_runs_on_the_pyrunc_handler(cri, pod):
    _, pod_id = pod
    bundle = re.escape(cri.bundle(pod_id))
    shim_call(cri, pod_id, rf"create --bundle {bundle} --pid-file {bundle}/init\.pid ID")
    shim_call(cri, pod_id, r"start ID")


def test_container_output_logs_and_exit_code(cri, pod):
    cid = create_and_start(cri, pod, "exit7", ["sh", "-c", "echo to-log; echo to-err >&2; exit 7"])
    st = wait_until(
        lambda: (lambda s: s if s and s.get("state", CREATED) == EXITED else None)(status(cri, cid)),
        "the container to exit",
        timeout=30,
    )
    assert st.get("exit_code", 0) == 7, f"{st}\n{cri.explain(cid)}"
    with open(os.path.join(cri.path("logs", pod[0]), "exit7.log")) as f:
        log = f.read()
    # CRI log format: <RFC3339 time> <stream> <F|P> <text>
    assert re.search(r"^\S+ stdout F to-log$", log, re.M), log
    assert re.search(r"^\S+ stderr F to-err$", log, re.M), log
    doc, r = cri.cri("RemoveContainer", {"container_id": cid})
    assert "error" not in doc, f"{r!r}\n{cri.explain(cid)}"
    shim_call(cri, cid, r"create --bundle \S+ --pid-file \S+/init\.pid ID")
    shim_call(cri, cid, r"start ID")
    shim_call(cri, cid, r"delete ID")


def test_exec_sync_output_and_exit_code(cri, running):
    cmd = ["sh", "-c", "echo in-exec; echo to-err >&2; exit 5"]
    doc, r = cri.cri("ExecSync", {"container_id": running, "cmd": cmd, "timeout": 30})
    assert (doc.get("stdout"), doc.get("stderr"), doc.get("exit_code", 0)) == ("in-exec\n", "to-err\n", 5), (
        f"{r!r}\n{cri.explain(running)}"
    )
    shim_call(cri, running, r"exec --process \S+ --detach --pid-file \S+ ID")


def test_stop_and_remove_container(cri, running):
    cid = running
    assert status(cri, cid).get("state") == RUNNING
    doc, r = cri.cri("StopContainer", {"container_id": cid, "timeout": 2})
    assert "error" not in doc, f"{r!r}\n{cri.explain(cid)}"
    st = status(cri, cid)
    # the pod shares its pid namespace: sleep is not pid 1 and SIGTERM ends it (128 + 15)
    assert (st.get("state"), st.get("exit_code", 0)) == (EXITED, 143), f"{st}\n{cri.explain(cid)}"
    shim_call(cri, cid, r"kill ID 15")
    # when the init of a container without its own pid namespace exits, the shim kills the rest
    wait_until(lambda: cri.argv.matching(rf"kill --all {cid} 9"), "the shim's kill --all", timeout=10)
    shim_call(cri, cid, r"kill --all ID 9")
    doc, r = cri.cri("RemoveContainer", {"container_id": cid})
    assert "error" not in doc, f"{r!r}\n{cri.explain(cid)}"
    assert status(cri, cid) is None
    shim_call(cri, cid, r"delete ID")
    assert not os.path.exists(os.path.join(cri.runc_root, "k8s.io", cid))
    assert not os.path.exists(cri.bundle(cid))


def test_stop_and_remove_pod(cri, pod):
    _, pod_id = pod
    doc, r = cri.cri("StopPodSandbox", {"pod_sandbox_id": pod_id})
    assert "error" not in doc, f"{r!r}\n{cri.explain(pod_id)}"
    shim_call(cri, pod_id, r"kill ID 9")
    doc, r = cri.cri("RemovePodSandbox", {"pod_sandbox_id": pod_id})
    assert "error" not in doc, f"{r!r}\n{cri.explain(pod_id)}"
    cri.pods.remove(pod_id)
    shim_call(cri, pod_id, r"delete ID")
    assert os.listdir(os.path.join(cri.runc_root, "k8s.io")) == []
    assert cgroup_dirs(f"{cri.cgroup_parent}/{pod_id}") == []
