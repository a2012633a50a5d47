"""A container given the host's /dev/null as stdio (conmon's stdin for a container without
one) gets its own /dev/null in its place, as with runc: CRIU cannot checkpoint a file of a
mount outside the container (docs/checkpoint.md)."""

import subprocess

SHOW = "stat -L -c %d:%i /proc/self/fd/0; stat -L -c %d:%i /proc/self/fd/2; stat -c %d:%i /dev/null"


def test_the_host_dev_null_as_stdio_becomes_the_containers(pyrunc, bundle, test_id, tmp_path):
    bundle.config["process"]["args"] = ["sh", "-c", SHOW]
    bundle.write()
    out = tmp_path / "out"
    command = pyrunc.command or [pyrunc.interpreter, "-m", "pyrunc"]
    with open("/dev/null", "rb") as null_in, open("/dev/null", "wb") as null_err, open(out, "wb") as f:
        code = subprocess.call(
            [*command, "--root", pyrunc.root, "run", "--bundle", bundle.path, test_id],
            stdin=null_in,
            stdout=f,
            stderr=null_err,
            timeout=120,
        )
    assert code == 0
    stdin, stderr, own = out.read_text().split()
    assert stdin == own and stderr == own  # the container's /dev/null, not the host's


def test_other_stdio_is_left_as_given(pyrunc, bundle, test_id, tmp_path):
    bundle.config["process"]["args"] = ["sh", "-c", "read line; echo got $line"]
    bundle.write()
    r = subprocess.run(
        [
            *(pyrunc.command or [pyrunc.interpreter, "-m", "pyrunc"]),
            "--root",
            pyrunc.root,
            "run",
            "-b",
            bundle.path,
            test_id,
        ],
        input=b"hello\n",
        capture_output=True,
        timeout=120,
    )
    assert (r.returncode, r.stdout) == (0, b"got hello\n")
