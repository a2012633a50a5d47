"""The features document: schema-valid and truthful about what pyrunc implements."""

import json
import shutil
import subprocess

import pytest

import pyrunc
from pyrunc import features as feat
from pyrunc.config.schema import features_schema_errors, spec_dir
from pyrunc.config.semantic import CAPABILITIES
from pyrunc.linux.kernel import Kernel


def test_features_validate_against_the_features_schema():
    assert features_schema_errors(feat.features(Kernel())) == []


def test_features_schema_check_catches_a_broken_document():
    doc = feat.features(Kernel())
    del doc["ociVersionMin"]
    doc["linux"]["namespaces"].append("nett")
    doc["linux"]["capabilities"].append("cap_lowercase")
    problems = features_schema_errors(doc)
    assert any(p.startswith("(root): 'ociVersionMin' is a required property") for p in problems)
    assert any(p.startswith("linux.namespaces[8]:") for p in problems)
    assert any(p.startswith(f"linux.capabilities[{len(doc['linux']['capabilities']) - 1}]:") for p in problems)


def test_versions_span_1_0_0_to_the_implemented_spec():
    doc = feat.features(Kernel())
    assert doc["ociVersionMin"] == "1.0.0"
    assert doc["ociVersionMax"] == pyrunc.OCI_VERSION == "1.3.0"


def test_hooks_are_all_six_posix_hooks():
    assert feat.features(Kernel())["hooks"] == [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ]


def test_namespaces_are_every_type_the_schema_knows():
    with open(spec_dir() / "defs-linux.json") as f:
        known = json.load(f)["definitions"]["NamespaceType"]["enum"]
    assert sorted(feat.features(Kernel())["linux"]["namespaces"]) == sorted(known)


def _recognised(option):
    """MountOptions takes `option` as a mount option, not as filesystem data, and does
    not refuse it."""
    from pyrunc.errors import KernelError
    from pyrunc.linux.mounts import MountOptions

    try:
        return MountOptions([option]).data is None
    except KernelError:
        return False


def test_every_listed_mount_option_is_recognised_by_the_mount_code():
    options = feat.features(Kernel())["mountOptions"]
    assert len(options) == len(set(options))
    assert not any("=" in o for o in options), "filesystem data options must not be listed"
    refused = [o for o in options if not _recognised(o)]
    assert refused == []


def test_every_mount_option_the_mount_code_recognises_is_listed():
    # Candidates: every name the spec, runc or pyrunc has used for a mount option.
    candidates = {
        "idmap",
        "ridmap",
        "tmpcopyup",
        "symfollow",
        "rsymfollow",
        "acl",
        "noacl",
        "mode=755",
        "size=65536k",
        *feat.features(Kernel())["mountOptions"],
    }
    if shutil.which("runc"):
        out = subprocess.run(["runc", "features"], check=True, capture_output=True, text=True).stdout
        candidates |= set(json.loads(out)["mountOptions"])
    listed = set(feat.features(Kernel())["mountOptions"])
    assert sorted(o for o in candidates if _recognised(o) and o not in listed) == []
    assert sorted(o for o in listed if not _recognised(o)) == []
    for name in ("bind", "rbind", "ro", "rro", "rprivate", "nosymfollow", "symfollow", "rsymfollow", "tmpcopyup"):
        assert name in listed
    # Refused by the mount code (id-mapped mounts are not done yet), so not offered.
    assert "idmap" not in listed and "ridmap" not in listed


def test_capabilities_follow_the_running_kernel():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    caps = feat.features(Kernel())["linux"]["capabilities"]
    assert caps == list(CAPABILITIES[: last + 1])
    assert caps[0] == "CAP_CHOWN"


def test_capabilities_stop_at_an_older_kernels_last_cap(tmp_path):
    fake = tmp_path / "cap_last_cap"
    fake.write_text("37\n")
    caps = feat.kernel_capabilities(str(fake))
    assert len(caps) == 38 and caps[-1] == "CAP_AUDIT_READ"


def test_capabilities_fall_back_to_every_known_name_without_proc(tmp_path):
    caps = feat.kernel_capabilities(str(tmp_path / "missing"))
    assert caps == list(CAPABILITIES) and caps[40] == "CAP_CHECKPOINT_RESTORE"


