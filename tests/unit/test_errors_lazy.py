"""pyrunc.errors reads the build commands' exception types from build_errors.py when they
are asked for (docs/performance.md): they are the same classes wherever they are named,
and a light command never loads them (tests/unit/test_imports.py pins that)."""

import subprocess
import sys

import pytest

from pyrunc import build_errors, errors
from pyrunc.errors import ConfigError, ContainerError, ImageError


def test_the_build_errors_are_one_class_each_and_pyrunc_errors():
    assert ConfigError is errors.ConfigError is build_errors.ConfigError
    assert ContainerError is build_errors.ContainerError
    assert ImageError is build_errors.ImageError
    for cls in (ConfigError, ContainerError, ImageError):
        assert issubclass(cls, errors.PyruncError)
    assert str(ConfigError(["a", "b"], bundle="/b x")) == (
        "invalid config.json: a (1 of 2 problems; `pyrunc validate --bundle '/b x'` lists them all)"
    )


def test_an_unknown_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchError'"):
        errors.NoSuchError  # noqa: B018


def test_importing_errors_creates_no_build_error_class():
    code = "import sys; import pyrunc.errors; print('pyrunc.build_errors' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "False"
