"""The parent/child protocol over one SOCK_SEQPACKET socketpair: every message, once.

Each message is one JSON object with a `type`, one of the names below; fds travel with
SCM_RIGHTS.  The child asks, the parent answers (`ok` or `error`); a child failure
travels back as an `error` message naming the step, so the parent never has to report a
bare EOF.  Every type a pyrunc module sends is one of these constants (a unit test reads
the sources to hold that).  Create's child is the container's init (linux/init.py), exec's
the process that joins it (linux/join.py); the parent side of both is linux/spawn.py,
with each mode's answers in linux/requests.py.

  type            from    mode          fields, fds          meaning, answer
  idmap           child   create        pid                  write pid's uid/gid maps; ok | error
  cgroup          child   create        pid, join_now        make the cgroup and set its limits,
                                                             put pid in it if join_now (else when
                                                             cgroup_joined asks); ok {paths} | error
  mount_sources   child   create        pid                  open the bind sources in pid's mount
                                                             namespace; ok + fds {more}, until more
                                                             is false | error
  init            child   create, exec  pid                  the process that goes on (the init, the
                                                             exec process), host pid; no answer
  netdevices      child   create        + rtnetlink fd       move linux.netDevices into that
                                                             socket's namespace; ok | error
  hooks           child   create                             run prestart + createRuntime; ok | error
  console         child   create, exec  + pty master fd      the pty of a foreground tty; no answer
  seccomp         child   create, exec  + notify fd          send the fd to listenerPath; ok | error
  cgroup_joined   child   create, exec                       is it in its cgroup yet (create: move it
                                                             now if it joins late; exec: it was moved
                                                             at `init`): the last request; ok | error
  join_paused     child   exec                               --ignore-paused: move it into the frozen
                                                             cgroup now, instead of at `init`; it
                                                             execs on resume; ok | error
  created         child   create                             setup done, the init waits for start
  error           both                  step, msg, steps     the child failed at step and exits; from
                                                             the parent: the request failed (msg)
  ok              parent                (per request)        the request was done

  create asks for its cgroup first thing, right after the fork (with a new user
  namespace: right after idmap), and reads the answer only when it needs the paths
  (Channel.ask): the parent makes the cgroup while the child loads its code and builds.

  eof is not sent: recv's name for a closed channel (the child died, or exec'd: the
  channel is close-on-exec).

In order (each line only when the config asks for it):

  create: child -> parent                 exec: child -> parent
    cgroup ............ ok {paths}          init  (the parent moves it into the cgroup)
    idmap ............. ok                  console + fd
    mount_sources ..... ok + fds            seccomp + fd ...... ok
    init                                    cgroup_joined ..... ok  (or join_paused)
    netdevices + fd ... ok                  eof: it exec'd
    cgroup_joined ..... ok  (joining late: before hooks, else before created)
    hooks ............. ok
    console + fd
    seccomp + fd ...... ok
    created
"""

from pyrunc import jsonc
from pyrunc.linux import unix

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from _socket import socket
    from collections.abc import Callable, Iterable
    from typing import Any, Self

# Child -> parent.
IDMAP = "idmap"
CGROUP = "cgroup"
MOUNT_SOURCES = "mount_sources"
INIT = "init"
NETDEVICES = "netdevices"
HOOKS = "hooks"
CONSOLE = "console"
SECCOMP = "seccomp"
CGROUP_JOINED = "cgroup_joined"
JOIN_PAUSED = "join_paused"
CREATED = "created"
# Parent -> child, and the child's failure.
OK = "ok"
ERROR = "error"
# Not sent: what recv returns when the peer closed.
EOF = "eof"

TYPES = frozenset(
    {
        IDMAP,
        CGROUP,
        MOUNT_SOURCES,
        INIT,
        NETDEVICES,
        HOOKS,
        CONSOLE,
        SECCOMP,
        CGROUP_JOINED,
        JOIN_PAUSED,
        CREATED,
        OK,
        ERROR,
    }
)

_MAX = 65536
IDLE_INTERVAL = 0.25  # seconds between a waiting recv's idle checks


class ProtocolError(Exception):
    pass


