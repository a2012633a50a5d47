"""Fixtures of the engine tests: the image tarballs, built once per session, and the
root marking of the whole directory."""

import os
import pathlib
import shutil
import tempfile

import pytest

from tests.conftest import mark_needs_root
from tests.e2e.harness import PREFIX
from tests.e2e.image import build_image, find_busybox


def pytest_collection_modifyitems(config, items):
    mark_needs_root(items, os.path.join("tests", "e2e"), "e2e tests run real engines and need root")


@pytest.fixture(scope="session")
def image_dir():
    """A directory for the image tarballs, removed at the end of the session."""
    if not find_busybox():
        pytest.skip("no static busybox for the test image (scripts/setup-engines.sh installs busybox-static)")
    path = tempfile.mkdtemp(prefix=f"{PREFIX}images-")
    yield pathlib.Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_image(image_dir):
    """(tarball, reference as containerd and podman name it) of the busybox image, Cmd sh."""
    path = str(image_dir / "busybox.tar")
    return path, build_image(path, "e2e/busybox:latest")


@pytest.fixture(scope="session")
def pause_image(image_dir):
    """A CRI sandbox image: the same busybox, whose Cmd sleeps for ever."""
    path = str(image_dir / "pause.tar")
    return path, build_image(path, "e2e/pause:latest", cmd=("sleep", "2147483647"))
