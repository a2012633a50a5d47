"""The container's terminal: a pty made inside the container's devpts, its master sent out.

With --console-socket the master goes to the caller over that unix socket (SCM_RIGHTS),
as runc does; for a foreground `run` it goes to the parent, which wires it to its own
terminal.
"""

import errno
import fcntl
import os
import struct
import termios

from pyrunc.errors import KernelError

TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431


def open_pty() -> tuple[int, str]:
    """(master fd, slave path) from the container's /dev/ptmx, after pivot_root."""
    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, "open /dev/ptmx") from None
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    num = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
    return master, f"/dev/pts/{num}"


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def copy_size(from_fd: int, to_fd: int) -> None:
    try:
        to_fd_size = fcntl.ioctl(from_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(to_fd, termios.TIOCSWINSZ, to_fd_size)
    except OSError:
        pass


TIOCGPTPEER = 0x5441


def open_peer(master: int) -> int:
    """The pty's slave, opened from the master and never by its path: an image's own
    /dev/pts/N (when no devpts is mounted there) could name any file (CVE-2025-52565)."""
    try:
        return fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(e.errno, "open the pty's slave") from None


def give_to_user(slave: int, uid: int) -> None:
    """The slave becomes the process's user's, as runc does, so that a non-root process
    can open its own terminal by name (what `tty` prints, /dev/console), as programs
    that reopen their tty do.
    Its group stays the one devpts gave it (the mount's gid=, tty's 5 in runc's default)
    with the mount's mode=.  An owner the user namespace cannot map, or a read-only /dev,
    leaves it as it is, as runc leaves it."""
    if os.fstat(slave).st_uid == uid:
        return
    try:
        os.fchown(slave, uid, -1)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
            raise KernelError(e.errno, f"chown the pty to uid {uid}") from None


def become_session_leader_on(slave: int) -> None:
    """setsid, then make the slave (an fd) our controlling terminal and our stdio."""
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)


def send_to_console_socket(sock_fd: int, master: int) -> None:
    from pyrunc.linux import unix

    sock = unix.socket(fileno=sock_fd)
    try:
        unix.send_fds(sock, b"/dev/ptmx", [master])
    finally:
        sock.close()
