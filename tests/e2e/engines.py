"""The engines, each started privately: own config, root, state and sockets in the run's
private directory, the runtime under test reached through the logging wrapper."""

import json
import os
import re
import resource
import shutil
import subprocess
import sys

from tests.e2e.harness import Private, run, wait_until

CONTAINERD_NEEDS = ("containerd", "ctr", "/usr/bin/containerd-shim-runc-v2", "script")
PODMAN_NEEDS = ("podman", "conmon", "script")
DOCKER_NEEDS = ("dockerd", "docker", "containerd", "/usr/bin/containerd-shim-runc-v2", "script")


class EngineError(RuntimeError):
    pass


class Containerd(Private):
    """A private containerd driven with ctr, the io.containerd.runc.v2 shim calling the
    runtime: per container through `ctr run --runc-binary` (BinaryName) and, with no
    BinaryName, as the `runc` on containerd's PATH (a link to the wrapper)."""

    # The runc v2 shim puts its ttrpc socket in /run/containerd/s whatever the config says
    # (and removes it when it exits); ctr makes /run/containerd/fifo without --fifo-dir.
    HOST_PATHS = (
        ("rmdir", "/run/containerd"),
        ("rmdir", "/run/containerd/s"),
        ("rmdir", "/run/containerd/fifo"),
        ("rmdir", "/opt/containerd"),
    )

    def __init__(self, image_tar, image_ref, engine="containerd"):
        super().__init__(engine, image_tar)
        self.image = image_ref
        self.ns = self.name  # cgroups go to /<ns>/<id>, ours by name
        self.sock = self.path("containerd.sock")
        self.runc_root = self.path("runc-root")
        self.fifo_dir = self.path("fifo")
        self.state = self.path("state")
        for d in ("root", "state", "runc-root", "fifo", "opt", "pathbin"):
            os.mkdir(self.path(d))
        os.symlink(self.wrapper, self.path("pathbin", "runc"))
        with open(self.path("config.toml"), "w") as f:
            f.write(self.config_toml())
        self.daemon = None

    def start(self):
        env = dict(os.environ, PATH=self.path("pathbin") + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
        self.daemon = self.start_daemon(["containerd", "--config", self.path("config.toml")], "containerd.log", env=env)
        self.wait_ready()
        r = self.ctr("image", "import", self.image_tar, timeout=120)
        if r.rc != 0:
            raise EngineError(f"ctr image import failed: {r!r}")

    def config_toml(self):
        d = self.dir
        return f"""version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = "{d}/debug.sock"
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"""

    def wait_ready(self):
        def up():
            if self.daemon.poll() is not None:
                raise EngineError(
                    f"containerd exited ({self.daemon.returncode}):\n" + self.daemon_log("containerd.log")
                )
            return run(["ctr", "-a", self.sock, "version"], timeout=10).rc == 0

        wait_until(up, "containerd to answer on its socket", timeout=30)

    def ctr(self, *args, **kw):
        return run(["ctr", "-a", self.sock, "-n", self.ns, *args], **kw)

    def ctr_argv(self, *args):
        return ["ctr", "-a", self.sock, "-n", self.ns, *args]

    @property
    def runtime_flags(self):
        return ["--runc-binary", self.wrapper, "--runc-root", self.runc_root, "--fifo-dir", self.fifo_dir]

    def cid(self, tag):
        return f"{self.name}-{tag}"

    def bundle(self, cid):
        return os.path.join(self.state, "io.containerd.runtime.v2.task", self.ns, cid)

    def tasks(self):
        """{container id: (pid, status)} from `ctr task ls`."""
        r = self.ctr("task", "ls")
        found = {}
        for line in r.lines[1:]:
            fields = line.split()
            if len(fields) >= 3:
                found[fields[0]] = (fields[1], fields[2])
        return found

    def task_status(self, cid):
        return self.tasks().get(cid, (None, None))[1]

    def remove_containers(self):
        if self.daemon is None or self.daemon.poll() is not None:
            return
        for cid, (_, status) in self.tasks().items():
            if status == "PAUSED":
                self.ctr("task", "resume", cid, timeout=20)
            self.ctr("task", "kill", "-a", "-s", "SIGKILL", cid, timeout=20)
            self.ctr("task", "delete", "-f", cid, timeout=30)
        for cid in self.ctr("container", "ls", "-q").lines:
            self.ctr("container", "rm", cid, timeout=30)


class Podman(Private):
    """podman as root with conmon, the cgroupfs manager, file events, vfs storage and private
    containers.conf, storage.conf and registries.conf, exported (conmon's exit command,
    `podman container cleanup`, must see the same config).  podman passes the runtime no
    --root: it keeps its state in its default root."""

    HOST_PATHS = (("rmrf", "/var/lib/containers"), ("rmrf", "/run/containers"))

    def __init__(self, image_tar, image_ref):
        super().__init__("podman", image_tar)
        self.image = image_ref
        for d in ("root", "runroot", "tmp", "net"):
            os.mkdir(self.path(d))
        # podman as root asks for RLIMIT_NOFILE/NPROC of about 1048576; without CAP_SYS_RESOURCE
        # setrlimit fails with EPERM, so ask for what this process has (podman caps NPROC at 32768).
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
        nproc = min(32768, 1048576 if nproc == resource.RLIM_INFINITY else nproc)
        d = self.dir
        with open(self.path("containers.conf"), "w") as f:
            f.write(f"""[containers]
netns = "none"
default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]
[network]
network_config_dir = "{d}/net"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
lock_type = "file"
tmp_dir = "{d}/tmp"
static_dir = "{d}/root/libpod"
volume_path = "{d}/root/volumes"
runtime = "pyrunc"
[engine.runtimes]
pyrunc = ["{self.wrapper}"]
""")
        with open(self.path("storage.conf"), "w") as f:
            f.write(f'[storage]\ndriver = "vfs"\ngraphroot = "{d}/root"\nrunroot = "{d}/runroot"\n')
        open(self.path("registries.conf"), "w").close()
        self.env = dict(
            os.environ,
            CONTAINERS_CONF=self.path("containers.conf"),
            CONTAINERS_STORAGE_CONF=self.path("storage.conf"),
            CONTAINERS_REGISTRIES_CONF=self.path("registries.conf"),
        )
        self.base = [
            "podman",
            "--root",
            self.path("root"),
            "--runroot",
            self.path("runroot"),
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--runtime",
            self.wrapper,
        ]
        self.run_flags = ["--network", "none", "--cgroup-parent", self.cgroup_parent]

    def start(self):
        r = self.podman("load", "-i", self.image_tar, timeout=120)
        if r.rc != 0:
            raise EngineError(f"podman load failed: {r!r}")

    def podman(self, *args, **kw):
        kw.setdefault("env", self.env)
        return run([*self.base, *args], **kw)

    def podman_argv(self, *args):
        return [*self.base, *args]

    @property
    def tty_kw(self):
        """run_tty's arguments for podman_argv: the engine's environment."""
        return {"env": self.env}

    def cname(self, tag):
        return f"{self.name}-{tag}"

    def container_id(self, name):
        r = self.podman("inspect", "-f", "{{.Id}}", name)
        return r.lines[-1] if r.rc == 0 and r.lines else None

    def remove_containers(self):
        self.podman("rm", "-a", "-f", "-t", "0", timeout=60)

    def default_root(self):
        """Where the runtime keeps state when given no --root: /run/<its name> (runc, crun
        and pyrunc alike)."""
        name = os.path.basename(self.runtime)
        return f"/run/{name}" if name in ("runc", "crun") else "/run/pyrunc"

    def more_host_paths(self):
        return (("rmdir", self.default_root()),)

    def runtime_state_dirs(self):
        root = self.default_root()
        return [
            os.path.join(root, cid) for cid in sorted(self.argv.container_ids()) if re.fullmatch(r"[0-9a-f]{64}", cid)
        ]


class Docker(Private):
    """A private dockerd (own --config-file, --data-root, --exec-root, socket, pidfile; no
    bridge, iptables or userland proxy; vfs; cgroupfs) with --add-runtime pyrunc=<wrapper>.
    It starts its own containerd under its exec root; stopping dockerd stops that too."""

    HOST_PATHS = (
        ("rmdir", "/etc/docker"),
        ("rmf", "/etc/docker/key.json"),
        ("rmrf", "/run/docker"),
        ("rmdir", "/run/containerd"),
        ("rmdir", "/run/containerd/s"),
    )

    def __init__(self, image_tar, image_ref):
        super().__init__("docker", image_tar)
        self.image = image_ref
        for d in ("data", "exec", "cli"):
            os.mkdir(self.path(d))
        with open(self.path("daemon.json"), "w") as f:
            f.write("{}\n")  # keeps /etc/docker/daemon.json out of it
        self.sock = self.path("docker.sock")
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}", DOCKER_CONFIG=self.path("cli"))
        self.run_flags = ["--runtime", "pyrunc", "--network", "none"]
        self.daemon = None

    def start(self):
        self.daemon = self.start_daemon(
            [
                "dockerd",
                "--config-file",
                self.path("daemon.json"),
                "--data-root",
                self.path("data"),
                "--exec-root",
                self.path("exec"),
                "-H",
                f"unix://{self.sock}",
                "--pidfile",
                self.path("docker.pid"),
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--storage-driver",
                "vfs",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--cgroup-parent",
                self.cgroup_parent,
                "--add-runtime",
                f"pyrunc={self.wrapper}",
            ],
            "dockerd.log",
        )

        def up():
            if self.daemon.poll() is not None:
                raise EngineError(f"dockerd exited ({self.daemon.returncode}):\n" + self.daemon_log("dockerd.log"))
            return self.docker("version", timeout=10).rc == 0

        wait_until(up, "dockerd to answer on its socket", timeout=60, interval=0.2)
        r = self.docker("load", "-i", self.image_tar, timeout=120)
        if r.rc != 0:
            raise EngineError(f"docker load failed: {r!r}")

    def docker(self, *args, **kw):
        kw.setdefault("env", self.env)
        return run(["docker", *args], **kw)

    def docker_argv(self, *args):
        return ["docker", *args]

    def cname(self, tag):
        return f"{self.name}-{tag}"

    def remove_containers(self):
        if self.daemon is None or self.daemon.poll() is not None:
            return
        ids = self.docker("ps", "-aq").lines
        if ids:
            self.docker("rm", "-f", *ids, timeout=120)


