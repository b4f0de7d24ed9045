"""Models: wire formats of minutes, percentages, money, targets; output ids; field order; shapes."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from events import ids
from events.codec import decode_output, encode
from events.contract import ContractTerms
from events.models import (
    INPUT_ADAPTER,
    INPUT_MODELS,
    OUTPUT_ADAPTER,
    OUTPUT_MODELS,
    AttainmentReported,
    ContractUpserted,
    DeadLetter,
    PriorityAdjusted,
    RefundWithdrawn,
    SlaMetRetracted,
    PriorityChangeRejected,
    PriorityNoticeRetracted,
    RefundEligible,
    SlaAtRisk,
    SlaBreached,
    SlaBreachRetracted,
    SlaMet,
    TicketOpened,
    UptimeMonthClosed,
)
from events.upcasters import CURRENT_VERSION

APRIL = datetime(2026, 4, 1, tzinfo=timezone.utc)
MAY = datetime(2026, 5, 1, tzinfo=timezone.utc)


def wire(event) -> dict:
    return json.loads(encode(event))


def clock_fields(**overrides) -> dict:
    fields = dict(
        occurred_at=APRIL + timedelta(hours=4),
        ticket_id="T-1",
        customer_id="acme",
        policy="vectorize",
        plan="pro",
        policy_version="2026.11.1",
        priority="urgent",
        metric="first_response",
        binding=True,
        target={"amount": Decimal("4"), "unit": "hours", "clock": "business"},
        started_at=APRIL,
        due_at=APRIL + timedelta(hours=4),
    )
    fields.update(overrides)
    return fields


def month_closed(**overrides) -> UptimeMonthClosed:
    fields = dict(
        occurred_at=MAY + timedelta(hours=1),
        customer_id="acme",
        service_id="acme-api",
        month="2026-04",
        total_minutes=43200,
        downtime_minutes=150,
        excluded_minutes=90,
        maintenance_minutes=120,
        uptime_percent=Decimal("99.65"),
        commitment_percent=Decimal("99.5"),
        met=True,
    )
    fields.update(overrides)
    return UptimeMonthClosed.create(**fields)


def raw_minutes(value) -> str:
    """The exact JSON text of a minutes field."""
    text = encode(month_closed(downtime_minutes=value)).decode()
    return text.split('"downtime_minutes":', 1)[1].split(",", 1)[0]


# --------------------------------------------------------------------------- minutes


@pytest.mark.parametrize(
    "value, text",
    [
        (150, "150"),
        (Decimal("150.0000"), "150"),
        (timedelta(seconds=9000), "150"),
        (timedelta(seconds=9030), "150.5"),
        (timedelta(seconds=1), "0.0167"),  # 0.01666... rounds up
        (timedelta(seconds=2), "0.0333"),  # 0.03333... rounds down
        (timedelta(microseconds=3000), "0.0001"),  # exactly 0.00005: half-up, not half-even to 0
        (Decimal("2.00005"), "2.0001"),  # half-even would give 2.0000
        (Decimal("0.00004999"), "0"),
        (timedelta(0), "0"),
        (43200, "43200"),
        (timedelta(days=31), "44640"),
    ],
)
def test_minutes_are_numbers_rounded_half_up_to_four_places(value, text):
    assert raw_minutes(value) == text


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=999_999))
def test_minutes_from_durations_are_exact_seconds_over_sixty(seconds, microseconds):
    duration = timedelta(seconds=seconds, microseconds=microseconds)
    text = raw_minutes(duration)
    exact = (Decimal(seconds) + Decimal(microseconds) / 10**6) / 60
    assert Decimal(text) == exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert "e" not in text.lower()
    assert not (("." in text) and text.endswith("0")), text


def test_negative_minutes_are_rejected():
    with pytest.raises(ValidationError, match="downtime_minutes"):
        month_closed(downtime_minutes=-1)


# --------------------------------------------------------------------------- percentages and money


@pytest.mark.parametrize(
    "value, text",
    [
        (Decimal("99.645"), "99.65"),  # half-up (half-even would give 99.64)
        (Decimal("99.6444"), "99.64"),
        (Decimal("99.5"), "99.50"),
        (100, "100.00"),
        ("99.305", "99.31"),
        (Decimal("-0.001"), "0.00"),  # never "-0.00"
    ],
)
def test_percentages_are_strings_with_two_places(value, text):
    assert wire(month_closed(uptime_percent=value))["uptime_percent"] == text


def test_money_is_rounded_half_up_to_cents():
    refund = RefundEligible.create(
        occurred_at=MAY + timedelta(hours=1),
        customer_id="acme",
        service_id="acme-api",
        month="2026-04",
        downtime_minutes=300,
        threshold_minutes=216,
        excess_minutes=84,
        monthly_fee=Decimal("1000"),
        refund_amount=Decimal(84) / Decimal(43200) * Decimal(1000),  # 1.9444...
        currency="USD",
        claim_deadline=MAY + timedelta(days=30),
    )
    body = wire(refund)
    assert (body["monthly_fee"], body["refund_amount"]) == ("1000.00", "1.94")
    assert body["claim_deadline"] == "2026-05-31T00:00:00Z"
    assert (body["downtime_minutes"], body["threshold_minutes"], body["excess_minutes"]) == (300, 216, 84)
    half_cent = RefundEligible.create(**{**refund.model_dump(), "refund_amount": Decimal("1.945")})
    assert wire(half_cent)["refund_amount"] == "1.95"  # half-even would give 1.94


def test_attainment_percent_may_be_null():
    event = AttainmentReported.create(
        occurred_at=APRIL, customer_id="acme", quarter="2026-Q1", metric="first_response",
        measured=0, met=0, attainment_percent=None,
    )
    assert wire(event)["attainment_percent"] is None
    with pytest.raises(ValidationError, match="quarter"):
        AttainmentReported.create(**{**event.model_dump(), "quarter": "2026-Q5"})


# --------------------------------------------------------------------------- ticket clock outputs


def test_target_amounts_are_numbers():
    assert wire(SlaBreached.create(**clock_fields()))["target"] == {"amount": 4, "unit": "hours", "clock": "business"}
    half = clock_fields(target={"amount": Decimal("0.5"), "unit": "hours", "clock": "calendar"})
    assert wire(SlaBreached.create(**half))["target"]["amount"] == 0.5


def test_identity_fields_are_shared_and_follow_the_envelope():
    envelope = ["event_id", "type", "occurred_at", "schema_version"]
    identity = ["ticket_id", "customer_id", "policy", "plan", "policy_version", "priority", "metric",
                "binding", "target", "started_at", "due_at", "cycle"]
    assert list(SlaBreached.model_fields) == envelope + identity
    assert list(SlaMet.model_fields) == envelope + identity + ["met_at", "elapsed_minutes"]
    assert list(SlaAtRisk.model_fields) == envelope + identity + ["threshold"]
    for model in (*INPUT_MODELS.values(), *OUTPUT_MODELS.values()):
        assert list(model.model_fields)[:4] == envelope, model


def test_met_event_on_the_wire():
    met = SlaMet.create(**clock_fields(occurred_at=APRIL + timedelta(minutes=90)),
                        met_at=APRIL + timedelta(minutes=90), elapsed_minutes=timedelta(minutes=90))
    body = wire(met)
    assert body["met_at"] == "2026-04-01T01:30:00Z"
    assert body["elapsed_minutes"] == 90
    assert body["cycle"] == 1 and body["binding"] is True
    assert decode_output(encode(met)) == met


# --------------------------------------------------------------------------- ids


def spec_id(*parts: str) -> str:
    return "sla-" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def test_output_event_id_is_the_documented_hash():
    assert ids.output_event_id("a", "b") == spec_id("a", "b")
    assert ids.output_event_id("a", "b") != ids.output_event_id("ab")
    assert len(ids.output_event_id("x")) == 36


def test_ticket_output_ids_follow_the_design():
    # SPEC §10: breach and met ids are content-addressed: the clock + instant, deadline and priority
    breached = SlaBreached.create(**clock_fields(cycle=3))
    assert breached.event_id == spec_id("sla.breached", "T-1", "first_response", "true", "3",
                                        breached.occurred_at.isoformat(), breached.due_at.isoformat(),
                                        breached.priority, breached.started_at.isoformat(), "")
    met = SlaMet.create(**clock_fields(binding=False), met_at=APRIL, elapsed_minutes=0)
    assert met.event_id == spec_id("sla.met", "T-1", "first_response", "false", "1", met.occurred_at.isoformat(),
                                   met.due_at.isoformat(), met.priority, met.started_at.isoformat(), "0")
    risk = SlaAtRisk.create(**clock_fields(), threshold=0.75)
    assert risk.event_id == spec_id("sla.at_risk", "T-1", "first_response", "true", "1", "0.75")
    retracted = SlaBreachRetracted.create(occurred_at=APRIL, breach_event_id=breached.event_id,
                                          ticket_id="T-1", reason="reply at due_at")
    assert retracted.event_id == spec_id("sla.breach_retracted", breached.event_id)


def test_ids_ignore_content_that_is_not_identity():
    a = SlaBreached.create(**clock_fields())
    b = SlaBreached.create(**clock_fields(customer_id="other"))
    assert a.event_id == b.event_id
    # a corrected outcome (another instant, deadline or priority) is another event (SPEC §10)
    assert a.event_id != SlaBreached.create(**clock_fields(occurred_at=MAY, priority="high", due_at=MAY)).event_id
    assert a.event_id != SlaBreached.create(**clock_fields(binding=False)).event_id
    assert a.event_id != SlaBreached.create(**clock_fields(metric="resolution")).event_id


def test_at_risk_threshold_spelling_does_not_change_the_id():
    by_float = SlaAtRisk.create(**clock_fields(), threshold=0.5)
    by_decimal = SlaAtRisk.create(**clock_fields(), threshold=Decimal("0.50"))
    assert by_float.event_id == by_decimal.event_id
    assert by_float.event_id != SlaAtRisk.create(**clock_fields(), threshold=0.9).event_id
    assert wire(by_decimal)["threshold"] == 0.5


def test_notice_ids_derive_from_the_ticket_and_the_causing_input():
    rejected = PriorityChangeRejected.create(source_event_id="in-7", occurred_at=APRIL, ticket_id="T-1",
                                             requested="Critical", kept="high", reason="customer cannot raise to critical")
    assert rejected.event_id == spec_id("ticket.priority_change_rejected", "T-1", "in-7")
    assert rejected.requested == "critical"
    assert list(wire(rejected))[4:] == ["ticket_id", "requested", "kept", "reason"]
    adjusted = PriorityAdjusted.create(source_event_id="in-7", occurred_at=APRIL, ticket_id="T-1",
                                       requested="urgent", effective="normal", reason="non-production")
    assert adjusted.event_id == spec_id("ticket.priority_adjusted", "T-1", "in-7")


def test_month_ids_include_the_revision():
    first = month_closed()
    assert first.event_id == spec_id("uptime.month_closed", "acme", "acme-api", "2026-04", "1")
    assert month_closed(revision=2).event_id == spec_id("uptime.month_closed", "acme", "acme-api", "2026-04", "2")
    assert month_closed(downtime_minutes=10).event_id == first.event_id


def test_attainment_id():
    event = AttainmentReported.create(occurred_at=APRIL, customer_id="acme", quarter="2026-Q1",
                                      metric="first_response", measured=4, met=3, attainment_percent=Decimal(75))
    assert event.event_id == spec_id("sla.attainment_reported", "acme", "2026-Q1")
    assert wire(event)["attainment_percent"] == "75.00"


# --------------------------------------------------------------------------- shapes


def test_models_are_frozen():
    event = SlaBreached.create(**clock_fields())
    with pytest.raises(ValidationError):
        event.ticket_id = "other"


def test_naive_datetimes_are_rejected_when_building_outputs():
    with pytest.raises(ValidationError, match="due_at"):
        SlaBreached.create(**clock_fields(due_at=datetime(2026, 4, 1, 4)))


def test_aware_datetimes_are_held_in_utc():
    plus_two = timezone(timedelta(hours=2))
    event = SlaBreached.create(**clock_fields(started_at=datetime(2026, 4, 1, 2, tzinfo=plus_two)))
    assert event.started_at == APRIL and event.started_at.tzinfo is timezone.utc
    assert wire(event)["started_at"] == "2026-04-01T00:00:00Z"


def test_unknown_policy_is_rejected():
    with pytest.raises(ValidationError, match="policy"):
        SlaBreached.create(**clock_fields(policy="acme"))


def test_contract_fields_are_top_level_and_terms_round_trip():
    event = ContractUpserted(
        event_id="c-1", occurred_at=APRIL, customer_id="acme", policy="vectorize", plan="pro",
        services=[{"service_id": "acme-api", "annual_fee": "12000", "currency": "USD"}],
        effective_from="2026-01-01T00:00:00-05:00",
    )
    body = wire(event)
    assert body["customer_id"] == "acme" and body["services"][0]["service_id"] == "acme-api"
    assert body["effective_from"] == "2026-01-01T05:00:00Z"
    terms = event.terms()
    assert type(terms) is ContractTerms
    assert terms.services[0].fee_per_month == Decimal(1000)
    assert isinstance(event, ContractTerms)


def test_type_tables_match_the_unions():
    assert set(INPUT_MODELS) == set(CURRENT_VERSION)
    assert set(OUTPUT_MODELS) == {
        "sla.breached", "sla.met", "sla.breach_retracted", "sla.at_risk", "ticket.priority_change_rejected",
        "ticket.priority_adjusted", "sla.attainment_reported", "uptime.month_closed", "refund.eligible", "dead_letter",
        "sla.met_retracted", "refund.withdrawn", "ticket.priority_notice_retracted",  # SPEC §10
    }
    assert len(INPUT_MODELS) == 15
    for event_type, model in INPUT_MODELS.items():
        assert model.model_fields["type"].default == event_type


def test_union_adapters_dispatch_on_type():
    event = INPUT_ADAPTER.validate_python({"event_id": "e", "type": "ticket.opened", "occurred_at": "2026-04-01T00:00:00Z",
                                           "ticket_id": "T", "customer_id": "c", "priority": "Low"})
    assert type(event) is TicketOpened
    breach = SlaBreached.create(**clock_fields())
    assert OUTPUT_ADAPTER.validate_json(encode(breach)) == breach


def test_dead_letter_reason_must_be_a_code():
    with pytest.raises(ValidationError, match="reason"):
        DeadLetter(event_id="d", occurred_at=APRIL, source="f:1", raw="x", raw_bytes=1,
                   reason="Not A Code", error="e")


@pytest.mark.parametrize("model", list(OUTPUT_MODELS.values()), ids=list(OUTPUT_MODELS))
def test_every_output_round_trips_through_its_wire_form(model, request):
    examples = {
        SlaBreached: lambda: SlaBreached.create(**clock_fields()),
        SlaMet: lambda: SlaMet.create(**clock_fields(), met_at=APRIL, elapsed_minutes=timedelta(seconds=61)),
        SlaAtRisk: lambda: SlaAtRisk.create(**clock_fields(), threshold=0.9),
        SlaBreachRetracted: lambda: SlaBreachRetracted.create(occurred_at=APRIL, breach_event_id="sla-x",
                                                              ticket_id="T", reason="late reply"),
        PriorityChangeRejected: lambda: PriorityChangeRejected.create(
            source_event_id="i", occurred_at=APRIL, ticket_id="T", requested="critical", kept="high", reason="r"),
        PriorityAdjusted: lambda: PriorityAdjusted.create(
            source_event_id="i", occurred_at=APRIL, ticket_id="T", requested="urgent", effective="normal", reason="r"),
        PriorityNoticeRetracted: lambda: PriorityNoticeRetracted.create(
            occurred_at=APRIL, notice_event_id="sla-n", ticket_id="T", reason="the provider had set it already"),
        AttainmentReported: lambda: AttainmentReported.create(
            occurred_at=APRIL, customer_id="c", quarter="2026-Q2", metric="first_response", measured=3, met=2,
            attainment_percent=Decimal(200) / 3),
        UptimeMonthClosed: lambda: month_closed(downtime_minutes=timedelta(seconds=1)),
        RefundEligible: lambda: RefundEligible.create(
            occurred_at=MAY, customer_id="c", service_id="s", month="2026-04", downtime_minutes=300,
            threshold_minutes=216, excess_minutes=84, monthly_fee=1000, refund_amount="1.94", currency="USD",
            claim_deadline=MAY + timedelta(days=30), revision=2),
        SlaMetRetracted: lambda: SlaMetRetracted.create(occurred_at=APRIL, met_event_id="sla-y", ticket_id="T",
                                                        reason="a late priority change moved the deadline"),
        RefundWithdrawn: lambda: RefundWithdrawn.create(occurred_at=MAY, customer_id="c", service_id="s",
                                                        month="2026-04", revision=3, refund_event_id="sla-z",
                                                        reason="met after all"),
        DeadLetter: lambda: DeadLetter(event_id="d", occurred_at=APRIL, source="f:1", raw="{", raw_bytes=1,
                                       reason="invalid_json", error="not valid JSON"),
    }
    event = examples[model]()
    assert type(event) is model
    wire_bytes = encode(event)
    again = decode_output(wire_bytes)
    assert again == event
    assert encode(again) == wire_bytes
    if model not in (DeadLetter, PriorityChangeRejected, PriorityAdjusted):  # ids from outside the event
        assert event.event_id == event.expected_event_id()
