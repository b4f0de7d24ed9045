"""The month-close benchmark at a tiny size: its workload is valid and deterministic, and its code runs."""
from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

from bench.month_close import (CLOSE_AT, MONTH_END, MONTH_START, SERVICES_PER_CUSTOMER, build_processor, feed,
                               generate, measure)
from events.codec import DeadLetterReason, decode

CUSTOMERS, OUTAGES = 12, 90


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_same_seed_same_workload_other_seed_differs():
    a, b, c = generate(CUSTOMERS, OUTAGES, seed=3), generate(CUSTOMERS, OUTAGES, seed=3), generate(CUSTOMERS, OUTAGES, seed=4)
    assert a.lines == b.lines and a.contracts == b.contracts
    assert a.lines != c.lines


def test_workload_is_valid_events_in_time_order_inside_the_month():
    work = generate(CUSTOMERS, OUTAGES, seed=3)
    decoded = [decode(line, f"line {n}") for n, line in enumerate(work.lines, 1)]
    assert not [d for d in decoded if isinstance(d, DeadLetterReason)]
    times = [ev.occurred_at for ev in decoded]
    assert times == sorted(times)
    assert MONTH_START <= times[0] and times[-1] < MONTH_END
    assert len({ev.event_id for ev in decoded}) == len(decoded)
    assert len({ev.outage_id for ev in decoded if ev.type.startswith("outage.")}) == OUTAGES == work.meta["outages"]
    windows = {ev.maintenance_id for ev in decoded if ev.type == "maintenance.scheduled"}
    assert len(windows) == OUTAGES // 10
    services = [s["service_id"] for c in work.contracts for s in c["services"]]
    assert len(set(services)) == CUSTOMERS * SERVICES_PER_CUSTOMER == len(services)
    assert {ev.service_id for ev in decoded} <= set(services)
    by_outage = defaultdict(list)
    for ev in decoded:
        if ev.type.startswith("outage."):
            by_outage[ev.outage_id].append(ev)
    for events in by_outage.values():
        kinds = [ev.type for ev in events]
        assert kinds[0] in ("outage.started", "outage.reported")
        assert kinds.count("outage.resolved") <= 1 and kinds.count("outage.classified") <= 1
        if "outage.classified" in kinds:
            assert kinds[-1] == "outage.classified" and "outage.resolved" in kinds
    kinds = {ev.type for ev in decoded}
    assert {"outage.started", "outage.reported", "outage.resolved", "outage.classified", "maintenance.scheduled"} <= kinds


def test_close_emits_one_month_closed_per_service_and_refunds_only_below_commitment():
    work = generate(CUSTOMERS, OUTAGES, seed=3)
    processor = build_processor(work)
    fed = feed(processor, work.lines)
    assert fed == {"outputs": 0, "rejected": 0, "undecodable": 0}  # nothing closes before the month ends
    outputs = processor.advance_to(CLOSE_AT)
    closed = {o.fields["service_id"]: o for o in outputs if o.type == "uptime.month_closed"}
    refunds = {o.fields["service_id"]: o for o in outputs if o.type == "refund.eligible"}
    assert len(closed) == CUSTOMERS * SERVICES_PER_CUSTOMER == len(outputs) - len(refunds)
    assert {s for s, o in closed.items() if not o.fields["met"]} == set(refunds)
    assert all(o.occurred_at == MONTH_END + timedelta(hours=1) for o in outputs)

    # Independent check on the simplest services: one all_users outage, alerted and resolved,
    # never reported, classified or in a window, is down exactly from alert to resolution.
    events_of = defaultdict(list)
    for line in work.lines:
        record = json.loads(line)
        events_of[record["service_id"]].append(record)
    simple = 0
    for service_id, o in closed.items():
        records = events_of.get(service_id, [])
        if not records:
            assert o.fields["downtime_minutes"] == 0 and o.fields["met"]
        elif ([r["type"] for r in records] == ["outage.started", "outage.resolved"]
              and records[0].get("scope", "all_users") == "all_users"):
            down = _at(records[1]["occurred_at"]) - _at(records[0]["occurred_at"])
            assert o.fields["downtime_minutes"] * 60 == down.total_seconds()
            simple += 1
    assert simple > 0


def test_measure_runs_and_reports_every_phase():
    result = measure(CUSTOMERS, OUTAGES, seed=3, repeat=1, closes=2)
    assert result["month_closed"] == CUSTOMERS * SERVICES_PER_CUSTOMER
    assert result["other_outputs"] == 0 and result["feed"]["rejected"] == 0
    assert len(result["close"]["cpus"]) == 2 and result["close"]["cpu"] == min(result["close"]["cpus"])
    assert result["baseline"]["lines"] == result["events"] > OUTAGES
    assert result["outages_per_service"]["mean"] * result["services"] == OUTAGES