def ask_cgroup(chan: "Channel", join_now: bool, pid_ns_made: bool) -> None:
    """The child asks the parent to make its cgroup and set the limits, and to move it in
    at once when join_now (a new cgroup namespace, whose root is the cgroup it is in when
    it unshares it).  Otherwise the init is moved in late, when it asks before its hooks
    and `created` (cgroup_joined), so that the memory its setup touches is not charged to
    the container; the parent pays the first move's wait meanwhile
    (requests.CreateRequests.warm_up_cgroup).  Asked, not awaited: the child reads the
    answer when it needs the paths (init.InitContext.cgroup_paths)."""
    import posix

    from pyrunc.linux import procfs

    pid = procfs.own_host_pid() if pid_ns_made else posix.getpid()
    chan.ask(CGROUP, pid=pid, join_now=join_now)


class Channel:
    def __init__(self, sock: "socket") -> None:
        self.sock = sock
        self._owed: list[str] = []  # requests sent with ask(), their answers not yet read
        self._answers: dict[str, dict[str, Any]] = {}  # answers read, not yet taken

    @classmethod
    def pair(cls) -> "tuple[Self, Self]":
        a, b = unix.socketpair()
        return cls(a), cls(b)

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, mtype: str, fds: "Iterable[int]" = (), **fields: object) -> None:
        fields["type"] = mtype
        data = jsonc.dumps(fields).encode()
        if fds:
            unix.send_fds(self.sock, data, fds)
        else:
            self.sock.sendall(data)

    def ask(self, mtype: str, **fields: "Any") -> None:
        """Send a request whose answer is taken later (answer_to): the child works on while
        the parent answers.  Answers come in the order asked, so any recv first reads
        the answers still owed."""
        self.send(mtype, **fields)
        self._owed.append(mtype)

    def answer_to(self, mtype: str) -> "dict[str, Any]":
        """The `ok` to the earlier ask(mtype), read now if it has not been; raises
        ProtocolError when the parent answered `error`."""
        self.read_owed()
        return self._answers.pop(mtype)

    def read_owed(self) -> None:
        """Read the answers to every ask not yet answered (ProtocolError on an `error`)."""
        while self._owed:
            mtype = self._owed[0]
            msg = self._expect_ok_now()
            del self._owed[0]
            self._answers[mtype] = msg

    def recv(
        self, idle: "Callable[[], object] | None" = None, interval: float = IDLE_INTERVAL
    ) -> "tuple[dict[str, Any], list[int]]":
        """The next message as (dict, [fds]); ({'type': 'eof'}, []) when the peer closed.
        `idle`, when given, is called after each `interval` seconds without a message;
        it raises to give up (a peer the cgroup freezer stopped never answers)."""
        if self._owed:
            self.read_owed()
        return self._recv_message(idle, interval)

    def _recv_message(
        self, idle: "Callable[[], object] | None" = None, interval: float = IDLE_INTERVAL
    ) -> "tuple[dict[str, Any], list[int]]":
        try:
            data, fds = self._recv(idle, interval)
        except ConnectionResetError:
            # The peer closed with our last message unread (a child killed just after
            # its request was answered): closed all the same, not a bare error.
            return {"type": EOF}, []
        if not data:
            return {"type": EOF}, fds
        return jsonc.loads(data), fds

    def _recv(self, idle: "Callable[[], object] | None", interval: float) -> tuple[bytes, list[int]]:
        if idle is None:
            data, fds = unix.recv_fds(self.sock, _MAX, 4)
        else:
            self.sock.settimeout(interval)
            try:
                while True:
                    try:
                        data, fds = unix.recv_fds(self.sock, _MAX, 4)
                        break
                    except TimeoutError:
                        idle()
            finally:
                self.sock.settimeout(None)
        return data, fds

    def expect_ok(self) -> "dict[str, Any]":
        self.read_owed()
        return self._expect_ok_now()

    def _expect_ok_now(self) -> "dict[str, Any]":
        msg, _ = self._recv_message()
        if msg["type"] == OK:
            return msg
        if msg["type"] == ERROR:
            raise ProtocolError(msg.get("msg", "parent reported an error"))
        raise ProtocolError(f"unexpected message from parent: {msg['type']}")

    def close(self) -> None:
        self.sock.close()
