"""CRIU's RPC: `criu swrk FD` over a socketpair, one protobuf message per packet.

CRIU's protocol is protobuf (proto2) messages `criu_req` / `criu_resp`, whose fields are
numbered in its rpc.proto (Debian: /usr/include/criu/rpc.proto).  The few messages and
fields pyrunc sends and reads are encoded here by hand, from the wire format's rules
(varints, tags, length-delimited fields): the protobuf package and pycriu's generated
rpc_pb2 cost 150-300 ms to import and are not in the runtime's environment, while this
module imports nothing beyond the standard library's C parts, and only checkpoint and
restore import it.

A request is a dict of criu_opts fields by name; `Swrk.call` sends it and returns the
final response, answering CRIU's notifications (`notify` callbacks, runc's "post-dump",
"setup-namespaces", "post-restore", ...) on the way.
"""

import os

from pyrunc.linux import unix

# Annotations name typing's types only for mypy.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# criu_req_type
EMPTY, DUMP, RESTORE, CHECK, PRE_DUMP, PAGE_SERVER, NOTIFY = 0, 1, 2, 3, 4, 5, 6
FEATURE_CHECK, VERSION = 9, 10
TYPE_NAMES = {
    DUMP: "dump",
    RESTORE: "restore",
    CHECK: "check",
    PRE_DUMP: "pre-dump",
    NOTIFY: "notify",
    VERSION: "version",
}

# criu_cg_mode, as runc's --manage-cgroups-mode names them
CG_MODES = {"ignore": 0, "none": 1, "props": 2, "soft": 3, "full": 4, "strict": 5}

# Wire types.
_VARINT, _LEN = 0, 2

# Field kinds: "int" (int32/uint32/enum, a varint; a negative int32 takes ten bytes),
# "bool", "str", or a nested message's field table.  Repeated fields take a list.
_EXT_MNT = {"key": (1, "str"), "val": (2, "str")}
_INHERIT_FD = {"key": (1, "str"), "fd": (2, "int")}
_CGROUP_ROOT = {"ctrl": (1, "str"), "path": (2, "str")}
_JOIN_NS = {"ns": (1, "str"), "ns_file": (2, "str"), "extra_opt": (3, "str")}
OPTS: "dict[str, tuple[int, Any]]" = {
    "images_dir_fd": (1, "int"),
    "pid": (2, "int"),
    "leave_running": (3, "bool"),
    "ext_unix_sk": (4, "bool"),
    "tcp_established": (5, "bool"),
    "evasive_devices": (6, "bool"),
    "shell_job": (7, "bool"),
    "file_locks": (8, "bool"),
    "log_level": (9, "int"),
    "log_file": (10, "str"),
    "notify_scripts": (12, "bool"),
    "root": (13, "str"),
    "parent_img": (14, "str"),
    "track_mem": (15, "bool"),
    "auto_dedup": (16, "bool"),
    "work_dir_fd": (17, "int"),
    "link_remap": (18, "bool"),
    "ext_mnt": (23, _EXT_MNT),
    "manage_cgroups": (24, "bool"),
    "cg_root": (25, _CGROUP_ROOT),
    "rst_sibling": (26, "bool"),
    "inherit_fd": (27, _INHERIT_FD),
    "skip_mnt": (31, "str"),
    "manage_cgroups_mode": (34, "int"),
    "external": (37, "str"),
    "empty_ns": (38, "int"),
    "join_ns": (39, _JOIN_NS),
    "freeze_cgroup": (44, "str"),
    "lazy_pages": (48, "bool"),
    "status_fd": (49, "int"),
    "orphan_pts_master": (50, "bool"),
    "network_lock": (64, "int"),
}
_FEATURES = {"mem_track": (1, "bool"), "lazy_pages": (2, "bool"), "pidfd_store": (3, "bool")}
REQ = {
    "type": (1, "int"),
    "opts": (2, OPTS),
    "notify_success": (3, "bool"),
    "keep_open": (4, "bool"),
    "features": (5, _FEATURES),
}
_VERSION = {
    "major_number": (1, "int"),
    "minor_number": (2, "int"),
    "gitid": (3, "str"),
    "sublevel": (4, "int"),
    "extra": (5, "int"),
    "name": (6, "str"),
}
RESP = {
    "type": (1, "int"),
    "success": (2, "bool"),
    "dump": (3, {"restored": (1, "bool")}),
    "restore": (4, {"pid": (1, "int")}),
    "notify": (5, {"script": (1, "str"), "pid": (2, "int")}),
    "cr_errno": (7, "int"),
    "features": (8, _FEATURES),
    "cr_errmsg": (9, "str"),
    "version": (10, _VERSION),
    "status": (11, "int"),
}
# The int32 fields whose values can be negative (decoded back from two's complement).
_SIGNED = {"cr_errno", "status", "fd", "pid", "images_dir_fd", "work_dir_fd", "status_fd", "log_level"}


class ProtocolError(Exception):
    """A message that does not parse as what CRIU sends."""


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # an int32 below 0 goes on the wire as its 64-bit two's complement
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode(fields: "dict[str, Any]", table: "dict[str, tuple[int, Any]]") -> bytes:
    """`fields` (by name, None left out) as the message `table` describes."""
    out = bytearray()
    for name, value in fields.items():
        if value is None:
            continue
        if name not in table:
            raise KeyError(f"criu rpc: no field {name!r}")
        number, kind = table[name]
        for v in value if isinstance(value, (list, tuple)) else (value,):
            if kind == "int" or kind == "bool":
                out += _varint(number << 3 | _VARINT) + _varint(int(v))
            else:
                raw = v.encode() if kind == "str" else encode(v, kind)
                out += _varint(number << 3 | _LEN) + _varint(len(raw)) + raw
    return bytes(out)


