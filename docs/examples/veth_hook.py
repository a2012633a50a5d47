#!/usr/bin/env python3
"""An OCI hook that gives a container a veth network and publishes ports (docs/networking.md).

    veth_hook.py createRuntime [options]   as a createRuntime hook: veth, addresses, route, DNAT
    veth_hook.py poststop [options]        as a poststop hook: remove what createRuntime made

The runtime passes the container's state JSON on stdin (`id`, `pid`, `annotations`).
Every setting is an option; an annotation of the same name under `org.pyrunc.example.veth.`
overrides it for one container (e.g. `"org.pyrunc.example.veth.publish": "8080:80"`):

    --host-if NAME           the veth end left on the host (default: vh + 8 hex of the id)
    --container-if NAME      the end moved into the container (default: eth0)
    --host-addr ADDR/LEN     the host end's address, the container's gateway (10.214.0.1/30)
    --container-addr ADDR/LEN  the container end's address (10.214.0.2/30)
    --publish HOST:CONTAINER TCP port forwarding from the host, repeatable
                             (annotation: a comma-separated list)

Needs root, pyroute2 (pip install pyroute2) and iptables.
"""

import argparse
import errno
import hashlib
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import sys

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

ANNOTATION = "org.pyrunc.example.veth."
DEFAULTS = {"container-if": "eth0", "host-addr": "10.214.0.1/30", "container-addr": "10.214.0.2/30", "publish": ""}
# Hooks get exactly the environment config.json gives them, often none: find iptables anyway.
SEARCH_PATH = os.environ.get("PATH") or "/usr/sbin:/usr/bin:/sbin:/bin"


def settings(argv, state):
    """Options from argv, then the container's annotations over them."""
    p = argparse.ArgumentParser(prog="veth_hook.py")
    p.add_argument("mode", choices=("createRuntime", "poststop"))
    for name in ("host-if", "container-if", "host-addr", "container-addr"):
        p.add_argument("--" + name)
    p.add_argument("--publish", action="append", default=[])
    args = vars(p.parse_args(argv))
    conf = dict(DEFAULTS)
    for name in ("host-if", "container-if", "host-addr", "container-addr"):
        if args[name.replace("-", "_")]:
            conf[name] = args[name.replace("-", "_")]
    conf["publish"] = ",".join(args["publish"])
    for key, value in (state.get("annotations") or {}).items():
        if key.startswith(ANNOTATION) and key[len(ANNOTATION) :] in (*DEFAULTS, "host-if"):
            conf[key[len(ANNOTATION) :]] = value
    # A name of the container's own (interface names are at most 15 bytes): a second
    # container with the same hook gets a second veth.
    conf.setdefault("host-if", "vh" + hashlib.sha256(state["id"].encode()).hexdigest()[:8])
    conf["ports"] = [tuple(int(n) for n in pair.split(":")) for pair in conf["publish"].split(",") if pair]
    # The rules carry this comment, so that poststop finds exactly this container's rules.
    conf["comment"] = f"{conf['host-if']}:{state['id']}"
    return args["mode"], conf


def iptables(*args):
    exe = shutil.which("iptables", path=SEARCH_PATH)
    if exe is None:
        raise SystemExit("veth_hook: iptables not found")
    r = subprocess.run([exe, "-w", *args], capture_output=True, text=True)
    if r.returncode != 0:
        # One line: a runtime reports a failing hook with (the last line of) its stderr.
        why = "; ".join(line for line in r.stderr.splitlines() if line.strip() and not line.startswith("Try `iptables"))
        raise SystemExit(f"veth_hook: iptables {shlex.join(args)}: {why}")
    return r.stdout


def dnat_rules(conf):
    """(chain, rule) pairs of the nat table that forward the published ports."""
    container_ip = conf["container-addr"].split("/")[0]
    for host_port, container_port in conf["ports"]:
        # Only packets addressed to this host itself: a container's own traffic to port
        # 8080 elsewhere must not be redirected.
        match = [
            "-p",
            "tcp",
            "-m",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "--dport",
            str(host_port),
            "-m",
            "comment",
            "--comment",
            conf["comment"],
            "-j",
            "DNAT",
            "--to-destination",
            f"{container_ip}:{container_port}",
        ]
        yield "PREROUTING", match  # from other machines (needs net.ipv4.ip_forward=1)
        # From the host's own programs, which skip PREROUTING; not to 127.0.0.0/8: the
        # kernel will not send a loopback source out of the veth (only with route_localnet,
        # which would also let the container reach the host's 127.0.0.1 services,
        # CVE-2020-8558), so a request to localhost would hang instead of being refused.
        yield "OUTPUT", ["!", "-d", "127.0.0.0/8", *match]


def create_runtime(state, conf):
    pid = state["pid"]  # the container's init, as the runtime (and so this hook) sees it
    host_addr = ipaddress.ip_interface(conf["host-addr"])
    container_addr = ipaddress.ip_interface(conf["container-addr"])
    with IPRoute() as host:
        # Create the pair with its peer already in the container's network namespace,
        # in one step: a peer named eth0 never exists, even briefly, on the host.
        host.link("add", ifname=conf["host-if"], kind="veth", peer={"ifname": conf["container-if"], "net_ns_pid": pid})
        try:
            index = host.link_lookup(ifname=conf["host-if"])[0]
            host.addr("add", index=index, address=str(host_addr.ip), prefixlen=host_addr.network.prefixlen)
            host.link("set", index=index, state="up")
            # Inside: address, up, and the host end as the default gateway.  flags=0:
            # open the namespace, never create one if the container has gone.
            with IPRoute(netns=f"/proc/{pid}/ns/net", flags=0) as inside:
                cindex = inside.link_lookup(ifname=conf["container-if"])[0]
                inside.addr(
                    "add", index=cindex, address=str(container_addr.ip), prefixlen=container_addr.network.prefixlen
                )
                inside.link("set", index=cindex, state="up")
                inside.route("add", dst="0.0.0.0/0", gateway=str(host_addr.ip))
            added = []
            try:
                for chain, rule in dnat_rules(conf):
                    iptables("-t", "nat", "-A", chain, *rule)
                    added.append((chain, rule))
            except SystemExit:
                for chain, rule in added:
                    iptables("-t", "nat", "-D", chain, *rule)
                raise
        except BaseException:
            # A failed hook fails `create`: leave nothing of ours behind.  (Deleting one
            # end of a veth deletes both.)
            for index in host.link_lookup(ifname=conf["host-if"]):
                host.link("del", index=index)
            raise


def poststop(state, conf):
    # The state no longer has a pid; everything to undo is in this (the runtime's)
    # namespace, found by name and by the rules' comment.
    for chain in ("PREROUTING", "OUTPUT"):
        for line in iptables("-t", "nat", "-S", chain).splitlines():
            words = shlex.split(line)
            if "--comment" in words and words[words.index("--comment") + 1] == conf["comment"]:
                iptables("-t", "nat", "-D", *words[1:])
    # The kernel removes the veth when the container's namespace is freed, but it does so
    # asynchronously; delete it now so that the name is free when `delete` returns.
    with IPRoute() as host:
        for index in host.link_lookup(ifname=conf["host-if"]):
            try:
                host.link("del", index=index)
            except NetlinkError as e:
                if e.code != errno.ENODEV:  # gone with the namespace meanwhile
                    raise


def main(argv):
    state = json.load(sys.stdin)
    mode, conf = settings(argv, state)
    if mode == "createRuntime":
        create_runtime(state, conf)
    else:
        poststop(state, conf)


if __name__ == "__main__":
    main(sys.argv[1:])
