"""The processor (routing, time, idempotency, rejections) over the reference contracts.

Hand arithmetic uses the contracts of `tests/support.py`; see test_tickets.py for the clocks.
"""
from __future__ import annotations

import pytest

from events import ids
from policies.processor import MemoryStore, Processor, Settings
from tests.support import (
    CATALOG, CONTRACTS, Run, at, change, closed, contracts, decoded, escalated, opened, reply, resolved, status, wire,
)


def reasons(run: Run) -> list[str]:
    return [r.reason for r in run.rejected]


# =========================================================================== time


def test_time_follows_events_and_never_goes_backwards():
    run = Run("nm")
    assert run.proc.now is None
    run.feed(opened("T1", "nm", "high", "2026-02-03T15:00:00Z"))
    assert run.proc.now == at("2026-02-03T15:00:00Z")
    run.feed(escalated("T1", "2026-02-03T16:00:00Z"))
    run.feed(escalated("T1", "2026-02-03T15:30:00Z"))          # late: applied at its own time
    assert run.proc.now == at("2026-02-03T16:00:00Z")
    assert run.until("2026-02-03T15:45:00Z") == []              # backwards: ignored
    assert run.proc.now == at("2026-02-03T16:00:00Z")


def test_deadlines_between_two_events_fire_before_the_later_event_is_applied():
    # NM critical opened 15:00Z (due 15:30Z); a reply at 15:40Z is late: the breach comes first,
    # then the reply adds nothing.
    run = Run("nm", thresholds=())
    run.feed(opened("T1", "nm", "critical", "2026-02-03T15:00:00Z"))
    out = run.feed(reply("T1", "2026-02-03T15:40:00Z"))
    assert [(o["type"], o["occurred_at"]) for o in out] == [("sla.breached", "2026-02-03T15:30:00Z")]


def test_advance_fires_every_ticket_due_before_t_and_only_those():
    # critical tickets opened 15:00Z, 15:05Z, 15:20Z: due 15:30Z, 15:35Z, 15:50Z.
    run = Run("nm", thresholds=())
    run.feed(opened("A", "nm", "critical", "2026-02-03T15:00:00Z"),
             opened("B", "nm", "critical", "2026-02-03T15:05:00Z"),
             opened("C", "nm", "critical", "2026-02-03T15:20:00Z"))
    out = run.until("2026-02-03T15:40:00Z")
    assert [(o["ticket_id"], o["occurred_at"]) for o in out] == [
        ("A", "2026-02-03T15:30:00Z"), ("B", "2026-02-03T15:35:00Z")]
    assert [(o["ticket_id"], o["occurred_at"]) for o in run.until("2026-02-03T16:00:00Z")] == [
        ("C", "2026-02-03T15:50:00Z")]


def test_advance_fires_milestones_of_several_tickets_in_due_order():
    # A critical from 15:00Z: at-risk 15:15, 15:22:30, 15:27, breach 15:30.
    # B critical from 15:05Z: at-risk 15:20, 15:27:30, 15:32, breach 15:35.
    run = Run("nm")
    run.feed(opened("A", "nm", "critical", "2026-02-03T15:00:00Z"),
             opened("B", "nm", "critical", "2026-02-03T15:05:00Z"))
    out = run.until("2026-02-03T16:00:00Z")
    assert len(out) == 8
    times = [o["occurred_at"] for o in out]
    assert times == sorted(times)


def test_memory_store_due_index_is_strictly_before_t():
    store = MemoryStore()
    proc = Processor(CATALOG, store, Settings(at_risk_thresholds=()))
    for c in contracts("nm"):
        proc.install(c)
    proc.apply(opened("A", "nm", "critical", "2026-02-03T15:00:00Z"))
    assert store.ticket("A").next_wake == at("2026-02-03T15:30:00Z")
    assert store.due_tickets(at("2026-02-03T15:30:00Z")) == []
    assert store.due_tickets(at("2026-02-03T15:30:01Z")) == ["A"]
    assert store.due_tickets(at("2026-02-03T15:30:01Z")) == []      # popped once


