"""A state directory whose state.json is missing, cut short, not JSON or not of pyrunc's
shape: `list` shows it broken, `state` and the other commands say why in one line,
`delete -f` removes it (killing only a process whose pid and start time still match),
and the other containers in the root are untouched."""

import os
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc import control, jsonc, lifecycle, signalling, status
from pyrunc.errors import StateError
from pyrunc.linux import Seams, procfs
from pyrunc.store import STATE_FILE, CorruptState, State, Store


def good(cid, **more):
    return {
        "id": cid,
        "bundle": "/nonexistent-bundle",
        "created": "2024-01-01T00:00:00Z",
        "started": False,
        "annotations": {},
        "hooks": {},
        **more,
    }


BROKEN = {
    "empty": b"",
    "truncated": jsonc.dumps(good("x")).encode()[:25],
    "a list": b"[]",
    "a number": b"7",
    "no bundle": b'{"id": "x"}',
    "a string pid": jsonc.dumps(good("x", pid="12", pid_start=1)).encode(),
    "a pid beyond the kernel's": jsonc.dumps(good("x", pid=1 << 40, pid_start=1)).encode(),
    "a pid without its start": jsonc.dumps(good("x", pid=12)).encode(),
    "a hook without a path": jsonc.dumps(good("x", hooks={"poststop": [{"args": ["x"]}]})).encode(),
    "a garbled cgroup": jsonc.dumps(good("x", cgroup={"version": 2, "dir": 5})).encode(),
    "not UTF-8": b'{"id": "\xff"}',
    "nested too deeply": b"[" * 100000,
}


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "state"))


def add(store, cid, data=None):
    """A container directory holding `data` as its state.json (none when None)."""
    path = os.path.join(store.root, cid)
    os.makedirs(path)
    if data is not None:
        with open(os.path.join(path, STATE_FILE), "wb") as f:
            f.write(data)
    return path


def neighbours(store):
    """Two sound containers around the broken one, in id order."""
    with store.create("pyrunc-test-a", State.from_json(good("pyrunc-test-a"))):
        pass
    with store.create("pyrunc-test-z", State.from_json(good("pyrunc-test-z"))):
        pass


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_corrupt_state_is_listed_broken_refused_in_one_line_and_deleted_with_force(store, kind):
    neighbours(store)
    path = add(store, "pyrunc-test-m", BROKEN[kind])
    listed = {s["id"]: s["status"] for s in status.list_states(store)}
    assert listed == {"pyrunc-test-a": "creating", "pyrunc-test-m": "broken", "pyrunc-test-z": "creating"}
    for read in (
        lambda: status.state(store, "pyrunc-test-m"),
        lambda: lifecycle.delete(store, "pyrunc-test-m", Seams()),
        lambda: signalling.kill(store, "pyrunc-test-m", 9, Seams()),
    ):
        with pytest.raises(StateError) as e:
            read()
        assert "\n" not in str(e.value)
        assert str(e.value).startswith(f"container pyrunc-test-m: corrupt state file {path}/state.json: ")
    assert status.state(store, "pyrunc-test-a")["status"] == "creating"
    lifecycle.delete(store, "pyrunc-test-m", Seams(), force=True)
    assert not os.path.exists(path)
    assert [s["id"] for s in status.list_states(store)] == ["pyrunc-test-a", "pyrunc-test-z"]


@pytest.mark.parametrize("files", [(), ("state.json.0123456789abcdef.tmp",)])
def test_a_directory_without_state_json_is_listed_broken_and_deleted(store, files):
    neighbours(store)
    path = add(store, "pyrunc-test-m")
    for name in files:  # a write cut short before its rename
        open(os.path.join(path, name), "wb").close()
    assert {s["id"]: s["status"] for s in status.list_states(store)}["pyrunc-test-m"] == "broken"
    with pytest.raises(StateError, match=f"^container pyrunc-test-m: no state.json in its directory {path}$"):
        status.state(store, "pyrunc-test-m")
    lifecycle.delete(store, "pyrunc-test-m", Seams(), force=True)
    assert not os.path.exists(path)
    assert len(status.list_states(store)) == 2


