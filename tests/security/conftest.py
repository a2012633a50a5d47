"""The security tests: known container-runtime escapes replayed against pyrunc with a
hostile image (or a hostile part of config.json), each checking the host afterwards.

They need root, like the integration tests.  Their ids, cgroups and host scratch
directories all carry the prefix `pyrunc-test-sec-`."""

import uuid

import pytest

from tests.conftest import make_bundle, mark_needs_root
from tests.integration.rootfs_util import host_dir  # noqa: F401  (a fixture)


def pytest_collection_modifyitems(config, items):
    mark_needs_root(items, "tests/security", "security tests run real containers and need root")


@pytest.fixture
def test_id():
    return f"pyrunc-test-sec-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bundle(tmp_path, rootfs_template):
    """The shared busybox bundle, its container in a /pyrunc-test-sec-... cgroup."""
    return make_bundle(tmp_path / "bundle", rootfs_template, "/pyrunc-test-sec-")
