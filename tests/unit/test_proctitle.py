"""Kernel.set_cmdline: the argument area rewritten in place, cut where it does not fit."""

import subprocess
import sys

CHILD = """
import os, sys
from pyrunc.linux import kernel
kernel.Kernel().set_cmdline(os.environ["WORDS"].split())
with open("/proc/self/cmdline", "rb") as f:
    sys.stdout.buffer.write(f.read())
"""


def _run(words, *args):
    """The child's /proc/self/cmdline once it has set `words` (given in the environment,
    so that they are not in its argument area already)."""
    return subprocess.run(
        [sys.executable, "-c", CHILD, *args], capture_output=True, check=True, env={"WORDS": words}
    ).stdout


def test_cmdline_reads_the_new_arguments_then_zeros():
    area = _run("pyrunc state abc", "padding-the-area-out")
    assert area.rstrip(b"\0").split(b"\0") == [b"pyrunc", b"state", b"abc"]
    assert area.endswith(b"\0")


def test_arguments_longer_than_the_area_are_cut_and_still_end_in_nul():
    words = " ".join(["x" * 100] * 100)  # 10 kB: longer than this child's own arguments
    area = _run(words)
    assert area.endswith(b"\0") and area.startswith(b"x" * 100 + b"\0")
    assert len(area) < len(words)
