import shutil
import tempfile

import pytest

from tests.conftest import mark_needs_root, userns_copy
from tests.integration.ns_util import ALL_TYPES, HOST_ID, ID_RANGE, set_namespaces


def pytest_collection_modifyitems(config, items):
    mark_needs_root(items, "integration", "integration tests run real containers and need root")


@pytest.fixture
def userns_bundle(bundle):
    """The bundle moved to a directory the container's mapped root can reach, its rootfs
    owned by the mapped root: the pytest tmp dirs are 0700 and owned by unmapped host root."""
    parent = tempfile.mkdtemp(prefix="pyrunc-test-userns-")
    try:
        b = userns_copy(bundle, parent, HOST_ID, ID_RANGE)
        set_namespaces(b, **{t: None for t in ALL_TYPES})
        yield b
    finally:
        shutil.rmtree(parent, ignore_errors=True)
