"""`run`: create + start, and in the foreground wait for the container, forwarding
signals to it and returning its exit status (128+N when killed by signal N)."""

import _signal as signal  # signal.py would import enum
import os

from pyrunc import lifecycle, log
from pyrunc.linux import kernel

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType
    from typing import Any

    from pyrunc.linux import Seams
    from pyrunc.linux.kernel import Kernel
    from pyrunc.options import CreateOptions
    from pyrunc.store import Store

# Every signal but those that cannot be caught or that concern us alone.
_NOT_FORWARDED = {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGCHLD,
    signal.SIGURG,
    signal.SIGWINCH,
    signal.SIGPIPE,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGTSTP,
}


def run(
    store: "Store",
    cid: str,
    opts: "CreateOptions",
    seams: "Seams",
    detach: bool = False,
    keep: bool = False,
    warn: "Callable[[str], None] | None" = None,
    subreaper: bool = True,
) -> int:
    """`opts`: an options.CreateOptions; `seams`: the command's linux.Seams.  `subreaper`
    False (--no-subreaper): once the init is our child, what the container orphans later
    (with no pid namespace of its own) goes to the host's reaper, not to us."""
    if detach:
        with log.step("create"):
            lifecycle.create(store, cid, opts, seams)
        try:
            with log.step("start"):
                lifecycle.start(store, cid, seams)
        except BaseException:
            _cleanup(store, cid, warn, seams)
            raise
        return 0
    # As subreaper the container's init becomes our child once the first child exits,
    # so we can wait for it and learn its exit status.
    seams.kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 1)
    with log.step("create"):
        st, spawned = lifecycle.create(store, cid, opts.replace(foreground=True), seams)
    if not subreaper:
        # create has reaped the init's first parent: the init is ours already, as runc's
        # is (it clones it with CLONE_PARENT).
        seams.kernel.prctl(kernel.PR_SET_CHILD_SUBREAPER, 0)
    try:
        start = lambda: lifecycle.start(store, cid, seams)
        status = wait_in_foreground(spawned.pid, spawned.console, seams.kernel, start)
    except BaseException:
        _cleanup(store, cid, warn, seams)
        raise
    if not keep:
        _cleanup(store, cid, warn, seams)
    return status


def wait_in_foreground(pid: int, console: int | None, k: "Kernel", start: "Callable[[], object] | None" = None) -> int:
    """Forward our signals to `pid` (after `start()`, if given), wait for it and return
    its status; with a pty master, wire it to our own terminal meanwhile."""
    forward = _Forwarder(pid)
    forward.install()
    try:
        if start is not None:
            with log.step("start"):
                start()
        from pyrunc.cli import gc_for_wait

        gc_for_wait()  # off until now (cli.GC_AT_WAIT): a foreground wait may be long
        with log.step("wait for exit"):
            if console is not None:
                return _proxy_terminal(console, pid, k)
            return _wait(pid)
    finally:
        forward.restore()


def _cleanup(store: "Store", cid: str, warn: "Callable[[str], None] | None", seams: "Seams") -> None:
    try:
        with log.step("delete"):
            lifecycle.delete(store, cid, seams, force=True, warn=warn)
    except Exception as e:  # the container is gone either way; say why cleanup failed
        if warn:
            warn(f"delete {cid}: {e}")


class _Forwarder:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.saved: dict[int, Any] = {}

    def _forward(self, signum: int, frame: "FrameType | None") -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def install(self) -> None:
        for sig in range(1, signal.NSIG):
            if sig in _NOT_FORWARDED:
                continue
            try:
                self.saved[sig] = signal.signal(sig, self._forward)
            except (OSError, ValueError):
                pass

    def restore(self) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        self.saved.clear()


def _status(wstatus: int) -> int:
    if os.WIFSIGNALED(wstatus):
        return 128 + os.WTERMSIG(wstatus)
    return os.WEXITSTATUS(wstatus)


def _wait(pid: int) -> int:
    """Wait for the init; reap any other orphan handed to us as subreaper on the way."""
    while True:
        try:
            got, wstatus = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if got == pid:
            return _status(wstatus)


def _proxy_terminal(master: int, pid: int, k: "Kernel") -> int:
    """Copy our stdin to the pty and the pty to our stdout until the container exits."""
    import select
    import termios
    import tty

    from pyrunc.linux import terminal

    stdin_tty = os.isatty(0)
    saved = termios.tcgetattr(0) if stdin_tty else None
    if stdin_tty:
        tty.setraw(0, termios.TCSANOW)  # not TCSAFLUSH: keep what was typed ahead
        terminal.copy_size(0, master)
        signal.signal(signal.SIGWINCH, lambda s, f: terminal.copy_size(0, master))
    pidfd = k.pidfd_open(pid)
    fds = [master, pidfd, 0]
    try:
        while True:
            try:
                ready, _, _ = select.select(fds, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if data:
                    _write_all(1, data)
                else:
                    fds.remove(master)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    _write_all(master, data)
                else:
                    fds.remove(0)
            if pidfd in ready:
                _drain(master)
                return _wait(pid)
    finally:
        os.close(pidfd)
        os.close(master)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _drain(master: int) -> None:
    """Copy what the container wrote before it exited.  The pty hands the slave's output
    to the master asynchronously, so wait for EIO (every slave fd closed) rather than
    stop at the first empty poll; a second without output ends it all the same, should a
    process outside a pid namespace keep the slave open."""
    import select

    while select.select([master], [], [], 1.0)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        if not data:
            return
        _write_all(1, data)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]
