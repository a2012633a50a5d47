"""CRIU works where these tests run: `criu check` passes (in the guest it must)."""

import shutil
import subprocess


def test_criu_check_passes():
    r = subprocess.run([shutil.which("criu"), "check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Looks good" in r.stdout + r.stderr
