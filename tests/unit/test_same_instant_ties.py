"""Events of one ticket at one instant fold in SPEC §10's (`occurred_at`, `event_id`) order.

Review of 2026-12-04 (clock.md F1): ties at one instant were broken by kind, then by the entry's
value, i.e. alphabetically by status (`on_hold` < `open` < `waiting_on_customer`). A pause and a
resume at one instant (a help-desk macro) then left a `waiting_on_customer` pause in force for
good, whichever event came last by id: no breach at all; `ticket.resolved` + `ticket.reopened` at
one instant always ended reopened. Now the event ids order the tie, whatever the arrival order.

Contract `nmp` is the review's input (t1): Neural Magic Enterprise, 08:00-20:00
America/New_York Mon-Fri, with `overrides.pause` {waiting_on_customer, on_hold} on first_response.
Tue 2026-03-03 is before the US DST change (Sun 8 Mar): EST, UTC-5, so 14:00Z = 09:00 local,
inside business hours until 20:00 local = 01:00Z. High: first response 2 business hours.
"""
from __future__ import annotations

import json

import pytest

from policies.contracts import parse_contracts
from policies.tickets import TicketState
from tests.support import CATALOG, Run, brief, change, opened, reopened, reply, resolved, status

NMP = {"customer_id": "nmp", "policy": "neural-magic", "plan": "enterprise",
       "services": [{"service_id": "nmp-svc", "monthly_fee": "100.00", "currency": "USD"}],
       "overrides": {"pause": {"statuses": ["waiting_on_customer", "on_hold"], "metrics": ["first_response"]}},
       "effective_from": "2026-01-01T00:00:00Z"}

OPEN_AT, TIE = "2026-03-03T14:00:00Z", "2026-03-03T14:30:00Z"


def nmp_run() -> Run:
    run = Run()
    for contract in parse_contracts({"contracts": [NMP]}, CATALOG, source="tests"):
        run.proc.install(contract)
    return run


def both_orders(a, b):
    return [(a, b), (b, a)]


@pytest.mark.parametrize("pause", ["waiting_on_customer", "on_hold"])
@pytest.mark.parametrize("arrival", ["pause_first", "resume_first"])
def test_pause_then_resume_by_id_at_one_instant_lasts_zero_seconds(pause, arrival):
    # Pause id "s1" < resume id "s2": the resume is the later event, the pause lasts 0 s.
    # 2 bh from 14:00Z -> due 16:00Z; at-risk 0.5 = 1 h -> 15:00Z, 0.75 = 1.5 h -> 15:30Z,
    # 0.9 = 108 min -> 15:48Z; breach once time passes 16:00Z. (Before: with waiting_on_customer
    # no output at all, the alphabetical tie-break kept the pause.)
    run = nmp_run()
    run.feed(opened("T1", "nmp", "high", OPEN_AT, event_id="o1"))
    p, r = status("T1", pause, TIE, event_id="s1"), status("T1", "open", TIE, event_id="s2")
    run.feed(*((p, r) if arrival == "pause_first" else (r, p)))
    run.until("2026-03-04T00:00:00Z")
    S, D = OPEN_AT, "2026-03-03T16:00:00Z"
    assert [brief(o) for o in run.outputs] == [
        ("sla.at_risk", "2026-03-03T15:00:00Z", "first_response", True, 1, "high", S, D, 0.5),
        ("sla.at_risk", "2026-03-03T15:30:00Z", "first_response", True, 1, "high", S, D, 0.75),
        ("sla.at_risk", "2026-03-03T15:48:00Z", "first_response", True, 1, "high", S, D, 0.9),
        ("sla.breached", "2026-03-03T16:00:00Z", "first_response", True, 1, "high", S, D),
    ]


