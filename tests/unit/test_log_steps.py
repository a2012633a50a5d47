"""log.step without a trace: the steps a failure left, for the --log error line
(pyrunc/log.py last_steps)."""

import pytest

from pyrunc import log
from pyrunc.errors import ContainerError


@pytest.fixture(autouse=True)
def fresh_steps(monkeypatch):
    monkeypatch.setattr(log, "_open", [])
    monkeypatch.setattr(log, "_failure", None)
    monkeypatch.setattr(log, "_child_steps", ())


def fail_in(*names, wrap=False):
    """Raise from the innermost of nested steps `names`; with wrap, re-raise outside the
    innermost one as `raise ... from None`, as lifecycle.create does."""

    def inner(rest):
        if not rest:
            raise ContainerError(None, "boom")
        with log.step(rest[0]):
            inner(rest[1:])

    try:
        with log.step(names[0]):
            try:
                inner(names[1:])
            except ContainerError as e:
                if not wrap:
                    raise
                raise ContainerError("create x", str(e)) from None
    except ContainerError:
        pass


def test_the_steps_open_where_the_failure_was_raised():
    fail_in("create", "spawn", "set cgroup limits")
    assert log.last_steps() == "create > spawn > set cgroup limits"
    assert log._open == []


def test_a_wrapped_failure_keeps_the_steps_of_its_cause():
    fail_in("create", "spawn", "warm up cgroup", wrap=True)
    assert log.last_steps() == "create > spawn > warm up cgroup"


def test_a_later_failure_elsewhere_replaces_a_handled_one():
    fail_in("create", "spawn", "warm up cgroup")  # handled: the command went on
    fail_in("delete", "remove cgroup")
    assert log.last_steps() == "delete > remove cgroup"


def test_a_failure_in_the_command_s_own_step_adds_nothing():
    fail_in("state")
    assert log.last_steps() == ""
    with log.step("start"):
        pass
    assert log.last_steps() == "" and log._open == []


def test_the_container_process_s_last_steps_follow():
    log.child_failed("init", ["mount /proc", "mount /dev", "mount /sys", "mount /missing"])
    fail_in("create", "spawn")
    assert log.last_steps() == "create > spawn; init: mount /dev > mount /sys > mount /missing"