@pytest.mark.parametrize("rdt", [None, "L3:0=f"])
def test_update_of_a_directory_without_state_json_says_why(store, rdt):
    """update takes the lock and reads the state itself: none there is the broken
    container's error, not a crash (AttributeError with --l3-cache-schema) nor a bogus
    "no cgroup"."""
    path = add(store, "pyrunc-test-m")
    request = control.UpdateRequest({"pids": {"limit": 3}} if rdt is None else {}, l3_cache_schema=rdt)
    with pytest.raises(StateError, match=f"^container pyrunc-test-m: no state.json in its directory {path}$"):
        control.update(store, "pyrunc-test-m", request, Seams())
    assert os.listdir(path) == []


def test_a_directory_being_deleted_is_not_listed(store):
    """Its lock held (a delete under way, state.json already gone): not broken, gone."""
    path = add(store, "pyrunc-test-m")
    with store.open("pyrunc-test-m"):
        assert status.list_states(store) == []
        with pytest.raises(StateError, match="does not exist"):
            status.state(store, "pyrunc-test-m")
    assert status.list_states(store)[0]["status"] == "broken"
    os.rmdir(path)


def sleeper():
    return subprocess.Popen(["sleep", "1000"])


@pytest.mark.parametrize("cut", [0, 1])
def test_delete_force_kills_the_init_a_cut_state_still_names(store, cut):
    """A state cut short keeps what it still holds whole: the init, when pid and start time
    are both still there, is killed (cut 0: whole, but of the wrong shape elsewhere)."""
    proc = sleeper()
    try:
        st = good("pyrunc-test-m", annotations={"a": 1}, pid=proc.pid, pid_start=procfs.start_time(proc.pid))
        text = jsonc.dumps(st).encode()
        add(store, "pyrunc-test-m", text[: len(text) - cut])
        with pytest.raises(CorruptState):
            status.state(store, "pyrunc-test-m")
        lifecycle.delete(store, "pyrunc-test-m", Seams(), force=True)
        assert proc.wait(timeout=10) == -9
    finally:
        proc.kill()
        proc.wait()


def test_delete_force_spares_a_process_whose_start_time_differs(store):
    proc = sleeper()
    try:
        st = good("pyrunc-test-m", pid=proc.pid, pid_start=procfs.start_time(proc.pid) + 1, started="yes")
        add(store, "pyrunc-test-m", jsonc.dumps(st).encode())
        lifecycle.delete(store, "pyrunc-test-m", Seams(), force=True)
        assert not os.path.exists(os.path.join(store.root, "pyrunc-test-m"))
        assert procfs.is_alive(proc.pid, procfs.start_time(proc.pid))
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_a_cut_state_keeps_its_complete_members(tmp_path):
    from pyrunc.store import read_state_file

    st = good(
        "x",
        cgroup={"version": 2, "dir": "/pyrunc-test-q/c", "made": ["/pyrunc-test-q", "/pyrunc-test-q/c"]},
        pid=12,
        pid_start=34,
    )
    text = jsonc.dumps(st)
    (tmp_path / STATE_FILE).write_text(text[: text.index('"pid_start"') + 5])
    with pytest.raises(CorruptState) as e:
        read_state_file(str(tmp_path), "x")
    assert e.value.partial == State.from_json({k: v for k, v in st.items() if k != "pid_start"})
    assert (e.value.partial.pid, e.value.partial.pid_start, e.value.partial.cgroup) == (12, None, st["cgroup"])


V1 = {
    "version": 1,
    "hybrid": False,
    "dirs": {"memory": "/pyrunc-test-q/c"},
    "made": {"memory": ["/pyrunc-test-q", "/pyrunc-test-q/c"]},
    "controllers": {"memory": ["memory"]},
}


@pytest.mark.parametrize(
    "cgroup",
    [
        {"version": 2, "dir": "/pyrunc-test-q/c", "made": ["/pyrunc-test-q"]},
        dict(V1, made={"memory": ["/pyrunc-test-q"]}),
        dict(V1, made={"memory": []}),
    ],
)
def test_a_create_that_made_only_the_parents_is_sound(tmp_path, cgroup):
    """Creates racing for one cgroupsPath: one makes the parents, another the leaf."""
    from pyrunc.store import read_state_file

    st = good("x", cgroup=cgroup, pid=12, pid_start=34)
    (tmp_path / STATE_FILE).write_text(jsonc.dumps(st))
    assert read_state_file(str(tmp_path), "x") == State.from_json(st)


