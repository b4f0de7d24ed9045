"""Shared services, components and regions (SPEC §11): one ledger per service, figures per subscriber.

Hand arithmetic: February 2026 has 28 days = 40,320 min. Pro 99.5 % -> threshold 201.6 min;
Enterprise 99.9 % -> threshold 40.32 min.
"""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from policies import downtime, uptime
from policies.contracts import parse_contracts
from policies.downtime import SubscriberScope
from policies.processor import Processor, Settings
from tests.support import CATALOG, as_wire, at, decoded, wire

FEB = 40_320


def shared_contracts(*extra: dict) -> list:
    entries = [
        {"customer_id": "pro", "policy": "vectorize", "plan": "pro", "effective_from": "2026-02-01T00:00:00Z",
         "services": [{"service_id": "cloud", "monthly_fee": "1000.00", "currency": "USD"}]},
        {"customer_id": "ent", "policy": "vectorize", "plan": "enterprise", "effective_from": "2026-02-01T00:00:00Z",
         "overrides": {"uptime_commitment_percent": "99.9"},
         "services": [{"service_id": "cloud", "annual_fee": "120000.00", "currency": "EUR"}]},
        *extra,
    ]
    return parse_contracts({"contracts": entries}, CATALOG, source="tests")


def processor(*extra: dict) -> Processor:
    proc = Processor(CATALOG, settings=Settings())
    for c in shared_contracts(*extra):
        proc.install(c)
    return proc


def outage(oid: str, start: str, end: str, **scope) -> list:
    return [decoded(wire("outage.started", start, service_id="cloud", outage_id=oid, **scope)),
            decoded(wire("outage.resolved", end, service_id="cloud", outage_id=oid))]


def run(proc: Processor, events: list, until: str) -> list[dict]:
    out = []
    for ev in events:
        emitted, rejected = proc.apply(ev)
        assert rejected is None, rejected
        out += emitted
    out += proc.advance_to(at(until))
    return [as_wire(o) for o in out]


def closes(outputs: list[dict], type_: str = "uptime.month_closed") -> dict[str, dict]:
    return {o["customer_id"]: o for o in outputs if o["type"] == type_}


def test_one_outage_counts_for_every_subscriber_each_with_its_own_commitment_and_fee():
    # 100 min: Pro threshold 201.6 -> met; Enterprise 40.32 -> excess 59.68 min,
    # refund 59.68 / 40,320 x 10,000 = 14.80... EUR
    out = run(processor(), outage("O1", "2026-02-10T10:00:00Z", "2026-02-10T11:40:00Z"), "2026-03-01T02:00:00Z")
    closed = closes(out)
    assert closed["pro"]["downtime_minutes"] == closed["ent"]["downtime_minutes"] == 100
    assert closed["pro"]["met"] is True and closed["ent"]["met"] is False
    refunds = closes(out, "refund.eligible")
    assert set(refunds) == {"ent"}
    assert refunds["ent"]["currency"] == "EUR"
    assert refunds["ent"]["refund_amount"] == str(uptime.round_half_up(Fraction("59.68") / FEB * 10_000, 2))


def test_component_outage_counts_only_for_subscribers_using_the_component():
    search_only = {"customer_id": "search", "policy": "vectorize", "plan": "pro",
                   "effective_from": "2026-02-01T00:00:00Z",
                   "services": [{"service_id": "cloud", "monthly_fee": "10.00", "currency": "USD",
                                 "components": ["search"]}]}
    events = outage("O1", "2026-02-10T10:00:00Z", "2026-02-10T15:00:00Z", components=["ingest"])
    closed = closes(run(processor(search_only), events, "2026-03-01T02:00:00Z"))
    assert closed["search"]["downtime_minutes"] == 0 and closed["search"]["met"] is True
    assert closed["pro"]["downtime_minutes"] == 300  # no list: every component


def test_regional_outage_counts_only_for_subscribers_in_the_region():
    eu = {"customer_id": "eu", "policy": "vectorize", "plan": "pro", "effective_from": "2026-02-01T00:00:00Z",
          "services": [{"service_id": "cloud", "monthly_fee": "10.00", "currency": "USD", "region": "eu-west"}]}
    us = {"customer_id": "us", "policy": "vectorize", "plan": "pro", "effective_from": "2026-02-01T00:00:00Z",
          "services": [{"service_id": "cloud", "monthly_fee": "10.00", "currency": "USD", "region": "us-east"}]}
    events = outage("O1", "2026-02-10T10:00:00Z", "2026-02-10T15:00:00Z", regions=["eu-west", "eu-central"])
    closed = closes(run(processor(eu, us), events, "2026-03-01T02:00:00Z"))
    assert closed["eu"]["downtime_minutes"] == 300
    assert closed["us"]["downtime_minutes"] == 0
    assert closed["pro"]["downtime_minutes"] == 0  # every region: not all of its users were down


