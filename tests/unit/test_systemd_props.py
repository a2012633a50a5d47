"""The systemd driver's pure half: slice:prefix:name, and linux.resources as unit
properties.  The tables follow runc's systemd manager (its ExpandSlice, getUnitName,
RangeToBits, addCPUQuota and the v1/v2 property generators) and its tests."""

import pytest

from pyrunc.linux.cgroups import systemd_props as sp

INF = (1 << 64) - 1
MiB = 1 << 20


def props(resources, version=2, systemd=252, devices=True):
    return {name: (sig, value) for name, sig, value in sp.Resources(resources, version, systemd, devices).properties}


# -- paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "slice_, path",
    [
        ("-.slice", "/"),
        ("system.slice", "/system.slice"),
        ("system-foo.slice", "/system.slice/system-foo.slice"),
        ("a-b-c.slice", "/a.slice/a-b.slice/a-b-c.slice"),
        (
            "kubepods-besteffort-pod1234.slice",
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice",
        ),
    ],
)
def test_a_slice_expands_to_its_parents(slice_, path):
    assert sp.expand_slice(slice_) == path


@pytest.mark.parametrize(
    "slice_",
    ["", ".slice", "system", "-a.slice", "a-.slice", "a--b.slice", "a/b.slice", "user.slice/x.slice", "a b.slice"],
)
def test_an_invalid_slice_is_refused_in_runcs_words(slice_):
    with pytest.raises(ValueError) as e:
        sp.expand_slice(slice_)
    assert str(e.value) == f"invalid slice name: {slice_}"


@pytest.mark.parametrize(
    "cgroups_path, slice_, unit, path",
    [
        ("system.slice:docker:abc", "system.slice", "docker-abc.scope", "/system.slice/docker-abc.scope"),
        (":cri-containerd:abc", "system.slice", "cri-containerd-abc.scope", "/system.slice/cri-containerd-abc.scope"),
        (
            "kubepods-besteffort-pod1.slice:cri-containerd:abc",
            "kubepods-besteffort-pod1.slice",
            "cri-containerd-abc.scope",
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope",
        ),
        ("-.slice:p:n", "-.slice", "p-n.scope", "/p-n.scope"),
        # runc's getUnitName: an empty prefix still joins with its dash
        ("system.slice::n", "system.slice", "-n.scope", "/system.slice/-n.scope"),
        # a name that is a slice is the unit itself (kubelet's pod slices), the prefix ignored
        ("system.slice:ignored:pod-x.slice", "system.slice", "pod-x.slice", "/system.slice/pod-x.slice"),
        ("", "system.slice", "pyrunc-cid.scope", "/system.slice/pyrunc-cid.scope"),
    ],
)
def test_slice_prefix_name_gives_the_unit_and_its_cgroup(cgroups_path, slice_, unit, path):
    u = sp.parse_path(cgroups_path, "cid")
    assert (u.slice, u.name, u.path) == (slice_, unit, path)
    assert u.is_slice == unit.endswith(".slice")


@pytest.mark.parametrize(
    "cgroups_path, message",
    [
        ("/abs/path", 'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "/abs/path"'),
        ("a:b", 'got "a:b" instead'),
        ("a:b:c:d", 'got "a:b:c:d" instead'),
        ("bad:p:n", "invalid slice name: bad"),
        ("system.slice:p:", "the unit name (the last part of slice:prefix:name) is empty"),
        ("system.slice:p:../../etc", "invalid unit name 'p-../../etc.scope': character '/'"),
        ("system.slice:p q:n", "invalid unit name 'p q-n.scope': character ' '"),
    ],
)
def test_a_malformed_path_is_one_line_naming_it(cgroups_path, message):
    with pytest.raises(ValueError) as e:
        sp.parse_path(cgroups_path, "cid")
    assert message in str(e.value) and "\n" not in str(e.value)


# -- the unit's own properties ---------------------------------------------------------------


