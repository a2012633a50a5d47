"""What the kernel takes of a program's path, arguments and environment (PATH_MAX,
NAME_MAX, execve(2)'s limits), and of any string it is given (no NUL, no lone surrogate).

semantic.py checks process.args and env, and the hooks', with these; exec checks only the
args of its command line with `exec_args_problems` when the rest of its process is the
container's own, validated whole at create (exec_in.py): this module imports only the
problems' format, and spares exec the import of the whole validation (a millisecond,
issue 23).
"""

import os

from pyrunc.config import format_problems

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from typing import Any

    Doc = dict[str, Any]  # config.json, or a part of it, as JSON decodes it
    Parts = list[str | int]  # a path in the document: keys and indexes from its root
    Problems = Iterator[tuple[Sequence[str | int], str]]  # (path, message) of each problem found

PATH_MAX = 4096  # bytes with the NUL: a path holds at most 4095
NAME_MAX = 255  # bytes of one path component
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MAX_ARG_STRLEN = 32 * PAGE_SIZE  # execve(2): one argument or environment string, NUL included
ARG_MAX_FLOOR = 131072  # execve(2) always allows this much, whatever the stack limit
ARG_MAX_CEILING = 6 << 20  # ... and never more than 3/4 of _STK_LIM (8 MiB)
EXEC_RESERVE = 2 * PATH_MAX  # the program's resolved path and the HOME the runtime adds


def _byte_len(text: str) -> int:
    # What the kernel will count.  surrogatepass: a lone surrogate is reported by
    # check_strings, and must not crash the checks that only measure.
    return len(text.encode("utf-8", "surrogatepass"))


def _shown(value: object, limit: int = 60) -> str:
    """repr of a value for a message, cut short: a hostile value may be megabytes long."""
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[:limit]) + "..."
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _path_length_problem(path: str, limit: int = PATH_MAX - 1, names: bool = True) -> str | None:
    """Why the kernel would refuse `path` for its length (ENAMETOOLONG), or None.
    `names`: whether NAME_MAX applies to each component (kernfs, cgroupfs, ignores it)."""
    if len(path) <= NAME_MAX and len(path) <= limit and path.isascii():
        return None  # the common case: no component, nor the whole, can be too long
    size = _byte_len(path)
    if size > limit:
        return f"is {size} bytes long; the kernel takes paths of at most {limit} bytes (PATH_MAX)"
    for part in path.split("/") if names else ():
        if _byte_len(part) > NAME_MAX:
            return (
                f"has a component of {_byte_len(part)} bytes ({_shown(part, 20)}); "
                f"the kernel takes at most {NAME_MAX} (NAME_MAX)"
            )
    return None


def _string_problem(text: str) -> str | None:
    if "\0" in text:
        return "contains a NUL byte"  # the kernel would silently cut the string there
    # JSON's \ud800-style escapes decode to lone surrogates, which no encoding to bytes
    # for a system call can carry.
    if text.isascii():
        return None
    try:
        text.encode("utf-8")  # fails on a surrogate and only there
    except UnicodeEncodeError as e:
        return f"contains {text[e.start]!r}, a lone UTF-16 surrogate, which is not a character"
    return None


def _stack_limit(rlimits: "Iterable[Doc] | None") -> int:
    """The RLIMIT_STACK soft limit the program will be executed under."""
    for rlimit in rlimits or ():
        if rlimit["type"] == "RLIMIT_STACK":
            soft: int = rlimit["soft"]
            return soft
    import resource

    soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
    return 2**64 - 1 if soft == resource.RLIM_INFINITY else soft


def _exec_problems(
    args: "Iterable[str]", env: "Iterable[str]", parts: "Parts", rlimits: "Iterable[Doc] | None"
) -> "Problems":
    """What execve(2) would refuse with E2BIG: a string over MAX_ARG_STRLEN, or argv and
    envp (strings, NULs and pointers) over a quarter of the stack limit (fs/exec.c), the
    limit `rlimits` set or the runtime's own."""
    sizes: dict[str, int] = {}
    for key, strings in (("args", args), ("env", env)):
        sizes[key] = 0
        for i, text in enumerate(strings):
            size = _byte_len(text)
            if size >= MAX_ARG_STRLEN:
                yield (
                    parts + [key, i],
                    (f"is {size} bytes long; execve(2) takes strings of at most {MAX_ARG_STRLEN - 1} bytes"),
                )
            sizes[key] += size + 1 + 8  # the NUL, and the pointer to it
    used = sizes["args"] + sizes["env"] + EXEC_RESERVE
    if used <= ARG_MAX_FLOOR:
        return  # execve allows this much whatever the limit: no need to look it up
    space = max(min(ARG_MAX_CEILING, _stack_limit(rlimits) // 4), ARG_MAX_FLOOR)
    if used > space:
        larger = max(sizes, key=sizes.__getitem__)
        yield (
            parts + [larger],
            (
                f"args and env need {used} bytes with their pointers; execve(2) "
                f"takes at most {space} (a quarter of the stack limit, at most 6 MiB)"
            ),
        )


def _program_problems(args: "Sequence[str] | None") -> "Problems":
    """process.args: a program to run, its path one the kernel takes."""
    if not args:
        yield ["process", "args"], "must have at least one entry, the program to run"
    elif not args[0]:
        yield ["process", "args", 0], "the program to run must not be empty"
    elif problem := _path_length_problem(args[0]):
        yield ["process", "args", 0], "the program to run " + problem


def exec_args_problems(process: "Doc") -> list[str]:
    """The problems of process.args alone, as `path: message` lines (the paths are
    process.args and its entries): what semantic.py and the schema find in them, the
    rest of the process being valid."""
    args = process["args"]
    found = list(_program_problems(args))
    for i, arg in enumerate(args):
        problem = _string_problem(arg)
        if problem:
            found.append((["process", "args", i], problem))
    found += _exec_problems(args, process.get("env") or (), ["process"], process.get("rlimits"))
    return format_problems(found)  # sorted as the whole validation sorts them: exec names the first
