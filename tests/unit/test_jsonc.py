"""pyrunc.jsonc reads and writes exactly what json does, through json's C accelerator."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from pyrunc import jsonc

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
           | st.text())
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(), inner, max_size=4), max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(documents)
def test_dumps_writes_what_json_writes(doc):
    assert jsonc.dumps(doc) == json.dumps(doc, separators=(",", ":"))
    assert jsonc.dumps(doc, compact=False) == json.dumps(doc)
    assert jsonc.dumps(doc, sort_keys=True) == json.dumps(doc, separators=(",", ":"), sort_keys=True)
    assert jsonc.dumps(doc, indent=2) == json.dumps(doc, indent=2)


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from(["", " ", "\n\t ", "\r\n"]))
def test_loads_reads_what_json_reads(doc, space):
    text = space + json.dumps(doc, indent=1) + space
    assert jsonc.dumps(jsonc.loads(text)) == jsonc.dumps(json.loads(text))
    assert jsonc.dumps(jsonc.loads(text.encode())) == jsonc.dumps(json.loads(text.encode()))


@pytest.mark.parametrize("text", ["", "   ", "{", "[1,]", '{"a" 1}', "nul", "1 2", '{"a":1}x',
                                  '"\x01"', "[1] [2]", "01", '{"a":1,}', "\ufeff{}"[1:] + "}"])
def test_malformed_documents_fail_as_json_fails(text):
    with pytest.raises(json.JSONDecodeError) as ours:
        jsonc.loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.pos) == (theirs.value.msg, theirs.value.pos)


def test_what_json_cannot_write_is_refused_alike():
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsonc.dumps({"a": {1, 2}})


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}'])
def test_constants_are_refused_when_asked(text):
    assert jsonc.dumps(jsonc.loads(text)) == json.dumps(json.loads(text), separators=(",", ":"))
    with pytest.raises(ValueError, match="is not a JSON value"):
        jsonc.loads(text, constants=False)
