#!/bin/sh
# One-time set-up on a fresh Debian machine, as root: Debian packages and the .venv.
set -eu
cd "$(dirname "$0")/.."
need=""
command -v busybox >/dev/null 2>&1 || need="$need busybox-static"
# pyseccomp loads Debian's libseccomp at run time.
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || need="$need libseccomp2"
# umoci: tests compare `pyrunc image unpack` with it (tests/integration/test_image_bundle.py).
command -v umoci >/dev/null 2>&1 || need="$need umoci"
# A C compiler for the `pyrunc` launcher (pyrunc/launcher/launcher.c).
command -v cc >/dev/null 2>&1 || need="$need gcc libc6-dev"
# newuidmap and newgidmap: a rootless container's multi-id mappings (docs/rootless.md).
command -v newuidmap >/dev/null 2>&1 || need="$need uidmap"
# man and groff: tests render the generated man pages (tests/unit/test_manpages.py).
command -v man >/dev/null 2>&1 || need="$need man-db"
command -v groff >/dev/null 2>&1 || need="$need groff-base"
if [ -n "$need" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
# The container engines tests/e2e runs pyrunc under (containerd, podman, Docker).
sh scripts/setup-engines.sh
if [ ! -x .venv/bin/pyrunc ] || [ pyproject.toml -nt .venv/.installed ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
    touch .venv/.installed
fi
# The `pyrunc` command: pip's console script replaced by the launcher, which starts the
# interpreter sealed and without site (pyrunc/launcher/).
.venv/bin/python -m pyrunc.launcher .venv/bin/pyrunc >/dev/null
# The `pyrunc` any user can run (.venv-users/bin/pyrunc: rootless containers).
sh scripts/setup-users.sh
# The commit `pyrunc --version` names where the tree has no .git (pyrunc/version.py).
if command -v git >/dev/null 2>&1 && git rev-parse HEAD >pyrunc/_commit.tmp 2>/dev/null; then
    mv pyrunc/_commit.tmp pyrunc/_commit
else
    rm -f pyrunc/_commit.tmp
fi
# Bytecode up front: where PYTHONDONTWRITEBYTECODE is set, every command would compile
# pyrunc's modules again (the generated config/schema_check.py alone costs 20 ms).
.venv/bin/python -m compileall -q pyrunc >/dev/null
