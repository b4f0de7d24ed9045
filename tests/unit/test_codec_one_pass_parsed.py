"""The one-pass decode gated by a line's parse (`one_pass_validator`, replay's path) decodes exactly as
the full path, over the same lines as `test_codec_one_pass` (shipped, telling, edge, damaged) and
lines only this gate lets through (NaN / Infinity inside strings, a duplicate or nested version)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import from_json

from events import codec
from events.codec import DEFAULT_MAX_BYTES, DeadLetterReason
from tests.unit.test_codec_one_pass import (DAMAGE, TELLING_LINES, assert_equal_decodes, damaged, full, json_object_lines, reply,
                                            shipped_lines)


def gated(raw: bytes):
    """What replay decodes: the one pass where the gate gives a validator and it validates, else `decode`."""
    try:
        obj = from_json(raw, allow_inf_nan=False)
    except ValueError:
        return codec.decode(raw), False
    validator = codec.one_pass_validator(raw, obj)
    if validator is not None:
        event = codec.decode_one_pass(raw, validator)
        if event is not None:
            return event, True
    return codec.decode(raw), False


def assert_same(raw: bytes) -> bool:
    (one, taken), other = gated(raw), codec._bounded(full(raw))
    assert_equal_decodes(one, other, raw)
    return taken


def test_every_shipped_line_decodes_the_same_both_ways():
    lines = shipped_lines()
    taken = sum(assert_same(raw) for raw in lines)
    assert taken > len(lines) // 2  # most of them the one-pass way


@pytest.mark.parametrize("name", sorted(TELLING_LINES))
def test_lines_that_could_tell_the_paths_apart_decode_the_same(name):
    assert_same(TELLING_LINES[name])


@pytest.mark.parametrize("name", ["nan in an unknown field", "infinity in an unknown field", "escaped key",
                                  "lone surrogate", "version as a float", "version as a string",
                                  "version as a boolean", "version null", "version newer"])
def test_the_gate_sends_them_the_full_way(name):
    raw = TELLING_LINES[name]
    try:
        obj = from_json(raw, allow_inf_nan=False)
    except ValueError:
        return  # not even a key by this parse: replay decodes it fully
    assert codec.one_pass_validator(raw, obj) is None


@pytest.mark.parametrize("raw", [
    reply(reason_text="NaN"),  # NaN and Infinity inside strings: plain JSON
    reply().replace(b"}", b',"x":"-Infinity and NaN"}'),
    reply().replace(b"}", b',"schema_version":2,"schema_version":1}'),  # both parsers keep the last
    reply().replace(b"}", b',"x":{"schema_version":"7","type":"ticket.opened"}}'),
    reply().replace(b'"type":"ticket.replied"', b'"type":"ticket.opened","type":"ticket.replied"'),
    reply(schema_version=1),
    json.dumps(json.loads(reply())).encode(),  # with spaces
])
def test_lines_only_this_gate_takes_one_pass_decode_the_same(raw):
    assert assert_same(raw), raw


def test_a_large_line_goes_the_full_way():
    raw = reply(x="a" * DEFAULT_MAX_BYTES)
    assert codec.one_pass_validator(raw, from_json(raw)) is None
    assert isinstance(codec.decode(raw), DeadLetterReason)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(json_object_lines()), DAMAGE, st.booleans())
def test_damaged_lines_decode_the_same_both_ways(raw, damage, spaced):
    assert_same(damaged(raw, damage, spaced))
