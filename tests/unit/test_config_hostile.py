"""Hostile config.json, no root needed: every string, length, count and number a kernel
field cannot hold is refused by the loader with a one-line problem naming its JSON path;
values that are merely odd but fine are accepted; nothing but ConfigError escapes."""

import copy
import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.config.default import default_spec
from pyrunc.config.schema import json_path
from pyrunc.config.semantic import semantic_errors
from pyrunc.config.validate import load_config
from pyrunc.errors import ConfigError
from tests.unit.config_docs import set_at, string_leaves

MAX_PROBLEM = 1000  # a problem must stay readable however long the hostile value was
STACK = 8 << 20  # RLIMIT_STACK of the base config: execve's room is then 2 MiB
PAGE = os.sysconf("SC_PAGE_SIZE")
ARG_STRLEN = 32 * PAGE - 1  # execve's longest string, without its NUL
NO_ID = 2**32 - 1
SURROGATES = ["\ud800", "\udbff", "\udc80", "\udfff"]


def base_config():
    """The default spec with one of nearly every field a hostile value can go into."""
    doc = default_spec()
    proc, linux = doc["process"], doc["linux"]
    proc["terminal"] = False
    proc["consoleSize"] = {"height": 24, "width": 80}
    proc["user"].update(umask=0o22, additionalGids=[5])
    proc["rlimits"].append({"type": "RLIMIT_STACK", "soft": STACK, "hard": STACK})
    proc["rlimits"].append({"type": "RLIMIT_CORE", "soft": 0, "hard": 0})
    proc["oomScoreAdj"] = 0
    proc["scheduler"] = {"policy": "SCHED_OTHER", "nice": 0}
    proc["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 4}
    doc["domainname"] = "example"
    doc["annotations"] = {"org.example.key": "value"}
    doc["hooks"] = {"poststop": [{"path": "/bin/true", "args": ["true"], "env": ["A=b"]}]}
    doc["mounts"].append({"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]})
    linux["namespaces"] += [{"type": "user"}, {"type": "time"}, {"type": "cgroup"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["timeOffsets"] = {"monotonic": {"secs": 0}}
    linux["cgroupsPath"] = "/pyrunc-test-fuzz-unit/c"
    linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    linux["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "uid": 0, "gid": 0}]
    linux["resources"].update(memory={"limit": 100 << 20}, cpu={"quota": 50000, "period": 100000}, pids={"limit": 100})
    linux["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"})
    linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    return doc


BASE = base_config()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile")
    (path / "rootfs").mkdir()
    return str(path)


def load(bundle, doc):
    """(problems, None) or ([], document): what the real loader makes of `doc`."""
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(doc, f)  # ensure_ascii: lone surrogates travel as \\u escapes, as in a hostile file
    try:
        return [], load_config(bundle)
    except ConfigError as e:
        return e.problems, None


def names(problem, path):
    """Whether a `path: message` line is about `path` or something inside it."""
    return problem.startswith(path) and problem[len(path) : len(path) + 1] in (":", ".", "[")


def test_the_base_config_is_valid(bundle):
    assert load(bundle, copy.deepcopy(BASE))[0] == []


# --- mutations: each changes one thing and returns (json path, whether it is fine) -------

STRING_LEAVES = list(string_leaves(BASE))
KEYED = [["annotations"], ["linux", "sysctl"]]  # objects whose keys are free-form strings


def m_poisoned_string(doc, draw):
    """A NUL or a lone surrogate anywhere in any string."""
    parts = draw(st.sampled_from(STRING_LEAVES))
    target = doc
    for part in parts[:-1]:
        target = target[part]
    text = target[parts[-1]]
    at = draw(st.integers(0, len(text)))
    target[parts[-1]] = text[:at] + draw(st.sampled_from(["\0"] + SURROGATES)) + text[at:]
    return json_path(parts), False


def m_poisoned_key(doc, draw):
    """The same in a key of the objects whose keys are free text: reported at the object."""
    parts = draw(st.sampled_from(KEYED))
    target = doc
    for part in parts:
        target = target[part]
    key = next(iter(target))
    target["net." + draw(st.sampled_from(["\0", *SURROGATES])) + key] = target.pop(key)
    return json_path(parts), False


ODD_TEXT = st.text(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=()), min_size=1, max_size=12
)


def m_odd_unicode(doc, draw):
    """Any code point, surrogates and control characters included, where any text goes."""
    text = draw(ODD_TEXT)
    where = draw(st.sampled_from(["argument", "environment", "annotation", "hook argument"]))
    if where == "annotation":
        doc["annotations"]["org.example.key"] = text
        path = json_path(["annotations", "org.example.key"])
    else:
        parts = {
            "argument": ["process", "args"],
            "environment": ["process", "env"],
            "hook argument": ["hooks", "poststop", 0, "args"],
        }[where]
        strings = _get(doc, parts)
        strings.append("V=" + text if where == "environment" else text)
        path = json_path(parts + [len(strings) - 1])
    bad = "\0" in text or any("\ud800" <= c <= "\udfff" for c in text)
    return path, not bad


def _get(doc, parts):
    for part in parts:
        doc = doc[part]
    return doc


SEGMENT = st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True)
DOTTY = st.sampled_from(["...", "..a", "a..", ".hidden", "a.b"])  # look like "..", are not


# Paths inside the rootfs or the cgroup tree, and how to set one.
INNER_PATHS = {
    "cwd": (["process", "cwd"], lambda p: p),
    "destination": (["mounts", 1, "destination"], lambda p: p),
    "masked": (["linux", "maskedPaths", 0], lambda p: p),
    "readonly": (["linux", "readonlyPaths", 2], lambda p: p),
    "device": (["linux", "devices", 0, "path"], lambda p: p),
    "cgroups": (["linux", "cgroupsPath"], lambda p: "/pyrunc-test-fuzz-unit" + p),
}


def m_dotdot(doc, draw):
    """'..' as a whole component is refused; names that merely contain dots are fine."""
    parts, make = INNER_PATHS[draw(st.sampled_from(sorted(INNER_PATHS)))]
    segments = draw(st.lists(st.one_of(SEGMENT, DOTTY), min_size=1, max_size=4))
    escape = draw(st.booleans())
    if escape:
        segments.insert(draw(st.integers(0, len(segments))), "..")
    set_at(doc, parts, make("/" + "/".join(segments)))
    return json_path(parts), not escape


def m_sysctl_key(doc, draw):
    """Keys become paths under /proc/sys: no empty, '.' or '..' part between separators."""
    words = draw(
        st.lists(st.sampled_from(["ipv4", "conf", "all", "eth0", "", ".", "..", "forwarding"]), min_size=1, max_size=5)
    )
    key = "net" + "".join(draw(st.sampled_from([".", "/"])) + word for word in words)
    doc["linux"]["sysctl"] = {key: "1"}
    pieces = key.replace("/", ".").split(".")
    return json_path(["linux", "sysctl", key]), all(pieces)


def m_long_path(doc, draw):
    """PATH_MAX (4095 bytes) and NAME_MAX (255 per component)."""
    which = draw(st.sampled_from(sorted(INNER_PATHS) + ["namespace", "hook", "bind source"]))
    component = draw(st.one_of(st.integers(1, 400), st.sampled_from([255, 256])))
    count = draw(st.integers(1, 40))
    path = "/" + "/".join(["d" * component] * count)
    limit = 4095
    if which in INNER_PATHS:
        parts, make = INNER_PATHS[which]
        path = make(path)
        if which == "cgroups":
            limit -= 64  # room for /sys/fs/cgroup/<hierarchy>/
    elif which == "namespace":
        # Joining a cgroup namespace by path is allowed; only the path's length is wrong.
        at = [ns["type"] for ns in doc["linux"]["namespaces"]].index("cgroup")
        parts = ["linux", "namespaces", at, "path"]
    elif which == "hook":
        parts = ["hooks", "poststop", 0, "path"]
    else:
        parts = ["mounts", len(doc["mounts"]) - 1, "source"]
    set_at(doc, parts, path)
    # cgroupfs (kernfs) takes names past NAME_MAX; only the whole path is limited there.
    fine = len(path) <= limit and (which == "cgroups" or max(len(c) for c in path.split("/")) <= 255)
    return json_path(parts), fine


def m_host_and_domain_name(doc, draw):
    field = draw(st.sampled_from(["hostname", "domainname"]))
    name = draw(st.text("abcxyz-", min_size=1, max_size=100))
    doc[field] = name
    return field, len(name) <= 64


def m_listener_path(doc, draw):
    path = "/" + "s" * draw(st.integers(1, 300))
    doc["linux"]["seccomp"]["listenerPath"] = path
    return "linux.seccomp.listenerPath", len(path) <= 108


def m_exec_string(doc, draw):
    """One argument or environment string: execve takes at most MAX_ARG_STRLEN - 1 bytes."""
    size = draw(st.sampled_from([1000, ARG_STRLEN - 1, ARG_STRLEN, ARG_STRLEN + 1, 2 * ARG_STRLEN]))
    where = draw(st.sampled_from(["args", "env", "hook"]))
    if where == "args":
        doc["process"]["args"].append("a" * size)
        path = f"process.args[{len(doc['process']['args']) - 1}]"
    elif where == "env":
        doc["process"]["env"].append("A=" + "a" * (size - 2))
        path = f"process.env[{len(doc['process']['env']) - 1}]"
    else:
        doc["hooks"]["poststop"][0]["args"].append("a" * size)
        path = "hooks.poststop[0].args[1]"
    return path, size <= ARG_STRLEN


def m_exec_total(doc, draw):
    """All of argv and envp, with a pointer each, within a quarter of the stack limit."""
    count = draw(st.integers(1, 4000))
    proc = doc["process"]
    proc["env"] += [f"E{i:05d}=" + "x" * 1000 for i in range(count)]
    strings = proc["args"] + proc["env"]
    used = sum(len(s.encode()) + 1 + 8 for s in strings) + 2 * 4096  # + the program's path, HOME
    return "process.env", used <= STACK // 4


def m_id_mapping_count(doc, draw):
    count = draw(st.integers(330, 350))
    doc["linux"]["uidMappings"] = [{"containerID": i, "hostID": 100000 + i, "size": 1} for i in range(count)]
    return "linux.uidMappings", count <= 340


def _numbers(*edges, lo=None, hi=None):
    ranged = [st.integers(lo, hi)] if lo is not None else []
    return st.one_of(st.sampled_from(edges), *ranged)


def _timens_fine(secs):
    now = int(time.clock_gettime(time.CLOCK_MONOTONIC))
    return 0 <= now + secs <= 9223372036 // 2


def _nr_open():
    with open("/proc/sys/fs/nr_open") as f:
        return int(f.read())


U32 = 2**32
# (path, values, fine): numbers that overflow what the kernel field holds.
NUMBERS = [
    (["process", "user", "uid"], _numbers(0, U32 - 2, U32 - 1, U32, -1, lo=0, hi=U32 - 1), lambda v: 0 <= v < U32 - 1),
    (["process", "user", "gid"], _numbers(0, U32 - 2, U32 - 1, U32, -1), lambda v: 0 <= v < U32 - 1),
    (["process", "user", "additionalGids", 0], _numbers(5, U32 - 2, U32 - 1, U32), lambda v: 0 <= v < U32 - 1),
    (["process", "user", "umask"], _numbers(0, 0o7777, 0o10000, U32 - 1, lo=0, hi=0o20000), lambda v: 0 <= v <= 0o7777),
    (
        ["process", "oomScoreAdj"],
        _numbers(-1001, 1001, -(2**31), 2**31, lo=-1500, hi=1500),
        lambda v: -1000 <= v <= 1000,
    ),
    (["process", "ioPriority", "priority"], _numbers(-1, 8, 2**31, lo=-3, hi=10), lambda v: 0 <= v <= 7),
    (["process", "scheduler", "nice"], _numbers(-21, 20, 2**31, lo=-30, hi=30), lambda v: -20 <= v <= 19),
    (
        ["process", "consoleSize", "height"],
        _numbers(65535, 65536, 2**64 - 1, 2**64, lo=0, hi=2**17),
        lambda v: 0 <= v <= 65535,
    ),
    (["process", "consoleSize", "width"], _numbers(65535, 65536, -1), lambda v: 0 <= v <= 65535),
    (["process", "rlimits", 2, "hard"], _numbers(0, 2**64 - 1, 2**64, -1), lambda v: 0 <= v < 2**64),
    (["process", "rlimits", 0, "hard"], _numbers(1024, 2**20, 2**20 + 1, 2**64 - 1), lambda v: 1024 <= v <= _nr_open()),
    (
        ["linux", "resources", "memory", "limit"],
        _numbers(-1, -2, 0, 2**63 - 1, 2**63, -(2**63) - 1, lo=-5, hi=5),
        lambda v: -1 <= v < 2**63,
    ),
    (
        ["linux", "resources", "cpu", "quota"],
        _numbers(-1, 999, 1000, 2**44 - 1, 2**44, lo=-5, hi=2000),
        lambda v: v <= 0 or 1000 <= v <= 2**44 - 1,
    ),
    (
        ["linux", "resources", "cpu", "period"],
        _numbers(0, 999, 1000, 10**6, 10**6 + 1, lo=0, hi=2 * 10**6),
        lambda v: v == 0 or 1000 <= v <= 10**6,
    ),
    (["linux", "resources", "pids", "limit"], _numbers(-5, 0, 2**63 - 1, 2**63, lo=-10, hi=10), lambda v: v < 2**63),
    (
        ["linux", "timeOffsets", "monotonic", "secs"],
        _numbers(0, -(2**63), 2**63 - 1, 2**40, -(2**40), 9223372036 // 2, lo=-(10**6), hi=10**6),
        _timens_fine,
    ),
    (["linux", "devices", 0, "major"], _numbers(4095, 4096, -1, lo=-3, hi=5000), lambda v: 0 <= v <= 4095),
    (["linux", "devices", 0, "minor"], _numbers(2**20 - 1, 2**20, -1, lo=-3, hi=2**21), lambda v: 0 <= v < 2**20),
    (["linux", "devices", 0, "uid"], _numbers(0, U32 - 2, U32 - 1), lambda v: v < U32 - 1),
    (
        ["linux", "resources", "devices", 1, "major"],
        _numbers(-1, -2, U32 - 1, U32, lo=-3, hi=300),
        lambda v: -1 <= v < U32,
    ),
    (
        ["linux", "seccomp", "syscalls", 0, "errnoRet"],
        _numbers(1, 65535, 65536, U32 - 1, lo=0, hi=70000),
        lambda v: v <= 65535,
    ),
    # A range past the last id is reported at its entry: the sum of two fields is wrong.
    (
        ["linux", "uidMappings", 0, "hostID"],
        _numbers(U32 - 65537, U32 - 65536, lo=U32 - 70000, hi=U32 - 1),
        lambda v: v + 65536 <= U32 - 1,
        ["linux", "uidMappings", 0],
    ),
]


def m_number(doc, draw):
    parts, values, fine, *reported = draw(st.sampled_from(NUMBERS))
    value = draw(values)
    set_at(doc, parts, value)
    return json_path(reported[0] if reported else parts), fine(value)


def m_cgroup_newline(doc, draw):
    doc["linux"]["cgroupsPath"] = "/pyrunc-test-fuzz-unit/" + draw(SEGMENT) + "\n" + draw(SEGMENT)
    return "linux.cgroupsPath", False


def m_mount_data(doc, draw):
    """Filesystem options share one page; flags like nosuid are not in it."""
    size = draw(st.sampled_from([100, PAGE - 100, PAGE - 20, PAGE + 1000]))
    flags = draw(st.integers(0, 300))
    options = doc["mounts"][1]["options"]
    options += ["nosuid"] * flags + ["x=" + "o" * size]
    data = ",".join(o for o in options if "=" in o)
    return "mounts[1].options", len(data) <= PAGE - 1


MUTATIONS = [
    m_poisoned_string,
    m_poisoned_key,
    m_odd_unicode,
    m_dotdot,
    m_sysctl_key,
    m_long_path,
    m_host_and_domain_name,
    m_listener_path,
    m_exec_string,
    m_exec_total,
    m_id_mapping_count,
    m_number,
    m_cgroup_newline,
    m_mount_data,
]


@st.composite
def hostile_configs(draw):
    doc = copy.deepcopy(BASE)
    mutation = draw(st.sampled_from(MUTATIONS))
    path, fine = mutation(doc, draw)
    return mutation.__name__, path, fine, doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=hostile_configs())
def test_hostile_value_is_refused_at_its_path_or_genuinely_fine(bundle, case):
    name, path, fine, doc = case
    problems, _ = load(bundle, doc)  # anything but ConfigError fails the test here
    for problem in problems:
        assert "\n" not in problem and len(problem) <= MAX_PROBLEM, (name, problem[:2000])
        problem.encode()  # printable: a lone surrogate in a message cannot be written to stderr
    if fine:
        assert problems == [], (name, path)
    else:
        assert any(names(p, path) for p in problems), (name, path, problems)


# --- huge arrays: straight to the semantic checks --------------------------------------
# jsonschema takes seconds on 100k-entry arrays, so these documents, schema-valid by
# construction, skip the schema pass.


def _problems_at(doc, bundle, path):
    return [p for p in semantic_errors(doc, bundle) if names(p, path)]


def test_more_groups_than_ngroups_max(bundle):
    doc = copy.deepcopy(BASE)
    doc["process"]["user"]["additionalGids"] = list(range(65536))
    assert _problems_at(doc, bundle, "process.user.additionalGids") == []
    doc["process"]["user"]["additionalGids"].append(70000)
    assert _problems_at(doc, bundle, "process.user.additionalGids") == [
        "process.user.additionalGids: 65537 groups; setgroups(2) takes at most 65536"
    ]


def test_more_mounts_than_a_mount_namespace_holds(bundle):
    with open("/proc/sys/fs/mount-max") as f:
        limit = int(f.read())
    doc = copy.deepcopy(BASE)
    doc["mounts"] += [{"destination": f"/m/{i}", "type": "tmpfs", "source": "tmpfs"} for i in range(limit)]
    problems = _problems_at(doc, bundle, "mounts")
    assert len(problems) == 1 and "fs.mount-max" in problems[0], problems


def test_many_small_environment_entries_are_fine(bundle):
    doc = copy.deepcopy(BASE)
    doc["process"]["env"] += [f"V{i}=1" for i in range(100000)]  # about 1.3 MB of execve's 2 MiB
    assert semantic_errors(doc, bundle) == []


def test_environment_past_execve_space_names_env(bundle):
    doc = copy.deepcopy(BASE)
    doc["process"]["env"] += [f"V{i}=" + "x" * 100 for i in range(30000)]
    problems = _problems_at(doc, bundle, "process.env")
    assert len(problems) == 1 and "execve(2) takes at most 2097152" in problems[0], problems


# --- one case each of what the fuzzing found ---------------------------------------------


@pytest.mark.parametrize(
    "mutate, path, words",
    [
        # passed as a namespaced net.* sysctl, yet in sysctl(8)'s "/" form it is the host's
        # kernel.core_pattern (today's writer turns every "." into "/" and gets ENOENT instead)
        (
            lambda d: set_at(d, ["linux", "sysctl"], {"net/../kernel/core_pattern": "|/bin/sh"}),
            'linux.sysctl["net/../kernel/core_pattern"]',
            "'..'",
        ),
        # setresuid(-1, -1, -1) changes nothing: the process ran as root
        (lambda d: set_at(d, ["process", "user", "uid"], NO_ID), "process.user.uid", "running as root"),
        (lambda d: set_at(d, ["process", "user", "gid"], NO_ID), "process.user.gid", "no id"),
        # chown(path, -1, -1) changes nothing: the device stayed root's
        (lambda d: set_at(d, ["linux", "devices", 0, "uid"], NO_ID), "linux.devices[0].uid", "owned by root"),
        # the kernel refuses a mapping that reaches (uid_t)-1
        (
            lambda d: set_at(d, ["linux", "uidMappings"], [{"containerID": 0, "hostID": NO_ID, "size": 1}]),
            "linux.uidMappings[0]",
            "last id 4294967294",
        ),
        # a hostname with a lone surrogate crashed the length check with UnicodeEncodeError
        (lambda d: set_at(d, ["hostname"], "\ud800"), "hostname", "surrogate"),
        # the kernel refuses the name, after create made the parents; the error was two lines
        (lambda d: set_at(d, ["linux", "cgroupsPath"], "/pyrunc-test-fuzz-unit/a\nb"), "linux.cgroupsPath", "newline"),
        # the errno is 16 bits of the filter's return: 65536 became SCMP_ACT_ERRNO(0), a fake success
        (
            lambda d: set_at(d, ["linux", "seccomp", "syscalls", 0, "errnoRet"], 65536),
            "linux.seccomp.syscalls[0].errnoRet",
            "16 bits",
        ),
        (lambda d: set_at(d, ["linux", "devices", 0, "major"], -3), "linux.devices[0].major", "0..4095"),
        (lambda d: set_at(d, ["linux", "resources", "memory", "limit"], -2), "linux.resources.memory.limit", "-1"),
        (lambda d: set_at(d, ["linux", "resources", "cpu", "quota"], 200), "linux.resources.cpu.quota", "1000"),
        (
            lambda d: set_at(
                d, ["process", "scheduler"], {"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 20, "period": 20}
            ),
            "process.scheduler.runtime",
            "1024",
        ),
        (lambda d: set_at(d, ["process", "cwd"], "/" + "c" * 256), "process.cwd", "NAME_MAX"),
    ],
)
def test_finding_is_refused(bundle, mutate, path, words):
    doc = copy.deepcopy(BASE)
    mutate(doc)
    problems, _ = load(bundle, doc)
    hits = [p for p in problems if names(p, path)]
    assert hits and any(words in p for p in hits), problems


def test_a_hostile_value_is_shown_cut_short(bundle):
    doc = copy.deepcopy(BASE)
    doc["process"]["capabilities"]["bounding"].append("CAP_" + "X" * 1_000_000)
    problems, _ = load(bundle, doc)
    assert len(problems) == 1 and len(problems[0]) < 200, problems[0][:300]
    assert problems[0].startswith("process.capabilities.bounding[3]: unknown capability 'CAP_XXX")


# --- nesting -----------------------------------------------------------------------------


def _nested(depth):
    text = json.dumps(BASE)
    return text[:-1] + ', "x-unknown": ' + "[" * depth + "]" * depth + "}"


def test_deep_nesting_in_an_unknown_field_is_walked_without_recursion(bundle):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write(_nested(900))
    assert load_config(bundle)["x-unknown"]


def test_nesting_deeper_than_the_parser_goes_is_a_config_error(bundle):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        f.write(_nested(100000))
    with pytest.raises(ConfigError):
        load_config(bundle)
