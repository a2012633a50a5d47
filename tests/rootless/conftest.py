"""Rootless tests: pyrunc run by an unprivileged user the test makes (tests/rootless_user.py).

The tests themselves run as root (they add and remove the user); every pyrunc command of
theirs runs as that user, through the pyrunc any user can execute (.venv-users)."""

import pytest

from tests.conftest import mark_needs_root
from tests.rootless.rl_util import UserBundle, UserPyrunc
from tests.rootless_user import make_user, rootless_user, users_pyrunc  # noqa: F401  (fixtures)


def pytest_collection_modifyitems(config, items):
    mark_needs_root(items, "tests/rootless", "rootless tests add a test user and need root")


@pytest.fixture
def user_pyrunc(rootless_user, users_pyrunc):
    """pyrunc as the test user; what a test leaves is force-deleted afterwards."""
    runner = UserPyrunc(rootless_user, users_pyrunc)
    yield runner
    runner.clean()


@pytest.fixture
def user_bundle(rootless_user, user_pyrunc):
    """A busybox bundle the test user owns, from `pyrunc spec --rootless`."""
    return UserBundle(rootless_user, user_pyrunc)
