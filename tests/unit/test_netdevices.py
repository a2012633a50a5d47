"""linux.netDevices' checks and address filter on plain data (linux/netdevices.py); the
moves themselves are in tests/integration/test_netdevices.py."""

import pytest

from pyrunc.errors import ContainerError
from pyrunc.linux import netdevices as nd

HOST = {"lo", "eth0", "eth1", "veth7"}


def refusal(devices, host=HOST, container=None):
    with pytest.raises(ContainerError) as e:
        nd.plan(devices, host, container)
    return str(e.value)


def test_plan_renames_and_keeps_host_names():
    assert nd.plan({"eth0": {"name": "c0"}, "eth1": {}, "veth7": {"name": ""}}, HOST, {"lo"}) == [
        ("eth0", "c0"),
        ("eth1", "eth1"),
        ("veth7", "veth7"),
    ]


def test_a_missing_device_is_named():
    assert (
        refusal({"eth0": {}, "eth9": {}})
        == 'move network device "eth9": no such device in the runtime\'s network namespace'
    )


def test_lo_never_moves():
    assert "loopback" in refusal({"lo": {"name": "lo2"}})


def test_two_entries_to_one_name_are_refused():
    assert (
        refusal({"eth0": {"name": "c0"}, "eth1": {"name": "c0"}})
        == 'move network device "eth1": "eth0" is moved to the name "c0" too'
    )
    assert "is moved to the name" in refusal({"eth0": {}, "eth1": {"name": "eth0"}})


def test_templates_may_repeat_and_clash():
    moves = nd.plan({"eth0": {"name": "eth%d"}, "eth1": {"name": "eth%d"}}, HOST, {"lo", "eth0"})
    assert moves == [("eth0", "eth%d"), ("eth1", "eth%d")]


def test_a_name_the_container_has_is_refused_only_when_known():
    devices = {"eth0": {"name": "lo"}}
    assert nd.plan(devices, HOST) == [("eth0", "lo")]  # the host-side check cannot tell
    assert (
        refusal(devices, container={"lo"})
        == 'move network device "eth0": the container\'s network namespace has a device named "lo" already'
    )
    assert "already" in refusal({"eth1": {}}, container={"lo", "eth1"})


def record(family, address, prefixlen, flags=nd.IFA_F_PERMANENT, scope=0, local=None, broadcast=None):
    return {
        "family": family,
        "address": address,
        "prefixlen": prefixlen,
        "flags": flags,
        "scope": scope,
        "local": local,
        "broadcast": broadcast,
    }


def test_only_permanent_global_addresses_are_kept():
    records = [
        record(2, "10.0.0.2", 24, local="10.0.0.2", broadcast="10.0.0.255"),
        record(10, "fd00::2", 64, flags=nd.IFA_F_PERMANENT | nd.IFA_F_NODAD),
        record(10, "fe80::1", 64, scope=253),  # link scope
        record(10, "2001:db8::5", 64, flags=0),  # SLAAC/DHCP: has lifetimes
        record(2, "127.0.0.5", 8, scope=254, local="127.0.0.5"),  # host scope
    ]
    assert nd.kept_addresses(records) == [
        {"family": 2, "prefixlen": 24, "address": "10.0.0.2", "local": "10.0.0.2", "broadcast": "10.0.0.255"},
        {"family": 10, "prefixlen": 64, "address": "fd00::2", "IFA_FLAGS": nd.IFA_F_NODAD},
    ]


def test_a_point_to_point_peer_is_kept_apart_from_the_local_address():
    kept = nd.kept_addresses([record(2, "10.9.0.1", 32, local="10.9.0.2")])
    assert kept == [{"family": 2, "prefixlen": 32, "address": "10.9.0.1", "local": "10.9.0.2"}]
    assert nd.shown(kept[0]) == "10.9.0.2/32"
