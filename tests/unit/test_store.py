"""The state store and container identity: ids, atomic state, locking, pid + start time."""

import os
import subprocess
import sys
import threading

import pytest

from pyrunc import lifecycle, signalling, status
from pyrunc.errors import StateError
from pyrunc.linux import Seams, procfs
from pyrunc.linux.kernel import Kernel
from pyrunc.store import State, Store, check_id


def initial(cid):
    return State(cid, "/nonexistent-bundle", created="2024-01-01T00:00:00Z")


def dead_pid():
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def add_stopped(store, cid):
    st = initial(cid)
    with store.create(cid, st) as cdir:
        st.pid, st.pid_start = dead_pid(), 12345
        cdir.write_state(st)
    return st


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "state"))


@pytest.mark.parametrize("cid", ["abc", "A-b_c.d+e", "a,b", "pyrunc-test-1", "x" * 255, ".a"])
def test_valid_ids(cid):
    check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "a:b", "~x", "x" * 256, "é", "a\n"])
def test_invalid_ids(cid):
    with pytest.raises(StateError, match="container id"):
        check_id(cid)


def test_create_writes_state_and_lists(store):
    st = add_stopped(store, "pyrunc-test-a")
    assert store.ids() == ["pyrunc-test-a"]
    assert store.peek("pyrunc-test-a") == st
    assert os.listdir(os.path.join(store.root, "pyrunc-test-a")) == ["state.json"]


def test_list_names_each_state_directorys_owner_broken_ones_too(store):
    """list_states reads through the root opened once; with an owner function each
    container's "owner" is that of its directory's uid, without one ""."""
    add_stopped(store, "pyrunc-test-a")
    add_stopped(store, "pyrunc-test-b")
    os.mkdir(os.path.join(store.root, "pyrunc-test-c"))  # no state.json: broken
    owner = os.stat(store.root).st_uid
    if os.geteuid() == 0:
        os.chown(os.path.join(store.root, "pyrunc-test-b"), 65534, 65534)
    listed = status.list_states(store, lambda uid: f"user {uid}")
    assert [(s["id"], s["status"], s["owner"]) for s in listed] == [
        ("pyrunc-test-a", "stopped", f"user {owner}"),
        ("pyrunc-test-b", "stopped", f"user {65534 if os.geteuid() == 0 else owner}"),
        ("pyrunc-test-c", "broken", f"user {owner}"),
    ]
    assert {s["owner"] for s in status.list_states(store)} == {""}


def test_list_of_a_root_that_is_not_there_or_not_a_directory(tmp_path):
    assert status.list_states(Store(str(tmp_path / "none"))) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(StateError, match="is not a directory"):
        status.list_states(Store(str(tmp_path / "file")))


@pytest.fixture
def file_calls(monkeypatch):
    """The renames and fsyncs the store makes, by name (each still done for real), through
    os or posix (the state's rewrite calls posix: `start` loads no os)."""
    import posix

    calls = []
    for name in ("rename", "fsync"):
        real = getattr(os, name)

        def spy(*args, _real=real, _name=name):
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(os, name, spy)
        monkeypatch.setattr(posix, name, spy)
    return calls


def test_create_writes_its_files_in_place_and_renames_only_the_directory(store, file_calls):
    """The directory is invisible until its one rename: its files need no temp file of
    their own, and nothing is fsynced (a state cannot outlive a reboot)."""
    with store.create("pyrunc-test-a", initial("pyrunc-test-a"), {"config.json": b'{"ociVersion":"1"}'}):
        pass
    assert file_calls == ["rename"]
    path = os.path.join(store.root, "pyrunc-test-a")
    assert sorted(os.listdir(path)) == ["config.json", "state.json"]
    with open(os.path.join(path, "config.json"), "rb") as f:
        assert f.read() == b'{"ociVersion":"1"}'
    assert store.peek("pyrunc-test-a") == initial("pyrunc-test-a")


def test_a_state_write_is_a_rename_without_fsync(store, file_calls):
    st = initial("pyrunc-test-a")
    with store.create("pyrunc-test-a", st) as cdir:
        del file_calls[:]
        st.pid, st.pid_start = dead_pid(), 12345
        cdir.write_state(st)
    assert file_calls == ["rename"]
    assert store.peek("pyrunc-test-a") == st
    assert os.listdir(os.path.join(store.root, "pyrunc-test-a")) == ["state.json"]  # no temp file left


