"""config.json validation: parsing, the JSON Schema, and the semantic checks."""

import copy
import json
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.config.default import default_spec
from pyrunc.config.schema import json_path, schema_errors, spec_dir, state_schema_errors
from pyrunc.config.semantic import CAPABILITIES, RLIMITS, semantic_errors
from pyrunc.config.validate import load_config, validate_bundle
from pyrunc.errors import ConfigError
from tests.unit.config_strategies import ABS_PATH, HOSTNAME, NAME, SEGMENT, id_maps, valid_configs


@pytest.fixture
def bundle_dir(tmp_path):
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "afile").write_text("")
    return str(tmp_path)


def write(bundle, doc):
    with open(f"{bundle}/config.json", "w") as f:
        json.dump(doc, f)


def problems_of(bundle, doc):
    write(bundle, doc)
    return validate_bundle(bundle)[1]


def semantic(doc, bundle):
    """Semantic problems of a document the test made schema-valid on purpose."""
    assert schema_errors(doc) == []
    return semantic_errors(doc, bundle)


def namespaces(*types, **paths):
    return [{"type": t, **({"path": paths[t]} if t in paths else {})} for t in types]


# --- reading config.json -----------------------------------------------------


def test_missing_config_json_is_reported_with_the_bundle(tmp_path):
    doc, problems = validate_bundle(str(tmp_path))
    assert doc is None
    assert problems == [f"config.json: no such file in bundle {tmp_path}"]


def test_malformed_json_reports_line_and_column(tmp_path):
    (tmp_path / "config.json").write_text('{\n  "ociVersion": "1.0.0",\n  "process": ]\n}\n')
    doc, problems = validate_bundle(str(tmp_path))
    assert doc is None
    assert problems == ["config.json: invalid JSON at line 3 column 14: Expecting value"]


def test_truncated_json_reports_where_it_ends(tmp_path):
    (tmp_path / "config.json").write_text('{"ociVersion": "1.0.0",\n"root": {"path": "rootfs"}')
    _, problems = validate_bundle(str(tmp_path))
    assert len(problems) == 1
    assert problems[0].startswith("config.json: invalid JSON at line 2 column 27:")


@pytest.mark.parametrize("text, kind", [("[]", "an array"), ('"x"', "a string"), ("null", "null"), ("3", "a number")])
def test_top_level_must_be_an_object(tmp_path, text, kind):
    (tmp_path / "config.json").write_text(text)
    assert validate_bundle(str(tmp_path)) == (None, [f"config.json: the top level must be a JSON object, not {kind}"])


def test_nan_is_not_json(tmp_path):
    (tmp_path / "config.json").write_text('{"ociVersion": "1.0.0", "process": {"oomScoreAdj": NaN}}')
    doc, problems = validate_bundle(str(tmp_path))
    assert doc is None and problems == ["config.json: invalid JSON: NaN is not a JSON value"]


def test_invalid_utf8_is_reported(tmp_path):
    (tmp_path / "config.json").write_bytes(b'{"ociVersion": "1.0.0\xff"}')
    assert validate_bundle(str(tmp_path))[1] == ["config.json: not UTF-8 at byte 21"]


def test_config_json_that_is_a_directory_is_reported(tmp_path):
    (tmp_path / "config.json").mkdir()
    problems = validate_bundle(str(tmp_path))[1]
    assert len(problems) == 1 and problems[0].startswith("config.json: cannot read")


def test_load_config_returns_the_document(bundle_dir):
    write(bundle_dir, default_spec())
    assert load_config(bundle_dir) == default_spec()


def test_load_config_raises_with_every_problem(bundle_dir):
    doc = default_spec()
    doc["process"]["cwd"] = "relative"
    del doc["hostname"]
    doc["domainname"] = "x" * 65
    write(bundle_dir, doc)
    with pytest.raises(ConfigError) as info:
        load_config(bundle_dir)
    assert info.value.bundle == bundle_dir
    assert [p.split(":")[0] for p in info.value.problems] == ["domainname", "process.cwd"]
    assert str(info.value).startswith("invalid config.json: domainname: is longer than 64 bytes")
    assert str(info.value).endswith(f" (1 of 2 problems; `pyrunc validate --bundle {bundle_dir}` lists them all)")
    assert "\n" not in str(info.value)


def test_a_single_problem_is_the_whole_message(bundle_dir):
    doc = default_spec()
    doc["process"]["cwd"] = "relative"
    write(bundle_dir, doc)
    with pytest.raises(ConfigError) as info:
        load_config(bundle_dir)
    assert str(info.value) == "invalid config.json: process.cwd: 'relative' must be an absolute path"


def test_the_bundle_in_the_pointer_is_one_shell_word():
    e = ConfigError(["a: x", "b: y"], "/tmp/my bundle/it's\nhere")
    assert str(e).endswith("""`pyrunc validate --bundle '/tmp/my bundle/it'\\''s'$'\\x0a''here'` lists them all)""")


def test_semantic_checks_run_beside_schema_errors(bundle_dir):
    doc = default_spec()
    doc["process"]["cwd"] = "relative"  # semantic problem
    doc["process"]["terminal"] = "yes"  # schema problem
    assert problems_of(bundle_dir, doc) == [
        "process.cwd: 'relative' must be an absolute path",
        "process.terminal: 'yes' is not of type 'boolean'",
    ]


