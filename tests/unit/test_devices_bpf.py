"""The device program without root: an interpreter for the instructions devices_bpf
emits, checked against an independent replay of the rules as the v1 kernel keeps them."""

import errno
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.errors import CgroupError, KernelError
from pyrunc.linux import kernel
from pyrunc.linux.cgroups import DEFAULT_ALLOWED_DEVICES
from pyrunc.linux.cgroups import devices_bpf as bpf

BLOCK, CHAR = bpf.DEV_BLOCK, bpf.DEV_CHAR
M, R, W = bpf.ACC_MKNOD, bpf.ACC_READ, bpf.ACC_WRITE
U64 = (1 << 64) - 1


# --- an interpreter for the emitted subset ---------------------------------------------


def decode(code):
    assert len(code) % 8 == 0
    out = []
    for i in range(0, len(code), 8):
        op, regs, off, imm = struct.unpack("<BBhi", code[i : i + 8])
        out.append((op, regs & 0xF, regs >> 4, off, imm))
    return out


def run(code, dev_type, major, minor, access):
    """The program's return value for one request, as the kernel would compute it."""
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    regs = {1: "ctx"}  # a register absent here was never written: reading it is a bug
    insns = decode(code)
    pc = 0
    for _ in range(10_000):
        op, dst, src, off, imm = insns[pc]
        sext = imm & U64  # imm sign-extended to 64 bits, as the kernel's JMP K compares
        pc += 1
        if op == bpf.LDX_MEM_W:
            assert regs[src] == "ctx" and off in (0, 4, 8)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == bpf.ALU32_AND_K:
            regs[dst] = regs[dst] & imm & 0xFFFFFFFF
        elif op == bpf.ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif op == bpf.ALU32_MOV_K:
            regs[dst] = imm & 0xFFFFFFFF
        elif op == bpf.JMP_JNE_K:
            pc += off if regs[dst] != sext else 0
        elif op == bpf.JMP_JSET_K:
            pc += off if regs[dst] & sext else 0
        elif op == bpf.JMP_JA:
            pc += off
        elif op == bpf.JMP_EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
    raise AssertionError("no exit")


# --- the reference: the v1 kernel's exception list, replayed ------------------------------


class Refused(Exception):
    pass


def reference(rules, dev_type, major, minor, access):
    """True/False for the request, or Refused where runc refuses the list."""
    default_allow, exceptions = False, []  # exceptions: [type, major, minor, bits]
    for rule in rules:
        kind = rule.get("type") or "a"
        if kind == "a":
            default_allow, exceptions = rule["allow"], []
            continue
        t = BLOCK if kind == "b" else CHAR
        ma = rule.get("major", -1)
        mi = rule.get("minor", -1)
        ma, mi = (None if ma < 0 else ma), (None if mi < 0 else mi)
        bits = sum({"r": R, "w": W, "m": M}[c] for c in set(rule.get("access") or "rwm"))
        same = [e for e in exceptions if e[:3] == [t, ma, mi]]
        if rule["allow"] != default_allow:  # dev_exception_add: merge with an equal one
            if same:
                same[0][3] |= bits
            else:
                exceptions.append([t, ma, mi, bits])
            continue
        for e in exceptions:  # runc: no hole in a wider exception
            wider = e[1] in (None, ma) and e[2] in (None, mi) and e[:3] != [t, ma, mi]
            if e[0] == t and wider and e[3] & bits:
                raise Refused
        for e in same:  # dev_exception_rm: the equal one only
            e[3] &= ~bits
        exceptions = [e for e in exceptions if e[3]]

    def matches(e):
        return e[0] == dev_type and e[1] in (None, major) and e[2] in (None, minor)

    if default_allow:  # match_exception_partial: any shared bit denies
        return not any(matches(e) and e[3] & access for e in exceptions)
    return any(matches(e) and not access & ~e[3] for e in exceptions)  # match_exception


def verdict(rules, dev_type, major, minor, access):
    return run(bpf.program(rules), dev_type, major, minor, access) == 1


# --- random rule lists -------------------------------------------------------------------

# Few numbers, so that rules often name the same device and requests often hit them.
NUMBERS = st.sampled_from([None, None, -1, 1, 1, 3, 4095])
ACCESS = st.sampled_from([None, "", "r", "w", "m", "rw", "rm", "wm", "rwm", "mwr"])


@st.composite
def rule_lists(draw):
    rules = []
    for _ in range(draw(st.integers(0, 8))):
        rule = {"allow": draw(st.booleans())}
        kind = draw(st.sampled_from([None, "a", "b", "c", "c", "c", "c"]))
        for key, value in (
            ("type", kind),
            ("major", draw(NUMBERS)),
            ("minor", draw(NUMBERS)),
            ("access", draw(ACCESS)),
        ):
            if value is not None:
                rule[key] = value
        rules.append(rule)
    return rules