def test_a_contract_starting_mid_month_counts_its_minutes_and_prorates_its_fee():
    # in force from 2026-02-15T00:00Z: 14 days = 20,160 min; an outage 2026-02-14T23:00 - 2026-02-15T02:00
    # counts 120 min; threshold 20,160 x 0.5 % = 100.8; excess 19.2; fee 1000 x 1/2 = 500;
    # refund 19.2 / 20,160 x 500 = 0.476... -> 0.48
    late = {"customer_id": "late", "policy": "vectorize", "plan": "pro", "effective_from": "2026-02-15T00:00:00Z",
            "services": [{"service_id": "cloud", "monthly_fee": "1000.00", "currency": "USD"}]}
    out = run(processor(late), outage("O1", "2026-02-14T23:00:00Z", "2026-02-15T02:00:00Z"), "2026-03-01T02:00:00Z")
    closed, refund = closes(out)["late"], closes(out, "refund.eligible")["late"]
    assert (closed["total_minutes"], closed["downtime_minutes"]) == (20_160, 120)
    assert (refund["threshold_minutes"], refund["excess_minutes"]) == (100.8, 19.2)
    assert (refund["monthly_fee"], refund["refund_amount"]) == ("500.00", "0.48")
    assert closes(out)["pro"]["total_minutes"] == FEB


def test_figures_are_computed_once_per_distinct_scope_not_per_subscriber():
    state = downtime.new_state("cloud")
    state = downtime.outage_started(state, event_id="e1", occurred_at=at("2026-02-10T10:00:00Z"),
                                    outage_id="O1", components=["ingest"]).state
    cache = uptime.FiguresCache()
    scopes = [SubscriberScope.of(None, None), SubscriberScope.of(["search"], None)]
    for i in range(50):
        state, *_ = uptime.close_and_record(state, customer_id=f"c{i}", month="2026-02",
                                            commitment_percent=Decimal("99.5"), fee_per_month=Decimal(1),
                                            currency="USD", scope=scopes[i % 2], cache=cache)
    assert cache.computed == 2
    assert len(state.emitted) == 50


def test_outage_reach_is_the_union_of_its_started_statements_in_any_order():
    def fold(order):
        state = downtime.new_state("cloud")
        for components in order:
            state = downtime.outage_started(state, event_id="e", occurred_at=at("2026-02-10T10:00:00Z"),
                                            outage_id="O1", components=components).state
        return state.outages["O1"].reach

    assert fold([["b"], ["a"]]) == fold([["a"], ["b"]]) == (((("a",), None)), (("b",), None))
    assert fold([["a"], None]) == fold([None, ["a"]]) == ()  # one statement of the whole service
    reported_first = downtime.outage_reported(downtime.new_state("cloud"), event_id="r",
                                              occurred_at=at("2026-02-10T09:00:00Z"), outage_id="O1").state
    started = downtime.outage_started(reported_first, event_id="s", occurred_at=at("2026-02-10T10:00:00Z"),
                                      outage_id="O1", components=["a"]).state
    assert started.outages["O1"].reach == ((("a",), None),)


def test_scoped_records_survive_the_json_round_trip_and_old_rows_read_as_whole_service():
    state = downtime.new_state("cloud")
    state = downtime.outage_started(state, event_id="e1", occurred_at=at("2026-02-10T10:00:00Z"),
                                    outage_id="O1", components=["x"], regions=["eu"]).state
    state = downtime.maintenance_scheduled(state, event_id="m1", occurred_at=at("2026-02-01T10:00:00Z"),
                                           maintenance_id="M1", starts_at=at("2026-02-05T00:00:00Z"),
                                           ends_at=at("2026-02-05T01:00:00Z"), regions=["us"]).state
    back = downtime.ServiceState.from_json(state.to_json())
    assert back == state
    old_row = '{"s":"cloud","o":[["O1","2026-02-10T10:00:00Z",null,null,null,"all_users",null,null,null,null]],' \
              '"m":[],"e":[]}'
    assert downtime.ServiceState.from_json(old_row).outages["O1"].reach == ()


