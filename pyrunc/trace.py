"""The step trace (--trace FILE, PYRUNC_TRACE=FILE): JSON lines of each step and kernel call.

Imported only when tracing is on (cli.main); the untraced path never sees this module.
Every process of an operation appends to the same file through one O_APPEND fd, one
os.write per line, so the lines of parallel processes stay whole.  The fd is
close-on-exec: the container's program never inherits it.

Records (docs/trace.md, docs/trace-schema.json):
  header  once per process: proc, pid, ppid, mono (time.monotonic_ns) and wall (epoch s)
  step    ev "begin" when a step starts, ev "end" when it ends (with dur, and error on failure)
  call    one per call of a kernel method (a RecordingKernel, which the command's
          linux.Seams makes when tracing), or of a cgroup file operation (cgroup_mkdirs,
          cgroup_write, cgroup_rmdir: a RecordingCgroupFiles): name, args, result or error
  fail    the runtime's last record when the operation failed: the failing step and error
"""

import errno as _errno
import os
import sys
import time

from pyrunc import jsonc, log
from pyrunc.linux.cgroups.files import CgroupFiles

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType
    from typing import Any

# Steps that wait on another process rather than work: `trace show` marks them.
WAITING = frozenset(
    (
        "wait for start",
        "join cgroup",
        "run createRuntime hooks",
        "run createContainer hooks",
        "run startContainer hooks",
        "run prestart hooks",
        "run poststart hooks",
        "run poststop hooks",
        "wait for exit",
    )
)


def waiting(name: str) -> bool:
    return name in WAITING or name.startswith("hook ")


_tracer: "Tracer | None" = None


class Tracer:
    def __init__(self, fd: int, proc: str) -> None:
        self.fd = fd
        self.proc = proc
        self.pid = os.getpid()
        self.ppid = os.getppid()
        # os.getpid() of the process this tracer belongs to (its own pid namespace's
        # number, unlike self.pid): a fork shows as a change.
        self.owner_pid = os.getpid()
        self.stack: list[tuple[str, str, int]] = []  # open steps: (sid, name, start)
        self.n = 0
        self.header()

    def write(self, rec: "dict[str, Any]") -> None:
        try:
            os.write(self.fd, (jsonc.dumps(rec) + "\n").encode("utf-8", "backslashreplace"))
        except OSError:
            pass

    def header(self) -> None:
        self.write(
            {
                "t": "header",
                "proc": self.proc,
                "pid": self.pid,
                "ppid": self.ppid,
                "mono": time.monotonic_ns(),
                "wall": time.time(),
                "argv": list(sys.argv),
            }
        )

    def forked(self, proc: str, pid: int | None = None) -> None:
        """In a new child: it is `proc` now; its parent's open steps are not its own.
        `pid`: its host pid, when the host's /proc is out of view (exec's child)."""
        # The host's pid, as the host's /proc (still in view) names us: in a new pid
        # namespace getpid() says 1, and getppid() 0.
        self.ppid = self.pid
        if pid is None:
            try:
                pid = int(os.readlink("/proc/self"))
            except (OSError, ValueError):
                pid = os.getpid()
        self.pid = pid
        self.proc = proc
        self.owner_pid = os.getpid()
        self.stack = []
        self.header()

    def rename(self, proc: str) -> None:
        self.proc = proc

    def begin(self, name: str) -> None:
        self.n += 1
        sid = f"{self.pid}.{self.n}"
        start = time.monotonic_ns()
        self.stack.append((sid, name, start))
        rec = {
            "t": "step",
            "ev": "begin",
            "name": name,
            "sid": sid,
            "proc": self.proc,
            "pid": self.pid,
            "depth": len(self.stack) - 1,
            "mono": start,
        }
        if waiting(name):
            rec["wait"] = True
        self.write(rec)

    def end(self, error: BaseException | None = None) -> None:
        if not self.stack:
            return
        sid, name, start = self.stack.pop()
        rec = {
            "t": "step",
            "ev": "end",
            "name": name,
            "sid": sid,
            "proc": self.proc,
            "pid": self.pid,
            "depth": len(self.stack),
            "mono": start,
            "dur": time.monotonic_ns() - start,
        }
        if waiting(name):
            rec["wait"] = True
        if error is not None:
            rec["error"] = error_record(error)
        self.write(rec)
        if error is not None and not self.stack and self.proc == "runtime":
            self.fail(*(log.failed_at() or (name, self.proc, error)))

    def fail(self, step: str, proc: str, error: BaseException) -> None:
        """The last record: where the command failed, as log.step recorded it."""
        msg = str(error)
        rec: dict[str, Any] = {
            "t": "fail",
            "step": step,
            "proc": proc,
            "pid": self.pid,
            "mono": time.monotonic_ns(),
            "error": {"msg": msg},
        }
        if proc != "runtime":
            # The child wrote its failing step's error (errno and all) before it told us.
            found = _child_error(self.fd, self.pid, step)
            if found:
                rec["proc"], rec["error"] = found
                rec["error"].setdefault("msg", msg)
        self.write(rec)

    def current(self) -> str | None:
        return self.stack[-1][0] if self.stack else None


