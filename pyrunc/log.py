"""The --log file, in runc's formats: logrus text lines or JSON objects (level, msg, time).

Engines read it: containerd's shim reports the last error line to the user.  Without
--log, debug lines (--debug) go to stderr, as runc's do; errors are printed by the CLI.

`current` is the process's logger, set once by the CLI, so that deep code can write a
warning or a debug line without a logger being passed down to it.
"""

import os
import sys
import time

LEVELS = ("debug", "info", "warning", "error")


class Logger:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path = path
        self.json = fmt == "json"
        self.debug_enabled = debug

    def format(self, level, msg, now=None):
        stamp = rfc3339(time.time() if now is None else now)
        if self.json:
            from pyrunc import jsonc
            return jsonc.dumps({"level": level, "msg": msg, "time": stamp}, compact=False) + "\n"
        return f'time="{stamp}" level={level} msg="{_escape(msg)}"\n'

    def _write(self, level, msg):
        line = self.format(level, msg).encode("utf-8", "backslashreplace")
        if not self.path:
            if level == "debug":
                _write_fd(2, line)
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return
        try:
            _write_fd(fd, line)
        finally:
            os.close(fd)

    def error(self, msg):
        self._write("error", msg)

    def warning(self, msg):
        self._write("warning", msg)

    def info(self, msg):
        self._write("info", msg)

    def debug(self, msg):
        if self.debug_enabled:
            self._write("debug", msg)


def _write_fd(fd, data):
    try:
        os.write(fd, data)  # one write: O_APPEND keeps lines of parallel commands whole
    except OSError:
        pass


def rfc3339(t):
    """logrus' default time format, Go's time.RFC3339: seconds and a zone offset or Z."""
    local = time.localtime(t)
    off = local.tm_gmtoff
    zone = "Z" if off == 0 else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", local) + zone


def _escape(msg):
    return msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


current = Logger()


class _NoStep:
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        return False


_NO_STEP = _NoStep()


def step(name):
    """`with log.step(name):` -- a step of the --trace; nothing at all without one
    (pyrunc.trace is imported only when tracing)."""
    trace = sys.modules.get("pyrunc.trace")
    return _NO_STEP if trace is None else trace.step(name)


def setup(path=None, fmt="text", debug=False):
    global current
    current = Logger(path, fmt, debug)
    return current


def debug(msg):
    current.debug(msg)


def warning(msg):
    current.warning(msg)


def error(msg):
    current.error(msg)


def stderr_line(msg):
    try:
        # A message may quote hostile input: no lone surrogate may turn it into a traceback.
        sys.stderr.write((msg + "\n").encode("utf-8", "backslashreplace").decode("utf-8"))
        sys.stderr.flush()
    except OSError:
        pass
