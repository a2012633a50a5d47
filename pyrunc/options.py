"""The options of the commands that start a process, typed: the CLI builds them once
from its flags (cli/commands.py) and passes them down, so that `lifecycle.create`,
`run` and `exec_in` read named fields, not a flag dictionary.  Frozen, with __slots__
as config/model.py's classes (dataclasses costs milliseconds of import)."""

from pyrunc.config.model import Frozen
from pyrunc.errors import UsageError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import ClassVar, Self


class _Options(Frozen):
    __slots__: tuple[str, ...] = ()
    DEFAULTS: "ClassVar[dict[str, object]]" = {}

    # The fields both commands have, which the checks below read.
    console_socket: str | None
    preserve_fds: int

    def __init__(self, **fields: object) -> None:
        super().__init__(**{**self.DEFAULTS, **fields})

    @classmethod
    def from_flags(cls, flags: "Mapping[str, object]", **more: object) -> "Self":
        """From the CLI's flag dictionary (flag names with `_` for `-`); `more` wins."""
        return cls(**{**{name: flags[name] for name in cls.__slots__ if name in flags}, **more})

    def replace(self, **changes: object) -> "Self":
        return type(self)(**{**{n: getattr(self, n) for n in self.__slots__}, **changes})

    def check_preserve_fds(self) -> None:
        if self.preserve_fds < 0:
            raise UsageError(f"--preserve-fds must not be negative, got {self.preserve_fds}")

    # runc's two rules, in each command's words: a detached tty needs a socket to send it
    # to; a socket needs a tty.
    NO_SOCKET: "ClassVar[str]" = ""
    NO_TTY: "ClassVar[str]" = ""

    def check_terminal(self, terminal: bool, foreground: bool) -> None:
        """`terminal`: the process's; `foreground`: not detached."""
        if terminal and self.console_socket is None and not foreground:
            raise UsageError(self.NO_SOCKET)
        if self.console_socket is not None and not terminal:
            raise UsageError(self.NO_TTY)


class CreateOptions(_Options):
    """create's and run's: the bundle, the flags, and the global flags create reads.
    `foreground`: run without --detach (a tty's pty master comes back to the caller)."""

    __slots__ = (
        "bundle",
        "pid_file",
        "console_socket",
        "pidfd_socket",
        "no_pivot",
        "no_new_keyring",
        "preserve_fds",
        "foreground",
        "systemd_cgroup",
        "rootless",
    )
    DEFAULTS = {
        "bundle": ".",
        "no_pivot": False,
        "no_new_keyring": False,
        "preserve_fds": 0,
        "foreground": False,
        "systemd_cgroup": False,
        "rootless": "auto",
    }
    NO_SOCKET = "cannot allocate a tty without --console-socket when detached (process.terminal is true)"
    NO_TTY = "--console-socket needs process.terminal set to true in config.json"

    bundle: str
    pid_file: str | None
    pidfd_socket: str | None
    no_pivot: bool
    no_new_keyring: bool
    foreground: bool
    systemd_cgroup: bool
    rootless: str  # --rootless lowercased: true, false, auto, 1, 0, t or f


class ExecOptions(_Options):
    """exec's flags (cli/commands.py EXEC_FLAGS)."""

    __slots__ = (
        "console_socket",
        "pidfd_socket",
        "pid_file",
        "preserve_fds",
        "cwd",
        "env",
        "tty",
        "user",
        "additional_gids",
        "process",
        "detach",
        "process_label",
        "apparmor",
        "no_new_privs",
        "cap",
        "ignore_paused",
        "cgroup",
    )
    DEFAULTS = {
        "preserve_fds": 0,
        "env": (),
        "tty": False,
        "additional_gids": (),
        "detach": False,
        "no_new_privs": False,
        "cap": (),
        "ignore_paused": False,
        "cgroup": (),
    }
    NO_SOCKET = "cannot allocate a tty without --console-socket when detached"
    NO_TTY = "--console-socket needs a tty (--tty, or terminal in the process)"

    pidfd_socket: str | None
    pid_file: str | None
    cwd: str | None
    env: tuple[str, ...]
    tty: bool
    user: str | None
    additional_gids: tuple[str, ...]
    process: str | None
    detach: bool
    process_label: str | None
    apparmor: str | None
    no_new_privs: bool
    cap: tuple[str, ...]
    ignore_paused: bool
    cgroup: tuple[str, ...]


class CheckpointOptions(_Options):
    """checkpoint's flags (cli/commands.py CHECKPOINT_FLAGS)."""

    __slots__ = (
        "image_path",
        "work_path",
        "parent_path",
        "leave_running",
        "tcp_established",
        "ext_unix_sk",
        "shell_job",
        "file_locks",
        "pre_dump",
        "manage_cgroups_mode",
        "empty_ns",
        "auto_dedup",
        "lazy_pages",
        "status_fd",
    )
    DEFAULTS = {
        "image_path": "",
        "work_path": "",
        "parent_path": "",
        "leave_running": False,
        "tcp_established": False,
        "ext_unix_sk": False,
        "shell_job": False,
        "file_locks": False,
        "pre_dump": False,
        "manage_cgroups_mode": "",
        "empty_ns": (),
        "auto_dedup": False,
        "lazy_pages": False,
        "status_fd": None,
    }

    image_path: str
    work_path: str
    parent_path: str
    leave_running: bool
    tcp_established: bool
    ext_unix_sk: bool
    shell_job: bool
    file_locks: bool
    pre_dump: bool
    manage_cgroups_mode: str
    empty_ns: tuple[str, ...]
    auto_dedup: bool
    lazy_pages: bool
    status_fd: int | None


class RestoreOptions(_Options):
    """restore's flags (cli/commands.py RESTORE_FLAGS)."""

    __slots__ = (
        "bundle",
        "console_socket",
        "image_path",
        "work_path",
        "tcp_established",
        "ext_unix_sk",
        "shell_job",
        "file_locks",
        "manage_cgroups_mode",
        "detach",
        "pid_file",
        "no_subreaper",
        "no_pivot",
        "empty_ns",
        "auto_dedup",
        "lazy_pages",
    )
    DEFAULTS = {
        "bundle": ".",
        "image_path": "",
        "work_path": "",
        "tcp_established": False,
        "ext_unix_sk": False,
        "shell_job": False,
        "file_locks": False,
        "manage_cgroups_mode": "",
        "detach": False,
        "no_subreaper": False,
        "no_pivot": False,
        "empty_ns": (),
        "auto_dedup": False,
        "lazy_pages": False,
    }

    bundle: str
    image_path: str
    work_path: str
    tcp_established: bool
    ext_unix_sk: bool
    shell_job: bool
    file_locks: bool
    manage_cgroups_mode: str
    detach: bool
    pid_file: str | None
    no_subreaper: bool
    no_pivot: bool
    empty_ns: tuple[str, ...]
    auto_dedup: bool
    lazy_pages: bool
