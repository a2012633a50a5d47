"""pyrunc.config.patterns gives re.search's verdict for every pattern in spec/."""

import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.config import patterns

SPEC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "spec")


def schema_patterns():
    """Every "pattern" value and patternProperties key in spec/."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            found.update(node.get("patternProperties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for name in os.listdir(SPEC):
        if name.endswith(".json"):
            with open(os.path.join(SPEC, name)) as f:
                walk(json.load(f))
    return sorted(found)


# Characters the patterns care about, their neighbours, and a few others.
ALPHABET = st.sampled_from(list("RLIMT_ANOFZCPazcbup019, -KMGBM:\n\r\t.٣éXY"))
texts = st.text(ALPHABET, max_size=12) | st.builds(
    lambda p, s: p + s,
    st.sampled_from(["RLIMIT_", "CAP_", "MB:", "1", "12", "0-3,", "c", ""]),
    st.text(ALPHABET, max_size=6),
)


@pytest.mark.parametrize("pattern", schema_patterns())
def test_every_pattern_in_spec_has_its_own_matcher(pattern):
    assert not isinstance(patterns.compile(pattern), patterns._Compiled), pattern


@pytest.mark.parametrize("pattern", schema_patterns() + ["^x+y$"])
@settings(max_examples=400, deadline=None)
@given(text=texts)
def test_matchers_agree_with_re_search(pattern, text):
    ours = patterns.compile(pattern).search(text) is not None
    assert ours == (re.search(pattern, text) is not None), (pattern, text)


@pytest.mark.parametrize(
    "pattern,text",
    [
        ("^RLIMIT_[A-Z]+$", "RLIMIT_NOFILE\n"),
        ("^RLIMIT_[A-Z]+$", "RLIMIT_\n"),
        ("^[cbup]$", "c\n"),
        ("^[cbup]$", "\n"),
        ("^[0-9, -]*$", "\n"),
        ("^[0-9, -]*$", "\n\n"),
        ("^MB:[^\\n]*$", "MB:0=70\n"),
        ("^MB:[^\\n]*$", "MB:0\n\n"),
        (".{1,}", "\n"),
        ("^[1-9][0-9]*[KMG]B$", "2MB\n"),
        ("^[1-9][0-9]*[KMG]B$", "1٣MB"),
    ],
)
def test_the_edges_of_dollar_and_unicode_digits(pattern, text):
    assert (patterns.compile(pattern).search(text) is not None) == (re.search(pattern, text) is not None)


SEMVER_ALPHABET = st.sampled_from(list("0123456789.-+aZ-٣\n"))


@settings(max_examples=1500, deadline=None)
@given(
    st.text(SEMVER_ALPHABET, max_size=14)
    | st.sampled_from(
        [
            "1.0.2-dev",
            "1.0.0",
            "01.0.0",
            "1.0.0-01",
            "1.0.0-0a",
            "1.0.0+01",
            "1.0.0-",
            "1.0.0+",
            "1.0.0-a..b",
            "1.0.0-rc.1+build.5",
            "1.2.3\n",
            "1.2",
            "1.2.3.4",
            "1.0.0-a+b+c",
        ]
    )
)
def test_semver_reading_agrees_with_the_grammar(version):
    """config/semantic.py reads ASCII versions by hand; the SemVer 2.0.0 regex decides."""
    from pyrunc.config import semantic

    match = re.match(semantic._SEMVER, version)
    assert semantic._semver_major(version) == (match.group(1) if match else None), version
