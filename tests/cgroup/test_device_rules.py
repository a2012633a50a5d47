"""The device allowlist is linux.resources.devices plus runc's defaults, nothing more:
runc's dev.bats "device cgroup deny" case, run with pyrunc and (where it is installed)
with runc on the same bundle.  Works on v1 (devices.list) and v2 (the device program)."""

import os

import pytest
from cg_util import V2

from tests.integration.cli_util import RUNC, Runc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

KMSG = {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11}


def kmsg_config(bundle, devices):
    """dev.bats's config: `devices` in resources, /dev/kmsg made by linux.devices, and
    CAP_SYSLOG, so that only the device controller can refuse the open."""
    cfg = bundle.config
    cfg["linux"]["resources"]["devices"] = devices
    cfg["linux"]["devices"] = [KMSG]
    for kind in ("bounding", "effective", "permitted"):
        if "CAP_SYSLOG" not in cfg["process"]["capabilities"][kind]:
            cfg["process"]["capabilities"][kind].append("CAP_SYSLOG")
    cfg["process"]["args"] = ["sleep", "600"]
    cfg["hostname"] = "pyrunc-test"
    bundle.write()


@pytest.fixture(params=["pyrunc", "runc"])
def runtime(request, pyrunc, tmp_path):
    """A function running one command of the runtime under test: (code, stdout + stderr)."""
    if request.param == "pyrunc":

        def call(*args):
            r = pyrunc(*args)
            return r.code, r.out + r.err

        call.use = lambda bundle: None
        yield call
        return
    if RUNC is None:
        pytest.skip("runc is not installed")
    runc = Runc(str(tmp_path / "runc-state"), str(tmp_path))

    def call(*args):
        code, out, err = runc(*args)
        return code, out + err

    call.use = runc.use
    yield call
    for cid in runc.ids:
        runc("delete", "--force", cid)
    runc.remove_cgroups()


def devices_list(bundle):
    path = os.path.join("/sys/fs/cgroup/devices", bundle.config["linux"]["cgroupsPath"].lstrip("/"), "devices.list")
    with open(path) as f:
        return set(f.read().splitlines())


def test_a_device_linux_devices_makes_is_still_denied(runtime, bundle, test_id):
    kmsg_config(bundle, [{"allow": False, "access": "rwm"}])
    runtime.use(bundle)
    code, out = runtime("run", "-d", "--bundle", bundle.path, test_id)
    assert code == 0, out
    try:
        # The node is there ...
        code, out = runtime("exec", test_id, "ls", "-l", "/dev/kmsg")
        assert code == 0 and out.startswith("c"), out
        # ... and neither writing nor reading it gets past the cgroup.
        code, out = runtime("exec", test_id, "sh", "-c", "hostname | tee /dev/kmsg")
        assert code == 1 and "Operation not permitted" in out, out
        code, out = runtime("exec", test_id, "head", "-c", "1", "/dev/kmsg")
        assert code == 1 and "Operation not permitted" in out, out
        # The defaults still hold.
        code, out = runtime("exec", test_id, "sh", "-c", "echo x > /dev/null && head -c 1 /dev/zero | wc -c")
        assert (code, out.strip()) == (0, "1"), out
        if not V2:
            assert "c 1:11 rwm" not in devices_list(bundle) and "c 1:3 rwm" in devices_list(bundle)
    finally:
        runtime("delete", "--force", test_id)


def test_an_allow_rule_lets_the_device_through(runtime, bundle, test_id):
    """The control for the test above: the same container reads /dev/kmsg once
    linux.resources.devices allows it."""
    kmsg_config(
        bundle,
        [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}],
    )
    runtime.use(bundle)
    code, out = runtime("run", "-d", "--bundle", bundle.path, test_id)
    assert code == 0, out
    try:
        # O_NONBLOCK is not open to head: the read may block on an empty ring, so dd
        # with a count of 0 only opens it.
        code, out = runtime("exec", test_id, "dd", "if=/dev/kmsg", "of=/dev/null", "count=0")
        assert code == 0, out
        code, out = runtime("exec", test_id, "sh", "-c", "hostname | tee /dev/kmsg")
        assert code == 1 and "Operation not permitted" in out, out
        if not V2:
            assert "c 1:11 r" in devices_list(bundle)
    finally:
        runtime("delete", "--force", test_id)


