"""The cgroup v2 device controller: an eBPF program enforcing linux.resources.devices.

cgroup v2 has no devices.allow/deny files.  Instead the kernel runs every program of type
BPF_PROG_TYPE_CGROUP_DEVICE attached to a cgroup (and to its ancestors) when one of its
processes opens or mknods a device node, with the context
    struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
where access_type's low 16 bits are the device type (BPF_DEVCG_DEV_BLOCK 1, CHAR 2) and its
high 16 bits the access asked for (BPF_DEVCG_ACC_MKNOD 1, READ 2, WRITE 4; an O_RDWR open
asks for READ|WRITE at once).  Returning 1 allows, 0 denies (EPERM).  The program is
assembled here by hand, so neither a compiler nor libbpf is needed.

Semantics: exactly those of the v1 devices controller fed the same list after `deny a`
(the state pyrunc's v1 manager brings devices.list to, devices_v1.py; what runc emulates
on v2); effective_rules() (in the package, cgroups/__init__.py) is that state, shared by
both managers:
  * The starting state is "deny everything", so an empty list denies every device.
  * A rule of type `a` (also when `type` is absent) resets the state to allow-all or
    deny-all, whatever its major, minor and access say: the kernel ignores them for `a`.
  * Any other rule whose verdict differs from the current default adds an exception for
    its exact (type, major, minor), merging the access letters with an earlier one.
  * A rule whose verdict equals the default removes its access letters from the exception
    with exactly the same (type, major, minor), if any; it does not touch narrower or
    wider exceptions.  Where that would leave a hole in a wider exception (deny `c 1:3`
    after allow `c *:*`), v1 silently ignores the rule; like runc we refuse the list
    instead, so that nobody believes the device denied.
  * A request is then decided like v1 does: with default deny, it is allowed only if ONE
    allow-exception matches the device and holds every bit asked for (rw against an
    exception of `r` is denied); with default allow, it is denied if any deny-exception
    matches the device and shares any bit with the request (rw against a deny of `w` is
    denied).  runc's program differs on that last point (it needs all bits there too);
    we follow the kernel, which denies more.
In the common lists (deny all, then allow single devices; or allow all, then deny some)
this is "the last matching rule decides".  It is not for a wider rule after a narrower
one of the other verdict: [deny all, allow c 1:3, deny c *:*] still allows c 1:3, in v1
and in runc alike.

An absent or empty `access` means "rwm", and a major or minor absent or negative means any,
as the v1 manager writes them.
"""

import errno
import os
import struct

from pyrunc.errors import KernelError
from pyrunc.linux import kernel

# The rules' model is the package's, shared with the v1 manager (which needs no program).
from pyrunc.linux.cgroups import DEVICES_FIELD as FIELD
from pyrunc.linux.cgroups import effective_rules

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from pyrunc.linux.kernel import Kernel

PROG_NAME = "pyrunc_devices"  # how apply() recognises its own earlier programs
LICENSE = "Apache-2.0"  # the program calls no GPL-only helper: any license loads

DEV_BLOCK, DEV_CHAR = 1, 2  # BPF_DEVCG_DEV_*
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4  # BPF_DEVCG_ACC_*
_DEV_TYPES = {"b": DEV_BLOCK, "c": DEV_CHAR}

# --- instruction encoding ------------------------------------------------------------
# struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; }, little endian.
# Only the opcodes below are emitted (tests/unit/test_devices_bpf.py interprets them).
LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)            BPF_LDX | BPF_MEM | BPF_W
ALU32_AND_K = 0x54  # dst = (u32)(dst & imm)               BPF_ALU | BPF_AND | BPF_K
ALU32_RSH_K = 0x74  # dst = (u32)dst >> imm                BPF_ALU | BPF_RSH | BPF_K
ALU32_MOV_K = 0xB4  # dst = (u32)imm                       BPF_ALU | BPF_MOV | BPF_K
JMP_JNE_K = 0x55  # if dst != (s64)imm: pc += off        BPF_JMP | BPF_JNE | BPF_K
JMP_JSET_K = 0x45  # if dst & (s64)imm: pc += off         BPF_JMP | BPF_JSET | BPF_K
JMP_JA = 0x05  # pc += off                            BPF_JMP | BPF_JA
JMP_EXIT = 0x95  # return r0                            BPF_JMP | BPF_EXIT

# Registers: r1 holds the context on entry, r0 the verdict on exit.
R0, R1, R_TYPE, R_ACCESS, R_MAJOR, R_MINOR = 0, 1, 2, 3, 4, 5


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    # imm is an s32: store a u32 (~access masks, huge numbers) by its two's complement.
    imm = imm - (1 << 32) if imm >= 1 << 31 else imm
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


# --- the program -------------------------------------------------------------------------


def program(rules: "Iterable[dict[str, Any]]") -> bytes:
    """The encoded instructions (bytes, 8 per instruction) enforcing `rules`."""
    default_allow, exceptions = effective_rules(rules)
    verdict = 0 if default_allow else 1  # what a matching exception returns
    code = [
        insn(LDX_MEM_W, R_TYPE, R1, off=0),  # access_type ...
        insn(ALU32_AND_K, R_TYPE, imm=0xFFFF),  # ... low half: the device type
        insn(LDX_MEM_W, R_ACCESS, R1, off=0),
        insn(ALU32_RSH_K, R_ACCESS, imm=16),  # ... high half: the access asked for
        insn(LDX_MEM_W, R_MAJOR, R1, off=4),
        insn(LDX_MEM_W, R_MINOR, R1, off=8),
    ]
    for (kind, major, minor), bits in exceptions.items():
        code += _exception_block(kind, major, minor, bits, verdict)
    code += [insn(ALU32_MOV_K, R0, imm=int(default_allow)), insn(JMP_EXIT)]
    return b"".join(code)


