"""`linux.netDevices` (config-linux.md, "Network Devices"): move existing devices of the
runtime's network namespace into the container's, renamed, with their permanent global
addresses, and set them up.

Every netlink call of pyrunc is here, through pyroute2, which is imported only for a
config that has netDevices: its import costs more than a whole `run`.  It runs in the
runtime (the parent of create, in the host's network namespace) with two rtnetlink
sockets: its own, for the host's side, and one the container's init opened in its
network namespace and sent over the protocol (init.py), for the container's side.  The
device is moved into that socket's namespace (SIOCGSKNS), so it lands exactly where the
socket looks; the addresses and the link-up are done through that socket, in the
container's namespace.

Never moved back: the kernel returns physical devices to the initial namespace when the
container's dies and destroys virtual ones (the spec forbids moving them out first).
"""

import fcntl
import os

from pyrunc.errors import ContainerError

# Annotations name typing's types only for mypy: importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Mapping
    from typing import Any

IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0
AF_INET = 2
# The address flags a user sets (`ip addr add ... nodad noprefixroute`): kept on the copy.
IFA_F_NODAD = 0x02
IFA_F_HOMEADDRESS = 0x10
IFA_F_MANAGETEMPADDR = 0x100
IFA_F_NOPREFIXROUTE = 0x200
IFA_F_MCAUTOJOIN = 0x400
KEPT_FLAGS = IFA_F_NODAD | IFA_F_HOMEADDRESS | IFA_F_MANAGETEMPADDR | IFA_F_NOPREFIXROUTE | IFA_F_MCAUTOJOIN
SIOCGSKNS = 0x894C  # a socket's network namespace, as an fd
EEXIST = 17


def is_template(name: str) -> bool:
    """`eth%d`: the kernel picks the first free number in the container's namespace."""
    return "%d" in name


def target_name(host: str, entry: "Mapping[str, Any] | None") -> str:
    name: str = (entry or {}).get("name") or host
    return name


def refused(host: str, why: str) -> ContainerError:
    return ContainerError(f'move network device "{host}"', why)


def plan(
    devices: "Mapping[str, Any]", host_names: "Container[str]", container_names: "Container[str] | None" = None
) -> list[tuple[str, str]]:
    """The moves linux.netDevices asks for, [(host name, name in the container)], checked
    before anything moves: each device exists in the runtime's namespace and is not
    `lo`; no two entries get the same name, and none a name the container's namespace
    (`container_names`, when known) has already, unless that name is a `%d` template.
    Raises ContainerError naming the first device that cannot move."""
    moves: list[tuple[str, str]] = []
    taken: dict[str, str] = {}
    for host, entry in devices.items():
        target = target_name(host, entry)
        if host == "lo":
            raise refused(host, "the loopback device cannot leave its network namespace")
        if host not in host_names:
            raise refused(host, "no such device in the runtime's network namespace")
        if not is_template(target):
            if target in taken:
                raise refused(host, f'"{taken[target]}" is moved to the name "{target}" too')
            taken[target] = host
            if container_names is not None and target in container_names:
                raise refused(host, f'the container\'s network namespace has a device named "{target}" already')
        moves.append((host, target))
    return moves


def kept_addresses(records: "Iterable[Mapping[str, Any]]") -> "list[dict[str, Any]]":
    """The addresses a move must carry over: permanent (IFA_F_PERMANENT) with global
    scope (RT_SCOPE_UNIVERSE), of any family.  `records`: address_record's dicts; the
    answer: the keyword arguments that add each one again (prefix length, the peer,
    and for IPv4 the broadcast, as they were; the user-set flags such as nodad)."""
    kept: list[dict[str, Any]] = []
    for r in records:
        if not r["flags"] & IFA_F_PERMANENT or r["scope"] != RT_SCOPE_UNIVERSE:
            continue
        add: dict[str, Any] = {
            "family": r["family"],
            "prefixlen": r["prefixlen"],
            "address": r["address"] or r["local"],
        }
        if r["local"] and r["family"] == AF_INET:
            add["local"] = r["local"]
        if r["broadcast"] and r["family"] == AF_INET:
            add["broadcast"] = r["broadcast"]
        if r["flags"] & KEPT_FLAGS:
            add["IFA_FLAGS"] = r["flags"] & KEPT_FLAGS
        kept.append(add)
    return kept


def address_record(msg: "Any") -> "dict[str, Any]":
    """A pyroute2 address message as plain data."""
    flags = msg.get_attr("IFA_FLAGS")
    return {
        "family": msg["family"],
        "prefixlen": msg["prefixlen"],
        "scope": msg["scope"],
        "flags": msg["flags"] if flags is None else flags,
        "address": msg.get_attr("IFA_ADDRESS"),
        "local": msg.get_attr("IFA_LOCAL"),
        "broadcast": msg.get_attr("IFA_BROADCAST"),
    }


