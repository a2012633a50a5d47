"""The floor of `run` for a Python runtime: the smallest Python program that does the
kernel work `pyrunc run` does for runc's default config (`runc spec`), started the way
pyrunc is (the interpreter with -I -S), timed beside runc and pyrunc in the same rounds.

    python bench/floor.py [--runs N]          (as root; issue 23, docs/performance.md)

The prototype (PROTOTYPE below, run as `python -I -S -c PROTOTYPE ROOTFS CGROUP ROOT ID`)
does, in the order a runtime must: the state directory and its state.json (on the
suite's tmpfs, as runc's and pyrunc's); the cgroup in every v1 hierarchy (cpuset's cpus
and mems copied down, the devices rules of the default config); one fork with the pid
namespace unshared before it, so the child is pid 1; in the child: the join of its
cgroups, the other namespaces (mount, network, ipc, uts), the rootfs bind, the default
config's seven mounts with the cgroup hierarchies bound read-only under /sys/fs/cgroup,
the device nodes and /dev links, pivot_root, the masked and read-only paths, the
hostname, RLIMIT_NOFILE, the capability bounding set and capset, no_new_privs, then
exec of /bin/true; in the parent: the wait, the cgroups and the state removed.  What it
leaves out is every check a runtime owes a hostile config (the config is not even read:
its values are written in), the parent/child protocol, hooks, the console, the step
trace: that is the point of a floor.  The default config has no seccomp profile.

It reports wall and CPU time (user + system of the command and what it waited for:
wait4), each as medians and per-round ratios: floor / runc is the best `run` / runc a
Python runtime can reach on this machine, floor / pyrunc what pyrunc could still save.
The floor's interpreter is started directly, not through pyrunc's sealing launcher.
Standard library only; the suite's tmpfs, cgroups under /pyrunc-test-bench-<token>, and
nothing left behind (bundle.Bench).
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bundle  # noqa: E402
import run  # noqa: E402
from report import markdown_table, median, per_round, quartiles  # noqa: E402

PROTOTYPE = r"""
import posix, sys, _ctypes, resource
rootfs, cg, root, cid = sys.argv[1:5]

class I(_ctypes._SimpleCData):
    _type_ = "i"
class L(_ctypes._SimpleCData):
    _type_ = "l"
