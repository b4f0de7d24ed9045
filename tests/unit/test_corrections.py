"""Corrections that cancel (SPEC §10): refund.withdrawn, sla.met_retracted, conflicting_duplicate,
month_final. Instants pinned; Vectorize Pro (99.5 %, 1,000 USD) on vp-api, April 2026
(43,200 min; threshold 216 min)."""
from __future__ import annotations

from datetime import datetime, timezone

from events.ids import month_event_id
from policies.processor import Processor, Settings
from tests.net_outcome import net_outcome
from tests.support import CATALOG, as_wire, contracts, decoded, wire


def _proc() -> Processor:
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("vp", "nm"):
        proc.install(c)
    return proc


def _feed(proc: Processor, *events) -> tuple[list[dict], list]:
    out, rejected = [], []
    for ev in events:
        o, r = proc.apply(decoded(ev))
        out += [as_wire(x) for x in o]
        if r is not None:
            rejected.append(r)
    return out, rejected


def test_a_late_exclusion_withdraws_the_refund():
    proc = _proc()
    out, _ = _feed(proc,
                   wire("outage.started", "2026-04-10T10:00:00Z", service_id="vp-api", outage_id="A"),
                   wire("outage.resolved", "2026-04-10T15:00:00Z", service_id="vp-api", outage_id="A"),  # 300 min
                   wire("ticket.opened", "2026-05-02T10:00:00Z", "o1", ticket_id="T1", customer_id="nm",
                        priority="low"))
    out += [as_wire(x) for x in proc.advance_to(datetime(2026, 5, 3, tzinfo=timezone.utc))]
    refund = next(o for o in out if o["type"] == "refund.eligible" and o["month"] == "2026-04")
    assert refund["revision"] == 1 and refund["refund_amount"] == "1.94"
    more, _ = _feed(proc, wire("outage.classified", "2026-05-04T09:00:00Z", service_id="vp-api", outage_id="A",
                               cause="excluded", category="third_party"))
    withdrawn = [o for o in more if o["type"] == "refund.withdrawn"]
    assert [(w["month"], w["revision"], w["refund_event_id"]) for w in withdrawn] == [
        ("2026-04", 2, month_event_id("refund.eligible", "vp", "vp-api", "2026-04", 1))]
    net = net_outcome(out + more)
    assert ("vp", "vp-api", "2026-04") not in net["refunds"]
    assert net["months"][("vp", "vp-api", "2026-04")]["met"] is True


def test_same_event_id_with_other_content_is_a_conflicting_duplicate():
    proc = _proc()
    _feed(proc, wire("ticket.opened", "2026-02-03T15:00:00Z", "o1", ticket_id="T1", customer_id="nm", priority="critical"),
          wire("ticket.replied", "2026-02-03T15:10:00Z", "r1", ticket_id="T1", author="provider"))
    out, rejected = _feed(proc, wire("ticket.replied", "2026-02-03T15:10:00Z", "r1", ticket_id="T1", author="provider"))
    assert (out, rejected) == ([], [])  # a true duplicate is ignored
    out, rejected = _feed(proc, wire("ticket.replied", "2026-02-03T15:20:00Z", "r1", ticket_id="T1", author="provider"))
    assert out == [] and [r.reason for r in rejected] == ["conflicting_duplicate"]
    out, rejected = _feed(proc, wire("ticket.opened", "2026-02-03T15:00:00Z", "o1", ticket_id="T1", customer_id="nm",
                                     priority="low"))
    assert [r.reason for r in rejected] == ["conflicting_duplicate"]


def test_a_late_event_for_a_final_month_is_month_final():
    proc = _proc()
    _feed(proc, wire("outage.started", "2026-04-10T10:00:00Z", service_id="vp-api", outage_id="A"),
          wire("outage.resolved", "2026-04-10T15:00:00Z", service_id="vp-api", outage_id="A"))
    proc.advance_to(datetime(2026, 7, 2, tzinfo=timezone.utc))  # April's claim window (to May 31 + 30 d) is over
    out, rejected = _feed(proc, wire("outage.started", "2026-03-10T10:00:00Z", service_id="vp-api", outage_id="B"))
    assert out == [] and [r.reason for r in rejected] == ["month_final"]
    assert "2026-03" in rejected[0].message


def test_a_reply_dated_before_its_ticket_is_an_orphan_whatever_the_order():
    # docs/decisions.md: an event dated before its ticket's ticket.opened never applies (it cannot
    # turn a breach into met); before the open arrives it is parked, then dead-lettered
    for order in ("reply first", "open first"):
        proc = _proc()
        opened_ev = wire("ticket.opened", "2026-02-03T15:00:00Z", "o1", ticket_id="T1", customer_id="nm",
                         priority="critical")
        early = wire("ticket.replied", "2026-02-03T14:59:00Z", "r0", ticket_id="T1", author="provider")
        events = [early, opened_ev] if order == "reply first" else [opened_ev, early]
        out, rejected = _feed(proc, *events)
        out += [as_wire(x) for x in proc.advance_to(datetime(2026, 2, 3, 16, tzinfo=timezone.utc))]
        dead = [o["reason"] for o in out if o["type"] == "dead_letter"] + [r.reason for r in rejected]
        assert dead == ["orphan"], order
        # parked, then rejected when its ticket came: stamped with its own occurred_at, as the
        # shell stamps one rejected on arrival (was the partition's time then, 15:00)
        assert [o["occurred_at"] for o in out if o["type"] == "dead_letter"] == \
            (["2026-02-03T14:59:00Z"] if order == "reply first" else []), order
        assert [o["type"] for o in out if o["type"].startswith("sla.")] == ["sla.breached"], order