def shown(add: "Mapping[str, Any]") -> str:
    return f"{add['local'] if 'local' in add else add['address']}/{add['prefixlen']}"


def _links(ipr: "Any") -> dict[str, int]:
    """{name: index} of the links a socket's namespace has."""
    return {link.get_attr("IFLA_IFNAME"): link["index"] for link in ipr.get_links()}


def _pyroute2() -> "tuple[Any, Any]":
    try:
        from pyroute2 import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError
    except ImportError:
        raise ContainerError(
            "move network devices", "pyroute2 is not installed: `pyrunc features` reports linux.netDevices disabled"
        ) from None
    return IPRoute, NetlinkError


def check_host(devices: "Mapping[str, Any]") -> None:
    """The checks that need only the runtime's namespace, before create makes anything."""
    IPRoute, NetlinkError = _pyroute2()
    try:
        with IPRoute() as host:
            names = _links(host)
    except (OSError, NetlinkError) as e:
        raise ContainerError("move network devices", f"list the runtime's network devices: {_reason(e)}") from None
    plan(devices, names)


def move(devices: "Mapping[str, Any]", container_sock: int) -> "list[dict[str, Any]]":
    """Move the devices into the network namespace of `container_sock` (an rtnetlink
    socket's fd, opened there), each with its addresses, then up.  The answer:
    [{"host", "name", "addresses"}], the name the kernel gave each (a template's too)."""
    IPRoute, NetlinkError = _pyroute2()
    try:
        netns = fcntl.ioctl(container_sock, SIOCGSKNS)
    except OSError as e:
        raise ContainerError("move network devices", f"the container's network namespace: {_reason(e)}") from None
    try:
        ours, theirs = os.stat("/proc/self/ns/net"), os.fstat(netns)
        if (ours.st_dev, ours.st_ino) == (theirs.st_dev, theirs.st_ino):
            raise ContainerError(
                "move network devices",
                "the container's network namespace is the runtime's own: there is nowhere to move them",
            )
        # pyroute2 closes the fd it is given: the caller's stays the caller's.
        with IPRoute() as host, IPRoute(fileno=os.dup(container_sock)) as inside:
            host_links = _links(host)
            moves = plan(devices, host_links, set(_links(inside)))
            # A move into another namespace drops the addresses: read them all first.
            addresses: dict[str, list[dict[str, Any]]] = {}
            for name, _ in moves:
                try:
                    addresses[name] = kept_addresses(address_record(m) for m in host.get_addr(index=host_links[name]))
                except NetlinkError as e:
                    raise refused(name, f"read its addresses: {_reason(e)}") from None
            moved: list[dict[str, Any]] = []
            for name, target in moves:
                before = set(_links(inside).values())
                try:
                    host.link("set", index=host_links[name], net_ns_fd=netns, ifname=target)
                except NetlinkError as e:
                    why = (
                        f'the container\'s network namespace has a device named "{target}" already'
                        if e.code == EEXIST
                        else _reason(e)
                    )
                    raise refused(name, why) from None
                index, inner = _find_moved(inside, before, host_links[name], target, name)
                for add in addresses[name]:
                    try:
                        inside.addr("add", index=index, **add)
                    except NetlinkError as e:
                        raise refused(name, f"add address {shown(add)}: {_reason(e)}") from None
                try:
                    inside.link("set", index=index, state="up")
                except NetlinkError as e:
                    raise refused(name, f'set "{inner}" up: {_reason(e)}') from None
                moved.append({"host": name, "name": inner, "addresses": [shown(a) for a in addresses[name]]})
            return moved
    except (NetlinkError, OSError) as e:  # a failure no step above names
        raise ContainerError("move network devices", _reason(e)) from None
    finally:
        os.close(netns)


def _find_moved(inside: "Any", before: set[int], host_index: int, target: str, host_name: str) -> tuple[int, str]:
    """(index, name) of the device a move just brought into the container's namespace:
    the kernel keeps its index when that is free there, else gives it a new one."""
    new = {index: name for name, index in _links(inside).items() if index not in before}
    if host_index in new:
        return host_index, new[host_index]
    if not is_template(target):
        for index, name in new.items():
            if name == target:
                return index, name
    if len(new) == 1:
        return next(iter(new.items()))
    raise refused(host_name, "moved, but not found in the container's network namespace")


def _reason(e: Exception) -> str:
    code = getattr(e, "code", 0) or getattr(e, "errno", 0)
    return os.strerror(code).lower() if code else str(e)