class F(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = I
class S(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = L
class C:
    _handle = _ctypes.dlopen(None, 0)
def ok(r, what):
    if r < 0:
        e = _ctypes.get_errno()
        raise OSError(e, f"{what}: {posix.strerror(e)}")
NAMES = ("mount", "umount2", "unshare", "sethostname", "prctl")
mount_, umount2, unshare, sethostname, prctl = (F((n, C)) for n in NAMES)
syscall = S(("syscall", C))
def mount(src, dst, fstype, flags, data=None):
    fs, opts = fstype.encode() if fstype else None, data.encode() if data else None
    ok(mount_(src.encode(), dst.encode(), fs, L(flags), opts), f"mount {dst}")
def write(path, text):
    fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
    try:
        posix.write(fd, text.encode())
    finally:
        posix.close(fd)
def read(path):
    fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        return posix.read(fd, 4096)
    finally:
        posix.close(fd)
def mkdirs(path):
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        try:
            posix.mkdir("/" + "/".join(parts[:i]), 0o755)
        except FileExistsError:
            pass

RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC, PRIVATE, SLAVE, RELATIME, STRICTATIME = (
    1, 2, 4, 8, 32, 4096, 16384, 1 << 18, 1 << 19, 1 << 21, 1 << 24)
NS = 0x20000 | 0x40000000 | 0x08000000 | 0x04000000  # mount, net, ipc, uts
CLONE_NEWPID = 0x20000000

# the state directory, as every runtime writes one
state_dir = f"{root}/{cid}"
posix.mkdir(state_dir, 0o711)
fd = posix.open(f"{state_dir}/state.json", posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC, 0o600)
posix.write(fd, b'{"id":"%s","bundle":"%s"}' % (cid.encode(), rootfs.encode()))
posix.close(fd)

# the cgroup, in every v1 hierarchy
HIER = [h for h in ("blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids", "systemd", "unified")
        if posix.access(f"/sys/fs/cgroup/{h}", posix.F_OK)]
made = []
for h in HIER:
    base = f"/sys/fs/cgroup/{h}"
    parts = cg.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        d = base + "/" + "/".join(parts[:i])
        try:
            posix.mkdir(d, 0o755)
            made.append(d)
        except FileExistsError:
            pass
        if h == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not read(f"{d}/{f}").strip():
                    write(f"{d}/{f}", read(f"{d.rsplit('/', 1)[0]}/{f}").decode())
dev = f"/sys/fs/cgroup/devices{cg}"
write(f"{dev}/devices.deny", "a")
for rule in ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
             "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"):
    write(f"{dev}/devices.allow", rule)

ok(unshare(I(CLONE_NEWPID)), "unshare pid")
pid = posix.fork()
if pid == 0:
    try:
        for h in HIER:
            write(f"/sys/fs/cgroup/{h}{cg}/cgroup.procs", "0")
        ok(unshare(I(NS)), "unshare")
        mount("", "/", None, REC | PRIVATE)
        mount(rootfs, rootfs, None, BIND | REC)
        r = rootfs
        mount("proc", f"{r}/proc", "proc", 0)
        mount("tmpfs", f"{r}/dev", "tmpfs", NOSUID | STRICTATIME, "mode=755,size=65536k")
        for d in ("pts", "shm", "mqueue"):
            posix.mkdir(f"{r}/dev/{d}", 0o755)
        mount("devpts", f"{r}/dev/pts", "devpts", NOSUID | NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")
        mount("shm", f"{r}/dev/shm", "tmpfs", NOSUID | NOEXEC | NODEV, "mode=1777,size=65536k")
        mount("mqueue", f"{r}/dev/mqueue", "mqueue", NOSUID | NOEXEC | NODEV)
        mount("sysfs", f"{r}/sys", "sysfs", NOSUID | NOEXEC | NODEV | RDONLY)
        mount("tmpfs", f"{r}/sys/fs/cgroup", "tmpfs", NOSUID | NOEXEC | NODEV, "mode=755")
        for h in HIER:
            posix.mkdir(f"{r}/sys/fs/cgroup/{h}", 0o755)
            mount(f"/sys/fs/cgroup/{h}{cg}", f"{r}/sys/fs/cgroup/{h}", None, BIND | REC)
            mount("", f"{r}/sys/fs/cgroup/{h}", None, REMOUNT | BIND | RDONLY | NOSUID | NOEXEC | NODEV | RELATIME)
        mount("", f"{r}/sys/fs/cgroup", None, REMOUNT | RDONLY | NOSUID | NOEXEC | NODEV, "mode=755")
        for name, major, minor in (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                                   ("urandom", 1, 9), ("tty", 5, 0)):
            posix.mknod(f"{r}/dev/{name}", 0o20666, posix.makedev(major, minor))
        for src, dst in (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
                         ("/proc/self/fd/2", "stderr"), ("pts/ptmx", "ptmx"), ("/proc/kcore", "core")):
            posix.symlink(src, f"{r}/dev/{dst}")
        posix.chdir(r)
        ok(syscall(L(155), b".", b"."), "pivot_root")  # SYS_pivot_root
        mount("", ".", None, SLAVE | REC)
        ok(umount2(b".", I(2)), "umount old root")  # MNT_DETACH
        posix.chdir("/")
        for p in ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"):
            try:
                st = posix.stat(p)
            except FileNotFoundError:
                continue
            if st.st_mode & 0o170000 == 0o040000:
                mount("tmpfs", p, "tmpfs", RDONLY)
            else:
                mount("/dev/null", p, None, BIND)
        for p in ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"):
            if not posix.access(p, posix.F_OK):  # as runc: a path the kernel lacks is skipped
                continue
            mount(p, p, None, BIND | REC)
            mount(p, p, None, REMOUNT | BIND | RDONLY | NOSUID | NODEV | NOEXEC)
        ok(sethostname(b"runc", L(4)), "sethostname")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        keep = {5, 29, 10}  # CAP_KILL, CAP_AUDIT_WRITE, CAP_NET_BIND_SERVICE
        last = int(read("/proc/sys/kernel/cap_last_cap"))
        for c in range(last + 1):
            if c not in keep:
                ok(prctl(I(24), L(c), L(0), L(0), L(0)), "capbset drop")  # PR_CAPBSET_DROP
        ok(prctl(I(47), L(4), L(0), L(0), L(0)), "ambient clear")  # PR_CAP_AMBIENT_CLEAR_ALL
        mask = sum(1 << c for c in keep)
        header = (I * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
        data = (I * 6)(mask, mask, mask, 0, 0, 0)  # effective, permitted, inheritable (low words)
        ok(syscall(L(126), header, data), "capset")  # SYS_capset
        ok(prctl(I(38), L(1), L(0), L(0), L(0)), "no_new_privs")  # PR_SET_NO_NEW_PRIVS
        posix.execve("/bin/true", ["true"], {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                              "TERM": "xterm"})
    except BaseException as e:
        posix.write(2, f"floor: {e}\n".encode())
    finally:
        posix._exit(127)
_, status = posix.waitpid(pid, 0)
for d in reversed(made):
    try:
        posix.rmdir(d)
    except OSError:  # a parent another container still uses
        if d.endswith(cg):
            raise
posix.unlink(f"{state_dir}/state.json")
posix.rmdir(state_dir)
posix._exit(posix.waitstatus_to_exitcode(status))
"""


def floor_cmd(python, rootfs, cgroup, root, cid):
    return [python, "-I", "-S", "-c", PROTOTYPE, rootfs, cgroup, root, cid]


def timed(cmd):
    """(wall seconds, CPU seconds) of cmd to its end: the CPU time (user + system) is
    the command's and its waited-for descendants' (wait4), which the load moves less."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise run.Failed(f"{run.describe(cmd)}: exit {p.returncode}: {run.last_line(err.decode(errors='replace'))}")
    return wall, usage.ru_utime + usage.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pyrunc", default=os.path.join(os.path.dirname(HERE), ".venv/bin/pyrunc"))
    ap.add_argument("--python", default=os.path.join(os.path.dirname(HERE), ".venv/bin/python"))
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    left = []
    with bundle.Bench() as bench:
        py = bench.runtime("pyrunc", [args.pyrunc])
        rc = bench.runtime("runc", [bundle.RUNC])
        floor_root = os.path.join(bench.run_dir, "roots", "floor")
        os.makedirs(floor_root)
        bundles = {r.name: bench.bundle(cgroup=f"floor-{r.name}") for r in (py, rc)}

        cgroup = f"{bench.cgroup_top}/floor-proto"

        def measure(who):
            cid = bench.id("fl")
            if who == "floor":
                return timed(floor_cmd(args.python, bench.rootfs, cgroup, floor_root, cid))
            return timed(who.cmd("run", "--bundle", bundles[who.name], cid))

        run.step(floor_cmd(args.python, bench.rootfs, cgroup, floor_root, "pyrunc-test-warm"))
        samples = run.rotated_samples(
            args.runs, ["floor", py, rc], measure, key=lambda who: who if who == "floor" else who.name
        )
        left += [f"floor state {n}" for n in os.listdir(floor_root)]
    for k, what in ((0, "wall"), (1, "CPU")):
        one = {name: [s[k] for s in samples[name]] for name in samples}
        rows = []
        for name in ("floor", "pyrunc", "runc"):
            q1, q3 = quartiles(one[name])
            rows.append([name, f"{median(one[name]) * 1e3:.1f} ms", f"{q1 * 1e3:.1f}–{q3 * 1e3:.1f} ms"])
        print(markdown_table([f"`run` of /bin/true, {what}", "median", "middle half"], rows))
        print()
        ratios = []
        for a, b in (("floor", "runc"), ("pyrunc", "runc"), ("floor", "pyrunc")):
            r = per_round(one[a], one[b])
            q1, q3 = quartiles(r)
            ratios.append([f"{a} / {b}", f"{median(r):.2f}", f"{q1:.2f}–{q3:.2f}"])
        print(markdown_table([f"per-round ratio, {what}", "median", "middle half"], ratios))
        print()
    print(f"\n{args.runs} rounds; load average {run.loadavg()}; left behind: {', '.join(left) or 'nothing'}")


if __name__ == "__main__":
    main()
