"""Exception types, one per layer. Each message is a single line meant for the user."""

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


class PyruncError(Exception):
    """Base class: anything pyrunc reports to the user as `pyrunc: <message>`."""


class UsageError(PyruncError):
    """Bad command line: unknown command or flag, missing argument."""


class ConfigError(PyruncError):
    """config.json cannot be read, fails the schema, or fails a semantic check.

    `problems` holds every problem found, each one line naming the JSON path.
    """

    def __init__(self, problems: "Iterable[str]", bundle: str | None = None) -> None:
        self.problems = list(problems)
        self.bundle = bundle
        first = self.problems[0] if self.problems else "invalid configuration"
        count = len(self.problems)
        where = f" --bundle {_shell_word(bundle)}" if bundle else ""
        # One line however many: the first, how many, and the command that lists them.
        suffix = f" (1 of {count} problems; `pyrunc validate{where}` lists them all)" if count > 1 else ""
        super().__init__(f"invalid config.json: {first}{suffix}")


def _shell_word(text: str) -> str:
    """`text` as one shell word, quoted only when it must be, on one line."""
    safe = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,:/@%"
    if text and all(c in safe for c in text):
        return text
    quoted = "".join(
        "'\\''" if c == "'" else f"'$'\\x{ord(c):02x}''" if ord(c) < 32 or ord(c) == 127 else c for c in text
    )
    return "'" + quoted + "'"


class StateError(PyruncError):
    """Unknown container, existing id, or a command not allowed in the current state."""


class NoSuchContainer(StateError):
    """No state directory for this id (never made, or deleted): `delete -f` succeeds."""

    def __init__(self, cid: str) -> None:
        self.id = cid
        super().__init__(f"container {cid} does not exist")


class ContainerError(PyruncError):
    """A step of building or running the container failed.

    `step` names the step (for example `mount "proc" on /proc`), `cause` the reason.
    """

    def __init__(self, step: str | None, cause: str) -> None:
        self.step = step
        self.cause = cause
        super().__init__(f"{step}: {cause}" if step else cause)


class KernelError(OSError):
    """A failed kernel call, naming the verb and its object: `mount "proc" on /proc: permission denied`."""

    def __init__(self, errno_: int | None, what: str) -> None:
        import os

        self.what = what
        # errno_ is usually an OSError's, which may be None: no TypeError on an error path.
        why = os.strerror(errno_).lower() if errno_ is not None else "unknown error"
        super().__init__(errno_, f"{what}: {why}")

    def __str__(self) -> str:
        return str(self.args[1])


def one_line(exc: BaseException) -> str:
    """One line for any failure; KernelError and PyruncError messages name what failed."""
    import os

    if isinstance(exc, (PyruncError, KernelError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno:
        return (f"{exc.filename}: " if exc.filename else "") + os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


class CgroupError(PyruncError):
    """A resource the host cannot apply, naming the config field: `linux.resources.network:
    the host has no net_cls controller`."""

    def __init__(self, field: str | None, why: str, errno: int | None = None) -> None:
        self.field = field
        self.why = why
        self.errno = errno  # the failed write's, when one failed
        super().__init__(f"{field}: {why}" if field else why)


class ImageError(PyruncError):
    """An image or a layer that cannot be used: bad digest, bad archive, unsupported format."""
