"""Bundles, runtimes and clean-up for the benchmark suite (standard library only).

One busybox rootfs is shared by every bundle (config.json names it by absolute path);
a bundle is a directory holding only a config.json, so that each container can have a
cgroupsPath of its own.  Every cgroupsPath lies under /pyrunc-test-bench-<token>: a
missing or relative path would land in a cgroup owned by the machine's supervisor, and
one prefix per suite run lets clean-up remove exactly what this run's containers used.

Every runtime's --root, and the --pid-file files, lie on a tmpfs the suite mounts for
itself (source name pyrunc-test-bench-<token>, at <scratch>/run): on real hosts the state
roots are under /run, a tmpfs, and a state write on a disk costs what it never costs
there.  It is unmounted at clean-up, after every container is deleted.
"""

import json
import os
import select
import shutil
import subprocess
import tempfile
import time
import uuid

BUSYBOX = "/bin/busybox"  # Debian's busybox-static
RUNC = "/usr/bin/runc"
CRUN = "/usr/bin/crun"
CGROUP_FS = "/sys/fs/cgroup"
PREFIX = "pyrunc-test-bench"  # container ids, cgroups and temp dirs all start with it


def make_rootfs(path):
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    for applet in ("true", "sh", "sleep"):
        os.symlink("busybox", os.path.join(path, "bin", applet))


def base_config(workdir):
    """runc's default config (`runc spec`, run in a scratch bundle directory)."""
    scratch = tempfile.mkdtemp(dir=workdir)
    subprocess.run([RUNC, "spec"], cwd=scratch, check=True)
    with open(os.path.join(scratch, "config.json")) as f:
        config = json.load(f)
    shutil.rmtree(scratch)
    return config


