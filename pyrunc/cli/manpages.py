"""Man pages from the command table: pyrunc(8) and one pyrunc-<command>(8) per command,
written by `make install` (python -m pyrunc.cli.manpages DIR), so that every flag the
table has, and only those, is documented with the help text `--help` shows."""

import os
import sys

from pyrunc.cli import GLOBAL_FLAGS, commands
from pyrunc.cli.flags import described

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from pyrunc.cli.flags import Flag

SECTION = "8"


def roff(text: str) -> str:
    """Text made safe for a roff line: backslashes and hyphens escaped, a leading dot
    or quote made literal."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in text.split("\n"))


def _flag_items(flags: "Iterable[Flag]") -> list[str]:
    out = []
    for f in flags:
        names = ", ".join(
            f"\\fB{roff(('-' if len(n) == 1 else '--') + n)}\\fR" + (" \\fIvalue\\fR" if f.takes_value else "")
            for n in f.names
        )
        out += [".TP", names, roff(described(f))]
    return out


def _header(name: str, summary: str) -> list[str]:
    from pyrunc import __version__

    return [
        f'.TH {name.upper()} {SECTION} "" "pyrunc {__version__}" "System Administration"',
        ".SH NAME",
        f"{roff(name)} \\- {roff(summary)}",
    ]


def main_page() -> str:
    lines = _header("pyrunc", "an OCI runtime-spec container runtime in Python, compatible with runc")
    lines += [
        ".SH SYNOPSIS",
        ".B pyrunc",
        "[global options] command [command options] [arguments...]",
        ".SH DESCRIPTION",
        "pyrunc creates and runs containers from OCI bundles, with runc's command line.",
        "Each command has its own page, named below.",
        ".SH COMMANDS",
    ]
    for c in commands.COMMANDS.values():
        lines += [".TP", f"\\fB{roff(c.name)}\\fR", f"{roff(c.help)} (\\fBpyrunc\\-{roff(c.name)}\\fR({SECTION}))"]
    lines += [
        ".SH GLOBAL OPTIONS",
        *_flag_items(GLOBAL_FLAGS),
        ".SH SEE ALSO",
        ",\n".join(f"\\fBpyrunc\\-{roff(c)}\\fR({SECTION})" for c in commands.COMMANDS),
    ]
    return "\n".join(lines) + "\n"


def command_page(name: str) -> str:
    c = commands.COMMANDS[name]
    lines = _header(f"pyrunc-{name}", c.help)
    lines += [".SH SYNOPSIS", f"\\fBpyrunc {roff(name)}\\fR [command options] {roff(c.args)}".rstrip()]
    if c.flags:
        lines += [".SH OPTIONS", *_flag_items(c.flags)]
    if name in commands.DETAILS:
        lines += [".SH FORMAT", ".nf", roff(commands.DETAILS[name]), ".fi"]
    lines += [".SH SEE ALSO", f"\\fBpyrunc\\fR({SECTION})"]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """{file name: page text} for every page."""
    out = {f"pyrunc.{SECTION}": main_page()}
    for name in commands.COMMANDS:
        out[f"pyrunc-{name}.{SECTION}"] = command_page(name)
    return out


def write(directory: str) -> list[str]:
    os.makedirs(directory, exist_ok=True)
    for filename, text in pages().items():
        with open(os.path.join(directory, filename), "w") as f:
            f.write(text)
    return sorted(pages())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pyrunc.cli.manpages DIR")
    write(sys.argv[1])
