"""Signals: names and numbers as runc takes them, and `run`'s forwarding and exit status."""

import os
import signal
import time

import pytest

from pyrunc import run
from pyrunc.errors import UsageError
from pyrunc.linux.signals import parse_signal


@pytest.mark.parametrize(
    "text,number",
    [
        ("KILL", 9),
        ("SIGKILL", 9),
        ("kill", 9),
        ("sigkill", 9),
        ("9", 9),
        ("15", 15),
        ("TERM", 15),
        ("SIGUSR1", 10),
        ("usr2", 12),
        ("HUP", 1),
        ("0", 0),
        ("SIGIOT", 6),
        ("SIGRTMIN", signal.SIGRTMIN),
        ("RTMIN+3", signal.SIGRTMIN + 3),
        ("SIGRTMAX-2", signal.SIGRTMAX - 2),
        ("sigrtmax", signal.SIGRTMAX),
    ],
)
def test_signal_names_and_numbers(text, number):
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", ["SIGFOO", "", "65", "-9", "+9", "SIGRTMIN-1", "RTMAX+1", "SIGRTMIN+x", "KILL9"])
def test_bad_signals_are_usage_errors(text):
    with pytest.raises(UsageError, match="invalid signal"):
        parse_signal(text)


@pytest.mark.parametrize(
    "make_status,expected",
    [
        (lambda: os._exit(0), 0),
        (lambda: os._exit(3), 3),
        (lambda: os.kill(os.getpid(), signal.SIGKILL), 137),
        (lambda: os.kill(os.getpid(), signal.SIGTERM), 143),
    ],
)
def test_exit_status_is_the_childs_or_128_plus_signal(make_status, expected):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        make_status()
        os._exit(99)
    _, wstatus = os.waitpid(pid, 0)
    assert run._status(wstatus) == expected


def test_forwarder_passes_our_signals_to_the_container_and_restores_handlers():
    before = signal.getsignal(signal.SIGUSR1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        signal.signal(signal.SIGUSR1, lambda *a: os._exit(42))
        os.write(w, b"x")
        while True:
            time.sleep(1)
    os.close(w)
    assert os.read(r, 1) == b"x"  # the child's handler is in place
    os.close(r)
    fwd = run._Forwarder(pid)
    fwd.install()
    try:
        forwarded = set(fwd.saved)
        os.kill(os.getpid(), signal.SIGUSR1)  # to us; the handler sends it on
        _, wstatus = os.waitpid(pid, 0)
    finally:
        fwd.restore()
    assert os.WIFEXITED(wstatus) and os.WEXITSTATUS(wstatus) == 42
    assert signal.getsignal(signal.SIGUSR1) == before
    assert {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2} <= forwarded
    assert not forwarded & {signal.SIGCHLD, signal.SIGKILL, signal.SIGSTOP, signal.SIGWINCH}


def test_every_name_of_the_table_parses_to_its_number_and_no_other_does():
    from pyrunc.linux import signals

    table = signals.names()
    assert table["SIGKILL"] == 9 and table["SIGIOT"] == table["SIGABRT"]
    for name, num in table.items():
        assert signals.parse_signal(name) == num
        assert signals.parse_signal(name[3:].lower()) == num
    for bad in ("SIG_IGN", "_DFL", "SIGRTFOO", "SIG", "NSIG", "ITIMER_REAL"):
        with pytest.raises(UsageError, match="unknown signal name"):
            signals.parse_signal(bad)
