"""An OSError may carry no errno (OSError("text")); os.strerror(None) would raise a
TypeError in place of the runtime's error.  mypy found these (issue 20)."""

import subprocess

import pytest

from pyrunc.config import model
from pyrunc.errors import ContainerError
from pyrunc.linux import hooks, seccomp, unix


def test_a_hook_that_cannot_start_names_the_reason_without_an_errno(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("no errno here")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    hook = model.Hook(path="/bin/true", args=(), env=(), timeout=None)
    with pytest.raises(ContainerError) as e:
        hooks.run_hook("prestart", 0, hook, {"bundle": "/"}, cwd="/")
    assert str(e.value) == "prestart hook #0 (/bin/true): no errno here"


class _Refusing:
    def connect(self, path):
        raise OSError("no errno here")

    def close(self):
        pass


def test_a_seccomp_listener_that_cannot_be_reached_names_the_reason_without_an_errno(monkeypatch):
    monkeypatch.setattr(unix, "socket", lambda *a, **k: _Refusing())
    with pytest.raises(ContainerError) as e:
        seccomp.send_to_listener("/run/listener.sock", 0, {})
    assert str(e.value) == "send the seccomp fd to listenerPath /run/listener.sock: no errno here"


def test_the_reason_of_an_oserror_with_an_errno_is_its_strerror():
    assert seccomp._reason(OSError(2, "ignored")) == "no such file or directory"
