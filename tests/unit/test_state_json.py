"""store.State writes state.json byte for byte as the dict-shaped State before it wrote
it (the strings below are what that code wrote for the same steps), and a state.json of
either version read and written back is unchanged: an upgrade in the middle of a
container's life changes nothing in its file but what the command changed."""

import os

import pytest

from pyrunc.store import STATE_FILE, State, read_state_file, write_state_file

# What the dict-shaped State wrote, each step of create, start, pause and resume of one
# container with every optional field: create's first write, host_mounts, cgroup,
# intel_rdt, pid and pid_start, started, paused, resumed.
HEAD = (
    '{"version":1,"id":"pyrunc-test-s","bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00.5Z",'
    '"started":%s,"annotations":{"a":"b"},"hooks":{"poststop":[{"path":"/bin/true"}]},'
    '"cgroup_path":"/pyrunc-test-s","notify_socket":"/run/n.sock"'
)
HOST_MOUNTS = ',"host_mounts":{"root":"/run/pyrunc/pyrunc-test-s/rootfs","before":[1,2]}'
CGROUP = ',"cgroup":{"version":2,"dir":"/pyrunc-test-s","made":["/pyrunc-test-s"]}'
RDT = (
    ',"intel_rdt":{"root":"/sys/fs/resctrl","group":"/sys/fs/resctrl/pyrunc-test-s","remove_group":true,'
    '"mon_group":null}'
)
PID = ',"pid":42,"pid_start":123456'
FULL_WRITES = [
    HEAD % "false" + "}",
    HEAD % "false" + HOST_MOUNTS + "}",
    HEAD % "false" + HOST_MOUNTS + CGROUP + "}",
    HEAD % "false" + HOST_MOUNTS + CGROUP + RDT + "}",
    HEAD % "false" + HOST_MOUNTS + CGROUP + RDT + PID + "}",
    HEAD % "true" + HOST_MOUNTS + CGROUP + RDT + PID + "}",
    HEAD % "true" + HOST_MOUNTS + CGROUP + RDT + PID + ',"paused":true}',
    HEAD % "true" + HOST_MOUNTS + CGROUP + RDT + PID + ',"paused":false}',
]
# One without the optional fields whose init was gone before create read its start
# time, started while its cgroup was frozen.
PLAIN = (
    '{"version":1,"id":"pyrunc-test-p","bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00Z",'
    '"started":%s,"annotations":{},"hooks":{},"cgroup_path":"/pyrunc-test-p"'
)
PLAIN_WRITES = [
    PLAIN % "false" + "}",
    PLAIN % "false" + ',"pid":43,"pid_start":null}',
    PLAIN % "true" + ',"pid":43,"pid_start":null,"paused":true}',
]
# A state of version 0 (no version; systemd_cgroup and rootless), started, then paused.
PREVIOUS = (
    '{"id":"pyrunc-test-old","bundle":"/nonexistent-bundle","rootfs":"/nonexistent-bundle/rootfs",'
    '"created":"2026-01-01T00:00:00.5Z","started":%s,"annotations":{"a":"b"},"hooks":{},'
    '"cgroup_path":"/pyrunc-test-old","systemd_cgroup":false,"rootless":"auto",'
    '"cgroup":{"version":2,"dir":"/pyrunc-test-old","made":["/pyrunc-test-old"]},"pid":42,"pid_start":7'
)

# A v1 host's record: per hierarchy, as every pyrunc wrote it before state version 2 (and
# still does where the hierarchies' paths differ), and the compact one, which makes the
# state version 2 (an older pyrunc then names the version instead of calling it corrupt).
V1_PER_HIERARCHY = (
    '{"version":1,"hybrid":false,"dirs":{"memory":"/pyrunc-test-v","pids":"/pyrunc-test-v"},'
    '"made":{"memory":["/pyrunc-test-v"],"pids":["/pyrunc-test-v"]},"controllers":{"memory":["memory"],"pids":["pids"]}}'
)
V1_COMPACT = (
    '{"version":1,"hybrid":false,"dir":"/pyrunc-test-v","made":["/pyrunc-test-v"],"hierarchies":["memory","pids"]}'
)
V1_STATE = (
    '{"version":%d,"id":"pyrunc-test-v","bundle":"/b","rootfs":"/b/rootfs","created":"2026-01-01T00:00:00Z",'
    '"started":true,"annotations":{},"hooks":{},"cgroup_path":"/pyrunc-test-v","cgroup":%s,"pid":44,"pid_start":9}'
)
V1_WRITES = [V1_STATE % (1, V1_PER_HIERARCHY), V1_STATE % (2, V1_COMPACT)]


