"""Bash completion from the command table, written by `make install`
(python -m pyrunc.cli.completion FILE): the commands, each command's flags and the
global flags as the parser knows them, container ids from `pyrunc list -q`, and file
names for a flag's value."""

import sys

from pyrunc.cli import GLOBAL_FLAGS, commands

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from pyrunc.cli.flags import Flag


def _spellings(flags: "Iterable[Flag]") -> str:
    return " ".join(("-" if len(n) == 1 else "--") + n for f in flags for n in f.names)


def _valued(flags: "Iterable[Flag]") -> str:
    return "|".join(("-" if len(n) == 1 else "--") + n for f in flags if f.takes_value for n in f.names)


def script() -> str:
    names = " ".join([*commands.COMMANDS, "help"])
    cases = []
    for c in commands.COMMANDS.values():
        takes_id = "1" if c.args.startswith("<container-id>") else ""
        cases.append(
            f'        {c.name}) flags="{_spellings(c.flags)}"; valued="{_valued(c.flags) or "-"}"; '
            f"ids={takes_id or '0'} ;;"
        )
    case_block = "\n".join(cases)
    return f"""# bash completion for pyrunc, generated from its command table (pyrunc/cli/completion.py)
_pyrunc() {{
    local cur=${{COMP_WORDS[COMP_CWORD]}} prev=${{COMP_WORDS[COMP_CWORD-1]}}
    local i w cmd="" at=0 root=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${{COMP_WORDS[i]}}
        case $w in
            --root|-root) root=${{COMP_WORDS[i+1]}}; ((i++)) ;;
            --root=*|-root=*) root=${{w#*=}} ;;
            {_valued(GLOBAL_FLAGS)}) ((i++)) ;;
            -*) ;;
            *) cmd=$w; at=$i; break ;;
        esac
    done
    COMPREPLY=()
    if [[ -z $cmd ]]; then
        case $prev in
            {_valued(GLOBAL_FLAGS)}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        esac
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "{_spellings(GLOBAL_FLAGS)}" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "{names}" -- "$cur"))
        fi
        return
    fi
    local flags="" valued="-" ids=0
    case $cmd in
{case_block}
        help|h) COMPREPLY=($(compgen -W "{" ".join(commands.COMMANDS)}" -- "$cur")); return ;;
    esac
    if [[ -n $prev && $prev == -* ]] && [[ "|$valued|" == *"|$prev|"* ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags --help" -- "$cur"))
    elif ((ids)); then
        local n=0
        for ((i = at + 1; i < COMP_CWORD; i++)); do
            w=${{COMP_WORDS[i]}}
            if [[ $w == -* ]]; then
                [[ "|$valued|" == *"|$w|"* ]] && ((i++))
            else
                ((n++))
            fi
        done
        if ((n == 0)); then
            COMPREPLY=($(compgen -W "$(pyrunc ${{root:+--root "$root"}} list -q 2>/dev/null)" -- "$cur"))
        fi
    fi
}}
complete -F _pyrunc pyrunc
"""


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pyrunc.cli.completion FILE")
    with open(sys.argv[1], "w") as f:
        f.write(script())
