"""`pyrunc --version`: runc's lines (version, commit, spec, language, libseccomp), each
checked against an independent source."""

import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyrunc
from pyrunc import version

TREE = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"


def _version_lines():
    r = subprocess.run(
        [sys.executable, "-m", "pyrunc", "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    return dict(line.split(": ", 1) if ": " in line else ("name", line) for line in r.stdout.splitlines())


def test_version_prints_runcs_lines():
    out = _version_lines()
    assert list(out) == ["name", "commit", "spec", "python", "libseccomp"]
    assert out["name"] == f"pyrunc version {pyrunc.__version__}"
    assert out["spec"] == pyrunc.OCI_VERSION and out["spec"].startswith("1.3.")
    assert out["python"] == platform.python_version()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_version_commit_is_the_checkouts_head():
    head = subprocess.run(
        ["git", "-C", str(TREE), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert _version_lines()["commit"] == head


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="no dpkg to ask libseccomp's version")
def test_version_libseccomp_is_the_installed_librarys():
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libseccomp2"], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("libseccomp2 is not a Debian package here")
    upstream = r.stdout.split(":")[-1].split("-")[0]  # epoch:upstream-debian
    assert _version_lines()["libseccomp"] == upstream


def test_commit_of_a_checkout_with_a_loose_ref(tmp_path):
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(SHA + "\n")
    assert version.commit(str(tmp_path), str(tmp_path / "none")) == SHA


def test_commit_of_a_worktree_with_a_packed_ref(tmp_path):
    common = tmp_path / "main" / ".git"
    wt_git = common / "worktrees" / "wt"
    wt_git.mkdir(parents=True)
    (common / "packed-refs").write_text(f"# pack-refs with: peeled\n{SHA} refs/heads/topic\n")
    (wt_git / "HEAD").write_text("ref: refs/heads/topic\n")
    (wt_git / "commondir").write_text("../..\n")
    tree = tmp_path / "wt"
    tree.mkdir()
    (tree / ".git").write_text(f"gitdir: {wt_git}\n")
    assert version.commit(str(tree), str(tmp_path / "none")) == SHA


def test_commit_without_git_is_the_recorded_one_or_unknown(tmp_path):
    recorded = tmp_path / "_commit"
    assert version.commit(str(tmp_path), str(recorded)) == "unknown"
    recorded.write_text(SHA + "\n")
    assert version.commit(str(tmp_path), str(recorded)) == SHA
