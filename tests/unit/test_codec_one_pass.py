"""The codec's one-pass path (`model_validate_json` on the bytes) decodes exactly as the full path.

`events.codec._decode` tries `_decode_plain` first and falls back to `_decode_full` (parse to a
dict, upcast, validate). The one-pass path may only answer where the full path would answer the
same: these tests hold the two equal over every input line the project ships (samples, golden
scenarios), over lines built to tell them apart, and over damaged lines; and they check that the
one-pass path is really taken for a plain line (else the equality would hold by falling back).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import codec
from events.codec import DEFAULT_MAX_BYTES, DeadLetterReason, encode

ROOT = Path(__file__).resolve().parents[2]
T0 = "2026-04-01T10:00:00Z"

PLAIN_REPLY = {"event_id": "ev-1", "type": "ticket.replied", "occurred_at": T0, "ticket_id": "T-1",
               "author": "provider"}


def full(raw: bytes):
    return codec._decode_full(raw, DEFAULT_MAX_BYTES)


def either(raw: bytes):
    return codec._decode(raw, DEFAULT_MAX_BYTES)


def assert_same(raw: bytes) -> None:
    assert_equal_decodes(either(raw), full(raw), raw)


def assert_equal_decodes(one: object, other: object, raw: bytes) -> None:
    """Two decodes of `raw`: the same dead letter, or equal events of one type that encode alike."""
    if isinstance(other, DeadLetterReason) or isinstance(one, DeadLetterReason):
        assert one == other, raw
    else:
        assert type(one) is type(other), raw
        assert one == other, raw
        assert encode(one) == encode(other), raw  # type: ignore[arg-type]


def shipped_lines() -> list[bytes]:
    files = [ROOT / "samples" / "events.jsonl", *sorted((ROOT / "tests" / "golden").glob("*/events.jsonl"))]
    lines = [raw for path in files for raw in path.read_bytes().splitlines() if raw.strip()]
    assert len(lines) > 400  # the corpus is there (a moved directory must not empty this test)
    return lines


def test_every_shipped_line_decodes_the_same_both_ways():
    lines = shipped_lines()
    taken = 0
    for raw in lines:
        assert_same(raw)
        taken += codec._decode_plain(raw) is not None
    assert taken > len(lines) // 2  # most of them the one-pass way


def reply(**changes) -> bytes:
    fields = dict(PLAIN_REPLY)
    fields.update(changes)
    return json.dumps(fields, separators=(",", ":")).encode()


def test_a_plain_line_takes_the_one_pass_path():
    for raw in (reply(), reply(schema_version=1), json.dumps(PLAIN_REPLY).encode(),  # with spaces
                reply(public=False, extra={"nested": [1, 2.5, None]})):
        event = codec._decode_plain(raw)
        assert event is not None, raw
        assert event == full(raw)


TELLING_LINES = {
    # the full parse refuses these, pydantic's JSON mode would ignore them in an unknown field
    "nan in an unknown field": reply().replace(b"}", b',"x":NaN}'),
    "infinity in an unknown field": reply().replace(b"}", b',"x":-Infinity}'),
    # pydantic would read these as 1; the full path dead-letters them
    "version as a float": reply().replace(b"}", b',"schema_version":1.0}'),
    "version as a string": reply().replace(b"}", b',"schema_version":"1"}'),
    "version as a boolean": reply().replace(b"}", b',"schema_version":true}'),
    "version null": reply().replace(b"}", b',"schema_version":null}'),
    "version twice": reply().replace(b"}", b',"schema_version":2,"schema_version":1}'),
    "version 0 (upcast)": reply().replace(b"}", b',"schema_version":0,"is_public":false}'),
    "version newer": reply(schema_version=2),
    "escaped key": reply().replace(b'"author"', b'"auth\\u006fr"'),
    "lone surrogate": reply().replace(b"}", b',"x":"\\ud800"}'),
}


@pytest.mark.parametrize("name", sorted(TELLING_LINES))
def test_lines_that_could_tell_the_paths_apart_go_the_full_way(name):
    raw = TELLING_LINES[name]
    assert codec._decode_plain(raw) is None
    assert_same(raw)


@pytest.mark.parametrize("raw", [
    reply(ticket_id="T-1").replace(b"}", b',"ticket_id":"T-2"}'),  # a duplicate key: both keep the last
    reply().replace(b'"type":"ticket.replied"', b'"type":"ticket.opened","type":"ticket.replied"'),
    reply().replace(b"}", b',"x":{"type":"ticket.opened"}}'),  # a "type" elsewhere in the line
    reply(type="ticket.opened"),  # a reply's fields under another type: missing fields
    reply(public="yes"),
    reply(public="maybe"),
    reply(occurred_at="2026-04-01T10:00:00"),  # no offset
    reply(occurred_at="2026-04-01T12:00:00+02:00"),
    reply(occurred_at=1775037600),
    reply(occurred_at="0001-01-01T00:00:00+01:00"),
    reply(event_id=""),
    reply(author="bot"),
    b'{"event_id":"e","type":"outage.started","occurred_at":"' + T0.encode() + b'","service_id":"s","outage_id":"o",'
    b'"components":["api","api"],"scope":"partial"}',
    b'{"event_id":"e","type":"maintenance.scheduled","occurred_at":"' + T0.encode() + b'","service_id":"s",'
    b'"window_id":"w","starts_at":"2026-04-02T00:00:00Z","ends_at":"2026-04-01T00:00:00Z"}',
    reply().replace(b"ticket.replied", b"contract.upserted"),  # never one pass
    reply()[:-1],  # not JSON
    b"\xff" + reply(),  # not UTF-8
    reply().replace(b"provider", b"provid\xc3er"),
])
def test_edge_lines_decode_the_same_both_ways(raw):
    assert_same(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from([T0, "2026-04-01T10:00:00+05:30", "2026-04-01", "provider", "high"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6)


def json_object_lines() -> list[bytes]:
    """The shipped lines that are JSON objects (the samples keep a few broken lines on purpose)."""
    objects = []
    for raw in shipped_lines():
        try:
            if isinstance(json.loads(raw), dict):
                objects.append(raw)
        except ValueError:
            continue
    return objects[:400]


#: Up to three fields of a line replaced by any JSON value (with `damaged`).
DAMAGE = st.dictionaries(st.sampled_from(
    ["event_id", "type", "occurred_at", "schema_version", "ticket_id", "service_id", "outage_id", "priority",
     "author", "public", "status", "starts_at", "ends_at", "components", "scope", "x"]), json_values, max_size=3)


def damaged(raw: bytes, damage: dict, spaced: bool) -> bytes:
    """`raw` with the `damage` fields, written compact or with spaces."""
    fields = json.loads(raw)
    fields.update(damage)
    return json.dumps(fields, separators=(", ", ": ") if spaced else (",", ":")).encode()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(json_object_lines()), DAMAGE, st.booleans())
def test_damaged_lines_decode_the_same_both_ways(raw, damage, spaced):
    assert_same(damaged(raw, damage, spaced))
