"""An unprivileged test user, made and removed by the test that needs it (root only).

    with rootless_user.made() as user:          # or the fixtures at the end:
        r = user.run(["id", "-u"])              # as the user: its uid, gid, groups, env
        user.uid, user.subuid, user.home, user.runtime_dir, user.env()

`make()` adds a `pyrunc-test-<hex>` user with `useradd` (its own group, a home under
/home, mode 0700) and a subordinate uid and gid range (useradd allocates one under its
lock where /etc/subuid exists; added with `usermod` otherwise), and makes its
`XDG_RUNTIME_DIR`, /run/user/<uid>, 0700 and owned by it, as pam_systemd would.
`remove()` ends the processes still running as that uid (all of them the test's: the uid
is new), then `userdel -r` (which also drops the subordinate ranges) and removes the
runtime directory; `leftovers()` says what of the user is still on the host.

The pyrunc such a user can run is this checkout's .venv-users/bin/pyrunc (`make setup`
builds it with scripts/setup-users.sh: the .venv's interpreter may be where only root can
execute it); `users_pyrunc()` gives its path, building it first where it is missing.

The fixtures `make_user` (a factory), `rootless_user` (one user) and `users_pyrunc` are
defined here for any conftest to import:
`from tests.rootless_user import make_user, rootless_user, users_pyrunc`.

Commands run as the user through `setpriv` (uid, gid and the user's groups; no
capabilities; an environment of its own, not root's).  Nothing here imports pyrunc:
tests/e2e (rootless podman) uses it too.
"""

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

PREFIX = "pyrunc-test-"
TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# realpath: for a checkout closed to other users, .venv-users is a symlink to a copy they
# can reach (scripts/setup-users.sh), and the user must be given that path.
USERS_VENV = os.path.realpath(os.path.join(TREE, ".venv-users"))
USERS_PYRUNC = os.path.join(USERS_VENV, "bin", "pyrunc")
# Where the users' pyrunc imports pyrunc from: the checkout, or the copy beside the venv.
USERS_SRC = (
    TREE if USERS_VENV == os.path.join(TREE, ".venv-users") else os.path.join(os.path.dirname(USERS_VENV), "src")
)
RUNTIME_BASE = "/run/user"
# useradd and usermod fail, rather than wait, while another one holds /etc/passwd's lock.
LOCK_RETRIES = 50
TOOLS = ("useradd", "userdel", "usermod", "setpriv")


def missing_tools() -> list[str]:
    """What this module needs and the host lacks (skip with it as the reason)."""
    return [t for t in TOOLS if shutil.which(t) is None]


def read_subids(path: str, name: str) -> tuple[int, int] | None:
    """The first `name:start:count` range in /etc/subuid or /etc/subgid."""
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] == name:
                    return int(parts[1]), int(parts[2])
    except FileNotFoundError:
        pass
    return None


