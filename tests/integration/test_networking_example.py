"""docs/examples/veth_hook.py end to end (docs/networking.md): a busybox httpd container
gets a veth from the createRuntime hook, a port published by its DNAT rule answers from
the host, and after `delete` the poststop hook has left nothing behind.

Nothing here touches the real host's network: the test makes a network namespace that
plays the host and runs pyrunc in it with `nsenter --net` (not `ip netns exec`, which
remounts /sys and hides the cgroup mounts pyrunc needs).  The hooks, which run in the
runtime's namespaces, then put the veth's host end, its address and the iptables rules
in that namespace, and removing it removes whatever a failed test left there."""

import os
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.integration.cli_util import REPO, pid_alive, wait_for

HOOK = os.path.join(REPO, "docs", "examples", "veth_hook.py")
SBIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
IPTABLES = shutil.which("iptables", path=SBIN_PATH)
IP = shutil.which("ip", path=SBIN_PATH)
NSENTER = shutil.which("nsenter", path=SBIN_PATH)
CURL = shutil.which("curl", path=SBIN_PATH)

HOST_IF = "pyrunc-test-nxh"  # 15 bytes, the most an interface name may have
HOST_ADDR, CONTAINER_ADDR = "10.214.0.1/30", "10.214.0.2/30"
HOST_PORT, CONTAINER_PORT = 8080, 80

pytestmark = [
    pytest.mark.skipif(IPTABLES is None, reason="iptables is not installed"),
    pytest.mark.skipif(None in (IP, NSENTER, CURL), reason="needs ip, nsenter and curl"),
]


def in_ns(netns, *cmd, check=True):
    """Run cmd in the network namespace `netns` (a name under /run/netns, or a path)."""
    path = netns if netns.startswith("/") else f"/run/netns/{netns}"
    r = subprocess.run(
        [NSENTER, f"--net={path}", *cmd], capture_output=True, text=True, timeout=30, env={"PATH": SBIN_PATH}
    )
    if check:
        assert r.returncode == 0, r
    return r


def nat_rules(netns, comment):
    """The nat table's rules (iptables -S lines) that carry the hook's comment."""
    out = in_ns(netns, IPTABLES, "-w", "-t", "nat", "-S").stdout
    return [line for line in out.splitlines() if comment in line]


