"""Signal names and numbers as runc accepts them: KILL, SIGKILL, 9, SIGRTMIN+3."""

import _signal  # signal.py builds its enums at import, which costs more than a `kill`

from pyrunc.errors import UsageError

_names: dict[str, int] | None = None


def names() -> dict[str, int]:
    """Every name the kernel's headers give, aliases too (SIGIOT, SIGPOLL, SIGCLD): what
    signal.Signals[name] accepts.  Made when first asked for: `kill` looks up one name,
    and the table (a sorted dir() of _signal) cost it more than the rest of this module."""
    global _names
    if _names is None:
        _names = {n: getattr(_signal, n) for n in dir(_signal) if _is_name(n)}
    return _names


def _is_name(name: str) -> bool:
    return name.startswith("SIG") and not name.startswith(("SIG_", "SIGRT"))


def parse_signal(text: str) -> int:
    """A signal number from a number (0 probes, as with kill(2)) or a name, with or
    without SIG, in any case; the real-time ones as SIGRTMIN+N or SIGRTMAX-N."""
    raw = text.strip()
    if raw.isdigit():
        num = int(raw)
        if 0 <= num < _signal.NSIG:
            return num
        raise UsageError(f"invalid signal {text!r}: number out of range 0-{_signal.NSIG - 1}")
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith(("SIGRTMIN", "SIGRTMAX")):
        return _realtime(text, name)
    found = getattr(_signal, name, None) if _is_name(name) else None  # names()'s, one looked up
    if type(found) is not int:
        raise UsageError(f"invalid signal {text!r}: unknown signal name")
    return found


def _realtime(text: str, name: str) -> int:
    """SIGRTMIN, SIGRTMAX, SIGRTMIN+N, SIGRTMAX-N (N in ASCII digits)."""
    base = _signal.SIGRTMIN if name.startswith("SIGRTMIN") else _signal.SIGRTMAX
    offset = name[8:]
    if offset and not (offset[0] in "+-" and offset[1:].isascii() and offset[1:].isdigit()):
        raise UsageError(f"invalid signal {text!r}: unknown signal name")
    num: int = base + int(offset or 0)
    if _signal.SIGRTMIN <= num <= _signal.SIGRTMAX:
        return num
    raise UsageError(f"invalid signal {text!r}: real-time signals are {_signal.SIGRTMIN}-{_signal.SIGRTMAX}")
