"""No field of config.json is accepted and then dropped.

The test walks every property of the runtime-spec's JSON Schema (spec/config-schema.json
and the files it references) and holds each to one of two decisions:

* applied: listed in APPLIED below with the test that checks it (where some values
  cannot be applied, that test may show their refusal, as for linux.personality.flags);
* refused: listed in pyrunc.config.semantic.REFUSED_FIELDS (refusing a path refuses
  everything under it), so that a config setting it fails validation, and `create`, with
  one line naming it (tests/integration/test_spec_fields.py runs `create`).

A property the schema gains without a decision fails the first test.  An object whose
every property is decided needs no entry of its own.
"""

import ast
import json
import os

import pytest

from pyrunc.config.schema import spec_dir
from pyrunc.config.semantic import REFUSED_FIELDS, semantic_errors
from tests.unit.config_docs import REFUSED_EXAMPLES, refused_example

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

P = "integration/test_process.py::"
NS = "integration/test_namespaces.py::"
RFS = "integration/test_rootfs.py::"
SEC = "integration/test_seccomp.py::"
V2 = "unit/test_cgroups_v2.py::"
V1 = "unit/test_cgroups_v1.py::"
PL = "integration/test_placement.py::"
RDT = "unit/test_resctrl.py::"
SF = "integration/test_spec_fields.py::"
HOOK = "integration/test_hooks.py::test_every_hook_runs_in_order_with_the_state"
HOOK_TIMEOUT = "integration/test_hooks.py::test_hook_timeout_fails_create_and_kills_the_hook"
BLKIO = V2 + "test_block_io_weights_and_throttles"
TERM = "integration/test_terminal.py::test_console_socket_receives_the_pty_master"
DEVS = "integration/test_devices.py::test_config_devices_char_block_fifo"
DEV_RULES = V1 + "test_a_new_cgroup_gets_deny_all_then_the_allows"
IDMAP = NS + "test_id_mappings_are_written_and_root_inside_is_the_mapped_host_uid"
CAPS = P + "test_all_five_capability_sets_of_a_non_root_user"
USER = P + "test_user_uid_gid_and_additional_gids"
TIME = NS + "test_time_namespace_offsets_shift_the_clocks"
SEAM_SCHED = "unit/test_mechanics_seam.py::test_every_scheduler_field_reaches_sched_setattr"

APPLIED = {
    "ociVersion": "unit/test_config_validate.py::test_semantic_check_rejects",
    "annotations": HOOK,
    "hostname": NS + "test_hostname_and_domainname_in_a_new_uts_namespace",
    "domainname": NS + "test_hostname_and_domainname_in_a_new_uts_namespace",
    "root.path": RFS + "test_rootfs_propagation_is_set_on_the_root_mount",
    "root.readonly": RFS + "test_readonly_root_refuses_writes_but_a_tmpfs_stays_writable",
    "mounts[].destination": RFS + "test_mounts_are_made_in_order",
    "mounts[].type": RFS + "test_tmpfs_mount_flags_and_data",
    "mounts[].source": RFS + "test_bind_mounts_with_flags",
    "mounts[].options": RFS + "test_tmpfs_mount_flags_and_data",
    **{
        f"hooks.{stage}[].{key}": HOOK
        for stage in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
        for key in ("path", "args", "env")
    },
    **{
        f"hooks.{stage}[].timeout": HOOK_TIMEOUT
        for stage in ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
    },
    "process.terminal": TERM,
    "process.consoleSize.height": TERM,
    "process.consoleSize.width": TERM,
    "process.args": P + "test_args_reach_the_program_verbatim",
    "process.env": P + "test_environment_is_exactly_the_configs",
    "process.cwd": P + "test_cwd",
    "process.user.uid": USER,
    "process.user.gid": USER,
    "process.user.additionalGids": USER,
    "process.user.umask": P + "test_umask",
    "process.capabilities.bounding": CAPS,
    "process.capabilities.effective": CAPS,
    "process.capabilities.inheritable": CAPS,
    "process.capabilities.permitted": CAPS,
    "process.capabilities.ambient": CAPS,
    "process.rlimits[].type": P + "test_rlimits_are_set",
    "process.rlimits[].soft": P + "test_rlimits_are_set",
    "process.rlimits[].hard": P + "test_rlimits_are_set",
    "process.noNewPrivileges": P + "test_no_new_privileges",
    "process.apparmorProfile": P + "test_apparmor_profile_without_apparmor_is_a_clear_error",
    "process.selinuxLabel": P + "test_selinux_label_without_selinux_is_a_clear_error",
    "process.oomScoreAdj": P + "test_oom_score_adj",
    "process.ioPriority.class": P + "test_io_priority_seen_from_the_host",
    "process.ioPriority.priority": P + "test_io_priority_seen_from_the_host",
    "process.scheduler.policy": P + "test_scheduler",
    "process.scheduler.nice": P + "test_scheduler",
    # SCHED_FIFO and SCHED_RR cannot join a v1 cpu cgroup without an RT budget: the
    # priority is checked where it reaches the kernel.
    "process.scheduler.priority": SEAM_SCHED,
    "process.scheduler.flags": SF + "test_scheduler_flags_reset_on_fork",
    "process.scheduler.runtime": SEAM_SCHED,
    "process.scheduler.deadline": SEAM_SCHED,
    "process.scheduler.period": SEAM_SCHED,
    "process.execCPUAffinity.initial": PL + "test_initial_affinity_comes_before_the_cgroup_and_final_after",
    "process.execCPUAffinity.final": PL + "test_final_affinity_is_what_the_exec_process_runs_on",
    "linux.namespaces[].type": NS + "test_each_namespace_type_alone_is_new_and_the_rest_are_the_hosts",
    "linux.namespaces[].path": NS + "test_joins_namespaces_of_another_process_by_path",
    "linux.uidMappings[].containerID": IDMAP,
    "linux.uidMappings[].hostID": IDMAP,
    "linux.uidMappings[].size": IDMAP,
    "linux.gidMappings[].containerID": IDMAP,
    "linux.gidMappings[].hostID": IDMAP,
    "linux.gidMappings[].size": IDMAP,
    "linux.timeOffsets.boottime.secs": TIME,
    "linux.timeOffsets.boottime.nanosecs": TIME,
    "linux.timeOffsets.monotonic.secs": TIME,
    "linux.timeOffsets.monotonic.nanosecs": TIME,
    "linux.devices[].path": DEVS,
    "linux.devices[].type": DEVS,
    "linux.devices[].major": DEVS,
    "linux.devices[].minor": DEVS,
    "linux.devices[].fileMode": DEVS,
    "linux.devices[].uid": DEVS,
    "linux.devices[].gid": DEVS,
    "linux.netDevices.*.name": "integration/test_netdevices.py::test_a_device_moves_renamed_with_its_addresses_and_up",
    "linux.cgroupsPath": "cgroup/test_cgroup_lifecycle.py::test_the_init_is_in_its_cgroup_and_delete_removes_it",
    "linux.resources.devices[].allow": DEV_RULES,
    "linux.resources.devices[].type": DEV_RULES,
    "linux.resources.devices[].major": DEV_RULES,
    "linux.resources.devices[].minor": DEV_RULES,
    "linux.resources.devices[].access": DEV_RULES,
    "linux.resources.memory.limit": V2 + "test_memory_limit_reservation_and_swap",
    "linux.resources.memory.reservation": V2 + "test_memory_limit_reservation_and_swap",
    "linux.resources.memory.swap": V2 + "test_memory_limit_reservation_and_swap",
    "linux.resources.memory.kernel": V1 + "test_memory_files",
    "linux.resources.memory.kernelTCP": V1 + "test_memory_files",
    "linux.resources.memory.swappiness": V1 + "test_memory_files",
    "linux.resources.memory.disableOOMKiller": V1 + "test_memory_files",
    "linux.resources.memory.useHierarchy": V1 + "test_memory_files",
    "linux.resources.memory.checkBeforeUpdate": V2 + "test_check_before_update_refuses_a_limit_below_the_usage",
    "linux.resources.cpu.shares": V2 + "test_cpu_fields",
    "linux.resources.cpu.quota": V2 + "test_cpu_fields",
    "linux.resources.cpu.burst": V2 + "test_cpu_fields",
    "linux.resources.cpu.period": V2 + "test_cpu_fields",
    "linux.resources.cpu.realtimeRuntime": "cgroup/test_resources_v1.py::test_cpu",
    "linux.resources.cpu.realtimePeriod": "cgroup/test_resources_v1.py::test_cpu",
    "linux.resources.cpu.cpus": V2 + "test_cpu_fields",
    "linux.resources.cpu.mems": V2 + "test_cpu_fields",
    "linux.resources.cpu.idle": V2 + "test_cpu_fields",
    "linux.resources.pids.limit": V2 + "test_pids_limit",
    "linux.resources.blockIO.weight": BLKIO,
    "linux.resources.blockIO.leafWeight": BLKIO,
    **{f"linux.resources.blockIO.weightDevice[].{key}": BLKIO for key in ("major", "minor", "weight", "leafWeight")},
    **{
        f"linux.resources.blockIO.{name}[].{key}": BLKIO
        for name in (
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        )
        for key in ("major", "minor", "rate")
    },
    "linux.resources.hugepageLimits[].pageSize": V2 + "test_hugepage_limits_set_usage_and_reservation",
    "linux.resources.hugepageLimits[].limit": V2 + "test_hugepage_limits_set_usage_and_reservation",
    # net_cls and net_prio exist on v1 only: written there, refused by name elsewhere.
    "linux.resources.network.classID": "cgroup/test_resources_v2.py::test_container_with_net_cls_is_refused_naming_the_field",  # noqa: E501
    "linux.resources.network.priorities[].name": V1 + "test_what_the_host_lacks_is_refused_naming_the_field",
    "linux.resources.network.priorities[].priority": V1 + "test_what_the_host_lacks_is_refused_naming_the_field",
    "linux.resources.rdma.*.hcaHandles": V2 + "test_rdma",
    "linux.resources.rdma.*.hcaObjects": V2 + "test_rdma",
    "linux.resources.unified": V2 + "test_unified_refuses_a_controller_not_enabled_naming_the_key",
    "linux.intelRdt.closID": RDT + "test_a_closid_group_pyrunc_made_is_kept_at_delete",
    "linux.intelRdt.l3CacheSchema": RDT
    + "test_without_closid_the_group_is_the_containers_id_written_in_the_specs_order",
    "linux.intelRdt.memBwSchema": RDT + "test_without_closid_the_group_is_the_containers_id_written_in_the_specs_order",
    "linux.intelRdt.schemata": RDT + "test_without_closid_the_group_is_the_containers_id_written_in_the_specs_order",
    "linux.intelRdt.enableMonitoring": RDT + "test_monitoring_makes_a_mon_group_named_for_the_container_and_removes_it",
    "linux.memoryPolicy.mode": PL + "test_memory_policy_is_the_inits_and_its_programs",
    "linux.memoryPolicy.nodes": PL + "test_memory_policy_is_the_inits_and_its_programs",
    "linux.memoryPolicy.flags": PL + "test_memory_policy_is_the_inits_and_its_programs",
    "linux.sysctl": RFS + "test_sysctls_are_set_in_the_containers_namespaces",
    "linux.seccomp.defaultAction": SEC + "test_a_deny_one_syscall_profile_in_a_container",
    "linux.seccomp.defaultErrnoRet": SEC + "test_default_errno_ret",
    "linux.seccomp.architectures": SEC + "test_a_docker_like_profile_runs_a_container_and_refuses_mount",
    "linux.seccomp.flags": SEC + "test_flags_are_passed_to_the_kernel",
    "linux.seccomp.listenerPath": SEC + "test_notify_sends_the_state_and_fd_to_the_listener_which_answers",
    "linux.seccomp.listenerMetadata": SEC + "test_notify_sends_the_state_and_fd_to_the_listener_which_answers",
    "linux.seccomp.syscalls[].names": SEC + "test_a_deny_one_syscall_profile_in_a_container",
    "linux.seccomp.syscalls[].action": SEC + "test_kill_and_trap_seen_from_the_host_as_sigsys",
    "linux.seccomp.syscalls[].errnoRet": SEC + "test_several_rules_for_one_syscall",
    "linux.seccomp.syscalls[].args[].index": SEC + "test_different_arguments_must_all_match",
    "linux.seccomp.syscalls[].args[].value": SEC + "test_different_arguments_must_all_match",
    "linux.seccomp.syscalls[].args[].valueTwo": SEC + "test_masked_eq_compares_the_masked_argument",
    "linux.seccomp.syscalls[].args[].op": SEC + "test_every_comparison_operator",
    "linux.rootfsPropagation": RFS + "test_rootfs_propagation_is_set_on_the_root_mount",
    "linux.maskedPaths": "integration/test_masked_paths.py::test_runc_default_masked_paths_show_nothing",
    "linux.readonlyPaths": "integration/test_masked_paths.py::test_runc_default_readonly_paths_refuse_writes",
    "linux.mountLabel": "unit/test_mechanics_seam.py::test_mount_label_is_the_context_of_new_filesystems_not_of_binds_or_proc",  # noqa: E501
    "linux.personality.domain": P + "test_personality",
    # Only an empty list: any flag is refused by name (semantic.check_personality).
    "linux.personality.flags": "unit/test_config_validate.py::test_semantic_check_rejects",
}