def test_at_risk_thresholds_come_from_settings():
    # NM high (120 min) from 15:00Z with thresholds (0.6,): 72 min -> 16:12Z.
    run = Run("nm", thresholds=(0.6,))
    run.feed(opened("T1", "nm", "high", "2026-02-03T15:00:00Z"))
    out = run.until("2026-02-03T16:30:00Z")
    assert [(o["threshold"], o["occurred_at"]) for o in out] == [(0.6, "2026-02-03T16:12:00Z")]
    assert out[0]["event_id"] == ids.at_risk_event_id("T1", "first_response", True, 1, 0.6)


# =========================================================================== idempotency (SPEC §2)


def test_same_reply_event_id_twice_is_ignored():
    # nx critical: the first reply (11:00Z) meets FR and starts update cycle 1 (due 13:00Z). The same
    # event id again -- even with a later instant -- must not meet cycle 1: it breaches at 13:00Z.
    # SPEC §10: the one with a later instant is not a duplicate but a conflicting_duplicate.
    run = Run("nx", thresholds=())
    run.feed(opened("N1", "nx", "critical", "2026-02-02T10:00:00Z"))
    assert len(run.feed(reply("N1", "2026-02-02T11:00:00Z", event_id="r-1"))) == 1
    assert run.feed(reply("N1", "2026-02-02T11:00:00Z", event_id="r-1")) == []
    assert run.feed(reply("N1", "2026-02-02T12:00:00Z", event_id="r-1")) == []
    out = run.until("2026-02-02T13:30:00Z")
    assert [(o["type"], o["metric"], o["cycle"], o["occurred_at"]) for o in out] == [
        ("sla.breached", "update", 1, "2026-02-02T13:00:00Z")]
    assert [r.reason for r in run.rejected] == ["conflicting_duplicate"]


def test_duplicate_ticket_opened_same_id_is_ignored():
    run = Run("vp", thresholds=())
    first = run.feed(opened("V1", "vp", "urgent", "2026-02-03T13:00:00Z", environment="non_production", event_id="o-1"))
    assert [o["type"] for o in first] == ["ticket.priority_adjusted"]
    assert run.feed(opened("V1", "vp", "urgent", "2026-02-03T13:00:00Z", environment="non_production",
                           event_id="o-1")) == []
    assert run.rejected == []
    # the clocks were not restarted: normal 2 bd from Tue 08:00 EST: Tue 11 h + Wed 12 h + Thu 1 h
    # -> Thu 08:00 EST = 2026-02-05T13:00Z (both clocks)
    out = run.until("2026-02-06T00:00:00Z")
    assert {o["occurred_at"] for o in out} == {"2026-02-05T13:00:00Z"} and len(out) == 2


def test_second_ticket_opened_with_a_new_id_is_rejected_and_changes_nothing():
    run = Run("nm", thresholds=())
    run.feed(opened("T1", "nm", "high", "2026-02-03T15:00:00Z", event_id="o-1"))
    assert run.feed(opened("T1", "nm", "critical", "2026-02-03T15:05:00Z", event_id="o-2")) == []
    assert reasons(run) == ["duplicate_ticket"]
    assert "T1" in run.rejected[0].message
    out = run.until("2026-02-03T18:00:00Z")
    assert [(o["priority"], o["occurred_at"]) for o in out] == [("high", "2026-02-03T17:00:00Z")]


def test_duplicate_customer_request_is_rejected_once():
    run = Run("nm", thresholds=())
    run.feed(opened("T1", "nm", "high", "2026-02-03T15:00:00Z"))
    ev = change("T1", "critical", "customer", "2026-02-03T15:10:00Z", event_id="c-1")
    assert len(run.feed(ev)) == 1
    assert run.feed(ev) == []