def written(tmp_path, st):
    write_state_file(str(tmp_path), st)
    return (tmp_path / STATE_FILE).read_text()


def test_each_write_of_a_containers_life_is_what_the_dict_wrote(tmp_path):
    st = State(
        "pyrunc-test-s",
        "/b",
        "/b/rootfs",
        "2026-01-01T00:00:00.5Z",
        {"a": "b"},
        {"poststop": [{"path": "/bin/true"}]},
        "/pyrunc-test-s",
        "/run/n.sock",
    )
    steps = [
        lambda: None,
        lambda: setattr(st, "host_mounts", {"root": "/run/pyrunc/pyrunc-test-s/rootfs", "before": [1, 2]}),
        lambda: setattr(st, "cgroup", {"version": 2, "dir": "/pyrunc-test-s", "made": ["/pyrunc-test-s"]}),
        lambda: setattr(
            st,
            "intel_rdt",
            {
                "root": "/sys/fs/resctrl",
                "group": "/sys/fs/resctrl/pyrunc-test-s",
                "remove_group": True,
                "mon_group": None,
            },
        ),
        lambda: (setattr(st, "pid", 42), setattr(st, "pid_start", 123456)),
        lambda: setattr(st, "started", True),
        lambda: setattr(st, "paused", True),
        lambda: setattr(st, "paused", False),
    ]
    for step, want in zip(steps, FULL_WRITES, strict=True):
        step()
        assert written(tmp_path, st) == want


def test_a_state_without_optional_fields_is_written_as_the_dict_wrote_it(tmp_path):
    st = State("pyrunc-test-p", "/b", "/b/rootfs", "2026-01-01T00:00:00Z", {}, {}, "/pyrunc-test-p", "")
    assert written(tmp_path, st) == PLAIN_WRITES[0]
    st.pid, st.pid_start = 43, None
    assert written(tmp_path, st) == PLAIN_WRITES[1]
    st.started = st.paused = True
    assert written(tmp_path, st) == PLAIN_WRITES[2]


def test_a_compact_v1_cgroup_record_is_written_as_version_2_and_the_other_form_as_1(tmp_path):
    import json

    st = State("pyrunc-test-v", "/b", "/b/rootfs", "2026-01-01T00:00:00Z", {}, {}, "/pyrunc-test-v", "")
    st.pid, st.pid_start, st.started = 44, 9, True
    for record, want in zip((V1_PER_HIERARCHY, V1_COMPACT), V1_WRITES, strict=True):
        st.cgroup = json.loads(record)
        assert written(tmp_path, st) == want
    assert st.version == 1  # what it was made with: only the file says 2
    st.cgroup = {"version": 1, "driver": "systemd", "inner": json.loads(V1_COMPACT)}  # the systemd driver's
    assert written(tmp_path, st).startswith('{"version":2,')


@pytest.mark.parametrize("text", FULL_WRITES + PLAIN_WRITES + V1_WRITES + [PREVIOUS % "false" + "}"])
def test_a_state_read_and_written_back_is_unchanged(tmp_path, text):
    cid = next(c for c in ("pyrunc-test-p", "pyrunc-test-old", "pyrunc-test-v", "pyrunc-test-s") if c in text)
    path = tmp_path / cid
    path.mkdir()
    # host_mounts names the state directory's own mount point: here, this one's
    text = text.replace("/run/pyrunc/pyrunc-test-s/rootfs", os.path.realpath(path / "rootfs"))
    (path / STATE_FILE).write_text(text)
    st = read_state_file(str(path), cid)
    assert st is not None and st.version == (0 if "old" in cid else 2 if '"dir":"/pyrunc-test-v"' in text else 1)
    assert written(path, st) == text


def test_a_version_0_state_keeps_its_shape_when_a_command_changes_it(tmp_path):
    (tmp_path / STATE_FILE).write_text(PREVIOUS % "false" + "}")
    st = read_state_file(str(tmp_path), "pyrunc-test-old")
    assert st is not None and (st.version, st.systemd_cgroup, st.rootless) == (0, False, "auto")
    st.started = True
    assert written(tmp_path, st) == PREVIOUS % "true" + "}"
    st.paused = True
    assert written(tmp_path, st) == PREVIOUS % "true" + ',"paused":true}'
