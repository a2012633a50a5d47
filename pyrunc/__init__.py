"""pyrunc: an OCI runtime-spec compliant container runtime, compatible with runc."""

import posix
import sys

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"


def getenv(name: str) -> str:
    """os.environ.get(name, "") without importing os, whose import costs `state` and `list`
    a fifth of their time (docs/performance.md); here, not in a module of its own, which
    would cost every command another import.  The live copy once something has loaded os
    (a test, an embedding program, a command that changes the environment), else posix's,
    which nothing has changed since the process started."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ.get(name, "")  # type: ignore[no-any-return]
    return posix.environ.get(name.encode(), b"").decode(errors="surrogateescape")
