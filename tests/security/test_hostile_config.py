"""A hostile config.json through the real `pyrunc create`, as root: NULs and lone
surrogates in any string, '..' in paths inside the rootfs or the cgroup tree, paths past
PATH_MAX and NAME_MAX, execve's size limits, id mappings past the kernel's 340 lines, and
numbers that overflow kernel fields.  Each case must either be refused with one line
naming its JSON path, or (when the value is odd but fine) create a container that is then
deleted; and after each case nothing may be left: no state, no cgroup, no mount, no
process.  Ids and cgroups carry the prefix `pyrunc-test-fuzz-`.

tests/unit/test_config_hostile.py fuzzes the validator itself, far more widely."""

import copy
import glob
import json
import os
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.config.schema import json_path
from tests.unit.config_docs import set_at, string_leaves  # as the unit tests' mutations

PREFIX = "pyrunc-test-fuzz-"
NO_ID = 2**32 - 1
POISON = ["\0", "\ud800", "\udfff", "\udc80"]


# --- hostile mutations: each returns (json path, whether the value is fine) ------------------


def poisoned_string(cfg, draw, ctx):
    """A NUL or a lone surrogate anywhere in any string of the config."""
    parts = draw(st.sampled_from(sorted(string_leaves(cfg), key=str)))
    target = cfg
    for part in parts[:-1]:
        target = target[part]
    text = target[parts[-1]]
    at = draw(st.integers(0, len(text)))
    target[parts[-1]] = text[:at] + draw(st.sampled_from(POISON)) + text[at:]
    return json_path(parts), False


SEGMENT = st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True)
DOTTY = st.sampled_from(["...", "..a", "a..", ".hidden"])  # look like "..", are not


def _inner_path(which, ctx, path):
    """(parts, value) of a path inside the rootfs or the cgroup tree."""
    if which == "cgroupsPath":
        return ["linux", "cgroupsPath"], ctx["cgroup_parent"] + path
    return {
        "cwd": ["process", "cwd"],
        "destination": ["mounts", 1, "destination"],
        "maskedPaths": ["linux", "maskedPaths", 0],
    }[which], path


INNER = ["cwd", "destination", "maskedPaths", "cgroupsPath"]


def dotdot(cfg, draw, ctx):
    """'..' as a whole component is refused; names that only contain dots are fine."""
    segments = draw(st.lists(st.one_of(SEGMENT, DOTTY), min_size=1, max_size=3))
    escape = draw(st.booleans())
    if escape:
        segments.insert(draw(st.integers(0, len(segments))), "..")
    parts, value = _inner_path(draw(st.sampled_from(INNER)), ctx, "/" + "/".join(segments))
    set_at(cfg, parts, value)
    return json_path(parts), not escape


def long_path(cfg, draw, ctx):
    """A component past NAME_MAX (255), or a path past PATH_MAX (4095).  cgroupfs is
    kernfs, which takes longer names: there only the whole path's length counts."""
    which = draw(st.sampled_from(INNER))
    long_name = draw(st.booleans())
    if long_name:
        path = "/" + "n" * draw(st.integers(256, 1000))
    else:
        path = "/" + "/".join(["p" * 200] * draw(st.integers(21, 30)))
    parts, value = _inner_path(which, ctx, path)
    set_at(cfg, parts, value)
    return json_path(parts), long_name and which == "cgroupsPath"


def fine_long_cwd(cfg, draw, ctx):
    """The longest names the kernel takes: the cwd is created, the container is fine."""
    depth = draw(st.integers(1, 8))
    cfg["process"]["cwd"] = "/" + "/".join(["w" * 255] * depth)
    return "process.cwd", True


def escaping_sysctl(cfg, draw, ctx):
    # Once these passed as net.*, though with ".." they name another sysctl.  The target
    # here is uts-namespaced, so even a regression cannot change the host.
    key = draw(
        st.sampled_from(
            [
                "net.ipv4/../../kernel/domainname",
                "net/ipv4/../../kernel/domainname",
                "net..ipv4.ip_forward",
                "net.ipv4.ip_forward.",
            ]
        )
    )
    cfg["linux"]["sysctl"] = {key: "x"}
    return json_path(["linux", "sysctl", key]), False


def hostname(cfg, draw, ctx):
    name = draw(st.text("abcxyz0189-", min_size=1, max_size=100))
    field = draw(st.sampled_from(["hostname", "domainname"]))
    cfg[field] = name
    return field, len(name) <= 64


def exec_size(cfg, draw, ctx):
    """execve(2)'s E2BIG, refused before create: one string, or all of them."""
    if draw(st.booleans()):
        cfg["process"]["args"].append("a" * draw(st.integers(131072, 300000)))
        return f"process.args[{len(cfg['process']['args']) - 1}]", False
    # Under an 8 MiB stack limit execve takes 2 MiB: 3000 strings of 1000 bytes are too many.
    cfg["process"]["rlimits"].append({"type": "RLIMIT_STACK", "soft": 8 << 20, "hard": 8 << 20})
    cfg["process"]["env"] += [f"E{i}=" + "x" * 1000 for i in range(draw(st.integers(3000, 4000)))]
    return "process.env", False


def id_maps(cfg, draw, ctx):
    count = draw(st.integers(341, 400))
    linux = cfg["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": i, "hostID": 100000 + i, "size": 1} for i in range(count)]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1}]
    return "linux.uidMappings", False


def _with_device(cfg):
    cfg["linux"]["devices"] = [{"path": "/dev/fuzz", "type": "c", "major": 1, "minor": 3}]


