#!/bin/sh
# The `pyrunc` any user can run (rootless containers, docs/rootless.md), as root:
# .venv-users, a venv of Debian's /usr/bin/python3 (world-executable, unlike the .venv's
# interpreter, which may live under /root) with pyrunc's dependencies, and the launcher
# built against that interpreter: .venv-users/bin/pyrunc.  pyrunc itself is imported from
# this checkout, as for .venv, so the checkout must be readable by all (it is checked).
set -eu
cd "$(dirname "$0")/.."
umask 022
top="$(pwd)"
# Every directory down to the checkout must let others through.
dir="$top"
while [ "$dir" != "/" ]; do
    if [ "$(( $(stat -c '%a' "$dir" | sed 's/^\(.*\)\(.\)$/\2/') & 1 ))" -eq 0 ]; then
        echo "setup-users: $dir is not searchable by other users: no .venv-users (docs/rootless.md)" >&2
        exit 0
    fi
    dir="$(dirname "$dir")"
done
python=/usr/bin/python3
if [ ! -x "$python" ] || ! "$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ ! -x .venv-users/bin/python ] || [ pyproject.toml -nt .venv-users/.installed ]; then
    rm -rf .venv-users
    "$python" -m venv .venv-users
    # Editable: the dependencies, and pyrunc from this checkout (the launcher's import path
    # names the checkout first in any case).
    if ! .venv-users/bin/pip install -q --disable-pip-version-check -e . >.venv-users/pip.log 2>&1; then
        cat .venv-users/pip.log >&2
        exit 1
    fi
    touch .venv-users/.installed
fi
.venv-users/bin/python -m pyrunc.launcher .venv-users/bin/pyrunc >/dev/null
chmod -R a+rX .venv-users
