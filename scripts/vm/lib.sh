# What scripts/cgroup2-vm.sh and scripts/systemd-vm.sh share, sourced by both from the repo's
# top directory: the checks, qemu and Debian's kernel set up on first use, the initramfs, the
# boot under qemu with its console streamed here, and the guest's exit code read back.
#
# The caller sets before sourcing: VM (its make target, used in messages), TIMEOUT and
# TIMEOUT_VAR (seconds, and the variable that sets them), INIT_APPLETS (busybox applets its
# stage in the initramfs uses), KIT_NEEDS (the modules of MODULES below its guest loads) and
# BOOTED (a regular expression: the console line that marks the guest as booted).  Then: vm_check, vm_kernel, vm_initramfs INIT, (its own files into
# $stage), vm_pack, vm_boot APPEND, vm_result.
REPO=$(pwd -P)
CACHE=$REPO/.cache/vm
QEMU=qemu-system-x86_64
BUSYBOX=/bin/busybox
# What the guests need to reach the host's / over virtio 9p, then overlayfs (the systemd
# guest's writable root), in load order.  Those a kernel builds in are skipped; any
# dependency not listed is loaded before its user.  A kit that lacks one of KIT_NEEDS (made
# for a shorter list) is made again.
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p overlay"
began=$(date +%s)

say() { echo "$VM: $*"; }
skip() {
    echo "SKIP $VM: $*"
    exit 0
}

run=""
qemu_pid=""
vm_cleanup() {
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then kill "$qemu_pid"; fi
    # The last run's console stays, for a look at what scrolled by.
    if [ -n "$run" ] && [ -f "$run/console.log" ]; then cp "$run/console.log" "$CACHE/$VM.console.log"; fi
    if [ -n "$run" ]; then rm -rf "$run"; fi
}
trap vm_cleanup EXIT
trap 'exit 130' INT TERM

# Root, x86_64, the .venv, a static busybox with the applets the guest uses, PYTEST_ARGS
# that parse as shell words, and qemu (installed with apt when missing).
vm_check() {
    local applets missing a
    [ "$(id -u)" = 0 ] || skip "needs root (it installs qemu with apt)"
    [ "$(uname -m)" = x86_64 ] || skip "needs an x86_64 host: the guest runs this machine's own binaries"
    [ -x .venv/bin/python ] || skip "no .venv: run make setup first"
    [ -x $BUSYBOX ] || skip "no $BUSYBOX (scripts/setup.sh installs busybox-static)"
    ldd $BUSYBOX >/dev/null 2>&1 && skip "$BUSYBOX is not static: install busybox-static"
    applets=$($BUSYBOX --list)
    missing=""
    for a in $INIT_APPLETS; do
        echo "$applets" | grep -qx "$a" || missing="$missing $a"
    done
    [ -z "$missing" ] || skip "$BUSYBOX lacks applets the guest's init needs:$missing"
    # The test rootfs links these names to busybox (tests/conftest.py): say which it lacks,
    # as applet and as sh builtin, since commands by those names would fail in containers.
    missing=""
    for a in $(.venv/bin/python -c 'from tests.conftest import APPLETS; print(" ".join(APPLETS))' 2>/dev/null); do
        echo "$applets" | grep -qx "$a" || $BUSYBOX sh -c "type $a" 2>/dev/null | grep -q builtin ||
            missing="$missing $a"
    done
    [ -z "$missing" ] || say "note: $BUSYBOX has no applet or sh builtin for:$missing (tests/conftest.py APPLETS)"
    (eval "set -- ${PYTEST_ARGS:-}") 2>/dev/null || {
        say "FAILED: PYTEST_ARGS is not valid shell words: ${PYTEST_ARGS:-}"
        exit 2
    }
    mkdir -p "$CACHE"
    if ! command -v $QEMU >/dev/null 2>&1; then
        apt_update qemu-system-x86
        say "installing qemu-system-x86 with apt"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 \
            >>"$CACHE/apt.log" 2>&1 || skip "apt-get install qemu-system-x86 failed: $(tail -n 1 "$CACHE/apt.log")"
        command -v $QEMU >/dev/null 2>&1 || skip "no $QEMU after installing qemu-system-x86"
    fi
}