def test_a_window_outside_a_subscribers_scope_neither_excludes_its_downtime_nor_uses_its_allowance():
    state = downtime.new_state("cloud")
    state = downtime.maintenance_scheduled(state, event_id="m1", occurred_at=at("2026-02-01T00:00:00Z"),
                                           maintenance_id="M1", starts_at=at("2026-02-10T10:00:00Z"),
                                           ends_at=at("2026-02-10T12:00:00Z"), regions=["us"]).state
    state = downtime.outage_started(state, event_id="o1", occurred_at=at("2026-02-10T10:00:00Z"),
                                    outage_id="O1").state
    state = downtime.outage_resolved(state, event_id="o2", occurred_at=at("2026-02-10T12:00:00Z"),
                                     outage_id="O1").state
    end = at("2026-03-01T00:00:00Z")
    us = downtime.month_figures(state, "2026-02", end, SubscriberScope.of(None, "us"))
    eu = downtime.month_figures(state, "2026-02", end, SubscriberScope.of(None, "eu"))
    assert (us.maintenance_minutes, us.downtime_minutes) == (120, 0)
    assert (eu.maintenance_minutes, eu.downtime_minutes) == (0, 120)
    assert eu.windows == ()


def test_dropping_a_service_from_a_contract_unsubscribes_only_that_customer():
    proc = processor()
    (pro,) = parse_contracts({"contracts": [{"customer_id": "pro", "policy": "vectorize", "plan": "pro",
                                             "effective_from": "2026-02-01T00:00:00Z",
                                             "services": [{"service_id": "other", "monthly_fee": "1",
                                                           "currency": "USD"}]}]}, CATALOG)
    proc.install(pro)
    assert proc.subscribers == {"cloud": ("ent",), "other": ("pro",)}


@pytest.mark.parametrize("field", ["components", "regions"])
def test_an_empty_scope_list_on_an_outage_is_a_dead_letter(field):
    from events.codec import DeadLetterReason, decode
    import json
    ev = decode(json.dumps(wire("outage.started", "2026-02-10T10:00:00Z", service_id="cloud", outage_id="O1",
                                **{field: []})).encode())
    assert isinstance(ev, DeadLetterReason)


def test_the_service_month_view_lists_every_subscribers_figures():
    from policies.explain import service_month
    eu = {"customer_id": "eu", "policy": "vectorize", "plan": "pro", "effective_from": "2026-02-01T00:00:00Z",
          "services": [{"service_id": "cloud", "monthly_fee": "10.00", "currency": "USD", "region": "eu-west"}]}
    proc = processor(eu)
    run(proc, outage("O1", "2026-02-10T10:00:00Z", "2026-02-10T11:40:00Z", regions=["eu-west"]),
        "2026-03-01T02:00:00Z")
    view = service_month(proc.store.service("cloud"), "2026-02", at("2026-03-01T00:00:00Z"),
                         proc.subscriber_terms("cloud", "2026-02"))
    rows = {r["customer_id"]: r for r in view["customers"]}
    assert view["downtime_minutes"] == 100  # the whole service: every outage
    assert (rows["eu"]["downtime_minutes"], rows["eu"]["met"], rows["eu"]["closed"]) == (100, True, True)
    assert (rows["ent"]["downtime_minutes"], rows["ent"]["uptime_percent"]) == (0, "100.00")


def test_uptime_gauge_is_the_lowest_subscriber_and_customers_are_never_labels():
    from streams.metrics import Metrics
    from policies.outputs import Output
    m = Metrics()

    def closed(customer, month, uptime_percent, met, revision=1):
        return Output("uptime.month_closed", at("2026-03-01T01:00:00Z"), customer, "x",
                      {"customer_id": customer, "service_id": "cloud", "month": month,
                       "uptime_percent": uptime_percent, "met": met, "revision": revision})

    m.observe([closed("a", "2026-02", "99.20", False), closed("b", "2026-02", "100.00", True)])
    assert m.uptime.labels("cloud", "2026-02")._value.get() == 99.2
    assert m.subscribers_not_met.labels("cloud", "2026-02")._value.get() == 1
    m.observe([closed("a", "2026-02", "99.90", True, revision=2)])  # a revision replaces a's figure
    assert m.uptime.labels("cloud", "2026-02")._value.get() == 99.9
    assert m.subscribers_not_met.labels("cloud", "2026-02")._value.get() == 0
    for month in ("2026-03", "2026-04", "2026-05"):
        m.observe([closed("a", month, "100.00", True)])
    assert set(m._closes) == {("cloud", "2026-03"), ("cloud", "2026-04"), ("cloud", "2026-05")}  # bounded
    # a backfill: a later subscriber's first close of a month no longer kept still folds in
    m.observe([closed("c", "2026-02", "98.00", False)])
    assert m.uptime.labels("cloud", "2026-02")._value.get() == 98.0
    assert m.subscribers_not_met.labels("cloud", "2026-02")._value.get() == 1
    m.observe([closed("d", "2026-02", "99.00", False)])
    assert m.uptime.labels("cloud", "2026-02")._value.get() == 98.0
    assert m.subscribers_not_met.labels("cloud", "2026-02")._value.get() == 2
    labels = {k for metric in m.registry.collect() for s in metric.samples for k in s.labels}
    assert "customer_id" not in labels


