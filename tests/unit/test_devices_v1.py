"""The v1 device-list transition against a model of the kernel's devices controller:
every moment of the writes allows no more than the old list or the new one, the end is
the new list, and a list already in force costs no write."""

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyrunc.errors import CgroupError
from pyrunc.linux.cgroups import DEFAULT_ALLOWED_DEVICES
from pyrunc.linux.cgroups.devices_v1 import listed_state, matches, transition
from tests.unit.fake_devices_cgroup import DevicesCgroup


def line(rule):
    star = lambda key: "*" if rule.get(key) is None else str(rule[key])
    return f"{rule.get('type', 'a')} {star('major')}:{star('minor')} {rule.get('access') or 'rwm'}"


def cgroup_with(rules):
    """A cgroup as the simple way leaves it: deny all, then each rule in order."""
    cg = DevicesCgroup()
    cg.write(False, "a *:* rwm")
    for r in rules:
        cg.write(bool(r.get("allow")), line(r))
    return cg


rule = st.one_of(
    st.fixed_dictionaries(
        {
            "allow": st.booleans(),
            "type": st.sampled_from("bc"),
            "major": st.sampled_from([None, 1, 4]),
            "minor": st.sampled_from([None, 3, 5]),
            "access": st.sampled_from(["r", "w", "m", "rw", "rwm"]),
        }
    ),
    st.fixed_dictionaries({"allow": st.booleans(), "access": st.just("rwm")}),
)
rule_list = st.lists(rule, max_size=6)


@settings(max_examples=300, deadline=None)
@given(old=rule_list, new=rule_list)
def test_no_moment_allows_what_neither_list_allows(old, new):
    try:
        transition("", old)
        transition("", new)
    except CgroupError:
        assume(False)  # a hole in a wider rule: refused before any write
    cg, wanted = cgroup_with(old), cgroup_with(new)
    before, after = cg.permits(), wanted.permits()
    writes, reset = transition(cg.listed(), new)
    for n, (allow, text) in enumerate(writes):
        cg.write(allow, text)
        # After a reset the manager has frozen the processes until the last write.
        if not reset:
            assert cg.permits() <= before | after, (writes[: n + 1], cg.listed())
    assert cg.permits() == after and matches(cg.listed(), new)
    if reset:
        assert writes[0][1] == "a *:* rwm"
    else:
        assert all("a" not in text.split()[0] for _, text in writes)


def test_a_list_already_in_force_costs_no_write():
    rules = [{"allow": False, "access": "rwm"}] + [dict(r) for r in DEFAULT_ALLOWED_DEVICES]
    cg = cgroup_with(rules)
    assert transition(cg.listed(), rules) == ([], False)


def test_a_wider_list_is_reached_by_allows_alone_not_a_reset():
    old = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}]
    new = old + [
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "w"},
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"},
    ]
    assert transition(cgroup_with(old).listed(), new) == ([(True, "c 1:3 w"), (True, "c 1:11 rw")], False)


def test_a_narrower_list_denies_what_it_drops_first():
    old = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"}]
    new = [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    assert transition(cgroup_with(old).listed(), new) == ([(False, "c 1:11 rw"), (True, "c 1:3 rw")], False)


def test_a_new_cgroup_starts_with_deny_all_then_the_allows_in_the_listed_order():
    """config-linux.md: "the runtime MUST apply entries in the listed order" (the
    runtime-tools suite reads devices.list back in that order)."""
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
    ] + [dict(r) for r in DEFAULT_ALLOWED_DEVICES]
    writes, reset = transition("a *:* rwm\n", rules)
    assert reset and writes[0] == (False, "a *:* rwm")
    assert [text for _, text in writes[1:5]] == ["c 10:229 rwm", "c *:* m", "b *:* m", "c 1:3 rwm"]
    assert all(allow for allow, _ in writes[1:])


@pytest.mark.parametrize("text", ["c 1:3", "x 1:3 rw", "c 1:3 rwz", "c a:3 r"])
def test_an_unreadable_devices_list_is_an_error(text):
    with pytest.raises(CgroupError, match="devices.list"):
        listed_state(text)


def test_negative_or_absent_numbers_are_wildcards():
    rules = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "b", "major": 8, "minor": -1, "access": "m"},
        {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    ]
    assert transition("a *:* rwm\n", rules) == ([(False, "a *:* rwm"), (True, "b 8:* m"), (True, "c 136:* rwm")], True)
