"""NOTIFY_SOCKET: sd_notify(3) through the runtime, as runc does it.

When pyrunc runs with NOTIFY_SOCKET (a systemd unit of Type=notify, or an engine that
asks for it), the container gets a socket of its own instead of the caller's: create
binds a directory of the container's state on /run/notify and sets
NOTIFY_SOCKET=/run/notify/notify.sock in the process's environment.  start listens
there once the process runs, and tells the caller's socket READY=1 (with MAINPID, the
init's host pid) only when the container says READY=1, so that the caller sees the
container ready when it is, and never a message of the container's it did not expect.
"""

import os

from pyrunc.store import NOTIFY_DIR as STATE_DIR  # in the container's state directory

# Annotations name these types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket
    from typing import Any

    from pyrunc.linux.kernel import Kernel

IN_CONTAINER_DIR = "/run/notify"
SOCKET_NAME = "notify.sock"


def caller_socket() -> str | None:
    """The caller's NOTIFY_SOCKET when it is one pyrunc can forward to (a path)."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    return path if path.startswith("/") else None


def add_to_config(doc: "dict[str, Any]", state_dir: str) -> "dict[str, Any]":
    """The config document with the socket's directory mounted and NOTIFY_SOCKET set."""
    doc = dict(doc)
    doc["mounts"] = list(doc.get("mounts") or ()) + [
        {
            "destination": IN_CONTAINER_DIR,
            "type": "bind",
            "source": os.path.join(state_dir, STATE_DIR),
            "options": ["bind", "nosuid", "noexec", "nodev", "ro"],
        }
    ]
    process = dict(doc["process"])
    env = [e for e in process.get("env") or () if not e.startswith("NOTIFY_SOCKET=")]
    process["env"] = env + [f"NOTIFY_SOCKET={IN_CONTAINER_DIR}/{SOCKET_NAME}"]
    doc["process"] = process
    return doc


def make_dir(state_dir: str) -> None:
    os.mkdir(os.path.join(state_dir, STATE_DIR), 0o755)


def listen(state_dir_fd: int) -> "socket":
    """The socket the container sends to, bound before the process can run.  Named
    through the state directory's fd: its full path may pass AF_UNIX's 108 bytes."""
    from pyrunc.errors import ContainerError

    path = f"/proc/self/fd/{state_dir_fd}/{STATE_DIR}/{SOCKET_NAME}"
    from pyrunc.linux import unix

    sock = unix.socket(unix.AF_UNIX, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC)
    try:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock.bind(path)
        os.chmod(path, 0o777)  # any user of the container may notify, as with systemd's
    except OSError as e:
        sock.close()
        raise ContainerError("listen on the container's notify socket", os.strerror(e.errno or 0).lower()) from None
    return sock


def forward_ready(sock: "socket", pid: int, caller: str, k: "Kernel") -> bool:
    """Wait for READY=1 from the container, then send READY=1 and MAINPID to `caller`.
    False when the container's init exits first."""
    import select

    pidfd = k.pidfd_open(pid)
    watched: list[socket | int] = [sock, pidfd]
    try:
        while True:
            ready, _, _ = select.select(watched, [], [])
            if sock in ready:
                data = sock.recv(4096)
                if b"READY=1" in data:  # as runc: any message that says it
                    break
                continue
            if pidfd in ready:
                return False
    finally:
        os.close(pidfd)
    from pyrunc.linux import unix

    out = unix.socket(unix.AF_UNIX, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC)
    try:
        out.sendto(f"READY=1\nMAINPID={pid}\n".encode(), caller)
    finally:
        out.close()
    return True