@dataclass
class TestUser:
    __test__ = False  # not a pytest test class

    name: str
    uid: int
    gid: int
    home: str
    runtime_dir: str
    subuid: tuple[int, int]  # (start, count)
    subgid: tuple[int, int]
    removed: bool = field(default=False)
    in_passwd: bool = True  # False: a bare uid (bare_user), no groups to init
    # What popen() started: remove() ends and reaps them, also one still in setpriv
    # (not yet the user's, so a scan by uid misses it).
    started: list[subprocess.Popen] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """A login-like environment for the user: what pam and systemd would give it."""
        env = {
            "HOME": self.home,
            "USER": self.name,
            "LOGNAME": self.name,
            "SHELL": "/bin/sh",
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
            "XDG_RUNTIME_DIR": self.runtime_dir,
            "LANG": "C.UTF-8",
        }
        env.update(extra)
        return env

    def argv(self, cmd: Sequence[str]) -> list[str]:
        """cmd wrapped to run as the user (real and effective ids, the user's groups)."""
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--init-groups" if self.in_passwd else "--clear-groups",
            "--",
            *cmd,
        ]

    def popen(self, cmd: Sequence[str], env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
        kw.setdefault("cwd", self.home)
        proc = subprocess.Popen(self.argv(cmd), env=self.env() if env is None else env, **kw)
        self.started.append(proc)
        return proc

    def run(
        self,
        cmd: Sequence[str],
        env: dict[str, str] | None = None,
        timeout: float = 60,
        check: bool = False,
        **kw,
    ) -> subprocess.CompletedProcess:
        """cmd as the user, in its home; output captured as text unless told otherwise."""
        kw.setdefault("cwd", self.home)
        if "stdout" not in kw and "stderr" not in kw:
            kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(
            self.argv(cmd), env=self.env() if env is None else env, timeout=timeout, check=check, **kw
        )

    def pids(self) -> list[int]:
        """The live processes whose real or effective uid is the user's (not zombies: a
        zombie is its parent's to reap)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            real, eff = fields.get("Uid", "-1 -1").split()[:2]
            if self.uid in (int(real), int(eff)) and not fields.get("State", "").strip().startswith("Z"):
                found.append(int(entry))
        return found

    def leftovers(self) -> list[str]:
        """What of the user the host still has (empty after remove())."""
        left = []
        try:
            pwd.getpwnam(self.name)
            left.append(f"passwd entry {self.name}")
        except KeyError:
            pass
        for path in ("/etc/subuid", "/etc/subgid"):
            if read_subids(path, self.name) is not None:
                left.append(f"{path} range of {self.name}")
        for path in (self.home, self.runtime_dir):
            if os.path.lexists(path):
                left.append(path)
        left.extend(f"process {pid}" for pid in self.pids())
        return left


def _run_locked(cmd: list[str]) -> None:
    """A shadow-utils command, again while another process holds the passwd lock."""
    for _ in range(LOCK_RETRIES):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            return
        if "lock" not in r.stderr and "try again" not in r.stderr:
            break
        time.sleep(0.2)
    raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")


def _free_range(path: str) -> int:
    """A start above every range in path (only where useradd allocated none)."""
    top = 100000
    with open(path) as f:
        for line in f:
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                top = max(top, int(parts[1]) + int(parts[2]))
    return top


def make(prefix: str = PREFIX, subid_count: int = 65536) -> TestUser:
    """A new user, its subordinate ranges and its runtime directory."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    home = f"/home/{name}"
    _run_locked(["useradd", "--create-home", "--home-dir", home, "--shell", "/bin/sh", "--user-group", name])
    user = None
    try:
        pw = pwd.getpwnam(name)
        os.chmod(home, 0o700)
        for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
            if not os.path.exists(path):
                open(path, "a").close()
            if read_subids(path, name) is None:
                start = _free_range(path)
                _run_locked(["usermod", flag, f"{start}-{start + subid_count - 1}", name])
        subuid = read_subids("/etc/subuid", name)
        subgid = read_subids("/etc/subgid", name)
        assert subuid is not None and subgid is not None
        runtime_dir = f"{RUNTIME_BASE}/{pw.pw_uid}"
        user = TestUser(name, pw.pw_uid, pw.pw_gid, home, runtime_dir, subuid, subgid)
        os.makedirs(RUNTIME_BASE, mode=0o755, exist_ok=True)
        if os.path.lexists(runtime_dir):  # a stale one of a removed uid: not this user's
            shutil.rmtree(runtime_dir)
        os.mkdir(runtime_dir, 0o700)
        os.chown(runtime_dir, pw.pw_uid, pw.pw_gid)
        return user
    except BaseException:
        if user is not None:
            remove(user)
        else:
            subprocess.run(["userdel", "-r", name], capture_output=True)
        raise


def bare_user(uid: int, base: str) -> TestUser:
    """A uid with no passwd entry, its home and runtime directory under base (a writable
    directory of root's): for a machine whose /etc cannot be written (the `make
    test-cgroup2` guest).  No subordinate ids: single-id mappings only.  remove() ends its
    processes and removes both directories."""
    home, runtime_dir = os.path.join(base, f"home-{uid}"), os.path.join(base, f"run-{uid}")
    for path in (home, runtime_dir):
        os.mkdir(path, 0o700)
        os.chown(path, uid, uid)
    return TestUser(f"{PREFIX}{uid}", uid, uid, home, runtime_dir, (0, 0), (0, 0), in_passwd=False)


def remove(user: TestUser) -> None:
    """End the user's processes, then remove the user, its home, ranges and runtime dir."""
    if user.removed:
        return
    for proc in user.started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    for _ in range(50):
        pids = user.pids()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    if os.path.lexists(user.runtime_dir):
        shutil.rmtree(user.runtime_dir, ignore_errors=True)
    try:
        if user.in_passwd:
            pwd.getpwnam(user.name)
            # --force: userdel (exit 8) also counts a killed process its parent has not
            # reaped yet; a live one would still show in leftovers().
            _run_locked(["userdel", "--force", "--remove", user.name])
    except KeyError:
        pass
    except RuntimeError:
        # userdel -r warns (exit 12) when it cannot remove the home: do it here.
        if os.path.lexists(user.home):
            shutil.rmtree(user.home, ignore_errors=True)
    # userdel also drops the user's /etc/subuid and /etc/subgid ranges (leftovers() checks).
    if os.path.lexists(user.home):
        shutil.rmtree(user.home, ignore_errors=True)
    user.removed = True


@contextlib.contextmanager
def made(prefix: str = PREFIX) -> Iterator[TestUser]:
    """A test user for the with-block; removed afterwards, whatever happened."""
    user = make(prefix)
    try:
        yield user
    finally:
        remove(user)


@pytest.fixture
def make_user():
    """Make test users (each `make_user()` a new one); all removed after the test, which
    then fails if any of them left something on the host."""
    missing = missing_tools()
    if os.geteuid() != 0:
        pytest.skip("adding a test user needs root")
    if missing:
        pytest.skip(f"no {', '.join(missing)} to add a test user")
    users = []

    def new_user() -> TestUser:
        user = make()
        users.append(user)
        return user

    yield new_user
    for user in users:
        remove(user)
    left = [thing for user in users for thing in user.leftovers()]
    assert not left, f"the test users left {left}"


@pytest.fixture
def rootless_user(make_user):
    """An unprivileged user with a subordinate id range, a home and an XDG_RUNTIME_DIR."""
    return make_user()


_copy_refreshed = False


def _stale(path: str) -> bool:
    """path missing, or older than what it is built from; for a copy (a checkout closed to
    other users), once per session, since any edit of pyrunc/ makes the copy old."""
    global _copy_refreshed
    if not os.path.exists(path):
        return True
    if os.path.islink(os.path.join(TREE, ".venv-users")) and not _copy_refreshed:
        _copy_refreshed = True
        return True
    sources = [os.path.join(TREE, "pyproject.toml"), os.path.join(TREE, "pyrunc", "launcher", "launcher.c")]
    return any(os.path.getmtime(s) > os.path.getmtime(path) for s in sources)


def users_pyrunc_path() -> str:
    """The world-executable pyrunc of this checkout, built (scripts/setup-users.sh) where
    it is missing or older than its sources; pytest.skip with the script's reason where
    it cannot be (a checkout other users cannot reach)."""
    if _stale(USERS_PYRUNC):
        r = subprocess.run(
            ["sh", os.path.join(TREE, "scripts", "setup-users.sh")], capture_output=True, text=True, timeout=900
        )
        if r.returncode != 0 or not os.path.exists(USERS_PYRUNC):
            pytest.skip(f"no pyrunc for unprivileged users: {(r.stderr or r.stdout).strip()}")
    return USERS_PYRUNC


@pytest.fixture(scope="session")
def users_pyrunc():
    """The path of the pyrunc any user can execute (.venv-users/bin/pyrunc)."""
    if os.geteuid() != 0:
        pytest.skip("building the users' pyrunc needs root")
    return users_pyrunc_path()
