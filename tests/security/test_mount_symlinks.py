"""CVE-2021-30465 and mount destinations in general: a symlink in the rootfs, there from
the start or swapped in while pyrunc creates the container, must never take a mount, a
directory or file pyrunc creates, a device node or a masked path outside the rootfs.

runc's exploit: a mount whose destination goes through a symlink swapped (by another
container sharing the volume) to a host path lands on that host path in the container's
mount namespace; a later mount whose *source* is under that host path then takes the
attacker's volume instead, and a symlink there to "/" bind-mounts the host's root into
the container.  pyrunc resolves every destination inside the rootfs with
openat2(RESOLVE_IN_ROOT) and mounts on the resulting fd (paths.open_in_root,
paths.ensure_mountpoint via rootfs.do_mount; devices.create_device; rootfs.mask_paths
after pivot_root), so a swap after the lookup changes nothing.

The host is checked afterwards: the victim directory is unchanged, nothing new is
mounted on the host, and the later mount's source is the host's file.
"""

import os

import pytest

from tests.security.sec_util import Racer, host_mount_points, new_host_mounts, run_sh, tree

RUNS = 12  # creates raced by the swapper; each is a full `pyrunc run`


@pytest.fixture
def scene(bundle, host_dir):
    """The victim (a host directory), the attacker's volume, and the rootfs's /race/d and
    /race/d-link (a directory and a symlink to the victim), with the config's mounts."""
    victim = host_dir("sec-victim")
    volume = host_dir("sec-volume")
    for d, word in ((victim, "host-side"), (volume, "attacker")):
        with open(os.path.join(d, "marker"), "w") as f:
            f.write(word + "\n")
    race = os.path.join(bundle.rootfs, "race")
    os.makedirs(os.path.join(race, "d"))
    os.symlink(victim, os.path.join(race, "d-link"))
    config = bundle.config
    # 1: the volume, on a destination that goes through the swapped name.
    config["mounts"].append({"destination": "/race/d", "type": "bind", "source": volume, "options": ["rbind"]})
    # 2: a later mount whose source is under the victim: the host's file, unless 1 escaped.
    config["mounts"].append(
        {"destination": "/seen", "type": "bind", "source": os.path.join(victim, "marker"), "options": ["bind", "ro"]}
    )
    # 3: mount points pyrunc must create, again through the swapped name.
    for i in range(3):
        config["mounts"].append(
            {"destination": f"/race/d/made-{i}", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}
        )
    config["linux"]["devices"] = [{"path": "/race/d/node", "type": "c", "major": 1, "minor": 3}]
    config["linux"]["maskedPaths"] = config["linux"]["maskedPaths"] + ["/race/d/marker"]
    victim_before = tree(victim)
    mounts_before = host_mount_points()
    yield victim, volume, race
    assert tree(victim) == victim_before  # nothing created, changed or removed there
    assert new_host_mounts(mounts_before) == []


def test_a_symlinked_destination_never_reaches_the_host(pyrunc, bundle, test_id, scene):
    victim, volume, race = scene
    os.rename(os.path.join(race, "d-link"), os.path.join(race, "d-tmp"))
    os.rmdir(os.path.join(race, "d"))
    os.rename(os.path.join(race, "d-tmp"), os.path.join(race, "d"))  # /race/d -> the victim
    r = run_sh(pyrunc, bundle, test_id, "cat /seen")
    assert (r.code, r.out) == (0, "host-side\n"), r
    # The volume went where the link points when the rootfs is "/": inside the rootfs;
    # the mount points under it were made in the volume.
    assert os.path.isdir(os.path.join(bundle.rootfs, victim.lstrip("/")))
    assert "made-0" in os.listdir(volume)


def test_a_destination_swapped_during_create_never_reaches_the_host(pyrunc, bundle, test_id, scene):
    victim, volume, race = scene
    results = []
    with Racer(os.path.join(race, "d"), os.path.join(race, "d-link")):
        for i in range(RUNS):
            r = run_sh(pyrunc, bundle, f"{test_id}-{i}", "cat /seen")
            results.append(r)
            assert "attacker" not in r.out, r
    ran = [r for r in results if r.code == 0]
    assert ran, results  # the race let at least some creates through
    assert all(r.out == "host-side\n" for r in ran), ran