def test_unimplemented_features_are_reported_disabled():
    linux = feat.features(Kernel())["linux"]
    assert linux["cgroup"] == {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": True}
    sc = linux["seccomp"]
    assert sc["enabled"] is True and "SCMP_ACT_NOTIFY" in sc["actions"] and "SCMP_CMP_MASKED_EQ" in sc["operators"]
    assert "SCMP_ARCH_X86_64" in sc["archs"] and set(sc["supportedFlags"]) <= set(sc["knownFlags"])
    assert linux["mountExtensions"] == {"idmap": {"enabled": False}}


def test_intel_rdt_and_memory_policy_are_reported_as_implemented():
    """Whatever the host has (features-linux.md): pyrunc applies them (linux/resctrl.py,
    linux/placement.py), and refuses intelRdt with an error where resctrl is missing."""
    linux = feat.features(Kernel())["linux"]
    assert linux["intelRdt"] == {"enabled": True, "schemata": True, "monitoring": True}
    with open(spec_dir() / "defs-linux.json") as f:
        defs = json.load(f)["definitions"]
    policy = linux["memoryPolicy"]
    assert sorted(policy["modes"]) == sorted(defs["MemoryPolicyMode"]["enum"])
    assert sorted(policy["flags"]) == sorted(defs["MemoryPolicyFlag"]["enum"])


def test_net_devices_are_enabled_where_pyroute2_can_be_imported(monkeypatch):
    import importlib.util

    assert feat.features(Kernel())["linux"]["netDevices"] == {"enabled": True}  # a dependency
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyroute2" else real(name, *a))
    assert feat.features(Kernel())["linux"]["netDevices"] == {"enabled": False}


def test_lsm_flags_are_booleans_matching_the_host():
    from pyrunc.linux.process import lsm_enabled

    linux = feat.features(Kernel())["linux"]
    assert linux["apparmor"] == {"enabled": lsm_enabled("apparmor")}
    assert linux["selinux"] == {"enabled": lsm_enabled("selinux")}
    assert isinstance(lsm_enabled("apparmor"), bool)
    assert isinstance(lsm_enabled("selinux"), bool)


def test_apparmor_detection_reads_the_module_parameter(monkeypatch):
    from pyrunc.linux import process

    monkeypatch.setattr(process.os.path, "isdir", lambda p: False)
    monkeypatch.setattr(process, "_read_flag", lambda p: "Y")
    assert process.lsm_enabled("apparmor") is True
    monkeypatch.setattr(process, "_read_flag", lambda p: "N")
    assert process.lsm_enabled("apparmor") is False


def test_annotations_carry_the_pyrunc_version_and_the_hosts_cgroups():
    from pyrunc.linux import cgroups

    notes = feat.features(Kernel())["annotations"]
    assert notes["io.github.pyrunc.version"] == pyrunc.__version__
    assert notes["io.github.pyrunc.cgroup.host"] == cgroups.probe(Kernel())
    assert set(notes["io.github.pyrunc.cgroup.controllers"].split(",")) == cgroups.host_controllers(
        cgroups.probe(Kernel())
    )


def test_the_checkpoint_annotation_says_whether_criu_is_there(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert feat.features(Kernel())["annotations"]["io.github.pyrunc.checkpoint.enabled"] == "false"
    criu = tmp_path / "criu"
    criu.write_text("#!/bin/sh\n")
    criu.chmod(0o755)
    assert feat.features(Kernel())["annotations"]["io.github.pyrunc.checkpoint.enabled"] == "true"


def test_each_call_returns_a_fresh_document():
    first = feat.features(Kernel())
    first["hooks"].clear()
    first["linux"]["cgroup"]["v1"] = False
    second = feat.features(Kernel())
    assert len(second["hooks"]) == 6 and second["linux"]["cgroup"]["v1"] is True


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_we_recognise_every_hook_and_namespace_runc_does():
    out = subprocess.run(["runc", "features"], check=True, capture_output=True, text=True).stdout
    runc = json.loads(out)
    ours = feat.features(Kernel())
    assert set(runc["hooks"]) <= set(ours["hooks"])
    assert set(runc["linux"]["namespaces"]) <= set(ours["linux"]["namespaces"])


def test_the_systemd_driver_is_reported_only_where_systemd_is_pid_1(tmp_path, monkeypatch):
    from pyrunc.linux.cgroups import systemd

    monkeypatch.setattr(systemd, "RUN_SYSTEMD", str(tmp_path / "run-systemd-system"))
    assert feat.features(Kernel())["linux"]["cgroup"]["systemd"] is False
    (tmp_path / "run-systemd-system").mkdir()
    assert feat.features(Kernel())["linux"]["cgroup"]["systemd"] is True
