"""Lifecycle hooks: each run with the container's state JSON on stdin (config.md, "Hooks")."""

import os

from pyrunc import jsonc, log
from pyrunc.errors import ContainerError

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable, Iterable, Iterator

    from pyrunc.config.model import Hook, Hooks, JsonObject

# config.json names of the hook lists, with the attribute of model.Hooks holding each.
KINDS = {
    "prestart": "prestart",
    "createRuntime": "create_runtime",
    "createContainer": "create_container",
    "startContainer": "start_container",
    "poststart": "poststart",
    "poststop": "poststop",
}


BUNDLE = "bundle"  # run_hook's cwd: the bundle (the runtime's hooks)


def run_hook(kind: str, index: int, hook: "Hook", state: "JsonObject", cwd: str | None = BUNDLE) -> None:
    """Run one hook with `state` as JSON on stdin; a failure raises ContainerError.

    argv is the hook's `args` as given (args[0] included), the environment exactly its
    `env`; `timeout` kills it when passed.  The working directory is runc's: the bundle
    for the hooks the runtime runs, the rootfs for createContainer, the process's cwd for
    startContainer (None: ours).
    """
    with log.step(f"hook {kind} #{index} {hook.path}"):
        _run_hook(kind, index, hook, state, cwd)


def _run_hook(kind: str, index: int, hook: "Hook", state: "JsonObject", cwd: str | None) -> None:
    import subprocess

    what = f"{kind} hook #{index} ({hook.path})"
    argv = list(hook.args) or [hook.path]
    if cwd is BUNDLE:
        cwd = state.get("bundle") if os.path.isdir(state.get("bundle") or "") else "/"
    try:
        # Its own process group, so that a timeout kills what the hook started too.
        proc = subprocess.Popen(
            argv,
            executable=hook.path,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=dict(_env(hook.env)),
            close_fds=True,
            cwd=cwd,
            process_group=0,
        )
    except OSError as e:
        # errno may be None, which os.strerror refuses (a TypeError in place of the error).
        raise ContainerError(what, os.strerror(e.errno).lower() if e.errno is not None else str(e)) from None
    log.traced_process("hook", proc.pid, argv)
    try:
        _, err = proc.communicate(jsonc.dumps(state, compact=False).encode(), timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise ContainerError(what, f"timed out after {hook.timeout}s") from None
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip().splitlines()
        status = f"exit status {proc.returncode}" if proc.returncode > 0 else f"killed by signal {-proc.returncode}"
        raise ContainerError(what, status + (f": {detail[-1]}" if detail else ""))


def _kill_group(proc: "subprocess.Popen[bytes]") -> None:
    import _signal as signal  # signal.py would import enum

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _env(entries: "Iterable[str]") -> "Iterator[tuple[str, str]]":
    for entry in entries:
        key, _, value = entry.partition("=")
        yield key, value


def run_hooks(kind: str, hooks: "Hooks", state: "JsonObject", cwd: str | None = BUNDLE) -> None:
    """Run one kind of hooks in order; the first failure raises ContainerError."""
    for i, hook in enumerate(getattr(hooks, KINDS[kind])):
        run_hook(kind, i, hook, state, cwd)


def run_hooks_warn(kind: str, hooks: "Hooks", state: "JsonObject", warn: "Callable[[str], object]") -> None:
    """poststop: a failing hook is a warning and the rest still run (runtime.md step 13)."""
    for i, hook in enumerate(getattr(hooks, KINDS[kind])):
        try:
            run_hook(kind, i, hook, state)
        except ContainerError as e:
            warn(str(e))
