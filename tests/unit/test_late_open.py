"""A ticket opened late, with events parked for it, is judged with them (review of 2026-12-04).

Stream arrival: a ticket's reply arrives before its `ticket.opened` (parked), another ticket moves
the partition's time hours ahead, then the open arrives. The processor used to open the ticket at
the partition's time and only then apply the parked reply: a breach at the deadline, then the met,
then a retraction of the breach, all in one batch. The net outcome was right, but Alertmanager
pages on the breach (a false page the sorted order never gives). Now the open and its parked
events are applied at their own times, and the ticket moves to the partition's time after them.
"""
from __future__ import annotations

import json

import pytest

from policies.processor import Processor, Settings
from streams.wire import to_bytes
from tests.support import CATALOG, contracts, decoded, wire

# Neural Magic Enterprise, high: first response within 2 business hours (Tue 2026-02-03, 09:00 EST
# = 14:00Z opening; due 16:00Z).
OPEN_T = wire("ticket.opened", "2026-02-03T14:00:00Z", "t-open", ticket_id="T", customer_id="nm", priority="high")
OPEN_X = wire("ticket.opened", "2026-02-03T14:00:00Z", "x-open", ticket_id="X", customer_id="nm", priority="low")
X_LATER = wire("ticket.replied", "2026-02-03T18:00:00Z", "x-r", ticket_id="X", author="provider")


def run(events) -> list[dict]:
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("nm"):
        proc.install(c)
    out = []
    for e in events:
        outputs, rejected = proc.apply(decoded(e))
        assert rejected is None, rejected
        out += [json.loads(to_bytes(o)) for o in outputs]
    return [o for o in out if o.get("ticket_id") == "T"]


def kinds(outputs) -> list[tuple[str, str]]:
    return [(o["type"], o["occurred_at"]) for o in outputs]


@pytest.mark.parametrize("reply_at, expected", [
    # answered at 15:00, before the 16:00 deadline: met, never breached
    ("2026-02-03T15:00:00Z", [("sla.met", "2026-02-03T15:00:00Z")]),
    # answered at 17:00, after it: one breach at 16:00, no met, nothing retracted
    ("2026-02-03T17:00:00Z", [("sla.breached", "2026-02-03T16:00:00Z")]),
])
def test_a_late_open_is_judged_with_its_parked_reply(reply_at, expected):
    reply = wire("ticket.replied", reply_at, "t-r", ticket_id="T", author="provider")
    late = run([OPEN_X, reply, X_LATER, OPEN_T])  # the reply parked, time at 18:00, then the open
    in_order = run(sorted([OPEN_X, reply, X_LATER, OPEN_T], key=lambda e: (e["occurred_at"], e["event_id"])))
    assert kinds(late) == expected
    assert late == in_order


def test_a_late_open_with_several_parked_events_moves_to_the_partition_time_after_them():
    # parked: a pause (waiting_on_customer does not pause Neural Magic's clocks by default: the
    # status is only history) and the reply at 17:00; the ticket then moves to 18:00 with nothing
    # more to fire (first response done). Same outputs as the sorted order.
    status = wire("ticket.status_changed", "2026-02-03T14:30:00Z", "t-s", ticket_id="T", status="waiting_on_customer")
    reply = wire("ticket.replied", "2026-02-03T17:00:00Z", "t-r", ticket_id="T", author="provider")
    late = run([OPEN_X, reply, status, X_LATER, OPEN_T])
    in_order = run(sorted([OPEN_X, reply, status, X_LATER, OPEN_T], key=lambda e: (e["occurred_at"], e["event_id"])))
    assert late == in_order
    assert not [o for o in late if o["type"].endswith("_retracted")]