V1_TWO = {
    "version": 1,
    "hybrid": False,
    "dirs": {"memory": "/pyrunc-test-q/c", "pids": "/pyrunc-test-q/c"},
    "made": {"memory": ["/pyrunc-test-q", "/pyrunc-test-q/c"], "pids": ["/pyrunc-test-q", "/pyrunc-test-q/c"]},
    "controllers": {"memory": ["memory"], "pids": ["pids"]},
}


@pytest.mark.parametrize(
    ("cgroup", "sound"),
    [
        (V1_TWO, True),
        # the same record in both hierarchies but one's made list names another tree
        (dict(V1_TWO, made=dict(V1_TWO["made"], pids=["/pyrunc-test-other"])), False),
        # the same made list, but under a dir it is not above
        (dict(V1_TWO, dirs=dict(V1_TWO["dirs"], pids="/pyrunc-test-r/c")), False),
        # unhashable items where a path belongs
        (dict(V1_TWO, made=dict(V1_TWO["made"], pids=[["/pyrunc-test-q"]])), False),
        (dict(V1_TWO, dirs=dict(V1_TWO["dirs"], pids=["/pyrunc-test-q/c"])), False),
    ],
)
def test_a_v1_record_repeated_per_hierarchy_is_checked_in_each(cgroup, sound):
    """The shape check takes a record repeated in several hierarchies once, and still
    refuses a hierarchy whose record differs."""
    from pyrunc.store import _cgroup_shape

    assert _cgroup_shape(cgroup) is sound


def test_a_long_id_is_told_its_length():
    from pyrunc.store import check_id

    with pytest.raises(
        StateError,
        match=r"^invalid container id 'xxxxxxxxxxxxxxxxxxxx'\.\.\.: 300 characters "
        r"long; at most 255$",
    ):
        check_id("x" * 300)


# The systemd driver's record (cgroups/systemd.py to_dict).
SYSTEMD = {
    "version": 2,
    "driver": "systemd",
    "slice": "system.slice",
    "unit": "p-x.scope",
    "systemd": 252,
    "started": True,
    "inner": {"version": 2, "dir": "/system.slice/p-x.scope", "made": []},
}


@pytest.mark.parametrize(
    "field, value",
    [
        ("cgroup", {"version": 2, "dir": "/pyrunc-test-q/..", "made": ["/pyrunc-test-q/.."]}),
        ("cgroup", dict(V1, made={"memory": ["/pyrunc-test-q", "/pyrunc-test-q/../.."]})),
        ("cgroup", dict(V1, made={"..": ["/pyrunc-test-q"]})),
        ("cgroup", dict(V1, dirs={"memory": "pyrunc-test-q/c"})),
        ("cgroup", dict(V1, made={"memory": ["/pyrunc-test-q", ""]})),
        ("cgroup", dict(V1, dirs={"memory": "/"})),
        ("cgroup", {"version": 2, "dir": "/", "made": ["/pyrunc-test-q"]}),
        ("cgroup", {"version": 2, "dir": "/pyrunc-test-q/d", "made": ["/pyrunc-test-q", "/pyrunc-test-q/c"]}),
        # under what was made as a string, but not as a path (kill --all and pause act on it)
        ("cgroup", {"version": 2, "dir": "/pyrunc-test-q/..", "made": ["/pyrunc-test-q"]}),
        ("cgroup", {"version": 2, "dir": "/pyrunc-test-q//c", "made": ["/pyrunc-test-q"]}),
        ("cgroup", dict(V1, made={"memory": ["/pyrunc-test-q", "/pyrunc-test-q//c"]})),
        ("cgroup", dict(V1, made={"memory": ["/pyrunc-test-q/"]})),
        ("cgroup", dict(V1, made={"memory": ["/pyrunc-test-q/./c"]})),
        ("cgroup", dict(V1, dirs={"": "/pyrunc-test-q/c"})),
        ("cgroup", {"version": 2, "dir": "", "made": []}),
        ("cgroup", {"version": 2, "dir": "/pyrunc-test-q\0/c", "made": []}),
        ("cgroup", dict(SYSTEMD, unit="../x.scope")),
        ("cgroup", dict(SYSTEMD, unit="p-other.scope")),  # its cgroup is another unit's
        ("cgroup", dict(SYSTEMD, slice="a/b.slice")),
        ("cgroup", dict(SYSTEMD, started="yes")),
        ("cgroup", dict(SYSTEMD, inner={"version": 2, "dir": "/", "made": []})),
        ("cgroup", dict(SYSTEMD, inner=dict(SYSTEMD))),
        ("cgroup", dict(SYSTEMD, version=1)),
        ("host_mounts", {"root": "/", "before": []}),
    ],
)
def test_a_state_naming_what_is_not_the_containers_own_is_corrupt_and_that_field_dropped(tmp_path, field, value):
    """delete removes the cgroups below the one a state names and detaches every new mount
    under its mount point: a state pointing above its own (`/`, `..`) names nothing."""
    from pyrunc.store import read_state_file

    (tmp_path / STATE_FILE).write_text(jsonc.dumps(good("x", **{field: value})))
    with pytest.raises(CorruptState) as e:
        read_state_file(str(tmp_path), "x")
    assert getattr(e.value.partial, field) is None and e.value.partial.bundle == "/nonexistent-bundle"


