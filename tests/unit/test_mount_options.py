"""Mount options as the config spells them, parsed into flags, propagation, recursive
attributes and filesystem data; and destinations resolved inside a rootfs (no root needed)."""

import errno
import os

import pytest

from pyrunc.config import model
from pyrunc.errors import KernelError
from pyrunc.linux import kernel as k
from pyrunc.linux import mounts, paths
from pyrunc.linux.kernel import Kernel
from pyrunc.linux.mounts import MountOptions


def test_plain_flags_are_collected():
    o = MountOptions(["nosuid", "nodev", "noexec", "ro", "noatime", "nodiratime"])
    assert o.flags == k.MS_NOSUID | k.MS_NODEV | k.MS_NOEXEC | k.MS_RDONLY | k.MS_NOATIME | k.MS_NODIRATIME
    assert o.data is None and o.propagation == [] and not o.is_bind


def test_later_options_override_earlier_ones():
    assert MountOptions(["ro", "rw"]).flags & k.MS_RDONLY == 0
    assert MountOptions(["rw", "ro"]).flags & k.MS_RDONLY
    assert MountOptions(["nosuid", "suid"]).flags & k.MS_NOSUID == 0
    assert MountOptions(["noexec", "exec", "noexec"]).flags & k.MS_NOEXEC


@pytest.mark.parametrize(
    "option, flag",
    [
        ("relatime", k.MS_RELATIME),
        ("strictatime", k.MS_STRICTATIME),
        ("noatime", k.MS_NOATIME),
        ("nodiratime", k.MS_NODIRATIME),
        ("sync", k.MS_SYNCHRONOUS),
        ("dirsync", k.MS_DIRSYNC),
        ("mand", k.MS_MANDLOCK),
        ("lazytime", k.MS_LAZYTIME),
        ("nosymfollow", k.MS_NOSYMFOLLOW),
        ("iversion", k.MS_I_VERSION),
        ("silent", k.MS_SILENT),
    ],
)
def test_each_flag_option(option, flag):
    assert MountOptions([option]).flags == flag


def test_bind_and_rbind():
    assert MountOptions(["bind"]).flags == k.MS_BIND and MountOptions(["bind"]).is_bind
    assert MountOptions(["rbind"]).flags == k.MS_BIND | k.MS_REC


def test_unknown_options_become_filesystem_data_in_order():
    o = MountOptions(["nosuid", "mode=0755", "size=65536k", "newinstance", "ptmxmode=0666"])
    assert o.data == "mode=0755,size=65536k,newinstance,ptmxmode=0666"
    assert o.flags == k.MS_NOSUID


def test_propagation_options_are_kept_in_order():
    o = MountOptions(["rshared", "private", "runbindable", "slave"])
    assert o.propagation == [k.MS_SHARED | k.MS_REC, k.MS_PRIVATE, k.MS_UNBINDABLE | k.MS_REC, k.MS_SLAVE]
    assert o.flags == 0 and o.data is None


def test_recursive_attributes():
    o = MountOptions(["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnosymfollow"])
    assert o.attr_set == (
        k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV | k.MOUNT_ATTR_NOEXEC | k.MOUNT_ATTR_NOSYMFOLLOW
    )
    assert o.attr_clr == 0
    o = MountOptions(["rro", "rrw"])
    assert o.attr_set == 0 and o.attr_clr == k.MOUNT_ATTR_RDONLY


def test_recursive_atime_modes_replace_one_another():
    o = MountOptions(["rnoatime", "rstrictatime"])
    assert o.attr_set == k.MOUNT_ATTR_STRICTATIME
    assert o.attr_clr == k.MOUNT_ATTR__ATIME
    assert MountOptions(["rstrictatime", "rnoatime"]).attr_set == k.MOUNT_ATTR_NOATIME


def test_idmapped_mounts_are_refused():
    with pytest.raises(KernelError) as e:
        MountOptions(["idmap"])
    assert e.value.errno == errno.EOPNOTSUPP


def _m(dest, mtype, source):
    return model.Mount(destination=dest, type=mtype, source=source, options=())


def test_errors_name_the_mount():
    assert mounts.describe(_m("/proc", "proc", "proc")) == 'mount proc "proc" on "/proc"'
    assert mounts.describe(_m("/dev/shm", "tmpfs", "shm")) == 'mount tmpfs "shm" on "/dev/shm"'
    assert mounts.describe(_m("/data", "bind", "/src")) == 'mount bind "/src" on "/data"'
    # As config.json gives it: the entry's index and its options; escaped, on one line.
    m = model.Mount(destination="/a\nb", type=None, source='x"y', options=("rbind", "ro"), index=4)
    assert mounts.describe(m) == 'mounts[4]: mount "x\\"y" on "/a\\nb" (options rbind,ro)'


