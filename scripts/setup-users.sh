#!/bin/sh
# The `pyrunc` any user can run (rootless containers, docs/rootless.md), as root:
# .venv-users, a venv of Debian's /usr/bin/python3 (world-executable, unlike the .venv's
# interpreter, which may live under /root) with pyrunc's dependencies, and the launcher
# built against that interpreter: .venv-users/bin/pyrunc.
#
# pyrunc is imported from this checkout when every directory down to it lets other users
# through.  A checkout closed to them (under /root, or a 0700 temporary directory, as a CI
# clone may be) gets a copy instead: the venv and a copy of pyrunc/ under
# /opt/pyrunc-users/<hash of the checkout's path>, refreshed on every run, with
# .venv-users a symlink to that venv.
set -eu
cd "$(dirname "$0")/.."
umask 022
top="$(pwd)"
open_to_others() {
    dir="$1"
    while [ "$dir" != "/" ]; do
        [ "$(($(stat -c '%a' "$dir") % 10 & 1))" -eq 1 ] || return 1
        dir="$(dirname "$dir")"
    done
}
python=/usr/bin/python3
if [ ! -x "$python" ] || ! "$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
if open_to_others "$top"; then
    src="$top"
    venv="$top/.venv-users"
    [ -L .venv-users ] && rm -f .venv-users
else
    home="/opt/pyrunc-users/$(printf '%s' "$top" | sha256sum | cut -c1-16)"
    src="$home/src"
    venv="$home/venv"
    mkdir -p "$src"
    # pyrunc/ and the schema it reads from spec/ beside it (pyrunc/config/schema.py).
    for part in pyrunc spec; do
        rm -rf "$src/$part.new"
        cp -R "$part" "$src/$part.new"
        rm -rf "${src:?}/$part"
        mv "$src/$part.new" "$src/$part"
    done
    cp pyproject.toml README.md LICENSE "$src/"
    if [ ! -L .venv-users ] || [ "$(readlink .venv-users)" != "$venv" ]; then
        rm -rf .venv-users
        ln -s "$venv" .venv-users
    fi
fi
if [ ! -x "$venv/bin/python" ] || [ "$src/pyproject.toml" -nt "$venv/.installed" ]; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    # Editable: the dependencies, and pyrunc from $src (the launcher's import path names
    # $src first in any case).
    if ! "$venv/bin/pip" install -q --disable-pip-version-check -e "$src" >"$venv/pip.log" 2>&1; then
        cat "$venv/pip.log" >&2
        exit 1
    fi
    touch "$venv/.installed"
fi
# Run from $src so that the launcher names the pyrunc there (pyrunc.launcher.import_path).
(cd "$src" && "$venv/bin/python" -m pyrunc.launcher "$venv/bin/pyrunc" >/dev/null)
[ "$src" = "$top" ] || "$venv/bin/python" -m compileall -q "$src/pyrunc" >/dev/null
chmod -R a+rX "$venv"
[ "$src" = "$top" ] || chmod -R a+rX "$(dirname "$src")"
