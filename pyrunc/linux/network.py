"""The network steps the runtime itself takes: in a new network namespace, bring lo up.

This is two ioctls on a socket, deliberately not netlink: pyroute2 costs more to import
than a whole container start.
"""

import fcntl
import socket
import struct

from pyrunc.errors import KernelError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def bring_up(ifname="lo"):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", ifname.encode(), 0)
        try:
            flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
            fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", ifname.encode(), flags | IFF_UP))
        except OSError as e:
            raise KernelError(e.errno, f"bring up {ifname}") from None
