import pytest

from tests.conftest import is_root


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="integration tests run real containers and need root")
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.root)
            if not is_root():
                item.add_marker(skip)
