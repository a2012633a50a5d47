"""pyrunc run as a test user: its commands, and busybox bundles the user owns."""

import json
import os
import subprocess
import uuid

from tests.conftest import Result, make_rootfs


class UserPyrunc:
    """The pyrunc any user can run, run as `user` with its own environment, and its
    default state root ($XDG_RUNTIME_DIR/pyrunc) unless a test gives --root.  Output goes
    through files, as for tests/conftest.py's Pyrunc: a created container holds stdio."""

    def __init__(self, user, command):
        self.user = user
        self.command = command
        self.log = os.path.join(user.home, "pyrunc.log")

    def __call__(self, *args, env=None, timeout=60, stdin=subprocess.DEVNULL, extra=()):
        out_path = os.path.join(self.user.home, f".out-{uuid.uuid4().hex}")
        with open(out_path, "w+b") as out, open(out_path + ".err", "w+b") as err:
            code = self.user.run(
                [self.command, "--log", self.log, *extra, *args],
                env=env,
                timeout=timeout,
                stdin=stdin,
                stdout=out,
                stderr=err,
                text=False,
            ).returncode
            out.seek(0)
            err.seek(0)
            r = Result(code, out.read().decode(errors="replace"), err.read().decode(errors="replace"))
        os.unlink(out_path)
        os.unlink(out_path + ".err")
        return r

    def state(self, cid):
        r = self("state", cid)
        assert r.code == 0, r
        return json.loads(r.out)

    def clean(self):
        """Force-delete, as the user, whatever a test left in the user's default root."""
        root = os.path.join(self.user.runtime_dir, "pyrunc")
        if os.path.isdir(root):
            for cid in os.listdir(root):
                if not cid.startswith("~"):
                    self("delete", "--force", cid)


def chown_tree(path, uid, gid):
    for top, dirs, files in os.walk(path):
        for name in [top, *(os.path.join(top, n) for n in dirs + files)]:
            os.lchown(name, uid, gid)


class UserBundle:
    """A busybox bundle in the user's home, owned by the user; config.json is what
    `pyrunc spec --rootless` wrote, as the user, with terminal off and the given args."""

    def __init__(self, user, pyrunc, args=("true",), name="bundle"):
        self.user = user
        self.path = os.path.join(user.home, name)
        self.rootfs = os.path.join(self.path, "rootfs")
        os.mkdir(self.path)
        make_rootfs(self.rootfs)
        chown_tree(self.path, user.uid, user.gid)
        r = pyrunc("spec", "--rootless", "--bundle", self.path)
        assert r.code == 0, r
        with open(os.path.join(self.path, "config.json")) as f:
            self.config = json.load(f)
        self.config["process"]["terminal"] = False
        self.config["process"]["args"] = list(args)
        self.config["root"]["readonly"] = False  # tests write into their rootfs
        self.write()

    def write(self):
        path = os.path.join(self.path, "config.json")
        with open(path, "w") as f:
            json.dump(self.config, f, indent=2)
        os.chown(path, self.user.uid, self.user.gid)
        return self
