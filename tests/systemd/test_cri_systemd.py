"""The systemd cgroup driver as Kubernetes drives it (the `make test-systemd` guest): a
private containerd whose CRI runtime handlers are the runc v2 shim with `SystemdCgroup =
true` ("pyrunc": BinaryName pyrunc; "runc": BinaryName runc, for the baseline), driven over
the CRI as a kubelet with the systemd cgroup driver would: the pod's cgroup parent is its
slice's expanded path (/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>
.slice, what the kubelet passes), so containerd hands the runtime the cgroupsPath
`kubepods-besteffort-pod<uid>.slice:cri-containerd:<id>` for the sandbox and for each
container.  One pod per handler: RunPodSandbox, CreateContainer with memory and CPU limits,
StartContainer, then StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox and
the kubelet's stop of the pod slice; what systemd and the cgroup tree show is recorded at
each step, checked for pyrunc, and compared with runc's.

The engine is tests/e2e's private containerd (engines.CriContainerd, its clean-up and leak
check), with the systemd options added to its config.toml."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import uuid

import pytest

from tests.e2e.engines import CONTAINERD_NEEDS, CriContainerd, cri_interpreter
from tests.e2e.harness import PREFIX, engine_fixture, skip_reason, write_wrapper
from tests.e2e.image import build_image, find_busybox
from tests.systemd.sd_util import CGROUP_ROOT, gone, read, run, show

MiB = 1 << 20
SKIP = skip_reason("containerd (CRI)", CONTAINERD_NEEDS) or (
    None if cri_interpreter() else "no Python with grpcio for the CRI client (python3-grpcio)"
)
if not SKIP and not find_busybox():
    SKIP = "no static busybox for the test image (busybox-static)"
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
RUNC = shutil.which("runc")
# The kubelet's top slices (it makes them at its start; here systemd makes them with the
# first scope in them).
KUBE_SLICES = ("kubepods.slice", "kubepods-besteffort.slice")
# What the CRI asks for of the container: the kubelet's resources of a pod with limits.
LIMITS = {"memory_limit_in_bytes": 64 * MiB, "cpu_period": 100000, "cpu_quota": 50000, "cpu_shares": 512}
# The unit properties recorded for each scope (and compared with runc's).
PROPS = (
    "ActiveState",
    "Slice",
    "ControlGroup",
    "Delegate",
    "DefaultDependencies",
    "MemoryAccounting",
    "CPUAccounting",
    "IOAccounting",
    "TasksAccounting",
    "MemoryMax",
    "MemoryLow",
    "MemorySwapMax",
    "CPUWeight",
    "CPUQuotaPerSecUSec",
    "CPUQuotaPeriodUSec",
    "TasksMax",
    "AllowedCPUs",
    "AllowedMemoryNodes",
    "DevicePolicy",
    "DeviceAllow",
    "Description",
)
FILES = ("memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max", "cgroup.type")


class SystemdCri(CriContainerd):
    """tests/e2e's CRI containerd with `SystemdCgroup = true` for its handler "pyrunc" and a
    second handler "runc" (runc through its own logging wrapper, same argv log)."""

    def runc_wrapper(self):
        return os.path.join(self.dir, "bin", "runc-wrapper")

    def config_toml(self):
        runtimes = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes'
        # The guest's /tmp is on its overlay root, where an overlay snapshot cannot have
        # its upper layer: the native snapshotter copies instead.
        default = '    default_runtime_name = "pyrunc"\n'
        return (
            super().config_toml().replace(default, default + '    snapshotter = "native"\n')
            + "        SystemdCgroup = true\n"
            + f"    {runtimes}.runc]\n"
            + '      runtime_type = "io.containerd.runc.v2"\n'
            + f"      {runtimes}.runc.options]\n"
            + f'        BinaryName = "{self.runc_wrapper()}"\n'
            + f'        Root = "{self.runc_root}-runc"\n'
            + "        SystemdCgroup = true\n"
        )

    def start(self):
        if RUNC:
            write_wrapper(self.runc_wrapper(), RUNC, self.argv.path)
        super().start()


def unit_loaded(unit):
    return show(unit, "LoadState")["LoadState"] == "loaded" and show(unit, "ActiveState")["ActiveState"] == "active"


@pytest.fixture(scope="module")
def cri(layout):
    """The private containerd; afterwards the kubelet's slices this module made are
    stopped, as a kubelet stops them.  On the unified hierarchy only: what it reads of the
    scopes' cgroups is cgroup v2's (the driver on v1 is test_systemd_driver.py's)."""
    if layout != "unified":
        pytest.skip(f"the CRI checks read cgroup v2 files; this guest's layout is {layout}")
    if any(unit_loaded(s) for s in KUBE_SLICES):
        pytest.skip("a kubelet's kubepods.slice is there: this host runs Kubernetes pods")
    images = tempfile.mkdtemp(prefix=f"{PREFIX}images-")
    try:
        tar, ref = os.path.join(images, "busybox.tar"), None
        ref = build_image(tar, "e2e/busybox:latest")
        pause_tar = os.path.join(images, "pause.tar")
        pause_ref = build_image(pause_tar, "e2e/pause:latest", cmd=("sleep", "2147483647"))
        engine = SystemdCri(tar, ref, pause_tar, pause_ref, cri_interpreter())
    finally:
        shutil.rmtree(images, ignore_errors=True)
    engine.scenarios = {}
    try:
        yield from engine_fixture(engine)
    finally:
        for unit in [s["slice"] for s in engine.scenarios.values()] + list(reversed(KUBE_SLICES)):
            run("systemctl", "stop", unit)


def call(cri, method, request, what):
    doc, r = cri.cri(method, request)
    if "error" in doc:
        # What systemd was doing meanwhile: its journal's last lines.
        journal = subprocess.run(
            ["journalctl", "-b", "-n", "40", "--no-pager"], capture_output=True, text=True, timeout=60
        ).stdout
        raise AssertionError(f"{method}: {r!r}\n{cri.explain(what)}\njournal:\n{journal}")
    return doc


def scope_of(slice_path, cid):
    """(unit, cgroup directory) of a CRI container or sandbox under the pod's slice."""
    unit = f"cri-containerd-{cid}.scope"
    return unit, f"{CGROUP_ROOT}{slice_path}/{unit}"


def snapshot(unit, cg):
    """A running scope: its properties, its cgroup's files and where its first process is."""
    procs = read(f"{cg}/cgroup.procs").split()
    return {
        "props": show(unit, *PROPS),
        "files": {name: read(f"{cg}/{name}") for name in FILES if os.path.exists(f"{cg}/{name}")},
        "proc_cgroup": read(f"/proc/{procs[0]}/cgroup") if procs else None,
    }


def cgroup_tree(top):
    """The directories under top, relative to it."""
    return sorted(os.path.relpath(d, top) for d, _, _ in os.walk(top) if d != top)


def scenario(cri, handler):
    """One pod's life on `handler`, as the kubelet lives it, recorded once per module."""
    if handler in cri.scenarios:
        return cri.scenarios[handler]
    if handler == "runc" and not RUNC:
        pytest.skip("runc is not installed")
    pod_uid = str(uuid.uuid4())
    slice_ = f"kubepods-besteffort-pod{pod_uid.replace('-', '_')}.slice"
    slice_path = f"/kubepods.slice/kubepods-besteffort.slice/{slice_}"
    seen = cri.scenarios[handler] = {"slice": slice_, "slice_path": slice_path}
    name = f"{cri.name}-{handler}"
    pod_config = cri.pod_config(name)
    pod_config["metadata"]["uid"] = pod_uid
    pod_config["linux"]["cgroup_parent"] = slice_path
    pod_id = call(cri, "RunPodSandbox", {"config": pod_config, "runtime_handler": handler}, None)["pod_sandbox_id"]
    cri.pods.append(pod_id)
    seen["pod_id"] = pod_id
    config = {
        "metadata": {"name": "limited"},
        "image": {"image": cri.image},
        "command": ["sleep", "1000"],
        "log_path": "limited.log",
        "linux": {"resources": LIMITS},
    }
    request = {"pod_sandbox_id": pod_id, "config": config, "sandbox_config": pod_config}
    cid = seen["cid"] = call(cri, "CreateContainer", request, pod_id)["container_id"]
    call(cri, "StartContainer", {"container_id": cid}, cid)
    seen["create"] = {}
    for i in (pod_id, cid):
        with open(os.path.join(cri.bundle(i), "config.json")) as f:
            path = json.load(f)["linux"]["cgroupsPath"]
        flags = [c.globals for c in cri.argv.matching(rf"create .* {i}")]
        seen["create"][i] = {"cgroupsPath": path, "flags": flags}
    seen["sandbox"] = snapshot(*scope_of(slice_path, pod_id))
    seen["container"] = snapshot(*scope_of(slice_path, cid))
    inside = call(cri, "ExecSync", {"container_id": cid, "cmd": ["cat", "/proc/self/cgroup"], "timeout": 30}, cid)
    seen["container"]["inside"] = inside.get("stdout", "")
    seen["units"] = sorted(
        line.split()[0]
        for line in run("systemctl", "list-units", "--all", "--plain", "--no-legend", "cri-containerd-*").splitlines()
        if pod_id in line or cid in line
    )
    seen["slice_props"] = show(slice_, "ActiveState", "Slice", "ControlGroup")
    seen["tree"] = cgroup_tree(CGROUP_ROOT + slice_path)

    call(cri, "StopContainer", {"container_id": cid, "timeout": 0}, cid)
    call(cri, "RemoveContainer", {"container_id": cid}, cid)
    unit, cg = scope_of(slice_path, cid)
    seen["container_removed"] = {"gone": gone(unit), "cgroup": os.path.exists(cg)}
    call(cri, "StopPodSandbox", {"pod_sandbox_id": pod_id}, pod_id)
    call(cri, "RemovePodSandbox", {"pod_sandbox_id": pod_id}, pod_id)
    cri.pods.remove(pod_id)
    unit, cg = scope_of(slice_path, pod_id)
    seen["pod_removed"] = {
        "gone": gone(unit),
        "cgroup": os.path.exists(cg),
        "tree": cgroup_tree(CGROUP_ROOT + slice_path),
    }
    # The kubelet stops the pod's slice once the pod is gone.
    run("systemctl", "stop", slice_)
    seen["slice_stopped"] = {
        "state": show(slice_, "ActiveState")["ActiveState"],
        "cgroup": os.path.exists(CGROUP_ROOT + slice_path),
    }
    return seen


def test_the_runtime_is_given_the_kubelet_style_systemd_path(cri):
    seen = scenario(cri, "pyrunc")
    for i in (seen["pod_id"], seen["cid"]):
        create = seen["create"][i]
        assert create["cgroupsPath"] == f"{seen['slice']}:cri-containerd:{i}", create
        assert [flags.get("--systemd-cgroup") for flags in create["flags"]] == [True], create


def test_sandbox_and_container_are_delegated_scopes_in_the_pod_slice(cri):
    seen = scenario(cri, "pyrunc")
    assert seen["units"] == sorted(f"cri-containerd-{i}.scope" for i in (seen["pod_id"], seen["cid"]))
    for role, cid in (("sandbox", seen["pod_id"]), ("container", seen["cid"])):
        unit, cg = scope_of(seen["slice_path"], cid)
        props = seen[role]["props"]
        assert props["ActiveState"] == "active" and props["Slice"] == seen["slice"], (role, props)
        assert props["ControlGroup"] == f"{seen['slice_path']}/{unit}", (role, props)
        assert props["Delegate"] == "yes" and props["DefaultDependencies"] == "no", (role, props)
        assert seen[role]["proc_cgroup"] == f"0::{seen['slice_path']}/{unit}", role
    # systemd nests the pod slice where the runtime expanded it
    assert seen["slice_props"] == {
        "ActiveState": "active",
        "Slice": "kubepods-besteffort.slice",
        "ControlGroup": seen["slice_path"],
    }
    assert seen["tree"] == sorted(f"cri-containerd-{i}.scope" for i in (seen["pod_id"], seen["cid"]))
    # the container's own cgroup namespace: its root is its scope
    assert seen["container"]["inside"] == "0::/\n"


def test_the_cri_limits_are_unit_properties_and_cgroup_files(cri):
    seen = scenario(cri, "pyrunc")
    props, files = seen["container"]["props"], seen["container"]["files"]
    assert props["MemoryMax"] == str(64 * MiB) and files["memory.max"] == str(64 * MiB), (props, files)
    assert props["CPUQuotaPerSecUSec"] == "500ms" and files["cpu.max"] == "50000 100000", (props, files)
    # shares 512 -> weight 20 (runc's conversion)
    assert props["CPUWeight"] == "20" and files["cpu.weight"] == "20", (props, files)


def test_removal_leaves_no_unit_scope_or_cgroup(cri):
    seen = scenario(cri, "pyrunc")
    assert seen["container_removed"] == {"gone": True, "cgroup": False}
    assert seen["pod_removed"] == {"gone": True, "cgroup": False, "tree": []}
    assert seen["slice_stopped"] == {"state": "inactive", "cgroup": False}


def normalised(seen):
    """A scenario's record with its ids, pod slice and Description taken out."""
    text = json.dumps({k: v for k, v in seen.items() if k != "create"})
    text = text.replace(seen["pod_id"], "<POD>").replace(seen["cid"], "<CID>")
    text = text.replace(seen["slice"][len("kubepods-besteffort-pod") : -len(".slice")], "<UID>")
    doc = json.loads(re.sub(r'"Description": "[^"]*"', '"Description": "<D>"', text))
    return {k: sorted(v) if isinstance(v, list) else v for k, v in doc.items()}


def leaves(doc, where=""):
    """{"a.b.c": value} of a nested dict."""
    if not isinstance(doc, dict):
        return {where: doc}
    found = {}
    for k, v in doc.items():
        found.update(leaves(v, f"{where}.{k}" if where else k))
    return found


def without_deliberate_differences(ours, runcs):
    """The two runs' leaves with what docs/cgroups.md gives as deliberate differences from
    runc 1.1 taken out, after checking each is what it says."""
    ours, runcs = dict(ours), dict(runcs)
    for role in ("sandbox", "container"):
        # DeviceAllow: runc 1.1 names a whole major by /proc/devices' group (char-pts), and
        # loses tun (/dev/char/10:200, in containerd's default list) behind its own rules.
        key = f"{role}.props.DeviceAllow"
        mine = ours[key].split("; ")
        theirs = ["char-136 rwm" if rule == "char-pts rwm" else rule for rule in runcs[key].split("; ")]
        assert "/dev/char/10:200 rwm" in mine, ours[key]
        ours[key], runcs[key] = sorted(set(mine) - {"/dev/char/10:200 rwm"}), sorted(theirs)
    # MemorySwapMax: containerd asks for swap = limit (no swap): both write 0 to
    # memory.swap.max, but runc 1.1 leaves the property at infinity, which systemd writes
    # back over the file at its next reload.
    key = "container.props.MemorySwapMax"
    assert (ours.pop(key), runcs.pop(key)) == ("0", "infinity")
    assert ours["container.files.memory.swap.max"] == runcs["container.files.memory.swap.max"] == "0"
    return ours, runcs


def test_the_unit_tree_matches_runcs(cri):
    ours, theirs = leaves(normalised(scenario(cri, "pyrunc"))), leaves(normalised(scenario(cri, "runc")))
    ours, theirs = without_deliberate_differences(ours, theirs)
    differ = [
        f"{k}: pyrunc {ours.get(k)!r}, runc {theirs.get(k)!r}"
        for k in sorted(set(ours) | set(theirs))
        if ours.get(k) != theirs.get(k)
    ]
    assert not differ, "\n".join(differ)
