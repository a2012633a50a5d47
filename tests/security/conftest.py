"""The security tests: known container-runtime escapes replayed against pyrunc with a
hostile image (or a hostile part of config.json), each checking the host afterwards.

They need root, like the integration tests.  Their ids, cgroups and host scratch
directories all carry the prefix `pyrunc-test-sec-`."""

import os
import uuid

import pytest

from tests.conftest import make_bundle, mark_needs_root
from tests.integration.rootfs_util import host_dir  # noqa: F401  (a fixture)
from tests.security.sec_util import tree


def pytest_collection_modifyitems(config, items):
    mark_needs_root(items, "tests/security", "security tests run real containers and need root")


@pytest.fixture
def test_id():
    return f"pyrunc-test-sec-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bundle(tmp_path, rootfs_template):
    """The shared busybox bundle, its container in a /pyrunc-test-sec-... cgroup."""
    return make_bundle(tmp_path / "bundle", rootfs_template, "/pyrunc-test-sec-")


@pytest.fixture
def host_secrets(host_dir):
    """A host directory holding a secret, and a secret file: what a leaked fd would open."""
    d = host_dir("sec-leak")
    with open(os.path.join(d, "secret"), "w") as f:
        f.write("host-secret\n")
    before = tree(d)
    yield d
    assert tree(d) == before  # nothing was created, changed or removed there