def test_second_create_fails_and_leaves_the_first_alone(store):
    st = add_stopped(store, "pyrunc-test-a")
    with pytest.raises(StateError, match="container pyrunc-test-a already exists"):
        store.create("pyrunc-test-a", initial("pyrunc-test-a"))
    assert store.peek("pyrunc-test-a") == st
    assert os.listdir(store.root) == ["pyrunc-test-a"]  # no temporary directory left


def test_racing_creates_of_one_id_have_one_winner(store):
    results = []

    def create():
        try:
            store.create("pyrunc-test-a", initial("pyrunc-test-a")).close()
            results.append("ok")
        except StateError as e:
            results.append(str(e))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1
    assert all("already exists" in r for r in results if r != "ok")
    assert os.listdir(store.root) == ["pyrunc-test-a"]


def test_a_container_being_created_is_locked_and_reported_creating(store):
    cdir = store.create("pyrunc-test-a", initial("pyrunc-test-a"))
    try:
        assert status.state(store, "pyrunc-test-a")["status"] == "creating"
        got = []
        t = threading.Thread(target=lambda: got.append(store.open("pyrunc-test-a").close()))
        t.start()
        t.join(0.5)
        assert t.is_alive()  # waits for the creator's lock
    finally:
        cdir.close()
    t.join()
    assert got == [None]


def test_a_create_that_died_leaves_a_deletable_directory(store):
    store.create("pyrunc-test-a", initial("pyrunc-test-a")).close()  # its lock is gone
    assert status.state(store, "pyrunc-test-a")["status"] == "creating"
    with pytest.raises(StateError, match="not running"):
        signalling.kill(store, "pyrunc-test-a", 15, Seams())
    with pytest.raises(StateError, match="creating"):
        lifecycle.start(store, "pyrunc-test-a", Seams())
    lifecycle.delete(store, "pyrunc-test-a", Seams())
    assert store.ids() == []


def test_unknown_id_does_not_exist(store):
    for call in (
        lambda: store.open("pyrunc-test-x"),
        lambda: store.peek("pyrunc-test-x"),
        lambda: status.state(store, "pyrunc-test-x"),
    ):
        with pytest.raises(StateError, match="container pyrunc-test-x does not exist"):
            call()


def test_parallel_deletes_serialize(store, tmp_path):
    """Ten `pyrunc delete` of one container at once: one succeeds, nine find it gone."""
    add_stopped(store, "pyrunc-test-a")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "pyrunc", "--root", store.root, "delete", "pyrunc-test-a"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(10)
    ]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in results].count(0) == 1
    for code, err in results:
        assert code == 0 or (code == 1 and "pyrunc-test-a does not exist" in err), err
    assert store.ids() == []


def test_parallel_creates_of_different_ids_all_succeed(store):
    errors = []

    def create(i):
        try:
            add_stopped(store, f"pyrunc-test-{i}")
        except Exception as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.ids() == sorted(f"pyrunc-test-{i}" for i in range(10))


# --- identity: pid + start time -----------------------------------------------------------


def own_state(started=False):
    st = initial("pyrunc-test-a")
    st.pid, st.pid_start, st.started = os.getpid(), procfs.start_time(os.getpid()), started
    return st


def test_status_follows_the_process():
    assert lifecycle.status_of(own_state()) == "created"
    assert lifecycle.status_of(own_state(started=True)) == "running"
    assert lifecycle.status_of(initial("pyrunc-test-a")) == "creating"


def test_recycled_pid_is_not_mistaken_for_the_container():
    st = own_state(started=True)
    st.pid_start += 1  # a live process under this pid, but not the one that was started
    assert lifecycle.status_of(st) == "stopped"
    assert procfs.open_pidfd(Kernel(), st.pid, st.pid_start) is None


def test_exited_process_is_stopped_without_any_pyrunc_process():
    st = initial("pyrunc-test-a")
    st.pid, st.pid_start, st.started = dead_pid(), 1, True
    assert lifecycle.status_of(st) == "stopped"
    st.pid_start = None  # an old state without a start time is never taken as alive
    assert lifecycle.status_of(st) == "stopped"


