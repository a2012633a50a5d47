"""The --log file, in runc's formats: logrus text lines or JSON objects (level, msg, time).

Engines read it: containerd's shim reports the last error line to the user.
"""

import os
import time


class Logger:
    def __init__(self, path=None, fmt="text", debug=False):
        self.path = path
        self.json = fmt == "json"
        self.debug_enabled = debug

    def _write(self, level, msg):
        if not self.path:
            return
        t = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1e9):09d}" + _tz()
        if self.json:
            import json
            line = json.dumps({"level": level, "msg": msg, "time": stamp}) + "\n"
        else:
            line = f'time="{stamp}" level={level} msg="{_escape(msg)}"\n'
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def error(self, msg):
        self._write("error", msg)

    def warning(self, msg):
        self._write("warning", msg)

    def debug(self, msg):
        if self.debug_enabled:
            self._write("debug", msg)


def _escape(msg):
    return msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _tz():
    off = -time.timezone if not time.localtime().tm_isdst else -time.altzone
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    return f"{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"