apt_updated=""
apt_update() {
    command -v apt-get >/dev/null 2>&1 || skip "no apt-get to install $1"
    if [ -z "$apt_updated" ]; then
        # Its exit code counts any unreachable source; what matters is the next step.
        apt-get update -qq >"$CACHE/apt.log" 2>&1 || true
        apt_updated=1
    fi
}

# Sets $kit, the kernel kit: vmlinuz, the modules above unpacked (modules/<name>.ko) and their
# load order (modules.order), those built in (builtin) or absent (missing).  Made once, in
# $CACHE/<package>; $CACHE/current names it.
vm_kernel() {
    kit=""
    if [ -f "$CACHE/current" ]; then
        kit=$CACHE/$(cat "$CACHE/current")
        [ -f "$kit/vmlinuz" ] || kit=""
        for name in $KIT_NEEDS; do
            if [ -n "$kit" ] && ! cat "$kit/modules.order" "$kit/builtin" "$kit/missing" 2>/dev/null | grep -qx "$name"; then
                kit=""
            fi
        done
    fi
    if [ -z "$kit" ]; then
        fetch_kernel
        kit=$CACHE/$(cat "$CACHE/current")
    fi
    if [ -s "$kit/missing" ]; then
        say "note: kernel $(cat "$kit/release") has no module for: $(tr '\n' ' ' <"$kit/missing")"
    fi
}

fetch_kernel() {
    local pkg vmlinuz release
    apt_update "the kernel"
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[^ ]*-amd64\)$/\1/p' | head -n 1)
    [ -n "$pkg" ] || skip "apt knows no linux-image-amd64 (apt unreachable, or not Debian amd64)"
    say "fetching $pkg (apt-get download, unpacked under .cache/vm, not installed)"
    run=$(mktemp -d "$CACHE/fetch.XXXXXX")
    (cd "$run" && apt-get -qq -o APT::Sandbox::User=root download "$pkg") >"$run/log" 2>&1 ||
        skip "apt-get download $pkg failed: $(tail -n 1 "$run/log")"
    dpkg-deb -x "$run"/*.deb "$run/root"
    vmlinuz=$(ls "$run"/root/boot/vmlinuz-* | head -n 1)
    release=${vmlinuz##*/vmlinuz-}
    moddir=$run/root/lib/modules/$release
    [ -d "$moddir/kernel" ] || skip "$pkg has no lib/modules/$release/kernel"
    kit=$run/kit
    mkdir -p "$kit/modules"
    cp "$vmlinuz" "$kit/vmlinuz"
    echo "$release" >"$kit/release"
    : >"$kit/modules.order"
    ko_files=$(find "$moddir/kernel" -name '*.ko*')
    for name in $MODULES; do add_module "$name"; done
    rm -rf "${CACHE:?}/$pkg"
    mv "$kit" "$CACHE/$pkg"
    echo "$pkg" >"$CACHE/current"
    rm -rf "$run"
    run=""
}

# Unpack module $1 into the kit after the modules it depends on (its .modinfo "depends="),
# each once; one the kernel builds in needs nothing, a missing one is noted.  The package
# has no modules.dep (depmod runs when it is installed, which it is not here).
add_module() {
    local name=$1 pattern file dep
    grep -qx "$name" "$kit/modules.order" && return 0
    pattern="/$(echo "$name" | sed 's/[-_]/[-_]/g')\.ko(\.(xz|zst|gz))?\$"
    file=$(echo "$ko_files" | grep -E "$pattern" | head -n 1)
    if [ -z "$file" ]; then
        if grep -qE "$pattern" "$moddir/modules.builtin"; then
            echo "$name" >>"$kit/builtin"
        else
            echo "$name" >>"$kit/missing"
        fi
        return 0
    fi
    case $file in
    *.xz) if command -v xz >/dev/null; then xz -dc "$file"; else $BUSYBOX xzcat "$file"; fi ;;
    *.zst) zstd -dc "$file" ;;
    *.gz) gzip -dc "$file" ;;
    *) cat "$file" ;;
    esac >"$kit/modules/$name.ko" 2>/dev/null || skip "cannot unpack $file (xz or zstd missing?)"
    for dep in $(tr '\0' '\n' <"$kit/modules/$name.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
        add_module "$dep"
    done
    echo "$name" >>"$kit/modules.order"
}