def test_an_array_entry_the_schema_flags_is_left_out_and_the_others_keep_their_indexes(bundle_dir):
    doc = default_spec()
    doc["mounts"][0]["options"] = 5  # schema: mounts[0] is left out
    doc["mounts"][2] = {"type": "tmpfs"}  # schema: no destination; left out too
    doc["mounts"][4]["destination"] = "rel"  # semantic, reported at its own index
    doc["mounts"][1]["destination"] = "dev/x"  # semantic
    assert problems_of(bundle_dir, doc) == [
        "mounts[0].options: 5 is not of type 'array'",
        "mounts[1].destination: 'dev/x' must be an absolute path",
        "mounts[2]: 'destination' is a required property",
        "mounts[4].destination: 'rel' must be an absolute path",
    ]


def test_a_missing_required_field_leaves_the_rest_of_its_object_checked(bundle_dir):
    doc = default_spec()
    del doc["process"]["cwd"]  # schema: required
    doc["process"]["rlimits"][0]["type"] = "RLIMIT_NOSUCH"  # semantic
    problems = problems_of(bundle_dir, doc)
    assert problems[0] == "process: 'cwd' is a required property"
    assert len(problems) == 2 and problems[1].startswith("process.rlimits[0].type: "), problems


# --- the schema --------------------------------------------------------------


def test_default_spec_is_valid(bundle_dir):
    assert problems_of(bundle_dir, default_spec()) == []


def test_bad_namespace_type_is_reported_at_its_exact_path(bundle_dir):
    doc = default_spec()
    doc["linux"]["namespaces"][2]["type"] = "nett"
    problems = problems_of(bundle_dir, doc)
    assert len(problems) == 1
    assert problems[0].startswith("linux.namespaces[2].type: 'nett' is not one of ['mount', 'pid',")


def test_all_schema_problems_are_reported_together(bundle_dir):
    doc = default_spec()
    doc["linux"]["namespaces"][2]["type"] = "nett"
    doc["process"]["user"]["uid"] = -1
    doc["mounts"][1]["options"] = "nosuid"
    del doc["mounts"][3]["destination"]
    doc["process"]["rlimits"][0]["soft"] = 1.5
    doc["annotations"] = {"org.example": 7}
    problems = problems_of(bundle_dir, doc)
    assert [p.split(": ")[0] for p in problems] == [
        'annotations["org.example"]',
        "linux.namespaces[2].type",
        "mounts[1].options",
        "mounts[3]",
        "process.rlimits[0].soft",
        "process.user.uid",
    ]
    assert "process.user.uid: -1 is less than the minimum of 0" in problems
    assert "mounts[3]: 'destination' is a required property" in problems


def test_all_semantic_problems_are_reported_together(bundle_dir):
    doc = default_spec()
    doc["process"]["cwd"] = "tmp"
    doc["linux"]["namespaces"] = namespaces("pid", "mount", "pid")
    doc["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1})
    problems = problems_of(bundle_dir, doc)
    assert [p.split(": ")[0] for p in problems] == [
        "hostname",
        "linux.namespaces[2].type",
        "process.cwd",
        "process.rlimits[1].type",
    ]


def test_problems_are_sorted_with_numeric_indexes_and_deduplicated(bundle_dir):
    doc = default_spec()
    doc["mounts"] = [{"destination": f"/m{i}", "options": "bad"} for i in range(12)]
    problems = problems_of(bundle_dir, doc)
    assert [p.split(":")[0] for p in problems] == [f"mounts[{i}].options" for i in range(12)]


def test_root_level_problems_are_named_root():
    assert schema_errors({}) == ["(root): 'ociVersion' is a required property"]
    assert schema_errors([]) == ["(root): [] is not of type 'object'"]


def test_long_values_are_cut_and_every_problem_is_one_line():
    doc = {"ociVersion": "1.0.0", "process": "x" * 1000, "hostname": ["a\nb"] * 50}
    problems = schema_errors(doc)
    assert len(problems) == 2
    for p in problems:
        assert "\n" not in p and len(p) < 300 and "..." in p


def test_anyof_failures_name_the_specific_field():
    doc = {"ociVersion": "1.0.0", "linux": {"namespaces": [{"type": "pid", "path": 3}, "uts"]}}
    assert schema_errors(doc) == [
        "linux.namespaces[0].path: 3 is not of type 'string'",
        "linux.namespaces[1]: 'uts' is not of type 'object'",
    ]


def test_cross_file_references_resolve_for_every_platform_section():
    doc = {
        "ociVersion": "1.0.0",
        "windows": {"layerFolders": []},
        "vm": {},
        "linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOPE"}},
    }
    paths = [p.split(":")[0] for p in schema_errors(doc)]
    assert "windows.layerFolders" in paths  # config-windows.json
    assert "vm" in paths  # config-vm.json: required kernel
    assert "linux.seccomp.defaultAction" in paths  # defs-linux.json


def test_draft4_integers_exclude_floats_and_booleans():
    doc = {"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": 1.0, "gid": True}}}
    assert schema_errors(doc) == [
        "process.user.gid: True is not of type 'integer'",
        "process.user.uid: 1.0 is not of type 'integer'",
    ]


def test_odd_keys_are_quoted_in_paths():
    assert json_path(["linux", "sysctl", "net.ipv4.ip_forward"]) == 'linux.sysctl["net.ipv4.ip_forward"]'
    assert json_path(["annotations", ""]) == 'annotations[""]'
    assert json_path(["mounts", 0, "destination"]) == "mounts[0].destination"
    assert json_path([]) == "(root)"


def test_vendored_schema_files_are_valid_draft4_schemas():
    from jsonschema import Draft4Validator

    names = sorted(p.name for p in spec_dir().glob("*.json"))
    assert "config-schema.json" in names and "defs.json" in names and len(names) == 16
    for name in names:
        Draft4Validator.check_schema(json.loads((spec_dir() / name).read_text()))


