"""A recording test double of pyrunc.linux.kernel.Kernel, the one seam over the kernel.

It is passed in where the real kernel would be (a function's `k`, an InitContext's
`kernel`, a Seams' `kernel`); nothing is patched.  Privileged calls (mount, pivot_root,
unshare, setns, capset, prctl, ...) are recorded and not made; path lookups (openat2,
fstatfs) go to the real kernel, so the mechanics can be driven against a temporary
directory without root.  `fail(name, errno)` makes the next matching call raise the
KernelError the real seam would.
"""

import os

from pyrunc.errors import KernelError
from pyrunc.linux import kernel

PASS_THROUGH = {"openat2", "fstatfs_type", "pidfd_open"}


class FakeKernel:
    def __init__(self):
        self.calls = []
        self._failures = []
        self._real = kernel.Kernel()

    def __getattr__(self, name):
        # Only the real kernel's public methods: a call the real one lacks fails as it would.
        if name.startswith("_") or not callable(getattr(kernel.Kernel, name, None)):
            raise AttributeError(name)
        call = self._recording(name, getattr(self._real, name))
        setattr(self, name, call)
        return call

    def _recording(self, name, real):
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