def cri_interpreter():
    """A Python that can import grpc: this one, else Debian's /usr/bin/python3; or None."""
    for python in (sys.executable, "/usr/bin/python3"):
        if (
            os.access(python, os.X_OK)
            and subprocess.run([python, "-c", "import grpc"], capture_output=True).returncode == 0
        ):
            return python
    return None


class CriContainerd(Containerd):
    """A private containerd with its CRI plugin, whose runtime handler "pyrunc" is the runc
    v2 shim with BinaryName = the wrapper (config.toml: the route kubelet and crictl take).
    Pods use the host network (no CNI) and no hostname; CRI containers live in the namespace
    k8s.io, their cgroups under the pod's cgroup parent."""

    CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cri_client.py")

    def __init__(self, image_tar, image_ref, pause_tar, pause_ref, python):
        self.pause_ref = pause_ref
        self.python = python
        self.pods = []
        super().__init__(image_tar, image_ref, engine="cri")
        self.ns = "k8s.io"
        self.pause_tar = self.path("pause.tar")
        shutil.copyfile(pause_tar, self.pause_tar)
        os.mkdir(self.path("cni"))
        os.mkdir(self.path("logs"))

    def config_toml(self):
        d = self.dir
        return f"""version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{self.pause_ref}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "pyrunc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyrunc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyrunc.options]
        BinaryName = "{self.wrapper}"
        Root = "{self.runc_root}"
"""

    def start(self):
        self.daemon = self.start_daemon(["containerd", "--config", self.path("config.toml")], "containerd.log")
        self.wait_ready()
        for tar in (self.pause_tar, self.image_tar):
            r = self.ctr("image", "import", tar, timeout=120)
            if r.rc != 0:
                raise EngineError(f"ctr image import failed: {r!r}")

    def cri(self, method, request=None, timeout=120):
        """(response dict, Result) of one CRI call; the dict has "error" when it failed."""
        r = run([self.python, self.CLIENT, self.sock, method], stdin=json.dumps(request or {}), timeout=timeout)
        try:
            doc = json.loads(r.lines[-1])
        except (IndexError, ValueError):
            doc = {"error": "CLIENT", "details": r.out}
        return doc, r

    def pod_config(self, name):
        return {
            "metadata": {"name": name, "uid": f"{name}-uid", "namespace": self.name, "attempt": 0},
            "log_directory": self.path("logs", name),
            "linux": {"cgroup_parent": self.cgroup_parent, "security_context": {"namespace_options": {"network": 2}}},
        }  # NODE

    def remove_containers(self):
        if self.daemon is None or self.daemon.poll() is not None:
            return
        for pod in self.pods:
            self.cri("StopPodSandbox", {"pod_sandbox_id": pod}, timeout=60)
            self.cri("RemovePodSandbox", {"pod_sandbox_id": pod}, timeout=60)
        super().remove_containers()