def test_a_scope_is_put_in_its_slice_delegated_with_its_first_pid():
    got = {n: (s, v) for n, s, v in sp.start_properties(sp.parse_path("a-b.slice:p:n", "x"), 42, 2, "pyrunc n")}
    assert got["Slice"] == ("s", "a-b.slice")
    assert got["Delegate"] == ("b", True)
    assert got["PIDs"] == ("au", [42])
    assert got["DefaultDependencies"] == ("b", False)
    assert got["Description"] == ("s", "pyrunc n")
    assert got["IOAccounting"] == ("b", True) and "BlockIOAccounting" not in got
    assert "Wants" not in got


def test_a_slice_unit_wants_its_parent_and_takes_no_pid():
    got = {n: (s, v) for n, s, v in sp.start_properties(sp.parse_path("system.slice::pod.slice", "x"), 42, 1, "d")}
    assert got["Wants"] == ("as", ["system.slice"])
    assert "PIDs" not in got and "Slice" not in got and "Delegate" not in got
    assert got["BlockIOAccounting"] == ("b", True)


# -- resources --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "quota, period, per_sec, file_quota",
    [
        (50_000, 100_000, 500_000, 50_000),  # half a CPU: exact
        (5_000, 100_000, 50_000, 5_000),
        (1_000, 100_000, 10_000, 1_000),  # 1%: the smallest step
        (1_234, 100_000, 20_000, 2_000),  # 12.34 ms/s rounds UP to 20 ms/s, and the file follows
        (3_333, 10_000, 340_000, 3_400),
        (1, 1_000_000, 10_000, 10_000),
        (200_000, 0, 2_000_000, 200_000),  # no period: the kernel's 100 ms
        (-1, 100_000, INF, -1),  # no limit
        (0, 50_000, INF, 0),  # a period alone: no quota
    ],
)
def test_cpu_quota_is_per_second_rounded_up_to_10ms(quota, period, per_sec, file_quota):
    got, rounded = sp.cpu_quota_properties(quota, period, 252)
    got = dict((n, v) for n, _, v in got)
    assert got["CPUQuotaPerSecUSec"] == per_sec
    assert got.get("CPUQuotaPeriodUSec") == (period or None)
    assert rounded == file_quota


def test_the_rounded_quota_is_what_the_files_get():
    r = sp.Resources({"cpu": {"quota": 1_234, "period": 100_000, "shares": 1024}}, 2, 252)
    assert r.files["cpu"] == {"quota": 2_000, "period": 100_000, "shares": 1024}
    exact = {"cpu": {"quota": 50_000, "period": 100_000}}
    assert sp.Resources(exact, 2, 252).files == exact


def test_an_old_systemd_gets_no_quota_period_and_no_cpuset():
    got = props({"cpu": {"quota": 50_000, "period": 50_000, "cpus": "0-1"}}, systemd=239)
    assert "CPUQuotaPeriodUSec" not in got and "AllowedCPUs" not in got
    assert got["CPUQuotaPerSecUSec"] == ("t", 1_000_000)


@pytest.mark.parametrize("shares, weight", [(2, 1), (1024, 39), (262144, 10000), (1, 1), (300000, 10000)])
def test_v2_cpu_shares_become_cpu_weight(shares, weight):
    assert props({"cpu": {"shares": shares}})["CPUWeight"] == ("t", weight)


def test_v1_cpu_shares_stay_shares():
    got = props({"cpu": {"shares": 512}}, version=1)
    assert got["CPUShares"] == ("t", 512) and "CPUWeight" not in got


def test_cpu_idle_is_cpu_weight_0_from_systemd_252():
    assert props({"cpu": {"idle": 1, "shares": 1024}})["CPUWeight"] == ("t", 0)
    assert props({"cpu": {"idle": 1, "shares": 1024}}, systemd=251)["CPUWeight"] == ("t", 39)