@pytest.mark.parametrize("pause", ["waiting_on_customer", "on_hold"])
@pytest.mark.parametrize("arrival", ["pause_first", "resume_first"])
def test_resume_then_pause_by_id_at_one_instant_stays_paused(pause, arrival):
    # Resume id "s1" < pause id "s2": the pause is the later event and stays in force.
    # 14:00-14:30Z runs: 30 min elapsed. Nothing fires while paused (0.5 would need 60 min).
    # `open` at 15:00Z: 90 min left -> due 16:30Z; 0.5 (60 min) 30 min after 15:00 -> 15:30Z;
    # 0.75 (90 min) -> 16:00Z; 0.9 (108 min) -> 78 min after 15:00 -> 16:18Z.
    # (Before: with on_hold, `open` won the alphabetical tie, the breach came at 16:00Z.)
    run = nmp_run()
    run.feed(opened("T1", "nmp", "high", OPEN_AT, event_id="o1"))
    r, p = status("T1", "open", TIE, event_id="s1"), status("T1", pause, TIE, event_id="s2")
    run.feed(*((p, r) if arrival == "pause_first" else (r, p)))
    assert run.until("2026-03-03T14:59:59Z") == []
    assert run.proc.store.ticket("T1").next_wake is None
    run.feed(status("T1", "open", "2026-03-03T15:00:00Z", event_id="s3"))
    run.until("2026-03-04T00:00:00Z")
    S, D = OPEN_AT, "2026-03-03T16:30:00Z"
    assert [brief(o) for o in run.outputs] == [
        ("sla.at_risk", "2026-03-03T15:30:00Z", "first_response", True, 1, "high", S, D, 0.5),
        ("sla.at_risk", "2026-03-03T16:00:00Z", "first_response", True, 1, "high", S, D, 0.75),
        ("sla.at_risk", "2026-03-03T16:18:00Z", "first_response", True, 1, "high", S, D, 0.9),
        ("sla.breached", "2026-03-03T16:30:00Z", "first_response", True, 1, "high", S, D),
    ]


@pytest.mark.parametrize("ids", [("a1", "b2"), ("b2", "a1")], ids=["reopen_id_smaller", "resolve_id_smaller"])
@pytest.mark.parametrize("arrival", ["resolved_first", "reopened_first"])
def test_reopened_and_resolved_at_one_instant_end_resolved_whatever_the_ids(arrival, ids):
    # rs urgent: FR 1 h, resolution 8 h on 24x5 UTC. Mon 2026-02-02 10:00Z, reply 10:30Z (FR met, 30 min).
    # Reopen and resolve at 14:00Z fold as one help-desk update (reopen, ..., resolve): the reopen
    # finds the ticket not resolved (nothing to reopen), then resolved: resolution met at 14:00Z after
    # 240 min (due 18:00Z), and the ticket stays resolved: no breach at 18:00Z. (Stop 24's fold by id
    # ended reopened when the resolve's id was the smaller: a breach at 18:00Z, cycle 2.)
    run = Run("rs", thresholds=())
    run.feed(opened("R1", "rs", "urgent", "2026-02-02T10:00:00Z"), reply("R1", "2026-02-02T10:30:00Z"))
    y = reopened("R1", "2026-02-02T14:00:00Z", event_id=ids[0])
    x = resolved("R1", "2026-02-02T14:00:00Z", event_id=ids[1])
    run.feed(*((x, y) if arrival == "resolved_first" else (y, x)))
    run.until("2026-02-03T00:00:00Z")
    standing = [(o["type"], o["metric"], o["occurred_at"], o["due_at"], o["elapsed_minutes"])
                for o in run.outputs if o["type"] == "sla.met"]
    assert standing == [("sla.met", "first_response", "2026-02-02T10:30:00Z", "2026-02-02T11:00:00Z", 30),
                        ("sla.met", "resolution", "2026-02-02T14:00:00Z", "2026-02-02T18:00:00Z", 240)]
    assert run.of("sla.breached") == [] and run.of("sla.met_retracted") == []
    assert run.proc.store.ticket("R1").next_wake is None