# Sets $run (a scratch directory, removed on exit) and $stage, the initramfs tree: static
# busybox, $1 as /init, the modules and their order, the repo's path (/repo) and PYTEST_ARGS
# (/pytest-args).  The caller adds its own files to $stage, then calls vm_pack.
vm_initramfs() {
    # The guest must not compile every module again in each pyrunc command under tcg (seconds
    # each; the cgroup v2 guest cannot even write the bytecode): compile them here once.
    .venv/bin/python -m compileall -q pyrunc >/dev/null 2>&1 || true
    run=$(mktemp -d "$CACHE/run.XXXXXX")
    stage=$run/initramfs
    mkdir -p "$stage/bin" "$stage/dev" "$stage/proc" "$stage/sys" "$stage/lib/modules"
    cp $BUSYBOX "$stage/bin/busybox"
    cp "$1" "$stage/init"
    chmod 755 "$stage/init"
    mknod "$stage/dev/console" c 5 1
    cp "$kit/modules.order" "$stage/modules.order"
    if [ -s "$kit/modules.order" ]; then cp "$kit"/modules/*.ko "$stage/lib/modules/"; fi
    printf '%s\n' "$REPO" >"$stage/repo"
    printf '%s\n' "${PYTEST_ARGS:-}" >"$stage/pytest-args"
}

vm_pack() {
    (cd "$stage" && find . | $BUSYBOX cpio -o -H newc 2>/dev/null) >"$run/initramfs.cpio"
}

# Boot the kit's kernel with the initramfs and kernel command line $1 (after console=ttyS0
# panic=1), the host's / shared read-only over 9p as "hostroot"; show the console as it
# comes and wait for qemu to end, or kill it after $TIMEOUT seconds.  Sets console (the log),
# booted (seconds from qemu's start to the $BOOTED line), timed_out and qemu_code.
vm_boot() {
    local started deadline show_pid
    console=$run/console.log
    : >"$console"
    $QEMU -name "pyrunc-$VM" -machine pc -accel tcg -cpu max -smp 2 -m 2048 \
        -nodefaults -no-user-config -display none -no-reboot \
        -chardev file,id=console,path="$console",append=on -serial chardev:console \
        -kernel "$kit/vmlinuz" -initrd "$run/initramfs.cpio" \
        -append "console=ttyS0 panic=1 $1" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
        </dev/null >"$run/qemu.err" 2>&1 &
    qemu_pid=$!
    started=$(date +%s)

    # Show the console as it comes; tail ends by itself once qemu has.
    tail -n +1 -s 0.2 -f --pid="$qemu_pid" "$console" | sed -u 's/\r$//' &
    show_pid=$!
    timed_out=""
    booted=""
    deadline=$((started + TIMEOUT))
    while kill -0 "$qemu_pid" 2>/dev/null; do
        if [ -z "$booted" ] && grep -q "$BOOTED" "$console"; then
            booted=$(($(date +%s) - started))
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            timed_out=1
            kill "$qemu_pid"
            sleep 2
            if kill -0 "$qemu_pid" 2>/dev/null; then kill -9 "$qemu_pid"; fi
            break
        fi
        sleep 1
    done
    qemu_code=0
    wait "$qemu_pid" || qemu_code=$?
    qemu_pid=""
    wait "$show_pid" || true
}

# Exit with the guest's pytest exit code (its console line PYRUNC-GUEST-EXIT=<n>).
vm_result() {
    local total code
    total=$(($(date +%s) - began))
    code=$(tr -d '\r' <"$console" | sed -n 's/^PYRUNC-GUEST-EXIT=\([0-9][0-9]*\)$/\1/p' | tail -n 1)
    if [ -n "$timed_out" ]; then
        say "FAILED: the guest gave no result in ${TIMEOUT}s ($TIMEOUT_VAR); killed its qemu"
        exit 1
    fi
    if [ -z "$code" ]; then
        if [ ! -s "$console" ] && [ "$qemu_code" != 0 ]; then
            skip "qemu did not start: $(head -n 1 "$run/qemu.err")"
        fi
        cat "$run/qemu.err"
        say "FAILED: the guest ended without an exit code (qemu exit $qemu_code)"
        exit 1
    fi
    say "guest pytest exit $code; boot ${booted:-?}s (qemu start to $1), whole run ${total}s"
    exit "$code"
}