def _exception_block(kind: str, major: int | None, minor: int | None, bits: int, verdict: int) -> list[bytes]:
    """Instructions returning `verdict` when the request matches the exception, and
    falling through to the next block otherwise."""
    # Each test is (opcode, register, imm); every jump goes to the end of the block.
    tests = [(JMP_JNE_K, R_TYPE, _DEV_TYPES[kind])]
    # A number of 2**31 or more becomes a negative imm, sign-extended, so it never equals
    # the zero-extended u32 from the context: harmless, no device number is that large
    # (the kernel's majors have 12 bits, minors 20).
    if major is not None:
        tests.append((JMP_JNE_K, R_MAJOR, major))
    if minor is not None:
        tests.append((JMP_JNE_K, R_MINOR, minor))
    tail = [insn(ALU32_MOV_K, R0, imm=verdict), insn(JMP_EXIT)]
    if verdict:
        # An allow-exception must hold every bit asked for: skip if any bit is outside it.
        tests.append((JMP_JSET_K, R_ACCESS, ~bits & 0xFFFFFFFF))
    else:
        # A deny-exception applies if it shares any bit: skip only when none is shared,
        # i.e. jump over the "skip" when one is.
        tail = [insn(JMP_JSET_K, R_ACCESS, off=1, imm=bits), insn(JMP_JA, off=len(tail))] + tail
    block = []
    for n, (op, reg, imm) in enumerate(tests):
        to_end = (len(tests) - n - 1) + len(tail)  # instructions left after this jump
        block.append(insn(op, reg, off=to_end, imm=imm))
    return block + tail


# --- loading and attaching -----------------------------------------------------------


def apply(k: "Kernel", cgroup_dir: str, rules: "Iterable[dict[str, Any]]") -> None:
    """Enforce `rules` (the OCI list) on the cgroup2 directory `cgroup_dir`: attach the new
    program next to any there, then detach the ones an earlier apply() left, so that no
    moment is without a program."""
    code = program(rules)
    dir_fd = _open_dir(cgroup_dir)
    try:
        old = _our_program_ids(k, dir_fd)
        prog_fd = k.bpf_prog_load(
            kernel.BPF_PROG_TYPE_CGROUP_DEVICE,
            code,
            LICENSE,
            PROG_NAME,
            kernel.BPF_CGROUP_DEVICE,
            what=f"{FIELD}: load the device program",
        )
        try:
            k.bpf_prog_attach(
                dir_fd,
                prog_fd,
                kernel.BPF_CGROUP_DEVICE,
                kernel.BPF_F_ALLOW_MULTI,
                what=f"{FIELD}: attach the device program to {cgroup_dir}",
            )
        finally:
            os.close(prog_fd)
        for prog_id in old:
            _detach(k, dir_fd, prog_id, cgroup_dir)
    finally:
        os.close(dir_fd)


def attached(k: "Kernel", cgroup_dir: str) -> list[int]:
    """The ids of the device programs apply() attached to `cgroup_dir` and that are still there."""
    dir_fd = _open_dir(cgroup_dir)
    try:
        return _our_program_ids(k, dir_fd)
    finally:
        os.close(dir_fd)


def _open_dir(cgroup_dir: str) -> int:
    try:
        return os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, f"{FIELD}: open {cgroup_dir}") from None


def _our_program_ids(k: "Kernel", dir_fd: int) -> list[int]:
    # Only programs we loaded are replaced: one attached by someone else (systemd, say)
    # stays, and since every attached program must allow, it can only restrict further.
    ours = []
    listed = k.bpf_prog_query(dir_fd, kernel.BPF_CGROUP_DEVICE, what=f"{FIELD}: list the device programs")
    for prog_id in listed:
        fd = _open_program(k, prog_id)
        if fd is None:
            continue
        try:
            if k.bpf_prog_name(fd, what=f"{FIELD}: read device program {prog_id}") == PROG_NAME:
                ours.append(prog_id)
        finally:
            os.close(fd)
    return ours


def _open_program(k: "Kernel", prog_id: int) -> int | None:
    """An fd of the program, or None when it went away meanwhile (ENOENT)."""
    try:
        fd: int = k.bpf_prog_get_fd_by_id(prog_id, what=f"{FIELD}: open device program {prog_id}")
        return fd
    except KernelError as e:
        if e.errno == errno.ENOENT:
            return None
        raise


def _detach(k: "Kernel", dir_fd: int, prog_id: int, cgroup_dir: str) -> None:
    fd = _open_program(k, prog_id)
    if fd is None:
        return
    try:
        k.bpf_prog_detach(
            dir_fd, fd, kernel.BPF_CGROUP_DEVICE, what=f"{FIELD}: detach the old device program from {cgroup_dir}"
        )
    except KernelError as e:
        if e.errno != errno.ENOENT:  # detached meanwhile (another update, or rmdir)
            raise
    finally:
        os.close(fd)