# -- the schema's properties -------------------------------------------------------------


def _load(name, cache={}):  # noqa: B006 -- a deliberate memo
    if name not in cache:
        with open(spec_dir() / name) as f:
            cache[name] = json.load(f)
    return cache[name]


def _resolve(node, here):
    while isinstance(node, dict) and "$ref" in node:
        name, _, fragment = node["$ref"].partition("#")
        here = name or here
        node = _load(here)
        for part in [p for p in fragment.split("/") if p]:
            node = node[part]
    return node, here


def schema_paths(node=None, here="config-schema.json", path="", depth=0):
    """Every property path of the schema: 'a.b', 'a[].b' for the items of an array,
    'a.*.b' for the values of a map."""
    if node is None:
        node = _load(here)
    node, here = _resolve(node, here)
    found = set()
    if not isinstance(node, dict) or depth > 20:
        return found
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in node.get(key) or ():
            found |= schema_paths(sub, here, path, depth + 1)
    for name, sub in (node.get("properties") or {}).items():
        child = f"{path}.{name}" if path else name
        found.add(child)
        found |= schema_paths(sub, here, child, depth + 1)
    if isinstance(node.get("items"), dict):
        found |= schema_paths(node["items"], here, path + "[]", depth + 1)
    for sub in (node.get("patternProperties") or {}).values():
        found |= schema_paths(sub, here, path + ".*", depth + 1)
    if isinstance(node.get("additionalProperties"), dict):
        found |= schema_paths(node["additionalProperties"], here, path + ".*", depth + 1)
    return found


