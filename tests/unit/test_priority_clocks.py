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
from tests.support import CATALOG, Run, brief, change, opened, reopened, reply, resolved, status

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


# =========================================================================== F3


def _f3_run(change_at: str, thresholds=()) -> Run:
    run = Run("nb", thresholds=thresholds)
    run.feed(opened("T1", "nb", "medium", "2026-03-02T09:00:00Z", event_id="o1"),
             change("T1", "high", "customer", change_at, event_id="p1"))
    run.until("2026-03-11T00:00:00Z")
    return run


# Medium objective: 6 bd = 48 bh from Mon 03-02 09:00Z (UTC, no holidays): Mon..Fri = 40 bh,
# + 8 bh Mon 03-09 -> 03-09 17:00Z. High commitment: 3 bd = 24 bh: Mon, Tue, Wed -> Wed 03-04 17:00Z.
MEDIUM_BREACH = ("sla.breached", "2026-03-09T17:00:00Z", "first_response", False, 1, "medium",
                 "2026-03-02T09:00:00Z", "2026-03-09T17:00:00Z")


def test_raise_to_binding_after_the_objective_breached_breaches_the_commitment_at_the_change():
    # Raised Tue 03-10 10:00Z, after the objective fired (03-09 17:00Z): high's deadline (03-04 17:00Z)
    # has passed -> SPEC §6 "the breach occurs at the change": binding breach at 03-10 10:00Z.
    run = _f3_run("2026-03-10T10:00:00Z")
    assert [brief(o) for o in run.outputs] == [
        MEDIUM_BREACH,
        ("sla.breached", "2026-03-10T10:00:00Z", "first_response", True, 1, "high",
         "2026-03-02T09:00:00Z", "2026-03-04T17:00:00Z"),
    ]
    assert run.outputs[1]["target"] == {"amount": 3, "unit": "days", "clock": "business"}


def test_raise_before_or_after_the_objective_fires_gives_the_same_binding_breach_but_its_instant():
    # The review's b (raised Mon 03-09 10:00Z, before the objective's 17:00Z) already gave the binding
    # breach at its change; a (03-10 10:00Z) now gives it too. Both with at-risk warnings on: the
    # cycle's warnings already given as the objective's are not repeated (b: 0.9 = 43.2 bh -> Mon
    # 03-09 12:12Z had not fired at 10:00Z, so it fires at the change, as before).
    before = _f3_run("2026-03-09T10:00:00Z", thresholds=(0.5, 0.75, 0.9))
    after = _f3_run("2026-03-10T10:00:00Z", thresholds=(0.5, 0.75, 0.9))
    binding = [(o["type"], o["occurred_at"], o["due_at"], o.get("threshold"))
               for run in (before, after) for o in run.outputs if o["binding"]]
    assert binding == [
        ("sla.at_risk", "2026-03-09T10:00:00Z", "2026-03-04T17:00:00Z", 0.9),
        ("sla.breached", "2026-03-09T10:00:00Z", "2026-03-04T17:00:00Z", None),
        ("sla.breached", "2026-03-10T10:00:00Z", "2026-03-04T17:00:00Z", None),
    ]


def test_a_binding_breach_is_not_repeated_by_lowering_and_raising_again():
    # High opened Mon 03-02 09:00Z: binding breach Wed 03-04 17:00Z. Lowered to medium Thu 03-05
    # 10:00Z: the clock stays done (the breach stands; no objective breach Mon 03-09 17:00Z).
    # Raised again Tue 03-10 10:00Z: the commitment already breached, nothing new, nothing retracted.
    run = Run("nb", thresholds=())
    run.feed(opened("T3", "nb", "high", "2026-03-02T09:00:00Z"),
             change("T3", "medium", "provider", "2026-03-05T10:00:00Z"),
             change("T3", "high", "provider", "2026-03-10T10:00:00Z"),
             reply("T3", "2026-03-10T11:00:00Z"))
    run.until("2026-03-11T00:00:00Z")
    assert [brief(o) for o in run.outputs] == [
        ("sla.breached", "2026-03-04T17:00:00Z", "first_response", True, 1, "high",
         "2026-03-02T09:00:00Z", "2026-03-04T17:00:00Z")]


