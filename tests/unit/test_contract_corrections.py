"""A corrected contract: the same customer and effective_from upserted again (SPEC §10, §14).

SPEC §10: the net outcome is a function of the set of events, whatever their arrival order; per
entity, events fold in (`occurred_at`, `event_id`) order. A customer's terms for one
`effective_from` are one entity (docs/decisions.md, "Contract history": "a contract with the same
effective_from replaces those terms"). Replay installs contract lines in (occurred_at, event_id)
order, so the later-recorded terms stand. The processor replaced them in arrival order: a stream
that read the correction before the original (two producers, a retry, a per-topic export) kept the
original's fee. Found by tests/unit/test_order_independence_contracts.py (about 1 ordering in 14
of its scenarios with a correction, every order kind).

Hand figures (Vectorize *General Support Policy*, "Cloud Services Service Levels"; SPEC §8), Pro
99.5 %, `vc-api`, terms from 2026-03-01T00:00Z; original fee 1,000.00 USD recorded 2026-02-20,
corrected to 1,500.00 USD recorded 2026-02-25:
- March 2026: 31 days = 44,640 min; outage 2026-03-10 00:00 - 05:00 = 300 min
- uptime 100 - 300 / 44,640 x 100 = 100 - 0.6720... = 99.33 < 99.50: not met
- threshold 44,640 x 0.5 / 100 = 223.2 min; excess 300 - 223.2 = 76.8 min
- refund 76.8 / 44,640 x 1,500 = 2.5806... -> 2.58 USD (the original's 1,000 gave 1.7204... -> 1.72)
"""
from __future__ import annotations

import copy
import heapq
import itertools
import json
from datetime import datetime, timezone

import pytest

from policies.contracts import contract_from_event, parse_contracts
from policies.memory_store import MemoryStore
from policies.processor import Processor, Settings
from policies.tickets import TicketState
from streams.replay import Replayer
from streams.wire import to_bytes
from tests.net_outcome import net_outcome
from tests.support import CATALOG, CONTRACTS, as_wire, decoded, wire

UTC = timezone.utc
UNTIL = datetime(2026, 4, 2, tzinfo=UTC)


def terms(fee: str) -> dict:
    return {"customer_id": "vc", "policy": "vectorize", "plan": "pro", "effective_from": "2026-03-01T00:00:00Z",
            "services": [{"service_id": "vc-api", "monthly_fee": fee, "currency": "USD"}]}


ORIGINAL = decoded(wire("contract.upserted", "2026-02-20T00:00:00Z", "k-original", **terms("1000.00")))
CORRECTION = decoded(wire("contract.upserted", "2026-02-25T00:00:00Z", "k-correction", **terms("1500.00")))
OUTAGE = [decoded(wire("outage.started", "2026-03-10T00:00:00Z", "o-s", service_id="vc-api", outage_id="O")),
          decoded(wire("outage.resolved", "2026-03-10T05:00:00Z", "o-x", service_id="vc-api", outage_id="O"))]


def refund(outputs) -> tuple:
    rows = [as_wire(o) for o in outputs if o.type == "refund.eligible"]
    return tuple((r["month"], r["monthly_fee"], r["refund_amount"]) for r in rows)


@pytest.mark.parametrize("contracts", list(itertools.permutations([ORIGINAL, CORRECTION])),
                         ids=["original_first", "correction_first"])
def test_the_later_recorded_terms_stand_whatever_the_arrival_order(contracts):
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    out = []
    for c in contracts:
        out += proc.upsert_contract((contract_from_event(c, CATALOG), c.occurred_at))
    for ev in OUTAGE:
        out += proc.apply(ev)[0]
    out += proc.advance_to(UNTIL)
    assert refund(out) == (("2026-03", "1500.00", "2.58"),)
    assert [s.monthly_fee for c in proc.histories["vc"] for s in c.terms.services] == [1500]


def test_replay_gives_the_same_refund_from_either_file_order():
    for contracts in itertools.permutations([ORIGINAL, CORRECTION]):
        rep = Replayer([], CATALOG, Settings(at_risk_thresholds=()))
        for ev in (*contracts, *OUTAGE):
            rep.feed_line(ev.__pydantic_serializer__.to_json(ev), ev.event_id)
        lines = [json.loads(x) for x in rep.finish(UNTIL).sorted_lines()]
        assert [(r["monthly_fee"], r["refund_amount"]) for r in lines if r["type"] == "refund.eligible"] == [
            ("1500.00", "2.58")]


