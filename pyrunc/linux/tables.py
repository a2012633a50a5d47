"""Kernel names and numbers shared by config validation and the mechanics.

Kept free of imports so that `validate` can use them without loading the kernel seam.
"""

# Index == capability number (linux/capability.h); CAP_CHECKPOINT_RESTORE is 40.
CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)

# process.capabilities' sets, in the order the spec lists them.
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

# resource numbers of setrlimit(2)
RLIMITS = {
    "RLIMIT_CPU": 0,
    "RLIMIT_FSIZE": 1,
    "RLIMIT_DATA": 2,
    "RLIMIT_STACK": 3,
    "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6,
    "RLIMIT_NOFILE": 7,
    "RLIMIT_MEMLOCK": 8,
    "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11,
    "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15,
}

# A namespace's type in the config -> its name under /proc/<pid>/ns (namespaces(7)).
PROC_NS_NAMES = {
    "mount": "mnt",
    "network": "net",
    "pid": "pid",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}

# The propagation a mount option or linux.rootfsPropagation names; "r" makes it recursive.
MOUNT_PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable")

# Mount options of id-mapped mounts, which pyrunc refuses.
IDMAP_MOUNT_OPTIONS = ("idmap", "ridmap")

# Seccomp actions whose return value carries data (an errno) in its low 16 bits.
SECCOMP_TAKES_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")


def sysctl_name(key: str) -> str:
    """A linux.sysctl key in sysctl(8)'s dotted form.  sysctl(8) takes two spellings:
    net.ipv4.conf.eth0/1.forwarding, where "/" is a literal dot, and
    net/ipv4/conf/eth0.1/forwarding, where "/" separates and "." is literal."""
    slash, dot = key.find("/"), key.find(".")
    if slash != -1 and (dot == -1 or slash < dot):
        return key.translate(str.maketrans("/.", "./"))
    return key


def sysctl_path(key: str) -> str:
    """The file under /proc/sys that a linux.sysctl key names."""
    return "/proc/sys/" + sysctl_name(key).translate(str.maketrans("./", "/."))
