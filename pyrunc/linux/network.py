"""The network steps the runtime itself takes: in a new network namespace, bring lo up.

This is two ioctls on a socket, deliberately not netlink: pyroute2 costs more to import
than a whole container start.
"""

import fcntl
import struct

from pyrunc.errors import KernelError
from pyrunc.linux import unix

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def bring_up(ifname="lo"):
    s = unix.socket(unix.AF_INET, unix.SOCK_DGRAM | unix.SOCK_CLOEXEC)
    try:
        req = struct.pack("16sH14x", ifname.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", ifname.encode(), flags | IFF_UP))
    except OSError as e:
        raise KernelError(e.errno, f"bring up {ifname}") from None
    finally:
        s.close()
