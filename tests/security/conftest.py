"""The security tests: known container-runtime escapes replayed against pyrunc with a
hostile image (or a hostile part of config.json), each checking the host afterwards.

They need root, like the integration tests.  Their ids, cgroups and host scratch
directories all carry the prefix `pyrunc-test-sec-`."""

import uuid

import pytest

from tests.conftest import Bundle, base_config, is_root
from tests.integration.rootfs_util import host_dir  # noqa: F401  (a fixture)


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="security tests run real containers and need root")
    for item in items:
        if "tests/security" in str(item.fspath):
            item.add_marker(pytest.mark.root)
            if not is_root():
                item.add_marker(skip)


@pytest.fixture
def test_id():
    return f"pyrunc-test-sec-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def bundle(tmp_path, rootfs_template):
    """The shared busybox bundle, its container in a /pyrunc-test-sec-... cgroup."""
    import shutil
    path = tmp_path / "bundle"
    path.mkdir()
    shutil.copytree(rootfs_template, path / "rootfs", symlinks=True)
    return Bundle(str(path), base_config(["true"], f"/pyrunc-test-sec-{uuid.uuid4().hex[:6]}"))
