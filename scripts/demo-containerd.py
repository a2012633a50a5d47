"""Run a busybox container through containerd on pyrunc: a private containerd (its own
config, root, state and socket under /tmp, removed afterwards), the offline busybox
image of tests/e2e, and `ctr run --runc-binary <pyrunc>`.

    .venv/bin/python scripts/demo-containerd.py      (as root; `make demo-containerd`)
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.e2e.engines import Containerd  # noqa: E402
from tests.e2e.image import build_image  # noqa: E402

SCRIPT = "echo hello from busybox under containerd, run by pyrunc; echo pid $$; id; hostname"


def main():
    with tempfile.TemporaryDirectory(prefix="pyrunc-demo-") as tmp:
        tar = os.path.join(tmp, "busybox.tar")
        ref = build_image(tar, "pyrunc-demo/busybox:latest")
        engine = Containerd(tar, ref, engine="demo")
        try:
            engine.start()
            argv = engine.ctr_argv("run", "--rm", *engine.runtime_flags, ref, engine.cid("hello"), "sh", "-c", SCRIPT)
            print("$", " ".join(argv), flush=True)
            code = os.spawnvp(os.P_WAIT, argv[0], argv)
            print("pyrunc was called as:", *map(repr, engine.argv.calls()), sep="\n  ")
        finally:
            engine.close()
        return code


if __name__ == "__main__":
    sys.exit(main())