@pytest.mark.parametrize("ids", [("a1", "b2"), ("b2", "a1")], ids=["reply_id_smaller", "resolve_id_smaller"])
@pytest.mark.parametrize("arrival", ["reply_first", "resolved_first"])
def test_a_reply_submitted_as_solved_answers_the_ticket_whatever_the_ids(arrival, ids):
    # Review ingest.md F3: a Zendesk public reply sent with "Submit as Solved" arrives as a reply and
    # a resolve of one instant whose ids are hashes of random envelope ids. rs urgent: FR 1 h on
    # 24x5 UTC; opened Mon 2026-02-02 10:00Z, due 11:00Z; reply + resolve at 10:30Z: first response
    # met after 30 min, resolution met after 30 min (8 h, due 18:00Z). Before: with the resolve's id
    # the smaller, the resolve stopped first response first: neither met nor breached (no outcome,
    # not measured in attainment).
    run = Run("rs", thresholds=())
    run.feed(opened("R1", "rs", "urgent", "2026-02-02T10:00:00Z"))
    r = reply("R1", "2026-02-02T10:30:00Z", event_id=ids[0])
    x = resolved("R1", "2026-02-02T10:30:00Z", event_id=ids[1])
    run.feed(*((r, x) if arrival == "reply_first" else (x, r)))
    run.until("2026-02-03T00:00:00Z")
    # (in emission order only per arrival: a resolve arriving first is applied, then the reply rebuilds)
    assert sorted((o["type"], o["metric"], o["occurred_at"], o["elapsed_minutes"]) for o in run.outputs
                  if o["type"].startswith("sla.")) == [
        ("sla.met", "first_response", "2026-02-02T10:30:00Z", 30),
        ("sla.met", "resolution", "2026-02-02T10:30:00Z", 30)]


def test_a_state_written_before_entries_held_ids_keeps_the_order_it_was_folded_in():
    # A stored state from before (status entries without their id) folded the tie alphabetically:
    # paused for good. A restart rebuilds it in that same order, so the upgrade emits nothing the
    # state's fold did not derive (no breach appears out of a restart); the same events replayed
    # now give the breach at 16:00Z (test above).
    run = nmp_run()
    run.feed(opened("T1", "nmp", "high", OPEN_AT, event_id="o1"),
             status("T1", "waiting_on_customer", TIE, event_id="s1"), status("T1", "open", TIE, event_id="s2"))
    data = json.loads(run.proc.store.ticket("T1").to_json())
    for entry in data["h"]:
        if entry[2] == "s":
            entry[3] = entry[3].partition("|")[0]
    data["m"], data["g"], data["a"] = [], [], TIE  # as written at 14:30Z before: nothing emitted
    from policies.tickets import _legacy_fold_order, fold_key
    legacy = TicketState.from_json(json.dumps(data))
    assert fold_key(legacy.history) is _legacy_fold_order
    run.proc.store.save_ticket(legacy)
    assert run.until("2026-03-04T00:00:00Z") == []


@pytest.mark.parametrize("arrival", ["provider_first", "customer_first"])
def test_a_customer_request_at_one_instant_is_judged_against_the_priority_before_it(arrival):
    # nm (no pause): opened high Tue 2026-02-03 15:00Z. At 15:30Z the provider lowers it to medium
    # (id "a1") and the customer asks for critical (id "b2"). By id alone the rejection would keep
    # medium when the lowering came first and high when it came later, a notice corrected under a
    # generation id (docs/decisions.md, "Priority notices"). The customer's requests fold first at
    # their instant: one rejection keeping high in both arrival orders, nothing retracted; the
    # ticket is medium after 15:30Z. (The former kind order gave the same: `c|` < `p|`.)
    run = Run("nm")
    run.feed(opened("G", "nm", "high", "2026-02-03T15:00:00Z", event_id="G-open"))
    p = change("G", "medium", "provider", "2026-02-03T15:30:00Z", event_id="a1")
    c = change("G", "critical", "customer", "2026-02-03T15:30:00Z", event_id="b2")
    run.feed(*((p, c) if arrival == "provider_first" else (c, p)))
    notices = [o for o in run.outputs if o["type"].startswith("ticket.")]
    assert [(o["type"], o["requested"], o["kept"]) for o in notices] == [
        ("ticket.priority_change_rejected", "critical", "high")]
    assert run.proc.store.ticket("G").priority == "medium"
