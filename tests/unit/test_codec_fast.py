"""The decode fast path gives exactly what pydantic gives (`codec._decode_slow`), for valid and invalid inputs."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import StringConstraints, model_validator
from pydantic_core import from_json

from events import codec, models
from events.codec import DeadLetterReason, decode, encode

FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type -> (required fields besides the envelope, optional fields)
    "ticket.opened": (("ticket_id", "customer_id", "priority"), ("environment",)),
    "ticket.replied": (("ticket_id", "author"), ("public",)),
    "ticket.priority_changed": (("ticket_id", "priority", "requested_by"), ()),
    "ticket.status_changed": (("ticket_id", "status"), ()),
    "ticket.escalated": (("ticket_id", "reason"), ()),
    "ticket.resolved": (("ticket_id",), ()),
    "ticket.reopened": (("ticket_id",), ()),
    "ticket.closed": (("ticket_id",), ()),
    "outage.started": (("service_id", "outage_id"), ("scope", "components", "regions")),
    "outage.reported": (("service_id", "outage_id", "ticket_id"), ()),
    "outage.resolved": (("service_id", "outage_id"), ()),
    "outage.classified": (("service_id", "outage_id", "cause"), ("category",)),
    "maintenance.scheduled": (("service_id", "maintenance_id", "starts_at", "ends_at"), ("components", "regions")),
    "maintenance.cancelled": (("service_id", "maintenance_id"), ()),
}

# ---------------------------------------------------------------- value strategies

ids = st.one_of(
    st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True),
    st.text(min_size=0, max_size=3),
    st.text(alphabet="xé", min_size=126, max_size=260),  # around the 128 / 256 limits
)
priorities = st.one_of(
    st.sampled_from(["critical", "High", "URGENT", "normal", "low", "P1", " high", "high ", "\thigh\n", "",
                     " ", "İ", "ß", "\u00a0high", "high\u2003", "\x1chigh", "hi\x1fgh", "mé dium", "x" * 64, "x" * 65,
                     " " + "x" * 64, "ǅ"]),
    st.text(max_size=6),
)
scope_names = st.none() | st.lists(ids, min_size=0, max_size=3) | st.lists(st.just("x"), min_size=255, max_size=258)
reasons = st.one_of(st.text(max_size=8), st.just(""))


def _pad(value: int, width: int) -> str:
    return str(value).zfill(width)


@st.composite
def timestamps(draw: Any) -> str:
    """Mostly strict RFC 3339 with a `Z` or an offset; sometimes a shape pydantic or fromisoformat treat differently."""
    year = draw(st.sampled_from([1, 2, 1970, 2024, 2025, 2026, 9999]) | st.integers(0, 9999))
    month = draw(st.integers(0, 13))
    day = draw(st.integers(0, 32))
    hour, minute, second = draw(st.integers(0, 24)), draw(st.integers(0, 60)), draw(st.integers(0, 61))
    date = f"{_pad(year, 4)}-{_pad(month, 2)}-{_pad(day, 2)}"
    sep = draw(st.sampled_from(["T"] * 8 + ["t", " ", "_"]))
    time = f"{_pad(hour, 2)}:{_pad(minute, 2)}" + draw(st.sampled_from([f":{_pad(second, 2)}"] * 6 + [""]))
    fraction = draw(st.sampled_from(["", "", "", ".", ",5"]) | st.from_regex(r"\.[0-9]{1,9}", fullmatch=True))
    offset = draw(
        st.sampled_from(["Z"] * 4 + ["z", "", "+00:00", "-00:00", "+24:00", "+05:60", "+0530", "+05", "UTC", " Z"])
        | st.builds(lambda s, h, m: f"{s}{_pad(h, 2)}:{_pad(m, 2)}", st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59))
    )
    text = f"{date}{sep}{time}{fraction}{offset}"
    if draw(st.integers(0, 30)) == 0:
        text = text.replace("2", "\u0662")  # an Arabic-Indic digit: not ASCII
    return text


valid_timestamps = st.builds(
    lambda dt, offset, digits: dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{dt.microsecond:06d}"[: digits + 1] if digits else "") + offset,
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["Z", "+00:00", "-00:00", "+02:00", "-07:00", "+05:30", "+14:00", "-12:00", "+23:59", "-23:59"]),
    st.integers(0, 6),
)

ODD_VALUES = [None, True, False, 0, 1, -1, 2, 1.0, 1.5, "", " ", "1", "true", "yes", "on", "0", [], {}, ["x"], {"a": 1},
              "production", "provider", "customer", "open", "2026-03-01T10:00:00Z", 1774958400, "1774958400", 10**30]
odd_values = st.sampled_from(ODD_VALUES) | st.text(max_size=5) | st.integers() | st.floats(allow_nan=False, allow_infinity=False)


def field_values(name: str) -> st.SearchStrategy[Any]:
    if name in ("ticket_id", "customer_id", "service_id", "outage_id", "maintenance_id"):
        return ids
    if name == "priority":
        return priorities
    if name in ("starts_at", "ends_at"):
        return valid_timestamps
    return {
        "environment": st.sampled_from(["production", "non_production"]),
        "author": st.sampled_from(["provider", "customer"]),
        "public": st.booleans(),
        "requested_by": st.sampled_from(["customer", "provider"]),
        "status": st.sampled_from(["open", "waiting_on_customer", "on_hold"]),
        "reason": reasons,
        "scope": st.sampled_from(["all_users", "partial"]),
        "cause": st.sampled_from(["provider", "excluded"]),
        "category": st.none() | st.text(max_size=5),
        "components": scope_names,
        "regions": scope_names,
    }[name]


@st.composite
def valid_events(draw: Any, event_type: str | None = None) -> dict[str, Any]:
    """A JSON object of a fast-path type that is valid (or nearly: ids and priorities roam around their limits)."""
    event_type = event_type or draw(st.sampled_from(sorted(FIELDS)))
    required, optional = FIELDS[event_type]
    obj: dict[str, Any] = {"event_id": draw(ids), "type": event_type, "occurred_at": draw(valid_timestamps)}
    if draw(st.booleans()):
        obj["schema_version"] = 1
    for name in required:
        obj[name] = draw(field_values(name))
    for name in optional:
        if draw(st.booleans()):
            obj[name] = draw(field_values(name))
    for key in draw(st.lists(st.sampled_from(["extra", "note", "customer_id", "public", "is_public", "priority", "data"]), max_size=2)):
        obj.setdefault(key, draw(odd_values))
    keys = draw(st.permutations(list(obj)))
    return {key: obj[key] for key in keys}


@st.composite
def mutated_events(draw: Any) -> dict[str, Any]:
    """A valid event with one to three fields replaced by odd values, removed, or given an odd timestamp."""
    obj = draw(valid_events())
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(obj) + ["schema_version", "occurred_at", "type"]))
        action = draw(st.sampled_from(["odd", "odd", "delete", "timestamp"]))
        if action == "delete":
            obj.pop(key, None)
        elif action == "timestamp":
            obj[key] = draw(timestamps())
        else:
            obj[key] = draw(odd_values)
    return obj


def to_wire(obj: Any, draw: Any) -> bytes | str:
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()), separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    return text.encode("utf-8") if draw(st.booleans()) else text


@st.composite
def wire(draw: Any, objects: st.SearchStrategy[Any]) -> bytes | str:
    return to_wire(draw(objects), draw)


# ---------------------------------------------------------------- the comparison


def assert_same_as_pydantic(raw: bytes | str) -> Any:
    fast, slow = decode(raw), codec._decode_slow(raw)
    assert type(fast) is type(slow), (fast, slow)
    if isinstance(slow, DeadLetterReason):
        assert fast == slow
        return slow
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert list(fast.__dict__) == list(slow.__dict__)
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.__pydantic_extra__ == slow.__pydantic_extra__
    assert fast.__pydantic_private__ == slow.__pydantic_private__
    assert encode(fast) == encode(slow)
    for value in fast.__dict__.values():
        if isinstance(value, datetime):
            assert value.tzinfo is timezone.utc
    assert hash(fast) == hash(slow)
    return slow


FAST_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST_SETTINGS
@given(wire(valid_events()))
@example('{"event_id":"e","type":"ticket.opened","occurred_at":"2026-03-01T10:00:00+05:30","ticket_id":"t","customer_id":"c","priority":" High "}')
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"0001-01-01T00:30:00+01:00","ticket_id":"t","author":"provider"}')
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"9999-12-31T23:30:00-01:00","ticket_id":"t","author":"provider"}')
@example('{"event_id":"e","type":"maintenance.scheduled","occurred_at":"2026-03-01T10:00:00Z","service_id":"s",'
         '"maintenance_id":"m","starts_at":"2026-03-02T10:00:00+01:00","ends_at":"2026-03-02T09:00:00Z"}')
def test_valid_events_decode_as_pydantic_decodes_them(raw: bytes | str) -> None:
    assert_same_as_pydantic(raw)


@FAST_SETTINGS
@given(wire(mutated_events()))
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"2026-03-01T10:00:00Z","ticket_id":"t","author":"provider","public":1}')
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"2026-03-01T10:00:00Z","ticket_id":"t","author":"provider","schema_version":null}')
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"2026-03-01T10:00:00Z","ticket_id":"t","author":"provider","schema_version":true}')
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"2026-03-01T10:00:00","ticket_id":"t","author":"provider"}')
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"2026-02-29T10:00:00Z","ticket_id":"t","author":"provider"}')
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"1774958400","ticket_id":"t","author":"provider"}')
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"2026-03-01T10:00:00Z","ticket_id":"t","author":"Provider"}')
@example('{"event_id":"","type":"ticket.resolved","occurred_at":"2026-03-01T10:00:00Z","ticket_id":"t"}')
@example('{"event_id":"e","type":"outage.classified","occurred_at":"2026-03-01T10:00:00Z","service_id":"s","outage_id":"o",'
         '"cause":"excluded","category":5}')
@example('{"event_id":"e","type":"ticket.replied","occurred_at":"2026-03-01T10:00:00Z","ticket_id":"t","author":"provider","x":NaN}')
def test_invalid_and_odd_events_decode_as_pydantic_decodes_them(raw: bytes | str) -> None:
    assert_same_as_pydantic(raw)


@FAST_SETTINGS
@given(st.data())
def test_any_timestamp_decodes_as_pydantic_decodes_it(data: st.DataObject) -> None:
    obj = data.draw(valid_events())
    obj["occurred_at"] = data.draw(timestamps())
    if obj["type"] == "maintenance.scheduled" and data.draw(st.booleans()):
        obj["starts_at"], obj["ends_at"] = data.draw(timestamps()), data.draw(timestamps())
    assert_same_as_pydantic(to_wire(obj, data.draw))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(wire(json_values), st.binary(max_size=40), st.text(max_size=40)))
def test_non_events_are_dead_lettered_as_before(raw: bytes | str) -> None:
    assert_same_as_pydantic(raw)


# ---------------------------------------------------------------- the fast path is really taken


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_canonical_valid_events_take_the_fast_path(data: st.DataObject) -> None:
    event_type = data.draw(st.sampled_from(sorted(FIELDS)))
    obj = data.draw(valid_events(event_type))
    if "priority" in obj:  # the fast path leaves priorities needing a strip, or not ASCII, to pydantic
        obj["priority"] = data.draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,10}[A-Za-z0-9]|[A-Za-z0-9]", fullmatch=True))
    slow = codec._decode_slow(json.dumps(obj))
    if isinstance(slow, DeadLetterReason):
        return  # ids / priorities / windows outside the limits: not a canonical valid event
    canonical = encode(slow)
    assert codec._FAST_BUILDERS[type(slow)](from_json(canonical)) is not None
    # and what the wire usually carries: an offset, unknown fields
    shifted = json.loads(canonical)
    shifted["occurred_at"] = shifted["occurred_at"][:-1] + "+00:00"
    shifted["trace"] = {"id": 1}
    assert codec._FAST_BUILDERS[type(slow)](shifted) is not None


def test_every_fast_type_has_a_builder() -> None:
    assert set(codec._FAST_TYPES) == set(FIELDS)
    assert {model.model_fields["type"].default for model in codec._FAST_BUILDERS} == set(FIELDS)


def test_models_of_shapes_the_generator_does_not_know_get_no_builder() -> None:
    assert codec._fast_builder_source(models.ContractUpserted) is None

    class WithModelValidator(models.TicketResolved):
        @model_validator(mode="after")
        def _check(self):  # type: ignore[no-untyped-def]
            return self

    class WithPattern(models.TicketResolved):
        note: Annotated[str, StringConstraints(pattern="^a")] = "a"

    assert codec._fast_builder_source(WithModelValidator) is None
    assert codec._fast_builder_source(WithPattern) is None


def test_fast_results_are_utc_instants_with_the_shared_tzinfo() -> None:
    raw = (
        '{"event_id":"e1","type":"maintenance.scheduled","occurred_at":"2026-03-01T10:00:00.5+05:30",'
        '"service_id":"s","maintenance_id":"m","starts_at":"2026-03-02T01:00:00-03:00","ends_at":"2026-03-02T05:00:00Z"}'
    )
    event = decode(raw)
    assert event.occurred_at == datetime(2026, 3, 1, 4, 30, 0, 500000, tzinfo=timezone.utc)
    assert event.starts_at == datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)
    assert all(getattr(event, name).tzinfo is timezone.utc for name in ("occurred_at", "starts_at", "ends_at"))
    assert assert_same_as_pydantic(raw) == event


@pytest.mark.parametrize("raw", [b"\xff{}", "\ud800", "x" * 20])
def test_size_and_encoding_rules_come_before_the_fast_path(raw: bytes | str) -> None:
    reason = decode(raw, max_bytes=10)
    assert isinstance(reason, DeadLetterReason)
    assert reason == codec._decode_slow(raw, max_bytes=10)
    assert reason.code in {codec.INVALID_ENCODING, codec.TOO_LARGE}