def _under(path, prefix):
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[]")


def undecided(paths, applied, refused):
    """The paths with no decision: neither applied, nor under a refused path, nor an object
    whose every property is decided."""
    left = set()
    for path in paths:
        if path in applied or any(_under(path, r) for r in refused):
            continue
        children = [p for p in paths if p != path and _under(p, path)]
        if children:
            continue  # decided through its children, each checked on its own
        left.add(path)
    return left


def test_the_walk_sees_the_whole_schema():
    paths = schema_paths()
    for path in (
        "process.execCPUAffinity.initial",
        "linux.memoryPolicy.flags",
        "linux.seccomp.syscalls[].args[].valueTwo",
        "linux.netDevices.*.name",
        "hooks.poststop[].timeout",
        "windows.layerFolders",
        "vm.kernel.path",
    ):
        assert path in paths
    assert len(paths) > 300


def test_every_schema_property_is_applied_or_refused():
    left = undecided(schema_paths(), APPLIED, REFUSED_FIELDS)
    assert not left, (
        "properties of the schema that pyrunc neither applies (APPLIED here, with "
        f"its test) nor refuses (semantic.REFUSED_FIELDS): {sorted(left)}"
    )


def test_a_new_schema_property_without_a_decision_fails():
    paths = schema_paths() | {"linux.someNewThing", "process.user.newField"}
    assert undecided(paths, APPLIED, REFUSED_FIELDS) == {"linux.someNewThing", "process.user.newField"}


def test_no_entry_names_a_property_the_schema_does_not_have():
    paths = schema_paths()
    assert sorted(set(APPLIED) - paths) == []
    assert sorted(set(REFUSED_FIELDS) - paths) == []
    assert sorted(p for p in APPLIED if any(_under(p, r) for r in REFUSED_FIELDS)) == []


def _test_names(relpath, cache={}):  # noqa: B006 -- a deliberate memo
    if relpath not in cache:
        with open(os.path.join(TESTS, relpath)) as f:
            tree = ast.parse(f.read())
        cache[relpath] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return cache[relpath]


@pytest.mark.parametrize("path", sorted(APPLIED))
def test_each_applied_property_names_a_test_that_exists(path):
    relpath, _, name = APPLIED[path].partition("::")
    assert os.path.exists(os.path.join(TESTS, relpath)), APPLIED[path]
    assert name in _test_names(relpath), APPLIED[path]


def test_every_refused_field_has_an_example():
    assert sorted(REFUSED_EXAMPLES) == sorted(REFUSED_FIELDS)


@pytest.mark.parametrize("path", sorted(REFUSED_FIELDS))
def test_a_refused_field_fails_validation_naming_it(tmp_path, path):
    from pyrunc.config.schema import schema_errors

    (tmp_path / "rootfs").mkdir()
    doc, named = refused_example(path)
    assert schema_errors(doc) == []  # the schema takes it: the refusal is pyrunc's own
    problems = semantic_errors(doc, str(tmp_path))
    assert any(p.startswith(named + ": ") for p in problems), problems
    assert all("\n" not in p for p in problems)


@pytest.mark.parametrize("option", ["idmap", "ridmap"])
def test_idmap_mount_options_are_refused_naming_the_option(tmp_path, option):
    from pyrunc.config.default import default_spec

    (tmp_path / "rootfs").mkdir()
    doc = default_spec()
    doc["linux"]["namespaces"].append({"type": "user"})
    doc["linux"]["uidMappings"] = doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    doc["mounts"].append({"destination": "/d", "source": "/tmp", "options": ["rbind", option]})
    problems = semantic_errors(doc, str(tmp_path))
    at = len(doc["mounts"]) - 1
    assert f"mounts[{at}].options[1]: '{option}': id-mapped mounts are not supported by pyrunc" in problems