def test_the_worker_keeps_and_stores_the_later_recorded_terms_whatever_the_arrival_order():
    """The stream shell: the contracts agent stored each record read under its key (customer@effective_from)
    and installed it, last read standing; a restart installs what the table holds. Now a record older
    than the one stored for its key is neither installed nor stored."""
    import asyncio
    import types
    from types import SimpleNamespace

    from streams.app import Observer, StreamWorker
    from streams.core_adapter import RealCore

    for contracts in itertools.permutations([ORIGINAL, CORRECTION]):
        stored: dict[str, bytes] = {}
        proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))

        async def nothing(*_args) -> None:
            return None

        worker = SimpleNamespace(core=RealCore(catalog=CATALOG), observer=Observer(), processors={0: proc},
                                 contracts={}, contract_terms={}, contracts_version=0, _touched=set(),
                                 backend=SimpleNamespace(set=lambda _t, _p, key, value, into=stored: into.__setitem__(key, value)),
                                 _prepare=lambda outputs: (list(outputs), []), _send_prepared=nothing,
                                 commit_batch=nothing, dead_letter=nothing)
        worker._contract_key = types.MethodType(StreamWorker._contract_key, worker)
        worker._upsert_contract = types.MethodType(StreamWorker._upsert_contract, worker)
        records = [SimpleNamespace(message=SimpleNamespace(value=c.__pydantic_serializer__.to_json(c)))
                   for c in contracts]
        asyncio.run(StreamWorker._contract_batch(worker, records))
        assert [json.loads(v)["event_id"] for v in stored.values()] == ["k-correction"]
        assert [s.monthly_fee for c in proc.histories["vc"] for s in c.terms.services] == [1500]
        assert worker.contracts["vc"][0].services[0].monthly_fee == 1500


# ---- a correction of the targets while a ticket is open (review of 2026-12-06) -----------------

def _rx(first_response_hours: int) -> dict:
    entry = copy.deepcopy(CONTRACTS["rs"])
    entry["customer_id"] = "rx"
    entry["overrides"]["targets"]["normal"]["first_response"]["amount"] = first_response_hours
    return entry


def _restarted(proc: Processor, known: list) -> Processor:
    """The next incarnation: the tickets read back from their JSON, the snapshot restored and every
    contract installed again (release=False), as the worker rebuilds a partition."""
    store = MemoryStore()
    for state in proc.store.tickets.values():
        store.save_ticket(TicketState.from_json(state.to_json()))
    for ticket_id, wake in proc.store._wake.items():  # the due index, a table of its own in the worker
        store._wake[ticket_id] = wake
        heapq.heappush(store._heap, (wake, ticket_id))
    fresh = Processor(CATALOG, store, Settings(at_risk_thresholds=()))
    fresh.restore(proc.snapshot())
    for contract in known:
        fresh.upsert_contract(contract, release=False)
    return fresh