def test_f3_net_outcome_does_not_depend_on_arrival_order():
    # The raise arriving late (after time reached 03-10 12:00Z) rebuilds the clocks: the same net outcome.
    reference = _f3_run("2026-03-10T10:00:00Z")
    run = Run("nb", thresholds=())
    run.feed(opened("T1", "nb", "medium", "2026-03-02T09:00:00Z", event_id="o1"))
    run.until("2026-03-10T12:00:00Z")
    run.feed(change("T1", "high", "customer", "2026-03-10T10:00:00Z", event_id="p1"))
    run.until("2026-03-11T00:00:00Z")
    assert net_outcome(run.outputs) == net_outcome(reference.outputs)


def test_a_raise_while_resolved_gives_the_reopened_ticket_its_resolution_clock():
    """Review 2026-12-06 (a missed breach, stream and replay alike): a raise to a priority with a
    resolution target while the ticket was resolved created no resolution clock, so the reopen had
    none to resume and the ticket never breached.

    `rs` (Rescale Production Enterprise, 24x5 UTC, Mon 00:00-Sat 00:00Z): normal has first response
    8 h and no resolution target; urgent has first response 1 h and resolution 8 h. Opened normal Mon
    2026-02-02 09:00Z, answered 09:30, resolved 10:00, reopened 11:00, raised to urgent by the
    provider. SPEC §6: re-evaluated from the original start, resolved time paused: 1 h ran
    (09:00-10:00), 7 h from the reopen at 11:00 -> due Mon 18:00Z, breached (cycle 2, the reopen's).
    The raise at 10:30 (resolved) must give what the raise at 11:30 (reopened) gives."""

    def resolution_outputs(raise_at: str) -> list:
        run = Run("rs", thresholds=())
        run.feed(opened("R1", "rs", "normal", "2026-02-02T09:00:00Z"), reply("R1", "2026-02-02T09:30:00Z"),
                 resolved("R1", "2026-02-02T10:00:00Z"), *sorted(
                     [reopened("R1", "2026-02-02T11:00:00Z"), change("R1", "urgent", "provider", raise_at)],
                     key=lambda e: e.occurred_at))
        run.until("2026-02-03T12:00:00Z")
        return [(o["type"], o["cycle"], o["due_at"], o["occurred_at"]) for o in run.outputs
                if o["metric"] == "resolution"]

    expected = [("sla.breached", 2, "2026-02-02T18:00:00Z", "2026-02-02T18:00:00Z")]
    assert resolution_outputs("2026-02-02T11:30:00Z") == expected
    assert resolution_outputs("2026-02-02T10:30:00Z") == expected  # before: []


def test_a_reply_during_a_pause_is_met_against_the_deadline_in_force_then():
    """Review 2026-12-06: the `due_at` of a met given while its clock is paused was the deadline as if
    never paused, so the met looked late (`met_at` a day after `due_at`) in reports and whatif.

    `rsp` (as `rs`; waiting_on_customer pauses first response): opened normal (8 business hours) Mon
    2026-02-02 09:00Z, waiting on the customer from 10:00 (1 h elapsed), answered Tue 10:00 still
    paused: 7 h remain from the reply, the deadline in force is Tue 10:00 + 7 h = Tue 17:00Z."""

    run = Run("rsp", thresholds=())
    run.feed(opened("P1", "rsp", "normal", "2026-02-02T09:00:00Z"),
             status("P1", "waiting_on_customer", "2026-02-02T10:00:00Z"))
    (met,) = [o for o in run.feed(reply("P1", "2026-02-03T10:00:00Z")) if o["type"] == "sla.met"]
    assert (met["met_at"], met["due_at"], met["elapsed_minutes"]) == \
        ("2026-02-03T10:00:00Z", "2026-02-03T17:00:00Z", 60)  # before: due Mon 17:00Z
