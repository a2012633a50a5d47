"""config.json: loading, validation, defaults, and the frozen internal model.

A config's problems are lines, `<json path>: <message>`, written here (format_problems):
in the package, which every module of it loads, so that exec's check of its args alone
(exec_limits.py) writes them as the whole validation (validate.py) does without loading it."""

from pyrunc import jsonc

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    JsonPath = Sequence[str | int]


def json_path(parts: "Iterable[str | int]") -> str:
    """Render a path: keys as `.key` (or `["odd.key"]` when not an identifier), indexes as `[i]`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isascii() and part.isidentifier():  # [A-Za-z_][A-Za-z0-9_]*
            out += f".{part}" if out else part
        else:
            out += f"[{jsonc.dumps(part, compact=False)}]"
    return out or "(root)"


def _path_key(parts: "JsonPath") -> tuple[tuple[int, int, str], ...]:
    # Sort numerically by index, so [10] comes after [2]; ints before strs at one level.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in parts)


def format_problems(problems: "Iterable[tuple[JsonPath, str]]") -> list[str]:
    """[(path parts, message)] -> sorted, deduplicated `path: message` lines."""
    unique = {(tuple(parts), message) for parts, message in problems}
    ordered = sorted(unique, key=lambda pm: (_path_key(pm[0]), pm[1]))
    return [f"{json_path(parts)}: {message}" for parts, message in ordered]
