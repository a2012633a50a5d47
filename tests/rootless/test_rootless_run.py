"""Containers made by an unprivileged test user with the pyrunc any user can run: the
bundle is the user's, from `pyrunc spec --rootless`; the state is under the user's
$XDG_RUNTIME_DIR.  runc 1.1, run the same way, is what users expect (noted per test)."""

import json
import os
import shutil
import time

import pytest

CID = "pyrunc-test-rl"


def _status_ids(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])


def _no_leftovers(user, pyrunc_root=None):
    """Nothing of a failed or deleted container: no process of the user, no state."""
    assert user.pids() == []
    root = pyrunc_root or os.path.join(user.runtime_dir, "pyrunc")
    assert not os.path.exists(root) or os.listdir(root) == []


def test_run_sees_root_inside_and_the_user_outside(rootless_user, user_pyrunc, user_bundle):
    user_bundle.config["process"]["args"] = [
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; echo x >/dev/null && echo null-ok",
    ]
    user_bundle.write()
    r = user_pyrunc("run", "--bundle", user_bundle.path, CID)
    assert r.code == 0, r
    uid, gid, uid_map, gid_map, null = r.out.splitlines()
    assert (uid, gid) == ("0", "0")
    assert uid_map.split() == ["0", str(rootless_user.uid), "1"]
    assert gid_map.split() == ["0", str(rootless_user.gid), "1"]
    assert null == "null-ok"  # /dev/null: the host's node bound, not made with mknod
    _no_leftovers(rootless_user)


def test_create_start_exec_ps_kill_delete(rootless_user, user_pyrunc, user_bundle):
    user_bundle.config["process"]["args"] = ["sleep", "1000"]
    user_bundle.write()
    assert user_pyrunc("create", "--bundle", user_bundle.path, CID).code == 0
    st = user_pyrunc.state(CID)
    assert st["status"] == "created"
    assert os.path.isdir(os.path.join(rootless_user.runtime_dir, "pyrunc", CID))
    # The host sees the user's ids on the init.
    assert _status_ids(st["pid"]) == (rootless_user.uid, rootless_user.gid)
    assert user_pyrunc("start", CID).code == 0
    assert user_pyrunc.state(CID)["status"] == "running"
    r = user_pyrunc("exec", CID, "sh", "-c", "id -u; echo $$")
    assert r.code == 0, r
    assert r.out.splitlines()[0] == "0"
    # ps without a cgroup (none is delegated here): the container's pid namespace.
    r = user_pyrunc("ps", "--format", "json", CID)
    assert r.code == 0, r
    assert json.loads(r.out) == [st["pid"]]
    r = user_pyrunc("ps", CID)
    assert r.code == 0 and "sleep 1000" in r.out, r
    listed = user_pyrunc("list", "--format", "json")
    assert [c["id"] for c in json.loads(listed.out)] == [CID]
    assert json.loads(listed.out)[0]["owner"] == rootless_user.name
    assert user_pyrunc("kill", CID, "KILL").code == 0
    for _ in range(100):
        if user_pyrunc.state(CID)["status"] == "stopped":
            break
        time.sleep(0.05)
    assert user_pyrunc.state(CID)["status"] == "stopped"
    assert user_pyrunc("delete", CID).code == 0
    _no_leftovers(rootless_user)


def test_a_multi_id_mapping_through_newuidmap(rootless_user, user_pyrunc, user_bundle):
    """root onto the user, 1..65536 onto its /etc/subuid range: newuidmap writes it (the
    kernel would refuse it from the user); a file chowned to 1000 inside is the range's
    1000th id on the host."""
    if shutil.which("newuidmap") is None:
        pytest.skip("no newuidmap: `make setup` installs Debian's uidmap")
    start, count = rootless_user.subuid
    gstart, gcount = rootless_user.subgid
    user_bundle.config["linux"]["uidMappings"] = [
        {"containerID": 0, "hostID": rootless_user.uid, "size": 1},
        {"containerID": 1, "hostID": start, "size": count},
    ]
    user_bundle.config["linux"]["gidMappings"] = [
        {"containerID": 0, "hostID": rootless_user.gid, "size": 1},
        {"containerID": 1, "hostID": gstart, "size": gcount},
    ]
    user_bundle.config["process"]["args"] = ["sh", "-c", "touch /f && chown 1000:1001 /f && cat /proc/self/uid_map"]
    for caps in ("bounding", "effective", "permitted"):
        user_bundle.config["process"]["capabilities"][caps].append("CAP_CHOWN")  # not in runc's default
    user_bundle.write()
    r = user_pyrunc("run", "--bundle", user_bundle.path, CID)
    assert r.code == 0, r
    assert [line.split() for line in r.out.splitlines()] == [
        ["0", str(rootless_user.uid), "1"],
        ["1", str(start), str(count)],
    ]
    st = os.stat(os.path.join(user_bundle.rootfs, "f"))
    assert (st.st_uid, st.st_gid) == (start + 999, gstart + 1000)


def test_a_user_in_the_container_other_than_root(rootless_user, user_pyrunc, user_bundle):
    """process.user within the mapping: setgroups was denied (single gid mapped), so
    none is called, and the process runs as that user."""
    start, count = rootless_user.subuid
    gstart, gcount = rootless_user.subgid
    user_bundle.config["linux"]["uidMappings"].append({"containerID": 1, "hostID": start, "size": 2000})
    user_bundle.config["linux"]["gidMappings"].append({"containerID": 1, "hostID": gstart, "size": 2000})
    user_bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    user_bundle.config["process"]["args"] = ["sh", "-c", "id -u; id -g"]
    user_bundle.write()
    r = user_pyrunc("run", "--bundle", user_bundle.path, CID)
    assert r.code == 0, r
    assert r.out.split() == ["1000", "1000"]


