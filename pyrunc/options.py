"""The options of the commands that start a process, typed: the CLI builds them once
from its flags (cli/commands.py) and passes them down, so that `lifecycle.create`,
`run` and `exec_in` read named fields, not a flag dictionary.  Frozen, with __slots__
as config/model.py's classes (dataclasses costs milliseconds of import)."""

from pyrunc.config.model import Frozen
from pyrunc.errors import UsageError


class _Options(Frozen):
    __slots__ = ()
    DEFAULTS = {}

    def __init__(self, **fields):
        super().__init__(**{**self.DEFAULTS, **fields})

    @classmethod
    def from_flags(cls, flags, **more):
        """From the CLI's flag dictionary (flag names with `_` for `-`); `more` wins."""
        return cls(**{**{name: flags[name] for name in cls.__slots__ if name in flags}, **more})

    def replace(self, **changes):
        return type(self)(**{**{n: getattr(self, n) for n in self.__slots__}, **changes})

    def check_preserve_fds(self):
        if self.preserve_fds < 0:
            raise UsageError(f"--preserve-fds must not be negative, got {self.preserve_fds}")

    # runc's two rules, in each command's words: a detached tty needs a socket to send it
    # to; a socket needs a tty.
    NO_SOCKET = NO_TTY = ""

    def check_terminal(self, terminal, foreground):
        """`terminal`: the process's; `foreground`: not detached."""
        if terminal and self.console_socket is None and not foreground:
            raise UsageError(self.NO_SOCKET)
        if self.console_socket is not None and not terminal:
            raise UsageError(self.NO_TTY)


class CreateOptions(_Options):
    """create's and run's: the bundle, the flags, and the global flags create reads.
    `foreground`: run without --detach (a tty's pty master comes back to the caller)."""
    __slots__ = ("bundle", "pid_file", "console_socket", "pidfd_socket", "no_pivot",
                 "no_new_keyring", "preserve_fds", "foreground", "systemd_cgroup", "rootless")
    DEFAULTS = {"bundle": ".", "no_pivot": False, "no_new_keyring": False, "preserve_fds": 0,
                "foreground": False, "systemd_cgroup": False, "rootless": "auto"}
    NO_SOCKET = "cannot allocate a tty without --console-socket when detached (process.terminal is true)"
    NO_TTY = "--console-socket needs process.terminal set to true in config.json"


class ExecOptions(_Options):
    """exec's flags (cli/commands.py EXEC_FLAGS)."""
    __slots__ = ("console_socket", "pidfd_socket", "pid_file", "preserve_fds", "cwd", "env",
                 "tty", "user", "additional_gids", "process", "detach", "process_label",
                 "apparmor", "no_new_privs", "cap", "ignore_paused", "cgroup")
    DEFAULTS = {"preserve_fds": 0, "env": (), "tty": False, "additional_gids": (),
                "detach": False, "no_new_privs": False, "cap": (), "ignore_paused": False,
                "cgroup": ()}
    NO_SOCKET = "cannot allocate a tty without --console-socket when detached"
    NO_TTY = "--console-socket needs a tty (--tty, or terminal in the process)"
