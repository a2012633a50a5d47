"""Signal names and numbers as runc accepts them: KILL, SIGKILL, 9, SIGRTMIN+3."""

import signal

from pyrunc.errors import UsageError


def parse_signal(text):
    raw = text.strip()
    if raw.isdigit():
        num = int(raw)
        if 0 < num < signal.NSIG:
            return num
        raise UsageError(f"invalid signal {text!r}: number out of range 1-{signal.NSIG - 1}")
    name = raw.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    for base, lo in (("SIGRTMIN", signal.SIGRTMIN), ("SIGRTMAX", signal.SIGRTMAX)):
        if name.startswith(base) and (len(name) == len(base) or name[len(base)] in "+-"):
            offset = int(name[len(base):] or 0) if name[len(base):].lstrip("+-").isdigit() or name == base else None
            if offset is not None and signal.SIGRTMIN <= lo + offset <= signal.SIGRTMAX:
                return lo + offset
            raise UsageError(f"invalid signal {text!r}")
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise UsageError(f"invalid signal {text!r}: unknown signal name") from None
