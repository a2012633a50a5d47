"""linux.intelRdt against a temporary directory standing in for /sys/fs/resctrl.

The stand-in is a plain directory with the root group's files; pyrunc appends to
resctrl files, so each stand-in file holds every line written to it, in order.  What
the kernel does by itself (a new group's files, rmdir of a group with its files) the
helpers below do."""

import os

import pytest

from pyrunc.errors import ContainerError
from pyrunc.linux import resctrl


@pytest.fixture
def root(tmp_path):
    path = tmp_path / "resctrl"
    (path / "info").mkdir(parents=True)
    (path / "mon_groups").mkdir()
    (path / "schemata").write_text("    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n")
    (path / "tasks").write_text("")
    return path


def lines(path):
    return path.read_text().splitlines()


def kernfs_rmdir_ready(group):
    """resctrl removes a group with its files; a plain directory needs them gone first."""
    for dirpath, _dirnames, filenames in os.walk(group):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))


def test_available_only_where_the_root_groups_files_are(root, tmp_path):
    assert resctrl.available(str(root))
    assert not resctrl.available(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    assert not resctrl.available(str(tmp_path / "empty"))  # the mount point, nothing mounted


def test_check_host_refuses_intel_rdt_without_resctrl_naming_the_field(tmp_path):
    with pytest.raises(ContainerError) as e:
        resctrl.check_host({"closID": "x"}, root=str(tmp_path))
    assert str(e.value).startswith("linux.intelRdt: no resctrl filesystem is mounted at")
    assert "\n" not in str(e.value)


def test_without_closid_the_group_is_the_containers_id_written_in_the_specs_order(root):
    rdt = {"l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20;1=70", "schemata": ["L2:0=f;1=f", "MB:0=30"]}
    saved = resctrl.apply("ctr1", rdt, 4242, root=str(root))
    group = root / "ctr1"
    assert lines(group / "schemata") == ["L3:0=7f0;1=1f", "MB:0=20;1=70", "L2:0=f;1=f", "MB:0=30"]
    assert lines(group / "tasks") == ["4242"]
    assert lines(root / "schemata") == ["    L3:0=7ff;1=7ff", "    MB:0=100;1=100"]  # untouched
    assert saved["remove_group"] is True
    kernfs_rmdir_ready(group)
    resctrl.remove(saved)
    assert not group.exists()


def test_a_closid_group_pyrunc_made_is_kept_at_delete(root):
    saved = resctrl.apply("ctr1", {"closID": "shared", "memBwSchema": "MB:0=20"}, 7, root=str(root))
    assert lines(root / "shared" / "schemata") == ["MB:0=20"]
    assert lines(root / "shared" / "tasks") == ["7"]
    resctrl.remove(saved)
    assert (root / "shared").is_dir()


def test_an_existing_closid_group_must_match_and_is_not_written(root):
    group = root / "gold"
    group.mkdir()
    (group / "schemata").write_text("    L3:0=07f0;1=01f\n    MB:0= 20;1= 70\n")
    (group / "tasks").write_text("")
    rdt = {"closID": "gold", "l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20"}
    saved = resctrl.apply("ctr1", rdt, 9, root=str(root))
    assert lines(group / "schemata") == ["    L3:0=07f0;1=01f", "    MB:0= 20;1= 70"]
    assert lines(group / "tasks") == ["9"]
    resctrl.remove(saved)
    assert group.is_dir()


def test_an_existing_closid_group_that_differs_is_an_error_naming_field_and_value(root):
    group = root / "gold"
    group.mkdir()
    (group / "schemata").write_text("    L3:0=7ff;1=7ff\n")
    (group / "tasks").write_text("")
    with pytest.raises(ContainerError) as e:
        resctrl.apply("ctr1", {"closID": "gold", "l3CacheSchema": "L3:0=7f0"}, 9, root=str(root))
    assert "linux.intelRdt.l3CacheSchema 'L3:0=7f0' does not match" in str(e.value)
    assert lines(group / "tasks") == []
    assert group.is_dir()


def test_a_closid_without_schemata_must_exist(root):
    with pytest.raises(ContainerError) as e:
        resctrl.apply("ctr1", {"closID": "missing"}, 9, root=str(root))
    assert str(e.value).startswith("linux.intelRdt.closID 'missing': no such group")
    assert not (root / "missing").exists()
    (root / "ready").mkdir()
    saved = resctrl.apply("ctr1", {"closID": "ready"}, 9, root=str(root))
    assert lines(root / "ready" / "tasks") == ["9"]
    assert not (root / "ready" / "schemata").exists()  # nothing to write: nothing written
    assert saved["remove_group"] is False


def test_closid_slash_is_the_default_group_never_removed(root):
    saved = resctrl.apply("ctr1", {"closID": "/"}, 5, root=str(root))
    assert lines(root / "tasks") == ["5"]
    resctrl.remove(saved)
    assert root.is_dir()


def test_monitoring_makes_a_mon_group_named_for_the_container_and_removes_it(root):
    saved = resctrl.apply("ctr1", {"closID": "/", "enableMonitoring": True}, 5, root=str(root))
    mon = root / "mon_groups" / "ctr1"
    assert lines(mon / "tasks") == ["5"]
    kernfs_rmdir_ready(mon)
    resctrl.remove(saved)
    assert not mon.exists()


def test_a_failed_apply_removes_the_group_it_made(root):
    # The new group has no mon_groups here (the kernel would make one): the mkdir fails.
    with pytest.raises(ContainerError) as e:
        resctrl.apply("ctr1", {"enableMonitoring": True}, 5, root=str(root))
    assert str(e.value).startswith("linux.intelRdt.enableMonitoring: create")
    assert not (root / "ctr1").exists()


def test_update_writes_the_schemas_to_the_group(root):
    saved = resctrl.apply("ctr1", {"l3CacheSchema": "L3:0=7f0"}, 5, root=str(root))
    resctrl.update_schemata(saved, l3_cache_schema="L3:0=3f", mem_bw_schema="MB:0=50")
    assert lines(root / "ctr1" / "schemata") == ["L3:0=7f0", "L3:0=3f", "MB:0=50"]
    resctrl.update_schemata(saved, mem_bw_schema="MB:0=60")
    assert lines(root / "ctr1" / "schemata")[-1] == "MB:0=60"


def test_add_puts_an_exec_process_in_the_group_and_its_mon_group(root):
    saved = resctrl.apply("ctr1", {"closID": "/", "enableMonitoring": True}, 5, root=str(root))
    resctrl.add(saved, 6)
    assert lines(root / "mon_groups" / "ctr1" / "tasks") == ["5", "6"]


def test_create_puts_the_init_in_the_group_saves_it_and_delete_removes_it(root, monkeypatch):
    """create's side: the create handler applies the config's intelRdt with the pid it
    is given and saves the record at once; delete's removal takes the group it made."""
    from pyrunc import lifecycle
    from pyrunc.config import model
    from pyrunc.config.default import default_spec
    from pyrunc.linux import Seams
    from pyrunc.linux.requests import CreateRequests

    monkeypatch.setattr(resctrl, "RESCTRL_ROOT", str(root))
    doc = default_spec()
    doc["linux"]["intelRdt"] = {"memBwSchema": "MB:0=40"}
    cfg = model.from_dict(doc, str(root))
    saved = []
    handler = CreateRequests("ctr9", cfg, str(root), "/x", "false", None, Seams(), saved.append)
    handler._intel_rdt(321)
    assert saved == [handler.rdt] and handler.rdt["group"] == str(root / "ctr9")
    assert lines(root / "ctr9" / "schemata") == ["MB:0=40"]
    assert lines(root / "ctr9" / "tasks") == ["321"]
    kernfs_rmdir_ready(root / "ctr9")
    lifecycle._remove_rdt(handler.rdt, {"id": "ctr9"})
    assert not (root / "ctr9").exists()