def test_resources_without_a_delegated_cgroup_are_skipped_with_a_warning(rootless_user, user_pyrunc, user_bundle):
    user_bundle.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    user_bundle.config["process"]["args"] = ["true"]
    user_bundle.write()
    r = user_pyrunc("run", "--bundle", user_bundle.path, CID)
    assert r.code == 0, r
    with open(user_pyrunc.log) as f:
        assert "cgroups ignored (--rootless)" in f.read()
    _no_leftovers(rootless_user)


@pytest.mark.parametrize(
    "case",
    ["no user namespace", "uid not mapped", "foreign mapping", "oom score lowered", "strict cgroups"],
)
def test_what_rootless_cannot_do_is_one_line_and_leaves_nothing(rootless_user, user_pyrunc, user_bundle, case):
    cfg = user_bundle.config
    flags = ()
    if case == "no user namespace":
        cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "user"]
        del cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"]
        want = "linux.namespaces: a rootless container needs a user namespace"
    elif case == "uid not mapped":
        cfg["process"]["user"] = {"uid": 1000, "gid": 0}
        want = "process.user.uid 1000 is not mapped by linux.uidMappings"
    elif case == "foreign mapping":
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
        want = "newuidmap refused linux.uidMappings: uid range [0-1) -> [0-1) not allowed"
    elif case == "oom score lowered":
        cfg["process"]["oomScoreAdj"] = -500
        want = "process.oomScoreAdj -500: below the runtime's own"
    else:
        cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
        flags = ("--rootless", "false")
        want = "permission denied (rootless with --rootless=false: no cgroup there is delegated"
    user_bundle.write()
    r = user_pyrunc(*flags, "run", "--bundle", user_bundle.path, CID)
    assert r.code == 1, r
    assert r.err.count("\n") == 1 and want in r.err, r.err
    with open(user_pyrunc.log) as f:
        assert want in f.read()
    _no_leftovers(rootless_user)


def test_another_user_cannot_see_or_touch_the_containers(make_user, users_pyrunc):
    from tests.rootless.rl_util import UserBundle, UserPyrunc

    owner, other = make_user(), make_user()
    mine, theirs = UserPyrunc(owner, users_pyrunc), UserPyrunc(other, users_pyrunc)
    bundle = UserBundle(owner, mine, args=["sleep", "1000"])
    assert mine("run", "--detach", "--bundle", bundle.path, CID).code == 0
    try:
        pid = mine.state(CID)["pid"]
        # Its own default root: the other user's list is empty.
        r = theirs("list", "--quiet")
        assert (r.code, r.out) == (0, ""), r
        owners_root = os.path.join(owner.runtime_dir, "pyrunc")
        verbs = (["list"], ["state", CID], ["kill", CID, "KILL"], ["delete", "--force", CID], ["exec", CID, "true"])
        for argv in verbs:
            r = theirs("--root", owners_root, *argv)
            assert r.code != 0, (argv, r)
            assert "permission denied" in r.err, (argv, r)
        # Nor by the process itself: a signal across users is refused by the kernel.
        assert other.run(["kill", "-KILL", str(pid)]).returncode != 0
        assert mine.state(CID)["status"] == "running"
    finally:
        mine("delete", "--force", CID)
    _no_leftovers(owner)


def test_devices_are_the_hosts_nodes_bound(rootless_user, user_pyrunc, user_bundle):
    """No mknod in a user namespace: linux.devices, like the default devices, are the
    host's nodes bound in (runc does the same); a device the host lacks is one line."""
    user_bundle.config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    script = "stat -c '%t:%T' /dev/fuse; grep ' /dev/fuse ' /proc/self/mountinfo"
    user_bundle.config["process"]["args"] = ["sh", "-c", script]
    user_bundle.write()
    r = user_pyrunc("run", "--bundle", user_bundle.path, CID)
    assert r.code == 0, r
    numbers, mount = r.out.splitlines()
    assert numbers == "a:e5"  # 10:229
    assert mount.split()[3] == "/fuse"  # the root of the mount: the host's devtmpfs node
    user_bundle.config["linux"]["devices"] = [{"path": "/dev/pyrunc-none", "type": "c", "major": 250, "minor": 9}]
    user_bundle.write()
    r = user_pyrunc("run", "--bundle", user_bundle.path, CID)
    assert r.code == 1 and r.err.count("\n") == 1, r
    assert "bind host device /dev/pyrunc-none (no mknod in a user namespace" in r.err
    _no_leftovers(rootless_user)


def test_the_init_runs_from_a_sealed_copy_of_the_interpreter(rootless_user, user_pyrunc, user_bundle):
    """CVE-2019-5736 without CAP_SYS_ADMIN: until it execs, the init's executable is a
    memfd copy sealed against writes, not the host's interpreter."""
    user_bundle.config["process"]["args"] = ["true"]
    user_bundle.write()
    assert user_pyrunc("create", "--bundle", user_bundle.path, CID).code == 0
    pid = user_pyrunc.state(CID)["pid"]
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:pyrunc-sealed-exe")
    assert user_pyrunc("delete", "--force", CID).code == 0
    _no_leftovers(rootless_user)