def test_state_schema_is_checked():
    good = {"ociVersion": "1.3.0", "id": "c", "status": "created", "pid": 4, "bundle": "/b"}
    assert state_schema_errors(good) == []
    bad = dict(good, status="paused", pid=-1)
    assert [p.split(":")[0] for p in state_schema_errors(bad)] == ["pid", "status"]


def test_spec_dir_can_be_overridden(tmp_path, monkeypatch):
    copy_dir = tmp_path / "spec"
    shutil.copytree(spec_dir(), copy_dir)
    defs = json.loads((copy_dir / "defs-linux.json").read_text())
    defs["definitions"]["NamespaceType"]["enum"].remove("time")
    (copy_dir / "defs-linux.json").write_text(json.dumps(defs))
    doc = {"ociVersion": "1.0.0", "linux": {"namespaces": [{"type": "time"}]}}
    assert schema_errors(doc) == []
    monkeypatch.setenv("PYRUNC_SPEC_DIR", str(copy_dir))
    assert [p.split(":")[0] for p in schema_errors(doc)] == ["linux.namespaces[0].type"]


def test_importing_the_schema_module_does_not_import_jsonschema():
    code = (
        "import json, sys, pyrunc.config.schema, pyrunc.config.semantic, pyrunc.config.default; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('jsonschema', 'referencing'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert json.loads(out.stdout) == []


# --- semantic checks: each rejects what it should ------------------------------


def _set(path, value):
    """A mutation setting doc[path...] = value (creating dicts on the way)."""

    def mutate(doc):
        target = doc
        for key in path[:-1]:
            target = target.setdefault(key, {}) if isinstance(key, str) else target[key]
        key = path[-1]
        if isinstance(target, list) and key == len(target):
            target.append(copy.deepcopy(value))
        else:
            target[key] = copy.deepcopy(value)  # tables share values across tests

    return mutate


def _delete(*path):
    def mutate(doc):
        target = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _all(*mutations):
    def mutate(doc):
        for m in mutations:
            m(doc)

    return mutate


def _ns(*types, **paths):
    return _set(["linux", "namespaces"], namespaces(*types, **paths))


ALL_NS = ("pid", "network", "ipc", "uts", "mount")
USERNS_MAPS = _all(
    _ns(*ALL_NS, "user"),
    _set(["linux", "uidMappings"], [{"containerID": 0, "hostID": 1000, "size": 10}]),
    _set(["linux", "gidMappings"], [{"containerID": 0, "hostID": 1000, "size": 10}]),
)
SECCOMP = {"defaultAction": "SCMP_ACT_ALLOW"}

BAD = {
    "major version 2": (_set(["ociVersion"], "2.0.0"), "ociVersion", "only runtime-spec 1.x"),
    "not semver": (_set(["ociVersion"], "1.0"), "ociVersion", "not a SemVer"),
    "v prefix": (_set(["ociVersion"], "v1.0.0"), "ociVersion", "not a SemVer"),
    "no root": (_delete("root"), "root", "required"),
    "empty root path": (_set(["root", "path"], ""), "root.path", "must not be empty"),
    "missing rootfs": (_set(["root", "path"], "nope"), "root.path", "does not exist"),
    "rootfs is a file": (_set(["root", "path"], "afile"), "root.path", "not a directory"),
    "no args": (_delete("process", "args"), "process.args", "at least one"),
    "empty args": (_set(["process", "args"], []), "process.args", "at least one"),
    "empty program": (_set(["process", "args"], ["", "x"]), "process.args[0]", "must not be empty"),
    "relative cwd": (_set(["process", "cwd"], "tmp"), "process.cwd", "absolute"),
    "env without =": (_set(["process", "env", 1], "TERM"), "process.env[1]", "NAME=value"),
    "env empty name": (_set(["process", "env", 1], "=x"), "process.env[1]", "empty variable name"),
    "umask too big": (_set(["process", "user", "umask"], 0o10000), "process.user.umask", "0o7777"),
    "unknown rlimit": (
        _set(["process", "rlimits", 0, "type"], "RLIMIT_FOO"),
        "process.rlimits[0].type",
        "not a Linux resource limit",
    ),
    "duplicate rlimit": (
        _set(["process", "rlimits", 1], {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}),
        "process.rlimits[1].type",
        "duplicate",
    ),
    "soft above hard": (_set(["process", "rlimits", 0, "soft"], 2048), "process.rlimits[0]", "above hard"),
    "unknown capability": (
        _set(["process", "capabilities", "bounding", 1], "CAP_FLY"),
        "process.capabilities.bounding[1]",
        "unknown capability",
    ),
    "capability lowercase": (
        _set(["process", "capabilities", "inheritable"], ["cap_kill"]),
        "process.capabilities.inheritable[0]",
        "unknown capability",
    ),
    "oom score": (_set(["process", "oomScoreAdj"], 1001), "process.oomScoreAdj", "-1000..1000"),
    "io priority range": (
        _set(["process", "ioPriority"], {"class": "IOPRIO_CLASS_BE", "priority": 8}),
        "process.ioPriority.priority",
        "0..7",
    ),
    "io priority missing": (
        _set(["process", "ioPriority"], {"class": "IOPRIO_CLASS_BE"}),
        "process.ioPriority",
        "'priority' is required",
    ),
    "nice": (
        _set(["process", "scheduler"], {"policy": "SCHED_OTHER", "nice": 20}),
        "process.scheduler.nice",
        "-20..19",
    ),
    "fifo priority 0": (
        _set(["process", "scheduler"], {"policy": "SCHED_FIFO"}),
        "process.scheduler.priority",
        "1..99",
    ),
    "other priority": (
        _set(["process", "scheduler"], {"policy": "SCHED_OTHER", "priority": 5}),
        "process.scheduler.priority",
        "must be 0",
    ),
    "deadline order": (
        _set(["process", "scheduler"], {"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 5, "period": 20}),
        "process.scheduler",
        "runtime <= deadline <= period",
    ),
    "deadline fields elsewhere": (
        _set(["process", "scheduler"], {"policy": "SCHED_RR", "priority": 1, "period": 5}),
        "process.scheduler",
        "only to SCHED_DEADLINE",
    ),
    "cpu affinity reversed": (
        _set(["process", "execCPUAffinity"], {"initial": "3-1"}),
        "process.execCPUAffinity.initial",
        "reversed",
    ),
    "cpu affinity syntax": (
        _set(["process", "execCPUAffinity"], {"final": "1,,2"}),
        "process.execCPUAffinity.final",
        "list like",
    ),
    "nul in args": (_set(["process", "args"], ["s\0h"]), "process.args[0]", "NUL"),
    "nul in env": (_set(["process", "env", 0], "A=\0"), "process.env[0]", "NUL"),
    "nul in annotation key": (_set(["annotations"], {"a\0b": "c"}), "annotations", "NUL"),
    "nul in mount": (_set(["mounts", 0, "destination"], "/pr\0c"), "mounts[0].destination", "NUL"),
    "empty annotation key": (_set(["annotations"], {"": "x"}), "annotations", "must not be empty"),
    "annotation value under empty key": (_set(["annotations"], {"": 1}), 'annotations[""]', "not a string"),
    "hostname without uts": (_ns("pid", "mount"), "hostname", "own uts namespace"),
    "hostname in host uts": (_ns("mount", "uts", uts="/proc/self/ns/uts"), "hostname", "own uts"),
    "the runtime's own mount namespace by path": (
        _ns("mount", "uts", mount="/proc/self/ns/mnt"),
        "linux.namespaces[0].path",
        "leave the mount entry out",
    ),
    "domainname without uts": (
        _all(_ns("mount"), _delete("hostname"), _set(["domainname"], "d")),
        "domainname",
        "own uts namespace",
    ),
    "hostname too long": (_set(["hostname"], "h" * 65), "hostname", "longer than 64 bytes"),
    "relative destination": (_set(["mounts", 0, "destination"], "proc"), "mounts[0].destination", "absolute"),
    "dotdot destination": (_set(["mounts", 1, "destination"], "/dev/../etc"), "mounts[1].destination", "'..'"),
    "bind without source": (
        _set(["mounts", 7], {"destination": "/data", "options": ["rbind"]}),
        "mounts[7].source",
        "needs a source",
    ),
    "two propagations": (
        _set(
            ["mounts", 7],
            {"destination": "/data", "source": "/srv", "type": "none", "options": ["rbind", "rshared", "rprivate"]},
        ),
        "mounts[7].options",
        "conflicting propagation",
    ),
    "mount uid without gid": (
        _set(
            ["mounts", 7],
            {
                "destination": "/d",
                "source": "/s",
                "options": ["bind"],
                "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
            },
        ),
        "mounts[7]",
        "given together",
    ),
    "idmap without mappings": (
        _set(["mounts", 7], {"destination": "/d", "source": "/s", "options": ["bind", "idmap"]}),
        "mounts[7].options",
        "idmap needs",
    ),
    "relative masked path": (_set(["linux", "maskedPaths", 0], "proc/kcore"), "linux.maskedPaths[0]", "absolute"),
    "dotdot readonly path": (_set(["linux", "readonlyPaths", 2], "/proc/../etc"), "linux.readonlyPaths[2]", "'..'"),
    "duplicate namespace": (_ns(*ALL_NS, "pid"), "linux.namespaces[5].type", "duplicate"),
    "relative namespace path": (
        _ns("mount", "uts", "network", network="run/netns/x"),
        "linux.namespaces[2].path",
        "absolute",
    ),
    "userns without mappings": (_ns(*ALL_NS, "user"), "linux.uidMappings", "at least one mapping"),
    "userns without gid mappings": (
        _all(USERNS_MAPS, _delete("linux", "gidMappings")),
        "linux.gidMappings",
        "at least one mapping",
    ),
    "mappings without userns": (_all(USERNS_MAPS, _ns(*ALL_NS)), "linux.uidMappings", "without a user namespace"),
    "mappings for a joined userns": (
        _all(USERNS_MAPS, _ns(*ALL_NS, "user", user="/proc/1/ns/user")),
        "linux.gidMappings",
        "joined user namespace",
    ),
    "mapping size 0": (
        _all(USERNS_MAPS, _set(["linux", "uidMappings", 0, "size"], 0)),
        "linux.uidMappings[0].size",
        "at least 1",
    ),
    "mapping overflow": (
        _all(USERNS_MAPS, _set(["linux", "gidMappings", 0, "hostID"], 4294967290)),
        "linux.gidMappings[0]",
        "past the last id",
    ),
    "mapping overlap": (
        _all(USERNS_MAPS, _set(["linux", "uidMappings", 1], {"containerID": 5, "hostID": 5000, "size": 10})),
        "linux.uidMappings[1]",
        "containerID range overlaps entry [0]",
    ),
    "too many mappings": (
        _all(
            USERNS_MAPS,
            _set(["linux", "uidMappings"], [{"containerID": i, "hostID": 1000 + i, "size": 1} for i in range(341)]),
        ),
        "linux.uidMappings",
        "at most 340",
    ),
    "offsets without time ns": (
        _set(["linux", "timeOffsets"], {"monotonic": {"secs": 1}}),
        "linux.timeOffsets",
        "new time namespace",
    ),
    "offsets for a joined time ns": (
        _all(_ns(*ALL_NS, "time", time="/proc/1/ns/time"), _set(["linux", "timeOffsets"], {"boottime": {"secs": 1}})),
        "linux.timeOffsets",
        "new time namespace",
    ),
    "offset of realtime": (
        _all(_ns(*ALL_NS, "time"), _set(["linux", "timeOffsets"], {"realtime": {}})),
        "linux.timeOffsets.realtime",
        "only boottime and monotonic",
    ),
    "offset nanosecs": (
        _all(_ns(*ALL_NS, "time"), _set(["linux", "timeOffsets"], {"boottime": {"nanosecs": 10**9}})),
        "linux.timeOffsets.boottime.nanosecs",
        "below 1000000000",
    ),
    "net sysctl in host netns": (
        _all(_ns("mount", "uts"), _set(["linux", "sysctl"], {"net.ipv4.ip_forward": "1"})),
        'linux.sysctl["net.ipv4.ip_forward"]',
        "own network namespace",
    ),
    "net sysctl slash form": (
        _all(_ns("mount", "uts"), _set(["linux", "sysctl"], {"net/ipv4/ip_forward": "1"})),
        'linux.sysctl["net/ipv4/ip_forward"]',
        "own network namespace",
    ),
    "net sysctl in joined host netns": (
        _all(
            _ns("mount", "uts", "network", network="/proc/self/ns/net"),
            _set(["linux", "sysctl"], {"net.core.somaxconn": "1"}),
        ),
        'linux.sysctl["net.core.somaxconn"]',
        "own network namespace",
    ),
    "ipc sysctl in host ipc": (
        _all(_ns("mount", "uts"), _set(["linux", "sysctl"], {"kernel.shmmax": "1"})),
        'linux.sysctl["kernel.shmmax"]',
        "own ipc namespace",
    ),
    "mqueue sysctl in host ipc": (
        _all(_ns("mount", "uts"), _set(["linux", "sysctl"], {"fs.mqueue.msg_max": "1"})),
        'linux.sysctl["fs.mqueue.msg_max"]',
        "own ipc namespace",
    ),
    "global sysctl": (
        _set(["linux", "sysctl"], {"vm.swappiness": "1"}),
        'linux.sysctl["vm.swappiness"]',
        "not isolated",
    ),
    "global kernel sysctl": (
        _set(["linux", "sysctl"], {"kernel.pid_max": "1"}),
        'linux.sysctl["kernel.pid_max"]',
        "not isolated",
    ),
    "hostname sysctl": (
        _set(["linux", "sysctl"], {"kernel.hostname": "h"}),
        'linux.sysctl["kernel.hostname"]',
        "'hostname' field",
    ),
    "domainname sysctl without uts": (
        _all(_ns("mount"), _delete("hostname"), _set(["linux", "sysctl"], {"kernel.domainname": "d"})),
        'linux.sysctl["kernel.domainname"]',
        "own uts namespace",
    ),
    "char device without major": (
        _set(["linux", "devices"], [{"type": "c", "path": "/dev/x", "minor": 1}]),
        "linux.devices[0]",
        "'major' is required",
    ),
    "unknown device without minor": (
        _set(["linux", "devices"], [{"type": "u", "path": "/dev/x", "major": 1}]),
        "linux.devices[0]",
        "'minor' is required",
    ),
    "relative device": (
        _set(["linux", "devices"], [{"type": "p", "path": "dev/fifo"}]),
        "linux.devices[0].path",
        "absolute",
    ),
    "duplicate device": (
        _set(["linux", "devices"], [{"type": "p", "path": "/dev/f"}, {"type": "p", "path": "/dev//f"}]),
        "linux.devices[1].path",
        "duplicate",
    ),
    "relative hook": (_set(["hooks"], {"prestart": [{"path": "bin/hook"}]}), "hooks.prestart[0].path", "absolute"),
    "hook env": (
        _set(["hooks"], {"poststop": [{"path": "/bin/true", "env": ["X"]}]}),
        "hooks.poststop[0].env[0]",
        "NAME=value",
    ),
    "cgroups path dotdot": (_set(["linux", "cgroupsPath"], "/a/../../b"), "linux.cgroupsPath", "'..'"),
    "swap below limit": (
        _set(["linux", "resources", "memory"], {"limit": 200, "swap": 100}),
        "linux.resources.memory.swap",
        "below the memory limit",
    ),
    "swappiness": (
        _set(["linux", "resources", "memory"], {"swappiness": 101}),
        "linux.resources.memory.swappiness",
        "0..100",
    ),
    "cpus syntax": (_set(["linux", "resources", "cpu"], {"cpus": "0-"}), "linux.resources.cpu.cpus", "list like"),
    "burst above quota": (
        _set(["linux", "resources", "cpu"], {"quota": 100, "burst": 200}),
        "linux.resources.cpu.burst",
        "above the quota",
    ),
    "cpu idle": (_set(["linux", "resources", "cpu"], {"idle": 2}), "linux.resources.cpu.idle", "0 or 1"),
    "device rule type": (
        _set(["linux", "resources", "devices", 1], {"allow": True, "type": "u"}),
        "linux.resources.devices[1].type",
        "not one of",
    ),
    "device rule access": (
        _set(["linux", "resources", "devices", 0, "access"], "rwx"),
        "linux.resources.devices[0].access",
        "r, w and m",
    ),
    "unified escapes": (
        _set(["linux", "resources", "unified"], {"../memory.max": "1"}),
        'linux.resources.unified["../memory.max"]',
        "plain cgroup file name",
    ),
    "unified no controller": (
        _set(["linux", "resources", "unified"], {"max": "1"}),
        "linux.resources.unified.max",
        "<controller>.<file>",
    ),
    "weight device empty": (
        _set(["linux", "resources", "blockIO"], {"weightDevice": [{"major": 8, "minor": 0}]}),
        "linux.resources.blockIO.weightDevice[0]",
        "weight or leafWeight",
    ),
    "rdma empty": (
        _set(["linux", "resources", "rdma"], {"mlx5_1": {}}),
        "linux.resources.rdma.mlx5_1",
        "hcaHandles or hcaObjects",
    ),
    "personality without domain": (_set(["linux", "personality"], {}), "linux.personality", "'domain' is required"),
    "personality flags": (
        _set(["linux", "personality"], {"domain": "LINUX", "flags": ["X"]}),
        "linux.personality.flags",
        "no personality flags",
    ),
    "notify default": (
        _set(["linux", "seccomp"], {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/s"}),
        "linux.seccomp.defaultAction",
        "cannot be the default",
    ),
    "errno with allow": (
        _set(["linux", "seccomp"], dict(SECCOMP, defaultErrnoRet=1)),
        "linux.seccomp.defaultErrnoRet",
        "does not return an errno",
    ),
    "metadata without listener": (
        _set(["linux", "seccomp"], dict(SECCOMP, listenerMetadata="m")),
        "linux.seccomp.listenerMetadata",
        "without listenerPath",
    ),
    "rule errno with kill": (
        _set(
            ["linux", "seccomp"],
            dict(SECCOMP, syscalls=[{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]),
        ),
        "linux.seccomp.syscalls[0].errnoRet",
        "does not return an errno",
    ),
    "notify without listener": (
        _set(["linux", "seccomp"], dict(SECCOMP, syscalls=[{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}])),
        "linux.seccomp.syscalls[0].action",
        "listenerPath",
    ),
    "seccomp arg index": (
        _set(
            ["linux", "seccomp"],
            dict(
                SECCOMP,
                syscalls=[
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            ),
        ),
        "linux.seccomp.syscalls[0].args[0].index",
        "sixth argument",
    ),
    "net device in host netns": (
        _all(_ns("mount", "uts"), _set(["linux", "netDevices"], {"eth0": {}})),
        "linux.netDevices",
        "network namespace",
    ),
    "net device bad name": (
        _set(["linux", "netDevices"], {"eth/0": {}}),
        'linux.netDevices["eth/0"]',
        "must not contain",
    ),
    "net device long rename": (
        _set(["linux", "netDevices"], {"eth0": {"name": "x" * 16}}),
        "linux.netDevices.eth0.name",
        "longer than 15",
    ),
    "net devices to one name": (
        _set(["linux", "netDevices"], {"eth0": {"name": "c0"}, "eth1": {"name": "c0"}}),
        "linux.netDevices.eth1.name",
        "gives 'eth0' too",
    ),
    "net device onto a host name": (
        _set(["linux", "netDevices"], {"eth0": {}, "eth1": {"name": "eth0"}}),
        "linux.netDevices.eth1.name",
        "gives 'eth0' too",
    ),
    "net device named lo": (
        _set(["linux", "netDevices"], {"eth0": {"name": "lo"}}),
        "linux.netDevices.eth0.name",
        "loopback",
    ),
    "clos escapes": (_set(["linux", "intelRdt"], {"closID": "../x"}), "linux.intelRdt.closID", "plain directory name"),
    "schemata newline": (
        _set(["linux", "intelRdt"], {"schemata": ["L3:0=f\nMB:0=1"]}),
        "linux.intelRdt.schemata[0]",
        "newlines",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_semantic_check_rejects(bundle_dir, name):
    mutate, path, words = BAD[name]
    doc = default_spec()
    mutate(doc)
    problems = semantic(doc, bundle_dir)
    hits = [p for p in problems if p.startswith(f"{path}: ")]
    assert hits, problems
    assert any(words in p for p in hits), hits


# --- semantic checks: each accepts what it should ------------------------------

GOOD = {
    "prerelease version": _set(["ociVersion"], "1.0.2-dev"),
    "build metadata": _set(["ociVersion"], "1.1.0-rc.1+build.5"),
    "future minor": _set(["ociVersion"], "1.4.0"),
    "absolute root": lambda doc: None,  # replaced in the test with the bundle's absolute rootfs
    "umask max": _set(["process", "user", "umask"], 0o7777),
    "env empty value": _set(["process", "env"], ["A=", "B=c=d"]),
    "later empty arg": _set(["process", "args"], ["sh", ""]),
    "all capabilities": _set(
        ["process", "capabilities"],
        {k: list(CAPABILITIES) for k in ("bounding", "effective", "inheritable", "permitted", "ambient")},
    ),
    # RLIMIT_NOFILE's hard limit cannot pass fs.nr_open (1048576 by default).
    "all rlimits": _set(
        ["process", "rlimits"],
        [{"type": t, "soft": 0, "hard": 1024 if t == "RLIMIT_NOFILE" else 2**64 - 1} for t in sorted(RLIMITS)],
    ),
    "soft equals hard": _set(["process", "rlimits", 0, "soft"], 1024),
    "oom score bounds": _set(["process", "oomScoreAdj"], -1000),
    "io priority": _set(["process", "ioPriority"], {"class": "IOPRIO_CLASS_IDLE", "priority": 7}),
    "fifo": _set(["process", "scheduler"], {"policy": "SCHED_FIFO", "priority": 99, "nice": -20}),
    "deadline": _set(
        ["process", "scheduler"],
        {"policy": "SCHED_DEADLINE", "runtime": 10_000_000, "deadline": 20_000_000, "period": 20_000_000},
    ),
    "cpu affinity": _set(["process", "execCPUAffinity"], {"initial": "0-3,7", "final": ""}),
    "hostname in joined uts": _ns("mount", "uts", uts="/run/pyrunc-test/uts"),
    "hostname of 64 bytes": _set(["hostname"], "h" * 64),
    "no hostname without uts": _all(_ns("mount"), _delete("hostname")),
    "no namespaces at all": _all(_ns(), _delete("hostname")),
    "no mount namespace": _ns("pid", "uts"),
    "empty hostname without uts": _all(_ns("mount"), _set(["hostname"], "")),
    "bind mount": _set(
        ["mounts", 7],
        {"destination": "/data", "type": "none", "source": "vol", "options": ["rbind", "rprivate", "ro", "rprivate"]},
    ),
    "user namespace": USERNS_MAPS,
    "split mappings": _all(
        USERNS_MAPS,
        _set(
            ["linux", "uidMappings"],
            [{"containerID": 0, "hostID": 1000, "size": 1}, {"containerID": 1, "hostID": 100000, "size": 65536}],
        ),
    ),
    "mapping to the last id": _all(
        USERNS_MAPS, _set(["linux", "uidMappings"], [{"containerID": 0, "hostID": 4294967294, "size": 1}])
    ),
    "joined user namespace": _ns(*ALL_NS, "user", user="/proc/1/ns/user"),
    "time namespace": _all(
        _ns(*ALL_NS, "time"),
        _set(["linux", "timeOffsets"], {"boottime": {"secs": -5, "nanosecs": 999999999}, "monotonic": {"secs": 10}}),
    ),
    "namespaced sysctls": _set(
        ["linux", "sysctl"],
        {
            "net.ipv4.ip_forward": "1",
            "net/ipv4/conf/all/forwarding": "1",
            "kernel.shmmax": "1",
            "kernel.msgmax": "1",
            "kernel.sem": "1 2 3 4",
            "fs.mqueue.queues_max": "1",
            "kernel.domainname": "d",
        },
    ),
    "net sysctl in joined netns": _all(
        _ns("mount", "uts", "network", network="/run/pyrunc-test/net"),
        _set(["linux", "sysctl"], {"net.core.somaxconn": "1"}),
    ),
    "devices": _set(
        ["linux", "devices"],
        [
            {"type": "p", "path": "/dev/fifo"},
            {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229},
            {"type": "b", "path": "/dev/sda", "major": 8, "minor": 0},
        ],
    ),
    "hooks": _set(
        ["hooks"],
        {"prestart": [{"path": "/bin/true", "env": ["A=b"], "timeout": 1}], "poststop": [{"path": "/usr/bin/env"}]},
    ),
    "cgroups path": _set(["linux", "cgroupsPath"], "/pyrunc/abc..def"),
    "systemd cgroups path": _set(["linux", "cgroupsPath"], "system.slice:pyrunc:abc"),
    "resources": _set(
        ["linux", "resources"],
        {
            "memory": {"limit": 100, "swap": -1, "swappiness": 100},
            "cpu": {"cpus": "0-1,3", "mems": "0", "quota": 2000, "burst": 1000, "idle": 1},
            "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "access": "r"}],
            "unified": {"memory.max": "100", "io.weight": "default 100"},
            "blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 10}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3}},
        },
    ),
    "personality": _set(["linux", "personality"], {"domain": "LINUX32", "flags": []}),
    "seccomp": _set(
        ["linux", "seccomp"],
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "m",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_NOTIFY"},
                {
                    "names": ["write"],
                    "action": "SCMP_ACT_TRACE",
                    "errnoRet": 3,
                    "args": [{"index": 5, "value": 1, "op": "SCMP_CMP_EQ"}],
                },
            ],
        },
    ),
    "net devices": _set(["linux", "netDevices"], {"eth0": {"name": "ceth0"}, "eth1": {}}),
    "net device templates": _set(["linux", "netDevices"], {"eth0": {"name": "eth%d"}, "eth1": {"name": "eth%d"}}),
    "net devices swap names": _set(["linux", "netDevices"], {"eth0": {"name": "eth1"}, "eth1": {"name": "eth0"}}),
    "intel rdt": _set(["linux", "intelRdt"], {"closID": "/", "schemata": ["L3:0=f"]}),
    "intel rdt group": _set(["linux", "intelRdt"], {"closID": "guaranteed_group"}),
    "annotations": _set(["annotations"], {"org.example.key": "value", "com.example": ""}),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_semantic_check_accepts(bundle_dir, name):
    doc = default_spec()
    GOOD[name](doc)
    if name == "absolute root":
        doc["root"]["path"] = f"{bundle_dir}/rootfs"
    assert semantic(doc, bundle_dir) == []


# --- property tests ------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle")
    (path / "rootfs").mkdir()
    return str(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=valid_configs())
def test_generated_valid_configs_have_no_problems(shared_bundle, doc):
    assert problems_of(shared_bundle, doc) == []


def _index(draw, items):
    return draw(st.integers(0, len(items) - 1))


def m_wrong_type(doc, draw):
    field = draw(st.sampled_from(["terminal", "noNewPrivileges", "cwd", "args"]))
    doc["process"][field] = draw(
        st.sampled_from([7, "yes", None, {"a": 1}]).filter(lambda v: not (field == "cwd" and isinstance(v, str)))
    )
    return f"process.{field}"


def m_bad_namespace(doc, draw):
    i = _index(draw, doc["linux"]["namespaces"])
    doc["linux"]["namespaces"][i]["type"] = draw(st.sampled_from(["nett", "PID", "", "mnt"]))
    return f"linux.namespaces[{i}].type"


def m_negative_id(doc, draw):
    key = draw(st.sampled_from(["uid", "gid"]))
    doc["process"]["user"][key] = draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=2**32)))
    return f"process.user.{key}"


def m_relative_destination(doc, draw):
    i = _index(draw, doc["mounts"])
    doc["mounts"][i]["destination"] = draw(SEGMENT)
    return f"mounts[{i}].destination"


def m_dotdot_destination(doc, draw):
    i = _index(draw, doc["mounts"])
    doc["mounts"][i]["destination"] = draw(ABS_PATH) + "/../" + draw(SEGMENT)
    return f"mounts[{i}].destination"


def m_duplicate_namespace(doc, draw):
    nss = doc["linux"]["namespaces"]
    nss.append(dict(nss[_index(draw, nss)]))
    return f"linux.namespaces[{len(nss) - 1}].type"


def m_relative_cwd(doc, draw):
    doc["process"]["cwd"] = draw(SEGMENT)
    return "process.cwd"


def m_no_args(doc, draw):
    doc["process"]["args"] = []
    return "process.args"


def m_env_without_equals(doc, draw):
    env = doc["process"]["env"]
    env.append(draw(NAME))
    return f"process.env[{len(env) - 1}]"


def m_unknown_capability(doc, draw):
    caps = doc["process"]["capabilities"]["effective"]
    caps.append(draw(st.from_regex(r"CAP_[A-Z]{1,8}", fullmatch=True).filter(lambda c: c not in CAPABILITIES)))
    return f"process.capabilities.effective[{len(caps) - 1}]"


def m_soft_above_hard(doc, draw):
    hard = draw(st.integers(0, 2**64 - 2))
    doc["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "hard": hard, "soft": draw(st.integers(hard + 1, 2**64 - 1))}]
    return "process.rlimits[0]"


def m_rlimit_pattern(doc, draw):
    doc["process"]["rlimits"] = [
        {"type": draw(st.sampled_from(["nofile", "RLIMIT_nofile", "RLIMIT-X"])), "soft": 1, "hard": 1}
    ]
    return "process.rlimits[0].type"


def m_bad_version(doc, draw):
    doc["ociVersion"] = draw(st.sampled_from(["2.0.0", "0.9.0", "1", "1.0.0.0", 1, None]))
    return "ociVersion"


def m_missing_rootfs(doc, draw):
    doc["root"]["path"] = "missing-" + draw(SEGMENT)
    return "root.path"


def m_hostname_without_uts(doc, draw):
    doc["linux"]["namespaces"] = [ns for ns in doc["linux"]["namespaces"] if ns["type"] != "uts"]
    doc["hostname"] = draw(HOSTNAME)
    return "hostname"


def m_relative_masked_path(doc, draw):
    paths = doc["linux"]["maskedPaths"]
    i = _index(draw, paths)
    paths[i] = paths[i].lstrip("/")
    return f"linux.maskedPaths[{i}]"


def m_umask(doc, draw):
    doc["process"]["user"]["umask"] = draw(st.integers(0o10000, 2**32 - 1))
    return "process.user.umask"


def m_nul_in_arg(doc, draw):
    args = doc["process"]["args"]
    i = _index(draw, args)
    args[i] += "\0"
    return f"process.args[{i}]"


def m_ipc_sysctl_without_ipc(doc, draw):
    doc["linux"]["namespaces"] = [ns for ns in doc["linux"]["namespaces"] if ns["type"] != "ipc"]
    key = draw(st.sampled_from(["kernel.shmmax", "kernel.msgmnb", "fs.mqueue.msg_max"]))
    doc["linux"]["sysctl"] = {key: "1"}
    return json_path(["linux", "sysctl", key])


def m_mappings_without_userns(doc, draw):
    linux = doc["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "user"]
    linux["uidMappings"] = linux["gidMappings"] = id_maps(draw)
    return "linux.uidMappings"


def m_bad_propagation(doc, draw):
    doc["linux"]["rootfsPropagation"] = draw(st.sampled_from(["rprivate", "bogus", ""]))
    return "linux.rootfsPropagation"


def m_annotation_value(doc, draw):
    key = draw(st.sampled_from(["org.example", "a", "x.y.z"]))
    doc["annotations"] = {key: draw(st.sampled_from([1, True, None, ["v"]]))}
    return json_path(["annotations", key])


def m_relative_hook(doc, draw):
    doc["hooks"] = {draw(st.sampled_from(["prestart", "poststart", "poststop"])): [{"path": draw(SEGMENT)}]}
    return "hooks."


def m_cgroups_dotdot(doc, draw):
    doc["linux"]["cgroupsPath"] = draw(ABS_PATH) + "/../.."
    return "linux.cgroupsPath"


MUTATIONS = [
    m_wrong_type,
    m_bad_namespace,
    m_negative_id,
    m_relative_destination,
    m_dotdot_destination,
    m_duplicate_namespace,
    m_relative_cwd,
    m_no_args,
    m_env_without_equals,
    m_unknown_capability,
    m_soft_above_hard,
    m_rlimit_pattern,
    m_bad_version,
    m_missing_rootfs,
    m_hostname_without_uts,
    m_relative_masked_path,
    m_umask,
    m_nul_in_arg,
    m_ipc_sysctl_without_ipc,
    m_mappings_without_userns,
    m_bad_propagation,
    m_annotation_value,
    m_relative_hook,
    m_cgroups_dotdot,
]


@st.composite
def broken_configs(draw):
    """(mutation name, path of the broken field, document): a valid config broken once."""
    doc = draw(valid_configs())
    mutation = draw(st.sampled_from(MUTATIONS))
    return mutation.__name__, mutation(doc, draw), doc


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken=broken_configs())
def test_a_broken_field_is_reported_at_its_path(shared_bundle, broken):
    name, path, doc = broken
    problems = problems_of(shared_bundle, doc)
    assert any(p.startswith(path) for p in problems), (name, path, problems)