def error_record(e: BaseException) -> "dict[str, Any]":
    rec = {"msg": str(e) or type(e).__name__, "type": type(e).__name__}
    num = getattr(e, "errno", None)
    if isinstance(num, int) and num:
        rec["errno"] = _errno.errorcode.get(num, str(num))
    return rec


def _child_error(fd: int, pid: int, step: str) -> "tuple[str, dict[str, Any]] | None":
    """The error of the last failed step `step` of a descendant of `pid` in the file."""
    try:
        with open(f"/proc/self/fd/{fd}", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    parents, found = {}, None
    for line in lines:
        try:
            rec = jsonc.loads(line)
        except ValueError:
            continue
        if rec.get("t") == "header":
            parents[rec["pid"]] = rec["ppid"]
        elif rec.get("t") == "step" and rec.get("error") and rec.get("name") == step:
            p, hops = rec["pid"], 0
            while p in parents and p != pid and hops < 8:
                p, hops = parents[p], hops + 1
            if p == pid:
                found = rec["proc"], dict(rec["error"])
    return found


def begin(name: str) -> None:
    """A runtime step begins (log.step)."""
    if _tracer is not None:
        _tracer.begin(name)


def end(error: BaseException | None = None) -> None:
    if _tracer is not None:
        _tracer.end(error)


class TracedSteps:
    """A child's steps in the trace (init.StepRecorder's methods): the InitContext of a
    traced create or exec is given one (spawn.py)."""

    def begin(self, name: str) -> None:
        if _tracer is not None:
            _tracer.begin(name)

    def next(self, name: str) -> None:
        t = _tracer
        if t is not None:
            if t.stack:
                t.end()
            t.begin(name)

    def forked(self, proc: str, pid: int | None, step: str) -> None:
        t = _tracer
        if t is None:
            return
        if os.getpid() != t.owner_pid:
            t.forked(proc, pid)
            t.begin(step)  # its first step: the one it forked in
        else:
            t.rename(proc)

    def failure(self, exc: BaseException) -> None:
        if _tracer is not None:
            _tracer.end(exc)

    def exit(self) -> None:
        if _tracer is not None:
            _tracer.end()


def active() -> "Tracer | None":
    return _tracer


def open_trace(path: str) -> int:
    """An O_APPEND fd of `path`, close-on-exec, numbered high: above any --preserve-fds and
    LISTEN_FDS range, which the init hands to the container."""
    import fcntl

    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        from pyrunc.errors import UsageError

        raise UsageError(f"cannot open the trace file {path}: {os.strerror(e.errno or 0).lower()}") from None
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 512)
    except OSError:
        return fd
    os.close(fd)
    return high


def move_fd_above(limit: int) -> None:
    """The trace fd takes no number below `limit`, the fds the container inherits."""
    t = _tracer
    if t is not None and t.fd < limit:
        import fcntl

        fd = fcntl.fcntl(t.fd, fcntl.F_DUPFD_CLOEXEC, limit)
        os.close(t.fd)
        t.fd = fd


def enable(path: str, proc: str = "runtime") -> Tracer:
    global _tracer
    if _tracer is None:
        _tracer = Tracer(open_trace(path), proc)
    return _tracer


# --- kernel.py's functions, recorded ------------------------------------------------


def _names(value: int, table: "list[tuple[str, int]]") -> str | None:
    names = [n for n, bit in table if bit and value & bit == bit]
    return "|".join(names) if names else None


def _flag_table(mod: "ModuleType", prefix: str, exclude: "tuple[str, ...]" = ()) -> list[tuple[str, int]]:
    return sorted(
        ((n, v) for n, v in vars(mod).items() if n.startswith(prefix) and isinstance(v, int) and n not in exclude),
        key=lambda nv: nv[1],
    )


_FLAG_ARGS: "dict[str, dict[str, list[tuple[str, int]]]]" = {}  # {function name: {argument: [(flag name, bit)]}}
_ENUM_ARGS: "dict[str, dict[str, dict[int, str]]]" = {}  # {function name: {argument: {value: name}}}


def _arg(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (list, tuple)):
        return [_arg(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _arg(v) for k, v in value.items()}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)[:200]


