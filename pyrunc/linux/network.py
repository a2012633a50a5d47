"""The network steps the container's init takes: in a new network namespace, bring lo
up; for linux.netDevices, open the rtnetlink socket the runtime works through.

These are a socket and two ioctls (the kernel seam's interface_up), deliberately not
pyroute2: it costs more to import than a whole container start (netdevices.py, in the
runtime, uses it); nor fcntl and struct, two more modules for the init to load.
"""

from pyrunc.errors import KernelError
from pyrunc.linux import unix

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket

    from pyrunc.linux.kernel import Kernel

AF_NETLINK = 16
NETLINK_ROUTE = 0


def bring_up(k: "Kernel", ifname: str = "lo") -> None:
    """`ifname` up in our network namespace (`k`: the kernel seam)."""
    try:
        s = unix.socket(unix.AF_INET, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, f"bring up {ifname}: socket") from None
    try:
        k.interface_up(s.fileno(), ifname)
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
