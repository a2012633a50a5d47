"""Sockets through _socket, the C module under socket.py: importing socket.py (with
enum, selectors and its wrappers) costs more than a `start`.  fd passing is done as
socket.send_fds and socket.recv_fds do it."""

import _socket
import sys

AF_UNIX = _socket.AF_UNIX
AF_INET = _socket.AF_INET
SOCK_STREAM = _socket.SOCK_STREAM
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_SEQPACKET = _socket.SOCK_SEQPACKET
SOCK_CLOEXEC = _socket.SOCK_CLOEXEC
_FD_SIZE = 4  # an int in SCM_RIGHTS

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


def socket(
    family: int = AF_UNIX, kind: int = SOCK_STREAM | SOCK_CLOEXEC, proto: int = 0, fileno: int | None = None
) -> _socket.socket:
    """A socket object; with fileno, the socket that fd is (its family and type read
    from the kernel).  Not a context manager: close it in a finally."""
    if fileno is not None:
        return _socket.socket(fileno=fileno)
    return _socket.socket(family, kind, proto)


def accept(listener: _socket.socket) -> _socket.socket:
    """The next connection on a listening socket (close-on-exec, as all of Python's)."""
    fd, _addr = listener._accept()  # type: ignore[attr-defined]  # socket.py uses it too
    return _socket.socket(fileno=fd)


def socketpair(kind: int = SOCK_SEQPACKET | SOCK_CLOEXEC) -> tuple[_socket.socket, _socket.socket]:
    return _socket.socketpair(AF_UNIX, kind)


def send_fds(sock: _socket.socket, data: bytes, fds: "Iterable[int]") -> int:
    payload = b"".join(fd.to_bytes(_FD_SIZE, sys.byteorder, signed=True) for fd in fds)
    return sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, payload)])


def recv_fds(sock: _socket.socket, bufsize: int, maxfds: int) -> tuple[bytes, list[int]]:
    """(data, [fds]): one message and the fds that came with it."""
    data, ancdata, _flags, _addr = sock.recvmsg(bufsize, _socket.CMSG_LEN(maxfds * _FD_SIZE))
    fds: list[int] = []
    for level, kind, raw in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(raw) - len(raw) % _FD_SIZE
            fds += [
                int.from_bytes(raw[i : i + _FD_SIZE], sys.byteorder, signed=True) for i in range(0, usable, _FD_SIZE)
            ]
    return data, fds