# --- destinations inside a rootfs ------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    """A rootfs and a "host" directory beside it, with an fd of the rootfs."""
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "host").mkdir()
    fd = os.open(tmp_path / "rootfs", os.O_PATH | os.O_DIRECTORY)
    yield tmp_path / "rootfs", tmp_path / "host", fd
    os.close(fd)


def test_clean_makes_paths_absolute_and_lexical():
    assert paths.clean("a/b/../c/") == "/a/c"
    assert paths.clean("/../../etc") == "/etc"
    assert paths.clean("//x//y") == "/x/y"


@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_missing_dirs_behind_a_symlink_are_made_inside_the_rootfs(tree, link):
    rfs, host, fd = tree
    target = str(host / "made") if link == "absolute" else "../../../../../.." + str(host / "made")
    os.symlink(target, rfs / "evil")
    made = paths.mkdir_all(Kernel(), fd, "/evil/deeper")
    os.close(made)
    assert os.listdir(host) == []
    assert (rfs / str(host).lstrip("/") / "made" / "deeper").is_dir()


def test_file_behind_a_symlink_is_made_inside_the_rootfs(tree):
    rfs, host, fd = tree
    (rfs / "etc").mkdir()
    os.symlink(str(host / "passwd"), rfs / "etc" / "passwd")
    made = paths.make_file(Kernel(), fd, "/etc/passwd")
    os.close(made)
    assert os.listdir(host) == []
    assert (rfs / str(host).lstrip("/") / "passwd").is_file()


def test_symlink_loops_fail_with_eloop(tree):
    rfs, _, fd = tree
    os.symlink("b", rfs / "a")
    os.symlink("a", rfs / "b")
    with pytest.raises(KernelError) as e:
        paths.mkdir_all(Kernel(), fd, "/a/x")
    assert e.value.errno == errno.ELOOP


def test_a_file_in_the_way_of_a_directory_fails(tree):
    rfs, _, fd = tree
    (rfs / "file").write_text("x")
    with pytest.raises(KernelError) as e:
        paths.mkdir_all(Kernel(), fd, "/file/sub")
    assert e.value.errno == errno.ENOTDIR


def test_open_without_symlinks_refuses_any_link(tree):
    rfs, _, fd = tree
    (rfs / "real").mkdir()
    os.symlink("real", rfs / "proc")
    with pytest.raises(KernelError) as e:
        paths.open_in_root(Kernel(), fd, "/proc", no_symlinks=True)
    assert e.value.errno == errno.ELOOP
    os.close(paths.open_in_root(Kernel(), fd, "/real", no_symlinks=True))


@pytest.mark.parametrize(
    "key, path",
    [
        ("net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward"),
        ("net/ipv4/conf/eth0.1/forwarding", "/proc/sys/net/ipv4/conf/eth0.1/forwarding"),
        ("net.ipv4.conf.eth0/1.forwarding", "/proc/sys/net/ipv4/conf/eth0.1/forwarding"),
    ],
)
def test_sysctl_keys_in_both_of_sysctls_spellings(key, path):
    from pyrunc.linux.tables import sysctl_path

    assert sysctl_path(key) == path


def test_mkdir_in_makes_one_component_and_never_follows_a_symlink(tmp_path):
    """paths.mkdir_in (the cgroup hierarchies' directories in the runtime's own tmpfs):
    one name, made or found, opened beneath the directory; a symlink in its place, or a
    name that is not one component, fails."""
    dfd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        fd = paths.mkdir_in(Kernel(), dfd, "cpu,cpuacct")
        os.close(fd)
        fd = paths.mkdir_in(Kernel(), dfd, "cpu,cpuacct")  # already there: found
        assert os.path.samestat(os.fstat(fd), os.stat(tmp_path / "cpu,cpuacct"))
        os.close(fd)
        os.symlink("/etc", tmp_path / "memory")
        with pytest.raises(KernelError) as e:
            paths.mkdir_in(Kernel(), dfd, "memory")
        assert e.value.errno in (errno.ELOOP, errno.ENOTDIR)  # the link itself, not /etc
        for bad in ("", ".", "..", "a/b"):
            with pytest.raises(KernelError):
                paths.mkdir_in(Kernel(), dfd, bad)
    finally:
        os.close(dfd)
