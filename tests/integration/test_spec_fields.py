"""Fields of config.json that had no test of their own, and the refused ones through
`create` (tests/unit/test_spec_fields.py walks the schema and keeps the list)."""

import pytest

from pyrunc.linux.process import lsm_enabled
from tests.integration.cli_util import assert_nothing_left, last_error
from tests.integration.process_util import run_args, stat_field
from tests.unit.config_docs import REFUSED_EXAMPLES, refused_example

SCHED_DEADLINE = 6


def test_scheduler_flags_reset_on_fork(pyrunc, bundle, test_id):
    """SCHED_FLAG_RESET_ON_FORK: the init runs at nice -5, its child at the default 0."""
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_OTHER", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    # The trailing `:` keeps sh from exec'ing the last cat in its own place.
    out = run_args(pyrunc, bundle, test_id, ["sh", "-c", "cat /proc/$$/stat; cat /proc/self/stat; :"])
    init, child = out.strip().splitlines()
    assert stat_field(init, 19) == "-5" and stat_field(child, 19) == "0", out


def test_sched_deadline_policy(pyrunc, bundle, test_id):
    """A SCHED_DEADLINE program (which may not fork, so it is the init itself); the
    values are checked where they reach the kernel (test_mechanics_seam)."""
    bundle.config["process"]["scheduler"] = {
        "policy": "SCHED_DEADLINE",
        "runtime": 2_000_000,
        "deadline": 20_000_000,
        "period": 40_000_000,
    }
    out = run_args(pyrunc, bundle, test_id, ["cat", "/proc/self/stat"])
    assert stat_field(out.strip(), 41) == str(SCHED_DEADLINE), out


@pytest.mark.parametrize("path", sorted(REFUSED_EXAMPLES))
def test_a_refused_field_fails_create_in_one_line_and_leaves_nothing(pyrunc, bundle, test_id, path):
    doc, named = refused_example(path)
    # runc's default config as the bundle's is, with the refused field added.
    doc["root"], doc["process"] = (
        bundle.config["root"],
        {**bundle.config["process"], **{k: v for k, v in doc["process"].items() if k == "commandLine"}},
    )
    doc["process"]["user"] = {**bundle.config["process"]["user"], **doc["process"].get("user", {})}
    if "username" in refused_example(path)[0]["process"]["user"]:
        doc["process"]["user"]["username"] = "ContainerUser"
    doc["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"]
    bundle.config = doc
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and len(r.err.splitlines()) == 1, r
    # A mount's two mappings are refused together: the line names the first of them.
    first = named.replace("uidMappings", "gidMappings") if named.startswith("mounts") else named
    assert f"{first}: " in r.err, r
    assert first in last_error(pyrunc.log)
    assert_nothing_left(pyrunc, test_id, bundle)


def test_an_idmap_mount_fails_create_naming_the_option(pyrunc, bundle, test_id, tmp_path):
    bundle.config["mounts"].append(
        {"destination": "/d", "source": str(tmp_path), "type": "bind", "options": ["rbind", "idmap"]}
    )
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and len(r.err.splitlines()) == 1, r
    at = len(bundle.config["mounts"]) - 1
    assert f"mounts[{at}].options[1]: 'idmap': id-mapped mounts are not supported" in r.err, r
    assert_nothing_left(pyrunc, test_id, bundle)


@pytest.mark.skipif(lsm_enabled("selinux"), reason="SELinux is enabled: the label is applied")
def test_mount_label_without_selinux_fails_create_in_one_line(pyrunc, bundle, test_id):
    bundle.config["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0"
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1 and len(r.err.splitlines()) == 1, r
    assert "linux.mountLabel 'system_u:object_r:container_file_t:s0': SELinux is not enabled" in r.err, r
    assert "linux.mountLabel" in last_error(pyrunc.log)
    assert_nothing_left(pyrunc, test_id, bundle)
