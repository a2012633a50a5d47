"""What every engine's tests share: commands run with a deadline, the runtime wrapper that
logs each argv the engine passes, and the clean-up that leaves the host as it was.

Everything a test run makes is named with PREFIX: the private directory under /tmp that holds
the engine's config, root, state and sockets; the containerd namespace or the cgroup parent
that holds the containers' cgroups; the container names.  Clean-up reaches only those: a
process is ours when its command line names our private directory or when it sits in one of
our cgroups; a mount is ours when it is under our directory; a cgroup is ours by its parent's
name.  Host paths the engines create as a side effect are removed only when they were not
there before.
"""

import ctypes
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from tests.integration.cli_util import wait_for as wait_until  # noqa: F401  (the modules' poll)

PREFIX = "pyrunc-test-e2e-"
CGROUP_ROOT = "/sys/fs/cgroup"
# Global flags of runc's command line that take no value; every other global flag takes one.
BOOL_GLOBALS = {"--debug", "--systemd-cgroup", "--help", "-h", "--version", "-v"}
MNT_DETACH = 2


def runtime_binary():
    """The runtime under test: $PYRUNC_E2E_RUNTIME (e.g. runc, for a baseline), else the
    pyrunc beside this interpreter (the project's .venv)."""
    chosen = os.environ.get("PYRUNC_E2E_RUNTIME")
    if chosen:
        return shutil.which(chosen) or chosen
    return os.path.join(os.path.dirname(os.path.abspath(sys.executable)), "pyrunc")


def missing(*needs):
    """The needs (a command name or an absolute path) that this machine lacks."""
    return [n for n in needs if not (os.path.exists(n) if n.startswith("/") else shutil.which(n))]


def skip_reason(engine, needs):
    """Why an engine's module cannot run here, or None."""
    if os.geteuid() != 0:
        return f"{engine} e2e tests need root (they run private daemons and real containers)"
    runtime = runtime_binary()
    if not os.access(runtime, os.X_OK):
        return f"runtime {runtime} is not executable (make setup builds .venv)"
    lacking = missing(*needs)
    if lacking:
        return f"{engine} is not installed: missing {', '.join(lacking)} (scripts/setup-engines.sh installs it)"
    return None


# ---------------------------------------------------------------- commands with a deadline


class Result:
    """A finished command: its exit code (None after a timeout) and its stdout+stderr, with
    the \\r and NUL a pseudo-terminal adds taken out."""

    def __init__(self, argv, rc, out, seconds):
        self.argv, self.rc, self.out, self.seconds = argv, rc, out, seconds

    @property
    def lines(self):
        return [line for line in self.out.splitlines() if line.strip()]

    def __repr__(self):
        tail = self.out[-1500:]
        return f"\n$ {shlex.join(self.argv)}\n-> rc={self.rc} after {self.seconds:.1f}s, output:\n{tail}"


def _kill_group(proc):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def run(argv, timeout=60, stdin=None, env=None, cwd=None):
    """Run argv in its own session with output to a file, not a pipe: a container that keeps
    our stdio open cannot block us.  stdin: None (/dev/null) or text fed on standard input.
    At the deadline its process group is killed and rc is None."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as inp:
        if stdin is not None:
            inp.write(stdin.encode())
            inp.seek(0)
        proc = subprocess.Popen(
            argv,
            stdin=inp if stdin is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc = None
        out.seek(0)
        text = out.read().decode(errors="replace").replace("\r", "").replace("\0", "")
    return Result(list(argv), rc, text, time.monotonic() - started)


class Background:
    """A command left running (an attached `ctr run`, say) while the test acts on it; its
    output goes to a file that output() reads at any time."""

    def __init__(self, argv, out_path, env=None):
        self.argv, self.out_path = list(argv), out_path
        with open(out_path, "wb") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def output(self):
        with open(self.out_path, errors="replace") as f:
            return f.read().replace("\r", "").replace("\0", "")

    def wait(self, timeout=30):
        """The exit code, or None if still running at the deadline."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            _kill_group(self.proc)

    def __repr__(self):
        return f"\n$ {shlex.join(self.argv)} &\n-> rc={self.proc.poll()}, output:\n{self.output()[-1500:]}"


def run_tty(argv, timeout=60, env=None, cwd=None):
    """Run argv under a pseudo-terminal, as a person at a terminal would: util-linux
    script(1) passes the exit code through (-e) and the output on."""
    return run(["script", "-qefc", shlex.join(argv), "/dev/null"], timeout=timeout, env=env, cwd=cwd)