def _read_varint(data: bytes, i: int) -> "tuple[int, int]":
    n = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ProtocolError("truncated varint")
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode(data: bytes, table: "dict[str, tuple[int, Any]]") -> "dict[str, Any]":
    """The fields of `table` found in `data` (the last of a repeated one: none are read
    here); unknown fields are skipped, as protobuf does."""
    by_number = {number: (name, kind) for name, (number, kind) in table.items()}
    out: dict[str, Any] = {}
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == _VARINT:
            value, i = _read_varint(data, i)
        elif wire == _LEN:
            size, i = _read_varint(data, i)
            if i + size > len(data):
                raise ProtocolError("truncated field")
            value, i = data[i : i + size], i + size
        elif wire == 1:  # fixed64
            value, i = data[i : i + 8], i + 8
        elif wire == 5:  # fixed32
            value, i = data[i : i + 4], i + 4
        else:
            raise ProtocolError(f"wire type {wire}")
        if number not in by_number:
            continue
        name, kind = by_number[number]
        if kind == "bool":
            out[name] = bool(value)
        elif kind == "int":
            assert isinstance(value, int)
            if name in _SIGNED and value >= 1 << 31:
                value -= 1 << 64 if value >= 1 << 32 else 1 << 32
            out[name] = value
        elif kind == "str":
            assert isinstance(value, bytes)
            out[name] = value.decode(errors="replace")
        else:
            assert isinstance(value, bytes)
            out[name] = decode(value, kind)
    return out


class CriuError(Exception):
    """CRIU failed a request, or could not be run; `log` names its log file if any."""

    def __init__(self, why: str, log: str | None = None) -> None:
        super().__init__(why)
        self.why, self.log = why, log

    def __str__(self) -> str:
        return f"{self.why} (see {self.log})" if self.log else self.why


# A notification's callback: (script name, its pid, the fds that came with it).
Notify = "Callable[[str, int, list[int]], None]"


class Swrk:
    """One `criu swrk` process and its end of the socketpair."""

    def __init__(self, criu: str = "criu", pass_fds: "tuple[int, ...]" = ()) -> None:
        import subprocess

        ours, theirs = unix.socketpair(unix.SOCK_SEQPACKET | unix.SOCK_CLOEXEC)
        self.sock = ours
        try:
            # CRIU takes over the fd as its channel; it has our stdio (restore hands it to the
            # restored process in place of the saved pipes); every other fd of ours stays shut.
            self.proc = subprocess.Popen(
                [criu, "swrk", str(theirs.fileno())],
                pass_fds=(theirs.fileno(), *pass_fds),
                close_fds=True,
            )
        except OSError as e:
            ours.close()
            raise CriuError(f"cannot run {criu}: {os.strerror(e.errno or 0).lower()}") from None
        finally:
            theirs.close()
        self.pid = self.proc.pid

    def send(self, req: "dict[str, Any]") -> None:
        self.sock.send(encode(req, REQ))

    def recv(self) -> "dict[str, Any]":
        data, fds = unix.recv_fds(self.sock, 1 << 20, 8)
        if not data:
            raise CriuError("criu exited without an answer")
        resp = decode(data, RESP)
        resp["fds"] = fds
        return resp

    def call(
        self, req_type: int, opts: "dict[str, Any]", notify: "Callable[..., None] | None" = None
    ) -> "dict[str, Any]":
        """Send one request; answer its notifications (a callback that raises fails
        the notification, and so the request); return CRIU's final response, or raise
        CriuError with its message (the log file named by the caller's error)."""
        self.send({"type": req_type, "opts": opts})
        while True:
            resp = self.recv()
            if resp.get("type") != NOTIFY:
                break
            note = resp.get("notify", {})
            ok = True
            try:
                if notify is not None:
                    notify(note.get("script", ""), note.get("pid", 0), resp["fds"])
            except BaseException:
                ok = False
                raise
            finally:
                for fd in resp["fds"]:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                self.send({"type": NOTIFY, "notify_success": ok})
        if resp.get("type") != req_type:
            raise CriuError(f"criu answered a {TYPE_NAMES.get(resp.get('type', -1), resp.get('type'))} request")
        if not resp.get("success"):
            # CRIU's message is its log's error line, newline and all: one line here.
            msg = "; ".join(line.strip() for line in (resp.get("cr_errmsg") or "").splitlines() if line.strip())
            why = msg or (os.strerror(resp["cr_errno"]).lower() if resp.get("cr_errno") else "failed")
            raise CriuError(f"criu {TYPE_NAMES.get(req_type, req_type)}: {why}")
        return resp

    def close(self) -> int:
        """Close the channel and reap CRIU; its exit status."""
        self.sock.close()
        return self.proc.wait()


def version(criu: str = "criu") -> "tuple[int, int, int]":
    """CRIU's version, (major, minor, sublevel), asked over RPC."""
    s = Swrk(criu)
    try:
        s.send({"type": VERSION})
        resp = s.recv()
    finally:
        s.close()
    v = resp.get("version") or {}
    if not resp.get("success") or "major_number" not in v:
        raise CriuError("criu version: no answer")
    return v["major_number"], v["minor_number"], v.get("sublevel", 0)
