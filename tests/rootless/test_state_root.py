"""The default state root and `--rootless auto`, as runc decides them: $XDG_RUNTIME_DIR/pyrunc
for a user without root (and for root in a user namespace unless $USER is root), else
/run/pyrunc; rootless when not root or in a user namespace."""

import os
import subprocess

from tests.rootless_user import USERS_VENV

PROBE = "from pyrunc import store; print(store.default_root(), store.rootless_mode('auto'), store.in_user_namespace())"


def _probe(user, env):
    r = user.run([os.path.join(USERS_VENV, "bin", "python"), "-c", PROBE], env=env, check=True)
    root, rootless, userns = r.stdout.split()
    return root, rootless == "True", userns == "True"


def test_a_user_gets_a_root_in_its_runtime_dir(rootless_user, users_pyrunc):
    assert _probe(rootless_user, rootless_user.env()) == (f"{rootless_user.runtime_dir}/pyrunc", True, False)


def test_without_xdg_runtime_dir_a_user_gets_runcs_fallback(rootless_user, users_pyrunc):
    env = rootless_user.env()
    del env["XDG_RUNTIME_DIR"]
    assert _probe(rootless_user, env) == ("/run/pyrunc", True, False)
    # ... which it cannot use: one line naming the directory, as runc's "open /run/runc: permission denied".
    r = rootless_user.run([users_pyrunc, "list"], env=env)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r
    assert "/run/pyrunc" in r.stderr and "XDG_RUNTIME_DIR" in r.stderr, r.stderr


def test_root_keeps_run_pyrunc_even_with_xdg_runtime_dir(tmp_path):
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "USER": "root"}
    r = subprocess.run(
        [os.path.join(USERS_VENV, "bin", "python"), "-c", PROBE], env=env, capture_output=True, text=True
    )
    assert r.stdout.split() == ["/run/pyrunc", "False", "False"], r


def test_root_in_a_user_namespace_is_rootless(tmp_path, users_pyrunc):
    python = os.path.join(USERS_VENV, "bin", "python")
    for user, root in (("someone", f"{tmp_path}/pyrunc"), ("root", "/run/pyrunc")):
        env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "USER": user}
        r = subprocess.run(
            ["unshare", "--user", "--map-root-user", python, "-c", PROBE], env=env, capture_output=True, text=True
        )
        assert r.stdout.split() == [root, "True", "True"], r


def test_the_users_state_root_is_private_and_sticky(rootless_user, user_pyrunc, user_bundle):
    """Made by the user's first create: mode 0700 and sticky (so that systemd's tmpfiles
    never ages it out of $XDG_RUNTIME_DIR), owned by the user, the container in it."""
    r = user_pyrunc("create", "--bundle", user_bundle.path, "pyrunc-test-root")
    assert r.code == 0, r
    st = os.stat(f"{rootless_user.runtime_dir}/pyrunc")
    assert (st.st_uid, oct(st.st_mode & 0o7777)) == (rootless_user.uid, "0o1700")
    assert os.listdir(f"{rootless_user.runtime_dir}/pyrunc") == ["pyrunc-test-root"]
    assert user_pyrunc("delete", "--force", "pyrunc-test-root").code == 0
