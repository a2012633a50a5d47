"""linux.seccomp: a syscall newer than every one the profile names fails with ENOSYS (so
libc falls back to an older call), as under runc; the rest keeps the profile's answers.
Seen from a child that loads the program, and from a static helper in a container,
through `run` and `exec`, beside runc on the same bundle."""

import errno
import os
import shutil
import subprocess

import pytest

from pyrunc.linux import seccomp
from tests.integration.cli_util import runc  # noqa: F401 (a fixture)
from tests.integration.seccomp_probe import NR, probe
from tests.integration.seccomp_profiles import docker_like_profile

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

BEYOND = 1000  # above every syscall number any kernel has yet

HELPER = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Each argument a syscall number: call it with zero arguments, print "nr=errno". */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long r = syscall(strtol(argv[i], NULL, 0), 0L, 0L, 0L, 0L, 0L, 0L);
        printf("%s=%d\n", argv[i], r == -1 ? errno : 0);
    }
    return 0;
}
"""


@pytest.fixture(scope="session")
def nosys(tmp_path_factory):
    """A static binary that makes raw syscalls by number (busybox cannot)."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler to build the static syscall helper")
    d = tmp_path_factory.mktemp("pyrunc-test-nosys")
    (d / "nosys.c").write_text(HELPER)
    r = subprocess.run(
        [gcc, "-static", "-O", "-o", str(d / "nosys"), str(d / "nosys.c")], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot link a static helper (libc's static library missing?): {r.stderr.strip()}")
    return str(d / "nosys")


def profile_with_gaps():
    """Docker's shape (an EPERM default, an allow list of everything but the privileged
    calls), less getppid, and umask answering EXDEV."""
    profile = docker_like_profile()
    profile["syscalls"][0]["names"] = [n for n in profile["syscalls"][0]["names"] if n not in ("getppid", "umask")]
    profile["syscalls"].append({"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EXDEV})
    return profile


CALLS = [BEYOND, NR["getppid"], NR["umask"], NR["getpid"]]
# beyond the profile: ENOSYS; known but unlisted: the default; listed: its action.
EXPECTED = [
    f"{BEYOND}={errno.ENOSYS}",
    f"{NR['getppid']}={errno.EPERM}",
    f"{NR['umask']}={errno.EXDEV}",
    f"{NR['getpid']}=0",
]


def test_a_syscall_beyond_the_profile_is_enosys_in_a_child(tmp_path):
    profile = profile_with_gaps()
    fresh = seccomp.program_for(profile, str(tmp_path))
    cached = seccomp.program_for(profile, str(tmp_path))
    for program in (fresh, cached):
        results, sig = probe(program, [(BEYOND, []), ("getppid", []), ("umask", [0]), ("getpid", [])])
        assert sig == 0 and results[:3] == [[-1, errno.ENOSYS], [-1, errno.EPERM], [-1, errno.EXDEV]]
        assert results[3][0] > 0, results


def _in_container(tool, run_id, bundle, nosys, via):
    """(code, out, err) of the helper through `run`, or through `exec` into a running
    init; `tool(*args)` runs pyrunc or runc and gives (code, out, err)."""
    shutil.copy(nosys, os.path.join(bundle.rootfs, "bin", "nosys"))
    bundle.config["linux"]["seccomp"] = profile_with_gaps()
    argv = ["/bin/nosys", *map(str, CALLS)]
    if via == "run":
        bundle.config["process"]["args"] = argv
        bundle.write()
        return tool("run", "--bundle", bundle.path, run_id)
    bundle.config["process"]["args"] = ["sleep", "1000"]
    bundle.write()
    started = tool("run", "-d", "--bundle", bundle.path, run_id)
    assert started[0] == 0, started
    try:
        return tool("exec", run_id, *argv)
    finally:
        tool("delete", "--force", run_id)


def _triple(pyrunc):
    def call(*args):
        r = pyrunc(*args)
        return r.code, r.out, r.err

    return call


@pytest.mark.parametrize("via", ["run", "exec"])
def test_a_syscall_beyond_the_profile_is_enosys_as_under_runc(
    pyrunc,
    runc,
    bundle,
    test_id,
    nosys,  # noqa: F811
    via,
):
    r = _in_container(_triple(pyrunc), test_id, bundle, nosys, via)
    runc.use(bundle)
    theirs = _in_container(runc, test_id + "-runc", bundle, nosys, via)
    assert theirs[0] == 0 and theirs[1].split() == EXPECTED, theirs  # what runc does
    assert r[0] == 0 and r[1].split() == EXPECTED, r
