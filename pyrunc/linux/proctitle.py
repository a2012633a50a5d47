"""How pyrunc's processes show in ps, top and pgrep: as `pyrunc <arguments>`, not as the
interpreter the launcher started (`python3 -IS -c <boot code> ...`).

The name (comm) is set with prctl; the command line is rewritten in place in the
argument area (kernel.set_cmdline says why).  Between create and start the container's
init shows as `pyrunc init <id>` (comm `pyrunc:init`), as runc's shows as `runc init`;
its exec of the user's program replaces both.
"""

from pyrunc.errors import KernelError
from pyrunc.linux import kernel


def show_as(comm: str, args: list[str]) -> None:
    """Best effort: how a process is named is never a reason for it to fail."""
    try:
        kernel.set_name(comm)
        kernel.set_cmdline(args)
    except (KernelError, OSError, ValueError, IndexError):
        pass


def show_command(argv: list[str]) -> None:
    """The pyrunc command itself (create, run, exec: the ones that stay)."""
    show_as("pyrunc", ["pyrunc", *argv])


def show_init(container_id: str) -> None:
    show_as("pyrunc:init", ["pyrunc", "init", container_id])
