"""The benchmark generator: deterministic for a seed, exact counts, valid events and contracts."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

from bench.generate import PLANS, generate, sample_workload
from events.codec import DeadLetterReason, decode
from policies.catalog import default_catalog
from policies.contracts import parse_contracts

EVENTS, TICKETS = 3000, 300


def _small(seed: int = 7, late: float = 0.0):
    return generate(events=EVENTS, tickets=TICKETS, seed=seed, customers=12, late_fraction=late)


def test_same_seed_same_bytes_and_other_seed_differs():
    a, b, c = _small(7), _small(7), _small(8)
    assert a.lines == b.lines and a.contracts == b.contracts
    assert a.lines != c.lines


def test_counts_are_exact_and_contracts_cover_every_plan():
    work = _small()
    assert len(work.lines) == EVENTS
    contracts = parse_contracts(work.contracts, default_catalog())  # raises on any invalid order form
    assert {(c.terms.policy, c.terms.plan) for c in contracts} == {(p, plan) for p, plans in PLANS.items() for plan in plans}
    for c in contracts:
        assert 1 <= len(c.terms.services) <= 5
    opened = [json.loads(l) for l in work.lines if '"ticket.opened"' in l]
    assert len({o["ticket_id"] for o in opened}) == TICKETS == len(opened)


def test_events_decode_in_time_order_with_about_a_tenth_percent_bad_lines():
    work = _small()
    decoded = [decode(line.encode(), f"line {i}") for i, line in enumerate(work.lines, 1)]
    bad = [d for d in decoded if isinstance(d, DeadLetterReason)]
    good = [d for d in decoded if not isinstance(d, DeadLetterReason)]
    # decode rejects garbage, unknown types and naive timestamps; unknown tickets pass decode
    assert 1 <= len(bad) <= round(EVENTS * 0.001)
    assert {d.code for d in bad} <= {"invalid_json", "not_an_object", "unknown_type", "naive_timestamp"}
    times = [e.occurred_at for e in good]
    assert times == sorted(times)
    assert all(t.tzinfo is timezone.utc for t in times)
    offsets = {line.split('"occurred_at": "')[1][19:25] for line in work.lines if '"occurred_at": "' in line}
    assert len(offsets) >= 4  # Z, +00:00 and several non-UTC offsets

    types = Counter(e.type for e in good)
    for t in ("ticket.opened", "ticket.replied", "ticket.priority_changed", "ticket.status_changed",
              "ticket.resolved", "ticket.closed", "outage.started", "outage.resolved", "maintenance.scheduled"):
        assert types[t] > 0, t
    assert types["ticket.closed"] < TICKETS  # some tickets stay open at the end
    tickets = {e.ticket_id for e in good if e.type == "ticket.opened"}
    for e in good:  # every ticket event refers to a ticket opened earlier in the file
        if e.type.startswith("ticket.") and e.type != "ticket.opened":
            assert e.ticket_id in tickets
    services = {s["service_id"] for c in work.contracts["contracts"] for s in c["services"]}
    assert all(e.service_id in services for e in good if e.type.startswith(("outage.", "maintenance.")))


def test_non_production_and_critical_raises_are_generated():
    work = generate(events=20_000, tickets=2000, seed=3, customers=12)
    events = [json.loads(l) for l in work.lines if l.startswith("{") and '"type": "ticket.' in l]
    policy = {c["customer_id"]: c["policy"] for c in work.contracts["contracts"]}
    owner = {e["ticket_id"]: policy[e["customer_id"]] for e in events if e["type"] == "ticket.opened"}
    assert any(e.get("environment") == "non_production" and owner[e["ticket_id"]] == "vectorize"
               for e in events if e["type"] == "ticket.opened")
    assert any(e["type"] == "ticket.priority_changed" and e["priority"] == "critical"
               and e["requested_by"] == "customer" and owner[e["ticket_id"]] == "neural-magic" for e in events)


def test_late_fraction_moves_some_events_behind_later_ones():
    work = _small(late=0.05)
    assert work.meta["late_events"] > 0
    times = []
    for line in work.lines:
        d = decode(line.encode())
        if not isinstance(d, DeadLetterReason):
            times.append(d.occurred_at)
    assert times != sorted(times)
    assert max(b - a for a, b in zip(times[1:], times)).total_seconds() <= 3 * 3600  # only slightly late


def test_sample_is_the_committed_file_and_uses_the_sample_contracts():
    from bench.generate import SAMPLE_CONTRACTS

    work = sample_workload()
    committed = (SAMPLE_CONTRACTS.parent / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert work.lines == committed
    customers = {c["customer_id"] for c in work.contracts["contracts"]}
    used = {json.loads(l)["customer_id"] for l in work.lines if '"ticket.opened"' in l}
    assert used <= customers
    assert work.meta["until"] == "2026-05-01T02:00:00Z"
    assert datetime.fromisoformat(work.meta["last_event"].replace("Z", "+00:00")) < datetime(2026, 5, 1, tzinfo=timezone.utc)
