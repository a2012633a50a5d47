from tests.conftest import mark_needs_root


def pytest_collection_modifyitems(config, items):
    mark_needs_root(items, "integration", "integration tests run real containers and need root")
