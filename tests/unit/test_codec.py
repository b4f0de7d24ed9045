"""Codec: dead-letter reasons, round trips, tolerant reading, UTC normalisation, canonical bytes."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import (
    DEAD_LETTER_REASONS,
    DeadLetterReason,
    dead_letter_event,
    decode,
    decode_output,
    encode,
    encode_line,
)
from events.models import (
    INPUT_MODELS,
    ContractUpserted,
    MaintenanceScheduled,
    TicketOpened,
    TicketReplied,
)
from events.upcasters import CURRENT_VERSION, upcast

T0 = "2026-04-01T10:00:00Z"


def line(**fields) -> bytes:
    return json.dumps(fields).encode("utf-8")


def opened(**overrides) -> dict:
    fields = {
        "event_id": "ev-1",
        "type": "ticket.opened",
        "occurred_at": T0,
        "ticket_id": "T-1",
        "customer_id": "acme",
        "priority": "high",
    }
    fields.update(overrides)
    return fields


SAMPLES: dict[str, dict] = {
    "contract.upserted": {
        "customer_id": "acme",
        "policy": "vectorize",
        "plan": "pro",
        "timezone": "America/New_York",
        "services": [{"service_id": "acme-api", "monthly_fee": "1000.00", "currency": "USD"}],
        "overrides": {
            "uptime_commitment_percent": "99.9",
            "targets": {"urgent": {"first_response": {"amount": 1, "unit": "hours", "clock": "business"}}},
        },
        "effective_from": "2026-01-01T00:00:00+01:00",
    },
    "ticket.opened": {"ticket_id": "T-1", "customer_id": "acme", "priority": "Urgent", "environment": "non_production"},
    "ticket.priority_changed": {"ticket_id": "T-1", "priority": "critical", "requested_by": "customer"},
    "ticket.replied": {"ticket_id": "T-1", "author": "provider", "public": False},
    "ticket.status_changed": {"ticket_id": "T-1", "status": "waiting_on_customer"},
    "ticket.escalated": {"ticket_id": "T-1", "reason": "customer asked for a manager"},
    "ticket.resolved": {"ticket_id": "T-1"},
    "ticket.reopened": {"ticket_id": "T-1"},
    "ticket.closed": {"ticket_id": "T-1"},
    "outage.started": {"outage_id": "O-1", "service_id": "acme-api", "scope": "partial"},
    "outage.reported": {"outage_id": "O-1", "service_id": "acme-api", "ticket_id": "T-9"},
    "outage.resolved": {"outage_id": "O-1", "service_id": "acme-api"},
    "outage.classified": {"outage_id": "O-1", "service_id": "acme-api", "cause": "excluded", "category": "third_party"},
    "maintenance.scheduled": {
        "maintenance_id": "M-1",
        "service_id": "acme-api",
        "starts_at": "2026-04-04T02:00:00-04:00",
        "ends_at": "2026-04-04T04:00:00-04:00",
    },
    "maintenance.cancelled": {"maintenance_id": "M-1", "service_id": "acme-api"},
}


def sample(event_type: str, **overrides) -> dict:
    fields = {"event_id": f"ev-{event_type}", "type": event_type, "occurred_at": "2026-04-01T12:00:00+02:00"}
    fields.update(SAMPLES[event_type])
    fields.update(overrides)
    return fields


def test_samples_cover_every_input_type():
    assert set(SAMPLES) == set(INPUT_MODELS) == set(CURRENT_VERSION)


# --------------------------------------------------------------------------- one case per reason


def reason_of(raw: bytes | str, **kwargs) -> DeadLetterReason:
    result = decode(raw, "test:1", **kwargs)
    assert isinstance(result, DeadLetterReason), result
    assert result.code in DEAD_LETTER_REASONS
    return result


def test_invalid_encoding_names_the_byte():
    raw = b'{"event_id": "ev-\xff", "type": "ticket.closed"}'
    r = reason_of(raw)
    assert r.code == "invalid_encoding"
    assert "byte 17" in r.message


def test_unpaired_surrogate_in_text_input_is_invalid_encoding():
    r = reason_of('{"event_id": "\ud800"}')
    assert r.code == "invalid_encoding"


def test_invalid_json_names_the_position():
    r = reason_of(b'{"event_id": "ev-1",}')
    assert r.code == "invalid_json"
    assert "line 1 column" in r.message


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": Infinity}', b'{"a": 1} {"b": 2}', b'"\\ud800"', b""])
def test_not_strict_json_is_invalid_json(raw):
    assert reason_of(raw).code == "invalid_json"


@pytest.mark.parametrize("raw, kind", [(b"[1, 2]", "array"), (b'"x"', "string"), (b"3", "number"), (b"null", "null")])
def test_not_an_object(raw, kind):
    r = reason_of(raw)
    assert r.code == "not_an_object"
    assert kind in r.message


def test_too_large_is_checked_before_parsing():
    # Not even JSON: the size check must come first and cheaply.
    r = reason_of(b"{" * 101, max_bytes=100)
    assert r.code == "too_large"
    assert "101" in r.message and "100" in r.message


def test_size_limit_counts_utf8_bytes_of_text_input():
    text = json.dumps(opened(customer_id="é" * 60), ensure_ascii=False)
    assert len(text) <= 250 < len(text.encode("utf-8"))
    assert reason_of(text, max_bytes=250).code == "too_large"


def test_default_limit_is_one_mebibyte():
    padding = "x" * (1024 * 1024)
    assert reason_of(line(**opened(note=padding))).code == "too_large"
    assert isinstance(decode(line(**opened(note="x" * 1000)), "t"), TicketOpened)


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"event_id": "e"}, "'type' is missing"),
        ({"event_id": "e", "type": 3}, "got 3"),
        ({"event_id": "e", "type": "ticket.deleted"}, "'ticket.deleted'"),
        ({"event_id": "e", "type": "sla.breached"}, "output event type"),
    ],
)
def test_unknown_type(fields, fragment):
    r = reason_of(line(**fields))
    assert r.code == "unknown_type"
    assert "type" in r.message and fragment in r.message


@pytest.mark.parametrize("field", ["event_id", "occurred_at", "ticket_id", "customer_id", "priority"])
def test_missing_field_names_it(field):
    fields = opened()
    del fields[field]
    r = reason_of(line(**fields))
    assert r.code == "missing_field"
    assert f"'{field}'" in r.message


@pytest.mark.parametrize(
    "fields, field, fragments",
    [
        (sample("ticket.priority_changed", requested_by="admin"), "requested_by", ["'customer'", "'provider'", "admin"]),
        (opened(environment="staging"), "environment", ["'production'", "'non_production'"]),
        (sample("ticket.status_changed", status="closed"), "status", ["'waiting_on_customer'", "'on_hold'"]),
        (sample("outage.classified", cause="aliens"), "cause", ["'provider'", "'excluded'"]),
        (sample("ticket.replied", public="perhaps"), "public", ["bool"]),
        (opened(event_id="e" * 129), "event_id", ["128"]),
        (opened(event_id=""), "event_id", ["1 character"]),
        (opened(ticket_id=42), "ticket_id", ["string"]),
        (opened(occurred_at=1775037600), "occurred_at", ["RFC 3339"]),
        (opened(occurred_at="1775037600"), "occurred_at", ["RFC 3339"]),
        (opened(occurred_at="2026-13-01T00:00:00Z"), "occurred_at", ["2026-13-01"]),
        (opened(schema_version="1"), "schema_version", ["integer"]),
        (opened(occurred_at="0001-01-01T00:00:00+01:00"), "occurred_at", ["between years"]),
        (opened(occurred_at="9999-12-31T23:59:59-01:00"), "occurred_at", ["between years"]),
        (
            sample("maintenance.scheduled", ends_at="2026-04-04T01:00:00-04:00"),
            "ends_at",
            ["later than starts_at", "2026-04-04T06:00:00Z"],
        ),
        (sample("contract.upserted", policy="acme-cloud"), "policy", ["'vectorize'"]),
        (
            sample("contract.upserted", services=[{"service_id": "s", "currency": "USD"}]),
            "services[0]",
            ["monthly_fee or annual_fee"],
        ),
    ],
)
def test_invalid_field_names_field_and_problem(fields, field, fragments):
    r = reason_of(line(**fields))
    assert r.code == "invalid_field"
    assert f"'{field}'" in r.message
    for fragment in fragments:
        assert fragment in r.message


@pytest.mark.parametrize(
    "fields, field",
    [
        (opened(occurred_at="2026-04-01T10:00:00"), "occurred_at"),
        (opened(occurred_at="2026-04-01"), "occurred_at"),
        (sample("maintenance.scheduled", starts_at="2026-04-04T02:00:00"), "starts_at"),
        (sample("maintenance.scheduled", ends_at="2026-04-04T04:00:00"), "ends_at"),
        (sample("contract.upserted", effective_from="2026-01-01T00:00:00"), "effective_from"),
    ],
)
def test_naive_timestamp(fields, field):
    r = reason_of(line(**fields))
    assert r.code == "naive_timestamp"
    assert f"'{field}'" in r.message
    assert "offset" in r.message


def test_naive_timestamp_wins_over_other_problems_and_all_are_named():
    fields = sample("contract.upserted", services=[{"service_id": "s", "currency": "USD"}])
    fields["effective_from"] = "2026-01-01T00:00:00"
    r = reason_of(line(**fields))
    assert r.code == "naive_timestamp"
    assert r.message.index("'effective_from'") < r.message.index("'services[0]'")


@pytest.mark.parametrize("version, fragment", [(2, "newer"), (99, "newer"), (0, "no upcaster"), (-1, "no upcaster")])
def test_unsupported_schema_version(version, fragment):
    r = reason_of(line(**sample("ticket.closed", schema_version=version)))
    assert r.code == "unsupported_schema_version"
    assert "schema_version" in r.message and fragment in r.message


# --------------------------------------------------------------------------- never raises


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw):
    result = decode(raw, "fuzz")
    assert isinstance(result, DeadLetterReason) and result.code in DEAD_LETTER_REASONS


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(SAMPLES)), st.dictionaries(st.sampled_from(
    ["event_id", "occurred_at", "schema_version", "ticket_id", "priority", "services", "starts_at", "overrides", "public"]
), json_values, max_size=4))
def test_damaged_events_never_raise(event_type, damage):
    fields = sample(event_type)
    fields.update(damage)
    result = decode(json.dumps(fields), "fuzz")
    if isinstance(result, DeadLetterReason):
        assert result.code in DEAD_LETTER_REASONS
        assert result.message
    else:
        assert result.type == event_type
        assert decode(encode(result), "again") == result


# --------------------------------------------------------------------------- round trip, tolerance, UTC


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_round_trip_is_stable(event_type):
    first = decode(line(**sample(event_type)), "t")
    assert not isinstance(first, DeadLetterReason), first
    assert type(first) is INPUT_MODELS[event_type]
    wire = encode(first)
    second = decode(wire, "t")
    assert second == first
    assert encode(second) == wire


def test_tolerant_reader_ignores_unknown_fields_at_every_level():
    fields = sample("contract.upserted", crm_record={"id": 7}, priority_hint="x")
    fields["services"][0]["billing_code"] = "B-7"
    fields["overrides"]["sales_rep"] = "jo"
    event = decode(line(**fields), "t")
    assert isinstance(event, ContractUpserted)
    wire = encode(event).decode()
    for unknown in ("crm_record", "priority_hint", "billing_code", "sales_rep"):
        assert unknown not in wire
    assert decode(line(**opened(assignee="bob", tags=["a"])), "t") == decode(line(**opened()), "t")


def test_offsets_are_normalised_to_utc_z():
    event = decode(line(**opened(occurred_at="2026-04-01T12:00:00+02:00")), "t")
    assert event.occurred_at == datetime(2026, 4, 1, 10, 0, tzinfo=timezone.utc)
    assert event.occurred_at.tzinfo is timezone.utc
    assert b'"occurred_at":"2026-04-01T10:00:00Z"' in encode(event)


def test_offset_conversion_crosses_the_date_and_keeps_fractions():
    event = decode(line(**opened(occurred_at="2026-03-31T22:30:00.5-05:00")), "t")
    assert b'"occurred_at":"2026-04-01T03:30:00.500000Z"' in encode(event)


def test_all_timestamps_of_an_event_are_normalised():
    event = decode(line(**sample("maintenance.scheduled")), "t")
    assert isinstance(event, MaintenanceScheduled)
    assert (event.starts_at, event.ends_at) == (
        datetime(2026, 4, 4, 6, tzinfo=timezone.utc),
        datetime(2026, 4, 4, 8, tzinfo=timezone.utc),
    )
    contract = decode(line(**sample("contract.upserted")), "t")
    assert contract.effective_from == datetime(2025, 12, 31, 23, tzinfo=timezone.utc)


def test_priority_is_lower_cased():
    assert decode(line(**opened(priority=" HIGH ")), "t").priority == "high"


def test_defaults_apply():
    bare = {k: v for k, v in sample("ticket.replied").items() if k != "public"}
    reply = decode(line(**bare), "t")
    assert reply.public is True
    assert reply.schema_version == 1
    started = {k: v for k, v in sample("outage.started").items() if k != "scope"}
    assert decode(line(**started), "t").scope == "all_users"
    assert decode(line(**opened()), "t").environment == "production"


# --------------------------------------------------------------------------- canonical encoding


def test_equal_events_encode_to_identical_bytes():
    a = decode(line(**opened(occurred_at="2026-04-01T12:00:00+02:00", extra=1)), "a")
    reordered = dict(reversed(list(opened(occurred_at="2026-04-01T10:00:00Z").items())))
    b = decode(json.dumps(reordered, indent=4).encode(), "b")
    c = TicketOpened(
        event_id="ev-1", occurred_at=datetime(2026, 4, 1, 10, tzinfo=timezone.utc),
        ticket_id="T-1", customer_id="acme", priority="HIGH",
    )
    assert encode(a) == encode(b) == encode(c)


def test_encoding_is_compact_in_field_order_and_utf8():
    event = decode(line(**opened(customer_id="Société Générale")), "t")
    assert encode(event) == (
        '{"event_id":"ev-1","type":"ticket.opened","occurred_at":"2026-04-01T10:00:00Z","schema_version":1,'
        '"ticket_id":"T-1","customer_id":"Société Générale","priority":"high","environment":"production"}'
    ).encode("utf-8")
    assert encode_line(event) == encode(event) + b"\n"


# --------------------------------------------------------------------------- upcasting


def test_version_zero_reply_is_upcast_from_is_public():
    raw = line(**{k: v for k, v in sample("ticket.replied", schema_version=0, is_public=False).items() if k != "public"})
    event = decode(raw, "t")
    assert isinstance(event, TicketReplied)
    assert event.public is False
    assert event.schema_version == 1
    assert b'"schema_version":1' in encode(event) and b"is_public" not in encode(event)


def test_upcast_prefers_an_explicit_public_and_leaves_the_input_alone():
    original = {"type": "ticket.replied", "schema_version": 0, "is_public": False, "public": True}
    result = upcast("ticket.replied", 0, original)
    assert result["public"] is True and result["schema_version"] == 1 and "is_public" not in result
    assert original == {"type": "ticket.replied", "schema_version": 0, "is_public": False, "public": True}


def test_current_version_and_missing_version_are_equivalent():
    explicit = decode(line(**opened(schema_version=1)), "t")
    assert explicit == decode(line(**opened()), "t")


# --------------------------------------------------------------------------- dead letters


def test_dead_letter_keeps_the_raw_input_readably():
    raw = b'{"event_id": "\xff"}'
    reason = reason_of(raw)
    at = datetime(2026, 4, 1, 10, tzinfo=timezone.utc)
    dl = dead_letter_event("events.jsonl:12", raw, reason, at)
    assert dl.raw == '{"event_id": "\\xff"}'
    assert dl.raw_bytes == len(raw)
    assert (dl.reason, dl.error, dl.source, dl.occurred_at) == (reason.code, reason.message, "events.jsonl:12", at)
    assert decode_output(encode(dl)) == dl


def test_dead_letter_raw_is_truncated_but_counts_all_bytes():
    raw = b"x" * 70000
    dl = dead_letter_event("sla.ticket-events[3]@1042", raw, reason_of(raw), datetime(2026, 4, 1, tzinfo=timezone.utc))
    assert len(dl.raw) == 65536
    assert dl.raw_bytes == 70000


def test_dead_letter_ids_depend_on_source_and_raw_only():
    at = datetime(2026, 4, 1, tzinfo=timezone.utc)
    later = datetime(2026, 5, 1, tzinfo=timezone.utc)
    reason = DeadLetterReason("invalid_json", "x")
    a = dead_letter_event("f:1", b"{", reason, at)
    assert a.event_id == dead_letter_event("f:1", "{", reason, later).event_id
    assert a.event_id != dead_letter_event("f:2", b"{", reason, at).event_id
    assert a.event_id != dead_letter_event("f:1", b"{{", reason, at).event_id
    assert encode(a) == encode(dead_letter_event("f:1", b"{", reason, at))
