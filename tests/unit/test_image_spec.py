"""pyrunc.image.spec: an image config made into config.json (image-spec conversion.md),
users resolved in the image's own /etc/passwd and /etc/group, validated by pyrunc."""

import os

import pytest

from pyrunc.config.default import default_spec
from pyrunc.config.schema import schema_errors
from pyrunc.config.semantic import semantic_errors
from pyrunc.errors import ImageError
from pyrunc.image.spec import resolve_user, runtime_config
from pyrunc.linux.kernel import Kernel

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:100::/home/bob:/bin/sh
"""
GROUP = """root:x:0:
daemon:x:1:
users:x:100:alice
alice:x:1000:
wheel:x:10:alice,bob
audio:x:29:bob
"""
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@pytest.fixture
def bundle(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)
    return tmp_path


def convert(bundle, cfg=None, **kw):
    image = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"], **(cfg or {})}}
    spec = runtime_config(image, str(bundle / "rootfs"), Kernel(), **kw)
    assert schema_errors(spec) == []
    assert semantic_errors(spec, str(bundle)) == []
    return spec


def test_defaults_from_runc_spec(bundle):
    spec = convert(bundle)
    base = default_spec()
    assert spec["process"]["terminal"] is False
    assert spec["process"]["capabilities"] == base["process"]["capabilities"]
    assert spec["mounts"] == base["mounts"]
    assert spec["linux"]["namespaces"] == base["linux"]["namespaces"]
    assert "cgroupsPath" not in spec["linux"]
    assert spec["root"] == {"path": "rootfs", "readonly": False}
    assert spec["process"]["cwd"] == "/"
    assert spec["process"]["user"] == {"uid": 0, "gid": 0}
    assert convert(bundle, readonly=True)["root"]["readonly"] is True


@pytest.mark.parametrize(
    "ep,cmd,kw,want",
    [
        (None, ["sh"], {}, ["sh"]),
        (["/entry", "-x"], None, {}, ["/entry", "-x"]),
        (["/entry"], ["a", "b"], {}, ["/entry", "a", "b"]),  # Entrypoint + Cmd
        (["/entry"], ["a"], {"args": ["c"]}, ["/entry", "c"]),  # args replace Cmd
        (None, ["sh"], {"args": ["ls", "-l"]}, ["ls", "-l"]),
        (["/entry"], ["a"], {"entrypoint": ["/other"]}, ["/other"]),  # Docker drops Cmd
        (["/entry"], ["a"], {"entrypoint": ["/o"], "args": ["z"]}, ["/o", "z"]),
        (["/entry"], ["a"], {"entrypoint": [], "args": ["z"]}, ["z"]),
    ],
)
def test_args(bundle, ep, cmd, kw, want):
    cfg = {"Entrypoint": ep, "Cmd": cmd}
    assert convert(bundle, cfg, **kw)["process"]["args"] == want


def test_no_command_is_an_error(bundle):
    with pytest.raises(ImageError, match="no command"):
        runtime_config({"config": {}}, str(bundle / "rootfs"), Kernel())
    with pytest.raises(ImageError, match="config.Cmd: not a list of strings"):
        runtime_config({"config": {"Cmd": "sh"}}, str(bundle / "rootfs"), Kernel())


def test_env_merge(bundle):
    env = convert(bundle, {"Env": ["PATH=/app/bin", "A=1"]})["process"]["env"]
    assert env == ["PATH=/app/bin", "A=1"]  # the image's PATH is not changed
    env = convert(bundle, {"Env": ["A=1"]})["process"]["env"]
    assert env == ["A=1", DEFAULT_PATH]  # the default fills in what is missing
    assert convert(bundle, {"Env": ["A=1"]}, terminal=True)["process"]["env"] == ["A=1", DEFAULT_PATH, "TERM=xterm"]
    env = convert(bundle, {"Env": ["A=1", "B=2"]}, env=["B=3", "C=4"])["process"]["env"]
    assert env == ["A=1", "B=3", DEFAULT_PATH, "C=4"]
    with pytest.raises(ImageError, match="expected KEY=VALUE"):
        convert(bundle, env=["NOVALUE"])


def test_working_dir(bundle):
    assert convert(bundle, {"WorkingDir": "/srv/app"})["process"]["cwd"] == "/srv/app"
    assert convert(bundle, {"WorkingDir": ""})["process"]["cwd"] == "/"
    assert convert(bundle, {"WorkingDir": "app"})["process"]["cwd"] == "/app"
    assert convert(bundle, {"WorkingDir": "/x"}, cwd="/y")["process"]["cwd"] == "/y"


@pytest.mark.parametrize(
    "text,want",
    [
        ("alice", {"uid": 1000, "gid": 1000, "additionalGids": [10, 100]}),
        ("bob", {"uid": 1001, "gid": 100, "additionalGids": [10, 29]}),
        ("daemon", {"uid": 1, "gid": 1}),
        ("1000", {"uid": 1000, "gid": 1000}),  # numeric: no additionalGids
        ("4242", {"uid": 4242, "gid": 0}),  # not in passwd: allowed
        ("alice:wheel", {"uid": 1000, "gid": 10}),  # a group: no additionalGids
        ("1001:1000", {"uid": 1001, "gid": 1000}),
        ("alice:77", {"uid": 1000, "gid": 77}),
        ("4242:audio", {"uid": 4242, "gid": 29}),
        ("", {"uid": 0, "gid": 0}),
    ],
)
def test_user_forms(bundle, text, want):
    assert convert(bundle, {"User": text})["process"]["user"] == want


@pytest.mark.parametrize(
    "text,msg",
    [
        ("mallory", "no user 'mallory' in the image's /etc/passwd"),
        ("alice:nogroup", "no group 'nogroup' in the image's /etc/group"),
        ("1000:nogroup", "no group 'nogroup'"),
        ("alice:", "expected USER\\[:GROUP\\]"),
        (":10", "expected USER\\[:GROUP\\]"),
        ("4294967295", "out of range"),
    ],
)
def test_user_errors(bundle, text, msg):
    with pytest.raises(ImageError, match=msg) as e:
        convert(bundle, {"User": text})
    assert "config.User" in str(e.value)


def test_user_override(bundle):
    assert convert(bundle, {"User": "alice"}, user="bob:0")["process"]["user"] == {"uid": 1001, "gid": 0}


def test_user_without_passwd_file(tmp_path):
    (tmp_path / "rootfs").mkdir()
    assert resolve_user("x", "1000", str(tmp_path / "rootfs"), Kernel()) == {"uid": 1000, "gid": 0}
    with pytest.raises(ImageError, match="no user 'alice'"):
        resolve_user("x", "alice", str(tmp_path / "rootfs"), Kernel())


def test_hostile_passwd_symlink_to_host(tmp_path):
    # /etc/passwd in the image is a symlink to the host's: it resolves inside the rootfs,
    # so the host's users (root at least) are never seen.
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    host = tmp_path / "hostpasswd"
    host.write_text("hostonly:x:4711:4711::/:/bin/sh\n")
    os.symlink(str(host), rootfs / "etc" / "passwd")
    os.symlink("/etc/group", rootfs / "etc" / "group")
    with pytest.raises(ImageError, match="no user 'hostonly'"):
        resolve_user("x", "hostonly", str(rootfs), Kernel())
    with pytest.raises(ImageError, match="no user 'root'"):
        # the host's /etc/passwd has root; a ../ chain cannot reach it either
        os.unlink(rootfs / "etc" / "passwd")
        os.symlink("../../../../../../../etc/passwd", rootfs / "etc" / "passwd")
        resolve_user("x", "root", str(rootfs), Kernel())
    with pytest.raises(ImageError, match="no group 'root'"):
        resolve_user("x", "0:root", str(rootfs), Kernel())


def test_symlink_inside_rootfs_followed(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "lib").mkdir()
    (rootfs / "lib" / "passwd").write_text("carol:x:5:6::/:/bin/sh\n")
    os.symlink("/lib/passwd", rootfs / "etc" / "passwd")
    assert resolve_user("x", "carol", str(rootfs), Kernel()) == {"uid": 5, "gid": 6}


def test_passwd_fifo_refused(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    os.mkfifo(rootfs / "etc" / "passwd")
    with pytest.raises(ImageError, match="not a regular file"):
        resolve_user("x", "alice", str(rootfs), Kernel())


def test_annotations(bundle):
    image = {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "os.version": "6.1",
        "os.features": ["a", "b"],
        "author": "Alyssa",
        "created": "2024-01-02T03:04:05Z",
        "config": {
            "Cmd": ["sh"],
            "StopSignal": "SIGQUIT",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Volumes": {"/data": {}, "/var/log": {}},
            "Labels": {"org.opencontainers.image.author": "label wins", "com.example.x": "y"},
        },
    }
    spec = runtime_config(image, str(bundle / "rootfs"), Kernel())
    assert spec["annotations"] == {
        "org.opencontainers.image.os": "linux",
        "org.opencontainers.image.architecture": "arm64",
        "org.opencontainers.image.variant": "v8",
        "org.opencontainers.image.os.version": "6.1",
        "org.opencontainers.image.os.features": "a,b",
        "org.opencontainers.image.author": "label wins",  # Labels take precedence
        "org.opencontainers.image.created": "2024-01-02T03:04:05Z",
        "org.opencontainers.image.stopSignal": "SIGQUIT",
        "org.opencontainers.image.exposedPorts": "80/tcp,53/udp",
        "io.github.pyrunc.image.volumes": "/data,/var/log",
        "com.example.x": "y",
    }
    assert spec["mounts"] == default_spec()["mounts"]  # Volumes make no mounts
    assert schema_errors(spec) == [] and semantic_errors(spec, str(bundle)) == []


def test_label_overrides_stop_signal(bundle):
    spec = convert(bundle, {"StopSignal": "SIGTERM", "Labels": {"org.opencontainers.image.stopSignal": "SIGINT"}})
    assert spec["annotations"]["org.opencontainers.image.stopSignal"] == "SIGINT"


def test_bad_labels(bundle):
    with pytest.raises(ImageError, match="config.Labels 'a': not a string"):
        convert(bundle, {"Labels": {"a": 1}})
