"""Helpers of the process tests (process.args, user, cwd) that other test files share."""

import os


def run_args(pyrunc, bundle, test_id, args, *flags):
    bundle.config["process"]["args"] = list(args)
    bundle.write()
    r = pyrunc("run", *flags, "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    return r.out


def stat_field(stat_line, number):
    """Field `number` (1-based, as in proc(5)) of /proc/<pid>/stat."""
    rest = stat_line[stat_line.rindex(")") + 2 :].split()
    return rest[number - 3]


def as_user(bundle, uid, gid, **more):
    """Run as a non-root user; the fixture's rootfs directory is 0700, so open it up."""
    os.chmod(bundle.rootfs, 0o755)
    bundle.config["process"]["user"] = {"uid": uid, "gid": gid, **more}


def secret_cwd(bundle):
    """A cwd that root can search and user 1000, the process's user, cannot: a 0700
    directory of root's, with a file in it."""
    as_user(bundle, 1000, 1000)
    secret = os.path.join(bundle.rootfs, "secret")
    os.mkdir(secret, 0o700)
    with open(os.path.join(secret, "file"), "w") as f:
        f.write("x")
    bundle.config["process"]["cwd"] = "/secret"
