"""Signal names and numbers as runc accepts them: KILL, SIGKILL, 9, SIGRTMIN+3."""

import _signal  # signal.py builds its enums at import, which costs more than a `kill`

from pyrunc.errors import UsageError

# Every name the kernel's headers give, aliases too (SIGIOT, SIGPOLL, SIGCLD): what
# signal.Signals[name] accepts.
_BY_NAME: dict[str, int] = {
    name: getattr(_signal, name)
    for name in dir(_signal)
    if name.startswith("SIG") and not name.startswith(("SIG_", "SIGRT"))
}


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
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UsageError(f"invalid signal {text!r}: unknown signal name") from None


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