# ---------------------------------------------------------------- the runtime wrapper

WRAPPER = """#!/bin/sh
# Logs its argv (argv0 then each argument, TAB separated, one line per call), then runs
# the runtime under test in its place.  One printf: one write, so parallel calls never mix.
line=$(basename "$0")
for a in "$@"; do line="$line	$a"; done
printf '%s\\n' "$line" >> {log}
exec {runtime} "$@"
"""


def write_wrapper(path, runtime, log):
    with open(path, "w") as f:
        f.write(WRAPPER.format(log=shlex.quote(log), runtime=shlex.quote(runtime)))
    os.chmod(path, 0o755)


class Call:
    """One runtime invocation: argv0's name, the global flags, the command and its arguments."""

    def __init__(self, fields):
        self.argv = fields
        self.argv0 = fields[0]
        self.globals = {}
        rest = fields[1:]
        while rest and rest[0].startswith("-"):
            flag = rest.pop(0)
            if "=" in flag:
                name, value = flag.split("=", 1)
            elif flag in BOOL_GLOBALS or not rest:
                name, value = flag, True
            else:
                name, value = flag, rest.pop(0)
            self.globals[name] = value
        self.command = rest[0] if rest else ""
        self.args = rest[1:]

    @property
    def text(self):
        """The command and its arguments, space separated: what checks match on."""
        return " ".join([self.command, *self.args])

    def __repr__(self):
        return " ".join(self.argv)


class ArgvLog:
    """The calls the engine made to the runtime, read from the wrapper's log."""

    def __init__(self, path):
        self.path = path
        self._last = []
        open(path, "a").close()

    def calls(self):
        """The calls so far (after clean-up removed the log: the last ones read)."""
        try:
            with open(self.path) as f:
                self._last = [Call(line.rstrip("\n").split("\t")) for line in f if line.strip()]
        except FileNotFoundError:
            pass
        return self._last

    def matching(self, pattern):
        """The calls whose command and arguments match pattern as a whole (re.fullmatch)."""
        rx = re.compile(pattern)
        return [c for c in self.calls() if rx.fullmatch(c.text)]

    def mentioning(self, word):
        return [c for c in self.calls() if word in c.argv]

    def container_ids(self):
        """Every container id the engine named to the runtime (the last argument of the
        commands that take one first, or after their flags)."""
        ids = set()
        for c in self.calls():
            if (
                c.command
                in (
                    "create",
                    "start",
                    "exec",
                    "ps",
                    "pause",
                    "resume",
                    "kill",
                    "delete",
                    "state",
                    "update",
                    "run",
                    "events",
                )
                and c.args
            ):
                positional = [a for a in c.args if not a.startswith("-")]
                if c.command == "kill" and len(positional) >= 2:
                    ids.add(positional[-2])
                elif positional:
                    ids.add(positional[-1])
        return ids

    def summary(self, private_dir=""):
        """The distinct call shapes (private dir shown as <D>, 64-hex ids as <ID>)."""
        seen = []
        for c in self.calls():
            shape = " ".join(c.argv)
            if private_dir:
                shape = shape.replace(private_dir, "<D>")
            shape = re.sub(r"[0-9a-f]{64}", "<ID>", shape)
            shape = re.sub(r"(/tmp/(?:runc-process|pty|conmon-term)[^/ ]*)", "/tmp/<T>", shape)
            if shape not in seen:
                seen.append(shape)
        return "\n".join(seen)

    def expect(self, pattern, what=""):
        """Assert some call matches pattern; return the matching calls."""
        found = self.matching(pattern)
        assert found, f"the engine never called the runtime with /{pattern}/ {what}\ncalls seen:\n{self.summary()}"
        return found


def log_errors(path):
    """The error messages of a runtime --log file (JSON lines, or logrus text lines)."""
    found = []
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return found
    for line in lines:
        line = line.strip()
        try:
            doc = json.loads(line)
            if isinstance(doc, dict) and doc.get("level") in ("error", "fatal"):
                found.append(doc.get("msg", line))
        except ValueError:
            if "level=error" in line or "level=fatal" in line:
                found.append(line)
    return found


