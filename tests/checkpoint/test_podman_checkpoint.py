"""`podman container checkpoint` and `podman container restore` with pyrunc as podman's
runtime (tests/e2e's private podman: own storage, runroot and config under /tmp, the busybox
image built offline by tests/e2e/image.py): a counter checkpointed and restored by podman
counts on from where it was."""

import time

import pytest

from tests.e2e.engines import PODMAN_NEEDS, Podman
from tests.e2e.harness import engine_fixture, skip_reason
from tests.e2e.image import build_image

SKIP = skip_reason("podman", PODMAN_NEEDS)
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.2; done"


@pytest.fixture(scope="module")
def pm(tmp_path_factory):
    tar = str(tmp_path_factory.mktemp("image") / "busybox.tar")
    ref = build_image(tar, "e2e/busybox:latest")
    yield from engine_fixture(Podman(tar, ref))


def count(pm, name):
    """The counter's value read through podman exec, None when unreadable."""
    r = pm.podman("exec", name, "cat", "/tmp/count", timeout=120)
    text = r.lines[-1].strip() if r.rc == 0 and r.lines else ""
    return int(text) if text.isdigit() else None


def wait_count(pm, name, above, deadline=180):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        n = count(pm, name)
        if n is not None and n > above:
            return n
        time.sleep(0.5)
    pytest.fail(f"the counter never went above {above}\n{pm.explain()}")


def test_podman_checkpoint_and_restore_a_counter(pm):
    name = pm.cname("counter")
    r = pm.podman("run", "-d", "--name", name, *pm.run_flags, pm.image, "sh", "-c", COUNTER, timeout=180)
    assert r.rc == 0, f"{r!r}\n{pm.explain()}"
    wait_count(pm, name, 2)

    r = pm.podman("container", "checkpoint", name, timeout=300)
    assert r.rc == 0, f"{r!r}\n{pm.explain()}"
    r = pm.podman("inspect", "-f", "{{.State.Status}} {{.State.Checkpointed}}", name)
    assert r.lines[-1:] == ["exited true"], f"{r!r}\n{pm.explain()}"
    assert any(c.command == "checkpoint" for c in pm.argv.calls()), pm.argv.summary()

    r = pm.podman("container", "restore", name, timeout=300)
    assert r.rc == 0, f"{r!r}\n{pm.explain()}"
    assert any(c.command == "restore" for c in pm.argv.calls()), pm.argv.summary()
    r = pm.podman("inspect", "-f", "{{.State.Status}} {{.State.Restored}}", name)
    assert r.lines[-1:] == ["running true"], f"{r!r}\n{pm.explain()}"
    # The restored container counts on from the value it had, not from 1: the counter's
    # file is in the container's rootfs, which podman keeps between the two.
    saved = count(pm, name)
    assert saved is not None and saved > 2, saved
    assert wait_count(pm, name, saved) > saved
    r = pm.podman("rm", "-f", "-t", "0", name, timeout=120)
    assert r.rc == 0, f"{r!r}\n{pm.explain()}"
