"""The counter the checkpoint tests run (a shell loop writing its count to a file) read
from the host: its value, a wait until it passes one, its value once it has stopped."""

import time

import pytest


def count(path):
    """The counter's last value in the file at `path`, None while it is being written."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def wait_count(path, above, deadline=120, explain=lambda: ""):
    """Wait until the counter is above `above`; its value then.  `explain`: what a failure
    adds to its message."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        n = count(path)
        if n is not None and n > above:
            return n
        time.sleep(0.1)
    pytest.fail(f"the counter never went above {above} (last {count(path)})\n{explain()}")


def settled_count(path):
    """The counter's value once it has stopped changing (after a dump ended it)."""
    last = None
    for _ in range(120):
        time.sleep(1)
        n = count(path)
        if n is not None and n == last:
            return n
        last = n
    pytest.fail(f"the counter still changes after the checkpoint (last {last})")
