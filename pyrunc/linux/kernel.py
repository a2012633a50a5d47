"""The one seam between pyrunc and the kernel: the `Kernel` class.

Every privileged or namespace-changing call the Linux mechanics make is a method of a
`Kernel` object that the command makes once (cli.commands) and passes down, as youki
passes its `Syscall` trait: the real one, the step trace's recording wrapper
(trace.RecordingKernel), or a test double (tests/unit/fakekernel.py).  Nothing here
reaches libc outside the class, so no call can go around the seam.  Each method raises
KernelError naming the verb and its object on failure.  The constants stay module-level.
"""

import errno
import os
import sys

from pyrunc.errors import KernelError
from pyrunc.linux import ffi
from pyrunc.linux.pidfds import Pidfds

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    Path = str | bytes | os.PathLike[str] | os.PathLike[bytes]

# Syscall numbers glibc has no wrapper for (or only a recent one), per architecture.
_NR = {
    "x86_64": dict(
        pivot_root=155,
        capset=126,
        keyctl=250,
        ioprio_set=251,
        sched_setattr=314,
        open_tree=428,
        move_mount=429,
        clone3=435,
        close_range=436,
        openat2=437,
        mount_setattr=442,
        seccomp=317,
        bpf=321,
        set_mempolicy=238,
    ),
    "aarch64": dict(
        pivot_root=41,
        capset=91,
        keyctl=219,
        ioprio_set=30,
        sched_setattr=274,
        open_tree=428,
        move_mount=429,
        clone3=435,
        close_range=436,
        openat2=437,
        mount_setattr=442,
        seccomp=277,
        bpf=280,
        set_mempolicy=237,
    ),
}[os.uname().machine]

# Flags used by callers (values from the kernel's uapi headers).
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_INTO_CGROUP = 0x200000000  # clone3 only (Linux 5.7): born in the cgroup of clone_args.cgroup
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

# mount_setattr(2) attributes
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_FDCWD = -100

# openat2(2) resolve flags
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 4

# netdevice(7): an interface's flags through any socket of its network namespace
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
_IFREQ_SIZE = 40  # struct ifreq: the name (IFNAMSIZ, 16 bytes), then a union led by the flags (a short)


OPEN_TREE_CLONE = 1
SECCOMP_SET_MODE_FILTER = 1
_CAP_V3 = 0x20080522

# bpf(2): the cgroup v2 device program (cgroups/devices_bpf.py).  The attr layouts are the
# leading fields of the kernel's union bpf_attr and struct bpf_prog_info
# (include/uapi/linux/bpf.h): a shorter attr is accepted, the kernel reads the rest as zero.
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
BPF_F_ALLOW_MULTI = 2
BPF_OBJ_NAME_LEN = 16


def _check(ret: int, what: str) -> int:
    if ret < 0:
        raise KernelError(ffi.get_errno(), what)
    return ret


def _b(path: "Path | None") -> bytes | None:
    return os.fsencode(path) if path is not None else None


# --- the structures the calls pass --------------------------------------------------
# Those most commands never pass are ffi.LazyStructure: their classes are made on first use.


class _MountAttr(ffi.Structure):
    _fields_ = [
        ("attr_set", ffi.c_uint64),
        ("attr_clr", ffi.c_uint64),
        ("propagation", ffi.c_uint64),
        ("userns_fd", ffi.c_uint64),
    ]


class _OpenHow(ffi.Structure):
    _fields_ = [("flags", ffi.c_uint64), ("mode", ffi.c_uint64), ("resolve", ffi.c_uint64)]


# struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2, 88 bytes).
_CloneArgs = ffi.LazyStructure(
    "CloneArgs",
    lambda: [
        (name, ffi.c_uint64)
        for name in (
            "flags",
            "pidfd",
            "child_tid",
            "parent_tid",
            "exit_signal",
            "stack",
            "stack_size",
            "tls",
            "set_tid",
            "set_tid_size",
            "cgroup",
        )
    ],
)


class _CapHeader(ffi.Structure):
    _fields_ = [("version", ffi.c_uint32), ("pid", ffi.c_int)]


class _CapData(ffi.Structure):
    _fields_ = [("effective", ffi.c_uint32), ("permitted", ffi.c_uint32), ("inheritable", ffi.c_uint32)]


