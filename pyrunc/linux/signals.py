"""The table of signal names (`names`).  `kill`'s parsing of one name or number, as runc
accepts them (KILL, SIGKILL, 9, SIGRTMIN+3), is signalling.parse_signal: kill imports
that module anyway, and this one cost it a module's import."""

import _signal  # signal.py builds its enums at import, which costs more than a `kill`

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
    return name.startswith("SIG") and not name.startswith(("SIG_", "SIGRT"))  # signalling.parse_signal's test too
