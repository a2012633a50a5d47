"""The exception types of the commands that build and run containers: a config that
cannot be used, a step of the container that failed, an image that cannot be unpacked.
Read through pyrunc.errors (its __getattr__), where the other layers' types are."""

from pyrunc.errors import PyruncError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable


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


class ContainerError(PyruncError):
    """A step of building or running the container failed.

    `step` names the step (for example `mount "proc" on /proc`), `cause` the reason.
    """

    def __init__(self, step: str | None, cause: str) -> None:
        self.step = step
        self.cause = cause
        super().__init__(f"{step}: {cause}" if step else cause)


class ImageError(PyruncError):
    """An image or a layer that cannot be used: bad digest, bad archive, unsupported format."""