@pytest.mark.parametrize("restart", ["none", "before the reply", "after the reply"])
def test_corrected_targets_reach_an_open_tickets_clocks_as_in_replay(restart):
    """`rx` as `rs` (Rescale Production Enterprise, 24x5 UTC): its order form says normal first
    response 8 h (recorded Jan 1), corrected to 4 h (recorded Mon 2026-02-02 10:00, read then) while
    ticket C1, opened normal Mon 09:00Z, waits for its reply (Mon 14:00Z).
    Replay installs the correction first: 4 business hours from Mon 09:00Z -> due 13:00Z, no reply by
    then: `sla.breached` at 13:00Z, the 14:00Z reply late (no met). Before, the stream kept the old
    8 h clock (met at 14:00Z, due 17:00Z) until a restart, which then emitted the breach and left
    the met standing beside it."""
    since = datetime(2026, 1, 1, tzinfo=UTC)
    original = (parse_contracts({"contracts": [_rx(8)]}, CATALOG)[0], since)
    correction = (parse_contracts({"contracts": [_rx(4)]}, CATALOG)[0], datetime(2026, 2, 2, 10, tzinfo=UTC))
    events = [wire("ticket.opened", "2026-02-02T09:00:00Z", "o", ticket_id="C1", customer_id="rx", priority="normal"),
              wire("ticket.status_changed", "2026-02-02T11:00:00Z", "s", ticket_id="C1", status="open"),
              wire("ticket.replied", "2026-02-02T14:00:00Z", "r", ticket_id="C1", author="provider"),
              wire("ticket.status_changed", "2026-02-02T15:00:00Z", "s2", ticket_id="C1", status="open")]
    until = datetime(2026, 2, 3, tzinfo=UTC)

    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    out = proc.upsert_contract(original)
    out += proc.apply(decoded(events[0]))[0]
    out += proc.upsert_contract(correction)
    for i, ev in enumerate(events[1:], 1):
        if (restart, i) in (("before the reply", 2), ("after the reply", 3)):
            proc = _restarted(proc, [original, correction])
        more, rejected = proc.apply(decoded(ev))
        assert rejected is None
        out += more
    out += proc.advance_to(until)
    stream = net_outcome(json.loads(to_bytes(o)) for o in out)

    replay = Replayer([correction[0]], CATALOG, Settings(at_risk_thresholds=()))
    for i, ev in enumerate(events):
        replay.feed_line(json.dumps(ev).encode(), f"e:{i}")
    reference = net_outcome(json.loads(line) for line in replay.finish(until).sorted_lines())
    assert [(b["metric"], b["due_at"]) for b in reference["breaches"].values()] == \
        [("first_response", "2026-02-02T13:00:00Z")]
    assert reference["met"] == {}
    assert (stream["breaches"], stream["met"]) == (reference["breaches"], reference["met"])


def test_backdated_terms_that_do_not_know_an_open_tickets_priority_leave_it_measured_as_opened():
    """Review of 2026-12-06: `nv` has Neptune Basic from Jan 1; ticket T0 opened critical Mon
    2026-02-02 09:00Z; then terms of Vectorize Pro from Feb 1 are read (backdated: they govern T0's
    opening). Vectorize has no `critical`, so the ticket's clocks cannot be derived under them: every
    tick and event of T0 raised KeyError (since a plan change re-derives the ticket; before, at a
    restart). It stays under Neptune Basic, the terms it was opened under (after a restart, the
    latest of its customer's terms that know its priorities): first response 8 customer business
    hours, 09:00-17:00 Mon-Fri UTC -> due Mon 17:00Z, breached. (Replay, with both terms from the
    start, rejects its ticket.opened: invalid_field. Backdated terms are a backfill, decisions.md.)"""
    neptune = {"customer_id": "nv", "policy": "neptune", "plan": "basic", "timezone": "UTC",
               "effective_from": "2026-01-01T00:00:00Z",
               "services": [{"service_id": "nv-api", "monthly_fee": "100.00", "currency": "USD"}]}
    vectorize = dict(neptune, policy="vectorize", plan="pro", effective_from="2026-02-01T00:00:00Z")
    del vectorize["timezone"]
    first = (parse_contracts({"contracts": [neptune]}, CATALOG)[0], datetime(2026, 1, 1, tzinfo=UTC))
    later = (parse_contracts({"contracts": [vectorize]}, CATALOG)[0], datetime(2026, 2, 2, 10, tzinfo=UTC))
    opened = wire("ticket.opened", "2026-02-02T09:00:00Z", "o", ticket_id="T0", customer_id="nv", priority="critical")
    for restart in (False, True):
        proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
        proc.upsert_contract(first)
        assert proc.apply(decoded(opened)) == ([], None)
        proc.upsert_contract(later)
        if restart:
            proc = _restarted(proc, [first, later])
        out = proc.advance_to(datetime(2026, 2, 3, 10, tzinfo=UTC))
        assert [(o.type, o.fields["policy"], o.fields["due_at"]) for o in out] == \
            [("sla.breached", "neptune", datetime(2026, 2, 2, 17, tzinfo=UTC))], restart
        reply = wire("ticket.replied", "2026-02-03T11:00:00Z", "r", ticket_id="T0", author="provider")
        assert proc.apply(decoded(reply)) == ([], None)  # late: the breach stands, nothing raised
