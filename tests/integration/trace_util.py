"""Reading a step trace (--trace FILE, docs/trace.md) in the trace tests: its records,
each checked against docs/trace-schema.json."""

import json
import os

import jsonschema

SCHEMA = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "trace-schema.json")


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def traced(pyrunc, trace, *args):
    """`pyrunc --trace TRACE ARGS...`: the result, and the trace's records, every one
    checked against the schema."""
    r = pyrunc(*args, extra=("--trace", trace))
    records = read(trace)
    validate_all(records)
    return r, records


def validate_all(records):
    with open(SCHEMA) as f:
        schema = json.load(f)
    for rec in records:
        jsonschema.validate(rec, schema)