def test_a_monitoring_event_id_reused_with_other_content_is_a_conflicting_duplicate_and_the_first_stands():
    # SPEC §10. Outage A from 10:00 to 15:00 on April 10: 300 min > 216, refund 1.94 USD (as above). The
    # same id "s1" re-sent with a start at 06:00 would make it 540 min (the earliest start wins the fold).
    proc = _proc()
    out, rejected = _feed(proc,
                          wire("outage.started", "2026-04-10T10:00:00Z", "s1", service_id="vp-api", outage_id="A"),
                          wire("outage.resolved", "2026-04-10T15:00:00Z", "r1", service_id="vp-api", outage_id="A"),
                          wire("maintenance.scheduled", "2026-04-01T09:00:00Z", "m1", service_id="vp-api",
                               maintenance_id="W", starts_at="2026-04-20T01:00:00Z", ends_at="2026-04-20T02:00:00Z"))
    assert rejected == []
    again, rejected = _feed(proc,
                            wire("outage.resolved", "2026-04-10T15:00:00Z", "r1", service_id="vp-api", outage_id="A"))
    assert (again, rejected) == ([], [])  # a re-sent event is ignored
    for conflicting in (
            wire("outage.started", "2026-04-10T06:00:00Z", "s1", service_id="vp-api", outage_id="A"),
            wire("outage.resolved", "2026-04-10T18:00:00Z", "r1", service_id="vp-api", outage_id="A"),
            wire("maintenance.scheduled", "2026-04-01T09:00:00Z", "m1", service_id="vp-api", maintenance_id="W",
                 starts_at="2026-04-10T09:00:00Z", ends_at="2026-04-10T16:00:00Z")):
        more, rejected = _feed(proc, conflicting)
        assert more == [] and [r.reason for r in rejected] == ["conflicting_duplicate"], conflicting
        assert "'s1'" in rejected[0].message or "'r1'" in rejected[0].message or "'m1'" in rejected[0].message
    out += [as_wire(x) for x in proc.advance_to(datetime(2026, 5, 3, tzinfo=timezone.utc))]
    month = net_outcome(out)["months"][("vp", "vp-api", "2026-04")]
    assert month["downtime_minutes"] == 300 and month["met"] is False
    refund = next(o for o in out if o["type"] == "refund.eligible" and o["month"] == "2026-04")
    assert refund["refund_amount"] == "1.94"


def test_the_memory_of_applied_monitoring_events_survives_a_restart_and_is_pruned_with_its_record():
    from policies import downtime

    state = downtime.new_state("svc")
    for event_type, fields in (("outage.started", {"outage_id": "A", "occurred_at": datetime(2026, 4, 10, 10, tzinfo=timezone.utc)}),
                               ("outage.resolved", {"outage_id": "A", "occurred_at": datetime(2026, 4, 10, 15, tzinfo=timezone.utc)}),
                               ("outage.started", {"outage_id": "B", "occurred_at": datetime(2026, 6, 2, 10, tzinfo=timezone.utc)})):
        fields = {"event_id": f"{event_type}-{fields['outage_id']}", **fields}
        applied = downtime.apply_event(state, event_type, fields)
        state = downtime.remember(applied.state, downtime.record_key(event_type, fields), len(state.applied) + 1,
                                  100 + len(state.applied))
    restored = downtime.ServiceState.from_json(state.to_json())
    assert restored == state and downtime.applied_content(restored, "o:A", 1) == 100
    assert downtime.applied_content(restored, "o:A", 7) is None and downtime.applied_content(None, "o:A", 1) is None
    # A row written before the memory existed (no "a") reads as no memory: such an event is folded as before.
    old_row = state.to_json().rsplit(',"a":', 1)[0] + "}"
    assert downtime.ServiceState.from_json(old_row).applied == {}
    pruned = downtime.prune(state, "2026-05")  # A was resolved in April: gone, with what it remembered
    assert set(pruned.outages) == {"B"} and set(pruned.applied) == {"o:B"}


def test_a_parked_event_id_reused_with_other_content_is_a_conflicting_duplicate():
    """SPEC §10 while an event waits for its entity: a resolve (or a reply) that arrived before its
    outage (ticket) parks; the same id with other content is dead-lettered, not silently dropped,
    and the first is what applies when the entity appears."""
    proc = _proc()
    for first, conflicting in (
            (wire("outage.resolved", "2026-04-10T15:00:00Z", "r1", service_id="vp-api", outage_id="A"),
             wire("outage.resolved", "2026-04-10T20:00:00Z", "r1", service_id="vp-api", outage_id="A")),
            (wire("ticket.replied", "2026-02-03T15:10:00Z", "p1", ticket_id="T9", author="provider"),
             wire("ticket.replied", "2026-02-03T17:10:00Z", "p1", ticket_id="T9", author="provider"))):
        assert _feed(proc, first) == ([], [])  # parked
        assert _feed(proc, first) == ([], [])  # re-sent: parked once, silently
        out, rejected = _feed(proc, conflicting)
        assert out == [] and [r.reason for r in rejected] == ["conflicting_duplicate"]
        assert "parked" in rejected[0].message
    _feed(proc, wire("outage.started", "2026-04-10T10:00:00Z", service_id="vp-api", outage_id="A"))
    out = [as_wire(x) for x in proc.advance_to(datetime(2026, 5, 3, tzinfo=timezone.utc))]
    month = net_outcome(out)["months"][("vp", "vp-api", "2026-04")]
    assert month["downtime_minutes"] == 300  # 10:00-15:00, the first resolve; the conflicting one said 20:00
    orphans = [o for o in out if o["type"] == "dead_letter" and o["reason"] == "orphan"]
    assert len(orphans) == 1 and "p1" in orphans[0]["source"]  # the reply, once: its ticket never came