# v1's compact record (v1.py's to_dict): one dir and one made list for every hierarchy,
# named; the unified hierarchy's controllers listed.
V1_ONCE = {
    "version": 1,
    "hybrid": True,
    "dir": "/pyrunc-test-q/c",
    "made": ["/pyrunc-test-q", "/pyrunc-test-q/c"],
    "hierarchies": ["memory", "cpu,cpuacct", "systemd", "unified"],
    "unified": ["pids"],
}


@pytest.mark.parametrize(
    "cgroup",
    [
        V1_ONCE,
        dict(V1_ONCE, made=["/pyrunc-test-q"]),  # a racing create made the leaf
        dict(V1_ONCE, made=[]),  # joined
        dict(V1_ONCE, dir="/", made=[]),  # cgroupsPath "/"
        {k: v for k, v in V1_ONCE.items() if k != "hybrid"},
        dict(V1_ONCE, unified=[]),
        {"version": 1, "dir": "/pyrunc-test-q/c", "made": [], "hierarchies": ["memory"]},  # v1 alone
    ],
)
def test_the_compact_v1_record_is_sound(cgroup):
    from pyrunc.store import _cgroup_shape

    assert _cgroup_shape(cgroup) is True


@pytest.mark.parametrize(
    "cgroup",
    [
        # neither form, or both
        {k: v for k, v in V1_ONCE.items() if k != "dir"},
        dict(V1_ONCE, dirs={"memory": "/pyrunc-test-q/c"}),
        dict(V1, dir="/pyrunc-test-q/c"),
        # the paths: not absolute and normal, above what was made, a root where something was made
        dict(V1_ONCE, dir="pyrunc-test-q/c"),
        dict(V1_ONCE, dir="/pyrunc-test-q/.."),
        dict(V1_ONCE, dir="/pyrunc-test-q/c/"),
        dict(V1_ONCE, dir="/pyrunc-test-q//c"),
        dict(V1_ONCE, dir="/pyrunc-test-q/./c", made=["/pyrunc-test-q"]),
        dict(V1_ONCE, dir="/", made=["/pyrunc-test-q"]),
        dict(V1_ONCE, made=["/"]),
        dict(V1_ONCE, made=["/", "/pyrunc-test-q/c"]),
        dict(V1_ONCE, made=["/pyrunc-test-q", "/pyrunc-test-q/../.."]),
        dict(V1_ONCE, made=["/pyrunc-test-q", ""]),
        dict(V1_ONCE, made=["/pyrunc-test-other"]),
        dict(V1_ONCE, dir="/pyrunc-test-q/d", made=["/pyrunc-test-q/c"]),
        dict(V1_ONCE, dir="/pyrunc-test-q\0/c", made=[]),
        dict(V1_ONCE, dir="", made=[]),
        # types
        dict(V1_ONCE, dir=["/pyrunc-test-q/c"]),
        dict(V1_ONCE, dir=None, made=[]),
        dict(V1_ONCE, made={"memory": ["/pyrunc-test-q", "/pyrunc-test-q/c"]}),
        dict(V1_ONCE, made="/pyrunc-test-q/c"),
        dict(V1_ONCE, made=[["/pyrunc-test-q"]]),
        dict(V1_ONCE, hybrid="yes"),
        dict(V1_ONCE, version="1"),
        # the hierarchies, which name directories under /sys/fs/cgroup
        {k: v for k, v in V1_ONCE.items() if k != "hierarchies"},
        dict(V1_ONCE, hierarchies=[]),
        dict(V1_ONCE, hierarchies=["memory", ".."]),
        dict(V1_ONCE, hierarchies=["."]),
        dict(V1_ONCE, hierarchies=[""]),
        dict(V1_ONCE, hierarchies=["memory/../.."]),
        dict(V1_ONCE, hierarchies=["memory", ["pids"]]),
        dict(V1_ONCE, hierarchies=["memory", 1]),
        dict(V1_ONCE, hierarchies="memory"),
        dict(V1_ONCE, hierarchies={"memory": ["memory"]}),
        # the unified hierarchy's controllers: listed exactly when it is one of them
        {k: v for k, v in V1_ONCE.items() if k != "unified"},
        dict(V1_ONCE, hierarchies=["memory"]),
        dict(V1_ONCE, unified="pids"),
        dict(V1_ONCE, unified=[["pids"]]),
        dict(V1_ONCE, unified=[None]),
        # a mix of the two forms
        dict(V1_ONCE, controllers={"memory": ["memory"]}),
        dict(V1, hierarchies=["memory"]),
        # the systemd driver's, whose cgroup is its unit's
        dict(SYSTEMD, version=1, inner=dict(V1_ONCE, dir="/system.slice/p-other.scope", made=[])),
    ],
)
def test_a_hostile_compact_v1_record_is_refused(tmp_path, cgroup):
    """The compact record is checked with the per-hierarchy one's guarantees: absolute,
    normal paths; made is the own cgroup or its ancestors, never a root; sane hierarchy
    names.  delete, kill --all and pause act on what it names."""
    from pyrunc.store import _cgroup_shape, read_state_file

    assert _cgroup_shape(cgroup) is False
    (tmp_path / STATE_FILE).write_text(jsonc.dumps(good("x", version=2, cgroup=cgroup)))
    with pytest.raises(CorruptState) as e:
        read_state_file(str(tmp_path), "x")
    assert e.value.partial.cgroup is None and e.value.partial.bundle == "/nonexistent-bundle"


