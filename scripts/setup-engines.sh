#!/bin/sh
# The container engines tests/e2e drives (one module each): containerd (ctr and the runc
# v2 shim), podman with conmon, docker.io (dockerd), plus script(1) from bsdutils for the
# tty checks, busybox-static for the test image, python3-grpcio for the CRI client (run
# with /usr/bin/python3), and for rootless podman uidmap (newuidmap, newgidmap: the user
# namespace podman makes) and slirp4netns (its network and published ports).  Idempotent: installs only what is missing, as root, with
# apt-get.  Package scripts may not start any service: a policy-rc.d that refuses is put in
# place for the install (only when there is none) and removed after.  Without root, or
# with E2E_NO_INSTALL=1, it installs nothing and says what is missing; the e2e modules then
# skip with that reason.
set -eu

need=""
want() { # want COMMAND-OR-PATH PACKAGE
    case $1 in
    /*) [ -e "$1" ] && return 0 ;;
    *) command -v "$1" >/dev/null 2>&1 && return 0 ;;
    esac
    case " $need " in *" $2 "*) ;; *) need="$need $2" ;; esac
}

want containerd containerd
want ctr containerd
want /usr/bin/containerd-shim-runc-v2 containerd
want podman podman
want conmon conmon
want dockerd docker.io
want /usr/bin/docker docker.io
want script bsdutils
want /bin/busybox busybox-static
want /usr/lib/python3/dist-packages/grpc python3-grpcio
want newuidmap uidmap
want /usr/bin/newgidmap uidmap
want slirp4netns slirp4netns

if [ -z "$need" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || [ "${E2E_NO_INSTALL:-0}" = 1 ]; then
    echo "setup-engines: not installing (needs root, E2E_NO_INSTALL unset); missing:$need" >&2
    exit 0
fi

prc=/usr/sbin/policy-rc.d
made_prc=0
if [ ! -e $prc ]; then
    printf '#!/bin/sh\nexit 101\n' > $prc
    chmod 755 $prc
    made_prc=1
fi
cleanup() { if [ $made_prc = 1 ]; then rm -f $prc; fi; }
trap cleanup EXIT

echo "setup-engines: installing$need" >&2
apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends $need >/dev/null
