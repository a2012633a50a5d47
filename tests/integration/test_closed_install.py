"""A pyrunc whose files the container's mapped root cannot reach (installed under a 0700
directory, as in a CI clone or under /root): a container in a new user namespace is
still built, because the init imports all it needs before its first namespace
(init.load_modules), not when a step first needs a module."""

import os
import shutil
import sys
import tempfile

import pytest

import pyrunc as pyrunc_package
from pyrunc import launcher

HERE = os.path.dirname(os.path.abspath(pyrunc_package.__file__))


@pytest.fixture(scope="module")
def closed_launcher():
    """The `pyrunc` command built on a copy of pyrunc/ in a directory only host root may
    enter (mkdtemp makes it 0700)."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler: `make setup` installs gcc")
    top = tempfile.mkdtemp(prefix="pyrunc-test-closed-")
    try:
        shutil.copytree(HERE, os.path.join(top, "pyrunc"), ignore=shutil.ignore_patterns("__pycache__"))
        spec = os.path.join(os.path.dirname(HERE), "spec")
        if os.path.isdir(spec):
            shutil.copytree(spec, os.path.join(top, "spec"))
        dest = os.path.join(top, "pyrunc-command")
        paths = [top, *launcher.import_path()[1:]]
        assert launcher.compile_launcher(dest, sys.executable, launcher.boot_code(paths))
        assert os.stat(top).st_mode & 0o077 == 0
        yield dest
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_user_namespace_container_runs_from_a_closed_install(pyrunc, userns_bundle, test_id, closed_launcher):
    pyrunc.command = [closed_launcher]
    userns_bundle.config["process"]["args"] = ["sh", "-c", "cat /proc/self/uid_map; ls /sys/class/net"]
    userns_bundle.write()
    r = pyrunc("run", "--bundle", userns_bundle.path, test_id)
    assert r.code == 0, r
    lines = r.out.split()
    assert lines[:3] != ["0", "0", "4294967295"]  # a new user namespace's map, not the host's
    assert "lo" in lines  # its own network namespace, brought up before the rootfs