@pytest.mark.parametrize(
    "memory, want",
    [
        ({"limit": 100 * MiB}, {"MemoryMax": 100 * MiB}),
        ({"limit": 100 * MiB, "swap": 300 * MiB}, {"MemoryMax": 100 * MiB, "MemorySwapMax": 200 * MiB}),
        ({"limit": 100 * MiB, "swap": 100 * MiB}, {"MemoryMax": 100 * MiB, "MemorySwapMax": 0}),
        ({"limit": 100 * MiB, "swap": -1}, {"MemoryMax": 100 * MiB, "MemorySwapMax": INF}),
        ({"limit": -1}, {"MemoryMax": INF, "MemorySwapMax": INF}),
        ({"reservation": 50 * MiB}, {"MemoryLow": 50 * MiB}),
    ],
)
def test_v2_memory_and_swap(memory, want):
    got = {k: v for k, (_, v) in props({"memory": memory}).items() if k.startswith("Memory")}
    assert got == want


@pytest.mark.parametrize(
    "memory, why",
    [
        ({"swap": 100 * MiB}, "a memory+swap limit needs a memory limit"),
        ({"limit": 200 * MiB, "swap": 100 * MiB}, "is below the memory limit"),
    ],
)
def test_v2_swap_that_cannot_convert_names_the_field(memory, why):
    with pytest.raises(ValueError) as e:
        sp.Resources({"memory": memory}, 2, 252)
    assert str(e.value).startswith("linux.resources.memory.swap: ") and why in str(e.value)


def test_v1_memory_is_memory_limit_and_swap_is_left_to_the_files():
    got = props({"memory": {"limit": 100 * MiB, "swap": 300 * MiB, "reservation": 1}}, version=1)
    assert got["MemoryLimit"] == ("t", 100 * MiB)
    assert not {"MemoryMax", "MemorySwapMax", "MemoryLow"} & set(got)


@pytest.mark.parametrize("limit, tasks", [(100, 100), (-1, INF), (0, 1)])
def test_pids_limit_is_tasks_max_and_0_becomes_1(limit, tasks):
    assert props({"pids": {"limit": limit}})["TasksMax"] == ("t", tasks)


def test_block_io_weight():
    assert props({"blockIO": {"weight": 500}})["IOWeight"] == ("t", 4950)
    assert props({"blockIO": {"weight": 500}}, version=1)["BlockIOWeight"] == ("t", 500)


@pytest.mark.parametrize(
    "text, mask",
    [
        ("0", b"\x01"),
        ("1", b"\x02"),
        ("0,1", b"\x03"),
        ("0-3", b"\x0f"),
        ("0,1,2-3", b"\x0f"),
        ("4-7", b"\xf0"),
        ("0-15", b"\xff\xff"),
        ("16", b"\x00\x00\x01"),
        ("0-3,5", b"\x2f"),
        ("0-3,32-33", b"\x0f\x00\x00\x00\x03"),
        ("1, 2, 1-2", b"\x06"),
        ("    , 1   , 3  ,  5-7,\t", b"\xea"),
        ("128-130,1", b"\x02" + b"\x00" * 15 + b"\x07"),
    ],
)
def test_cpuset_lists_become_systemd_bitmasks(text, mask):
    assert sp.cpuset_bits(text) == mask


@pytest.mark.parametrize("text", ["", ",", "-", "1-", "-3", "54-53", "1 - 2", "x"])
def test_a_bad_cpuset_list_is_refused(text):
    with pytest.raises(ValueError):
        sp.cpuset_bits(text)


def test_allowed_cpus_and_memory_nodes_name_the_field_on_error():
    got = props({"cpu": {"cpus": "0-3,5", "mems": "0"}})
    assert got["AllowedCPUs"] == ("ay", b"\x2f") and got["AllowedMemoryNodes"] == ("ay", b"\x01")
    with pytest.raises(ValueError) as e:
        sp.Resources({"cpu": {"cpus": "3-1"}}, 2, 252)
    assert str(e.value) == "linux.resources.cpu.cpus: '3-1': invalid range: 3-1"


# -- devices ----------------------------------------------------------------------------------


