"""The facts in linux/tables.py, each kept once, and the modules that use them agreeing:
config validation (semantic.py) and the mechanics (join, mounts, proc_writes, seccomp)."""

import json
import os

import pytest

from pyrunc.config.default import default_spec
from pyrunc.config.schema import schema_errors, spec_dir
from pyrunc.config.semantic import semantic_errors
from pyrunc.errors import KernelError
from pyrunc.linux import kernel as k
from pyrunc.linux import namespaces, seccomp, tables
from pyrunc.linux.mounts import OPTION_NAMES, MountOptions


def _defs():
    with open(spec_dir() / "defs-linux.json") as f:
        return json.load(f)["definitions"]


@pytest.fixture
def bundle_dir(tmp_path):
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def _problems(doc, bundle):
    assert schema_errors(doc) == []
    return semantic_errors(doc, bundle)


# --- namespaces -------------------------------------------------------------------------


def test_every_namespace_type_has_its_proc_name_and_its_clone_flag():
    types = set(_defs()["NamespaceType"]["enum"])
    assert set(tables.PROC_NS_NAMES) == types
    assert set(namespaces.CLONE_FLAGS) == types
    assert set(namespaces.JOIN_ORDER) == types  # exec joins every type the init may have


def test_every_proc_ns_name_is_a_file_under_proc_self_ns():
    for nstype, name in tables.PROC_NS_NAMES.items():
        assert os.path.exists(f"/proc/self/ns/{name}"), (nstype, name)


# --- mount options ----------------------------------------------------------------------


def test_every_propagation_name_is_a_propagation_to_the_mount_code():
    for name in tables.MOUNT_PROPAGATIONS:
        opts = MountOptions([name])
        assert opts.data is None and len(opts.propagation) == 1, name
        assert bool(opts.propagation[0] & k.MS_REC) == name.startswith("r"), name
    assert set(tables.MOUNT_PROPAGATIONS) <= set(OPTION_NAMES)


def test_the_schemas_root_propagations_are_mount_propagations():
    assert set(_defs()["RootfsPropagation"]["enum"]) <= set(tables.MOUNT_PROPAGATIONS)


def test_two_propagation_options_conflict_for_validation(bundle_dir):
    for a, b in zip(tables.MOUNT_PROPAGATIONS, tables.MOUNT_PROPAGATIONS[1:]):
        doc = default_spec()
        doc["mounts"].append({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": [a, b]})
        assert any("conflicting propagation options" in p for p in _problems(doc, bundle_dir)), (a, b)


def test_idmap_options_are_refused_by_the_mount_code_and_not_listed():
    for name in tables.IDMAP_MOUNT_OPTIONS:
        with pytest.raises(KernelError):
            MountOptions([name])
        assert name not in OPTION_NAMES


# --- sysctl -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dotted, slashed",
    [
        ("net.ipv4.ip_forward", "net/ipv4/ip_forward"),
        ("net.ipv4.conf.eth0/1.forwarding", "net/ipv4/conf/eth0.1/forwarding"),
        ("kernel.shmmax", "kernel/shmmax"),
    ],
)
def test_both_spellings_of_a_sysctl_name_one_file(dotted, slashed):
    assert tables.sysctl_name(slashed) == dotted
    assert tables.sysctl_path(dotted) == tables.sysctl_path(slashed) == "/proc/sys/" + slashed


def test_validation_judges_a_sysctl_by_the_file_it_writes(bundle_dir):
    """kernel/shmmax, written to /proc/sys/kernel/shmmax, is the ipc namespace's, as
    kernel.shmmax is; net/ipv4/ip_forward the network namespace's."""
    for key, ns in (
        ("kernel/shmmax", "ipc"),
        ("kernel.shmmax", "ipc"),
        ("net/ipv4/ip_forward", "network"),
        ("net.ipv4.ip_forward", "network"),
    ):
        doc = default_spec()
        doc["linux"]["namespaces"] = [n for n in doc["linux"]["namespaces"] if n["type"] != ns]
        doc["linux"]["sysctl"] = {key: "1"}
        assert any(
            f"needs its own {'ipc' if ns == 'ipc' else 'network'} namespace" in p for p in _problems(doc, bundle_dir)
        ), key


# --- seccomp ----------------------------------------------------------------------------


def test_an_errno_is_accepted_exactly_for_the_actions_that_return_one(bundle_dir):
    assert set(tables.SECCOMP_TAKES_ERRNO) <= set(seccomp.ACTIONS)
    for action in seccomp.ACTIONS:
        if action == "SCMP_ACT_NOTIFY":
            continue  # needs a listener, and is refused as the default
        doc = default_spec()
        doc["linux"]["seccomp"] = {"defaultAction": action, "defaultErrnoRet": 1}
        refused = any("does not return an errno" in p for p in _problems(doc, bundle_dir))
        assert refused == (action not in tables.SECCOMP_TAKES_ERRNO), action


# --- capabilities -----------------------------------------------------------------------


def test_the_capability_sets_are_the_schemas_and_the_models():
    from pyrunc.config.model import Capabilities

    with open(spec_dir() / "config-schema.json") as f:
        schema = json.load(f)
    sets = schema["properties"]["process"]["properties"]["capabilities"]["properties"]
    assert set(tables.CAPABILITY_SETS) == set(sets)
    assert Capabilities.__slots__ == tables.CAPABILITY_SETS


def test_validation_checks_the_names_in_every_capability_set(bundle_dir):
    for name in tables.CAPABILITY_SETS:
        doc = default_spec()
        doc["process"]["capabilities"][name] = ["CAP_NOPE"]
        assert any("CAP_NOPE" in p for p in _problems(doc, bundle_dir)), name
