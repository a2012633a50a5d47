"""CVE-2019-16884, CVE-2019-19921, CVE-2023-27561, CVE-2023-28642: the container's /proc
replaced by the image (a symlink) or covered by a mount, so that what the runtime writes
to procfs (sysctls, oom_score_adj, the LSM label for exec) lands in files the attacker
made, and the protection it should set up silently does not happen.

pyrunc mounts proc and sysfs only on a real directory reached without any symlink
(rootfs._real_directory), and checks that each file it writes is on a procfs before
writing (proc_writes.check_procfs, called by proc_writes.write_sysctls,
process.set_oom_score_adj and process._write_attr).  The LSM label writes cannot be
replayed on this host (it has neither AppArmor nor SELinux); they take the same check.
"""

import os
import sys

import pytest

from tests.security.sec_util import Racer, assert_create_refused, run_sh, tree


def _fake_proc(path):
    """Files where pyrunc's procfs writes would land, each saying `fake`."""
    for rel in ("sys/kernel/shmmax", "self/oom_score_adj", "thread-self/oom_score_adj"):
        full = os.path.join(path, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write("fake\n")


@pytest.fixture
def host_fake_proc(host_dir):
    d = host_dir("sec-fakeproc")
    _fake_proc(d)
    before = tree(d)
    yield d
    assert tree(d) == before  # nothing was written there


WRITES = {
    "sysctl": ({"linux": {"sysctl": {"kernel.shmmax": "4242"}}}, "sysctl kernel.shmmax=4242"),
    "oom_score_adj": ({"process": {"oomScoreAdj": 500}}, "oom_score_adj"),
}


def _ask_for(bundle, write):
    for section, values in WRITES[write][0].items():
        bundle.config[section].update(values)


# --- /proc in the image is a symlink ------------------------------------------------------


@pytest.mark.parametrize("target", ["in-rootfs", "host-path", "dotdot"])
def test_a_symlinked_proc_is_refused(pyrunc, bundle, test_id, host_fake_proc, target):
    """The image's /proc points at its own fake, at a host path, or climbs with `..`:
    proc is never mounted elsewhere and left a fake in its place."""
    proc = os.path.join(bundle.rootfs, "proc")
    os.rmdir(proc)
    _fake_proc(os.path.join(bundle.rootfs, "fakeproc"))
    link = {"in-rootfs": "fakeproc", "host-path": host_fake_proc, "dotdot": "../../../../../../../.." + host_fake_proc}[
        target
    ]
    os.symlink(link, proc)
    _ask_for(bundle, "sysctl")
    before = tree(os.path.join(bundle.rootfs, "fakeproc"))
    r = run_sh(pyrunc, bundle, test_id, "cat /proc/sys/kernel/shmmax")
    assert_create_refused(pyrunc, r, test_id, 'mounts[0]: mount proc "proc" on "/proc"')
    assert tree(os.path.join(bundle.rootfs, "fakeproc")) == before


def test_a_proc_swapped_for_a_symlink_during_create_is_never_used(pyrunc, bundle, test_id, host_fake_proc):
    """CVE-2023-27561: the same, raced: /proc flips between the real directory and a
    symlink to the fake while containers are created.  Each create either fails cleanly
    or mounts proc on the real directory, and the fake is left as it was.  (The swapping
    goes on while the container runs, so what it sees at /proc flips too.)"""
    _fake_proc(os.path.join(bundle.rootfs, "fakeproc"))
    os.symlink("fakeproc", os.path.join(bundle.rootfs, "proc-link"))
    # Masking and read-only binds go through /proc, which keeps flipping after the pivot:
    # without them more creates get through to show where proc went.
    bundle.config["linux"]["maskedPaths"] = bundle.config["linux"]["readonlyPaths"] = []
    fake_before = tree(os.path.join(bundle.rootfs, "fakeproc"))
    results = []
    with Racer(os.path.join(bundle.rootfs, "proc"), os.path.join(bundle.rootfs, "proc-link")):
        for i in range(8):
            results.append(run_sh(pyrunc, bundle, f"{test_id}-{i}", "cat /fakeproc/sys/kernel/shmmax"))
    for r in results:
        if r.code == 0:
            assert r.out == "fake\n", results  # proc was never mounted on the fake
        else:  # refused at the mount, or later by a check that met the fake
            assert r.err.startswith("pyrunc: create ") and len(r.err.splitlines()) == 1, results
    assert tree(os.path.join(bundle.rootfs, "fakeproc")) == fake_before


# --- /proc covered by a mount before pyrunc writes to it ----------------------------------


@pytest.mark.parametrize("write", sorted(WRITES))
def test_procfs_writes_refuse_a_bind_mount_over_proc(pyrunc, bundle, test_id, host_fake_proc, write):
    """A mount entry after proc's binds a directory of fakes over /proc.  (No masked or
    read-only paths, which would fail on the fake /proc before the oom_score_adj step.)"""
    bundle.config["linux"]["maskedPaths"] = bundle.config["linux"]["readonlyPaths"] = []
    bundle.config["mounts"].append(
        {"destination": "/proc", "type": "bind", "source": host_fake_proc, "options": ["rbind"]}
    )
    _ask_for(bundle, write)
    r = run_sh(pyrunc, bundle, test_id, "true")
    assert_create_refused(pyrunc, r, test_id, WRITES[write][1], "not on procfs")


def test_procfs_writes_refuse_a_tmpfs_over_proc(pyrunc, bundle, test_id, host_fake_proc):
    """A tmpfs over /proc, and a later volume whose mount point pyrunc creates on it at
    /proc/sys/kernel/shmmax: the sysctl write finds the volume's file there."""
    bundle.config["mounts"].append({"destination": "/proc", "type": "tmpfs", "source": "tmpfs"})
    bundle.config["mounts"].append(
        {
            "destination": "/proc/sys/kernel/shmmax",
            "type": "bind",
            "source": os.path.join(host_fake_proc, "sys", "kernel", "shmmax"),
            "options": ["bind"],
        }
    )
    _ask_for(bundle, "sysctl")
    r = run_sh(pyrunc, bundle, test_id, "true")
    assert_create_refused(pyrunc, r, test_id, WRITES["sysctl"][1], "not on procfs")


def test_a_volume_the_image_links_over_a_sysctl_is_not_written(pyrunc, bundle, test_id, host_fake_proc):
    """An innocent-looking volume at /data/limit, and the image's /data is a symlink to
    /proc/sys/kernel: the volume's file covers kernel.shmmax in the container.  The
    sysctl write then finds a file that is not on procfs and refuses it."""
    os.symlink("/proc/sys/kernel", os.path.join(bundle.rootfs, "data"))
    volume_file = os.path.join(host_fake_proc, "sys", "kernel", "shmmax")
    bundle.config["mounts"].append(
        {"destination": "/data/shmmax", "type": "bind", "source": volume_file, "options": ["bind"]}
    )
    _ask_for(bundle, "sysctl")
    r = run_sh(pyrunc, bundle, test_id, "true")
    assert_create_refused(pyrunc, r, test_id, WRITES["sysctl"][1], "not on procfs")


# --- /proc swapped for a decoy after pivot_root, before the masks -------------------------

PROBE_BOTH = (
    # cd pins each directory whatever its name becomes; only the real procfs has version.
    "for d in /proc /proc-decoy; do (cd $d 2>/dev/null && [ -e version ] && "
    "echo timer_list=$(wc -c < timer_list) && "
    "{ (: >> sys/kernel/shmmax) 2>/dev/null && echo sys=writable || echo sys=read-only; }); "
    "done; true"
)


def _decoy(bundle):
    """A directory shaped like the parts of /proc the masks and read-only binds touch,
    whose self/ leads to the real procfs once that sits at /proc-decoy, so that paths
    through /proc/self/fd still work."""
    decoy = os.path.join(bundle.rootfs, "proc-decoy")
    os.makedirs(os.path.join(decoy, "sys", "kernel"))
    for name in ("timer_list", "kcore", "sys/kernel/shmmax"):
        with open(os.path.join(decoy, name), "w") as f:
            f.write("fake\n")
    os.symlink("/proc-decoy/self", os.path.join(decoy, "self"))
    return decoy


SWAP_HOOK = (
    "import ctypes, sys\n"
    "if ctypes.CDLL(None).renameat2(-100, sys.argv[1].encode(), -100, "
    "sys.argv[2].encode(), 2):\n"
    "    sys.exit('exchange failed')\n"
)


def test_masks_refuse_a_proc_swapped_for_a_decoy(pyrunc, bundle, test_id):
    """The deterministic form of the race below: a createRuntime hook (run on the host
    after the mounts, before pivot_root) stands in for the writer and swaps the directory
    proc is mounted on with the decoy once.  Masks looked up by name would cover the
    decoy; the real procfs, now at /proc-decoy, would keep /proc/timer_list readable and
    /proc/sys writable."""
    decoy = _decoy(bundle)
    bundle.config["hooks"] = {
        "createRuntime": [
            {"path": sys.executable, "args": ["python", "-c", SWAP_HOOK, os.path.join(bundle.rootfs, "proc"), decoy]}
        ]
    }
    r = run_sh(pyrunc, bundle, test_id, "cd /proc-decoy && echo timer_list=$(wc -c < timer_list)")
    assert_create_refused(pyrunc, r, test_id, "/proc is no longer the proc mounted there")


def test_masks_land_on_the_real_proc_when_it_is_swapped_for_a_decoy(pyrunc, bundle, test_id):
    """After pivot_root the masks and read-only binds find /proc by name.  A writer of the
    rootfs swaps the directory proc is mounted on with a decoy of the same shape: masks
    looked up by name would cover the decoy and leave the real /proc/timer_list readable
    and /proc/sys writable.  pyrunc resolves them from an fd of the proc mount, checked to
    be procfs (rootfs.pin_kernel_mounts), so each create either fails cleanly or masks
    the real one."""
    decoy = _decoy(bundle)
    results = []
    with Racer(os.path.join(bundle.rootfs, "proc"), decoy):
        for i in range(10):
            results.append(run_sh(pyrunc, bundle, f"{test_id}-{i}", PROBE_BOTH))
    for r in results:
        if r.code == 0:
            # the real procfs, under either name or both (the swap went on between the cds)
            assert set(r.out.splitlines()) <= {"timer_list=0", "sys=read-only"}, results
        else:
            assert r.err.startswith("pyrunc: create ") and len(r.err.splitlines()) == 1, results
