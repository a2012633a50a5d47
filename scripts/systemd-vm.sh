#!/bin/sh
# `make test-systemd`: tests/systemd as root in a qemu guest where systemd is PID 1, on the
# unified cgroup hierarchy (SYSTEMD_VM_CGROUP=hybrid, `make test-systemd-v1`: on the legacy
# layout, systemd's v1 controllers plus /sys/fs/cgroup/unified), booting Debian's kernel with this machine's / read-only over 9p
# under a writable overlay (scripts/vm/systemd-init), so systemd and the tests run this
# machine's own systemd, dbus, repo and .venv.  systemd starts pyrunc-test.target
# (scripts/vm/systemd/): the system bus and pyrunc-test.service, which runs the tests and
# powers the guest off.  Shows the guest's pytest output and exits with its code.  When this
# machine cannot run the guest it prints "SKIP test-systemd: <why>" and exits 0.
#
# Set-up on first use as for scripts/cgroup2-vm.sh (scripts/vm/lib.sh): qemu with apt,
# Debian's kernel package downloaded and unpacked under .cache/vm.
# Environment: PYTEST_ARGS (extra pytest arguments, shell-quoted), SYSTEMD_VM_TIMEOUT
# (seconds, default 900), SYSTEMD_VM_CGROUP (unified, the default, or hybrid).
set -eu
cd "$(dirname "$0")/.."
LAYOUT=${SYSTEMD_VM_CGROUP:-unified}
case $LAYOUT in
unified) VM=test-systemd UNIFIED=1 ;;
hybrid) VM=test-systemd-v1 UNIFIED=0 ;;
*)
    echo "test-systemd: SYSTEMD_VM_CGROUP must be unified or hybrid, not: $LAYOUT"
    exit 2
    ;;
esac
TIMEOUT=${SYSTEMD_VM_TIMEOUT:-900}
TIMEOUT_VAR=SYSTEMD_VM_TIMEOUT
# Applets scripts/vm/systemd-init uses.
INIT_APPLETS="sh mount insmod mkdir cat cp tr rm ln poweroff switch_root"
KIT_NEEDS="virtio_pci 9pnet_virtio 9p overlay"
BOOTED='^guest: systemd up '
. scripts/vm/lib.sh

vm_check
# The guest boots this machine's systemd and system bus: install them where missing.
need=""
[ -x /lib/systemd/systemd ] || need="$need systemd"
[ -x /usr/bin/dbus-daemon ] || need="$need dbus"
if [ -n "$need" ]; then
    apt_update "$need"
    say "installing$need with apt"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >>"$CACHE/apt.log" 2>&1 ||
        { say "FAILED: apt-get install$need: $(tail -n 1 "$CACHE/apt.log")"; exit 1; }
fi
case "$REPO/" in
/run/* | /dev/* | /proc/* | /sys/*) skip "the checkout $REPO is under a directory systemd mounts over in the guest" ;;
esac
vm_kernel
vm_initramfs scripts/vm/systemd-init
mkdir -p "$stage/units"
cp scripts/vm/systemd/* "$stage/units/"
cp scripts/vm/systemd-run-tests "$stage/run-tests"
# The layout asked for, so that a guest booted on another one fails (tests/systemd read it).
echo "$LAYOUT" >"$stage/cgroup-layout"
vm_pack
say "booting Debian kernel $(cat "$kit/release") with systemd $(/lib/systemd/systemd --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p') as PID 1 under qemu (tcg, $LAYOUT cgroup hierarchy), timeout ${TIMEOUT}s"
# fstab=no: the host's /etc/fstab names the host's disks, which the guest has not.
vm_boot "systemd.unified_cgroup_hierarchy=$UNIFIED systemd.unit=pyrunc-test.target fstab=no quiet loglevel=2"
vm_result "the test service's start"
