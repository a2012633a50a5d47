"""A runc-compatible flag parser.

Accepts `--flag value`, `--flag=value`, Go-style single-dash long flags (`-root DIR`,
`-bundle=x`), short aliases (`-b x`, `-d`) and booleans with or without `=true|false`.
argparse is not used: it costs milliseconds to import and rejects Go-style flags.
"""

from pyrunc.errors import UsageError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any


class Flag:
    __slots__ = ("names", "dest", "takes_value", "default", "help", "convert", "repeat", "shown")

    def __init__(
        self,
        names: str,
        dest: str | None = None,
        takes_value: bool = True,
        default: object = None,
        help: str = "",
        convert: "Callable[[str], Any] | None" = None,
        repeat: bool = False,
        shown: str | None = None,
    ) -> None:
        self.names = tuple(names.split("|"))
        self.dest = dest or self.names[0].replace("-", "_")
        self.takes_value = takes_value
        self.default = default
        self.help = help
        self.convert = convert
        self.repeat = repeat  # each use adds a value: the option is a list
        self.shown = shown  # the default as help shows it, where the value is not text (5s)


def boolean(names: str, help: str = "", dest: str | None = None) -> Flag:
    return Flag(names, dest=dest, takes_value=False, default=False, help=help)


def repeated(names: str, help: str = "") -> Flag:
    return Flag(names, default=(), help=help, repeat=True)


_TRUE = ("true", "1", "t", "yes")
_FALSE = ("false", "0", "f", "no")


def parse(
    argv: "Sequence[str]", flags: "Iterable[Flag]", command: str, stop_at_positional: bool = False
) -> "tuple[dict[str, Any], list[str]]":
    """Parse argv against flags: return (options dict, positional list).

    With stop_at_positional, everything from the first positional on is positional
    (for commands that pass a command line through, like exec and ps).
    """
    by_name = {n: f for f in flags for n in f.names}
    opts: dict[str, Any] = {f.dest: f.default for f in flags}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positional.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            if stop_at_positional:
                positional.extend(argv[i:])
                break
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        flag = by_name.get(name)
        if flag is None:
            raise UsageError(f"{command}: unknown flag {arg.split('=')[0]!r}")
        if flag.takes_value:
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"{command}: flag {arg!r} needs a value")
                value = argv[i]
                i += 1
            if flag.convert:
                try:
                    value = flag.convert(value)
                except ValueError:
                    raise UsageError(f"{command}: invalid value {value!r} for flag --{flag.names[0]}") from None
            opts[flag.dest] = opts[flag.dest] + (value,) if flag.repeat else value
        elif eq:
            if value.lower() in _TRUE:
                opts[flag.dest] = True
            elif value.lower() in _FALSE:
                opts[flag.dest] = False
            else:
                raise UsageError(f"{command}: invalid boolean {value!r} for flag --{flag.names[0]}")
        else:
            opts[flag.dest] = True
    return opts, positional


def spelled(flag: Flag) -> str:
    """How help names a flag, as runc does: `--env value, -e value`."""
    value = " value" if flag.takes_value else ""
    return ", ".join(("-" if len(n) == 1 else "--") + n + value for n in flag.names)


def default_text(flag: Flag) -> str:
    """The default as runc's help shows it: `"text"` for a string, `0` for a number,
    nothing for a switch, a list or no value; never a Python repr."""
    if flag.shown is not None:
        return flag.shown
    d = flag.default
    if not flag.takes_value or flag.repeat or d is None or d == "" or isinstance(d, bool):
        return ""
    if isinstance(d, str):
        return f'"{d}"'
    if isinstance(d, int):
        return str(d)
    return ""  # any other value needs shown= (tests/unit/test_cli_help.py checks the table)


def described(flag: Flag) -> str:
    """The flag's help, with its default where it has one."""
    default = default_text(flag)
    return f"{flag.help} (default: {default})" if default else flag.help


def usage_lines(flags: "Sequence[Flag]") -> "Iterator[str]":
    """The OPTIONS lines of help: names in one column, padded as runc pads them."""
    names = [spelled(f) for f in flags]
    width = max(map(len, names), default=0) + 2
    for name, f in zip(names, flags):
        yield f"   {name.ljust(width)}{described(f)}"
