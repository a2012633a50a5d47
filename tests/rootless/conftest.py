"""Rootless tests: pyrunc run by an unprivileged user the test makes (tests/rootless_user.py).

The tests themselves run as root (they add and remove the user); every pyrunc command of
theirs runs as that user, through the pyrunc any user can execute (.venv-users)."""

from tests.conftest import mark_needs_root
from tests.rootless_user import make_user, rootless_user, users_pyrunc  # noqa: F401  (fixtures)


def pytest_collection_modifyitems(config, items):
    mark_needs_root(items, "tests/rootless", "rootless tests add a test user and need root")
