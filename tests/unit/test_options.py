"""The typed options the CLI builds for create, run and exec (pyrunc/options.py): every
flag of those commands has its field, and nothing changes them once built."""

import pytest

from pyrunc.cli import commands, containers
from pyrunc.cli.flags import parse
from pyrunc.options import CreateOptions, ExecOptions


def test_every_exec_flag_is_a_field_and_its_value_arrives():
    flags, pos = parse(
        [
            "--tty",
            "--cwd",
            "/w",
            "-e",
            "A=1",
            "--cap",
            "CAP_KILL",
            "--preserve-fds",
            "2",
            "--cgroup",
            "pids:x",
            "--ignore-paused",
            "c1",
            "sh",
        ],
        commands.EXEC_FLAGS,
        "exec",
        stop_at_positional=True,
    )
    opts = ExecOptions.from_flags(flags)
    assert set(flags) == set(ExecOptions.__slots__), set(flags) ^ set(ExecOptions.__slots__)
    assert (opts.tty, opts.cwd, list(opts.env), list(opts.cap), opts.preserve_fds) == (
        True,
        "/w",
        ["A=1"],
        ["CAP_KILL"],
        2,
    )
    assert list(opts.cgroup) == ["pids:x"] and opts.ignore_paused and not opts.detach
    assert pos == ["c1", "sh"]


def test_create_and_run_flags_are_fields_with_the_global_ones():
    run_flags = commands.COMMANDS["run"].flags
    flags, _ = parse(["--bundle", "/b", "--pid-file", "/p", "--no-pivot", "c1"], run_flags, "run")
    g = {"systemd_cgroup": True, "rootless": "AUTO"}
    opts = containers._create_opts(g, flags)
    # Every create flag has its field; run's own (detach, keep, no_subreaper) are run's.
    assert {f.dest for f in commands.CREATE_FLAGS} <= set(CreateOptions.__slots__)
    assert (opts.bundle, opts.pid_file, opts.no_pivot, opts.systemd_cgroup, opts.rootless) == (
        "/b",
        "/p",
        True,
        True,
        "auto",
    )
    assert not opts.foreground and opts.replace(foreground=True).foreground
    assert containers._create_opts(g, parse(["c1"], run_flags, "run")[0]).bundle == "."


def test_options_are_frozen_and_refuse_unknown_fields():
    opts = CreateOptions(bundle="/b")
    with pytest.raises(AttributeError):
        opts.bundle = "/elsewhere"
    with pytest.raises(TypeError):
        ExecOptions(detached=True)


def test_the_terminal_rules_and_the_fd_check_are_one_each_in_each_commands_words():
    from pyrunc.errors import UsageError

    cases = [
        (
            CreateOptions(),
            True,
            False,
            "cannot allocate a tty without --console-socket when detached (process.terminal is true)",
        ),
        (
            CreateOptions(console_socket="/s"),
            False,
            False,
            "--console-socket needs process.terminal set to true in config.json",
        ),
        (ExecOptions(), True, False, "cannot allocate a tty without --console-socket when detached"),
        (
            ExecOptions(console_socket="/s"),
            False,
            True,
            "--console-socket needs a tty (--tty, or terminal in the process)",
        ),
    ]
    for opts, terminal, foreground, why in cases:
        with pytest.raises(UsageError) as e:
            opts.check_terminal(terminal, foreground)
        assert str(e.value) == why
    CreateOptions().check_terminal(True, True)  # a foreground run keeps the pty
    ExecOptions(console_socket="/s").check_terminal(True, False)
    with pytest.raises(UsageError) as e:
        ExecOptions(preserve_fds=-1).check_preserve_fds()
    assert str(e.value) == "--preserve-fds must not be negative, got -1"
