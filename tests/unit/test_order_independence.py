"""Order independence (SPEC §10, issue 11): the net outcome is a function of the set of events.

A random scenario set (tickets of every provider with priority changes, replies, pauses,
resolutions, reopens and closes; outages with reports, resolutions and classifications; maintenance
windows; the contracts of tests/support.py) is replayed sorted (the reference: what `slaproc
replay` does) and fed to one Processor in several arrival orders, as the stream does:

- per-topic concatenation: every ticket event, then every monitoring event (a backfill of two
  topic exports), no ticks;
- per-entity reordering: each ticket's / outage's / window's events permuted among the slots
  they hold in the sorted sequence;
- random delays: each event arrives 0-6 h after its occurred_at, one in ten up to 3 days
  later, with caught-up ticks moving both halves to the arrival instant (minus 30 s) between
  arrivals: late events are judged late and corrected.

Each must give the sorted order's net outcome (tests/net_outcome.py). Lateness stays under
the parking horizon (7 days). Derandomized, bounded examples: deterministic in CI.

Known gap (docs/decisions.md, "Priority notices"): a priority notice is emitted once, with the
ticket's priority as known on arrival, and SPEC §10 has no retraction for notices; a late
earlier priority change can leave a notice whose `kept` / `effective` differs from the sorted
run's (about 1 ordering in 1,000 here). Notices are compared by id; their content is not.
Second gap: a breach or met that a late event changes and a later one changes back (A, B, A)
stands again with its content but a generation id (its first id was retracted), not the
sorted run's id (about 1 ordering in 1,000 with delays). Neither shows in the examples below.
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings, strategies as st

from policies.processor import Processor, Settings
from streams.replay import Replayer
from streams.wire import to_bytes
from tests.net_outcome import net_outcome
from tests.support import CATALOG, contracts, decoded, wire

UTC = timezone.utc
BASE = datetime(2026, 2, 2, 9, tzinfo=UTC)  # Monday
UNTIL = datetime(2026, 4, 12, tzinfo=UTC)   # Feb and Mar closed, Q1 reported, Feb still held
CONTRACTS = ("nm", "nx", "nb", "rsp", "vp", "ve")
PRIORITIES = {"nm": ["critical", "high", "medium", "low"], "nx": ["critical", "high", "medium", "low"],
              "nb": ["critical", "high", "medium", "low"], "rsp": ["urgent", "high", "normal", "low"],
              "vp": ["urgent", "high", "normal", "low"], "ve": ["urgent", "high", "normal", "low"]}
KINDS = ["reply", "reply", "customer_reply", "provider_change", "customer_change", "status", "resolved",
         "reopened", "escalated", "closed"]
SERVICES = ("vp-api", "ve-api")
THRESHOLDS = Settings(at_risk_thresholds=())


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


@st.composite
def ticket_events(draw, n: int, customers=CONTRACTS, priorities=PRIORITIES, around=()) -> list[dict]:
    """`around`: instants the ticket is opened near (within 3 days), when given (contract histories)."""
    customer = draw(st.sampled_from(customers))
    tid = f"T{n}"
    if around:
        opened_at = draw(st.sampled_from(around)) + timedelta(minutes=draw(st.integers(-3 * 24 * 60, 3 * 24 * 60)))
    else:
        opened_at = BASE + timedelta(minutes=draw(st.integers(0, 40 * 24 * 60)))
    env = draw(st.sampled_from(["production", "production", "non_production"]))
    events = [wire("ticket.opened", iso(opened_at), f"{tid}-open", ticket_id=tid, customer_id=customer,
                   priority=draw(st.sampled_from(priorities[customer])), environment=env)]
    # half-hour steps, repeats allowed: some events of a ticket share their instant
    offsets = draw(st.lists(st.integers(1, 4 * 48).map(lambda h: h * 30), min_size=0, max_size=5))
    for i, off in enumerate(sorted(offsets)):
        t, eid = iso(opened_at + timedelta(minutes=off)), f"{tid}-{i}"
        kind = draw(st.sampled_from(KINDS))
        if kind == "reply":
            events.append(wire("ticket.replied", t, eid, ticket_id=tid, author="provider"))
        elif kind == "customer_reply":
            events.append(wire("ticket.replied", t, eid, ticket_id=tid, author="customer"))
        elif kind in ("provider_change", "customer_change"):
            events.append(wire("ticket.priority_changed", t, eid, ticket_id=tid,
                               priority=draw(st.sampled_from(priorities[customer])),
                               requested_by="provider" if kind == "provider_change" else "customer"))
        elif kind == "status":
            events.append(wire("ticket.status_changed", t, eid, ticket_id=tid,
                               status=draw(st.sampled_from(["waiting_on_customer", "open", "on_hold"]))))
        elif kind == "resolved":
            events.append(wire("ticket.resolved", t, eid, ticket_id=tid))
        elif kind == "reopened":
            events.append(wire("ticket.reopened", t, eid, ticket_id=tid))
        elif kind == "closed":
            events.append(wire("ticket.closed", t, eid, ticket_id=tid))
        else:
            events.append(wire("ticket.escalated", t, eid, ticket_id=tid, reason="x"))
    return events


@st.composite
def outage_events(draw, n: int, services=SERVICES, around=(), components=()) -> list[dict]:
    """`around`: instants the outage starts near (within 2 days); `components`: names an outage may
    be scoped to (SPEC §11), when given."""
    svc = draw(st.sampled_from(services))
    oid = f"O{n}"
    if around:
        start = draw(st.sampled_from(around)) + timedelta(minutes=draw(st.integers(-2 * 24 * 60, 2 * 24 * 60)))
    else:
        start = BASE + timedelta(minutes=draw(st.integers(0, 50 * 24 * 60)))
    scope = {"components": [draw(st.sampled_from(components))]} if components and draw(st.booleans()) else {}
    events = [wire("outage.started", iso(start), f"{oid}-s", service_id=svc, outage_id=oid,
                   scope=draw(st.sampled_from(["all_users", "all_users", "partial"])), **scope)]
    if draw(st.booleans()):
        events.append(wire("outage.reported", iso(start - timedelta(minutes=draw(st.integers(1, 60)))), f"{oid}-r",
                           service_id=svc, outage_id=oid, ticket_id=f"C{n}"))
    end = start + timedelta(minutes=draw(st.integers(5, 600)))
    if draw(st.integers(0, 9)):
        events.append(wire("outage.resolved", iso(end), f"{oid}-x", service_id=svc, outage_id=oid))
    if draw(st.booleans()):
        events.append(wire("outage.classified", iso(end + timedelta(minutes=draw(st.integers(1, 3000)))), f"{oid}-c",
                           service_id=svc, outage_id=oid, cause=draw(st.sampled_from(["provider", "excluded"])),
                           category="third_party"))
    return events


@st.composite
def window_events(draw, n: int, services=SERVICES, around=()) -> list[dict]:
    svc = draw(st.sampled_from(services))
    mid = f"M{n}"
    if around:
        starts = draw(st.sampled_from(around)) + timedelta(hours=draw(st.integers(-48, 48)))
    else:
        starts = BASE + timedelta(hours=draw(st.integers(24, 45 * 24)))
    notified = starts - timedelta(hours=draw(st.integers(1, 96)))
    events = [wire("maintenance.scheduled", iso(notified), f"{mid}-s", service_id=svc, maintenance_id=mid,
                   starts_at=iso(starts), ends_at=iso(starts + timedelta(minutes=draw(st.integers(30, 300)))))]
    if not draw(st.integers(0, 3)):
        events.append(wire("maintenance.cancelled", iso(notified + timedelta(hours=draw(st.integers(1, 40)))),
                           f"{mid}-c", service_id=svc, maintenance_id=mid))
    return events


@st.composite
def scenarios(draw) -> tuple[list, int]:
    groups = [draw(ticket_events(i)) for i in range(draw(st.integers(1, 6)))]
    groups += [draw(outage_events(i)) for i in range(draw(st.integers(0, 4)))]
    groups += [draw(window_events(i)) for i in range(draw(st.integers(0, 2)))]
    return [[decoded(e) for e in g] for g in groups], draw(st.integers(0, 2**32))


def _entity(ev) -> str:
    return getattr(ev, "ticket_id", None) if ev.type.startswith("ticket.") else \
        f"{ev.service_id}/{getattr(ev, 'outage_id', None) or getattr(ev, 'maintenance_id', None)}"


def _sorted(events):
    return sorted(events, key=lambda e: (e.occurred_at, e.event_id))


def per_topic(events, rng):
    return [(e, None) for e in _sorted([e for e in events if e.type.startswith("ticket.")])] + \
           [(e, None) for e in _sorted([e for e in events if not e.type.startswith("ticket.")])]


def per_entity(events, rng):
    ordered = _sorted(events)
    slots: dict[str, list[int]] = {}
    for i, e in enumerate(ordered):
        slots.setdefault(_entity(e), []).append(i)
    out = list(ordered)
    for idx in slots.values():
        members = [ordered[i] for i in idx]
        rng.shuffle(members)
        for i, e in zip(idx, members):
            out[i] = e
    return [(e, None) for e in out]


def delayed(events, rng):
    arrivals = []
    for e in events:
        hours = rng.uniform(0, 6) if rng.random() < 0.9 else rng.uniform(6, 72)
        arrivals.append((e.occurred_at + timedelta(hours=hours), e.event_id, e))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    # a caught-up tick at some arrivals: both halves move to that wall instant minus the lateness
    return [(e, at - timedelta(seconds=30) if rng.random() < 0.3 else None) for at, _, e in arrivals]


ORDERS = {"per_topic": per_topic, "per_entity": per_entity, "delayed": delayed}


def _reference(events) -> dict:
    rep = Replayer(contracts(*CONTRACTS), CATALOG, THRESHOLDS)
    for e in events:
        rep.feed_line(to_json(e), e.event_id)
    return net_outcome(rep.finish(UNTIL).sorted_lines())


def to_json(e) -> bytes:
    return e.__pydantic_serializer__.to_json(e)


def _arrived(arrivals) -> tuple[dict, list]:
    proc = Processor(CATALOG, settings=THRESHOLDS)
    for c in contracts(*CONTRACTS):
        proc.install(c)
    out, rejected = [], []
    for ev, tick in arrivals:
        if tick is not None:
            out += proc.advance_to(tick)
        o, r = proc.apply(ev)
        out += o
        if r is not None:
            rejected.append((ev.event_id, r.reason))
    out += proc.advance_to(UNTIL)
    return net_outcome(json.loads(to_bytes(o)) for o in out), rejected


def _reports(outcome: dict) -> dict:
    return {k: v for k, v in outcome["notices"].items() if v["type"] == "sla.attainment_reported"}


def test_a_late_pause_that_retracts_a_breach_gives_the_sorted_attainment_report():
    """Review clock.md F6 (`rsp`: Rescale 24x5 UTC, waiting_on_customer pauses first_response): normal
    (8 business hours) opened 03-31 10:00Z, paused 12:00Z, resumed 04-01 10:00Z, answered 12:00Z:
    2 h + 2 h = 4 h, met. Sorted: Q1 reports 1 measured, 1 met (100.00), dated 04-01 12:00Z. With the
    pause arriving after a tick to 19:00Z (breach at 18:00Z, then its retraction) the Q1 report had
    the same id with 0 measured (null), dated 04-01 01:00Z. Every order below now gives the sorted one."""
    events = [decoded(e) for e in (
        wire("ticket.opened", "2026-03-31T10:00:00Z", "o", ticket_id="T", customer_id="rsp", priority="normal"),
        wire("ticket.status_changed", "2026-03-31T12:00:00Z", "s1", ticket_id="T", status="waiting_on_customer"),
        wire("ticket.status_changed", "2026-04-01T10:00:00Z", "s2", ticket_id="T", status="open"),
        wire("ticket.replied", "2026-04-01T12:00:00Z", "r", ticket_id="T", author="provider"))]
    reference = _reports(_reference(events))
    q1 = [r for r in reference.values() if r["customer_id"] == "rsp" and r["quarter"] == "2026-Q1"]
    assert [(r["measured"], r["met"], r["attainment_percent"], r["occurred_at"]) for r in q1] == [
        (1, 1, "100.00", "2026-04-01T12:00:00Z")]
    o, s1, s2, r = events
    late_pause = [(o, None), (s1, datetime(2026, 3, 31, 19, tzinfo=UTC)),
                  (s2, datetime(2026, 4, 1, 1, 30, tzinfo=UTC)), (r, None)]
    rng = random.Random(7)
    for arrivals in (late_pause, per_topic(events, rng), per_entity(events, rng), delayed(events, rng)):
        outcome, _rejected = _arrived(arrivals)
        assert _reports(outcome) == reference


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_every_arrival_order_gives_the_sorted_net_outcome(scenario):
    groups, seed = scenario
    events = [e for g in groups for e in g]
    reference = _reference(events)
    rng = random.Random(seed)
    for name, order in ORDERS.items():
        outcome, _rejected = _arrived(order(events, rng))  # events after a ticket.closed: ticket_closed
        for part in ("breaches", "met", "months", "refunds"):
            assert outcome[part] == reference[part], (name, part)
        assert sorted(outcome["notices"]) == sorted(reference["notices"]), name
        assert _reports(outcome) == _reports(reference), name  # attainment reports: same ids, same figures


def test_the_shipped_sample_in_any_of_the_orders_gives_its_sorted_net_outcome():
    """issue 11: the sample reordered per topic gave 11 refund.eligible instead of 3, and refunds for
    months that were met. Fed to a processor as the stream would take it, each order now gives the
    sorted replay's net outcome (standing refunds included). Not per-entity reordering: the sample's
    tickets span weeks, so moving a `ticket.opened` to the slot of its `ticket.closed` is lateness
    beyond the parking horizon (its replies expire as orphans, by design)."""
    from pathlib import Path

    from events.codec import DeadLetterReason, decode
    from policies.contracts import load_contracts_yaml

    samples = Path(__file__).resolve().parents[2] / "samples"
    sample_contracts = load_contracts_yaml(samples / "contracts.yaml", CATALOG)
    until = datetime(2026, 5, 15, tzinfo=UTC)
    events = [e for raw in (samples / "events.jsonl").read_bytes().splitlines() if raw.strip()
              for e in [decode(raw)] if not isinstance(e, DeadLetterReason)]
    rep = Replayer(sample_contracts, CATALOG)
    for e in events:
        rep.feed_line(to_json(e), e.event_id)
    reference = net_outcome(rep.finish(until).sorted_lines())
    assert len(reference["refunds"]) >= 1
    for name, order in (("per_topic", per_topic), ("delayed", delayed)):
        proc = Processor(CATALOG)
        for c in sample_contracts:
            proc.install(c)
        out = []
        for ev, tick in order(events, random.Random(7)):
            if tick is not None:
                out += proc.advance_to(tick)
            out += proc.apply(ev)[0]
        out += proc.advance_to(until)
        outcome = net_outcome(json.loads(to_bytes(o)) for o in out if o.type != "dead_letter")
        for part in ("breaches", "met", "months", "refunds"):
            assert outcome[part] == reference[part], (name, part)
