"""Hypothesis strategies for config.json: valid configs (runc's default config with drawn
process fields, mounts and namespaces) and the values they are made of."""

from hypothesis import strategies as st

from pyrunc.config.default import default_spec
from pyrunc.config.semantic import CAPABILITIES, RLIMITS

TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_categories=("Cs",)), max_size=16)
U32 = st.integers(0, 2**32 - 2)  # 2**32 - 1 is (uid_t)-1, no id
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)
SEGMENT = st.from_regex(r"[a-z0-9_-]{1,8}", fullmatch=True).filter(lambda s: s not in (".", ".."))
ABS_PATH = st.lists(SEGMENT, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
HOSTNAME = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
PLAIN_OPTIONS = [
    "async",
    "atime",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nosuid",
    "nosymfollow",
    "relatime",
    "ro",
    "rw",
    "strictatime",
    "suid",
    "sync",
    "mode=755",
]
PROPAGATION = ["private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable"]


@st.composite
def mounts(draw):
    options = draw(st.lists(st.sampled_from(PLAIN_OPTIONS), max_size=5))
    mount = {"destination": draw(ABS_PATH), "type": draw(st.sampled_from(["tmpfs", "none", "proc"]))}
    if draw(st.booleans()):
        options += [draw(st.sampled_from(["bind", "rbind"])), draw(st.sampled_from(PROPAGATION))]
        mount["source"] = draw(ABS_PATH)
    if options:
        mount["options"] = options
    return mount


@st.composite
def rlimits(draw):
    types = draw(st.lists(st.sampled_from(sorted(RLIMITS)), unique=True, max_size=4))
    result = []
    for t in types:
        top = 1 << 20 if t == "RLIMIT_NOFILE" else 2**64 - 1  # NOFILE stops at fs.nr_open (default)
        soft, hard = sorted(draw(st.lists(st.integers(0, top), min_size=2, max_size=2)))
        result.append({"type": t, "soft": soft, "hard": hard})
    return result


def id_maps(draw):
    size = draw(st.integers(1, 65536))
    return [{"containerID": 0, "hostID": draw(st.integers(0, 2**32 - 1 - size)), "size": size}]


@st.composite
def valid_configs(draw):
    doc = default_spec(rootless=draw(st.booleans()))
    proc = doc["process"]
    proc["terminal"] = draw(st.booleans())
    proc["args"] = [draw(TEXT.filter(bool))] + draw(st.lists(TEXT, max_size=4))  # argv[0] non-empty
    proc["env"] = [f"{n}={v}" for n, v in draw(st.lists(st.tuples(NAME, TEXT), max_size=4))]
    proc["cwd"] = draw(st.one_of(st.just("/"), ABS_PATH))
    proc["user"] = {"uid": draw(U32), "gid": draw(U32), "additionalGids": draw(st.lists(U32, max_size=3))}
    if draw(st.booleans()):
        proc["user"]["umask"] = draw(st.integers(0, 0o7777))
    proc["capabilities"] = {
        k: draw(st.lists(st.sampled_from(CAPABILITIES), unique=True, max_size=6))
        for k in ("bounding", "effective", "inheritable", "permitted", "ambient")
    }
    proc["rlimits"] = draw(rlimits())
    if draw(st.booleans()):
        proc["oomScoreAdj"] = draw(st.integers(-1000, 1000))
    doc["mounts"] += draw(st.lists(mounts(), max_size=3))
    _draw_namespaces(draw, doc)
    return doc


def _draw_namespaces(draw, doc):
    linux = doc["linux"]
    others = draw(st.lists(st.sampled_from(["pid", "network", "ipc", "uts", "cgroup", "time", "user"]), unique=True))
    types = draw(st.permutations(["mount"] + others))
    linux["namespaces"] = [{"type": t} for t in types]
    linux.pop("uidMappings", None)
    linux.pop("gidMappings", None)
    if "user" in types:
        linux["uidMappings"], linux["gidMappings"] = id_maps(draw), id_maps(draw)
    if "uts" in types:
        doc["hostname"] = draw(HOSTNAME)
    else:
        del doc["hostname"]
    if "time" in types and draw(st.booleans()):
        linux["timeOffsets"] = {"monotonic": {"secs": draw(st.integers(0, 2**32))}}
    if "network" in types and draw(st.booleans()):
        linux["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": str(draw(st.integers(0, 65535)))}
