"""`exec`, held to the escape tests of create: the process that joins a running container
is the runtime until it execs, inside a container whose processes may be hostile.

- no host fd reaches the new process but stdio and --preserve-fds (CVE-2016-9962);
- a --cwd through a /proc fd link is refused (CVE-2024-21626);
- --cap never fills the inheritable or the ambient set (CVE-2022-29162);
- the joining process is non-dumpable until it execs, so the container cannot open its
  /proc/<pid> files, and it runs from a sealed interpreter (CVE-2019-5736); the
  program it execs is checked like the init's.
"""

import os
import socket
import subprocess
import threading

import pytest

from pyrunc.linux import sealed_exe
from tests.integration.cli_util import pyrunc_cmd, set_args, wait_for
from tests.security.sec_util import cap_sets


def exec_with_fds(pyrunc, cid, setup, *args):
    """`pyrunc exec` started by `sh -c setup; exec pyrunc...`: the fds setup opens are
    pyrunc's.  (code, output)."""
    cmd = pyrunc_cmd(pyrunc, "exec", *args)
    r = subprocess.run(
        ["sh", "-c", f'{setup}; exec "$@"', "sh", *cmd],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=60,
    )
    return r.returncode, r.stdout.decode()


def test_only_stdio_reaches_an_exec(pyrunc, running, host_secrets):
    setup = f'exec 3<"{host_secrets}" 4<"{host_secrets}/secret" 7<"{host_secrets}"'
    code, out = exec_with_fds(pyrunc, running, setup, running, "sh", "-c", "ls /proc/$$/fd; true")
    assert (code, out.split()) == (0, ["0", "1", "2"]), out


def test_preserve_fds_reach_an_exec(pyrunc, running, host_secrets):
    """The other side: what the caller passes on purpose does arrive."""
    setup = f'exec 3<"{host_secrets}/secret" 4<"{host_secrets}"'
    code, out = exec_with_fds(
        pyrunc, running, setup, "--preserve-fds", "1", running, "sh", "-c", "ls /proc/$$/fd; cat <&3"
    )
    assert (code, out.split()) == (0, ["0", "1", "2", "3", "host-secret"]), out


@pytest.mark.parametrize("cwd", ["/proc/self/fd/3", "/proc/self/fd/3/..", "/proc/thread-self/fd/3", "/proc/1/cwd"])
def test_an_exec_cwd_through_a_proc_link_is_refused(pyrunc, running, host_secrets, cwd):
    code, out = exec_with_fds(
        pyrunc, running, f'exec 3<"{host_secrets}"', "--preserve-fds", "1", "--cwd", cwd, running, "sh", "-c", "pwd; ls"
    )
    assert code == 255, out
    assert out.startswith(f"pyrunc: exec {running}: ") and "magic link" in out or "invalid process" in out, out
    assert "secret" not in out and len(out.splitlines()) == 1, out


def test_cap_never_fills_the_inheritable_or_ambient_set(pyrunc, running):
    r = pyrunc("exec", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_ADMIN", running, "grep", "^Cap", "/proc/self/status")
    assert r.code == 0, r
    caps = cap_sets(r.out)
    added = (1 << 21) | (1 << 12)
    assert caps["CapBnd"] & added == added and caps["CapEff"] & added == added, caps
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0, caps


def test_an_exec_never_runs_the_runtimes_own_executable(pyrunc, bundle, running):
    with open(os.path.join(bundle.rootfs, "evil"), "w") as f:
        f.write("#!/proc/self/exe -c print('escaped')\n")
    os.chmod(os.path.join(bundle.rootfs, "evil"), 0o755)
    for program in ("/proc/self/exe", "/evil"):
        r = pyrunc("exec", running, program)
        assert r.code == 255 and "escaped" not in r.out, r
        assert r.err.startswith(f"pyrunc: exec {running}: ") and "magic link" in r.err, r


# --- the joining process, held before its exec ------------------------------------------

PROBE = """
while [ ! -e /go ]; do sleep 0.1; done
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  [ "$p" = 1 ] || [ "$p" = $$ ] || [ "$p" = "$SLEEPER" ] || [ ! -e "$d/cmdline" ] && continue
  line="$p $(tr '\\0' ' ' < $d/cmdline | cut -c1-40)|"
  readlink $d/exe >/dev/null 2>&1 && line="$line exe"
  # Listing the numbers is allowed; following the links is not.
  for f in $d/fd/*; do readlink $f >/dev/null 2>&1 && line="$line fd" && break; done
  cat $d/environ >/dev/null 2>&1 && line="$line environ"
  echo "$line"
done > /probe.tmp
readlink /proc/$SLEEPER/exe >/dev/null && echo control-exe >> /probe.tmp
mv /probe.tmp /probe
sleep 1000
"""


class HeldListener:
    """A seccomp listener whose backlog is full: pyrunc's connect to it blocks, holding
    the joining process inside the container, until release() drains it."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(0)
        self.filler = None
        self.thread = None

    def serve_one(self):
        conn, _ = self.sock.accept()
        with conn:
            for fd in socket.recv_fds(conn, 65536, 4)[1]:
                os.close(fd)

    def hold(self):
        self.filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.filler.connect(self.path)  # queued: the next connect waits

    def release(self):
        self.filler.close()  # its queued connection reads as closed at once
        self.filler = None
        self.sock.settimeout(30)
        for _ in range(2):  # the filler's, then pyrunc's
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(30)
                _, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                for fd in fds:
                    os.close(fd)

    def close(self):
        if self.filler is not None:
            self.filler.close()
        self.sock.close()


def test_the_container_cannot_reach_the_joining_process(pyrunc, bundle, test_id, tmp_path):
    listener = HeldListener(str(tmp_path / "listener.sock"))
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": listener.path,
        "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_NOTIFY"}],
    }
    set_args(bundle, "sh", "-c", 'sleep 1000 & SLEEPER=$! sh -c "$0"', PROBE)
    serving = threading.Thread(target=listener.serve_one)
    serving.start()  # create's connection
    try:
        assert pyrunc("run", "-d", "--bundle", bundle.path, test_id).code == 0
        serving.join(30)
        listener.hold()
        execing = subprocess.Popen(
            pyrunc_cmd(pyrunc, "exec", test_id, "true"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        init = pyrunc.state(test_id)["pid"]
        pidns = os.readlink(f"/proc/{init}/ns/pid")

        def joining():
            for p in os.listdir("/proc"):
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        cmd = f.read()
                    if b"pyrunc" in cmd and b"exec" in cmd and os.readlink(f"/proc/{p}/ns/pid") == pidns:
                        return int(p)
                except (OSError, ValueError):
                    continue
            return None

        wait_for(joining, "the exec'd process to wait inside the container")
        held = joining()
        assert sealed_exe.is_sealed(f"/proc/{held}/exe")  # and runs from a sealed interpreter
        open(os.path.join(bundle.rootfs, "go"), "w").close()
        probe = os.path.join(bundle.rootfs, "probe")
        wait_for(lambda: os.path.exists(probe), "the container's probe")
        listener.release()
        out, _ = execing.communicate(timeout=60)
        assert execing.returncode == 0, out
    finally:
        listener.close()
    with open(probe) as f:
        lines = f.read().splitlines()
    assert lines[-1] == "control-exe", lines  # the probe can read a process it may
    seen = [line for line in lines[:-1] if "python" in line or "pyrunc" in line]
    assert seen and all(line.endswith("|") for line in seen), lines
