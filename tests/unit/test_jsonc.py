"""pyrunc.jsonc reads and writes exactly what json does, through json's C accelerator."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc import jsonc

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
documents = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=30
)


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


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "{",
        "[1,]",
        '{"a" 1}',
        "nul",
        "1 2",
        '{"a":1}x',
        '"\x01"',
        "[1] [2]",
        "01",
        '{"a":1,}',
        "\ufeff{}"[1:] + "}",
    ],
)
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


# In a fresh interpreter, as the installed command runs (-I -S): json not imported,
# which is where _json's scanner cannot raise its own errors.  Each document is read
# with json.decoder out of sys.modules again, as a command's first read would be.
FRESH = """
import marshal, sys
sys.path += %r
from pyrunc import jsonc
out = []
for doc in marshal.loads(sys.stdin.buffer.read()):
    for name in [m for m in sys.modules if m == "json" or m.startswith("json.")]:
        del sys.modules[name]
    try:
        out.append(("ok", jsonc.dumps(jsonc.loads(doc))))
    except BaseException as e:
        out.append((type(e).__name__, getattr(e, "msg", str(e)), getattr(e, "pos", None),
                    getattr(e, "lineno", None), getattr(e, "colno", None)))
sys.stdout.buffer.write(marshal.dumps(out))
"""


def _fresh_loads(docs):
    import marshal
    import subprocess
    import sys

    from pyrunc import launcher

    r = subprocess.run(
        [sys.executable, "-I", "-S", "-c", FRESH % (launcher.import_path(),)],
        input=marshal.dumps(docs),
        capture_output=True,
        check=True,
    )
    return marshal.loads(r.stdout)


def _json_loads(doc):
    try:
        return ("ok", json.dumps(json.loads(doc), separators=(",", ":")))
    except json.JSONDecodeError as e:
        return ("JSONDecodeError", e.msg, e.pos, e.lineno, e.colno)
    except BaseException as e:
        return (type(e).__name__, str(e), None, None, None)


def _damaged(draw_text, cut, flips):
    """A valid document truncated at `cut` and with characters replaced, inserted or
    dropped at the positions in `flips`."""
    chars = list(draw_text[:cut])
    for pos, action, ch in flips:
        if not chars:
            break
        pos %= len(chars)
        if action == 0:
            chars[pos] = ch
        elif action == 1:
            chars.insert(pos, ch)
        else:
            del chars[pos]
    return "".join(chars)


JSONISH = st.sampled_from(list('{}[]:,"\\ \n0-1.eE+tfnul\x00\x1f') + ["\ud800", "é", "NaN"])
damaged_documents = st.builds(
    _damaged,
    st.builds(lambda d, indent: json.dumps(d, indent=indent), documents, st.sampled_from([None, 1])),
    st.integers(0, 400),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 2), JSONISH), max_size=3),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(damaged_documents | st.lists(JSONISH, max_size=12).map("".join), min_size=1, max_size=25))
def test_malformed_documents_fail_as_json_fails_in_a_fresh_interpreter(docs):
    # As bytes too, where json would read them as UTF-8 (it also guesses UTF-16 and -32).
    docs += [b for b in (d.encode("utf-8", "surrogatepass") for d in docs) if json.detect_encoding(b) == "utf-8"]
    assert _fresh_loads(docs) == [_json_loads(d) for d in docs]


def test_a_valid_document_leaves_json_unimported():
    loaded = _fresh_modules('{"a": [1, 2.5, "x", null, true]}')
    assert "json" not in loaded and "json.decoder" not in loaded


def _fresh_modules(doc):
    import subprocess
    import sys

    from pyrunc import launcher

    code = (
        f"import sys; sys.path += {launcher.import_path()!r}\n"
        f"from pyrunc import jsonc; jsonc.loads({doc!r}); print(*sys.modules)"
    )
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    return set(r.stdout.split())
