"""pyrunc/launcher/startup/encodings: the `encodings` package the launcher's interpreter
starts on.  Its UTF-8 answers what the standard library's codec answers, chunk by chunk
and in every error mode; every other codec, and every other attribute of the package,
is the standard library's.  Loaded here under a name of its own, its search function
taken out of the codec registry again afterwards."""

import codecs
import importlib.util
import io
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrunc import launcher

SHIM = os.path.join(launcher.STARTUP, "encodings", "__init__.py")


NAME = "pyrunc_test_startup_encodings"


@pytest.fixture(scope="module")
def shim():
    """The module, in sys.modules under its own name (the standard library's code it loads
    imports its submodules relative to it, as it does under `encodings`)."""
    spec = importlib.util.spec_from_file_location(NAME, SHIM, submodule_search_locations=[])
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        codecs.unregister(module._search)
        standard = vars(module).get("search_function")  # registered once it loaded the standard one
        if standard is not None:
            codecs.unregister(standard)
        for name in [n for n in sys.modules if n == NAME or n.startswith(NAME + ".")]:
            del sys.modules[name]


# UTF-8 text with what its decoders must cope with: characters of 1 to 4 bytes, and bytes
# that are no UTF-8 at all (a lone continuation byte, a cut sequence, an invalid lead byte).
CHUNKS = st.lists(
    st.one_of(
        st.text().map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from([b"\x80", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xff", b"\xed\xa0\x80"]),
    ),
    max_size=8,
)
ERRORS = st.sampled_from(["strict", "replace", "ignore", "surrogateescape", "backslashreplace"])


def _decode_in_chunks(decoder, chunks):
    try:
        parts = [decoder.decode(c) for c in chunks] + [decoder.decode(b"", final=True)]
    except UnicodeDecodeError as e:
        return ("error", e.reason)
    return ("text", "".join(parts), decoder.getstate())


@given(chunks=CHUNKS, errors=ERRORS)
def test_the_incremental_decoder_reads_every_split_as_the_standard_one(shim, chunks, errors):
    ours = shim._Utf8Info(()).incrementaldecoder(errors)
    standard = codecs.getincrementaldecoder("utf-8")(errors)
    assert _decode_in_chunks(ours, chunks) == _decode_in_chunks(standard, chunks)


@given(chunks=CHUNKS)
def test_the_decoders_state_goes_back_and_forth_as_the_standard_ones(shim, chunks):
    """What TextIOWrapper's tell() and seek() rely on."""
    data = b"".join(chunks)
    ours, standard = shim._IncrementalDecoder("replace"), codecs.getincrementaldecoder("utf-8")("replace")
    for cut in range(len(data) + 1):
        assert ours.decode(data[:cut]) == standard.decode(data[:cut])
        assert ours.getstate() == standard.getstate()
        ours.setstate(standard.getstate())
        ours.reset()
        standard.reset()


@given(text=st.text(), errors=st.sampled_from(["strict", "surrogateescape", "surrogatepass", "replace"]))
def test_the_encoders_encode_as_the_standard_ones(shim, text, errors):
    def encoded(encoder):
        try:
            return encoder.encode(text, final=True)
        except UnicodeEncodeError as e:
            return e.reason

    assert encoded(shim._IncrementalEncoder(errors)) == encoded(codecs.getincrementalencoder("utf-8")(errors))


def test_every_utf_8_name_it_answers_is_an_alias_of_the_standard_utf_8():
    from encodings import aliases

    names = _utf_8_names()
    assert names and all(name == "utf_8" or aliases.aliases.get(name) == "utf_8" for name in names), names


def _utf_8_names():
    """The module's _UTF_8_NAMES, read without loading it (loading registers its search)."""
    import ast

    tree = ast.parse(open(SHIM).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_UTF_8_NAMES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("no _UTF_8_NAMES")


def test_its_utf_8_entry_has_what_the_interpreter_and_io_read(shim):
    info = shim._search("utf_8")
    standard = codecs.lookup("utf-8")
    assert (info.name, info._is_text_encoding) == (standard.name, True)
    assert len(info) == 4 and info[0]("é") == standard.encode("é") and info[1](b"\xc3\xa9") == ("é", 2)
    assert info.streamreader(io.BytesIO("é€".encode())).read() == "é€"
    out = io.BytesIO()
    info.streamwriter(out).write("é€")
    assert out.getvalue() == "é€".encode()
    assert (info.incrementalencoder, info.incrementaldecoder) == (shim._IncrementalEncoder, shim._IncrementalDecoder)


def test_any_other_codec_and_attribute_is_the_standard_librarys(shim):
    assert shim._search("no-such-codec") is None
    assert shim._search("latin_1").name == "iso8859-1"
    assert shim._search("cp1252").decode(b"\xe9") == ("é", 1)
    assert shim.normalize_encoding("UTF-8 ") == "UTF_8"
    assert shim.aliases.aliases["u8"] == "utf_8"
    with pytest.raises(AttributeError):
        shim.no_such_attribute  # noqa: B018


def test_an_interpreter_started_on_it_loads_no_codec_module_and_works_in_utf_8(tmp_path):
    """Started as the launcher starts it: the directory first on the module search path
    (PYTHONPATH here, for an interpreter that is not embedded)."""
    probe = (
        "import sys\n"
        "start = sorted(m for m in sys.modules if m.startswith(('codecs', 'encodings')))\n"
        "print(start, sys.getfilesystemencoding(), sys.argv[1])\n"
        "path = sys.argv[2]\n"
        "with open(path, 'w', encoding='utf-8') as f:\n"
        "    f.write('é€😀' * 3000)\n"
        "with open(path, encoding='utf-8') as f:\n"
        "    f.read(5); at = f.tell(); f.read(7); f.seek(at)\n"
        "    print(f.read(3), len(f.read()))\n"
        "import codecs\n"
        "print(codecs.lookup('latin-1').name, 'é'.encode('cp1252'))\n"
    )
    env = {"PYTHONPATH": launcher.STARTUP, "LC_ALL": "C.UTF-8", "PATH": os.environ.get("PATH", "")}
    r = subprocess.run(
        [sys.executable, "-S", "-c", probe, "é", str(tmp_path / "text")], env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    first, second, third = r.stdout.splitlines()
    assert first == "['encodings'] utf-8 é"
    assert second == f"😀é€ {3 * 3000 - 8}"
    assert third == "iso8859-1 b'\\xe9'"


def test_the_standard_submodules_are_found_where_the_interpreter_does_not_say(shim, monkeypatch):
    """sys._stdlib_dir is None where the interpreter could not tell its standard library's
    directory: the search path has it."""
    standard = os.path.dirname(os.__file__)
    monkeypatch.setattr(sys, "_stdlib_dir", None)
    assert shim._standard_dir() == os.path.join(standard, "encodings")
