"""Signal names and numbers as runc accepts them: KILL, SIGKILL, 9, SIGRTMIN+3."""

import re
import signal

from pyrunc.errors import UsageError

_REALTIME = re.compile(r"SIGRT(MIN|MAX)([+-]\d+)?")


def parse_signal(text):
    """A signal number from a number (0 probes, as with kill(2)) or a name, with or
    without SIG, in any case; the real-time ones as SIGRTMIN+N or SIGRTMAX-N."""
    raw = text.strip()
    if raw.isdigit():
        num = int(raw)
        if 0 <= num < signal.NSIG:
            return num
        raise UsageError(f"invalid signal {text!r}: number out of range 0-{signal.NSIG - 1}")
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    rt = _REALTIME.fullmatch(name)
    if rt:
        num = (signal.SIGRTMIN if rt.group(1) == "MIN" else signal.SIGRTMAX) + int(rt.group(2) or 0)
        if signal.SIGRTMIN <= num <= signal.SIGRTMAX:
            return int(num)
        raise UsageError(f"invalid signal {text!r}: real-time signals are "
                         f"{int(signal.SIGRTMIN)}-{int(signal.SIGRTMAX)}")
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise UsageError(f"invalid signal {text!r}: unknown signal name") from None