def _wrap(name: str, fn: "Callable[..., Any]", method: bool = False) -> "Callable[..., Any]":
    """`fn` recording each call as `name`; a `method`'s self is no argument of the record,
    nor is a bound method's."""
    code = getattr(fn, "__func__", fn).__code__
    params = code.co_varnames[: code.co_argcount]
    if method or hasattr(fn, "__self__"):
        params = params[1:]
    flags = _FLAG_ARGS.get(name, {})
    enums = _ENUM_ARGS.get(name, {})
    is_exec = name == "execve"
    is_fork = name == "fork"

    def traced(*args: "Any", **kwargs: "Any") -> "Any":
        t = _tracer
        if t is None:
            return fn(*args, **kwargs)
        rec: dict[str, Any] = {"t": "call", "name": name, "proc": t.proc, "pid": t.pid, "sid": t.current()}
        named = dict(zip(params, args[1:] if method else args))
        named.update(kwargs)
        rec["args"] = {k: _arg(v) for k, v in named.items()}
        for arg, table in flags.items():
            v = named.get(arg)
            if isinstance(v, int) and v:
                n = _names(v, table)
                if n:
                    rec.setdefault("flags", {})[arg] = n
        for arg, names in enums.items():
            if named.get(arg) in names:
                rec.setdefault("flags", {})[arg] = names[named[arg]]
        start = time.monotonic_ns()
        rec["mono"] = start
        if is_exec:  # on success nothing returns: say so first
            t.write(dict(rec, dur=0, result="exec"))
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            rec["dur"] = time.monotonic_ns() - start
            rec["error"] = error_record(e)
            t.write(rec)
            raise
        if is_fork and result == 0:
            return result  # the child: its parent records the call, it writes its own header
        rec["dur"] = time.monotonic_ns() - start
        rec["result"] = _arg(result)
        t.write(rec)
        return result

    traced.__name__ = name
    return traced


def _flag_tables() -> None:
    """The flag and enum names of the calls' arguments, from kernel.py's constants."""
    if _FLAG_ARGS:
        return
    from pyrunc.linux import kernel

    clone = _flag_table(kernel, "CLONE_NEW")
    ms = _flag_table(kernel, "MS_")
    # O_RDONLY is 0 and O_TMPFILE includes O_DIRECTORY: neither is a flag of its own.
    o_flags = _flag_table(os, "O_", ("O_RDONLY", "O_TMPFILE", "O_ACCMODE", "O_RSYNC", "O_NDELAY", "O_FSYNC"))
    attrs = _flag_table(kernel, "MOUNT_ATTR_", ("MOUNT_ATTR__ATIME",))
    _FLAG_ARGS.update(
        {
            "unshare": {"flags": clone},
            "setns": {"nstype": clone},
            "mount": {"flags": ms},
            "umount": {"flags": [("MNT_DETACH", kernel.MNT_DETACH), ("UMOUNT_NOFOLLOW", kernel.UMOUNT_NOFOLLOW)]},
            "mount_setattr": {"flags": _flag_table(kernel, "AT_", ("AT_FDCWD",)), "attr_set": attrs, "attr_clr": attrs},
            "openat2": {"flags": o_flags, "resolve": _flag_table(kernel, "RESOLVE_")},
        }
    )
    _ENUM_ARGS["prctl"] = {
        "option": {
            v: n
            for n, v in vars(kernel).items()
            if n.startswith("PR_") and not n.startswith("PR_CAP_AMBIENT_") and isinstance(v, int)
        }
    }


class RecordingKernel:
    """Any kernel object, `inner` (the real Kernel, a test double), with each of its
    public methods recorded as a call of that name while the trace is on.  The command's
    linux.Seams makes one when tracing; the mechanics it is passed to cannot tell."""

    def __init__(self, inner: object) -> None:
        _flag_tables()
        self.inner = inner

    def __getattr__(self, name: str) -> "Any":
        fn = getattr(self.inner, name)
        if name.startswith("_") or not callable(fn) or isinstance(fn, type):
            return fn
        traced = _wrap(name, fn)
        setattr(self, name, traced)  # made once per name
        return traced


# --- the cgroup files, recorded ---------------------------------------------------------


class RecordingCgroupFiles(CgroupFiles):
    """Any CgroupFiles object, `inner`, with mkdirs, write and rmdir recorded as
    cgroup_<name> calls.  The primitives go to `inner`; what CgroupFiles builds on them
    runs here, so that the writes of inherit_cpuset and enable_down and the rmdir of a
    failed mkdirs' undo are recorded too."""

    __slots__ = ("inner",)

    def __init__(self, inner: CgroupFiles) -> None:
        self.inner = inner

    def mkdir(self, path: str) -> None:
        self.inner.mkdir(path)

    def rmdir_unused(self, path: str) -> bool:
        return bool(self.inner.rmdir_unused(path))

    def read(self, path: str) -> str:
        return str(self.inner.read(path))

    def write(self, path: str, value: str, field: str | None) -> None:
        self.inner.write(path, value, field)

    def rmdir(self, path: str) -> bool:
        return bool(self.inner.rmdir(path))

    write = _wrap("cgroup_write", write, method=True)
    rmdir = _wrap("cgroup_rmdir", rmdir, method=True)
    mkdirs = _wrap("cgroup_mkdirs", CgroupFiles.mkdirs, method=True)


def process_started(proc: str, pid: int, argv: "Sequence[object]") -> None:
    """A process that does not trace itself (a hook): a header on its behalf."""
    t = _tracer
    if t is not None:
        t.write(
            {
                "t": "header",
                "proc": proc,
                "pid": pid,
                "ppid": t.pid,
                "mono": time.monotonic_ns(),
                "wall": time.time(),
                "argv": [str(a) for a in argv],
            }
        )