@pytest.mark.skipif(V2, reason="devices.list is cgroup v1's")
@pytest.mark.parametrize(
    "devices",
    [
        None,
        [],
        [{"allow": False, "access": "rwm"}],
        [{"allow": True, "access": "rwm"}],
        [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 4, "minor": 64, "access": "r"}],
        [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}],
        [{"allow": False, "access": "rwm"}, {"allow": True, "type": "b", "major": 8, "access": "rw"}],
    ],
    ids=["absent", "empty", "deny-all", "allow-all", "tty-read", "null-read", "disks"],
)
def test_devices_list_is_runcs(devices, pyrunc, bundle, test_id, tmp_path):
    """The same exceptions in devices.list as runc's container of the same config (runc
    writes them in another order: compared as sets)."""
    if RUNC is None:
        pytest.skip("runc is not installed")
    if devices is None:
        bundle.config["linux"]["resources"].pop("devices", None)
    else:
        bundle.config["linux"]["resources"]["devices"] = devices
    bundle.config["linux"]["devices"] = [KMSG]
    bundle.config["process"]["args"] = ["sleep", "600"]
    ours = bundle.config["linux"]["cgroupsPath"]
    runc = Runc(str(tmp_path / "runc-state"), str(tmp_path))
    runc.use(bundle)
    try:
        code, _, err = runc("run", "-d", "--bundle", bundle.path, test_id)
        assert code == 0, err
        theirs = devices_list(bundle)
        bundle.config["linux"]["cgroupsPath"] = ours
        bundle.write()
        r = pyrunc("run", "-d", "--bundle", bundle.path, test_id)
        assert r.code == 0, r
        assert devices_list(bundle) == theirs
    finally:
        pyrunc("delete", "--force", test_id)
        runc("delete", "--force", test_id)
        runc.remove_cgroups()


def test_a_second_container_in_the_cgroup_moves_its_list(pyrunc, bundle, test_id):
    """A container created into the cgroup of a running one (a pod's shared cgroup) gives
    the cgroup its own list: the first container can now read /dev/kmsg.  On v1 the
    kernel took the writes of the transition (devices_v1.py) and devices.list is read back."""
    kmsg_config(bundle, [{"allow": False, "access": "rwm"}])
    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    second = test_id + "-2"
    try:
        r = pyrunc("exec", test_id, "dd", "if=/dev/kmsg", "of=/dev/null", "count=0")
        assert r.code == 1 and "Operation not permitted" in r.out + r.err, r
        kmsg_config(
            bundle,
            [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}],
        )
        r = pyrunc("run", "-d", "--bundle", bundle.path, second)
        assert r.code == 0, r
        r = pyrunc("exec", test_id, "dd", "if=/dev/kmsg", "of=/dev/null", "count=0")
        assert r.code == 0, r
        r = pyrunc("exec", test_id, "sh", "-c", "echo x > /dev/null")
        assert r.code == 0, r
        if not V2:
            assert "c 1:11 r" in devices_list(bundle)
    finally:
        pyrunc("delete", "--force", second)
        pyrunc("delete", "--force", test_id)


def test_update_leaves_the_device_rules_alone(runtime, bundle, test_id, tmp_path):
    """runc's update skips devices (SkipDevices), also when `update -r` carries a list:
    the container still cannot read /dev/kmsg, and its other limits did change.  runc's
    update.bats "minimal transition rules" repeats such updates under a reader of kmsg."""
    kmsg_config(bundle, [{"allow": False, "access": "rwm"}])
    runtime.use(bundle)
    code, out = runtime("run", "-d", "--bundle", bundle.path, test_id)
    assert code == 0, out
    resources = tmp_path / "resources.json"
    resources.write_text('{"devices": [{"allow": true, "access": "rwm"}], "pids": {"limit": 30}}')
    try:
        before = None if V2 else devices_list(bundle)
        for _ in range(3):
            code, out = runtime("update", "-r", str(resources), test_id)
            assert code == 0, out
            code, out = runtime("update", "--pids-limit", "30", test_id)
            assert code == 0, out
        code, out = runtime("exec", test_id, "head", "-c", "1", "/dev/kmsg")
        assert code == 1 and "Operation not permitted" in out, out
        if not V2:
            assert devices_list(bundle) == before
        pids_max = (["/sys/fs/cgroup"] if V2 else ["/sys/fs/cgroup/pids"]) + [
            bundle.config["linux"]["cgroupsPath"].lstrip("/"),
            "pids.max",
        ]
        with open(os.path.join(*pids_max)) as f:
            assert f.read().strip() == "30"
    finally:
        runtime("delete", "--force", test_id)
