"""linux.seccomp: the ENOSYS stub put in front of libseccomp's program.

A profile lists the syscalls it knew when it was written; a syscall added to the kernel
later would get the profile's default action (EPERM, usually), and libc, which falls back
to an older call only on ENOSYS (glibc's clone3 to clone, faccessat2 to faccessat), fails
instead.  As runc does, every syscall numbered above the highest one the profile names
(per architecture and ABI, among the names libseccomp knows for it) returns ENOSYS; the
rest goes to libseccomp's program unchanged.  "Highest named" rather than libseccomp's
table end: a profile older than clone3 must see ENOSYS for clone3 even where libseccomp
knows it.  The stub is only put in where the default refuses (errno, kill, trap);
under an allow, log or trace default a new syscall already runs (or meets its tracer).
"""

import errno
import struct

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from pyrunc.config.model import JsonObject

    # An instruction before assembly: (op, jt, jf, k), a jump's target a label's name.
    Insn = tuple[int, int | str, int | str, int | str]

X32_SYSCALL_BIT = 0x40000000
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_S390 = 0x00000016
AUDIT_ARCH_S390X = 0x80000016
RET_ENOSYS = 0x00050000 | errno.ENOSYS  # SECCOMP_RET_ERRNO | ENOSYS
NO_STUB_DEFAULTS = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")

# Classic BPF (linux/filter.h): struct sock_filter in host order, and the opcodes used.
INSN = struct.Struct("=HBBI")
LD_W_ABS = 0x20  # A = seccomp_data[k] (32 bits)
JA = 0x05  # pc += k
JEQ_K = 0x15
JGT_K = 0x25
JSET_K = 0x45
RET_K = 0x06
DATA_NR, DATA_ARCH = 0, 4  # offsets in struct seccomp_data


def applies(profile: "JsonObject") -> bool:
    """The stub changes nothing under a permissive default, or when the default is ENOSYS."""
    action = profile["defaultAction"]
    if action in NO_STUB_DEFAULTS:
        return False
    return not (action == "SCMP_ACT_ERRNO" and profile.get("defaultErrnoRet", errno.EPERM) == errno.ENOSYS)


def abi_of(arch: int, lib: "Any") -> tuple[int, bool]:
    """(AUDIT_ARCH_* the kernel puts in seccomp_data.arch, x32?) for a libseccomp arch value.
    libseccomp's SCMP_ARCH_* are the AUDIT_ARCH_* values but for x32, which shares
    x86_64's and marks its syscall numbers with X32_SYSCALL_BIT instead."""
    if arch == lib.Arch.X32:
        return AUDIT_ARCH_X86_64, True
    return arch, False


def highest_named(profile: "JsonObject", lib: "Any") -> dict[tuple[int, bool], int]:
    """{(audit arch, x32?): the largest syscall number among the profile's names} for the
    native architecture and each of `architectures` this libseccomp knows.  Names it cannot
    resolve for an arch (or resolves to a negative pseudo-number, like socketcall on
    x86_64) do not count; an ABI without a single known name gets no stub."""
    arches = {lib.system_arch()}
    for name in profile.get("architectures") or ():
        value = getattr(lib.Arch, name[len("SCMP_ARCH_") :], None)
        if value is not None:
            arches.add(value)
    names = {n for rule in profile.get("syscalls") or () for n in rule["names"]}
    highest: dict[tuple[int, bool], int] = {}
    for arch in arches:
        numbers = [nr for nr in (lib.resolve_syscall(arch, n) for n in names) if nr >= 0]
        if numbers:
            highest[abi_of(arch, lib)] = max(numbers)
    return highest


def stub(highest: dict[tuple[int, bool], int]) -> bytes:
    """The instructions (bytes) that go in front of libseccomp's program, for
    {(audit arch, x32?): highest nr}; b"" when there is nothing to check.

    Layout: load the arch; one section per audit arch (compare, load nr, x32 split on
    x86_64, jgt highest); an arch no section takes falls through to the filter, where
    libseccomp's own arch check applies its bad-arch action."""
    if not highest:
        return b""
    code: list[Insn | str] = [(LD_W_ABS, 0, 0, DATA_ARCH)]
    for audit in sorted({a for a, _ in highest}):
        native, x32 = highest.get((audit, False)), highest.get((audit, True))
        code.append((JEQ_K, 0, "next", audit))
        code.append((LD_W_ABS, 0, 0, DATA_NR))
        if audit in (AUDIT_ARCH_S390, AUDIT_ARCH_S390X):
            # An s390 syscall the kernel does not know arrives as nr 0 (the old setup
            # multiplexer, unused for decades): it must read as unknown too.
            code.append((JEQ_K, "enosys", 0, 0))
        if audit == AUDIT_ARCH_X86_64:
            code.append((JSET_K, "x32", 0, X32_SYSCALL_BIT))
        code.append(_above(native))
        if audit == AUDIT_ARCH_X86_64:
            code.append("x32")
            code.append(_above(x32))
        code.append("next")
    code.append((JA, 0, 0, "filter"))
    code.append("enosys")
    code.append((RET_K, 0, 0, RET_ENOSYS))
    code.append("filter")
    return _assemble(code)


def _above(highest: int | None) -> "Insn":
    """Above the ABI's highest named syscall: ENOSYS; else (or with no names): the filter."""
    if highest is None:
        return (JA, 0, 0, "filter")
    return (JGT_K, "enosys", "filter", highest)


def _assemble(code: "Iterable[Insn | str]") -> bytes:
    """Resolve labels (strings) to forward offsets.  "next" means the next "next" label:
    the following section.  Every jump is forward and short (a section is at most seven
    instructions, one per audit arch), so the 8-bit jt/jf offsets always fit."""
    insns: list[Insn] = []
    labels: dict[str, list[int]] = {}
    for item in code:
        if isinstance(item, str):
            labels.setdefault(item, []).append(len(insns))
        else:
            insns.append(item)
    out = []
    for pc, (op, jt, jf, k) in enumerate(insns):
        if op == JA:
            k = _offset(labels, pc, k)
        jt, jf = _offset(labels, pc, jt), _offset(labels, pc, jf)
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise ValueError(f"seccomp ENOSYS stub: jump out of range at {pc}")
        out.append(INSN.pack(op, jt, jf, k))
    return b"".join(out)


def _offset(labels: dict[str, list[int]], pc: int, target: int | str) -> int:
    """A jump's offset from instruction `pc`: a number as it is, a label to its next place."""
    if not isinstance(target, str):
        return target
    at = next(p for p in labels[target] if p > pc)
    return at - pc - 1
