"""The process's environment without importing os, whose import costs `state` and `list`
a fifth of their time (docs/performance.md)."""

import posix
import sys


def getenv(name: str) -> str:
    """os.environ.get(name, ""): the live copy once something has loaded os (a test, an
    embedding program, a command that changes the environment), else posix's, which nothing
    has changed since the process started."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ.get(name, "")  # type: ignore[no-any-return]
    return posix.environ.get(name.encode(), b"").decode(errors="surrogateescape")
