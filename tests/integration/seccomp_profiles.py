"""Whole seccomp profiles the seccomp tests run containers with."""

import errno

DENIED_BY_DOCKER_LIKE_PROFILE = {
    "mount",
    "umount2",
    "ptrace",
    "reboot",
    "kexec_load",
    "init_module",
    "finit_module",
    "delete_module",
    "swapon",
    "swapoff",
    "pivot_root",
    "unshare",
    "setns",
    "bpf",
    "perf_event_open",
    "add_key",
    "keyctl",
    "request_key",
    "acct",
    "settimeofday",
    "clock_settime",
    "open_by_handle_at",
}


def docker_like_profile():
    """Docker's default profile's shape: an errno default and a long allow list, here
    every syscall this libseccomp knows but the privileged ones."""
    import pyseccomp

    names = []
    for nr in range(0, 460):
        try:
            name = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, nr).decode()
        except (OSError, ValueError):
            continue
        if name and name not in DENIED_BY_DOCKER_LIKE_PROFILE:
            names.append(name)
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }
