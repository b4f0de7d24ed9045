"""Events that arrive before their contract wait for it (SPEC §10 parking; docs/decisions.md "Contract wait").

In the stream, contracts come on their own topic and input events on the input topics: a new
customer's contract and its first events are published at about the same time, and the worker may
read a `ticket.opened` of the customer (or a monitoring event of a service only the new contract
names) before the contract. Before this rule the core rejected them at once (`unknown_customer`,
`unknown_service`): the ticket was never measured, the outage never counted (review, 2026-12-05:
customers x and y on a new service vz-new, 600 min down in June, 6.83 USD refund each in replay; the
stream with the contracts sent after the events said 100.00 %, met, no refund).

Now such an event is parked under its customer / service until a contract naming it is installed
(then applied in (occurred_at, event_id) order, as any parked event), or until its half's time passes
its occurred_at + `Settings.contract_wait` (10 min): then it is a dead letter with the old reason.

The wait is event time (the core reads no clock): on a live feed, about 10 minutes of the wall
clock, far more than the seconds between a contract and its customer's first events.

Hand figures (tests/unit/test_service_added_mid_month.py): Vectorize Pro, vz-new 600 USD a month,
in force from 2026-06-16 (21,600 min of June), outage 2026-06-20 10:00-20:00 = 600 min:
97.22 %, not met, refund 492 / 21,600 x 300 = 6.83 USD, for x and for y. Ticket Y-1 of y is measured
as in the run with the contracts installed first (the net outcomes are compared whole).
"""
from __future__ import annotations

from datetime import timedelta

import yaml

from policies import downtime
from policies.contracts import parse_contracts
from policies.memory_store import MemoryStore
from policies.processor import Processor, Settings
from policies.tickets import TicketState
from tests.net_outcome import net_outcome
from tests.support import CATALOG, as_wire, at, decoded, opened, reply, wire
from tests.unit.test_service_added_mid_month import CONTRACTS

# the case of review11 F1 (x adds vz-new from 06-16, y has it from 06-16; hand figures there)
OTHER = """\
contracts:
  - customer_id: old
    policy: vectorize
    plan: pro
    services:
      - {service_id: vz-old, monthly_fee: "100.00", currency: USD}
    effective_from: "2026-05-01T00:00:00Z"
"""
UNTIL = at("2026-08-01T02:00:00Z")


def terms(text: str) -> list:
    return parse_contracts(yaml.safe_load(text), CATALOG, source="tests")


def outage(event_id: str, t: str, kind: str = "outage.started", service: str = "vz-new", outage_id: str = "N1"):
    return decoded(wire(kind, t, event_id, service_id=service, outage_id=outage_id))


def new_customer_events() -> list:
    """y's first ticket (with a reply that arrives before its open, parked behind it) and vz-new's
    outage start: what the worker may read before the contracts."""
    return [
        reply("Y-1", "2026-06-20T10:03:00Z", event_id="y1r"),
        opened("Y-1", "y", "high", "2026-06-20T10:01:00Z", event_id="y1o"),
        outage("n1", "2026-06-20T10:00:00Z"),
    ]


LATER = [outage("n2", "2026-06-20T20:00:00Z", "outage.resolved")]  # read after the contracts


def other_events() -> list:
    """Traffic of a customer contracted all along, on both halves, before and after y's events (time
    moves up to 10:06, less than the wait after y's events)."""
    return [
        opened("O-1", "old", "normal", "2026-06-20T08:00:00Z", event_id="o1o"),
        outage("o1", "2026-06-20T10:02:00Z", service="vz-old", outage_id="OLD1"),
        outage("o2", "2026-06-20T10:05:00Z", "outage.resolved", service="vz-old", outage_id="OLD1"),
        reply("O-1", "2026-06-20T10:06:00Z", event_id="o1r"),
    ]


def wired(outputs: list) -> list[dict]:
    return [as_wire(o) for o in outputs]


def reference() -> list[dict]:
    """Replay's order: every contract first, then the events sorted."""
    proc = Processor(CATALOG)
    for c in terms(OTHER) + terms(CONTRACTS):
        proc.install(c)
    out = []
    for ev in sorted(other_events() + new_customer_events() + LATER, key=lambda e: (e.occurred_at, e.event_id)):
        more, rejected = proc.apply(ev)
        assert rejected is None, rejected
        out += more
    return wired(out + proc.advance_to(UNTIL))


def refunds(rows: list[dict]) -> dict[str, str]:
    net = net_outcome(rows)
    return {c: r["refund_amount"] for (c, s, m), r in net["refunds"].items() if s == "vz-new" and m == "2026-06"}


def test_events_before_their_contract_are_measured_as_if_it_came_first():
    proc = Processor(CATALOG)
    for c in terms(OTHER):
        proc.install(c)
    out, dead = [], []
    # the old customer's traffic, y's events (the contracts not read yet), then 5 min more traffic
    events = other_events()
    for ev in events[:1] + new_customer_events() + events[1:]:
        more, rejected = proc.apply(ev)
        out += more
        if rejected is not None:
            dead.append(rejected)
    assert dead == []  # before: unknown_customer for y1o, unknown_service for n1
    assert len(proc.parking) == 3
    for c in terms(CONTRACTS):  # the contracts topic: no time moves
        out += proc.upsert_contract(c)
    assert len(proc.parking) == 0
    for ev in LATER:
        more, rejected = proc.apply(ev)
        assert rejected is None
        out += more
    out += proc.advance_to(UNTIL)
    stream = wired(out)
    assert not [o for o in stream if o["type"] == "dead_letter"]
    ref = reference()
    assert refunds(ref) == {"x": "6.83", "y": "6.83"}
    assert net_outcome(stream) == net_outcome(ref)
    assert [o for o in net_outcome(stream)["breaches"].values() if o["ticket_id"] == "Y-1"] or \
        [o for o in net_outcome(stream)["met"].values() if o["ticket_id"] == "Y-1"]  # Y-1 is measured


def test_a_contract_event_on_an_input_topic_releases_them_too():
    proc = Processor(CATALOG)
    for ev in new_customer_events():
        assert proc.apply(ev) == ([], None)
    out = []
    for i, c in enumerate(yaml.safe_load(CONTRACTS)["contracts"]):
        more, rejected = proc.apply(decoded(wire("contract.upserted", "2026-06-20T10:01:00Z", f"c{i}", **c)))
        assert rejected is None
        out += more
    out += proc.apply(LATER[0])[0] + proc.advance_to(UNTIL)
    assert refunds(wired(out)) == {"x": "6.83", "y": "6.83"}


def test_without_a_contract_they_expire_after_the_wait_with_the_old_reason():
    settings = Settings()
    assert settings.contract_wait == timedelta(minutes=10)
    proc = Processor(CATALOG, settings=settings)
    for c in terms(OTHER):
        proc.install(c)
    for ev in new_customer_events():
        assert proc.apply(ev) == ([], None)
    assert proc.ticket_now is None and proc.monitoring_now is None  # a waiting event moves no time
    # 10 min after the earliest waiting event: still waiting (a contract may yet come)
    assert [o for o in proc.advance_to(at("2026-06-20T10:10:00Z")) if o.type == "dead_letter"] == []
    assert len(proc.parking) == 3
    out = proc.advance_to(at("2026-06-20T10:10:01Z"))
    dead = [as_wire(o) for o in out if o.type == "dead_letter"]
    assert [(d["reason"], d["occurred_at"]) for d in dead] == [("unknown_service", "2026-06-20T10:00:00Z")]
    assert len(proc.parking) == 2
    out = proc.advance_to(at("2026-06-20T10:11:01Z"))
    dead += [as_wire(o) for o in out if o.type == "dead_letter"]
    assert [(d["reason"], d["occurred_at"]) for d in dead] == [
        ("unknown_service", "2026-06-20T10:00:00Z"), ("unknown_customer", "2026-06-20T10:01:00Z")]
    assert all("waited" in d["error"] for d in dead), dead
    assert "customer_id 'y' has no contract" in next(d["error"] for d in dead if d["reason"] == "unknown_customer")
    # the reply parked behind the open still waits for its ticket (the parking horizon, as before)
    assert len(proc.parking) == 1
    # a contract after the wait changes nothing for them
    for c in terms(CONTRACTS):
        proc.upsert_contract(c)
    rest = wired(proc.apply(LATER[0])[0] + proc.advance_to(UNTIL))
    assert refunds(rest) == {}
    assert not [o for o in rest if o.get("ticket_id") == "Y-1" and o["type"] != "dead_letter"]


def test_nothing_else_changes_for_an_event_that_never_gets_a_contract():
    """The old customer's outputs with and without y's uncontracted events in the middle."""
    def run(with_unknown: bool) -> list[dict]:
        proc = Processor(CATALOG)
        for c in terms(OTHER):
            proc.install(c)
        events = other_events()
        out = []
        for ev in events[:1] + (new_customer_events() + LATER if with_unknown else []) + events[1:]:
            out += proc.apply(ev)[0]
        out += proc.advance_to(UNTIL)
        return [o for o in wired(out) if o["type"] != "dead_letter"]
    assert run(True) == run(False)


def test_a_flood_for_uncontracted_services_stays_bounded():
    settings = Settings(contract_wait_bytes=16 * 1024)
    proc = Processor(CATALOG, settings=settings)
    for c in terms(OTHER):
        proc.install(c)
    rejected = []
    for i in range(2000):  # Alertmanager firing for services nobody contracts
        _out, r = proc.apply(outage(f"f{i}", "2026-06-20T10:00:00Z", service=f"svc-{i}", outage_id="A"))
        if r is not None:
            rejected.append(r)
    waiting = len(proc.parking)
    assert 0 < waiting < 2000 and len(rejected) == 2000 - waiting
    assert proc.parking.contract_bytes <= 16 * 1024
    assert {r.reason for r in rejected} == {"unknown_service"}
    assert "not parked" in rejected[0].message
    # a contracted service's events are never refused for room
    assert proc.apply(outage("ok", "2026-06-20T10:01:00Z", service="vz-old", outage_id="OLD2"))[1] is None
    out = proc.advance_to(at("2026-06-20T11:00:00Z"))
    assert sum(1 for o in out if o.type == "dead_letter") == waiting
    assert len(proc.parking) == 0 and proc.parking.contract_bytes == 0
    assert proc.parking.expired == waiting


def test_waiting_events_survive_a_snapshot_and_go_out_at_the_next_event_or_tick():
    """The stream worker builds a processor from its snapshot and installs every contract it knows
    without taking outputs (`Worker.processor`): what waits is released at the partition's next
    event or tick, whose outputs the worker sends."""
    first = Processor(CATALOG)
    for ev in new_customer_events():
        first.apply(ev)
    snapshot = first.snapshot()
    second = Processor(CATALOG)
    second.restore(snapshot)
    assert len(second.parking) == 3
    for c in terms(CONTRACTS):
        assert second.upsert_contract(c, release=False) == []
    assert len(second.parking) == 3
    out, rejected = second.apply(LATER[0])  # the partition's next event: the waiting ones go first
    assert rejected is None and len(second.parking) == 0
    out += second.advance_to(UNTIL)
    assert refunds(wired(out)) == {"x": "6.83", "y": "6.83"}
    # installed first, restored after: the same
    third = Processor(CATALOG)
    for c in terms(CONTRACTS):
        third.install(c)
    third.restore(snapshot)
    out = third.advance_to(at("2026-06-20T10:05:00Z"))  # a tick: the waiting ones go first
    assert len(third.parking) == 0
    out += third.apply(LATER[0])[0] + third.advance_to(UNTIL)
    assert refunds(wired(out)) == {"x": "6.83", "y": "6.83"}