class Bench:
    """The suite's scratch space: a temp dir with the rootfs, bundles and state roots,
    plus the cgroup prefix its containers use.  Use as a context manager: leaving it
    deletes every container it knows of and removes what they left."""

    def __init__(self, tmpfs=True):
        """tmpfs=False: the state roots on the scratch dir's own filesystem (a disk),
        for comparison only."""
        self.token = uuid.uuid4().hex[:8]
        self.dir = tempfile.mkdtemp(prefix=f"{PREFIX}-")
        self.cgroup_top = f"/{PREFIX}-{self.token}"
        # The state roots' tmpfs, as /run is on real hosts (the module's docstring).
        self.run_dir = os.path.join(self.dir, "run")
        self.run_fs = f"{PREFIX}-{self.token}"
        self.runtimes = []  # every Runtime made, for clean-up
        self._bundles = 0
        try:
            os.mkdir(self.run_dir, 0o700)
            if tmpfs:
                subprocess.run(
                    ["mount", "-t", "tmpfs", "-o", "mode=0700,size=512m", self.run_fs, self.run_dir],
                    check=True,
                    stdin=subprocess.DEVNULL,
                )
            else:
                self.run_fs = None
            self.rootfs = os.path.join(self.dir, "rootfs")
            make_rootfs(self.rootfs)
            self.config = base_config(self.dir)
        except BaseException:
            self.cleanup()
            raise

    def id(self, tag):
        return f"{PREFIX}-{tag}-{uuid.uuid4().hex[:6]}"

    def roots_fs(self):
        """What the state roots lie on, for the report."""
        if self.run_fs is None:
            return f"the scratch dir's filesystem ({self.run_dir}), not a tmpfs"
        return f"a tmpfs of its own ({self.run_fs} on {self.run_dir}), as /run on real hosts; --pid-file files too"

    def bundle(self, args=("/bin/true",), cgroup=None, memory_limit=None):
        """A bundle directory running args, in cgroup <top>/<cgroup> (a fresh name when
        none is given)."""
        self._bundles += 1
        path = os.path.join(self.dir, "bundles", str(self._bundles))
        os.makedirs(path)
        config = json.loads(json.dumps(self.config))
        config["root"]["path"] = self.rootfs
        config["process"]["terminal"] = False
        config["process"]["args"] = list(args)
        config["linux"]["cgroupsPath"] = f"{self.cgroup_top}/{cgroup or 'b' + str(self._bundles)}"
        if memory_limit is not None:
            config["linux"].setdefault("resources", {})["memory"] = {"limit": memory_limit}
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        return path

    def runtime(self, name, argv, tag=None):
        r = Runtime(name, argv, os.path.join(self.run_dir, "roots", tag or name))
        self.runtimes.append(r)
        return r

    def forget(self, runtime):
        """Remove a runtime's state root whole, without going through the runtime (for
        copied state directories, which must not be deleted one by one)."""
        shutil.rmtree(runtime.root, ignore_errors=True)
        self.runtimes.remove(runtime)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    def cleanup(self):
        """Delete every container under every root (force), unmount the roots' tmpfs,
        remove the scratch dir, then rmdir the cgroups under this run's prefix, deepest
        first.  Returns what could not be removed."""
        left = []
        for r in self.runtimes:
            for cid in r.ids():
                r.call("delete", "--force", cid)
        for r in self.runtimes:
            for cid in r.ids():
                left.append(f"{r.name} container {cid}")
        if os.path.ismount(self.run_dir):
            p = subprocess.run(["umount", self.run_dir], stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if p.returncode != 0:
                left.append(f"mount {self.run_dir} ({p.stderr.strip()})")
        if os.path.ismount(self.run_dir):
            return left  # never remove a scratch dir with a mount still in it
        shutil.rmtree(self.dir, ignore_errors=True)
        left += remove_cgroups(f"{PREFIX}-{self.token}")
        return left


def cgroup_dirs(top):
    """Every directory of cgroup <top> in every hierarchy (the unified one too), deepest
    first."""
    found = []
    for hierarchy in sorted(os.listdir(CGROUP_FS)):
        start = os.path.join(CGROUP_FS, hierarchy, top)
        if os.path.isdir(start):
            for dirpath, _, _ in os.walk(start):
                found.append(dirpath)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def remove_cgroups(top, tries=20):
    """rmdir (only: no cgroup file is written) each directory of cgroup <top>; a cgroup
    whose last process has just exited may still be busy for a moment, so retry."""
    for _ in range(tries):
        left = []
        for d in cgroup_dirs(top):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                left.append(f"{d}: {e.strerror}")
        if not left:
            return []
        time.sleep(0.1)
    return left


def run_timed(cmd, timeout=120, **popen):
    """Run cmd to completion: (exit status, seconds from just before it starts until it
    has been waited for).  The wait is a poll on a pidfd, which wakes the moment the
    child exits; subprocess.run(timeout=...) would poll with growing sleeps instead and
    round every time up to its next poll (7.5, 15.5, 31.5, 63.5 ms...).  After timeout
    seconds the command (our child, by pid) is killed and TimeoutError raised."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, **popen)
    fd = os.pidfd_open(p.pid)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            p.kill()
            p.wait()
            raise TimeoutError(f"{' '.join(cmd)}: still running after {timeout}s")
        code = p.wait()
    finally:
        os.close(fd)
    return code, time.perf_counter() - t


class Runtime:
    """A runtime command with a private --root.  call() is for untimed set-up: output
    goes to a file, never a pipe (a created container's init keeps the caller's stdio
    open, so a pipe would never reach EOF)."""

    def __init__(self, name, argv, root):
        self.name = name
        self.argv = list(argv)
        self.root = root
        os.makedirs(root, exist_ok=True)

    def cmd(self, *args):
        return self.argv + ["--root", self.root] + list(args)

    def call(self, *args, cwd=None, check=False, timeout=120):
        with tempfile.TemporaryFile() as out:
            p = subprocess.run(
                self.cmd(*args),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            out.seek(0)
            text = out.read().decode(errors="replace")
        if check and p.returncode != 0:
            raise RuntimeError(f"{self.name} {' '.join(args)}: exit {p.returncode}: {text.strip()}")
        return p.returncode, text

    def ids(self):
        """The container ids in the state root, by its directories (not through the
        runtime, which may be what failed)."""
        try:
            return sorted(n for n in os.listdir(self.root) if n.startswith(PREFIX))
        except FileNotFoundError:
            return []

    def status(self, cid):
        code, text = self.call("state", cid)
        if code != 0:
            return None
        return json.loads(text)["status"]