REQUESTS = st.tuples(
    st.sampled_from([BLOCK, CHAR]),
    st.sampled_from([1, 1, 3, 5, 4095]),
    st.sampled_from([1, 3, 3, 9, (1 << 20) - 1]),
    st.integers(1, 7),
)


@settings(max_examples=1500, deadline=None)
@given(rule_lists(), st.lists(REQUESTS, min_size=1, max_size=8))
def test_program_decides_as_the_v1_kernel_would(rules, requests):
    try:
        expected = [reference(rules, *req) for req in requests]
    except Refused:
        with pytest.raises(CgroupError, match=r"^linux\.resources\.devices\[\d+\]: cannot"):
            bpf.program(rules)
        return
    code = bpf.program(rules)
    assert [run(code, *req) == 1 for req in requests] == expected


@settings(max_examples=300, deadline=None)
@given(rule_lists())
def test_program_shape(rules):
    try:
        code = bpf.program(rules)
    except CgroupError:
        return
    insns = decode(code)
    assert insns[-1][0] == bpf.JMP_EXIT and insns[-2][:2] == (bpf.ALU32_MOV_K, 0)
    for pc, (op, dst, src, off, imm) in enumerate(insns):
        assert dst <= 10 and src <= 10
        if op in (bpf.JMP_JNE_K, bpf.JMP_JSET_K, bpf.JMP_JA):
            assert off >= 0 and pc + 1 + off < len(insns)  # forward, inside the program
        if op == bpf.ALU32_MOV_K and dst == 0:
            assert imm in (0, 1)  # the kernel accepts no other verdict
            assert insns[pc + 1][0] == bpf.JMP_EXIT


# --- cases worth spelling out -----------------------------------------------------------

DENY_ALL = {"allow": False, "access": "rwm"}
RUNC_DEFAULT = [DENY_ALL] + [dict(r) for r in DEFAULT_ALLOWED_DEVICES]


def test_runc_default_list():
    assert verdict(RUNC_DEFAULT, CHAR, 1, 3, R | W)  # /dev/null
    assert verdict(RUNC_DEFAULT, CHAR, 1, 9, R)  # /dev/urandom
    assert verdict(RUNC_DEFAULT, CHAR, 136, 4, R | W)  # /dev/pts/4
    assert verdict(RUNC_DEFAULT, BLOCK, 8, 0, M)  # mknod is allowed, ...
    assert not verdict(RUNC_DEFAULT, BLOCK, 8, 0, R)  # ... opening a disk is not
    assert not verdict(RUNC_DEFAULT, CHAR, 1, 1, R)  # /dev/mem
    assert not verdict(RUNC_DEFAULT, CHAR, 10, 229, R | W)  # /dev/fuse


def test_empty_list_denies_everything():
    assert not verdict([], CHAR, 1, 3, R)
    assert not verdict([], BLOCK, 8, 0, M)


def test_allow_all_and_deny_all():
    assert verdict([{"allow": True, "access": "rwm"}], BLOCK, 8, 0, R | W)
    assert not verdict([{"allow": True}, DENY_ALL], CHAR, 1, 3, R)


def test_type_a_resets_whatever_its_access_says():
    # The kernel reads nothing after the `a`: deny-all, not "deny reads".
    assert not verdict([{"allow": True}, {"allow": False, "access": "r"}], CHAR, 1, 3, W)
    assert not verdict([{"allow": True}, {"allow": False, "major": 1, "minor": 3}], CHAR, 5, 0, R)


def test_allow_needs_every_bit_asked_for():
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}]
    assert verdict(rules, CHAR, 1, 3, R)
    assert not verdict(rules, CHAR, 1, 3, R | W)


def test_allows_of_one_device_merge_but_not_across_wildcards():
    merged = [
        DENY_ALL,
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "w"},
    ]
    assert verdict(merged, CHAR, 1, 3, R | W)
    split = [
        DENY_ALL,
        {"allow": True, "type": "c", "major": 1, "access": "r"},
        {"allow": True, "type": "c", "minor": 3, "access": "w"},
    ]
    assert verdict(split, CHAR, 1, 3, R) and verdict(split, CHAR, 1, 3, W)
    assert not verdict(split, CHAR, 1, 3, R | W)


def test_deny_applies_on_any_shared_bit():
    rules = [{"allow": True}, {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]
    assert not verdict(rules, CHAR, 1, 3, R | W)
    assert verdict(rules, CHAR, 1, 3, R)
    assert verdict(rules, BLOCK, 1, 3, W)


def test_a_later_rule_removes_an_equal_exception():
    rules = [
        DENY_ALL,
        {"allow": True, "type": "c", "major": 1, "minor": 3},
        {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
    ]
    assert verdict(rules, CHAR, 1, 3, R | M)
    assert not verdict(rules, CHAR, 1, 3, W)


def test_a_wider_later_rule_leaves_a_narrower_exception():
    # v1 and runc alike: `deny c *:*` removes only an exception for exactly c *:*.
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 1, "minor": 3}, {"allow": False, "type": "c"}]
    assert verdict(rules, CHAR, 1, 3, R)


