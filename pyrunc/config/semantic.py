"""Checks of config.json that the JSON Schema cannot express.

Run only on a document that passed the schema, so types and enums are already
right; each check is a small generator of (path parts, message) and looks only at
the part of the document it is named after. The rules come from the runtime-spec's
MUST statements, from what the kernel would reject later with a vaguer error, and
from what runc refuses (written here from its documented behaviour).
"""

import os
import re

from pyrunc.config.schema import format_problems
from pyrunc.linux.tables import CAPABILITIES, RLIMITS

CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


PROPAGATION_OPTIONS = frozenset((
    "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable",
))

# sysctls the ipc namespace isolates (ipc_namespaces(7)); others under kernel.* are global.
IPC_SYSCTLS = frozenset((
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
))

PROC_NS_NAMES = {"mount": "mnt", "network": "net", "pid": "pid", "ipc": "ipc", "uts": "uts",
                 "user": "user", "cgroup": "cgroup", "time": "time"}

TIME_CLOCKS = frozenset(("boottime", "monotonic"))
HOST_NAME_MAX = 64      # bytes; sethostname/setdomainname reject longer names
MAX_ID_MAP_LINES = 340  # uid_map/gid_map line limit since Linux 4.15
ID_LIMIT = 1 << 32
IFNAMSIZ = 16           # interface names are at most 15 bytes plus NUL

_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?\Z")
_CPU_LIST = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*\Z")


def semantic_errors(doc, bundle_dir):
    """Every semantic problem of a schema-valid config.json, as `path: message` lines."""
    found = []
    for check in CHECKS:
        found.extend(check(doc, bundle_dir))
    return format_problems(found)


# -- helpers -----------------------------------------------------------------

def _linux(doc):
    return doc.get("linux") or {}


def _process(doc):
    return doc.get("process") or {}


def _namespaces(doc):
    """{type: (index, entry)} of the first entry of each type."""
    found = {}
    for i, ns in enumerate(_linux(doc).get("namespaces") or ()):
        found.setdefault(ns["type"], (i, ns))
    return found


def _has_ns(doc, nstype):
    return nstype in _namespaces(doc)


def _new_ns(doc, nstype):
    entry = _namespaces(doc).get(nstype)
    return entry is not None and not entry[1].get("path")


def _has_dotdot(path):
    return ".." in path.split("/")


def _is_abs(path):
    return path.startswith("/")


def _abs_path_problem(path):
    """Why `path` is not a usable absolute path in the container, or None."""
    if not _is_abs(path):
        return f"{path!r} must be an absolute path"
    if _has_dotdot(path):
        return f"{path!r} must not contain '..' components"
    return None


