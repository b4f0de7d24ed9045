"""Where a month report's state comes from: a replay of an event file, or a worker's processors.

Both hand the same core state to `policies.report`; only what is held differs. A replay here
keeps every month and every ticket (no pruning, closed tickets retained), so the figures of a
file's month are complete. A worker holds what it has not forgotten: months within their claim
window, tickets until 7 days after their close; the report says which.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from policies.contracts import load_contracts_yaml
from policies.catalog import Catalog, ResolvedPlan, default_catalog
from policies.processor import ContractEntry, MemoryStore, Processor, Settings
from policies.report import MonthReport, service_month, ticket_section
from policies.tickets import TicketState
from policies.uptime import month_bounds
from streams.replay import Replayer, future_summary

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class RetainingStore(MemoryStore):
    """The replay store, except that a ticket closed long enough is kept (a report needs its clocks)."""

    retired: dict[str, TicketState] = field(default_factory=dict)

    def close_ticket(self, state: TicketState) -> None:
        self.retired[state.ticket_id] = state
        super().close_ticket(state)

    def all_tickets(self) -> Iterable[TicketState]:
        yield from self.retired.values()
        yield from self.tickets.values()


def describe_contract(customer_id: str, entry: ContractEntry, plan: ResolvedPlan) -> str:
    commitment = plan.uptime_commitment_percent
    fees = "; ".join(f"{s.service_id} {s.monthly_fee} {s.currency}/month" if s.monthly_fee is not None
                     else f"{s.service_id} {s.annual_fee} {s.currency}/year" for s in entry.terms.services)
    return (f"{customer_id}: {plan.policy} {plan.plan} (catalog {plan.policy_version})"
            + (f", uptime commitment {commitment} %" if commitment is not None else ", no uptime commitment")
            + (f"; services {fees}" if fees else ""))


def _not_held(service_id: str, month: str, services: dict[str, Any], held_from: dict[str, str | None]) -> str | None:
    if service_id not in services:
        return "its partition is held by another worker"
    oldest = held_from.get(service_id)
    if oldest is not None and month < oldest:
        return (f"the month was pruned after its claim window (the oldest month held is {oldest}); its figures "
                "stand in the uptime.month_closed already emitted")
    return None


def month_report(*, core: Processor, customer_id: str, month: str, entry: ContractEntry,
                 tickets: Iterable[TicketState], services: dict[str, Any], held_from: dict[str, str | None],
                 now: datetime, notes: tuple[str, ...] = ()) -> MonthReport:
    """Assemble the report from core state. `core` answers which catalog version applies (SPEC §14:
    a ticket under the version it was opened under, the month under the one in force at its start);
    `entry`: the customer's terms in force at the month's start (`Processor.contract_at`); `services`: service_id -> its ServiceState (None: nothing happened to it; absent: not held
    here); `held_from`: service_id -> the oldest month its state still holds (None: all)."""
    start, end = month_bounds(month)  # validates YYYY-MM
    plan = core.plan_at(customer_id, start)
    mine = [t for t in tickets if t.customer_id == customer_id]
    submitted = sorted((t for t in mine if start <= t.opened_at < end), key=lambda t: (t.opened_at, t.ticket_id))
    ticket_plans = [core.ticket_plan(t) for t in submitted]
    # Each ticket is measured under the terms at its opening (SPEC §14), which need not be the
    # month's start terms (review F4: Starter -> Pro on the 15th hid a breach replay emitted): the
    # section always runs, "no ticket clocks" only when neither a ticket's plan nor any terms in force
    # during the month have clocks; rows follow the union of those plans' priorities.
    month_plans = [plan, *(core.plan_at(customer_id, c.effective_from) for c in core.histories.get(customer_id, ())
                           if c.effective_from is not None and start < c.effective_from < end)]
    with_clocks = [p for p in (*month_plans, *ticket_plans) if p.ticket_clocks]
    priorities = tuple(dict.fromkeys(q for p in with_clocks for q in p.priorities))
    count, rows, outcomes, timelines = ticket_section(submitted, core.ticket_plan, priorities, month, now)
    versions = Counter(p.policy_version for p in ticket_plans)
    if set(versions) - {plan.policy_version}:
        notes = (*notes, "Each ticket is measured under the catalog version in force when it was opened: "
                 + ", ".join(f"{v} ({n} ticket{'s' if n != 1 else ''})" for v, n in sorted(versions.items())) + ".")
    terms = Counter(f"{p.policy} {p.plan}" for p in ticket_plans)
    if set(terms) - {f"{plan.policy} {plan.plan}"}:
        notes = (*notes, "Each ticket is measured under the contract terms in force when it was opened (the month's "
                 f"uptime under those at its start, {plan.policy} {plan.plan}): "
                 + ", ".join(f"{k} ({n} ticket{'s' if n != 1 else ''})" for k, n in sorted(terms.items())) + ".")
    # Each service under the terms its month close uses (`Processor.month_service_terms`): those at the
    # month's start, or, for a service the terms add during the month, the first terms listing it,
    # counted from their effective_from (SPEC §11; review11 F1: such a service was left out)
    service_terms = [t for t in (core.month_service_terms(customer_id, sid, month)
                                 for sid in core.month_service_ids(customer_id, month))
                     if t is not None and t[2].uptime_commitment_percent is not None]
    service_months = tuple(
        service_month(services.get(s.service_id), s.service_id, customer_id=customer_id, month=month,
                      commitment=p.uptime_commitment_percent, fee_per_month=s.fee_per_month, currency=s.currency,
                      now=now, not_held=_not_held(s.service_id, month, services, held_from),
                      scope=e.scope(s.service_id), in_force=(e.in_force_from, None),
                      start_month=e.start_month)
        for e, s, p in service_terms)
    return MonthReport(customer_id, month, describe_contract(customer_id, entry, plan), now, bool(with_clocks), count,
                       rows, outcomes, timelines, service_months, notes)


def report_from_files(events: Path, contracts: Path, customer_id: str, month: str,
                      until: datetime | None = None, catalog: Catalog | None = None, *,
                      bound: datetime | None = None, warn: Callable[[str], None] | None = None) -> MonthReport:
    """Replay `events` (every month and ticket kept) and report `customer_id`'s `month`, under
    `catalog` (default: the packaged one). `bound` (SPEC §10, as replay): lines after it are
    `future_timestamp` dead letters and move nothing (default `until`; the CLI passes the wall
    clock + max_future without `--until`); `warn(line)` is told about them."""
    month_bounds(month)
    catalog = catalog or default_catalog()
    replayer = Replayer(load_contracts_yaml(contracts, catalog), catalog, Settings(prune=False))
    store = replayer.processor.store = RetainingStore()
    replayer.feed_file(events)
    result = replayer.finish(until, bound)
    dropped = future_summary(result, bound if bound is not None else until)
    if dropped is not None and warn is not None:
        warn(dropped)
    proc = replayer.processor
    if customer_id not in proc.contracts:
        raise LookupError(f"customer {customer_id!r} is not in {contracts}")
    entry = proc.contract_at(customer_id, month_bounds(month)[0])  # SPEC §14: the terms at the month's start
    services = {sid: store.service(sid) for sid in proc.month_service_ids(customer_id, month)}
    return month_report(core=proc, customer_id=customer_id, month=month, entry=entry, tickets=store.all_tickets(),
                        services=services, held_from={}, now=proc.now or EPOCH)


def _held_tickets(processors: Iterable[Any], customer_id: str, held: Callable[[str], bool]) -> list[TicketState]:
    """The customer's tickets in the tables of this worker's partitions (the in-memory state where
    a processor has it loaded: it may be newer than the table). A closed ticket's tombstone is skipped.
    `held(ticket_id)`: whether its partition is one of the processors' (the table also holds the
    standby partitions' tickets, replicated from another worker and possibly behind it)."""
    marker = f'"c":{json.dumps(customer_id)}'
    found: dict[str, TicketState] = {}
    seen_tables: set[int] = set()
    for proc in processors:
        backend = proc.store.p.backend
        if id(backend) in seen_tables:
            continue  # one table serves every partition of this worker
        seen_tables.add(id(backend))
        for ticket_id, raw in backend.items("tickets"):
            if marker in raw and not raw.startswith('{"closed":') and held(ticket_id):
                found[ticket_id] = TicketState.from_json(raw)
    for proc in processors:
        found.update({k: s for k, s in proc.store.tickets.items() if s.customer_id == customer_id})
    return list(found.values())