# ---------------------------------------------------------------- processes, mounts, cgroups


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pids_mentioning(text):
    """Processes (not us) whose command line contains text."""
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me and text in cmdline(p)]


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_pid(pid, timeout=10.0):
    """SIGTERM a process we started, then SIGKILL if it is still there after timeout."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(0.05)


def stop_popen(proc, timeout=10.0):
    """Stop a daemon we started (our child): SIGTERM, wait, SIGKILL; reap it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts():
    """(mount point, fs type) of every mount this process sees."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            found.append((_unescape(fields[4]), fields[sep + 1]))
    return found


def mounts_under(directory):
    d = directory.rstrip("/")
    return [m for m, _ in mounts() if m == d or m.startswith(d + "/")]


def umount_under(directory):
    """Unmount everything at or under directory, deepest first (lazily if busy)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(5):
        found = mounts_under(directory)
        if not found:
            return
        for point in sorted(set(found), key=lambda m: m.count("/"), reverse=True):
            if libc.umount2(point.encode(), 0) != 0:
                libc.umount2(point.encode(), MNT_DETACH)


def cgroup_hierarchies():
    """Mount points of every cgroup hierarchy (v1 controllers, named ones, and cgroup2)."""
    return sorted({m for m, kind in mounts() if kind in ("cgroup", "cgroup2")})


def cgroup_dirs(rel):
    """The directories named rel (relative to each hierarchy root) that exist."""
    rel = rel.strip("/")
    if not rel:
        return []
    return [os.path.join(h, rel) for h in cgroup_hierarchies() if os.path.isdir(os.path.join(h, rel))]


def _walk_up(top):
    """top and every directory under it, deepest first."""
    found = []
    for dirpath, _, _ in os.walk(top):
        found.append(dirpath)
    return sorted(found, key=lambda d: d.count("/"), reverse=True)


def _procs(directory):
    try:
        with open(os.path.join(directory, "cgroup.procs")) as f:
            return [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return []


def remove_cgroups(rel):
    """Kill whatever is left in the cgroups under rel (ours by name), thawing a frozen one
    first, and remove the directories, children first."""
    for top in cgroup_dirs(rel):
        for d in _walk_up(top):
            state = os.path.join(d, "freezer.state")
            if os.path.exists(state):
                try:
                    with open(state, "w") as f:
                        f.write("THAWED")
                except OSError:
                    pass
            frozen = os.path.join(d, "cgroup.freeze")
            if os.path.exists(frozen):
                try:
                    with open(frozen, "w") as f:
                        f.write("0")
                except OSError:
                    pass
    for top in cgroup_dirs(rel):
        for d in _walk_up(top):
            for pid in _procs(d):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    for top in cgroup_dirs(rel):
        for d in _walk_up(top):
            deadline = time.monotonic() + 5
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)


class HostPaths:
    """Host paths an engine creates as a side effect even with private roots.  Each one that
    did not exist when the run began is removed at clean-up: "rmdir" only when empty (others
    may come to use it), "rmrf" whole, "rmf" a file."""

    def __init__(self, *entries):
        self.created = [(mode, path) for mode, path in entries if not os.path.lexists(path)]

    def cleanup(self):
        for mode, path in reversed(self.created):
            try:
                if mode == "rmdir":
                    os.rmdir(path)
                elif mode == "rmrf":
                    if os.path.isdir(path) and not os.path.islink(path):
                        umount_under(path)
                        shutil.rmtree(path)
                    else:
                        os.unlink(path)
                elif mode == "rmf":
                    os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError:
                pass

    def leftovers(self):
        """Created paths that must be gone by now (an rmdir one may stay when not empty)."""
        return [path for mode, path in self.created if mode != "rmdir" and os.path.lexists(path)]


# ---------------------------------------------------------------- one engine's private world


