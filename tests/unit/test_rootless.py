"""What a runtime without root refuses before create makes anything (linux/rootless.py),
and how it writes id maps (linux/rootless_maps.py): the decisions, on configs."""

import copy

import pytest

from pyrunc.config import model
from pyrunc.config.default import default_spec
from pyrunc.linux import rootless, rootless_maps


def _cfg(tmp_path, change=lambda doc: None):
    doc = copy.deepcopy(default_spec(rootless=True))
    change(doc)
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    return model.from_dict(doc, str(tmp_path))


def test_the_rootless_spec_has_no_problem(tmp_path):
    assert list(rootless.problems(_cfg(tmp_path))) == []


def test_no_user_namespace(tmp_path):
    def change(doc):
        doc["linux"]["namespaces"] = [ns for ns in doc["linux"]["namespaces"] if ns["type"] != "user"]

    (problem,) = rootless.problems(_cfg(tmp_path, change))
    assert problem.startswith("linux.namespaces: a rootless container needs a user namespace")


def test_a_joined_user_namespace_needs_no_mapping(tmp_path):
    def change(doc):
        doc["linux"]["namespaces"] = [{"type": "user", "path": "/proc/1/ns/user"}]
        del doc["linux"]["uidMappings"], doc["linux"]["gidMappings"]

    assert list(rootless.problems(_cfg(tmp_path, change))) == []


def test_every_unmapped_id_is_named(tmp_path):
    def change(doc):
        doc["process"]["user"] = {"uid": 5, "gid": 6, "additionalGids": [0, 7]}

    assert list(rootless.problems(_cfg(tmp_path, change))) == [
        "process.user.uid 5 is not mapped by linux.uidMappings",
        "process.user.gid 6 is not mapped by linux.gidMappings",
        "process.user.additionalGids[1] 7 is not mapped by linux.gidMappings",
    ]


def test_a_new_namespace_without_mappings(tmp_path):
    def change(doc):
        del doc["linux"]["gidMappings"]

    assert [p.split(":")[0] for p in rootless.problems(_cfg(tmp_path, change))] == ["linux.gidMappings"]


@pytest.mark.parametrize(
    "maps, own, direct",
    [
        ([(0, 1000, 1)], 1000, True),
        ([(5, 1000, 1)], 1000, True),  # any container id, as long as the host id is ours
        ([(0, 1001, 1)], 1000, False),
        ([(0, 1000, 2)], 1000, False),
        ([(0, 1000, 1), (1, 100000, 65536)], 1000, False),
    ],
)
def test_only_ones_own_single_id_is_written_directly(maps, own, direct):
    mappings = [model.IDMapping(container_id=c, host_id=h, size=s) for c, h, s in maps]
    assert rootless_maps.is_own_id(mappings, own) is direct


def test_the_helpers_get_every_range():
    mappings = [
        model.IDMapping(container_id=0, host_id=1000, size=1),
        model.IDMapping(container_id=1, host_id=100000, size=65536),
    ]
    assert rootless_maps.helper_argv("gid", 42, mappings) == [
        "newgidmap",
        "42",
        "0",
        "1000",
        "1",
        "1",
        "100000",
        "65536",
    ]