def _with_seccomp(cfg):
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


def _with_time(cfg):
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 0}}


# (path, setup, values): every value overflows what the kernel field holds.
NUMBERS = [
    (["process", "user", "uid"], None, st.just(NO_ID)),
    (["process", "user", "gid"], None, st.just(NO_ID)),
    (["process", "user", "additionalGids"], None, st.just([1, NO_ID])),
    (["process", "oomScoreAdj"], None, st.sampled_from([-1001, 1001, 2**31 - 1])),
    (["process", "user", "umask"], None, st.integers(0o10000, 2**32 - 1)),
    (["process", "consoleSize"], None, st.just({"height": 65536, "width": 80})),
    (["linux", "resources", "memory"], None, st.integers(-(2**63), -2).map(lambda v: {"limit": v})),
    (["linux", "resources", "cpu"], None, st.integers(1, 999).map(lambda v: {"quota": v, "period": 100000})),
    (["linux", "resources", "cpu"], None, st.integers(1000001, 2**40).map(lambda v: {"period": v})),
    (["linux", "devices", 0, "major"], _with_device, st.one_of(st.integers(4096, 2**40), st.integers(-(2**40), -1))),
    (["linux", "devices", 0, "uid"], _with_device, st.just(NO_ID)),
    (["linux", "seccomp", "syscalls", 0, "errnoRet"], _with_seccomp, st.integers(65536, 2**32 - 1)),
    (
        ["linux", "timeOffsets", "monotonic", "secs"],
        _with_time,
        st.one_of(st.integers(2**33, 2**63 - 1), st.integers(-(2**63), -(2**33))),
    ),
]


def overflowing_number(cfg, draw, ctx):
    parts, setup, values = draw(st.sampled_from(NUMBERS))
    if setup:
        setup(cfg)
    set_at(cfg, parts, draw(values))
    return json_path(parts), False


def cgroup_newline(cfg, draw, ctx):
    # The kernel refuses such a name, after create made the parents; the error took two lines.
    cfg["linux"]["cgroupsPath"] = ctx["cgroup_parent"] + "/" + draw(SEGMENT) + "\n" + draw(SEGMENT)
    return "linux.cgroupsPath", False


def mount_data(cfg, draw, ctx):
    # Filesystem options past one page: mount(2) failed with a bare EINVAL.
    page = os.sysconf("SC_PAGE_SIZE")
    cfg["mounts"][1]["options"].append("x=" + "o" * draw(st.integers(page, 3 * page)))
    return "mounts[1].options", False


MUTATIONS = [
    poisoned_string,
    dotdot,
    long_path,
    fine_long_cwd,
    escaping_sysctl,
    hostname,
    exec_size,
    id_maps,
    overflowing_number,
    cgroup_newline,
    mount_data,
]


# --- what the host holds of one container ----------------------------------------------------


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def leftovers(pyrunc, bundle, cid, run, mounts_before):
    """Everything of this case still on the host."""
    found = []
    if os.path.isdir(pyrunc.root) and cid in os.listdir(pyrunc.root):
        found.append(f"state {pyrunc.root}/{cid}")
    found += [
        f"cgroup {d}"
        for d in glob.glob(f"/sys/fs/cgroup/*/{PREFIX}{run}*") + glob.glob(f"/sys/fs/cgroup/{PREFIX}{run}*")
    ]
    # Other tests may mount on the host meanwhile: only mounts in our bundle or state count.
    found += [
        f"mount {m}" for m in host_mounts() - mounts_before if m.startswith((bundle.path, pyrunc.root)) or cid in m
    ]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if cid.encode() in f.read():
                    found.append(f"process {pid}")
        except OSError:
            pass  # gone meanwhile
    return found


def clean_up(pyrunc, cid, run):
    """Whatever a failed case left: only this case's container and cgroups."""
    if os.path.isdir(pyrunc.root) and cid in os.listdir(pyrunc.root):
        pyrunc("delete", "--force", cid)
    dirs = glob.glob(f"/sys/fs/cgroup/*/{PREFIX}{run}*") + glob.glob(f"/sys/fs/cgroup/{PREFIX}{run}*")
    for top in dirs:
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_hostile_config_is_refused_or_created_and_leaves_nothing(pyrunc, bundle, data):
    run = uuid.uuid4().hex[:8]  # this example's id and cgroup parent
    cid = f"{PREFIX}{run}"
    ctx = {"cgroup_parent": f"/{PREFIX}{run}"}
    cfg = copy.deepcopy(bundle.config)  # the fixture's, untouched by earlier examples
    cfg["linux"]["cgroupsPath"] = f"{ctx['cgroup_parent']}/c"
    mutation = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    path, fine = mutation(cfg, data.draw, ctx)
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        json.dump(cfg, f)
    mounts_before = host_mounts()
    try:
        r = pyrunc("create", "--bundle", bundle.path, cid)
        if fine:
            assert r.code == 0, (mutation.__name__, path, r)
            d = pyrunc("delete", "--force", cid)
            assert d.code == 0, d
        else:
            assert r.code == 1, (mutation.__name__, path, r)
            lines = r.err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("pyrunc: invalid config.json: "), r
            if path not in r.err:  # not the first problem: `validate` lists them all
                v = pyrunc("validate", "--bundle", bundle.path)
                assert path in v.out + v.err, (mutation.__name__, path, v)
        left = leftovers(pyrunc, bundle, cid, run, mounts_before)
    finally:
        clean_up(pyrunc, cid, run)
    assert left == [], (mutation.__name__, path, left)