def test_a_systemd_unit_on_v1_may_have_the_compact_record():
    from pyrunc.store import _cgroup_shape

    inner = dict(V1_ONCE, dir="/system.slice/p-x.scope", made=["/system.slice", "/system.slice/p-x.scope"])
    assert _cgroup_shape(dict(SYSTEMD, version=1, inner=inner)) is True


def test_the_shapes_create_writes_are_sound(tmp_path):
    from pyrunc.store import read_state_file

    st = good(
        "x",
        rootfs="/r",
        cgroup=V1,
        host_mounts={"root": os.path.realpath(tmp_path / "rootfs"), "before": [1, 2]},
        pid=1,
        pid_start=5,
        cgroup_path="/pyrunc-test-q/c",
        systemd_cgroup=False,
        rootless="auto",
    )
    (tmp_path / STATE_FILE).write_text(jsonc.dumps(st))
    assert read_state_file(str(tmp_path), "x").to_json() == st
    st["cgroup"] = {"version": 2, "dir": "/pyrunc-test-q/c", "made": ["/pyrunc-test-q/c"]}
    (tmp_path / STATE_FILE).write_text(jsonc.dumps(st))
    assert read_state_file(str(tmp_path), "x").to_json() == st
    st["cgroup"] = SYSTEMD  # --systemd-cgroup
    (tmp_path / STATE_FILE).write_text(jsonc.dumps(st))
    assert read_state_file(str(tmp_path), "x").to_json() == st
    # cgroupsPath "/": the hierarchies' roots joined, nothing made
    for cgroup in ({"version": 2, "dir": "/", "made": []}, dict(V1, dirs={"memory": "/"}, made={"memory": []})):
        st["cgroup"] = cgroup
        (tmp_path / STATE_FILE).write_text(jsonc.dumps(st))
        assert read_state_file(str(tmp_path), "x").to_json() == st


