"""The numbered parent/child protocol over one SOCK_SEQPACKET socketpair.

Each message is one JSON object with a `type`; fds travel with SCM_RIGHTS.  The
child asks, the parent answers; a child failure travels back as an `error` message
naming the step, so the parent never has to report a bare EOF.

Child -> parent                         Parent -> child
  idmap {pid}       write uid/gid maps      ok | error
  cgroup {pid}      place pid in cgroup     ok | error
  init {pid}        the container's init pid (host view); no answer
  hooks             run prestart + createRuntime hooks   ok | error
  console + fd      pty master for a foreground run; no answer
  netdevices + fd   an rtnetlink socket of the init's network namespace:
                    move linux.netDevices into it    ok | error
  mount_sources {pid}  open the bind sources in pid's mount namespace with the runtime's
                    privileges    ok + fds {more}, until more is false | error
  created           setup done; init now waits for start; no answer
  error {step,msg}  setup failed; the child exits
"""

from pyrunc import jsonc
from pyrunc.linux import unix

_MAX = 65536
IDLE_INTERVAL = 0.25  # seconds between a waiting recv's idle checks


class ProtocolError(Exception):
    pass


class Channel:
    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def pair(cls):
        a, b = unix.socketpair()
        return cls(a), cls(b)

    def fileno(self):
        return self.sock.fileno()

    def send(self, mtype, fds=(), **fields):
        fields["type"] = mtype
        data = jsonc.dumps(fields).encode()
        if fds:
            unix.send_fds(self.sock, data, fds)
        else:
            self.sock.sendall(data)

    def recv(self, idle=None, interval=IDLE_INTERVAL):
        """The next message as (dict, [fds]); ({'type': 'eof'}, []) when the peer closed.
        `idle`, when given, is called after each `interval` seconds without a message;
        it raises to give up (a peer the cgroup freezer stopped never answers)."""
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
        if not data:
            return {"type": "eof"}, fds
        return jsonc.loads(data), fds

    def expect_ok(self):
        msg, _ = self.recv()
        if msg["type"] == "ok":
            return msg
        if msg["type"] == "error":
            raise ProtocolError(msg.get("msg", "parent reported an error"))
        raise ProtocolError(f"unexpected message from parent: {msg['type']}")

    def close(self):
        self.sock.close()
