"""A replay keeps a content digest only for the event ids its batch repeats (`TicketEngine.repeated_ids`):
a duplicate is still ignored and a conflicting one still dead-lettered, in every arrival order, and
the outputs equal those of a processor that keeps every content (as a stream does)."""
from __future__ import annotations

import itertools
import json

from events.codec import decode
from policies.processor import Processor, Settings
from policies.tickets import event_digest
from streams.replay import Replayer
from streams.wire import to_bytes
from tests.support import CATALOG, contracts, wire

OPEN = wire("ticket.opened", "2026-02-03T15:00:00Z", "o1", ticket_id="T1", customer_id="nm", priority="critical")
REPLY = wire("ticket.replied", "2026-02-03T15:10:00Z", "r1", ticket_id="T1", author="provider")
RESENT = dict(REPLY)  # the same event again: ignored
OTHER = dict(REPLY, occurred_at="2026-02-03T15:20:00Z")  # r1 with other content: conflicting_duplicate
STATUS = wire("ticket.status_changed", "2026-02-03T15:30:00Z", "s1", ticket_id="T1", status="on_hold")


def _replay(lines: list[dict]) -> tuple[list[dict], Replayer]:
    rep = Replayer(contracts("nm"), CATALOG, Settings(at_risk_thresholds=()))
    for i, obj in enumerate(lines, 1):
        rep.feed_line(json.dumps(obj).encode(), f"events.jsonl:{i}")
    return [json.loads(b) for b in rep.finish(None).sorted_lines()], rep


def _keeping_every_content(lines: list[dict]) -> list[dict]:
    """The same events applied in the replay's order by a processor that keeps every content digest."""
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("nm"):
        proc.install(c)
    ordered = sorted(lines, key=lambda o: (o["occurred_at"], o["event_id"]))  # all in UTC, none a contract
    out: list[dict] = []
    for obj in ordered:
        outputs, rejected = proc.apply(decode(json.dumps(obj).encode()))
        out += [json.loads(to_bytes(o)) for o in outputs]
        if rejected is not None:
            out.append({"type": "dead_letter", "reason": rejected.reason, "event_id": obj["event_id"]})
    return out


def test_only_a_repeated_id_keeps_its_content_and_conflicts_are_still_found():
    for order in itertools.permutations([OPEN, REPLY, RESENT, OTHER, STATUS]):
        out, rep = _replay(list(order))
        dead = [o["reason"] for o in out if o["type"] == "dead_letter"]
        assert dead == ["conflicting_duplicate"], order
        assert [o["type"] for o in out if o["type"] != "dead_letter"] == ["sla.met"], order
        state = rep.processor.store.ticket("T1")
        assert state is not None
        assert state.seen.content_of(event_digest("o1")) is None  # read once: no content kept
        assert state.seen.content_of(event_digest("s1")) is None
        assert state.seen.content_of(event_digest("r1")) is not None  # repeated: kept, compared
        assert {event_digest(i) for i in ("o1", "r1", "s1")} <= set(state.seen)
        assert rep.processor.tickets.repeated_ids is None  # after the batch, every content is kept
    expected = _keeping_every_content([OPEN, REPLY, RESENT, OTHER, STATUS])
    assert [(o["type"], o.get("reason")) for o in out] == [(o["type"], o.get("reason")) for o in expected]


def test_a_processor_outside_a_replay_keeps_every_content():
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("nm"):
        proc.install(c)
    for obj in (OPEN, STATUS):
        proc.apply(decode(json.dumps(obj).encode()))
    state = proc.store.ticket("T1")
    assert state is not None
    assert state.seen.content_of(event_digest("o1")) is not None
    assert state.seen.content_of(event_digest("s1")) is not None
