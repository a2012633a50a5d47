"""The engine's side of a terminal: the --console-socket listener that receives the pty
master, and reading the master until a marker or the end."""

import errno
import os
import select
import socket
import time


def read_until(fd, marker=None, timeout=30.0):
    """Read a pty master until `marker` shows up or the other side closes (EIO)."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker is None or marker not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {marker!r} from the terminal; got {data!r}")
        if not select.select([fd], [], [], left)[0]:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


class ConsoleSocket:
    """The engine's side of --console-socket: listen, accept, receive the master fd."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)

    def receive(self):
        self.sock.settimeout(30)
        conn, _ = self.sock.accept()
        with conn:
            msg, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        assert len(fds) == 1, (msg, fds)
        return fds[0]

    def close(self):
        self.sock.close()
