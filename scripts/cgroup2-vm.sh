#!/bin/sh
# `make test-cgroup2`: the cgroup tests (tests/cgroup) as root in a qemu guest booting
# Debian's kernel with pure cgroup v2 (cgroup_no_v1=all).  The guest sees this machine's /
# read-only over 9p, so it runs this repo with this .venv; scripts/vm/init is its PID 1.
# Shows the guest's pytest output and exits with its code.  When this machine cannot run
# the guest it prints "SKIP test-cgroup2: <why>" and exits 0.
#
# Set-up, done here on first use (scripts/vm/lib.sh, shared with scripts/systemd-vm.sh):
# qemu-system-x86 with apt, and the kernel package that linux-image-amd64 depends on,
# downloaded (never installed) and unpacked under .cache/vm.
# Environment: PYTEST_ARGS (extra pytest arguments, shell-quoted), CGROUP2_VM_TIMEOUT
# (seconds, default 900), CGROUP2_VM_COMMAND (a shell command run in the checkout instead
# of the tests: `make bench-cgroup2`).
set -eu
cd "$(dirname "$0")/.."
VM=test-cgroup2
TIMEOUT=${CGROUP2_VM_TIMEOUT:-900}
TIMEOUT_VAR=CGROUP2_VM_TIMEOUT
# Applets scripts/vm/init uses.
INIT_APPLETS="sh mount insmod mkdir grep cat env chroot poweroff"
KIT_NEEDS="virtio_pci 9pnet_virtio 9p"
BOOTED='^guest: kernel '
. scripts/vm/lib.sh

vm_check
vm_kernel
vm_initramfs scripts/vm/init
mkdir -p "$stage/host"
if [ -n "${CGROUP2_VM_COMMAND:-}" ]; then
    printf '%s\n' "$CGROUP2_VM_COMMAND" >"$stage/command"
else
    : >"$stage/command"
fi
vm_pack
say "booting Debian kernel $(cat "$kit/release") under qemu (tcg, pure cgroup v2), timeout ${TIMEOUT}s"
vm_boot "cgroup_no_v1=all quiet loglevel=2"
vm_result "the guest's init ready"
