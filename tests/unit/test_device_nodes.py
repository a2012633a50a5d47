"""The device nodes of a container (linux/devices.py), driven through the kernel seam's
test double in a temporary rootfs: in a user namespace each node is the host's, bound
over an empty file, so no root is needed.  Each directory is resolved once however many
nodes it holds, and every node is still made in the directory its own path names."""

import os

from pyrunc.config.model import Device
from pyrunc.linux import devices
from tests.unit.fakekernel import FakeKernel, fd_target


class _Binds(FakeKernel):
    """Records each bind's target as the path its fd names at the time of the call."""

    def mount(self, source, target, *rest):
        self.calls.append(("mount", (source, fd_target(target), *rest)))


def _make(tmp_path, extra):
    root = tmp_path / "rootfs"
    root.mkdir(parents=True)
    k = _Binds()
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        devices.create_default_devices(k, root_fd, extra, in_userns=True)
    finally:
        os.close(root_fd)
    return root, k


def _device(path, minor):
    return Device(path=path, type="c", major=1, minor=minor, file_mode=0o600, uid=0, gid=0)


def test_each_node_lands_in_the_directory_its_path_names(tmp_path):
    extra = [_device("/dev/extra0", 3), _device("/dev/net/tun0", 5), _device("/dev/net/tun1", 7)]
    root, k = _make(tmp_path, extra)
    wanted = [path for path, *_ in devices.DEFAULT_DEVICES] + [d.path for d in extra]
    for path in wanted:
        assert os.path.isfile(root / path.lstrip("/")), path  # the bind target of the host's node
    binds = {args[1]: args[0] for args in k.of("mount")}
    assert binds == {str(root / p.lstrip("/")): p for p in wanted}  # each over its own path, the host's node


def test_a_directory_is_resolved_once_however_many_nodes_it_holds(tmp_path):
    """The walks to /dev and /dev/net: as many for seven nodes in each as for one."""

    def walks(case, n):
        extra = [_device(f"/dev/extra{i}", i) for i in range(n)] + [_device(f"/dev/net/tun{i}", i) for i in range(n)]
        _, k = _make(tmp_path / case, extra)
        calls = [args[1] for args in k.of("openat2")]
        return calls.count("dev"), calls.count("dev/net")

    assert walks("one", 1) == walks("seven", 7)
