"""`pyrunc --version`: the lines runc prints (version, commit, spec, its language's
version, libseccomp), each worked out only when asked, off every other command's path.

The commit comes from the checkout's .git, read as files (no git needed); an install
without one reads the commit recorded by `make setup` (pyrunc/_commit, git-ignored).
"""

import os
import sys

PACKAGE = os.path.dirname(os.path.abspath(__file__))
RECORDED = os.path.join(PACKAGE, "_commit")
TREE = os.path.dirname(PACKAGE)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def _gitdir(tree: str) -> str:
    """The .git directory of a checkout, following a worktree's `gitdir:` file."""
    dot = os.path.join(tree, ".git")
    if os.path.isdir(dot):
        return dot
    text = _read(dot)
    if text.startswith("gitdir:"):
        return os.path.join(tree, text[len("gitdir:") :].strip())
    return ""


def _ref(gitdir: str, common: str, ref: str) -> str:
    for base in (gitdir, common):
        sha = _read(os.path.join(base, ref))
        if sha:
            return sha
    for line in _read(os.path.join(common, "packed-refs")).splitlines():
        sha, _, name = line.partition(" ")
        if name == ref:
            return sha
    return ""


def git_commit(tree: str) -> str:
    """HEAD's commit of the checkout at `tree`, or "" when it is not one."""
    gitdir = _gitdir(tree)
    if not gitdir:
        return ""
    common = os.path.join(gitdir, _read(os.path.join(gitdir, "commondir")) or ".")
    head = _read(os.path.join(gitdir, "HEAD"))
    if head.startswith("ref:"):
        return _ref(gitdir, common, head[len("ref:") :].strip())
    return head


def commit(tree: str = TREE, recorded: str = RECORDED) -> str:
    """The commit `pyrunc --version` names: the checkout's, else the one `make setup` recorded."""
    return git_commit(tree) or _read(recorded) or "unknown"


def lines() -> list[str]:
    from pyrunc import OCI_VERSION, __version__
    from pyrunc.linux.seccomp import library_version

    v = sys.version_info
    return [
        f"pyrunc version {__version__}",
        f"commit: {commit()}",
        f"spec: {OCI_VERSION}",
        f"python: {v.major}.{v.minor}.{v.micro}",
        f"libseccomp: {library_version() or 'none'}",
    ]