_SchedAttr = ffi.LazyStructure(
    "SchedAttr",
    lambda: [
        ("size", ffi.c_uint32),
        ("sched_policy", ffi.c_uint32),
        ("sched_flags", ffi.c_uint64),
        ("sched_nice", ffi.c_int32),
        ("sched_priority", ffi.c_uint32),
        ("sched_runtime", ffi.c_uint64),
        ("sched_deadline", ffi.c_uint64),
        ("sched_period", ffi.c_uint64),
    ],
)


class _Statfs(ffi.Structure):
    _fields_ = [("f_type", ffi.c_long), ("rest", ffi.c_long * 15)]


class _Rlimit(ffi.Structure):
    _fields_ = [("cur", ffi.c_uint64), ("max", ffi.c_uint64)]


_SockFprog = ffi.LazyStructure(
    "SockFprog",
    lambda: [("len", ffi.c_ushort), ("filter", ffi.c_void_p)],
)


_BpfProgLoadAttr = ffi.LazyStructure(
    "BpfProgLoadAttr",
    lambda: [
        ("prog_type", ffi.c_uint32),
        ("insn_cnt", ffi.c_uint32),
        ("insns", ffi.c_uint64),
        ("license", ffi.c_uint64),
        ("log_level", ffi.c_uint32),
        ("log_size", ffi.c_uint32),
        ("log_buf", ffi.c_uint64),
        ("kern_version", ffi.c_uint32),
        ("prog_flags", ffi.c_uint32),
        ("prog_name", ffi.c_char * BPF_OBJ_NAME_LEN),
        ("prog_ifindex", ffi.c_uint32),
        ("expected_attach_type", ffi.c_uint32),
    ],
)


_BpfAttachAttr = ffi.LazyStructure(
    "BpfAttachAttr",
    lambda: [
        ("target_fd", ffi.c_uint32),
        ("attach_bpf_fd", ffi.c_uint32),
        ("attach_type", ffi.c_uint32),
        ("attach_flags", ffi.c_uint32),
        ("replace_bpf_fd", ffi.c_uint32),
    ],
)


_BpfQueryAttr = ffi.LazyStructure(
    "BpfQueryAttr",
    lambda: [
        ("target_fd", ffi.c_uint32),
        ("attach_type", ffi.c_uint32),
        ("query_flags", ffi.c_uint32),
        ("attach_flags", ffi.c_uint32),
        ("prog_ids", ffi.c_uint64),
        ("prog_cnt", ffi.c_uint32),
    ],
)


_BpfGetIdAttr = ffi.LazyStructure(
    "BpfGetIdAttr",
    lambda: [("prog_id", ffi.c_uint32), ("next_id", ffi.c_uint32), ("open_flags", ffi.c_uint32)],
)


_BpfInfoAttr = ffi.LazyStructure(
    "BpfInfoAttr",
    lambda: [("bpf_fd", ffi.c_uint32), ("info_len", ffi.c_uint32), ("info", ffi.c_uint64)],
)


_BpfProgInfo = ffi.LazyStructure(
    "BpfProgInfo",
    lambda: [
        ("type", ffi.c_uint32),
        ("id", ffi.c_uint32),
        ("tag", ffi.c_uint8 * 8),
        ("jited_prog_len", ffi.c_uint32),
        ("xlated_prog_len", ffi.c_uint32),
        ("jited_prog_insns", ffi.c_uint64),
        ("xlated_prog_insns", ffi.c_uint64),
        ("load_time", ffi.c_uint64),
        ("created_by_uid", ffi.c_uint32),
        ("nr_map_ids", ffi.c_uint32),
        ("map_ids", ffi.c_uint64),
        ("name", ffi.c_char * BPF_OBJ_NAME_LEN),
    ],
)


