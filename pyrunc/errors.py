"""Exception types, one per layer. Each message is a single line meant for the user.

Those of the commands that build and run containers (ConfigError, ContainerError,
ImageError) are defined in build_errors.py and read from here as if they were here (the
module's __getattr__): creating an exception class costs about as much as importing a
small module, and `state`, `list`, `kill` and `delete` never raise them."""

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.build_errors import ConfigError as ConfigError
    from pyrunc.build_errors import ContainerError as ContainerError
    from pyrunc.build_errors import ImageError as ImageError

_BUILD_ERRORS = ("ConfigError", "ContainerError", "ImageError")


def __getattr__(name: str) -> type:
    """`from pyrunc.errors import ConfigError` and the like (PEP 562)."""
    if name in _BUILD_ERRORS:
        from pyrunc import build_errors

        cls: type = getattr(build_errors, name)
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PyruncError(Exception):
    """Base class: anything pyrunc reports to the user as `pyrunc: <message>`."""


class UsageError(PyruncError):
    """Bad command line: unknown command or flag, missing argument."""


class StateError(PyruncError):
    """Unknown container, existing id, or a command not allowed in the current state."""


class NoSuchContainer(StateError):
    """No state directory for this id (never made, or deleted): `delete -f` succeeds."""

    def __init__(self, cid: str) -> None:
        self.id = cid
        super().__init__(f"container {cid} does not exist")


class KernelError(OSError):
    """A failed kernel call, naming the verb and its object: `mount "proc" on /proc: permission denied`."""

    def __init__(self, errno_: int | None, what: str) -> None:
        import posix  # os.strerror, without os (kill's errors)

        self.what = what
        # errno_ is usually an OSError's, which may be None: no TypeError on an error path.
        why = posix.strerror(errno_).lower() if errno_ is not None else "unknown error"
        super().__init__(errno_, f"{what}: {why}")

    def __str__(self) -> str:
        return str(self.args[1])


def one_line(exc: BaseException) -> str:
    """One line for any failure; KernelError and PyruncError messages name what failed."""
    import posix  # os.strerror, without os

    if isinstance(exc, (PyruncError, KernelError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno:
        return (f"{exc.filename}: " if exc.filename else "") + posix.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


class CgroupError(PyruncError):
    """A resource the host cannot apply, naming the config field: `linux.resources.network:
    the host has no net_cls controller`."""

    def __init__(self, field: str | None, why: str, errno: int | None = None) -> None:
        self.field = field
        self.why = why
        self.errno = errno  # the failed write's, when one failed
        super().__init__(f"{field}: {why}" if field else why)