@pytest.fixture
def host_netns():
    """A network namespace playing the host, with lo up; removed even when the test fails."""
    pytest.importorskip("pyroute2", reason="the example hook needs pyroute2 (pip install pyroute2)")
    name = f"pyrunc-test-nxhost-{uuid.uuid4().hex[:8]}"
    subprocess.run([IP, "netns", "add", name], check=True)
    try:
        subprocess.run([IP, "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run([IP, "netns", "delete", name], check=True)
    assert not os.path.exists(f"/run/netns/{name}")


@pytest.fixture
def net_pyrunc(host_netns, pyrunc):
    """The `pyrunc` fixture's runner, run in host_netns.  host_netns is set up first, so it
    is removed last: after the runner's own force-delete of anything left."""
    pyrunc.command = [NSENTER, f"--net=/run/netns/{host_netns}", sys.executable, "-m", "pyrunc"]
    return pyrunc


SETTINGS = {
    "host-if": HOST_IF,
    "host-addr": HOST_ADDR,
    "container-addr": CONTAINER_ADDR,
    "publish": f"{HOST_PORT}:{CONTAINER_PORT}",
}


def hook(mode, options=()):
    """The example hook as a user's config.json names it: an absolute interpreter, also as
    args[0] (Python finds its venv, and so pyroute2, from argv[0]), then the file."""
    return {
        "path": sys.executable,
        "args": [sys.executable, HOOK, mode, *options],
        "env": [f"PATH={SBIN_PATH}"],
        "timeout": 30,
    }


def configure(bundle, settings_from):
    """The hooks, with their settings as options or as the container's annotations."""
    if settings_from == "options":
        options = [word for name, value in SETTINGS.items() for word in (f"--{name}", value)]
    else:
        options = []
        bundle.config["annotations"] = {f"org.pyrunc.example.veth.{name}": value for name, value in SETTINGS.items()}
    bundle.config["hooks"] = {
        "createRuntime": [hook("createRuntime", options)],
        "poststop": [hook("poststop", options)],
    }


@pytest.mark.parametrize("settings_from", ["options", "annotations"])
def test_veth_hook_publishes_httpd_and_cleans_up(net_pyrunc, host_netns, bundle, test_id, settings_from):
    pyrunc = net_pyrunc
    page = f"hello from {test_id}\n"
    os.makedirs(os.path.join(bundle.rootfs, "www"))
    with open(os.path.join(bundle.rootfs, "www", "index.html"), "w") as f:
        f.write(page)
    bundle.config["process"]["args"] = ["/bin/busybox", "httpd", "-f", "-p", str(CONTAINER_PORT), "-h", "/www"]
    configure(bundle, settings_from)
    bundle.write()
    comment = f"{HOST_IF}:{test_id}"

    r = pyrunc("run", "-d", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    state = pyrunc.state(test_id)
    assert state["status"] == "running"
    pid = state["pid"]

    # The host end: in the test's namespace, addressed and up; not on the real host.
    assert HOST_IF not in os.listdir("/sys/class/net")
    addr = in_ns(host_netns, IP, "-o", "-4", "addr", "show", "dev", HOST_IF).stdout
    assert f"inet {HOST_ADDR}" in addr, addr
    assert "state UP" in in_ns(host_netns, IP, "-o", "link", "show", "dev", HOST_IF).stdout
    # The container end: eth0 with its address and the host end as its gateway.
    container_ns = f"/proc/{pid}/ns/net"
    addr = in_ns(container_ns, IP, "-o", "-4", "addr", "show", "dev", "eth0").stdout
    assert f"inet {CONTAINER_ADDR}" in addr, addr
    routes = in_ns(container_ns, IP, "-4", "route", "show", "default").stdout
    assert routes.startswith(f"default via {HOST_ADDR.split('/')[0]} dev eth0"), routes
    # The DNAT rules, one for traffic from outside and one for the host's own.
    rules = nat_rules(host_netns, comment)
    assert [line.split()[1] for line in rules] == ["PREROUTING", "OUTPUT"], rules
    for line in rules:
        assert f"--dport {HOST_PORT}" in line, line
        assert f"--to-destination {CONTAINER_ADDR.split('/')[0]}:{CONTAINER_PORT}" in line, line

    # A request from the "host" to its own address and the published port reaches httpd
    # (retried: httpd may not be listening yet when `run -d` returns).
    url = f"http://{HOST_ADDR.split('/')[0]}:{HOST_PORT}/"

    def fetch():
        r = in_ns(host_netns, CURL, "-sS", "--max-time", "5", url, check=False)
        return r.stdout if r.returncode == 0 else None

    assert wait_for(fetch, f"an answer from {url}", timeout=20) == page
    # The port is only published where the rule says: the host end's address has no
    # listener of its own on the container's port.
    r = in_ns(
        host_netns, CURL, "-sS", "--max-time", "5", f"http://{HOST_ADDR.split('/')[0]}:{CONTAINER_PORT}/", check=False
    )
    assert r.returncode == 7, r  # connection refused
    # localhost is not forwarded (the hook says why): refused at once, not left to hang.
    r = in_ns(host_netns, CURL, "-sS", "--max-time", "5", f"http://127.0.0.1:{HOST_PORT}/", check=False)
    assert r.returncode == 7, r

    r = pyrunc("delete", "--force", test_id)
    assert r.code == 0, r
    assert r.err == "", r  # a failing poststop hook would only warn here
    wait_for(lambda: not pid_alive(pid), "the container to exit", timeout=10)
    # poststop removed the rules and the host end (and with it the container end).
    assert nat_rules(host_netns, comment) == []
    r = in_ns(host_netns, IP, "link", "show", "dev", HOST_IF, check=False)
    assert r.returncode != 0 and "does not exist" in r.stderr, r
    assert pyrunc("state", test_id).code != 0


def test_failing_hook_fails_create_and_leaves_nothing(net_pyrunc, host_netns, bundle, test_id):
    """The second published port cannot be forwarded: the hook takes back the first one's
    rules and the veth, and create fails with its message."""
    pyrunc = net_pyrunc
    bundle.config["process"]["args"] = ["sleep", "300"]
    configure(bundle, "options")
    bundle.config["annotations"] = {"org.pyrunc.example.veth.publish": "8080:80,8081:70000"}
    bundle.write()
    r = pyrunc("create", "--bundle", bundle.path, test_id)
    assert r.code == 1, r
    assert "createRuntime hook #0" in r.err and "veth_hook: iptables" in r.err, r
    assert nat_rules(host_netns, f"{HOST_IF}:{test_id}") == []
    r = in_ns(host_netns, IP, "link", "show", "dev", HOST_IF, check=False)
    assert r.returncode != 0 and "does not exist" in r.stderr, r
    assert pyrunc("state", test_id).code != 0
