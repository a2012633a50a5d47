"""How pyrunc's processes show in ps, top and pgrep: as `pyrunc <arguments>`, not as the
interpreter the launcher started (`python3 -IS -c <boot code> ...`).

The name (comm) is set with prctl; the command line is rewritten in place in the
argument area (kernel.set_cmdline says why).  Between create and start the container's
init shows as `pyrunc init <id>` (comm `pyrunc:init`), as runc's shows as `runc init`;
its exec of the user's program replaces both.
"""

from pyrunc.errors import KernelError

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.linux.kernel import Kernel


def show_as(k: "Kernel", comm: str, args: list[str]) -> None:
    """Best effort: how a process is named is never a reason for it to fail."""
    try:
        k.set_name(comm)
        k.set_cmdline(args)
    except (KernelError, OSError, ValueError, IndexError):
        pass


def show_command(k: "Kernel", argv: list[str]) -> None:
    """The pyrunc command itself (create, run, exec: the ones that stay)."""
    show_as(k, "pyrunc", ["pyrunc", *argv])


def show_init(k: "Kernel", container_id: str) -> None:
    show_as(k, "pyrunc:init", ["pyrunc", "init", container_id])