def test_events_after_close_are_dead_lettered_but_duplicates_are_ignored():
    run = Run("nm", thresholds=())
    r1 = reply("T1", "2026-02-03T15:10:00Z", event_id="r-1")
    run.feed(opened("T1", "nm", "high", "2026-02-03T15:00:00Z", event_id="o-1"), r1,
             resolved("T1", "2026-02-03T15:20:00Z"), closed("T1", "2026-02-03T15:30:00Z", event_id="c-1"))
    assert run.rejected == []
    # duplicates of applied events, the open and the close included: ignored
    run.feed(r1, closed("T1", "2026-02-03T15:30:00Z", event_id="c-1"),
             opened("T1", "nm", "high", "2026-02-03T15:00:00Z", event_id="o-1"))
    assert run.rejected == []
    # SPEC §10 (docs/decisions.md): one older than the close is a late event and applies (the ticket is
    # kept for the parking horizon after its close); one dated after the close: ticket_closed
    run.feed(reply("T1", "2026-02-03T15:25:00Z", event_id="r-2"))
    assert run.rejected == []
    run.feed(reply("T1", "2026-02-03T15:35:00Z", event_id="r-3"))
    run.feed(opened("T1", "nm", "high", "2026-02-03T16:00:00Z", event_id="o-2"))
    assert reasons(run)[0] == "ticket_closed"
    assert "T1" in run.rejected[0].message and "closed" in run.rejected[0].message
    assert reasons(run)[1] in ("duplicate_ticket", "ticket_closed")


def test_closed_ticket_runs_no_clock():
    # closed before its first response: no breach at 17:00Z afterwards.
    run = Run("nm")
    run.feed(opened("T1", "nm", "high", "2026-02-03T15:00:00Z"), closed("T1", "2026-02-03T15:10:00Z"))
    assert run.until("2026-02-10T00:00:00Z") == []
    assert run.proc.store.ticket("T1") is not None  # kept for late events until close + 7 d
    assert run.until("2026-02-11T00:00:00Z") == []
    assert run.proc.store.ticket("T1") is None


def test_close_fires_what_was_due_before_it():
    # NM critical due 15:30Z; closed at 16:00Z without a reply: the breach (15:30Z) is emitted.
    run = Run("nm", thresholds=())
    run.feed(opened("T1", "nm", "critical", "2026-02-03T15:00:00Z"))
    out = run.feed(closed("T1", "2026-02-03T16:00:00Z"))
    assert [(o["type"], o["occurred_at"]) for o in out] == [("sla.breached", "2026-02-03T15:30:00Z")]


# =========================================================================== rejections


def test_unknown_ticket_is_parked_and_unknown_customer_waits_then_is_rejected():
    # SPEC §10: an event for a ticket not opened (yet) is parked, not rejected; a ticket.opened of a
    # customer without a contract waits for it 10 min (docs/decisions.md, "Contract wait"), then is
    # the dead letter `unknown_customer` (before 2026-12-05: at once)
    run = Run("nm")
    run.feed(reply("NOPE", "2026-02-03T15:00:00Z"), opened("T9", "nobody", "high", "2026-02-03T15:00:00Z"))
    assert reasons(run) == []
    assert len(run.proc.parking) == 2
    run.until("2026-02-03T15:10:01Z")
    dead = [o for o in run.other_outputs if o["type"] == "dead_letter"]
    assert [d["reason"] for d in dead] == ["unknown_customer"] and "nobody" in dead[0]["error"]
    assert len(run.proc.parking) == 1


def test_priority_outside_the_policy_vocabulary_is_rejected():
    run = Run("nm")
    run.feed(opened("T1", "nm", "urgent", "2026-02-03T15:00:00Z"))      # urgent is a Vectorize/Rescale name
    run.feed(opened("T2", "nm", "high", "2026-02-03T15:00:00Z"),
             change("T2", "normal", "provider", "2026-02-03T15:10:00Z"))
    assert reasons(run) == ["invalid_field", "invalid_field"]
    assert "'urgent'" in run.rejected[0].message and "neural-magic" in run.rejected[0].message
    assert "'normal'" in run.rejected[1].message
    assert run.proc.store.ticket("T1") is None
    # T2 keeps high: breach at 17:00Z
    out = run.until("2026-02-03T17:30:00Z")
    assert [(o["ticket_id"], o["priority"], o["type"]) for o in out if o["type"] == "sla.breached"] == [
        ("T2", "high", "sla.breached")]


def test_priority_names_are_case_insensitive():
    run = Run("nm", thresholds=())
    run.feed(decoded(wire("ticket.opened", "2026-02-03T15:00:00Z", ticket_id="T1", customer_id="nm", priority=" High ")))
    assert run.rejected == []
    out = run.until("2026-02-03T17:30:00Z")
    assert [(o["priority"], o["occurred_at"]) for o in out] == [("high", "2026-02-03T17:00:00Z")]