@pytest.mark.parametrize(
    "rdt, sound",
    [
        (None, True),
        ({"root": "/sys/fs/resctrl", "group": "/sys/fs/resctrl/x", "remove_group": True, "mon_group": None}, True),
        (
            {
                "root": "/sys/fs/resctrl",
                "group": "/sys/fs/resctrl/shared",
                "remove_group": False,
                "mon_group": "/sys/fs/resctrl/shared/mon_groups/x",
            },
            True,
        ),
        ({"root": "/sys/fs/resctrl", "group": "/sys/fs/resctrl", "remove_group": False, "mon_group": None}, True),
        ({"root": "/sys/fs/resctrl", "group": "/sys/fs/resctrl/other", "remove_group": True, "mon_group": None}, False),
        ({"root": "/sys/fs/resctrl", "group": "/sys/fs/resctrl/../x", "remove_group": False, "mon_group": None}, False),
        ({"root": "/sys/fs/resctrl", "group": "/sys/fs/resctrl/a/b", "remove_group": False, "mon_group": None}, False),
        (
            {
                "root": "/sys/fs/resctrl",
                "group": "/sys/fs/resctrl/x",
                "remove_group": False,
                "mon_group": "/sys/fs/resctrl/x/mon_groups/other",
            },
            False,
        ),
        ({"root": "/sys/fs/resctrl", "group": "/sys/fs/resctrl/x", "remove_group": "yes", "mon_group": None}, False),
    ],
)
def test_an_intel_rdt_record_names_only_the_containers_own_group(tmp_path, rdt, sound):
    """delete removes the group of an intel_rdt record it made, and its monitoring group:
    never another's."""
    from pyrunc.store import read_state_file

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / STATE_FILE).write_text(jsonc.dumps(good("x", intel_rdt=rdt)))
    if sound:
        assert read_state_file(str(tmp_path / "x"), "x").intel_rdt == rdt
    else:
        with pytest.raises(CorruptState, match="'intel_rdt' is not what pyrunc writes"):
            read_state_file(str(tmp_path / "x"), "x")


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 1 << 64)
    | st.sampled_from(["", "/", "/a", "/a/b", "/pyrunc-test-q/c", "x", "..", "/a/..", "memory"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "version",
                    "dir",
                    "dirs",
                    "made",
                    "controllers",
                    "hybrid",
                    "memory",
                    "path",
                    "args",
                    "root",
                    "before",
                    "group",
                    "remove_group",
                    "mon_group",
                    "poststop",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
FULL = good(
    "x",
    version=1,
    cgroup=V1,
    pid=1,
    pid_start=5,
    cgroup_path="/pyrunc-test-q/c",
    systemd_cgroup=False,
    rootless="auto",
    paused=False,
    notify_socket="/n",
    rootfs="/r",
    hooks={"poststop": [{"path": "/bin/true", "args": ["true"], "timeout": 3}]},
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FULL) + ["intel_rdt", "host_mounts"]), JSON_VALUES, st.booleans())
def test_the_fast_verdict_on_a_state_is_the_field_by_field_one(tmp_path_factory, key, value, drop):
    """_sound (what list runs on every state) accepts exactly what the field-by-field
    check accepts."""
    from pyrunc import store

    path = str(tmp_path_factory.getbasetemp() / "x")
    state = dict(FULL)
    if drop:
        state.pop(key, None)
    else:
        state[key] = value
    partial = store._partial(state, path)
    slow = (
        len(partial) == len(state)
        and "id" in state
        and "bundle" in state
        and ("pid" in state) == ("pid_start" in state)
    )
    assert store._sound(state, path) == slow