def _same_file(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except (OSError, ValueError):
        return False  # joining will fail later, with the real error
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _shares_host_ns(doc, nstype):
    """True when the container would use the runtime's namespace: none listed, or a path to it."""
    entry = _namespaces(doc).get(nstype)
    if entry is None:
        return True
    path = entry[1].get("path")
    return bool(path) and _same_file(path, f"/proc/self/ns/{PROC_NS_NAMES[nstype]}")


def _env_problems(env, parts):
    for i, entry in enumerate(env or ()):
        name, sep, _ = entry.partition("=")
        if not sep:
            yield parts + [i], f"{entry!r} must have the form NAME=value"
        elif not name:
            yield parts + [i], f"{entry!r} has an empty variable name"


def _cpu_list_problem(text):
    if text == "":
        return None
    if not _CPU_LIST.match(text):
        return f"{text!r} is not a list like '0-3,7'"
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if hi and int(hi) < int(lo):
            return f"{text!r}: range {part!r} is reversed"
    return None


# -- version and root --------------------------------------------------------

def check_oci_version(doc, bundle):
    version = doc["ociVersion"]
    match = _SEMVER.match(version)
    if not match:
        yield ["ociVersion"], f"{version!r} is not a SemVer 2.0.0 version"
    elif match.group(1) != "1":
        yield ["ociVersion"], f"{version!r} is not supported: only runtime-spec 1.x configs are"


def check_root(doc, bundle):
    root = doc.get("root")
    if root is None:
        yield ["root"], "required on Linux: the container's root filesystem"
        return
    path = root["path"]
    if not path:
        yield ["root", "path"], "must not be empty"
        return
    full = os.path.join(bundle, path)  # an absolute path replaces the bundle
    if not os.path.exists(full):
        yield ["root", "path"], f"{full} does not exist"
    elif not os.path.isdir(full):
        yield ["root", "path"], f"{full} is not a directory"


# -- process -----------------------------------------------------------------

def check_process(doc, bundle):
    process = doc.get("process")
    if process is None:
        yield ["process"], "required: it names the program the container runs"
        return
    args = process.get("args")
    if not args:
        yield ["process", "args"], "must have at least one entry, the program to run"
    elif not args[0]:
        yield ["process", "args", 0], "the program to run must not be empty"
    cwd = process["cwd"]
    if not _is_abs(cwd):
        yield ["process", "cwd"], f"{cwd!r} must be an absolute path"
    yield from _env_problems(process.get("env"), ["process", "env"])


def check_user(doc, bundle):
    umask = (_process(doc).get("user") or {}).get("umask")
    if umask is not None and umask > 0o7777:
        yield ["process", "user", "umask"], f"{umask} (0o{umask:o}) is above the maximum 0o7777"


def check_rlimits(doc, bundle):
    seen = {}
    for i, rlimit in enumerate(_process(doc).get("rlimits") or ()):
        parts = ["process", "rlimits", i]
        kind = rlimit["type"]
        if kind not in RLIMITS:
            yield parts + ["type"], f"{kind!r} is not a Linux resource limit (getrlimit(2))"
        if kind in seen:
            yield parts + ["type"], f"duplicate {kind!r}, already set by process.rlimits[{seen[kind]}]"
        seen.setdefault(kind, i)
        if rlimit["soft"] > rlimit["hard"]:
            yield parts, f"soft limit {rlimit['soft']} is above hard limit {rlimit['hard']}"


def check_capabilities(doc, bundle):
    caps = _process(doc).get("capabilities") or {}
    known = set(CAPABILITIES)
    for name in CAPABILITY_SETS:
        for i, cap in enumerate(caps.get(name) or ()):
            if cap not in known:
                yield ["process", "capabilities", name, i], f"unknown capability {cap!r}"


def check_oom_score_adj(doc, bundle):
    adj = _process(doc).get("oomScoreAdj")
    if adj is not None and not -1000 <= adj <= 1000:
        yield ["process", "oomScoreAdj"], f"{adj} is outside the kernel's range -1000..1000"


def check_io_priority(doc, bundle):
    prio = _process(doc).get("ioPriority")
    if prio is None:
        return
    if "priority" not in prio:
        yield ["process", "ioPriority"], "'priority' is required"
    elif not 0 <= prio["priority"] <= 7:
        yield ["process", "ioPriority", "priority"], f"{prio['priority']} is outside 0..7"


def check_scheduler(doc, bundle):
    sched = _process(doc).get("scheduler")
    if sched is None:
        return
    parts = ["process", "scheduler"]
    policy, nice, prio = sched["policy"], sched.get("nice", 0), sched.get("priority", 0)
    if not -20 <= nice <= 19:
        yield parts + ["nice"], f"{nice} is outside -20..19"
    if policy in ("SCHED_FIFO", "SCHED_RR"):
        if not 1 <= prio <= 99:
            yield parts + ["priority"], f"{prio} is outside 1..99, the range of {policy}"
    elif prio != 0:
        yield parts + ["priority"], f"must be 0 for {policy}; only SCHED_FIFO and SCHED_RR use it"
    if policy == "SCHED_DEADLINE":
        runtime, deadline, period = (sched.get(k, 0) for k in ("runtime", "deadline", "period"))
        if not runtime <= deadline or (period and deadline > period):
            yield parts, "SCHED_DEADLINE needs runtime <= deadline <= period"
    elif any(sched.get(k) for k in ("runtime", "deadline", "period")):
        yield parts, f"runtime, deadline and period apply only to SCHED_DEADLINE, not {policy}"


def check_exec_cpu_affinity(doc, bundle):
    affinity = _process(doc).get("execCPUAffinity") or {}
    for key in ("initial", "final"):
        problem = _cpu_list_problem(affinity.get(key, ""))
        if problem:
            yield ["process", "execCPUAffinity", key], problem


# -- strings anywhere ---------------------------------------------------------

def check_nul_bytes(doc, bundle):
    """No string can carry a NUL: the kernel would silently cut it there."""
    def walk(value, parts):
        if isinstance(value, str):
            if "\0" in value:
                yield parts, "contains a NUL byte"
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\0" in key:
                    yield parts, f"key {key!r} contains a NUL byte"
                yield from walk(item, parts + [key])
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from walk(item, parts + [i])
    yield from walk(doc, [])


def check_annotations(doc, bundle):
    # The schema's patternProperties ".{1,}" skips the empty key (and keys of only
    # newlines), so neither the key nor its value is checked there.
    for key, value in (doc.get("annotations") or {}).items():
        if not key:
            yield ["annotations"], "keys must not be empty"
        if not isinstance(value, str):
            yield ["annotations", key], f"{value!r} is not a string"


# -- hostname ----------------------------------------------------------------

def check_hostname(doc, bundle):
    for field in ("hostname", "domainname"):
        name = doc.get(field)
        if not name:
            continue
        if len(name.encode()) > HOST_NAME_MAX:
            yield [field], f"is longer than {HOST_NAME_MAX} bytes"
        # A joined namespace is allowed (as runc does), as long as it is not the host's.
        if _shares_host_ns(doc, "uts"):
            yield [field], "needs its own uts namespace; add {\"type\": \"uts\"} to linux.namespaces"


# -- mounts ------------------------------------------------------------------

def check_mount_namespace(doc, bundle):
    # The init always binds the rootfs, mounts and pivots: in the host's (or a joined)
    # mount namespace that would rearrange someone else's mount tree.
    entry = _namespaces(doc).get("mount")
    if entry is None:
        yield ["linux", "namespaces"], "a new mount namespace is required: add {\"type\": \"mount\"}"
    elif entry[1].get("path"):
        yield ["linux", "namespaces", entry[0], "path"], \
            "joining a mount namespace is not supported: the root is pivoted inside it"


def check_mounts(doc, bundle):
    for i, mount in enumerate(doc.get("mounts") or ()):
        yield from _mount_problems(doc, mount, ["mounts", i])


def _mount_problems(doc, mount, parts):
    problem = _abs_path_problem(mount["destination"])
    if problem:
        yield parts + ["destination"], problem
    options = mount.get("options") or ()
    if ("bind" in options or "rbind" in options) and not mount.get("source"):
        yield parts + ["source"], "a bind mount needs a source"
    propagation = sorted(set(options) & PROPAGATION_OPTIONS)
    if len(propagation) > 1:
        yield parts + ["options"], f"conflicting propagation options {propagation}"
    has_uid, has_gid = "uidMappings" in mount, "gidMappings" in mount
    if has_uid != has_gid:
        yield parts, "uidMappings and gidMappings must be given together"
    for key in ("uidMappings", "gidMappings"):
        yield from _mapping_problems(mount.get(key) or (), parts + [key])
    idmapped = "idmap" in options or "ridmap" in options
    if idmapped and not has_uid and not _has_ns(doc, "user"):
        yield parts + ["options"], "idmap needs uidMappings/gidMappings or a user namespace"


def check_masked_and_readonly_paths(doc, bundle):
    linux = _linux(doc)
    for key in ("maskedPaths", "readonlyPaths"):
        for i, path in enumerate(linux.get(key) or ()):
            problem = _abs_path_problem(path)
            if problem:
                yield ["linux", key, i], problem


# -- namespaces, id mappings, time -------------------------------------------

def check_namespaces(doc, bundle):
    first = {}
    for i, ns in enumerate(_linux(doc).get("namespaces") or ()):
        parts = ["linux", "namespaces", i]
        kind = ns["type"]
        if kind in first:
            yield parts + ["type"], f"duplicate namespace type {kind!r}, also linux.namespaces[{first[kind]}]"
        first.setdefault(kind, i)
        path = ns.get("path")
        if path is not None and not _is_abs(path):
            yield parts + ["path"], f"{path!r} must be an absolute path"


def check_user_namespace(doc, bundle):
    linux = _linux(doc)
    entry = _namespaces(doc).get("user")
    for key in ("uidMappings", "gidMappings"):
        mappings = linux.get(key)
        if entry is None:
            if mappings is not None:
                yield ["linux", key], "given without a user namespace; add {\"type\": \"user\"} to linux.namespaces"
        elif entry[1].get("path"):
            if mappings:
                yield ["linux", key], "cannot be applied to a joined user namespace (it has its own mappings)"
        elif not mappings:
            yield ["linux", key], "a new user namespace needs at least one mapping"
        yield from _mapping_problems(mappings or (), ["linux", key])


def _mapping_problems(mappings, parts):
    if len(mappings) > MAX_ID_MAP_LINES:
        yield parts, f"{len(mappings)} entries; the kernel accepts at most {MAX_ID_MAP_LINES}"
    ranges = []
    for i, m in enumerate(mappings):
        if m["size"] == 0:
            yield parts + [i, "size"], "must be at least 1"
            continue
        for key in ("containerID", "hostID"):
            if m[key] + m["size"] > ID_LIMIT:
                yield parts + [i], f"{key} {m[key]} + size {m['size']} goes past the last id {ID_LIMIT - 1}"
        ranges.append((i, m))
    yield from _overlaps(ranges, parts)


def _overlaps(ranges, parts):
    for key in ("containerID", "hostID"):
        spans = sorted((m[key], m[key] + m["size"], i) for i, m in ranges)
        for (_, end, i), (start, _, j) in zip(spans, spans[1:]):
            if start < end:
                yield parts + [j], f"{key} range overlaps entry [{i}]"


def check_time_namespace(doc, bundle):
    offsets = _linux(doc).get("timeOffsets")
    if offsets is None:
        return
    if not _new_ns(doc, "time"):
        yield ["linux", "timeOffsets"], "need a new time namespace; add {\"type\": \"time\"} without a path"
    for clock, offset in offsets.items():
        if clock not in TIME_CLOCKS:
            yield ["linux", "timeOffsets", clock], "only boottime and monotonic clocks have offsets"
        elif offset.get("nanosecs", 0) >= 1_000_000_000:
            yield ["linux", "timeOffsets", clock, "nanosecs"], "must be below 1000000000"


# -- sysctl ------------------------------------------------------------------

def _sysctl_name(key):
    # sysctl(8) accepts "net/ipv4/ip_forward" too: then "/" separates and "." is literal.
    slash, dot = key.find("/"), key.find(".")
    if slash != -1 and (dot == -1 or slash < dot):
        return key.translate(str.maketrans("/.", "./"))
    return key


def check_sysctl(doc, bundle):
    for key in _linux(doc).get("sysctl") or {}:
        problem = _sysctl_problem(doc, _sysctl_name(key))
        if problem:
            yield ["linux", "sysctl", key], problem


def _sysctl_problem(doc, name):
    if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
        if _shares_host_ns(doc, "ipc"):
            return "needs its own ipc namespace; it would change the host's"
        return None
    if name.startswith("net."):
        if _shares_host_ns(doc, "network"):
            return "needs its own network namespace; it would change the host's"
        return None
    if name in ("kernel.hostname", "kernel.domainname"):
        if _shares_host_ns(doc, "uts"):
            return "needs its own uts namespace; it would change the host's"
        return "set the 'hostname' field instead" if name == "kernel.hostname" else None
    return "not isolated by any namespace the container can have; it would change the host"


# -- devices -----------------------------------------------------------------

def check_devices(doc, bundle):
    seen = {}
    for i, dev in enumerate(_linux(doc).get("devices") or ()):
        parts = ["linux", "devices", i]
        problem = _abs_path_problem(dev["path"])
        if problem:
            yield parts + ["path"], problem
        path = os.path.normpath(dev["path"])
        if path in seen:
            yield parts + ["path"], f"duplicate device path, also linux.devices[{seen[path]}]"
        seen.setdefault(path, i)
        if dev["type"] != "p":
            for key in ("major", "minor"):
                if key not in dev:
                    yield parts, f"{key!r} is required for device type {dev['type']!r}"


# -- hooks, cgroups, resources -------------------------------------------------

def check_hooks(doc, bundle):
    for stage, hooks in (doc.get("hooks") or {}).items():
        for i, hook in enumerate(hooks or ()):
            parts = ["hooks", stage, i]
            if not _is_abs(hook["path"]):
                yield parts + ["path"], f"{hook['path']!r} must be an absolute path"
            yield from _env_problems(hook.get("env"), parts + ["env"])


def check_cgroups_path(doc, bundle):
    path = _linux(doc).get("cgroupsPath")
    if path and _has_dotdot(path):
        yield ["linux", "cgroupsPath"], f"{path!r} must not contain '..' components"


def check_resources(doc, bundle):
    res = _linux(doc).get("resources") or {}
    parts = ["linux", "resources"]
    yield from _memory_problems(res.get("memory") or {}, parts + ["memory"])
    yield from _cpu_problems(res.get("cpu") or {}, parts + ["cpu"])
    yield from _device_rule_problems(res.get("devices") or (), parts + ["devices"])
    yield from _unified_problems(res.get("unified") or {}, parts + ["unified"])
    for i, wd in enumerate((res.get("blockIO") or {}).get("weightDevice") or ()):
        if "weight" not in wd and "leafWeight" not in wd:
            yield parts + ["blockIO", "weightDevice", i], "needs weight or leafWeight"
    for name, rdma in (res.get("rdma") or {}).items():
        if "hcaHandles" not in rdma and "hcaObjects" not in rdma:
            yield parts + ["rdma", name], "needs hcaHandles or hcaObjects"


def _memory_problems(mem, parts):
    limit, swap = mem.get("limit", 0), mem.get("swap", 0)
    if limit > 0 and swap > 0 and swap < limit:
        yield parts + ["swap"], f"memory+swap {swap} is below the memory limit {limit}"
    swappiness = mem.get("swappiness")
    if swappiness is not None and swappiness > 100:
        yield parts + ["swappiness"], f"{swappiness} is outside 0..100"


def _cpu_problems(cpu, parts):
    for key in ("cpus", "mems"):
        problem = _cpu_list_problem(cpu.get(key, ""))
        if problem:
            yield parts + [key], problem
    quota, burst = cpu.get("quota", 0), cpu.get("burst")
    if burst is not None and quota > 0 and burst > quota:
        yield parts + ["burst"], f"{burst} is above the quota {quota}"
    if cpu.get("idle", 0) not in (0, 1):
        yield parts + ["idle"], "must be 0 or 1"


def _device_rule_problems(rules, parts):
    for i, rule in enumerate(rules):
        if rule.get("type", "a") not in ("a", "b", "c"):
            yield parts + [i, "type"], f"{rule['type']!r} is not one of 'a', 'b', 'c'"
        access = rule.get("access", "")
        if set(access) - set("rwm"):
            yield parts + [i, "access"], f"{access!r} may only contain r, w and m"


def _unified_problems(unified, parts):
    # Keys become file names in the cgroup directory: a "/" would escape it.
    for key in unified:
        if "/" in key or key.startswith("."):
            yield parts + [key], "must be a plain cgroup file name like 'memory.max'"
        elif "." not in key:
            yield parts + [key], "must have the form <controller>.<file>"


# -- other linux fields ----------------------------------------------------------

def check_personality(doc, bundle):
    personality = _linux(doc).get("personality")
    if personality is None:
        return
    if "domain" not in personality:
        yield ["linux", "personality"], "'domain' is required"
    if personality.get("flags"):
        yield ["linux", "personality", "flags"], "no personality flags are supported"


def check_seccomp(doc, bundle):
    seccomp = _linux(doc).get("seccomp")
    if seccomp is None:
        return
    parts = ["linux", "seccomp"]
    if seccomp["defaultAction"] == "SCMP_ACT_NOTIFY":
        yield parts + ["defaultAction"], "SCMP_ACT_NOTIFY cannot be the default action"
    if "defaultErrnoRet" in seccomp and not _takes_errno(seccomp["defaultAction"]):
        yield parts + ["defaultErrnoRet"], f"{seccomp['defaultAction']} does not return an errno"
    if seccomp.get("listenerMetadata") and not seccomp.get("listenerPath"):
        yield parts + ["listenerMetadata"], "must not be set without listenerPath"
    for i, rule in enumerate(seccomp.get("syscalls") or ()):
        yield from _syscall_problems(seccomp, rule, parts + ["syscalls", i])


def _takes_errno(action):
    return action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")


def _syscall_problems(seccomp, rule, parts):
    if "errnoRet" in rule and not _takes_errno(rule["action"]):
        yield parts + ["errnoRet"], f"{rule['action']} does not return an errno"
    if rule["action"] == "SCMP_ACT_NOTIFY" and not seccomp.get("listenerPath"):
        yield parts + ["action"], "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"
    for j, arg in enumerate(rule.get("args") or ()):
        if arg["index"] > 5:
            yield parts + ["args", j, "index"], f"{arg['index']} is past the sixth argument (5)"


def check_net_devices(doc, bundle):
    devices = _linux(doc).get("netDevices") or {}
    if devices and _shares_host_ns(doc, "network"):
        yield ["linux", "netDevices"], "need a network namespace other than the host's to move devices into"
    for name, dev in devices.items():
        for parts, ifname in ((["linux", "netDevices", name], name),
                              (["linux", "netDevices", name, "name"], dev.get("name"))):
            problem = _ifname_problem(ifname)
            if problem:
                yield parts, problem


def _ifname_problem(name):
    if name is None:
        return None
    if not name or name in (".", ".."):
        return f"{name!r} is not a valid interface name"
    if len(name.encode()) >= IFNAMSIZ:
        return f"{name!r} is longer than {IFNAMSIZ - 1} bytes"
    if any(c in name for c in "/:") or any(c.isspace() for c in name):
        return f"{name!r} must not contain '/', ':' or whitespace"
    return None


def check_intel_rdt(doc, bundle):
    rdt = _linux(doc).get("intelRdt")
    if rdt is None:
        return
    parts = ["linux", "intelRdt"]
    clos = rdt.get("closID")
    # closID names a directory under /sys/fs/resctrl: "/" is the default group.
    if clos is not None and clos != "/" and ("/" in clos or clos in ("", ".", "..")):
        yield parts + ["closID"], f"{clos!r} must be '/' or a plain directory name"
    for i, line in enumerate(rdt.get("schemata") or ()):
        if "\n" in line:
            yield parts + ["schemata", i], "must not contain newlines"
    if "\n" in rdt.get("l3CacheSchema", ""):
        yield parts + ["l3CacheSchema"], "must not contain newlines"


CHECKS = (
    check_oci_version, check_root, check_process, check_user, check_rlimits,
    check_capabilities, check_oom_score_adj, check_io_priority, check_scheduler,
    check_exec_cpu_affinity, check_nul_bytes, check_annotations, check_hostname,
    check_mount_namespace, check_mounts, check_masked_and_readonly_paths,
    check_namespaces, check_user_namespace, check_time_namespace, check_sysctl,
    check_devices, check_hooks, check_cgroups_path, check_resources, check_personality,
    check_seccomp, check_net_devices, check_intel_rdt,
)