def report_from_worker(processors: dict[int, Any], partitions: int, customer_id: str, month: str,
                       owner_of: Any) -> MonthReport:
    """The report from a stream worker's state: `processors` are its partitions' processors
    (`streams.core_adapter.PartitionProcessor`), `owner_of(key)` the partition of a key.

    Raises LookupError when the customer has no contract here."""
    start, _ = month_bounds(month)
    procs = list(processors.values())
    core = next((p.core for p in procs if customer_id in p.core.contracts), None)
    if core is None:
        raise LookupError(f"customer {customer_id!r} has no contract on this worker")
    entry = core.contract_at(customer_id, start)  # SPEC §14: the terms in force at the month's start
    times = [p.core.now for p in procs if p.core.now is not None]
    now = min(times) if times else EPOCH  # the slowest partition: no clock is judged ahead of its time
    notes = []
    if len(procs) < partitions:
        notes.append(f"This worker holds {len(procs)} of {partitions} partitions: tickets and services of the "
                     "others are not in these figures. Ask the worker that holds them, or run slaproc report over "
                     "the event archive.")
    notes.append("Tickets are those this worker still holds; a ticket is forgotten 7 days after ticket.closed, so "
                 "for a past month run slaproc report over the event archive.")
    services: dict[str, Any] = {}
    held_from: dict[str, str | None] = {}
    for service_id in core.month_service_ids(customer_id, month):
        proc = processors.get(owner_of(service_id))
        if proc is None:
            continue
        services[service_id] = proc.store.service(service_id)
        held_from[service_id] = proc.core.oldest_month_held(customer_id, service_id)
    return month_report(core=core, customer_id=customer_id, month=month, entry=entry,
                        tickets=_held_tickets(procs, customer_id, lambda key: owner_of(key) in processors),
                        services=services, held_from=held_from,
                        now=now, notes=tuple(notes))
