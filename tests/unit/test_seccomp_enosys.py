"""The ENOSYS stub in front of libseccomp's program, without root: a classic BPF
interpreter runs the whole program on synthetic seccomp_data, and the stubbed program
must answer as libseccomp's own does except for syscalls above the profile's highest."""

import errno
import hashlib
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc import jsonc
from pyrunc.linux import seccomp
from pyrunc.linux import seccomp_enosys as enosys

lib = pytest.importorskip("pyseccomp")

ENOSYS = 0x00050000 | errno.ENOSYS
EPERM = 0x00050000 | errno.EPERM
ALLOW = 0x7FFF0000
X32_BIT = 0x40000000
AUDIT = {"x86_64": 0xC000003E, "x86": 0x40000003, "aarch64": 0xC00000B7, "s390x": 0x80000016}


# --- a classic BPF interpreter (linux/filter.h), for the opcodes a seccomp filter may use ----


def run(program, nr, arch, args=(0,) * 6, ip=0):
    """The filter's return value for one syscall, as the kernel computes it."""
    data = struct.pack("=IIQ6Q", nr, arch, ip, *args)
    insns = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    assert 0 < len(insns) <= 4096  # BPF_MAXINSNS
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls, src = code & 0x07, (x if code & 0x08 else k)
        if code == 0x20:  # ld [k]
            assert k % 4 == 0 and k + 4 <= len(data)
            a = struct.unpack_from("=I", data, k)[0]
        elif code == 0x00:
            a = k  # ld #k
        elif code == 0x01:
            x = k  # ldx #k
        elif code == 0x60:
            a = mem[k]  # ld M[k]
        elif code == 0x61:
            x = mem[k]  # ldx M[k]
        elif code == 0x02:
            mem[k] = a  # st M[k]
        elif code == 0x03:
            mem[k] = x  # stx M[k]
        elif code == 0x07:
            x = a  # tax
        elif code == 0x87:
            a = x  # txa
        elif cls == 0x04:  # alu
            op = code & 0xF0
            a = {
                0x00: lambda: a + src,
                0x10: lambda: a - src,
                0x20: lambda: a * src,
                0x40: lambda: a | src,
                0x50: lambda: a & src,
                0x60: lambda: a << src,
                0x70: lambda: a >> src,
                0x80: lambda: -a,
                0xA0: lambda: a ^ src,
            }[op]() & 0xFFFFFFFF
        elif code == 0x05:
            pc += k  # ja
        elif cls == 0x05:
            op = code & 0xF0
            taken = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: bool(a & src)}[op]
            pc += jt if taken else jf
        elif code == 0x06:
            return k  # ret #k
        elif code == 0x16:
            return a  # ret a
        else:
            raise AssertionError(f"unexpected opcode {code:#x} at {pc - 1}")
        assert pc < len(insns), "ran off the end of the program"


def nr_of(name, arch):
    return lib.resolve_syscall(arch, name)


