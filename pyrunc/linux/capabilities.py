"""The five capability sets of process.capabilities.

Order matters (capabilities(7)): the bounding set is dropped while we still hold
CAP_SETPCAP; PR_SET_KEEPCAPS keeps permitted across the switch to the user's uid;
then effective/permitted/inheritable are set with capset, and ambient last, since an
ambient capability must already be permitted and inheritable.
"""

from pyrunc.errors import KernelError
from pyrunc.linux import kernel
from pyrunc.linux.tables import CAPABILITIES as NAMES

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from pyrunc.config.model import Capabilities
    from pyrunc.linux.kernel import Kernel

NUMBERS = {name: i for i, name in enumerate(NAMES)}


_last_cap: int | None = None  # the kernel's, read once: the process's every set needs it


def last_cap() -> int:
    """The kernel's highest capability number, read once per process (drop_bounding and
    the masks of apply ask it eight times); init.load_process_modules reads it before
    any namespace is joined, from the host's /proc."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:  # bytes: no text layer to build
                _last_cap = int(f.read())
        except OSError:
            return len(NAMES) - 1
    return _last_cap


def known(names: "Iterable[str]") -> list[int]:
    """Numbers of the names this kernel knows; unknown ones are skipped, as runc does."""
    top = last_cap()
    return [NUMBERS[n] for n in names if n in NUMBERS and NUMBERS[n] <= top]


def mask(names: "Iterable[str]") -> int:
    bits = 0
    for n in known(names):
        bits |= 1 << n
    return bits


def drop_bounding(k: "Kernel", caps: "Capabilities") -> None:
    keep = set(known(caps.bounding))
    for cap in range(last_cap() + 1):
        if cap not in keep:
            try:
                k.prctl(kernel.PR_CAPBSET_DROP, cap)
            except KernelError as e:
                raise KernelError(
                    e.errno, f"drop {NAMES[cap] if cap < len(NAMES) else cap} from the bounding set"
                ) from None


def apply(k: "Kernel", caps: "Capabilities") -> None:
    """Set effective, permitted, inheritable, then ambient. Call after the uid switch."""
    k.capset(mask(caps.effective), mask(caps.permitted), mask(caps.inheritable))
    k.prctl(kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_CLEAR_ALL)
    # An ambient capability must be permitted and inheritable; runc skips the others
    # (its own default config lists ambient capabilities with no inheritable set).
    allowed = mask(caps.permitted) & mask(caps.inheritable)
    for cap in known(caps.ambient):
        if allowed & (1 << cap):
            try:
                k.prctl(kernel.PR_CAP_AMBIENT, kernel.PR_CAP_AMBIENT_RAISE, cap)
            except KernelError as e:
                raise KernelError(e.errno, f"raise ambient {NAMES[cap]}") from None
