"""Namespaces of a test container's config: every type the spec knows, one entry per
type, and the host ids a user namespace's root is mapped to (the `userns_bundle` fixture
in conftest.py)."""

ALL_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
HOST_ID = 100000
ID_RANGE = 65536


def set_namespaces(bundle, **paths):
    """Namespaces of the config: one entry per type, with a path where given."""
    bundle.config["linux"]["namespaces"] = [{"type": t, "path": p} if p else {"type": t} for t, p in paths.items()]
