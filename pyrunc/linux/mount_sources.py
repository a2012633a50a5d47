"""Bind sources of a container in a user namespace, opened with the host's privileges.

The container's mapped root may be unable to reach a source (a directory of host root,
mode 0700, on the way): like runc, pyrunc opens every source before the user namespace
can get in the way, and the init binds from the fd (/proc/self/fd/N).  The init asks
once its mount namespace exists (`mount_sources`); the runtime forks a helper that joins
that mount namespace, keeping the host's user namespace and credentials, opens each
source there with O_PATH, and sends the fds back; the runtime hands them to the init.

In the container's mount namespace, not the host's: mount(2) refuses to bind a mount of
another namespace (EINVAL), and a copy of the host's mount made with open_tree would not
carry the flags the kernel locks on the mounts a user namespace inherits (the container
could then make a read-only host mount writable).
"""

import errno
import os

from pyrunc.errors import KernelError
from pyrunc.linux import kernel, protocol, unix

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Sequence
    from typing import Any

    from pyrunc.config.model import Config, Mount
    from pyrunc.linux.kernel import Kernel
    from pyrunc.linux.protocol import Channel

_BATCH = 4  # fds per message: what protocol.Channel receives at once


def wanted(cfg: "Config") -> "list[tuple[Mount, str]]":
    """[(mount, host path)] of the binds whose sources the runtime opens: every bind of
    a container in a user namespace with a mount namespace of its own (new or joined)."""
    from pyrunc.linux.mounts import MountOptions

    lx = cfg.linux
    if lx.namespace("user") is None or lx.namespace("mount") is None:
        return []
    found: list[tuple[Mount, str]] = []
    for m in cfg.mounts:
        try:
            opts = MountOptions(m.options)
        except KernelError:
            continue  # refused when the init mounts it, with the entry named
        if m.type == "bind" or opts.is_bind:
            found.append((m, os.path.join(cfg.bundle, m.source or "")))
    return found


# --- the runtime's side -----------------------------------------------------------------


def open_in_namespace_of(k: "Kernel", pid: int, sources: "Sequence[tuple[Mount, str]]") -> list[int]:
    """[fd] of each source of `sources` (wanted's list), opened in the mount namespace of
    `pid` by a helper process with the runtime's credentials.  KernelError names the first
    source that could not be opened."""
    if not sources:
        return []
    ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    ours, theirs = unix.socketpair()
    try:
        helper = k.fork()
        if helper == 0:
            try:
                ours.close()
                _helper(k, ns, sources, theirs)
            finally:
                os._exit(0)
        theirs.close()
        try:
            return _collect(ours, len(sources))
        finally:
            os.waitpid(helper, 0)
    finally:
        os.close(ns)
        ours.close()


def _helper(k: "Kernel", ns: int, sources: "Sequence[tuple[Mount, str]]", sock: "socket") -> None:
    """In the forked helper: join the container's mount namespace, open, send, exit."""
    from pyrunc import jsonc  # before the join: that namespace may not have our files
    from pyrunc.linux.mounts import describe

    describe(sources[0][0])  # imports what it needs, for the same reason
    try:
        k.setns(ns, kernel.CLONE_NEWNS, "join the container's mount namespace")
    except KernelError as e:
        sock.sendall(jsonc.dumps({"errno": e.errno, "what": e.what}).encode())
        return
    for m, path in sources:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            sock.sendall(jsonc.dumps({"errno": e.errno, "what": f"{describe(m)}: source"}).encode())
            return
        unix.send_fds(sock, b"{}", [fd])
        os.close(fd)
    sock.sendall(b'{"done": true}')


def _collect(sock: "socket", count: int) -> list[int]:
    from pyrunc import jsonc

    fds: list[int] = []
    try:
        while True:
            data, got = unix.recv_fds(sock, 4096, 1)
            fds += got
            msg: dict[str, Any] = jsonc.loads(data) if data else {"errno": 0}
            if "errno" in msg:
                raise KernelError(msg["errno"] or errno.EIO, msg.get("what") or "open mount sources: the helper died")
            if msg.get("done"):
                break
        if len(fds) != count:
            raise KernelError(errno.EIO, f"open mount sources: {len(fds)} of {count} came back")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def send(chan: "Channel", fds: list[int]) -> None:
    """The answer to the init's `mount_sources`: the fds, a few a message."""
    for i in range(0, len(fds), _BATCH) or [0]:
        chan.send(protocol.OK, fds=fds[i : i + _BATCH], more=i + _BATCH < len(fds))


# --- the init's side --------------------------------------------------------------------


def receive(chan: "Channel", sources: "Sequence[tuple[Mount, str]]") -> dict[int, int]:
    """{config index: fd} of every source, as the runtime answered `mount_sources`."""
    from pyrunc.linux.protocol import ProtocolError

    fds: list[int] = []
    try:
        while True:
            msg, got = chan.recv()
            fds += got
            if msg["type"] == protocol.ERROR:
                raise ProtocolError(msg.get("msg", "parent reported an error"))
            if msg["type"] != protocol.OK:
                raise ProtocolError(f"unexpected message from parent: {msg['type']}")
            if not msg.get("more"):
                break
        if len(fds) != len(sources):
            raise ProtocolError(f"open mount sources: {len(fds)} of {len(sources)} came")
        for fd in fds:
            os.set_inheritable(fd, False)  # SCM_RIGHTS gives them without close-on-exec
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return {m.index: fd for (m, _), fd in zip(sources, fds)}