def test_a_process_that_kill_may_not_signal_is_still_judged_by_its_start_time():
    """is_alive's kill(pid, 0) answers EPERM for another user's process: only ESRCH is
    taken as gone.  A child that is no longer root asks about this (root) process."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the child drops to another user")
    me, started = os.getpid(), procfs.start_time(os.getpid())
    child = os.fork()
    if child == 0:
        try:
            os.setgid(65534)
            os.setuid(65534)
            seen = (procfs.is_alive(me, started), procfs.is_alive(me, started + 1))
            os._exit(0 if seen == (True, False) else 1)
        finally:
            os._exit(2)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0


def test_no_pid_or_a_negative_one_is_never_alive():
    """A negative pid would ask kill about a process group: never the container's init."""
    started = procfs.start_time(os.getpid())
    assert not procfs.is_alive(-os.getpid(), started)
    assert not procfs.is_alive(0, started)
    assert not procfs.is_alive(None, started)


def test_zombie_is_stopped():
    proc = subprocess.Popen(["sleep", "30"])
    started = procfs.start_time(proc.pid)
    proc.kill()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    try:
        st = initial("pyrunc-test-a")
        st.pid, st.pid_start, st.started = proc.pid, started, True
        assert started is not None and lifecycle.status_of(st) == "stopped"
    finally:
        proc.wait()


def test_stopped_state_json_has_pid_0_like_runc():
    st = initial("pyrunc-test-a")
    st.pid, st.pid_start, st.started = dead_pid(), 1, True
    out = status.oci_state("pyrunc-test-a", st)
    assert list(out)[:4] == ["ociVersion", "id", "pid", "status"]
    assert out["pid"] == 0 and out["status"] == "stopped"
    running = status.oci_state("pyrunc-test-a", own_state(started=True))
    assert running["pid"] == os.getpid() and running["status"] == "running"


def test_descendants_stay_within_the_tree():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        found = procfs.descendants_of(os.getpid())
        assert os.getpid() in found and proc.pid in found
        assert 1 not in found and os.getppid() not in found
        # sharing our pid namespace, the container's processes are the init's tree only
        assert procfs.container_pids(proc.pid) == [proc.pid]
    finally:
        proc.kill()
        proc.wait()


def test_created_is_rfc3339nano_like_runcs(monkeypatch):
    """Go drops the fraction's trailing zeros; `list` columns depend on the width."""
    from pyrunc import lifecycle

    for ns, want in (
        (1_700_000_000_120_000_000, "2023-11-14T22:13:20.12Z"),
        (1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),
        (1_700_000_000_000_000_001, "2023-11-14T22:13:20.000000001Z"),
    ):
        monkeypatch.setattr(lifecycle.time, "time_ns", lambda ns=ns: ns)
        assert lifecycle._iso_now() == want


# A state.json as the previous pyrunc wrote it (no `version`, and `systemd_cgroup` and
# `rootless`, which nothing read), for a created container; {pid} and {start} filled in.
PREVIOUS = (
    '{{"id":"pyrunc-test-old","bundle":"/nonexistent-bundle","rootfs":"/nonexistent-bundle/rootfs",'
    '"created":"2026-01-01T00:00:00.5Z","started":false,"annotations":{{"a":"b"}},"hooks":{{}},'
    '"cgroup_path":"/pyrunc-test-old","systemd_cgroup":false,"rootless":"auto",'
    '"pid":{pid},"pid_start":{start}}}'
)


def test_a_container_of_the_previous_version_is_read_killed_and_deleted(store):
    proc = subprocess.Popen(["sleep", "1000"])
    try:
        os.makedirs(os.path.join(store.root, "pyrunc-test-old"))
        with open(os.path.join(store.root, "pyrunc-test-old", "state.json"), "w") as f:
            f.write(PREVIOUS.format(pid=proc.pid, start=procfs.start_time(proc.pid)))
        st = store.peek("pyrunc-test-old")
        assert st.version == 0 and st.rootless == "auto"
        out = status.state(store, "pyrunc-test-old")
        assert (out["status"], out["pid"], out["annotations"]) == ("created", proc.pid, {"a": "b"})
        with pytest.raises(StateError, match="that is not stopped: created"):
            lifecycle.delete(store, "pyrunc-test-old", Seams())
        signalling.kill(store, "pyrunc-test-old", 9, Seams())
        assert proc.wait(timeout=10) == -9
        assert status.state(store, "pyrunc-test-old")["status"] == "stopped"
        lifecycle.delete(store, "pyrunc-test-old", Seams())
        assert store.ids() == []
    finally:
        proc.kill()
        proc.wait()


def test_a_state_root_that_is_a_file_is_named_in_the_error(tmp_path):
    (tmp_path / "root").write_text("")
    with pytest.raises(StateError, match="is not a directory"):
        Store(str(tmp_path / "root")).ids()