@pytest.mark.parametrize("early", [
    lambda: reply("X", "2026-02-02T09:00:00Z"),
    lambda: resolved("X", "2026-02-02T09:00:00Z"),
], ids=["reply", "resolved"])
def test_event_older_than_its_ticket_open_does_not_crash(early):
    # nx critical opened Mon 10:00Z. An event of the same ticket stamped 09:00Z (clock skew upstream)
    # must be dead-lettered or ignored, not raise; the processor keeps working.
    run = Run("nx", thresholds=())
    run.feed(opened("X", "nx", "critical", "2026-02-02T10:00:00Z"))
    run.feed(early())                                   # must not raise
    run.feed(opened("Y", "nx", "critical", "2026-02-02T10:30:00Z"))
    out = run.until("2026-02-02T13:00:00Z")
    # Y: FR due 12:30Z
    assert ("Y", "2026-02-02T12:30:00Z") in [(o["ticket_id"], o["occurred_at"]) for o in out]


def test_status_older_than_its_ticket_open_does_not_crash():
    run = Run("nx", thresholds=())
    run.feed(opened("X", "nx", "critical", "2026-02-02T10:00:00Z"), status("X", "on_hold", "2026-02-02T09:00:00Z"))
    out = run.until("2026-02-02T12:30:00Z")
    assert [(o["ticket_id"], o["occurred_at"]) for o in out] == [("X", "2026-02-02T12:00:00Z")]


# =========================================================================== contracts at run time


def test_contract_upserted_installs_a_contract_for_later_tickets():
    run = Run("nm", thresholds=())
    raw = dict(CONTRACTS["rs"], customer_id="rs-new")
    run.feed(decoded(wire("contract.upserted", "2026-02-02T09:00:00Z", **raw)))
    assert run.rejected == []
    # rs urgent: FR 1 h on 24x5 from Mon 10:00Z -> 11:00Z
    run.feed(opened("R1", "rs-new", "urgent", "2026-02-02T10:00:00Z"))
    out = run.until("2026-02-02T11:30:00Z")
    assert [(o["customer_id"], o["metric"], o["occurred_at"]) for o in out] == [
        ("rs-new", "first_response", "2026-02-02T11:00:00Z")]


@pytest.mark.parametrize("raw, field", [
    ({"customer_id": "rs-bad", "policy": "rescale", "plan": "production", "edition": "enterprise"},
     "overrides.targets.urgent.first_response"),
    ({"customer_id": "ve-bad", "policy": "vectorize", "plan": "enterprise",
      "services": [{"service_id": "ve-bad-api", "monthly_fee": "10.00", "currency": "USD"}]},
     "overrides.uptime_commitment_percent"),
    ({"customer_id": "nx-bad", "policy": "neptune", "plan": "extended"}, "timezone"),
], ids=["rescale-targets", "vectorize-uptime", "neptune-timezone"])
def test_contract_missing_an_order_form_value_is_rejected(raw, field):
    run = Run("nm")
    run.feed(decoded(wire("contract.upserted", "2026-02-02T09:00:00Z", **raw)))
    assert reasons(run) == ["invalid_contract"]
    assert field in run.rejected[0].message
    assert raw["customer_id"] in run.rejected[0].message
    run.feed(opened("Z1", raw["customer_id"], "high", "2026-02-02T10:00:00Z"))
    run.until("2026-02-02T10:10:01Z")  # not installed: the ticket waited for a contract in vain
    assert [o["reason"] for o in run.other_outputs if o["type"] == "dead_letter"] == ["unknown_customer"]


def test_a_second_customer_listing_a_service_shares_it():
    """Issue 12 (was issue 18's `invalid_contract`): another contract naming vp-api subscribes to it."""
    run = Run("vp")
    raw = dict(CONTRACTS["vp"], customer_id="second")
    run.feed(decoded(wire("contract.upserted", "2026-02-02T09:00:00Z", **raw)))
    assert reasons(run) == []
    assert run.proc.subscribers["vp-api"] == ("second", "vp")
