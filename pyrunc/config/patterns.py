"""The config schema's regular expressions, matched without the re module.

jsonschema checks a "pattern" with Python's re.search; schema_check.py must give the
same verdict, and importing re (with enum under it) would cost more than the whole
check.  The patterns spec/ uses are few and simple, so each has a plain function here
with re.search's exact semantics, `$` matching before one final newline included
(tests/unit/test_patterns.py compares each with re on generated strings).  Any other
pattern goes to re, compiled on first use.
"""

_DIGITS = frozenset("0123456789")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_UPPER_ = _UPPER | {"_"}
_CPUS = frozenset("0123456789, -")

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable
    from re import Match
    from typing import Protocol

    class Pattern(Protocol):
        def search(self, s: str, /) -> "Match[str] | bool | None": ...


def _rlimit(t: str) -> bool:  # RLIMIT_[A-Z]+
    return len(t) > 7 and t.startswith("RLIMIT_") and _UPPER.issuperset(t[7:])


def _capability(t: str) -> bool:  # CAP_[A-Z_]+
    return len(t) > 4 and t.startswith("CAP_") and _UPPER_.issuperset(t[4:])


def _hugepage_size(t: str) -> bool:  # [1-9][0-9]*[KMG]B
    return len(t) >= 3 and t[0] in "123456789" and t[-2] in "KMG" and t[-1] == "B" and _DIGITS.issuperset(t[1:-2])


# ^BODY$: the body spans the whole string, or all of it but one final "\n".
_ANCHORED: "dict[str, Callable[[str], bool]]" = {
    "^RLIMIT_[A-Z]+$": _rlimit,
    "^CAP_[A-Z_]+$": _capability,
    "^[0-9, -]*$": _CPUS.issuperset,
    "^[cbup]$": lambda t: len(t) == 1 and t in "cbup",
    "^[1-9][0-9]*[KMG]B$": _hugepage_size,
    "^MB:[^\\n]*$": lambda t: t.startswith("MB:") and "\n" not in t[3:],
}


class _Anchored:
    def __init__(self, body: "Callable[[str], bool]") -> None:
        self.body = body

    def search(self, s: str) -> bool | None:
        if self.body(s) or (s.endswith("\n") and self.body(s[:-1])):
            return True
        return None


class _AnyCharacter:  # .{1,} anywhere: one character that is not a newline
    @staticmethod
    def search(s: str) -> bool | None:
        return True if s.strip("\n") else None


class _Compiled:
    """re.compile(pattern), done at the first search."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.regex: re.Pattern[str] | None = None

    def search(self, s: str) -> "Match[str] | None":
        if self.regex is None:
            import re

            self.regex = re.compile(self.pattern)
        return self.regex.search(s)


def compile(pattern: str) -> "Pattern":
    """An object whose search(s) is true where re.search(pattern, s) is."""
    if pattern == ".{1,}":
        return _AnyCharacter()
    if pattern in _ANCHORED:
        return _Anchored(_ANCHORED[pattern])
    return _Compiled(pattern)
