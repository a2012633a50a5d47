"""The pyrunc any user can run (scripts/setup-users.sh, `make setup`): found by the
fixture, executable by an unprivileged user, and sealed against CVE-2019-5736 without
CAP_SYS_ADMIN (a memfd copy of the interpreter instead of a read-only mount clone)."""

import json
import os
import shutil
import stat

import pytest

from pyrunc import launcher
from tests.rootless_user import USERS_SRC, USERS_VENV

REPORT_EXE = """import json, os, sys
from pyrunc.linux import sealed_exe
print(json.dumps([os.readlink("/proc/self/exe"), sealed_exe.is_sealed(), sys.argv[1:],
                  sys.flags.isolated, sys.flags.no_site, sys.version_info[:2]]))
"""


def test_an_unprivileged_user_runs_it(rootless_user, users_pyrunc):
    r = rootless_user.run([users_pyrunc, "--version"])
    assert r.returncode == 0, r
    assert r.stdout.startswith("pyrunc version "), r.stdout
    # Everything it starts from is reachable by others: the launcher, the interpreter
    # (Debian's, not one under /root) and the venv's packages.
    interpreter = os.path.realpath(os.path.join(USERS_VENV, "bin", "python"))
    for path in (users_pyrunc, interpreter):
        assert os.stat(path).st_mode & stat.S_IXOTH, path
    with open(users_pyrunc, "rb") as f:
        exe = f.read()
    assert exe[:4] == b"\x7fELF" or shutil.which("cc") is None
    assert os.path.join(USERS_VENV, "bin", "python").encode() in exe


def test_it_starts_sealed_without_cap_sys_admin(rootless_user, users_pyrunc):
    """The launcher as the users' install builds it, with a boot that reports where the
    interpreter runs from: an unprivileged user cannot clone the mount read-only, so the
    interpreter runs from a sealed memfd copy, with no re-exec."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler: `make setup` installs gcc")
    dest = os.path.join(rootless_user.home, "report-exe")
    boot = f"import sys;sys.path+={[USERS_SRC]!r};exec({REPORT_EXE!r})"
    assert launcher.compile_launcher(dest, os.path.join(USERS_VENV, "bin", "python"), boot)
    r = rootless_user.run([dest, "run", "a b"], check=True)
    link, sealed, argv, isolated, no_site, version = json.loads(r.stdout)
    assert link.startswith("/memfd:pyrunc-sealed-exe"), r.stdout
    assert sealed is True
    assert (argv, isolated, no_site) == (["run", "a b"], 1, 1)
    assert version[0] == 3 and version[1] >= 11