def test_a_resent_waiting_event_waits_once():
    proc = Processor(CATALOG)
    ev = opened("Y-1", "y", "high", "2026-06-20T09:00:00Z", event_id="y1o")
    assert proc.apply(ev) == ([], None)
    assert proc.apply(ev) == ([], None)
    assert len(proc.parking) == 1
    other = opened("Y-1", "y", "low", "2026-06-20T09:00:00Z", event_id="y1o")
    assert proc.apply(other)[1].reason == "conflicting_duplicate"


class _StoreFailingOn(MemoryStore):
    """A store whose write of one service's state raises (a bug's stand-in; a fake, as the
    compiled build's Processor cannot have a method patched)."""

    def __init__(self, service_id: str) -> None:
        super().__init__()
        self.failing = service_id

    def save_service(self, state: downtime.ServiceState) -> None:
        if state.service_id == self.failing:
            raise RuntimeError("boom")
        super().save_service(state)


def test_a_released_event_that_raises_is_a_dead_letter_not_a_refused_contract():
    """A bug applying one released event must not make the contract's install fail (in the stream, a
    contract one processor refuses is installed nowhere): that event is a `rejected` dead letter."""
    proc = Processor(CATALOG, store=_StoreFailingOn("vz-new"))  # n1, vz-new's outage start, raises
    for ev in new_customer_events():
        proc.apply(ev)
    out = []
    for c in terms(CONTRACTS):
        out += proc.upsert_contract(c)
    dead = [as_wire(o) for o in out if o.type == "dead_letter"]
    assert [(d["reason"], d["source"]) for d in dead] == [("rejected", "parked:n1")]
    assert "RuntimeError: boom" in dead[0]["error"]
    assert "y" in proc.contracts and len(proc.parking) == 0


def _tables(store: MemoryStore) -> MemoryStore:
    """The next owner's store: what the partition's changelogs hold, read back from their JSON."""
    new = MemoryStore(closed=dict(store.closed))
    for state in store.services.values():
        new.save_service(downtime.ServiceState.from_json(state.to_json()))
    for ticket in store.tickets.values():
        new.save_ticket(TicketState.from_json(ticket.to_json()))
    return new


def test_a_contract_the_previous_owner_never_read_closes_its_months_at_the_next_tick():
    """The worker rebuilds a partition's processor from its snapshot and installs every contract it
    knows (release=False: no unit of work to send outputs with). A contract the partition's previous
    owner had not read yet (its read of the contracts topic lagging when the partition moved) can
    make months due at once: x adds vz-new from 06-16, June is over. Closed during the rebuild, x's
    June close and 6.83 USD refund were dropped and the month marked closed (review, 2026-12-05:
    the refund was never emitted). They now come out at the partition's next tick, once."""
    contracts = terms(CONTRACTS)
    first = Processor(CATALOG)
    for c in contracts:
        if c.terms.customer_id == "y":
            first.install(c)
    for ev in (outage("n1", "2026-06-20T10:00:00Z"), LATER[0]):
        assert first.apply(ev)[1] is None
    assert refunds(wired(first.advance_to(at("2026-07-05T00:00:00Z")))) == {"y": "6.83"}
    snapshot = first.snapshot()

    # the next owner: the partition's tables (the same store here) and the processor's snapshot
    second = Processor(CATALOG, store=_tables(first.store))
    second.restore(snapshot)
    for c in contracts:
        assert second.upsert_contract(c, release=False) == []  # before: x's June close and refund here
    out = wired(second.advance_to(at("2026-07-05T00:01:00Z")))
    assert refunds(out) == {"x": "6.83"}
    assert wired(second.advance_to(at("2026-07-05T00:02:00Z"))) == []
    # the same from an event instead of a tick
    third = Processor(CATALOG, store=_tables(first.store))
    third.restore(snapshot)
    for c in contracts:
        assert third.upsert_contract(c, release=False) == []
    more, rejected = third.apply(opened("Y-2", "y", "high", "2026-07-05T00:01:00Z", event_id="y2o"))
    assert rejected is None and refunds(wired(more)) == {"x": "6.83"}
