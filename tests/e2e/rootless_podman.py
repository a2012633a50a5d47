"""Rootless podman: podman run by a fresh unprivileged user (tests/rootless_user.py: useradd
with a subordinate uid/gid range, a home and an XDG_RUNTIME_DIR of its own) with its storage
under that home, private configs in the run's private directory, and the runtime under test
through the logging wrapper.  The runtime is the pyrunc any user can execute
(.venv-users/bin/pyrunc) unless PYRUNC_E2E_RUNTIME names another (runc: a baseline).

podman makes the user namespace itself (newuidmap/newgidmap with the user's subordinate
ranges) and a pause process that holds it; conmon and the runtime run inside it as uid 0 of
that namespace.  The runtime is given no --root, so it keeps its state in its rootless
default, $XDG_RUNTIME_DIR/<its name> (runc's rule, which pyrunc follows).
"""

import os
import re
import shutil

from tests import rootless_user
from tests.e2e.engines import EngineError
from tests.e2e.harness import Private, missing, run, write_wrapper
from tests.e2e.tun import TunGrant

ROOTLESS_PODMAN_NEEDS = ("podman", "conmon", "script", "newuidmap", "newgidmap", *rootless_user.TOOLS)


def skip_reason():
    """Why rootless podman cannot run here, or None."""
    if os.geteuid() != 0:
        return "rootless podman e2e tests need root (to add the test user)"
    lacking = missing(*ROOTLESS_PODMAN_NEEDS)
    if lacking:
        return f"missing {', '.join(lacking)} (scripts/setup-engines.sh installs podman, conmon, uidmap)"
    return userns_unavailable()


def rootless_runtime():
    """$PYRUNC_E2E_RUNTIME, else the pyrunc other users can execute (built when missing;
    pytest.skip where this checkout is out of their reach)."""
    chosen = os.environ.get("PYRUNC_E2E_RUNTIME")
    if chosen:
        return shutil.which(chosen) or chosen
    return rootless_user.users_pyrunc_path()


def userns_unavailable():
    """Why this kernel gives no user namespaces to an unprivileged user, or None."""
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if int(f.read()) == 0:
                return "user.max_user_namespaces is 0"
    except (OSError, ValueError):
        return "no /proc/sys/user/max_user_namespaces (a kernel without user namespaces)"
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone") as f:
            if f.read().strip() == "0":
                return "kernel.unprivileged_userns_clone is 0"
    except OSError:
        pass
    return None


class RootlessPodman(Private):
    """podman as the test user: vfs storage under the user's home, cgroupfs (no systemd user
    session here; on cgroup v1 a rootless container gets no cgroup), file events, private
    containers.conf/storage.conf/registries.conf exported (conmon's exit command, `podman
    container cleanup`, must see the same), no network unless a test asks for slirp4netns."""

    def __init__(self, image_tar, image_ref, runtime):
        super().__init__("podman-rootless", image_tar)
        self.image = image_ref
        self.runtime = runtime
        write_wrapper(self.wrapper, runtime, self.argv.path)
        try:
            self.user = rootless_user.make()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise
        self.tun = None
        self.rootless_state_left = []
        uid, gid = self.user.uid, self.user.gid
        open(self.argv.path, "a").close()
        os.chown(self.argv.path, uid, gid)  # the wrapper runs as the user
        os.mkdir(self.path("net"))
        os.chown(self.path("net"), uid, gid)
        home, run_dir = self.user.home, self.user.runtime_dir
        with open(self.path("containers.conf"), "w") as f:
            f.write(f"""[containers]
netns = "none"
[network]
network_config_dir = "{self.path("net")}"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{run_dir}/events.log"
runtime = "pyrunc"
[engine.runtimes]
pyrunc = ["{self.wrapper}"]
""")
        with open(self.path("storage.conf"), "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{home}/storage"\nrunroot = "{run_dir}/containers"\n')
        open(self.path("registries.conf"), "w").close()
        self.env = self.user.env(
            CONTAINERS_CONF=self.path("containers.conf"),
            CONTAINERS_STORAGE_CONF=self.path("storage.conf"),
            CONTAINERS_REGISTRIES_CONF=self.path("registries.conf"),
            XDG_CONFIG_HOME=f"{home}/.config",
            XDG_DATA_HOME=f"{home}/.local/share",
        )
        self.base = ["podman", "--cgroup-manager", "cgroupfs", "--events-backend", "file", "--runtime", self.wrapper]
        self.run_flags = ["--network", "none"]

    def start(self):
        r = self.podman("load", "-i", self.image_tar, timeout=180)
        if r.rc != 0:
            raise EngineError(f"rootless podman load failed: {r!r}")

    def as_user(self, *argv, **kw):
        """argv run as the test user, in its environment and its home (podman goes back
        to its directory after entering its user namespace: the checkout may be closed)."""
        kw.setdefault("env", self.env)
        kw.setdefault("cwd", self.user.home)
        return run(self.user.argv(argv), **kw)

    def podman(self, *args, **kw):
        return self.as_user(*self.base, *args, **kw)

    @property
    def tty_kw(self):
        """run_tty's arguments for podman_argv (which carries setpriv and the user's
        environment): the user's home, since podman goes back to its directory."""
        return {"cwd": self.user.home}

    def podman_argv(self, *args):
        """For run_tty: setpriv and env in the argv (script(1) runs as root)."""
        env = [f"{k}={v}" for k, v in self.env.items()]
        return self.user.argv(["env", "-i", *env, *self.base, *args])

    def cname(self, tag):
        return f"{self.name}-{tag}"

    def container_id(self, name):
        r = self.podman("inspect", "-f", "{{.Id}}", name)
        return r.lines[-1] if r.rc == 0 and r.lines else None

    def grant_tun(self):
        """Let the user open /dev/net/tun (slirp4netns) until close()."""
        if self.tun is None:
            self.tun = TunGrant(self.user.uid)

    def default_root(self):
        """Where a rootless runtime keeps state when given no --root."""
        name = os.path.basename(self.runtime)
        return os.path.join(self.user.runtime_dir, name if name in ("runc", "crun") else "pyrunc")

    def runtime_state_dirs(self):
        root = self.default_root()
        return [
            os.path.join(root, cid) for cid in sorted(self.argv.container_ids()) if re.fullmatch(r"[0-9a-f]{64}", cid)
        ]

    def remove_containers(self):
        """Through podman; then, the runtime's state noted (it lives in the user's runtime
        directory, which goes with the user), every process still running as the user
        (podman's pause process, a conmon or slirp4netns left behind) and the user."""
        try:
            if not self.user.removed:
                self.podman("rm", "-a", "-f", "-t", "0", timeout=120)
        finally:
            root = self.default_root()
            if os.path.isdir(root):  # a container's state (pyrunc's "@..." are caches, not state)
                self.rootless_state_left = [os.path.join(root, e) for e in sorted(os.listdir(root)) if e[:1] != "@"]
            rootless_user.remove(self.user)
            if self.tun is not None:
                self.tun.release()

    def leftovers(self):
        left = super().leftovers() + self.user.leftovers()
        left += [f"runtime state {d} (still there after podman rm -a)" for d in self.rootless_state_left]
        if self.tun is not None:
            left += self.tun.leftovers()
        return left