class Kernel(Pidfds):
    """The real kernel (pidfd_open and pidfd_send_signal from pidfds.Pidfds, without ctypes).
    A double or a recording wrapper offers the same public methods;
    the step trace records each call of one by its method's name."""

    def __init__(self) -> None:
        self._libc = ffi.Libc()
        self._syscall = self._libc.syscall

    # --- processes ---------------------------------------------------------------------

    def fork(self) -> int:
        """clone(2) as fork: here so that the trace records each new process (in the parent)."""
        return os.fork()

    def fork_into_cgroup(self, cgroup_fd: int) -> int:
        """fork, the child born in the cgroup v2 directory `cgroup_fd` (clone3 with
        CLONE_INTO_CGROUP): it is never moved.  Around the syscall the interpreter's own
        fork hooks run, as os.fork runs them.  KernelError ENOSYS (no clone3), E2BIG (a
        clone_args without `cgroup`) or EINVAL (no CLONE_INTO_CGROUP) on kernels before
        5.7, which the caller meets with a plain fork."""
        args = _CloneArgs(flags=CLONE_INTO_CGROUP, exit_signal=17, cgroup=cgroup_fd)  # SIGCHLD
        clone3 = self._libc.with_gil("syscall")
        self._libc.with_gil("PyOS_BeforeFork")()
        pid = clone3(_NR["clone3"], ffi.byref(args), ffi.c_size_t(ffi.sizeof(args)))
        if pid == 0:
            self._libc.with_gil("PyOS_AfterFork_Child")()
        else:
            self._libc.with_gil("PyOS_AfterFork_Parent")()
        return _check(pid, "clone3 into cgroup")

    def set_name(self, name: str) -> None:
        """The calling thread's name (comm: what `pgrep`, `top` and /proc/PID/comm show);
        the kernel keeps 15 bytes."""
        _check(
            self._libc.prctl(
                ffi.c_int(PR_SET_NAME), os.fsencode(name)[:15], ffi.c_ulong(0), ffi.c_ulong(0), ffi.c_ulong(0)
            ),
            "prctl(PR_SET_NAME)",
        )

    def set_cmdline(self, args: "Sequence[str]") -> None:
        """Overwrite the process's argument strings in place, so that /proc/PID/cmdline (and
        ps, pgrep -f) read `args`.  PR_SET_MM, which could point the kernel at a new area,
        needs CAP_SYS_RESOURCE; the old area is the interpreter's command line, longer than
        `args` wherever they are its tail, and what does not fit is cut.  The rest of the
        area is zeroed: the kernel then shows the strings as they are."""
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end: proc(5) fields 48, 49
        text = b"".join(os.fsencode(a) + b"\0" for a in args)[: end - start - 1]
        fd = os.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)
        try:
            os.pwrite(fd, text.ljust(end - start, b"\0"), start)
        except OSError as e:
            raise KernelError(e.errno, "write /proc/self/mem (argument area)") from None
        finally:
            os.close(fd)

    # --- namespaces --------------------------------------------------------------------

    def unshare(self, flags: int) -> None:
        _check(self._libc.unshare(ffi.c_int(flags)), f"unshare({flags:#x})")

    def setns(self, fd: int, nstype: int, what: str = "setns") -> None:
        _check(self._libc.setns(ffi.c_int(fd), ffi.c_int(nstype)), what)

    def sethostname(self, name: str) -> None:
        b = name.encode()
        _check(self._libc.sethostname(b, ffi.c_size_t(len(b))), f"sethostname {name!r}")

    def setdomainname(self, name: str) -> None:
        b = name.encode()
        _check(self._libc.setdomainname(b, ffi.c_size_t(len(b))), f"setdomainname {name!r}")

    # --- mounts ------------------------------------------------------------------------

    def mount(
        self, source: "Path | None", target: "Path", fstype: str | None, flags: int = 0, data: str | None = None
    ) -> None:
        what = f"mount {source!r} on {target!s}" + (f" ({fstype})" if fstype else "")
        _check(self._libc.mount(_b(source), _b(target), _b(fstype), ffi.c_ulong(flags), _b(data)), what)

    def umount(self, target: "Path", flags: int = 0) -> None:
        _check(self._libc.umount2(_b(target), ffi.c_int(flags)), f"umount {target!s}")

    def pivot_root(self, new_root: "Path", put_old: "Path") -> None:
        _check(self._syscall(_NR["pivot_root"], _b(new_root), _b(put_old)), f"pivot_root {new_root!s}")

    def mount_setattr(
        self, dirfd: int, path: "Path | None", flags: int, attr_set: int, attr_clr: int = 0, propagation: int = 0
    ) -> None:
        attr = _MountAttr(attr_set, attr_clr, propagation, 0)
        _check(
            self._syscall(
                _NR["mount_setattr"],
                ffi.c_int(dirfd),
                _b(path),
                ffi.c_uint(flags),
                ffi.byref(attr),
                ffi.c_size_t(ffi.sizeof(attr)),
            ),
            f"mount_setattr {path or dirfd!s}",
        )

    def open_tree_clone(self, path: "Path") -> int:
        """A detached copy of the mount at `path` (open_tree(2) OPEN_TREE_CLONE); an O_PATH-like
        fd of `path` on it, close-on-exec."""
        return _check(
            self._syscall(_NR["open_tree"], ffi.c_int(AT_FDCWD), _b(path), ffi.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC)),
            f"clone the mount of {path!s}",
        )

    def openat2(self, dirfd: int, path: "Path", flags: int, resolve: int, mode: int = 0) -> int:
        """openat(2) with resolve flags; returns a new fd (always O_CLOEXEC)."""
        how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
        return _check(
            self._syscall(_NR["openat2"], ffi.c_int(dirfd), _b(path), ffi.byref(how), ffi.c_size_t(ffi.sizeof(how))),
            f"open {path!s}",
        )

    # --- processes ---------------------------------------------------------------------

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        return _check(
            self._libc.prctl(
                ffi.c_int(option), ffi.c_ulong(arg2), ffi.c_ulong(arg3), ffi.c_ulong(arg4), ffi.c_ulong(arg5)
            ),
            f"prctl({option})",
        )

    def is_child_subreaper(self) -> bool:
        flag = ffi.c_int(0)
        _check(
            self._libc.prctl(
                ffi.c_int(PR_GET_CHILD_SUBREAPER), ffi.byref(flag), ffi.c_ulong(0), ffi.c_ulong(0), ffi.c_ulong(0)
            ),
            "prctl(PR_GET_CHILD_SUBREAPER)",
        )
        return bool(flag.value)

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        """Set the three per-thread capability sets, each an int bitmask of capability numbers."""
        hdr = _CapHeader(_CAP_V3, 0)
        data = (_CapData * 2)()
        for i in range(2):
            shift = 32 * i
            data[i].effective = (effective >> shift) & 0xFFFFFFFF
            data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
            data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
        _check(self._syscall(_NR["capset"], ffi.byref(hdr), data), "capset")

    def personality(self, persona: int) -> None:
        _check(self._libc.personality(ffi.c_ulong(persona)), f"personality({persona:#x})")

    def sched_setattr(
        self,
        policy: int,
        flags: int = 0,
        nice: int = 0,
        priority: int = 0,
        runtime: int = 0,
        deadline: int = 0,
        period: int = 0,
    ) -> None:
        attr = _SchedAttr(ffi.sizeof(_SchedAttr.made()), policy, flags, nice, priority, runtime, deadline, period)
        _check(self._syscall(_NR["sched_setattr"], ffi.c_int(0), ffi.byref(attr), ffi.c_uint(0)), "sched_setattr")

    def current_cpu(self) -> int:
        """The CPU this thread runs on now (sched_getcpu(3), from the vDSO)."""
        cpu: int = self._libc.sched_getcpu()
        return cpu

    def sched_setaffinity(self, pid: int, cpus: "Iterable[int]", what: str) -> None:
        """Pin `pid` (0: ourselves) to the CPUs of the set `cpus`; `what` names the field."""
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError as e:
            raise KernelError(e.errno, what) from None

    def set_mempolicy(self, mode: int, nodes: "Iterable[int]", what: str) -> None:
        """The calling thread's NUMA policy: `mode` with its MPOL_F_* flags or'ed in, `nodes`
        a set of node numbers (empty: no nodemask, as MPOL_DEFAULT and MPOL_LOCAL need)."""
        nodes = list(nodes)
        if nodes:
            bits = 8 * ffi.sizeof(ffi.c_ulong)
            words = (ffi.c_ulong * (max(nodes) // bits + 1))()
            for node in nodes:
                words[node // bits] |= 1 << (node % bits)
            # maxnode counts bits, and the kernel reads one fewer than it is given.
            mask, maxnode = ffi.byref(words), len(words) * bits + 1
        else:
            mask, maxnode = None, 0
        _check(self._syscall(_NR["set_mempolicy"], ffi.c_int(mode), mask, ffi.c_ulong(maxnode)), what)

    def ioprio_set(self, ioclass: int, priority: int) -> None:
        ioprio_who_process = 1
        _check(
            self._syscall(
                _NR["ioprio_set"], ffi.c_int(ioprio_who_process), ffi.c_int(0), ffi.c_int((ioclass << 13) | priority)
            ),
            "ioprio_set",
        )

    def join_session_keyring(self, name: str | None) -> None:
        keyctl_join_session_keyring = 1
        _check(
            self._syscall(_NR["keyctl"], ffi.c_int(keyctl_join_session_keyring), _b(name)),
            f"keyctl join session keyring {name!r}",
        )

    def close_range_cloexec(self, first: int) -> None:
        """Mark every fd >= first close-on-exec, so no host fd survives the exec."""
        _check(
            self._syscall(
                _NR["close_range"], ffi.c_uint(first), ffi.c_uint(0xFFFFFFFF), ffi.c_uint(CLOSE_RANGE_CLOEXEC)
            ),
            "close_range",
        )

    def interface_up(self, sock_fd: int, name: str) -> None:
        """Bring the network interface `name` up: its flags read and written back with
        IFF_UP, through the socket `sock_fd` of its network namespace."""
        ifname = name.encode().ljust(16, b"\0")
        req = ffi.create_string_buffer(ifname, _IFREQ_SIZE)
        _check(self._libc.ioctl(ffi.c_int(sock_fd), ffi.c_ulong(SIOCGIFFLAGS), req), f"bring up {name}")
        flags = int.from_bytes(bytes(req)[16:18], sys.byteorder) | IFF_UP
        req = ffi.create_string_buffer(ifname + flags.to_bytes(2, sys.byteorder), _IFREQ_SIZE)
        _check(self._libc.ioctl(ffi.c_int(sock_fd), ffi.c_ulong(SIOCSIFFLAGS), req), f"bring up {name}")

    # Plain wrappers over os, so that every call the mechanics make is visible at one seam.

    def mknod(self, path: "Path", mode: int, device: int, dir_fd: int | None = None, what: str | None = None) -> None:
        try:
            os.mknod(path, mode, device, dir_fd=dir_fd)
        except OSError as e:
            raise KernelError(e.errno, f"mknod {what or path!s}") from None

    def fstatfs_type(self, fd: int) -> int:
        """The filesystem magic number of an open fd (PROC_SUPER_MAGIC, TMPFS_MAGIC, ...)."""
        buf = _Statfs()
        _check(self._libc.fstatfs(ffi.c_int(fd), ffi.byref(buf)), f"fstatfs {fd}")
        return int(buf.f_type) & 0xFFFFFFFF

    def chroot(self, path: "Path") -> None:
        try:
            os.chroot(path)
        except OSError as e:
            raise KernelError(e.errno, f"chroot {path!s}") from None

    def setresuid(self, uid: int) -> None:
        try:
            os.setresuid(uid, uid, uid)
        except OSError as e:
            raise KernelError(e.errno, f"setuid {uid}") from None

    def setresgid(self, gid: int) -> None:
        try:
            os.setresgid(gid, gid, gid)
        except OSError as e:
            raise KernelError(e.errno, f"setgid {gid}") from None

    def setgroups(self, gids: "Sequence[int]") -> None:
        try:
            os.setgroups(gids)
        except OSError as e:
            raise KernelError(e.errno, f"setgroups {list(gids)}") from None

    def setrlimit(self, resource: int, soft: int, hard: int, name: str) -> None:
        new = _Rlimit(soft, hard)
        _check(
            self._libc.prlimit(ffi.c_int(0), ffi.c_int(resource), ffi.byref(new), None),
            f"setrlimit {name} {soft}:{hard}",
        )

    def execve(self, path: "Path | int", args: "Sequence[str]", env: "Mapping[str, str]") -> None:
        """`path`: a program's path, or an fd of it (fexecve)."""
        try:
            os.execve(path, list(args), env)
        except OSError as e:
            raise KernelError(e.errno, f"exec {args[0]!r}") from None

    # --- seccomp(2) --------------------------------------------------------------------

    def seccomp_set_filter(self, flags: int, program: bytes) -> int:
        """Load a classic BPF program (the bytes of a struct sock_filter array) on this thread;
        with SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the notify fd."""
        buf = ffi.create_string_buffer(program, len(program))
        prog = _SockFprog(len(program) // 8, ffi.addressof(buf))
        return _check(
            self._syscall(_NR["seccomp"], ffi.c_uint(SECCOMP_SET_MODE_FILTER), ffi.c_uint(flags), ffi.byref(prog)),
            "load seccomp filter",
        )

    # --- bpf(2): the cgroup v2 device program --------------------------------------------

    def _bpf(self, cmd: int, attr: "ffi.Structure") -> int:
        return int(self._syscall(_NR["bpf"], ffi.c_int(cmd), ffi.byref(attr), ffi.c_uint(ffi.sizeof(attr))))

    def bpf_prog_load(
        self,
        prog_type: int,
        insns: bytes,
        license: str,
        name: str = "",
        expected_attach_type: int = 0,
        what: str = "load bpf program",
    ) -> int:
        """Load a program (`insns`: the encoded instructions as bytes); returns its fd, which
        the kernel always makes close-on-exec.  When the verifier refuses it, the load is
        tried again with a log so that the error names the verifier's complaint."""
        code = ffi.create_string_buffer(bytes(insns), len(insns))
        lic = ffi.create_string_buffer(license.encode())
        attr = _BpfProgLoadAttr(
            prog_type=prog_type,
            insn_cnt=len(insns) // 8,
            insns=ffi.addressof(code),
            license=ffi.addressof(lic),
            prog_name=name.encode()[: BPF_OBJ_NAME_LEN - 1],
            expected_attach_type=expected_attach_type,
        )
        fd = self._bpf(BPF_PROG_LOAD, attr)
        if fd >= 0:
            return fd
        err = ffi.get_errno()
        if err in (errno.EACCES, errno.EINVAL):
            log = ffi.create_string_buffer(1 << 16)
            attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ffi.addressof(log)
            fd = self._bpf(BPF_PROG_LOAD, attr)
            if fd >= 0:  # accepted this time: keep it
                return fd
            # The log ends with statistics ("processed N insns ..."): the complaint precedes them.
            stats = ("processed", "verification time", "stack depth")
            # typeshed knows `value` on ctypes.c_char arrays only; ffi's c_char is the same class.
            text: bytes = log.value  # type: ignore[misc]
            lines = [line.strip() for line in text.decode(errors="replace").splitlines()]
            complaint = next((line for line in reversed(lines) if line and not line.startswith(stats)), "")
            if complaint:
                what = f"{what} (verifier: {complaint})"
        raise KernelError(err, what)

    def bpf_prog_attach(
        self, target_fd: int, prog_fd: int, attach_type: int, flags: int = 0, what: str = "attach bpf program"
    ) -> None:
        attr = _BpfAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type, attach_flags=flags)
        _check(self._bpf(BPF_PROG_ATTACH, attr), what)

    def bpf_prog_detach(self, target_fd: int, prog_fd: int, attach_type: int, what: str = "detach bpf program") -> None:
        attr = _BpfAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type)
        _check(self._bpf(BPF_PROG_DETACH, attr), what)

    def bpf_prog_query(self, target_fd: int, attach_type: int, what: str = "query bpf programs") -> list[int]:
        """The ids of the programs attached to the cgroup `target_fd` itself (not those it
        inherits from its parents)."""
        room = 64
        while True:
            ids = (ffi.c_uint32 * room)()
            attr = _BpfQueryAttr(
                target_fd=target_fd, attach_type=attach_type, prog_ids=ffi.addressof(ids), prog_cnt=room
            )
            if self._bpf(BPF_PROG_QUERY, attr) >= 0:
                return list(ids[: attr.prog_cnt])
            err = ffi.get_errno()
            if err != errno.ENOSPC:  # ENOSPC: more attached than room; prog_cnt says how many
                raise KernelError(err, what)
            room = attr.prog_cnt + 8

    def bpf_prog_get_fd_by_id(self, prog_id: int, what: str | None = None) -> int:
        attr = _BpfGetIdAttr(prog_id=prog_id)
        return _check(self._bpf(BPF_PROG_GET_FD_BY_ID, attr), what or f"open bpf program {prog_id}")

    def bpf_prog_name(self, prog_fd: int, what: str = "read bpf program info") -> str:
        """The name a program was loaded with."""
        info = _BpfProgInfo()
        attr = _BpfInfoAttr(bpf_fd=prog_fd, info_len=ffi.sizeof(info), info=ffi.addressof(info))
        _check(self._bpf(BPF_OBJ_GET_INFO_BY_FD, attr), what)
        return str(info.name.decode(errors="replace"))
