"""Priority changes that cross a clock's kind (review of 2026-12-04, clock.md F2 and F3).

F2: a Neptune Basic ticket answered while critical (no timed updates) and then lowered got no
update cadence at all. F3: a Neptune medium ticket raised to high after its non-binding objective
had breached got no binding breach. Hand figures in the comments; Neptune's targets are those of
policies/catalog/neptune.yaml (SPEC §7): Basic critical initial 8 bh, no timed updates; high
initial 3 bd, updates every 2 calendar days; medium initial 6 bd (objective, not binding).
Customer business hours 09:00-17:00 Mon-Fri in the contract's zone, day length 8 h.
March 2026: 2026-03-02 is a Monday; Berlin is on CET (UTC+1) until 29 March.
"""
from __future__ import annotations

import itertools

from tests.net_outcome import net_outcome
from tests.support import CATALOG, Run, brief, change, opened, reply

from policies.contracts import parse_contracts

# The review's t2 contract: Neptune Basic in Berlin.
BERLIN = {"customer_id": "np", "policy": "neptune", "plan": "basic", "timezone": "Europe/Berlin",
          "holiday_country": "DE", "holiday_subdivision": "BE", "effective_from": "2026-01-01T00:00:00Z"}


def berlin_run(thresholds=()) -> Run:
    run = Run(thresholds=thresholds)
    run.proc.install(parse_contracts({"contracts": [BERLIN]}, CATALOG, source="tests")[0])
    return run


# =========================================================================== F2


def _f2_events():
    return [opened("T1", "np", "critical", "2026-03-03T08:00:00Z", event_id="o1"),
            reply("T1", "2026-03-03T10:00:00Z", event_id="r1"),
            change("T1", "high", "provider", "2026-03-03T11:00:00Z", event_id="p1")]


def test_answered_critical_ticket_lowered_to_high_gets_its_update_cadence_from_the_change():
    # Opened Tue 03-03 08:00Z = 09:00 CET; critical initial 8 bh -> 17:00 CET = 16:00Z. The provider's
    # public reply at 10:00Z meets it (2 bh = 120 min). Critical has no timed updates: no cycle yet,
    # but the updates have started (the provider has replied). Lowered to high at 11:00Z: cycle 1
    # starts at the change, 2 calendar days -> Thu 03-05 11:00Z; missed, so cycle 2 runs 03-05 11:00Z
    # -> Sat 03-07 11:00Z, cycle 3 -> Mon 03-09 11:00Z (calendar days: weekends and holidays count).
    run = berlin_run()
    run.feed(*_f2_events())
    run.until("2026-03-09T12:00:00Z")
    assert [brief(o) for o in run.outputs] == [
        ("sla.met", "2026-03-03T10:00:00Z", "first_response", True, 1, "critical",
         "2026-03-03T08:00:00Z", "2026-03-03T16:00:00Z", 120),
        ("sla.breached", "2026-03-05T11:00:00Z", "update", True, 1, "high",
         "2026-03-03T11:00:00Z", "2026-03-05T11:00:00Z"),
        ("sla.breached", "2026-03-07T11:00:00Z", "update", True, 2, "high",
         "2026-03-05T11:00:00Z", "2026-03-07T11:00:00Z"),
        ("sla.breached", "2026-03-09T11:00:00Z", "update", True, 3, "high",
         "2026-03-07T11:00:00Z", "2026-03-09T11:00:00Z"),
    ]
    assert run.outputs[1]["target"] == {"amount": 2, "unit": "days", "clock": "calendar"}


def test_a_reply_after_the_lowering_meets_cycle_1_and_starts_cycle_2():
    # As above; a provider reply Wed 03-04 09:00Z (before 03-05 11:00Z) meets cycle 1 and starts
    # cycle 2 at 09:00Z -> due Fri 03-06 09:00Z.
    run = berlin_run()
    run.feed(*_f2_events(), reply("T1", "2026-03-04T09:00:00Z", event_id="r2"))
    run.until("2026-03-06T10:00:00Z")
    assert [brief(o)[:8] for o in run.outputs if o["metric"] == "update"] == [
        ("sla.met", "2026-03-04T09:00:00Z", "update", True, 1, "high",
         "2026-03-03T11:00:00Z", "2026-03-05T11:00:00Z"),
        ("sla.breached", "2026-03-06T09:00:00Z", "update", True, 2, "high",
         "2026-03-04T09:00:00Z", "2026-03-06T09:00:00Z"),
    ]


def test_an_unanswered_critical_ticket_lowered_to_high_still_waits_for_its_first_reply():
    # Without a provider reply no update is due (SPEC §6: "after each provider public reply").
    # First response: high's 3 bd from the open, Tue 03-03 09:00 CET: Tue, Wed, Thu -> Thu 03-05
    # 17:00 CET = 16:00Z (the critical 8 bh deadline, 16:00Z Tue, had not passed at 11:00Z).
    run = berlin_run()
    run.feed(opened("T2", "np", "critical", "2026-03-03T08:00:00Z"),
             change("T2", "high", "provider", "2026-03-03T11:00:00Z"))
    run.until("2026-03-09T12:00:00Z")
    assert [brief(o) for o in run.outputs] == [
        ("sla.breached", "2026-03-05T16:00:00Z", "first_response", True, 1, "high",
         "2026-03-03T08:00:00Z", "2026-03-05T16:00:00Z")]


def test_f2_net_outcome_does_not_depend_on_arrival_order():
    # Every arrival order of the three events (the open parks what comes before it) gives the
    # sorted order's net outcome, with ticks between arrivals in the late orders.
    reference = berlin_run()
    reference.feed(*_f2_events())
    reference.until("2026-03-09T12:00:00Z")
    expected = net_outcome(reference.outputs)
    for order in itertools.permutations(_f2_events()):
        run = berlin_run()
        for ev in order:
            run.feed(ev)
            run.until("2026-03-04T12:00:00Z")
        run.until("2026-03-09T12:00:00Z")
        assert net_outcome(run.outputs) == expected, [e.event_id for e in order]
