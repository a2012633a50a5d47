"""The one seam between pyrunc and the kernel.

Every privileged or namespace-changing call the Linux mechanics make goes through a
function in this module, so that unit tests can swap the module's functions for a
recording double (tests/unit/fakekernel.py) and the step trace can see each call.
Each function raises KernelError naming the verb and its object on failure.
"""

import ctypes
import os
import platform

from pyrunc.errors import KernelError

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

# Syscall numbers glibc has no wrapper for (or only a recent one), per architecture.
_NR = {
    "x86_64": dict(pivot_root=155, capget=125, capset=126, keyctl=250, ioprio_set=251,
                   sched_setattr=314, pidfd_send_signal=424, open_tree=428, move_mount=429,
                   pidfd_open=434, close_range=436, openat2=437, mount_setattr=442),
    "aarch64": dict(pivot_root=41, capget=90, capset=91, keyctl=219, ioprio_set=30,
                    sched_setattr=274, pidfd_send_signal=424, open_tree=428, move_mount=429,
                    pidfd_open=434, close_range=436, openat2=437, mount_setattr=442),
}[platform.machine()]

# Flags used by callers (values from the kernel's uapi headers).
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
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
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

CLOSE_RANGE_CLOEXEC = 4


def _check(ret, what):
    if ret < 0:
        raise KernelError(ctypes.get_errno(), what)
    return ret


def _b(path):
    return os.fsencode(path) if path is not None else None


# --- namespaces -------------------------------------------------------------

def unshare(flags):
    _check(_libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")


def setns(fd, nstype, what="setns"):
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), what)


def sethostname(name):
    b = name.encode()
    _check(_libc.sethostname(b, ctypes.c_size_t(len(b))), f"sethostname {name!r}")


def setdomainname(name):
    b = name.encode()
    _check(_libc.setdomainname(b, ctypes.c_size_t(len(b))), f"setdomainname {name!r}")


# --- mounts -----------------------------------------------------------------

def mount(source, target, fstype, flags=0, data=None):
    what = f"mount {source!r} on {target}" + (f" ({fstype})" if fstype else "")
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)), what)


def umount(target, flags=0):
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root, put_old):
    _check(_syscall(_NR["pivot_root"], _b(new_root), _b(put_old)), f"pivot_root {new_root}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dirfd, path, flags, attr_set, attr_clr=0, propagation=0):
    attr = _MountAttr(attr_set, attr_clr, propagation, 0)
    _check(_syscall(_NR["mount_setattr"], ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags),
                    ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))),
           f"mount_setattr {path or dirfd}")


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd, path, flags, resolve, mode=0):
    """openat(2) with resolve flags; returns a new fd (always O_CLOEXEC)."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(_syscall(_NR["openat2"], ctypes.c_int(dirfd), _b(path), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how))), f"open {path}")


# --- processes --------------------------------------------------------------

def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                              ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)), f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CAP_V3 = 0x20080522


def capset(effective, permitted, inheritable):
    """Set the three per-thread capability sets, each an int bitmask of capability numbers."""
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_syscall(_NR["capset"], ctypes.byref(hdr), data), "capset")


def capget(pid=0):
    """Return (effective, permitted, inheritable) bitmasks of a thread."""
    hdr = _CapHeader(_CAP_V3, pid)
    data = (_CapData * 2)()
    _check(_syscall(_NR["capget"], ctypes.byref(hdr), data), "capget")
    return tuple(data[0].__getattribute__(f) | (data[1].__getattribute__(f) << 32)
                 for f in ("effective", "permitted", "inheritable"))


def personality(persona):
    _check(_libc.personality(ctypes.c_ulong(persona)), f"personality({persona:#x})")


class _SchedAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32),
                ("sched_flags", ctypes.c_uint64), ("sched_nice", ctypes.c_int32),
                ("sched_priority", ctypes.c_uint32), ("sched_runtime", ctypes.c_uint64),
                ("sched_deadline", ctypes.c_uint64), ("sched_period", ctypes.c_uint64)]


def sched_setattr(policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    attr = _SchedAttr(ctypes.sizeof(_SchedAttr), policy, flags, nice, priority, runtime, deadline, period)
    _check(_syscall(_NR["sched_setattr"], ctypes.c_int(0), ctypes.byref(attr), ctypes.c_uint(0)),
           "sched_setattr")


def ioprio_set(ioclass, priority):
    IOPRIO_WHO_PROCESS = 1
    _check(_syscall(_NR["ioprio_set"], ctypes.c_int(IOPRIO_WHO_PROCESS), ctypes.c_int(0),
                    ctypes.c_int((ioclass << 13) | priority)), "ioprio_set")


def join_session_keyring(name):
    KEYCTL_JOIN_SESSION_KEYRING = 1
    _check(_syscall(_NR["keyctl"], ctypes.c_int(KEYCTL_JOIN_SESSION_KEYRING), _b(name)),
           f"keyctl join session keyring {name!r}")


def close_range_cloexec(first):
    """Mark every fd >= first close-on-exec, so no host fd survives the exec."""
    _check(_syscall(_NR["close_range"], ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF),
                    ctypes.c_uint(CLOSE_RANGE_CLOEXEC)), "close_range")


def pidfd_open(pid):
    return _check(_syscall(_NR["pidfd_open"], ctypes.c_int(pid), ctypes.c_uint(0)), f"pidfd_open {pid}")


def pidfd_send_signal(pidfd, sig):
    _check(_syscall(_NR["pidfd_send_signal"], ctypes.c_int(pidfd), ctypes.c_int(sig), None,
                    ctypes.c_uint(0)), f"signal {sig}")


# Plain wrappers over os so that every call the mechanics make is visible at one seam.

def mknod(path, mode, device, dir_fd=None, what=None):
    try:
        os.mknod(path, mode, device, dir_fd=dir_fd)
    except OSError as e:
        raise KernelError(e.errno, f"mknod {what or path}") from None


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15)]


def fstatfs_type(fd):
    """The filesystem magic number of an open fd (PROC_SUPER_MAGIC, TMPFS_MAGIC, ...)."""
    buf = _Statfs()
    _check(_libc.fstatfs(ctypes.c_int(fd), ctypes.byref(buf)), f"fstatfs {fd}")
    return buf.f_type & 0xFFFFFFFF


def chroot(path):
    try:
        os.chroot(path)
    except OSError as e:
        raise KernelError(e.errno, f"chroot {path}") from None


def setresuid(uid):
    try:
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise KernelError(e.errno, f"setuid {uid}") from None


def setresgid(gid):
    try:
        os.setresgid(gid, gid, gid)
    except OSError as e:
        raise KernelError(e.errno, f"setgid {gid}") from None


def setgroups(gids):
    try:
        os.setgroups(gids)
    except OSError as e:
        raise KernelError(e.errno, f"setgroups {list(gids)}") from None


class _Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint64), ("max", ctypes.c_uint64)]


def setrlimit(resource, soft, hard, name):
    new = _Rlimit(soft, hard)
    _check(_libc.prlimit(ctypes.c_int(0), ctypes.c_int(resource), ctypes.byref(new), None),
           f"setrlimit {name} {soft}:{hard}")


def execve(path, args, env):
    try:
        os.execve(path, args, env)
    except OSError as e:
        raise KernelError(e.errno, f"exec {args[0]!r}") from None