class Private:
    """An engine's private directory, runtime wrapper, argv log and clean-up.

    Subclasses start the engine (start_daemon), remove its containers through it
    (remove_containers) and name their side-effect host paths (HOST_PATHS)."""

    HOST_PATHS = ()

    def __init__(self, engine, image_tar):
        self.engine = engine
        self.uid = uuid.uuid4().hex[:10]
        self.name = f"{PREFIX}{self.uid}"  # namespace, cgroup parent, name prefix
        self.cgroup_parent = f"/{self.name}"
        self.dir = f"/tmp/{PREFIX}{engine}-{self.uid}"
        os.mkdir(self.dir, 0o711)
        self.runtime = runtime_binary()
        self.host_paths = HostPaths(*self.HOST_PATHS, *self.more_host_paths())
        bindir = os.path.join(self.dir, "bin")
        os.mkdir(bindir)
        self.wrapper = os.path.join(bindir, "runtime-wrapper")
        self.argv = ArgvLog(os.path.join(self.dir, "argv.log"))
        write_wrapper(self.wrapper, self.runtime, self.argv.path)
        self.image_tar = os.path.join(self.dir, "image.tar")
        shutil.copyfile(image_tar, self.image_tar)
        self.daemons = []
        self.closed = False
        self.mark = 0  # explain() without an id shows the calls since the mark
        self.state_left = []  # runtime state the engine left after removing its containers

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def start_daemon(self, argv, log_name, env=None):
        log = open(self.path(log_name), "ab")
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        finally:
            log.close()
        self.daemons.append(proc)
        return proc

    def daemon_log(self, log_name, tail=3000):
        try:
            with open(self.path(log_name), errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    def more_host_paths(self):
        """Side-effect host paths that depend on the runtime: (mode, path) pairs."""
        return ()

    def remove_containers(self):
        """Remove the engine's containers through the engine (while it still runs)."""

    def runtime_state_dirs(self):
        """Runtime state directories of our containers that must be gone at the end."""
        return []

    def mark_calls(self):
        """Start of a test: explain() without an id shows only the calls made from here on."""
        self.mark = len(self.argv.calls())

    def explain(self, cid=None):
        """For a failed check: the runtime calls about cid (without one: those of the current
        test) and the errors their --log files still hold (the shim removes a failed
        container's bundle, log.json with it; its error is then in the engine's message)."""
        if cid is None:
            calls = self.argv.calls()[self.mark :]
        else:
            calls = [c for c in self.argv.calls() if cid in c.argv]
        lines = [f"runtime calls{' this test made' if cid is None else ' for ' + cid} ({len(calls)}):"]
        lines += [f"  {c!r}" for c in calls[-12:]]
        logs = []
        for c in calls:
            log = c.globals.get("--log")
            if isinstance(log, str) and log not in logs:
                logs.append(log)
        for log in logs:
            for msg in log_errors(log):
                lines.append(f"  runtime --log error ({log}): {msg}")
        return "\n".join(lines)

    def close(self):
        """Remove everything the run made; idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            self.remove_containers()
        finally:
            for proc in reversed(self.daemons):
                stop_popen(proc)
            for pid in pids_mentioning(self.dir):  # shims, conmon, cleanup processes of ours
                stop_pid(pid)
            remove_cgroups(self.cgroup_parent)
            self.state_left = [d for d in self.runtime_state_dirs() if os.path.lexists(d)]
            for d in self.state_left:
                umount_under(d)
                shutil.rmtree(d, ignore_errors=True)
            umount_under(self.dir)
            if not os.environ.get("PYRUNC_E2E_KEEP"):
                shutil.rmtree(self.dir, ignore_errors=True)
            self.host_paths.cleanup()

    def leftovers(self):
        """What clean-up failed to remove: must be empty."""
        left = [f"process {pid}: {cmdline(pid)}" for pid in pids_mentioning(self.dir)]
        left += [f"mount {m}" for m in mounts_under(self.dir)]
        left += [f"cgroup {d}" for d in cgroup_dirs(self.cgroup_parent)]
        left += [f"runtime state {d} (still there after the engine removed its containers)" for d in self.state_left]
        left += [
            f"runtime state {d}" for d in self.runtime_state_dirs() if os.path.lexists(d) and d not in self.state_left
        ]
        left += [f"host path {p}" for p in self.host_paths.leftovers()]
        if os.path.exists(self.dir) and not os.environ.get("PYRUNC_E2E_KEEP"):
            left.append(f"dir {self.dir}")
        return left


def engine_fixture(private):
    """Run a module against one private engine: yield it, then clean up and check that no
    process, mount, cgroup, state directory or host path of it is left (a leak fails the
    module's last test at teardown).  The module's wall time is printed for the record."""
    began = time.monotonic()
    try:
        private.start()
        yield private
    finally:
        calls = len(private.argv.calls())
        private.close()
        left = private.leftovers()
        print(f"\n[e2e] {private.engine}: {time.monotonic() - began:.1f}s with the engine, {calls} runtime calls")
    assert not left, f"{private.engine}: clean-up left behind:\n  " + "\n  ".join(left)
