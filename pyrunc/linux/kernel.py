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
from pyrunc.linux.pidfds import Pidfds

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from pyrunc.linux.ffi import address as _address
    from pyrunc.linux.ffi import syscall as _raw_syscall

    Path = str | bytes | os.PathLike[str] | os.PathLike[bytes]
else:
    try:  # the primitive built into the launcher (pyrunc/launcher/launcher.c): no ctypes
        from _pyrunc_kernel import address as _address
        from _pyrunc_kernel import syscall as _raw_syscall
    except ImportError:  # any other interpreter: the same two functions over ctypes
        from pyrunc.linux.ffi import address as _address
        from pyrunc.linux.ffi import syscall as _raw_syscall

# Syscall numbers, per architecture: every call below is made by number.
_NR = {
    "x86_64": dict(
        ioctl=16,
        personality=135,
        fstatfs=138,
        prctl=157,
        mount=165,
        umount2=166,
        sethostname=170,
        setdomainname=171,
        unshare=272,
        prlimit64=302,
        setns=308,
        getcpu=309,
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
        ioctl=29,
        personality=92,
        fstatfs=44,
        prctl=167,
        mount=40,
        umount2=39,
        sethostname=161,
        setdomainname=162,
        unshare=97,
        prlimit64=261,
        setns=268,
        getcpu=168,
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
_BPF_PROG_INFO_SIZE = 80  # struct bpf_prog_info up to its name, the last field read

_STATFS_SIZE = 120  # struct statfs (x86_64 and aarch64)


def _check(ret: int, what: str) -> int:
    """The result of syscall(): -errno raised as KernelError naming `what`."""
    if ret < 0:
        raise KernelError(-ret, what)
    return ret


def _b(path: "Path | None") -> bytes | None:
    return os.fsencode(path) if path is not None else None


def _pack(*fields: "tuple[int, int]") -> bytes:
    """A C structure's bytes: each field (value, size in bytes) in native byte order, laid
    out as its declaration (the callers give the padding as fields of their own)."""
    return b"".join(v.to_bytes(n, sys.byteorder, signed=v < 0) for v, n in fields)


def _field(buf: "bytes | bytearray", offset: int, size: int) -> int:
    return int.from_bytes(buf[offset : offset + size], sys.byteorder)


class Kernel(Pidfds):
    """The real kernel (pidfd_open and pidfd_send_signal from pidfds.Pidfds, without ctypes).
    A double or a recording wrapper offers the same public methods;
    the step trace records each call of one by its method's name."""

    def __init__(self) -> None:
        # syscall(nr, *args) -> result or -errno: the launcher's, or ffi's over ctypes.
        self._syscall = _raw_syscall

    # --- processes ---------------------------------------------------------------------

    def fork(self) -> int:
        """clone(2) as fork: here so that the trace records each new process (in the parent)."""
        return os.fork()

    def fork_into_cgroup(self, cgroup_fd: int) -> int:
        """fork, the child born in the cgroup v2 directory `cgroup_fd` (clone3 with
        CLONE_INTO_CGROUP): it is never moved.  Around the syscall the interpreter's own
        fork hooks run, as os.fork runs them, all with the GIL held: through ctypes, loaded
        for this call alone.  KernelError ENOSYS (no clone3), E2BIG (a clone_args without
        `cgroup`) or EINVAL (no CLONE_INTO_CGROUP) on kernels before 5.7, which the caller
        meets with a plain fork."""
        from pyrunc.linux import ffi

        # struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2): flags, pidfd, child_tid,
        # parent_tid, exit_signal (SIGCHLD), stack, stack_size, tls, set_tid, set_tid_size, cgroup
        args = _pack((CLONE_INTO_CGROUP, 8), *[(0, 8)] * 3, (17, 8), *[(0, 8)] * 5, (cgroup_fd, 8))
        libc = ffi.Libc()
        clone3 = libc.with_gil("syscall")
        libc.with_gil("PyOS_BeforeFork")()
        pid = clone3(_NR["clone3"], args, ffi.c_size_t(len(args)))
        if pid == 0:
            libc.with_gil("PyOS_AfterFork_Child")()
        else:
            libc.with_gil("PyOS_AfterFork_Parent")()
        if pid < 0:
            raise KernelError(ffi.get_errno(), "clone3 into cgroup")
        return int(pid)

    def set_name(self, name: str) -> None:
        """The calling thread's name (comm: what `pgrep`, `top` and /proc/PID/comm show);
        the kernel keeps 15 bytes."""
        _check(self._syscall(_NR["prctl"], PR_SET_NAME, os.fsencode(name)[:15], 0, 0, 0), "prctl(PR_SET_NAME)")

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
        _check(self._syscall(_NR["unshare"], flags), f"unshare({flags:#x})")

    def setns(self, fd: int, nstype: int, what: str = "setns") -> None:
        _check(self._syscall(_NR["setns"], fd, nstype), what)

    def sethostname(self, name: str) -> None:
        b = name.encode()
        _check(self._syscall(_NR["sethostname"], b, len(b)), f"sethostname {name!r}")

    def setdomainname(self, name: str) -> None:
        b = name.encode()
        _check(self._syscall(_NR["setdomainname"], b, len(b)), f"setdomainname {name!r}")

    # --- mounts ------------------------------------------------------------------------

    def mount(
        self, source: "Path | None", target: "Path", fstype: str | None, flags: int = 0, data: str | None = None
    ) -> None:
        what = f"mount {source!r} on {target!s}" + (f" ({fstype})" if fstype else "")
        _check(self._syscall(_NR["mount"], _b(source), _b(target), _b(fstype), flags, _b(data)), what)

    def umount(self, target: "Path", flags: int = 0) -> None:
        _check(self._syscall(_NR["umount2"], _b(target), flags), f"umount {target!s}")

    def pivot_root(self, new_root: "Path", put_old: "Path") -> None:
        _check(self._syscall(_NR["pivot_root"], _b(new_root), _b(put_old)), f"pivot_root {new_root!s}")

    def mount_setattr(
        self, dirfd: int, path: "Path | None", flags: int, attr_set: int, attr_clr: int = 0, propagation: int = 0
    ) -> None:
        attr = _pack((attr_set, 8), (attr_clr, 8), (propagation, 8), (0, 8))  # struct mount_attr
        _check(
            self._syscall(_NR["mount_setattr"], dirfd, _b(path), flags, attr, len(attr)),
            f"mount_setattr {path or dirfd!s}",
        )

    def open_tree_clone(self, path: "Path") -> int:
        """A detached copy of the mount at `path` (open_tree(2) OPEN_TREE_CLONE); an O_PATH-like
        fd of `path` on it, close-on-exec."""
        return _check(
            self._syscall(_NR["open_tree"], AT_FDCWD, _b(path), OPEN_TREE_CLONE | os.O_CLOEXEC),
            f"clone the mount of {path!s}",
        )

    def openat2(self, dirfd: int, path: "Path", flags: int, resolve: int, mode: int = 0) -> int:
        """openat(2) with resolve flags; returns a new fd (always O_CLOEXEC)."""
        how = _pack((flags | os.O_CLOEXEC, 8), (mode, 8), (resolve, 8))  # struct open_how
        return _check(self._syscall(_NR["openat2"], dirfd, _b(path), how, len(how)), f"open {path!s}")

    # --- processes ---------------------------------------------------------------------

    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        return _check(self._syscall(_NR["prctl"], option, arg2, arg3, arg4, arg5), f"prctl({option})")

    def is_child_subreaper(self) -> bool:
        flag = bytearray(4)  # an int the kernel fills in
        _check(self._syscall(_NR["prctl"], PR_GET_CHILD_SUBREAPER, flag, 0, 0, 0), "prctl(PR_GET_CHILD_SUBREAPER)")
        return any(flag)

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        """Set the three per-thread capability sets, each an int bitmask of capability numbers."""
        header = _pack((_CAP_V3, 4), (0, 4))  # struct __user_cap_header_struct: version, pid
        words = []  # two struct __user_cap_data_struct: the low 32 capabilities, then the next
        for shift in (0, 32):
            words += [((effective >> shift) & 0xFFFFFFFF, 4), ((permitted >> shift) & 0xFFFFFFFF, 4)]
            words.append(((inheritable >> shift) & 0xFFFFFFFF, 4))
        _check(self._syscall(_NR["capset"], header, _pack(*words)), "capset")

    def personality(self, persona: int) -> None:
        _check(self._syscall(_NR["personality"], persona), f"personality({persona:#x})")

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
        # struct sched_attr: size, policy, flags, nice, priority, runtime, deadline, period
        fields = [(policy, 4), (flags, 8), (nice, 4), (priority, 4), (runtime, 8), (deadline, 8), (period, 8)]
        attr = _pack((48, 4), *fields)
        _check(self._syscall(_NR["sched_setattr"], 0, attr, 0), "sched_setattr")

    def current_cpu(self) -> int:
        """The CPU this thread runs on now (getcpu(2))."""
        cpu = bytearray(4)
        _check(self._syscall(_NR["getcpu"], cpu, None, None), "getcpu")
        return _field(cpu, 0, 4)

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
        mask: bytes | None = None
        maxnode = 0
        if nodes:
            bits = 64  # an unsigned long's
            words = [0] * (max(nodes) // bits + 1)
            for node in nodes:
                words[node // bits] |= 1 << (node % bits)
            # maxnode counts bits, and the kernel reads one fewer than it is given.
            mask, maxnode = _pack(*[(w, 8) for w in words]), len(words) * bits + 1
        _check(self._syscall(_NR["set_mempolicy"], mode, mask, maxnode), what)

    def ioprio_set(self, ioclass: int, priority: int) -> None:
        ioprio_who_process = 1
        _check(self._syscall(_NR["ioprio_set"], ioprio_who_process, 0, (ioclass << 13) | priority), "ioprio_set")

    def join_session_keyring(self, name: str | None) -> None:
        keyctl_join_session_keyring = 1
        _check(
            self._syscall(_NR["keyctl"], keyctl_join_session_keyring, _b(name)),
            f"keyctl join session keyring {name!r}",
        )

    def close_range_cloexec(self, first: int) -> None:
        """Mark every fd >= first close-on-exec, so no host fd survives the exec."""
        _check(self._syscall(_NR["close_range"], first, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC), "close_range")

    def interface_up(self, sock_fd: int, name: str) -> None:
        """Bring the network interface `name` up: its flags read and written back with
        IFF_UP, through the socket `sock_fd` of its network namespace."""
        req = bytearray(name.encode().ljust(_IFREQ_SIZE, b"\0"))
        _check(self._syscall(_NR["ioctl"], sock_fd, SIOCGIFFLAGS, req), f"bring up {name}")
        req[16:18] = (_field(req, 16, 2) | IFF_UP).to_bytes(2, sys.byteorder)
        _check(self._syscall(_NR["ioctl"], sock_fd, SIOCSIFFLAGS, req), f"bring up {name}")

    # Plain wrappers over os, so that every call the mechanics make is visible at one seam.

    def mknod(self, path: "Path", mode: int, device: int, dir_fd: int | None = None, what: str | None = None) -> None:
        try:
            os.mknod(path, mode, device, dir_fd=dir_fd)
        except OSError as e:
            raise KernelError(e.errno, f"mknod {what or path!s}") from None

    def fstatfs_type(self, fd: int) -> int:
        """The filesystem magic number of an open fd (PROC_SUPER_MAGIC, TMPFS_MAGIC, ...)."""
        buf = bytearray(_STATFS_SIZE)
        _check(self._syscall(_NR["fstatfs"], fd, buf), f"fstatfs {fd}")
        return _field(buf, 0, 8) & 0xFFFFFFFF  # f_type, the struct's first field (a long): its low 32 bits

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
        new = _pack((soft, 8), (hard, 8))  # struct rlimit64
        _check(self._syscall(_NR["prlimit64"], 0, resource, new, None), f"setrlimit {name} {soft}:{hard}")

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
        prog = _pack((len(program) // 8, 2), (0, 6), (_address(program), 8))  # struct sock_fprog
        return _check(self._syscall(_NR["seccomp"], SECCOMP_SET_MODE_FILTER, flags, prog), "load seccomp filter")

    # --- bpf(2): the cgroup v2 device program --------------------------------------------

    def _bpf(self, cmd: int, attr: "bytes | bytearray") -> int:
        return self._syscall(_NR["bpf"], cmd, attr, len(attr))

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
        code, lic = bytes(insns), license.encode()

        def attr(log: bytearray | None) -> bytes:
            # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version,
            # prog_flags, prog_name, prog_ifindex, expected_attach_type
            logged = [(1, 4), (len(log), 4), (_address(log), 8)] if log is not None else [(0, 4), (0, 4), (0, 8)]
            head = _pack((prog_type, 4), (len(code) // 8, 4), (_address(code), 8), (_address(lic), 8), *logged)
            title = name.encode()[: BPF_OBJ_NAME_LEN - 1].ljust(BPF_OBJ_NAME_LEN, b"\0")
            return head + _pack((0, 4), (0, 4)) + title + _pack((0, 4), (expected_attach_type, 4))

        fd = self._bpf(BPF_PROG_LOAD, attr(None))
        if fd >= 0:
            return fd
        err = -fd
        if err in (errno.EACCES, errno.EINVAL):
            log = bytearray(1 << 16)
            fd = self._bpf(BPF_PROG_LOAD, attr(log))
            if fd >= 0:  # accepted this time: keep it
                return fd
            # The log ends with statistics ("processed N insns ..."): the complaint precedes them.
            stats = ("processed", "verification time", "stack depth")
            text = bytes(log).split(b"\0", 1)[0]
            lines = [line.strip() for line in text.decode(errors="replace").splitlines()]
            complaint = next((line for line in reversed(lines) if line and not line.startswith(stats)), "")
            if complaint:
                what = f"{what} (verifier: {complaint})"
        raise KernelError(err, what)

    def bpf_prog_attach(
        self, target_fd: int, prog_fd: int, attach_type: int, flags: int = 0, what: str = "attach bpf program"
    ) -> None:
        # target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd
        attr = _pack((target_fd, 4), (prog_fd, 4), (attach_type, 4), (flags, 4), (0, 4))
        _check(self._bpf(BPF_PROG_ATTACH, attr), what)

    def bpf_prog_detach(self, target_fd: int, prog_fd: int, attach_type: int, what: str = "detach bpf program") -> None:
        attr = _pack((target_fd, 4), (prog_fd, 4), (attach_type, 4), (0, 4), (0, 4))
        _check(self._bpf(BPF_PROG_DETACH, attr), what)

    def bpf_prog_query(self, target_fd: int, attach_type: int, what: str = "query bpf programs") -> list[int]:
        """The ids of the programs attached to the cgroup `target_fd` itself (not those it
        inherits from its parents)."""
        room = 64
        while True:
            ids = bytearray(4 * room)
            # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt (+ padding)
            attr = bytearray(
                _pack((target_fd, 4), (attach_type, 4), (0, 4), (0, 4), (_address(ids), 8), (room, 4), (0, 4))
            )
            ret = self._bpf(BPF_PROG_QUERY, attr)
            count = _field(attr, 24, 4)  # what the kernel wrote back: how many are attached
            if ret >= 0:
                return [_field(ids, 4 * i, 4) for i in range(count)]
            if -ret != errno.ENOSPC:  # ENOSPC: more attached than room; prog_cnt says how many
                raise KernelError(-ret, what)
            room = count + 8

    def bpf_prog_get_fd_by_id(self, prog_id: int, what: str | None = None) -> int:
        attr = _pack((prog_id, 4), (0, 4), (0, 4))  # prog_id, next_id, open_flags
        return _check(self._bpf(BPF_PROG_GET_FD_BY_ID, attr), what or f"open bpf program {prog_id}")

    def bpf_prog_name(self, prog_fd: int, what: str = "read bpf program info") -> str:
        """The name a program was loaded with."""
        info = bytearray(_BPF_PROG_INFO_SIZE)
        attr = _pack((prog_fd, 4), (len(info), 4), (_address(info), 8))  # bpf_fd, info_len, info
        _check(self._bpf(BPF_OBJ_GET_INFO_BY_FD, attr), what)
        # struct bpf_prog_info's name: 16 bytes at offset 64, after type, id, tag, the
        # program lengths and addresses, load_time, created_by_uid, nr_map_ids, map_ids
        return bytes(info[64:80]).split(b"\0", 1)[0].decode(errors="replace")
