"""The test user fixture itself: what rootless tests (and rootless podman's) rely on."""

import os
import stat

from tests import rootless_user as kit


def test_commands_run_as_the_user(rootless_user):
    r = rootless_user.run(["sh", "-c", "id -u; id -g; id -G; echo $HOME $XDG_RUNTIME_DIR; pwd"], check=True)
    uid, gid, groups, env, cwd = r.stdout.splitlines()
    assert (int(uid), int(gid), groups) == (rootless_user.uid, rootless_user.gid, str(rootless_user.gid))
    assert rootless_user.uid != 0
    assert env == f"{rootless_user.home} /run/user/{rootless_user.uid}"
    assert cwd == rootless_user.home
    # No capability survives the switch.
    caps = rootless_user.run(["sh", "-c", "grep ^CapEff /proc/self/status"], check=True).stdout
    assert caps.split()[1] == "0000000000000000"


def test_runtime_dir_and_home_are_private(rootless_user):
    for path in (rootless_user.runtime_dir, rootless_user.home):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (rootless_user.uid, rootless_user.gid, 0o700)


def test_subordinate_ranges_are_the_users_alone(make_user):
    a, b = make_user(), make_user()
    for user in (a, b):
        assert kit.read_subids("/etc/subuid", user.name) == user.subuid
        assert kit.read_subids("/etc/subgid", user.name) == user.subgid
        assert user.subuid[1] >= 65536
    # No overlap with each other, nor with the users' own ids.
    assert a.subuid[0] + a.subuid[1] <= b.subuid[0] or b.subuid[0] + b.subuid[1] <= a.subuid[0]
    assert a.uid != b.uid and a.subuid[0] > max(a.uid, b.uid)


def test_remove_leaves_nothing(make_user):
    user = make_user()
    running = user.popen(["sleep", "1000"])
    with open(os.path.join(user.home, "file"), "w") as f:
        f.write("x")
    assert user.leftovers()  # the user, its ranges, home, runtime dir and the sleep
    kit.remove(user)
    running.wait()
    assert user.leftovers() == []
