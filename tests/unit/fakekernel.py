"""A recording test double for pyrunc.linux.kernel, the one seam over the kernel.

Privileged calls (mount, pivot_root, unshare, setns, capset, prctl, ...) are recorded and
not made; path lookups (openat2, fstatfs) go to the real kernel, so the mechanics can be
driven against a temporary directory without root.  `fail(name, errno)` makes the next
matching call raise the KernelError the real seam would.
"""

import os

from pyrunc.errors import KernelError
from pyrunc.linux import kernel

PASS_THROUGH = {"openat2", "fstatfs_type", "pidfd_open"}


class FakeKernel:
    def __init__(self, monkeypatch):
        self.calls = []
        self._failures = []
        for name in dir(kernel):
            obj = getattr(kernel, name)
            if name.startswith("_") or not callable(obj) or isinstance(obj, type):
                continue
            if getattr(obj, "__module__", None) != kernel.__name__:
                continue
            monkeypatch.setattr(kernel, name, self._wrap(name, obj))

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            self.calls.append((name, args))
            for i, (fname, err, match) in enumerate(self._failures):
                if fname == name and (match is None or match(args)):
                    del self._failures[i]
                    raise KernelError(err, f"{name} {args[1] if len(args) > 1 else ''}".strip())
            if name in PASS_THROUGH:
                return real(*args, **kwargs)
            return 0
        return call

    def fail(self, name, err, match=None):
        self._failures.append((name, err, match))

    def names(self):
        return [c[0] for c in self.calls]

    def of(self, name):
        return [c[1] for c in self.calls if c[0] == name]


def fd_target(path):
    """What a /proc/self/fd/N path the mechanics passed to mount refers to."""
    return os.readlink(path) if path and path.startswith("/proc/self/fd/") else path