def test_scoped_events_give_the_same_closes_in_any_order():
    """SPEC §10 with §11: the scope join and per-subscriber figures do not depend on arrival order."""
    import itertools

    search = {"customer_id": "search", "policy": "vectorize", "plan": "pro", "effective_from": "2026-02-01T00:00:00Z",
              "services": [{"service_id": "cloud", "monthly_fee": "10.00", "currency": "USD",
                            "components": ["search"], "region": "eu"}]}
    search_us = {**search, "customer_id": "search-us",
                 "services": [{**search["services"][0], "region": "us"}]}
    events = [
        decoded(wire("outage.started", "2026-02-10T10:00:00Z", "s1", service_id="cloud", outage_id="O1",
                     components=["ingest"])),
        decoded(wire("outage.started", "2026-02-10T10:30:00Z", "s2", service_id="cloud", outage_id="O1",
                     components=["search"], regions=["eu"])),
        decoded(wire("outage.resolved", "2026-02-10T14:00:00Z", "r1", service_id="cloud", outage_id="O1")),
        decoded(wire("maintenance.scheduled", "2026-02-01T00:00:00Z", "m1", service_id="cloud", maintenance_id="M1",
                     starts_at="2026-02-10T13:00:00Z", ends_at="2026-02-10T15:00:00Z", regions=["us"])),
    ]
    results = set()
    for order in itertools.permutations(events):
        out = run(processor(search, search_us), list(order), "2026-03-01T02:00:00Z")
        results.add(tuple(sorted((o["customer_id"], o["downtime_minutes"], o["maintenance_minutes"])
                                 for o in out if o["type"] == "uptime.month_closed")))
    # O1 was stated as `ingest` everywhere and `search` in `eu`: 10:00-14:00 = 240 min for those the
    # statements reach; `search` in `us` was not down (not "ingest+search everywhere"). The US-only
    # window turns search-us's (absent) downtime into nothing: it had none.
    assert results == {(("ent", 240, 0), ("pro", 240, 0), ("search", 240, 0), ("search-us", 0, 0))}


def test_a_month_before_the_contract_has_no_minutes_and_is_met():
    state = downtime.new_state("cloud")
    figures = downtime.month_figures(state, "2026-01", at("2026-02-01T00:00:00Z"),
                                     in_force=(at("2026-02-15T00:00:00Z"), None))
    closed, refund = uptime.close_month(figures, customer_id="c", service_id="cloud",
                                        commitment_percent=Decimal("99.5"), fee_per_month=Decimal(100), currency="USD")
    assert (closed["total_minutes"], closed["uptime_percent"], closed["met"], refund) == (0, Decimal("100.00"), True, None)


def test_explain_month_shows_the_customers_scope_and_the_prorated_fee():
    from pathlib import Path

    from streams.explain import explain_month_from_files
    golden = Path(__file__).parents[1] / "golden"
    comp = golden / "shared_component_outage"
    text = explain_month_from_files(comp / "events.jsonl", comp / "contracts.yaml", "cmp-search", "vz-platform",
                                    "2026-07")
    assert "service shared with 2 other customers" in text
    assert "Customer scope: components search" in text
    assert "outage CMP-1 (components ingest)" in text and "OUTSIDE this customer's components" in text
    assert "downtime                   = 0 min" in text
    mid = golden / "shared_contract_starts_mid_month"
    text = explain_month_from_files(mid / "events.jsonl", mid / "contracts.yaml", "mid-late", "vz-index", "2026-09")
    assert "In force from 2026-09-16 00:00:00Z" in text
    assert "total minutes in force    = 21600 min" in text
    assert "12 / 21600 x 300.00 USD (= 600.00 x 21600 / 43200 in force) = 0.166667 -> 0.17 USD" in text