def test_no_hole_in_a_wider_rule():
    rules = [
        DENY_ALL,
        {"allow": True, "type": "c", "major": 1, "access": "rw"},
        {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
    ]
    with pytest.raises(CgroupError) as e:
        bpf.program(rules)
    assert str(e.value) == (
        "linux.resources.devices[2]: cannot deny c 1:3 w: an earlier rule allows "
        "c 1:* rw, and device rules cannot punch a hole in a wider rule"
    )
    # No shared bit, no hole: accepted.
    rules[2]["access"] = "m"
    assert verdict(rules, CHAR, 1, 3, R | W)


def test_huge_numbers():
    rules = [DENY_ALL, {"allow": True, "type": "c", "major": 0xFFFFFFFE, "minor": 1 << 31}]
    assert not verdict(rules, CHAR, 4095, (1 << 20) - 1, R)
    with pytest.raises(CgroupError, match=r"devices\[1\]\.major: 4294967296 does not fit in 32 bits"):
        bpf.program([DENY_ALL, {"allow": True, "type": "c", "major": 1 << 32}])


def test_bad_rules_name_the_field():
    with pytest.raises(CgroupError, match=r"devices\[0\]\.type: 'u' is not one of"):
        bpf.program([{"allow": True, "type": "u"}])
    with pytest.raises(CgroupError, match=r"devices\[1\]\.access: 'rx' may only contain"):
        bpf.program([DENY_ALL, {"allow": True, "type": "c", "access": "rx"}])


# --- apply() through the kernel seam -------------------------------------------------


class FakeBpf:
    """bpf(2) doubled: two programs attached already, 7 ours and 8 someone else's."""

    def __init__(self, fail_attach=None):
        self.calls, self.fds = [], []
        self.fail_attach = fail_attach
        self.names = {7: bpf.PROG_NAME, 8: "sd_devices"}

    def _fd(self, what):
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)  # a real fd: apply must close it
        self.fds.append(fd)
        self.fd_of = getattr(self, "fd_of", {})
        self.fd_of[fd] = what
        return fd

    def bpf_prog_query(self, target_fd, attach_type, what):
        self.calls.append(("query", attach_type))
        return [7, 8]

    def bpf_prog_get_fd_by_id(self, prog_id, what):
        return self._fd(prog_id)

    def bpf_prog_name(self, fd, what):
        return self.names[self.fd_of[fd]]

    def bpf_prog_load(self, prog_type, code, license, name, attach_type, what):
        self.calls.append(("load", prog_type, name, len(code) // 8))
        return self._fd("new")

    def bpf_prog_attach(self, target_fd, prog_fd, attach_type, flags, what):
        self.calls.append(("attach", self.fd_of[prog_fd], attach_type, flags))
        if self.fail_attach:
            raise KernelError(self.fail_attach, what)

    def bpf_prog_detach(self, target_fd, prog_fd, attach_type, what):
        self.calls.append(("detach", self.fd_of[prog_fd], attach_type))

    def all_closed(self):
        for fd in self.fds:
            with pytest.raises(OSError) as e:
                os.fstat(fd)
            assert e.value.errno == errno.EBADF


def test_apply_attaches_then_detaches_only_our_old_program(monkeypatch, tmp_path):
    fake = FakeBpf()
    bpf.apply(fake, str(tmp_path), RUNC_DEFAULT)
    steps = [c[:2] if c[0] != "load" else c[:3] for c in fake.calls]
    assert steps == [
        ("query", kernel.BPF_CGROUP_DEVICE),
        ("load", kernel.BPF_PROG_TYPE_CGROUP_DEVICE, bpf.PROG_NAME),
        ("attach", "new"),
        ("detach", 7),
    ]
    assert fake.calls[2] == ("attach", "new", kernel.BPF_CGROUP_DEVICE, kernel.BPF_F_ALLOW_MULTI)
    fake.all_closed()


def test_apply_keeps_the_old_program_when_attaching_fails(monkeypatch, tmp_path):
    fake = FakeBpf(fail_attach=errno.EPERM)
    with pytest.raises(KernelError) as e:
        bpf.apply(fake, str(tmp_path), RUNC_DEFAULT)
    assert str(e.value) == (
        f"linux.resources.devices: attach the device program to {tmp_path}: operation not permitted"
    )
    assert not [c for c in fake.calls if c[0] == "detach"]
    fake.all_closed()


def test_apply_refuses_a_bad_list_before_touching_the_kernel(monkeypatch, tmp_path):
    fake = FakeBpf()
    with pytest.raises(CgroupError):
        bpf.apply(fake, str(tmp_path), [{"allow": True, "type": "x"}])
    assert fake.calls == []


def test_apply_names_a_missing_cgroup(tmp_path):
    with pytest.raises(KernelError, match=r"^linux\.resources\.devices: open .*/gone: no such file"):
        bpf.apply(kernel.Kernel(), str(tmp_path / "gone"), [])
