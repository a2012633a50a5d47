#!/bin/sh
# `make test-checkpoint`: tests/checkpoint (checkpoint and restore with CRIU) as root in a
# qemu guest booting Debian's kernel, with pure cgroup v2.  This machine's kernel is newer
# than Debian 12's CRIU (3.17): its `criu check` fails on the vDSO; Debian's own kernel
# (6.1) is one CRIU knows.  The guest sees this machine's / read-only over 9p, so it runs
# this machine's criu, this repo and its .venv; scripts/vm/checkpoint-init is its PID 1.
# Shows `criu check` and the guest's pytest output and exits with pytest's code.  When
# this machine cannot run the guest it prints "SKIP test-checkpoint: <why>" and exits 0.
#
# Set-up on first use as for scripts/cgroup2-vm.sh (scripts/vm/lib.sh): qemu and criu with
# apt; Debian's kernel package downloaded and unpacked under .cache/vm, with the modules
# CRIU needs besides the 9p ones (below).
# Environment: PYTEST_ARGS (extra pytest arguments, shell-quoted), CHECKPOINT_VM_TIMEOUT
# (seconds, default 1200).
set -eu
cd "$(dirname "$0")/.."
VM=test-checkpoint
TIMEOUT=${CHECKPOINT_VM_TIMEOUT:-1200}
TIMEOUT_VAR=CHECKPOINT_VM_TIMEOUT
# Applets scripts/vm/checkpoint-init uses.
INIT_APPLETS="sh mount insmod mkdir grep cat cp poweroff ip switch_root"
# What `criu check` and a dump need on Debian's kernel: the socket diag modules (CRIU
# reads every socket through NETLINK_SOCK_DIAG: "Unable to initialize Netlink socket:
# Protocol not supported" without them) and nf_tables, with which Debian's CRIU locks the
# network of a dumped or restored netns (--tcp-established), after crc32c_generic (the
# softdep of its libcrc32c, which fails to load without it); tun and veth for the checks
# of those features; x_tables, nft_compat and xt_mark for the iptables (nft) rules with
# which CRIU locks TCP connections (--tcp-established); nf_conntrack_netlink, since CRIU
# dumps a network namespace's conntrack entries, and nfnetlink without the conntrack
# subsystem answers that request "Invalid argument", which fails the dump.
CRIU_MODULES="af_packet_diag inet_diag tcp_diag udp_diag raw_diag unix_diag netlink_diag \
nfnetlink crc32c_generic nf_tables x_tables nft_compat xt_mark nf_conntrack nf_conntrack_netlink tun veth"
KIT_NEEDS="virtio_pci 9pnet_virtio 9p crc32c_generic nf_tables nft_compat xt_mark nf_conntrack_netlink unix_diag tcp_diag netlink_diag"
BOOTED='^guest: kernel '
. scripts/vm/lib.sh
# The kit holds these too (made again once when it lacks them; the other guests only
# load a few modules more).
MODULES="$MODULES $CRIU_MODULES"

vm_check
if ! command -v criu >/dev/null 2>&1; then
    apt_update criu
    say "installing criu with apt"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends criu >>"$CACHE/apt.log" 2>&1 ||
        skip "apt-get install criu failed: $(tail -n 1 "$CACHE/apt.log")"
    command -v criu >/dev/null 2>&1 || skip "no criu after installing it"
fi
vm_kernel
vm_initramfs scripts/vm/checkpoint-init
cp scripts/vm/checkpoint-stage2 "$stage/checkpoint-stage2"
mkdir -p "$stage/host"
vm_pack
say "booting Debian kernel $(cat "$kit/release") under qemu (tcg, pure cgroup v2, criu $(criu --version | sed -n 's/^Version: //p')), timeout ${TIMEOUT}s"
vm_boot "cgroup_no_v1=all quiet loglevel=2"
vm_result "the guest's init ready"
