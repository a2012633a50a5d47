"""Capability names, numbers and masks, and the order the sets are applied in (no root)."""

import errno
import sys

import pytest

from pyrunc.config import model
from pyrunc.errors import KernelError
from pyrunc.linux import capabilities, kernel
from tests.unit.fakekernel import FakeKernel

# runc's default capabilities: CAP_AUDIT_WRITE(29), CAP_KILL(5), CAP_NET_BIND_SERVICE(10).
RUNC_DEFAULT = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")


@pytest.fixture
def fake():
    return FakeKernel()


@pytest.fixture
def kernel_knows_40(monkeypatch):
    monkeypatch.setattr(capabilities, "last_cap", lambda: 40)


def caps(**sets):
    return model.Capabilities(**{name: tuple(sets.get(name, ())) for name in model.Capabilities.__slots__})


@pytest.mark.parametrize(
    "name,number",
    [
        ("CAP_CHOWN", 0),
        ("CAP_KILL", 5),
        ("CAP_SETPCAP", 8),
        ("CAP_NET_BIND_SERVICE", 10),
        ("CAP_SYS_ADMIN", 21),
        ("CAP_SYS_RESOURCE", 24),
        ("CAP_AUDIT_WRITE", 29),
        ("CAP_MAC_ADMIN", 33),
        ("CAP_AUDIT_READ", 37),
        ("CAP_PERFMON", 38),
        ("CAP_BPF", 39),
        ("CAP_CHECKPOINT_RESTORE", 40),
    ],
)
def test_names_have_the_kernels_numbers(name, number):
    assert capabilities.NUMBERS[name] == number


def test_every_number_has_one_name():
    assert sorted(capabilities.NUMBERS.values()) == list(range(len(capabilities.NAMES)))


def test_mask_of_runc_default_set(kernel_knows_40):
    assert capabilities.mask(RUNC_DEFAULT) == 0x20000420


def test_mask_of_every_capability_is_all_bits_up_to_last_cap(kernel_knows_40):
    assert capabilities.mask(capabilities.NAMES) == (1 << 41) - 1


def test_mask_ignores_order_and_duplicates(kernel_knows_40):
    assert capabilities.mask(["CAP_KILL", "CAP_CHOWN", "CAP_KILL"]) == (1 << 5) | 1


def test_empty_set_is_zero(kernel_knows_40):
    assert capabilities.mask(()) == 0


def test_unknown_and_lowercase_names_are_skipped(kernel_knows_40):
    # runc skips names it does not know instead of failing; names are case-sensitive.
    assert capabilities.mask(["CAP_KILL", "CAP_NOT_A_CAP", "cap_chown", "KILL"]) == 1 << 5


def test_capabilities_newer_than_the_kernel_are_skipped(monkeypatch):
    monkeypatch.setattr(capabilities, "last_cap", lambda: 37)  # a kernel before CAP_PERFMON
    assert capabilities.known(["CAP_BPF", "CAP_AUDIT_READ", "CAP_PERFMON"]) == [37]
    assert capabilities.mask(capabilities.NAMES) == (1 << 38) - 1


def test_last_cap_reads_the_running_kernel():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert capabilities.last_cap() == int(f.read())


def test_bounding_keeps_exactly_the_listed_set(fake, kernel_knows_40):
    capabilities.drop_bounding(fake, caps(bounding=RUNC_DEFAULT))
    dropped = {a[1] for a in fake.of("prctl") if a[0] == kernel.PR_CAPBSET_DROP}
    assert dropped == set(range(41)) - {5, 10, 29}


def test_empty_bounding_drops_everything(fake, kernel_knows_40):
    capabilities.drop_bounding(fake, caps())
    dropped = [a[1] for a in fake.of("prctl") if a[0] == kernel.PR_CAPBSET_DROP]
    assert dropped == list(range(41))


def test_bounding_drop_failure_names_the_capability(fake, kernel_knows_40):
    fake.fail("prctl", errno.EPERM, match=lambda a: a[:2] == (kernel.PR_CAPBSET_DROP, 21))
    with pytest.raises(KernelError) as e:
        capabilities.drop_bounding(fake, caps(bounding=RUNC_DEFAULT))
    assert str(e.value) == "drop CAP_SYS_ADMIN from the bounding set: operation not permitted"


def test_apply_sets_the_three_masks_then_clears_and_raises_ambient(fake, kernel_knows_40):
    capabilities.apply(
        fake, caps(effective=RUNC_DEFAULT, permitted=RUNC_DEFAULT, inheritable=("CAP_KILL",), ambient=("CAP_KILL",))
    )
    assert fake.of("capset") == [(0x20000420, 0x20000420, 1 << 5)]
    prctls = [a for a in fake.of("prctl") if a[0] == kernel.PR_CAP_AMBIENT]
    assert prctls == [
        (kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_CLEAR_ALL),
        (kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_RAISE, 5),
    ]
    assert fake.names().index("capset") < fake.names().index("prctl")


def test_ambient_needs_both_permitted_and_inheritable(fake, kernel_knows_40):
    # runc's own default config lists ambient capabilities without inheritable ones.
    capabilities.apply(
        fake,
        caps(
            effective=RUNC_DEFAULT,
            permitted=("CAP_KILL", "CAP_CHOWN"),
            inheritable=("CAP_CHOWN", "CAP_NET_BIND_SERVICE"),
            ambient=("CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"),
        ),
    )
    raised = [a[2] for a in fake.of("prctl") if a[:2] == (kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_RAISE)]
    assert raised == [0]


def test_ambient_raise_failure_names_the_capability(fake, kernel_knows_40):
    fake.fail("prctl", errno.EPERM, match=lambda a: a[:2] == (kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_RAISE))
    with pytest.raises(KernelError) as e:
        capabilities.apply(fake, caps(permitted=("CAP_KILL",), inheritable=("CAP_KILL",), ambient=("CAP_KILL",)))
    assert str(e.value) == "raise ambient CAP_KILL: operation not permitted"


def test_no_inheritable_means_an_empty_inheritable_mask(fake, kernel_knows_40):
    capabilities.apply(fake, caps(effective=RUNC_DEFAULT, permitted=RUNC_DEFAULT, ambient=RUNC_DEFAULT))
    assert fake.of("capset") == [(0x20000420, 0x20000420, 0)]
    assert not [a for a in fake.of("prctl") if a[:2] == (kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_RAISE)]


def test_capset_splits_a_mask_into_the_two_32_bit_words():
    seen = {}

    def fake_syscall(nr, hdr, data):
        seen["header"] = hdr
        seen["words"] = [int.from_bytes(data[i : i + 4], sys.byteorder) for i in range(0, 24, 4)]
        return 0

    real = kernel.Kernel()
    real._syscall = fake_syscall  # the real capset's packing, its syscall not made
    real.capset((1 << 40) | (1 << 5), 1 << 33, 1)
    # struct __user_cap_header_struct (version 3, pid 0), then two data structs of
    # (effective, permitted, inheritable): the low 32 capabilities, then the rest
    assert seen["header"] == (0x20080522).to_bytes(4, sys.byteorder) + bytes(4)
    assert seen["words"] == [1 << 5, 0, 1, 1 << 8, 1 << 1, 0]
