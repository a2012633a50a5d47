"""The --log file, in runc's formats: logrus text lines or JSON objects (level, msg, time).

Engines read it: containerd's shim reports the last error line to the user.  Without
--log, debug lines (--debug) go to stderr, as runc's do; errors are printed by the CLI.

`current` is the process's logger, set once by the CLI, so that deep code can write a
warning or a debug line without a logger being passed down to it.  `step` names what
the command is doing: the error line says where it failed, and --trace records it.
"""

import posix  # not os, whose import costs `state` a fifth of its time
import sys

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from types import TracebackType
    from typing import Literal


class Logger:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.json = fmt == "json"
        self.debug_enabled = debug

    def format(self, level: str, msg: str, now: float | None = None) -> str:
        if now is None:
            import time  # here: a command that logs nothing (state, list) never loads it

            now = time.time()
        stamp = rfc3339(now)
        if self.json:
            from pyrunc import jsonc

            return jsonc.dumps({"level": level, "msg": msg, "time": stamp}, compact=False) + "\n"
        return f'time="{stamp}" level={level} msg="{_escape(msg)}"\n'

    def check(self) -> None:
        """Open the --log file once, as every line will: a file that cannot be opened is
        the command's error, or every later error line would be lost without a word."""
        if self.path:
            posix.close(posix.open(self.path, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC, 0o644))

    def _write(self, level: str, msg: str) -> None:
        line = self.format(level, msg).encode("utf-8", "backslashreplace")
        if not self.path:
            if level == "debug":
                _write_fd(2, line)
            return
        try:
            fd = posix.open(self.path, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC, 0o644)
        except OSError:
            return
        try:
            _write_fd(fd, line)
        finally:
            posix.close(fd)

    def error(self, msg: str) -> None:
        self._write("error", msg)

    def warning(self, msg: str) -> None:
        self._write("warning", msg)

    def debug(self, msg: str) -> None:
        if self.debug_enabled:
            self._write("debug", msg)


def _write_fd(fd: int, data: bytes) -> None:
    try:
        posix.write(fd, data)  # one write: O_APPEND keeps lines of parallel commands whole
    except OSError:
        pass


def rfc3339(t: float) -> str:
    """logrus' default time format, Go's time.RFC3339: seconds and a zone offset or Z."""
    import time

    local = time.localtime(t)
    off = local.tm_gmtoff
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + zone


def _escape(msg: str) -> str:
    return msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


current = Logger()


class _Step:
    """The object of every `with log.step(name)`: keeps the names of the open steps, the
    ones a failure left, and, when tracing, a step record at each end."""

    __slots__ = ()

    def __enter__(self) -> "_Step":
        trace = sys.modules.get("pyrunc.trace")  # imported only when tracing
        if trace is not None:
            trace.begin(_open[-1])
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: "TracebackType | None"
    ) -> "Literal[False]":
        global _failure
        if exc is not None and not _propagating(exc):
            _failure = (exc, list(_open))
        _open.pop()
        trace = sys.modules.get("pyrunc.trace")
        if trace is not None:
            trace.end(exc)
        return False


_STEP = _Step()
_open: list[str] = []  # this process's steps under way, outermost first
# (the exception, the steps open where it was raised)
_failure: "tuple[BaseException, list[str]] | None" = None
# (process, its last steps) of a container process that failed
_child_steps: "tuple[str, list[str]] | tuple[()]" = ()


def _propagating(exc: BaseException | None) -> bool:
    """Whether exc is the recorded failure on its way out, maybe wrapped by `raise ...
    from None` (which keeps it as __context__)."""
    for _ in range(4):
        if exc is None:
            return False
        if _failure is not None and exc is _failure[0]:
            return True
        exc = exc.__context__
    return False


def step(name: str) -> _Step:
    """`with log.step(name):` -- a step of the command: named in the --log error line
    when it fails, and a step of the --trace when tracing."""
    _open.append(name)
    return _STEP


def child_failed(proc: str, steps: "Iterable[object] | None") -> None:
    """The container's process `proc` reported a failure after `steps` (its last few)."""
    global _child_steps
    _child_steps = (proc, [str(s) for s in steps or ()])


def failed_at() -> tuple[str, str, BaseException] | None:
    """(the failing step, its process, the exception) of the command's failure: the
    container process's step when it reported one; None when nothing failed."""
    if _failure is None:
        return None
    if _child_steps and _child_steps[1]:
        return _child_steps[1][-1], _child_steps[0], _failure[0]
    return _failure[1][-1], "runtime", _failure[0]


def last_steps() -> str:
    """Where the command failed, for the --log error line, so that engines show it even
    without --trace: `create > spawn; init: mount /sys > mount /x`.  Empty when it
    failed in its own first step (a bad id, a wrong state)."""
    mine: list[str] = _failure[1] if _failure is not None else []
    text = " > ".join(mine) if len(mine) > 1 or _child_steps else ""
    if _child_steps and _child_steps[1]:
        proc, steps = _child_steps
        text += f"; {proc}: " + " > ".join(steps[-3:])
    return text


def traced_process(proc: str, pid: int, argv: "Sequence[str]") -> None:
    """A process started that does not trace itself (a hook): named in the trace."""
    trace = sys.modules.get("pyrunc.trace")
    if trace is not None:
        trace.process_started(proc, pid, argv)


def setup(path: str | None = None, fmt: str = "text", debug: bool = False) -> Logger:
    global current
    current = Logger(path, fmt, debug)
    return current


def debug(msg: str) -> None:
    current.debug(msg)


def warning(msg: str) -> None:
    current.warning(msg)


def error(msg: str) -> None:
    current.error(msg)


def stderr_line(msg: str) -> None:
    try:
        # A message may quote hostile input: no lone surrogate may turn it into a traceback.
        sys.stderr.write((msg + "\n").encode("utf-8", "backslashreplace").decode("utf-8"))
        sys.stderr.flush()
    except OSError:
        pass
