"""The network steps the container's init takes: in a new network namespace, bring lo
up; for linux.netDevices, open the rtnetlink socket the runtime works through.

These are two ioctls and a socket, deliberately not pyroute2: it costs more to import
than a whole container start (netdevices.py, in the runtime, uses it).
"""

import fcntl
import struct

from pyrunc.errors import KernelError
from pyrunc.linux import unix

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
AF_NETLINK = 16
NETLINK_ROUTE = 0


def bring_up(ifname: str = "lo") -> None:
    s = unix.socket(unix.AF_INET, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC)
    try:
        req = struct.pack("16sH14x", ifname.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", ifname.encode(), flags | IFF_UP))
    except OSError as e:
        raise KernelError(e.errno, f"bring up {ifname}") from None
    finally:
        s.close()


def netlink_socket() -> "socket":
    """An rtnetlink socket of this process's network namespace: sent to the runtime, it
    lets the runtime (in the host's namespace) act in ours (linux/netdevices.py).
    SOCK_DGRAM: pyroute2 runs it on asyncio, which takes datagram sockets only."""
    try:
        return unix.socket(AF_NETLINK, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC, NETLINK_ROUTE)
    except OSError as e:
        raise KernelError(e.errno, "open an rtnetlink socket") from None