def profile_of(default="SCMP_ACT_ERRNO", archs=("SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"), **rules):
    return {
        "defaultAction": default,
        "architectures": list(archs),
        "syscalls": [
            {"names": ["read", "write", "getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV},
        ],
        **rules,
    }


# --- what a container sees -------------------------------------------------------------


@pytest.mark.parametrize(
    "arch, audit, bit",
    [(lib.Arch.X86_64, AUDIT["x86_64"], 0), (lib.Arch.X86, AUDIT["x86"], 0), (lib.Arch.X32, AUDIT["x86_64"], X32_BIT)],
)
def test_above_the_highest_named_syscall_is_enosys_on_every_abi(arch, audit, bit):
    program = seccomp.compile_profile(profile_of())
    highest = max(nr_of(n, arch) for n in ("read", "write", "getpid", "umask"))
    assert run(program, bit | 1000, audit) == ENOSYS
    assert run(program, highest + 1, audit) == ENOSYS
    assert run(program, nr_of("getpid", arch), audit) == ALLOW  # listed: its action
    assert run(program, nr_of("umask", arch), audit) == 0x00050000 | errno.EXDEV
    assert run(program, nr_of("close", arch), audit) == EPERM  # known, unlisted, below: the default
    assert run(program, bit | 0xFFFFFFFF & ~X32_BIT, audit) == ENOSYS


def test_the_highest_named_is_per_abi():
    """x86_64's getpid is 39 and i386's 20: i386's 21..39 are above its highest."""
    program = seccomp.compile_profile(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86"],
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    assert nr_of("getpid", lib.Arch.X86) == 20 and nr_of("getpid", lib.Arch.X86_64) == 39
    assert run(program, 21, AUDIT["x86"]) == ENOSYS
    assert run(program, 21, AUDIT["x86_64"]) == EPERM


def test_x32_calls_go_to_libseccomp_when_the_profile_leaves_x32_out():
    profile = profile_of(archs=("SCMP_ARCH_X86_64",))
    program, bare = seccomp.compile_profile(profile), seccomp.libseccomp_program(profile, lib)
    if lib.system_arch() != lib.Arch.X86_64:
        pytest.skip("x86_64's x32 split is checked on an x86_64 host")
    assert run(program, X32_BIT | 1000, AUDIT["x86_64"]) == run(bare, X32_BIT | 1000, AUDIT["x86_64"]) != ENOSYS
    assert run(program, 1000, AUDIT["x86_64"]) == ENOSYS


def test_an_arch_outside_the_profile_gets_libseccomps_bad_arch_action():
    profile = profile_of(archs=())
    program, bare = seccomp.compile_profile(profile), seccomp.libseccomp_program(profile, lib)
    other = next(a for a in AUDIT.values() if a != lib.system_arch())
    assert run(program, 1000, other) == run(bare, 1000, other) != ENOSYS


@pytest.mark.parametrize("default", ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"])
def test_no_stub_under_a_permissive_default(default):
    profile = {"defaultAction": default, "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}
    assert seccomp.compile_profile(profile) == seccomp.libseccomp_program(profile, lib)


def test_no_stub_when_the_default_is_enosys_already_or_nothing_is_named():
    enosys_default = profile_of(defaultErrnoRet=errno.ENOSYS)
    nothing = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["no_such_call"], "action": "SCMP_ACT_ALLOW"}]}
    for profile in (enosys_default, nothing):
        assert seccomp.compile_profile(profile) == seccomp.libseccomp_program(profile, lib)


@pytest.mark.parametrize("default", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
def test_kill_and_trap_defaults_get_the_stub_too(default):
    program = seccomp.compile_profile(profile_of(default=default))
    native = enosys.abi_of(lib.system_arch(), lib)[0]
    assert run(program, 1000, native) == ENOSYS
    assert run(program, nr_of("close", lib.Arch.NATIVE), native) == seccomp.ACTIONS[default]


# --- against libseccomp's own program, over many profiles -------------------------------

POOL = [
    "read",
    "write",
    "close",
    "getpid",
    "umask",
    "mount",
    "clone",
    "clone3",
    "openat2",
    "faccessat2",
    "socketcall",
    "execve",
    "futex_waitv",
    "no_such_call",
    "close_range",
]
DEFAULTS = [
    ("SCMP_ACT_ERRNO", errno.EPERM),
    ("SCMP_ACT_ERRNO", errno.EACCES),
    ("SCMP_ACT_KILL", None),
    ("SCMP_ACT_KILL_PROCESS", None),
    ("SCMP_ACT_TRAP", None),
]
ARCHS = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"]  # one endianness


def reference_highest(profile, abi_arch):
    """The largest number among the profile's names for one libseccomp arch, or None."""
    nrs = [nr_of(n, abi_arch) for r in profile["syscalls"] for n in r["names"]]
    nrs = [n for n in nrs if n >= 0]
    return max(nrs) if nrs else None


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(st.sampled_from(POOL), min_size=1, max_size=6, unique=True),
    default=st.sampled_from(DEFAULTS),
    archs=st.lists(st.sampled_from(ARCHS), max_size=3, unique=True),
    call_arch=st.sampled_from(ARCHS),
    nr=st.one_of(st.integers(0, 600), st.integers(0, 0xFFFFFFFF)),
)
def test_the_stubbed_program_is_libseccomps_but_above_the_highest(names, default, archs, call_arch, nr):
    action, err = default
    profile = {
        "defaultAction": action,
        "architectures": archs,
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }
    if err is not None:
        profile["defaultErrnoRet"] = err
    program, bare = seccomp.compile_profile(profile), seccomp.libseccomp_program(profile, lib)
    arch = getattr(lib.Arch, call_arch[len("SCMP_ARCH_") :])
    in_filter = call_arch in archs or arch == lib.system_arch()
    audit, x32 = (AUDIT["x86_64"], True) if call_arch == "SCMP_ARCH_X32" else (arch, False)
    nr = (nr | X32_BIT) if x32 else (nr & ~X32_BIT if audit == AUDIT["x86_64"] else nr)
    highest = reference_highest(profile, arch) if in_filter else None
    expected = ENOSYS if highest is not None and nr > highest else run(bare, nr, audit)
    assert run(program, nr, audit) == expected


# --- the stub alone, on synthetic maxima -------------------------------------------------

MARK = ALLOW | 0x1234  # stands for libseccomp's program


def with_mark(code):
    return code + struct.pack("=HBBI", 0x06, 0, 0, MARK)


def test_s390x_nr_zero_is_an_unknown_syscall():
    program = with_mark(enosys.stub({(AUDIT["s390x"], False): 100}))
    assert [run(program, nr, AUDIT["s390x"]) for nr in (0, 1, 100, 101)] == [ENOSYS, MARK, MARK, ENOSYS]


def test_every_arch_at_once_fits_the_short_jumps():
    arches = [getattr(lib.Arch, a) for a in dir(lib.Arch) if a.isupper() and a != "NATIVE"]
    abis = [enosys.abi_of(a, lib) for a in arches]
    highest = {(audit, x32): (X32_BIT if x32 else 0) | (500 + i) for i, (audit, x32) in enumerate(abis)}
    program = with_mark(enosys.stub(highest))
    for (audit, _x32), top in highest.items():
        assert run(program, top, audit) == MARK
        assert run(program, top + 1, audit) == ENOSYS
    assert run(program, 10_000, 0x12345678) == MARK  # an arch no section names


def test_no_maxima_no_stub():
    assert enosys.stub({}) == b""


# --- the cache ---------------------------------------------------------------------------


def test_a_program_cached_before_the_stub_is_never_loaded(tmp_path):
    """Format 1 (no stub) under its own key and under the current one: neither is read."""
    profile = profile_of()
    bare = seccomp.libseccomp_program(profile, lib)
    old_magic = b"pyrunc-seccomp-bpf 1\n"
    text = jsonc.dumps(profile, sort_keys=True)
    old_key = hashlib.sha256(f"{os.uname().machine}\n{text}".encode() + old_magic).hexdigest()
    directory = tmp_path / seccomp.CACHE_DIR
    directory.mkdir(mode=0o700)
    entry = old_magic + hashlib.sha256(bare).hexdigest().encode() + b"\n" + bare
    for key in {old_key, seccomp.profile_key(profile)}:
        (directory / (key + ".bpf")).write_bytes(entry)
        os.chmod(directory / (key + ".bpf"), 0o600)
    program = seccomp.program_for(profile, str(tmp_path))
    assert program == seccomp.compile_profile(profile) != bare
    assert run(program, 1000, enosys.abi_of(lib.system_arch(), lib)[0]) == ENOSYS
