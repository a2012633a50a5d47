"""`podman container checkpoint` and `podman container restore` with pyrunc as podman's
runtime (tests/e2e's private podman: own storage, runroot and config under /tmp, the busybox
image built offline by tests/e2e/image.py): a counter checkpointed and restored by podman
counts on from where it was.  It counts into a bind-mounted directory of the test's, which
the test reads directly."""

import os
import time

import pytest

from tests.checkpoint.counter import count, settled_count, wait_count
from tests.e2e.engines import PODMAN_NEEDS, Podman
from tests.e2e.harness import engine_fixture, skip_reason
from tests.e2e.image import build_image

SKIP = skip_reason("podman", PODMAN_NEEDS)
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /data/count; sleep 0.2; done"


@pytest.fixture(scope="module")
def pm(tmp_path_factory):
    tar = str(tmp_path_factory.mktemp("image") / "busybox.tar")
    ref = build_image(tar, "e2e/busybox:latest")
    engine = Podman(tar, ref)
    # Under a read-only filesystem (in the guest, the host's / but for its tmpfs) no podman
    # of ours can make a path; one that shows up there is the host's (another run's podman,
    # seen through 9p), not this engine's to clean up.
    engine.host_paths.created = [(m, p) for m, p in engine.host_paths.created if not _read_only(p)]
    yield from engine_fixture(engine)


def _read_only(path):
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY)


def test_podman_checkpoint_and_restore_a_counter(pm, tmp_path):
    name = pm.cname("counter")
    data = str(tmp_path / "data")
    os.mkdir(data)
    counter = os.path.join(data, "count")
    r = pm.podman(
        "run", "-d", "--name", name, "-v", f"{data}:/data", *pm.run_flags, pm.image, "sh", "-c", COUNTER, timeout=180
    )
    assert r.rc == 0, f"{r!r}\n{pm.explain()}"
    wait_count(counter, 10, 180, pm.explain)

    r = pm.podman("container", "checkpoint", name, timeout=300)
    assert r.rc == 0, f"{r!r}\n{pm.explain()}"
    r = pm.podman("inspect", "-f", "{{.State.Status}} {{.State.Checkpointed}}", name)
    assert r.lines[-1:] == ["exited true"], f"{r!r}\n{pm.explain()}"
    assert any(c.command == "checkpoint" for c in pm.argv.calls()), pm.argv.summary()
    saved = settled_count(counter)

    r = pm.podman("container", "restore", name, timeout=300)
    assert r.rc == 0, f"{r!r}\n{pm.explain()}"
    assert any(c.command == "restore" for c in pm.argv.calls()), pm.argv.summary()
    r = pm.podman("inspect", "-f", "{{.State.Status}} {{.State.Restored}}", name)
    assert r.lines[-1:] == ["running true"], f"{r!r}\n{pm.explain()}"
    # The restored counter's first write follows the value it had (a counter started
    # again would write 1).
    end = time.monotonic() + 180
    while (n := count(counter)) in (saved, None) and time.monotonic() < end:
        time.sleep(0.05)
    assert n is not None and n > saved, (n, saved, pm.explain())
    assert wait_count(counter, n, 180, pm.explain) > n
    r = pm.podman("rm", "-f", "-t", "0", name, timeout=120)
    assert r.rc == 0, f"{r!r}\n{pm.explain()}"