def _devices(rules, systemd=252):
    warnings = []
    got = sp.device_properties(rules, systemd, warnings.append)
    return got, warnings


def test_a_deny_all_list_with_allows_is_strict_with_those_allows():
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": True, "type": "c", "major": 136, "access": "rw"},
        {"allow": True, "type": "b", "access": "m"},
        {"allow": True, "type": "b", "major": 8, "minor": 0, "access": "r"},
    ]
    got, warnings = _devices(rules)
    assert got == [
        ("DeviceAllow", "a(ss)", []),
        ("DevicePolicy", "s", "strict"),
        (
            "DeviceAllow",
            "a(ss)",
            [("/dev/char/1:3", "rwm"), ("char-136", "rw"), ("block-*", "m"), ("/dev/block/8:0", "r")],
        ),
    ]
    assert warnings == []


def test_allow_all_is_policy_auto_and_a_deny_list_is_strict_with_a_warning():
    got, warnings = _devices([{"allow": True, "access": "rwm"}])
    assert got == [("DeviceAllow", "a(ss)", []), ("DevicePolicy", "s", "auto")] and not warnings
    got, warnings = _devices([{"allow": True}, {"allow": False, "type": "c", "major": 1, "minor": 3}])
    assert got == [("DeviceAllow", "a(ss)", []), ("DevicePolicy", "s", "strict")]
    assert warnings and "no deny list" in warnings[0]


def test_a_minor_of_every_major_is_left_to_the_cgroup():
    got, warnings = _devices([{"allow": False}, {"allow": True, "type": "c", "minor": 3, "access": "r"}])
    assert got[-1] == ("DeviceAllow", "a(ss)", []) and "minor 3 of every major" in warnings[0]


def test_devices_are_not_given_on_update():
    assert "DevicePolicy" not in props({"devices": [{"allow": False}]}, devices=False)
    assert props({"devices": [{"allow": False}]})["DevicePolicy"] == ("s", "strict")


@pytest.mark.parametrize(
    "unified, want",
    [
        ({"memory.high": "1048576"}, {"MemoryHigh": 1048576}),
        ({"memory.max": "max", "memory.min": "4096"}, {"MemoryMax": INF, "MemoryMin": 4096}),
        ({"memory.swap.max": " 0 "}, {"MemorySwapMax": 0}),
        ({"pids.max": "0"}, {"TasksMax": 1}),
        ({"pids.max": "max"}, {"TasksMax": INF}),
        ({"cpu.weight": "200"}, {"CPUWeight": 200}),
        ({"cpu.idle": "1"}, {"CPUWeight": 0}),
        ({"cpu.max": "1234 100000"}, {"CPUQuotaPerSecUSec": 20000, "CPUQuotaPeriodUSec": 100000}),
        ({"cpu.max": "max"}, {"CPUQuotaPerSecUSec": INF, "CPUQuotaPeriodUSec": 100000}),
        ({"cpuset.cpus": "0-3,5"}, {"AllowedCPUs": b"\x2f"}),
        ({"io.max": "8:0 rbps=1"}, {}),  # no property: the files only
    ],
)
def test_unified_files_systemd_has_a_property_for(unified, want):
    assert {k: v for k, (_, v) in props({"unified": unified}).items()} == want


def test_unified_comes_last_and_wins():
    got = sp.Resources({"memory": {"limit": 100 * MiB}, "unified": {"memory.max": "max"}}, 2, 252).properties
    assert [v for n, _, v in got if n == "MemoryMax"] == [100 * MiB, INF]


@pytest.mark.parametrize("unified", [{"memory.max": "-1"}, {"cpu.max": "1 2 3"}, {"pids.max": "x"}])
def test_a_bad_unified_value_names_the_key(unified):
    with pytest.raises(ValueError) as e:
        sp.Resources({"unified": unified}, 2, 252)
    assert str(e.value).startswith(f'linux.resources.unified["{next(iter(unified))}"]: ')
