"""exec's check of its command line's args alone (config/exec_limits.py), where the rest of
its process is the one create validated: the same lines, in the same order, as the whole
validation finds in those args (exec names the first)."""

import os

from hypothesis import given
from hypothesis import strategies as st

from pyrunc.config.default import default_spec
from pyrunc.config.exec_limits import MAX_ARG_STRLEN, exec_args_problems
from pyrunc.config.validate import config_problems

ARG = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["", "a\0b", "\udcff", "x" * MAX_ARG_STRLEN, "/" + "n" * 300, "p" * 5000]),
)


@given(args=st.lists(ARG, min_size=1, max_size=6))
def test_the_args_alone_are_reported_as_the_whole_validation_reports_them(args, tmp_path_factory):
    bundle = str(tmp_path_factory.getbasetemp())
    os.makedirs(os.path.join(bundle, "rootfs"), exist_ok=True)
    doc = default_spec()
    assert config_problems(doc, bundle) == []  # the rest of the process is valid
    doc["process"]["args"] = args
    assert exec_args_problems(doc["process"]) == config_problems(doc, bundle)


def test_an_oversized_argument_list_is_named_before_the_empty_program():
    """Sorted by path, as the whole validation sorts: `process.args` before its entries."""
    process = default_spec()["process"]
    process["args"] = ["", *["y" * 100000] * 80]
    found = exec_args_problems(process)
    assert found[0].startswith("process.args: args and env need "), found
    assert found[1] == "process.args[0]: the program to run must not be empty", found
