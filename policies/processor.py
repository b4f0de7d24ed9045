"""The processor: routes input events to the ticket clocks and downtime ledgers and moves time.

Pure and deterministic. Replay drives one processor over a file; the stream worker drives
one per partition. Time (`now`) is the latest of the event times applied and the instants
given to `advance_to`; it never goes backwards (SPEC §5).
"""
from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Collection, Protocol

from events.contract import ContractTerms
from policies import downtime, uptime
from policies.attainment import AttainmentBook
from policies.catalog import Catalog, ContractError, ResolvedPlan
from policies.contracts import Contract, contract_from_event
from policies.outputs import Output, Rejected, output_event_id
from policies.tickets import TicketEngine, TicketState, event_digest

UTC = timezone.utc
TICKET_TYPES = frozenset({
    "ticket.opened", "ticket.priority_changed", "ticket.replied", "ticket.status_changed",
    "ticket.escalated", "ticket.resolved", "ticket.reopened", "ticket.closed",
})


def _instant_of(out: Output) -> datetime:
    return out.occurred_at


@dataclass(frozen=True)
class Settings:
    """Knobs of the core. Durations are plain elapsed time."""

    at_risk_thresholds: tuple[float, ...] = (0.5, 0.75, 0.9)
    month_close_delay: timedelta = timedelta(hours=1)
    quarter_close_delay: timedelta = timedelta(hours=1)


class Store(Protocol):
    """Where entity state lives: a dict for replay, Faust tables for the stream worker."""

    def ticket(self, ticket_id: str) -> TicketState | None: ...
    def save_ticket(self, state: TicketState) -> None: ...
    def close_ticket(self, state: TicketState) -> None: ...
    def closed_digests(self, ticket_id: str) -> Collection[int] | None: ...
    def due_tickets(self, t: datetime) -> list[str]: ...
    def service(self, service_id: str) -> downtime.ServiceState | None: ...
    def save_service(self, state: downtime.ServiceState) -> None: ...


@dataclass
class MemoryStore:
    """In-memory store with a due-index (a heap of (wake, ticket_id), stale entries skipped)."""

    tickets: dict[str, TicketState] = field(default_factory=dict)
    closed: dict[str, Collection[int]] = field(default_factory=dict)
    services: dict[str, downtime.ServiceState] = field(default_factory=dict)
    _heap: list[tuple[datetime, str]] = field(default_factory=list)
    _wake: dict[str, datetime] = field(default_factory=dict)

    def ticket(self, ticket_id: str) -> TicketState | None:
        return self.tickets.get(ticket_id)

    def save_ticket(self, state: TicketState) -> None:
        self.tickets[state.ticket_id] = state
        wake = state.next_wake
        if wake is None:
            self._wake.pop(state.ticket_id, None)
        elif self._wake.get(state.ticket_id) != wake:
            self._wake[state.ticket_id] = wake
            heapq.heappush(self._heap, (wake, state.ticket_id))

    def close_ticket(self, state: TicketState) -> None:
        self.tickets.pop(state.ticket_id, None)
        self._wake.pop(state.ticket_id, None)
        self.closed[state.ticket_id] = state.seen

    def closed_digests(self, ticket_id: str) -> Collection[int] | None:
        return self.closed.get(ticket_id)

    def due_tickets(self, t: datetime) -> list[str]:
        """Tickets with a milestone strictly before `t`, each once, earliest first."""
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] < t:
            wake, ticket_id = heapq.heappop(heap)
            if self._wake.get(ticket_id) == wake:
                del self._wake[ticket_id]
                due.append(ticket_id)
        return due

    def service(self, service_id: str) -> downtime.ServiceState | None:
        return self.services.get(service_id)

    def save_service(self, state: downtime.ServiceState) -> None:
        self.services[state.service_id] = state


@dataclass(frozen=True)
class ContractEntry:
    terms: ContractTerms
    plan: ResolvedPlan
    start_month: str | None  # first month whose uptime this contract closes


class Processor:
    """Routes events, keeps time, and returns what each step emitted (in emission order)."""

    def __init__(self, catalog: Catalog, store: Store | None = None, settings: Settings = Settings(),
                 owns_service: Callable[[str], bool] = lambda _s: True, partition: int | None = None):
        """`partition`: set in stream mode, where this processor sees one partition's tickets
        (attainment is then emitted as partial counts for the aggregator)."""
        self.catalog = catalog
        self.store: Store = store if store is not None else MemoryStore()
        self.settings = settings
        self.owns_service = owns_service
        self.tickets = TicketEngine(settings.at_risk_thresholds)
        self.contracts: dict[str, ContractEntry] = {}
        self.service_owner: dict[str, str] = {}  # service_id -> customer_id
        self.now: datetime | None = None
        self.attainment = AttainmentBook(partition)
        self._next_close: dict[tuple[str, str], str] = {}  # (customer, service) -> next month to close
        # Instant up to which month closes are known to be done (the next close instant);
        # reset when a contract arrives, since its months may need catching up.
        self._closes_checked_until: datetime | None = None
        self._attainment_starts: dict[str, str] | None = None  # Rescale customers -> first month
        self._attainment_json: str | None = None  # cache of the serialised attainment book

    # ---- contracts --------------------------------------------------------------------
    def install(self, contract: Contract, at: datetime | None = None) -> None:
        """Install a validated contract. Its months close from `effective_from`, else from the
        month of `at` (a contract event's time), else from the first instant the processor sees."""
        terms = contract.terms
        for svc in terms.services:
            owner = self.service_owner.get(svc.service_id)
            if owner is not None and owner != terms.customer_id:
                raise Rejected("invalid_contract", f"service_id {svc.service_id!r} already belongs to customer {owner!r}")
        old = self.contracts.get(terms.customer_id)
        start = terms.effective_from or at or self.now
        start_month = uptime.month_of(start) if start is not None else None
        if old is not None and old.start_month is not None and (start_month is None or old.start_month < start_month):
            start_month = old.start_month
        self.contracts[terms.customer_id] = ContractEntry(terms, contract.plan, start_month)
        self._closes_checked_until = None
        self._attainment_starts = None
        for svc in terms.services:
            self.service_owner[svc.service_id] = terms.customer_id

    def _contract(self, customer_id: str) -> ContractEntry:
        entry = self.contracts.get(customer_id)
        if entry is None:
            raise Rejected("unknown_customer", f"customer_id {customer_id!r} has no contract")
        return entry

    # ---- time -------------------------------------------------------------------------
    def advance_to(self, t: datetime) -> list[Output]:
        """Move time to `t` (never backwards) and fire everything due before it."""
        if self.now is not None and t <= self.now:
            return []
        if self.now is None:
            for entry in list(self.contracts.values()):
                if entry.start_month is None:  # contracts loaded before any time: start at the first instant
                    self.contracts[entry.terms.customer_id] = ContractEntry(entry.terms, entry.plan, uptime.month_of(t))
                    self._attainment_starts = None
        self.now = t
        out: list[Output] = []
        store = self.store
        for ticket_id in store.due_tickets(t):
            state = store.ticket(ticket_id)
            if state is None:
                continue
            plan = self._contract(state.customer_id).plan
            emitted = self.tickets.advance(state, plan, t)
            self._observe(emitted, plan, state)
            store.save_ticket(state)
            out.extend(emitted)
        out.extend(self._close_months(t))
        out.extend(self._close_quarters(t))
        if len(out) > 1:
            out.sort(key=_instant_of)  # in due order across tickets (stable within one ticket)
        return out

    # ---- events -----------------------------------------------------------------------
    def apply(self, ev: Any) -> tuple[list[Output], Rejected | None]:
        """Advance to the event's time, then apply it. A rejection comes back for the dead letter."""
        out = self.advance_to(ev.occurred_at) if self.now is None or ev.occurred_at > self.now else []
        try:
            out.extend(self._apply(ev))
        except Rejected as rejected:
            return out, rejected
        return out, None

    def _apply(self, ev: Any) -> list[Output]:
        t = ev.type
        if t in TICKET_TYPES:
            return self._apply_ticket(ev)
        if t in downtime.MONITORING_TYPES:
            return self._apply_monitoring(ev)
        if t == "contract.upserted":
            try:
                self.install(contract_from_event(ev, self.catalog), at=ev.occurred_at)
            except ContractError as err:
                raise Rejected("invalid_contract", str(err)) from None
            return self._close_months(self.now) if self.now is not None else []
        raise Rejected("unknown_type", f"type {t!r} is not an input event")

    def _apply_ticket(self, ev: Any) -> list[Output]:
        store = self.store
        state = store.ticket(ev.ticket_id)
        now = self.now if self.now is not None else ev.occurred_at
        if ev.type == "ticket.opened":
            if state is not None or store.closed_digests(ev.ticket_id) is not None:
                seen = state.seen if state is not None else store.closed_digests(ev.ticket_id)
                if seen is not None and event_digest(ev.event_id) in seen:
                    return []
                raise Rejected("duplicate_ticket", f"ticket {ev.ticket_id!r} was already opened")
            plan = self._contract(ev.customer_id).plan
            state, out = self.tickets.open(ev, plan, now)
            if plan.attainment_quarterly and any(
                    s.metric == "first_response" and s.binding and not s.done for s in state.slots):
                self.attainment.opened(state)
            self._observe(out, plan, state)
            store.save_ticket(state)
            return out + self._close_quarters(now)
        if state is None:
            closed = store.closed_digests(ev.ticket_id)
            if closed is not None:
                if event_digest(ev.event_id) in closed:
                    return []
                raise Rejected("ticket_closed", f"ticket {ev.ticket_id!r} is closed; {ev.type} arrived after ticket.closed")
            raise Rejected("unknown_ticket", f"ticket {ev.ticket_id!r} was never opened; {ev.type} cannot be applied")
        plan = self._contract(state.customer_id).plan
        if ev.type == "ticket.closed":
            if event_digest(ev.event_id) in state.seen:
                return []
            out = self.tickets.advance(state, plan, now)
            state.seen.append(event_digest(ev.event_id))
            self._observe(out, plan, state)
            if plan.attainment_quarterly:
                self.attainment.stopped(state)
            store.close_ticket(state)
            if plan.attainment_quarterly:
                out += self._close_quarters(now)
            return out
        out = self.tickets.apply(state, ev, plan, now)
        self._observe(out, plan, state)
        if plan.attainment_quarterly and state.first_response_done:
            self.attainment.stopped(state)  # no-op when the outcome was observed
        store.save_ticket(state)
        if plan.attainment_quarterly:
            out += self._close_quarters(now)
        return out

    def _observe(self, outputs: list[Output], plan: ResolvedPlan, state: TicketState) -> None:
        """Count the ticket's outputs in the attainment book. The book marks the ticket itself
        (`TicketState.attainment`): callers save the ticket after this, in the same batch."""
        if plan.attainment_quarterly:
            book = self.attainment
            if book.legacy_pending:
                book.adopt(state)
            for o in outputs:
                book.observe(o, state)

    def _apply_monitoring(self, ev: Any) -> list[Output]:
        customer_id = self.service_owner.get(ev.service_id)
        if customer_id is None:
            raise Rejected("unknown_service", f"service_id {ev.service_id!r} is not in any contract")
        store = self.store
        state = store.service(ev.service_id) or downtime.new_state(ev.service_id)
        applied = downtime.apply_event(state, ev.type, ev.model_dump())
        if applied.error is not None:
            raise Rejected(*applied.error)
        state = applied.state
        out: list[Output] = []
        entry = self.contracts[customer_id]
        commitment = entry.plan.uptime_commitment_percent
        if commitment is not None and self.now is not None:
            for month in uptime.months_to_revise(state, customer_id, applied.affected_from):
                state, closed_out = self._close_one(state, entry, ev.service_id, month, self.now)
                out.extend(closed_out)
        store.save_service(state)
        return out

    # ---- month and quarter closes -----------------------------------------------------
    def _close_months(self, t: datetime) -> list[Output]:
        """Close every contracted service's months whose close instant is before `t`."""
        if self._closes_checked_until is not None and t <= self._closes_checked_until:
            return []  # no month ended since the last check: nothing to close
        out: list[Output] = []
        delay = self.settings.month_close_delay
        self._closes_checked_until = uptime.close_instant(uptime.month_of(t - delay), delay)
        for customer_id in sorted(self.contracts):
            entry = self.contracts[customer_id]
            if entry.plan.uptime_commitment_percent is None or entry.start_month is None:
                continue
            for svc in entry.terms.services:
                if not self.owns_service(svc.service_id):
                    continue
                key = (customer_id, svc.service_id)
                month = self._next_close.get(key, entry.start_month)
                if uptime.close_instant(month, delay) >= t:
                    continue
                state = self.store.service(svc.service_id) or downtime.new_state(svc.service_id)
                while uptime.close_instant(month, delay) < t:
                    state, closed_out = self._close_one(state, entry, svc.service_id, month,
                                                        uptime.close_instant(month, delay))
                    out.extend(closed_out)
                    month = uptime.next_month(month)
                self._next_close[key] = month
                # Months whose claim window has passed can no longer change what was emitted:
                # forget them, so a service's state and its month closes do not grow with history.
                state = downtime.prune(state, self._oldest_month_held(month))
                self.store.save_service(state)
        return out

    @staticmethod
    def _oldest_month_held(next_to_close: str) -> str:
        """The oldest month a service's state keeps once `next_to_close` is the next month to close."""
        return uptime.previous_month(uptime.previous_month(next_to_close))

    def oldest_month_held(self, customer_id: str, service_id: str) -> str | None:
        """The oldest month whose figures the service's state still holds (earlier ones were
        pruned after their claim window); None before its first close."""
        next_close = self._next_close.get((customer_id, service_id))
        return None if next_close is None else self._oldest_month_held(next_close)

    def _close_one(self, state: downtime.ServiceState, entry: ContractEntry, service_id: str, month: str,
                   at: datetime) -> tuple[downtime.ServiceState, list[Output]]:
        svc = next(s for s in entry.terms.services if s.service_id == service_id)
        state, closed, refund = uptime.close_and_record(
            state, customer_id=entry.terms.customer_id, month=month,
            commitment_percent=entry.plan.uptime_commitment_percent, fee_per_month=svc.fee_per_month,
            currency=svc.currency)
        out: list[Output] = []
        customer_id = entry.terms.customer_id
        if closed is not None:
            rev = str(closed["revision"])
            out.append(Output("uptime.month_closed", at, customer_id,
                              output_event_id("uptime.month_closed", customer_id, service_id, month, rev), closed))
            if refund is not None:
                out.append(Output("refund.eligible", at, customer_id,
                                  output_event_id("refund.eligible", customer_id, service_id, month, rev), refund))
        return state, out

    def _close_quarters(self, t: datetime) -> list[Output]:
        starts = self._attainment_starts
        if starts is None:  # recomputed only when a contract changes
            starts = self._attainment_starts = {
                c: e.start_month for c, e in sorted(self.contracts.items())
                if e.plan.attainment_quarterly and e.start_month}
        if not starts:
            return []
        return self.attainment.close_due(t, self.settings.quarter_close_delay, starts)

    # ---- persistence of the processor's own state (stream mode) -----------------------
    def snapshot(self) -> str:
        """The processor's own state (time, month-close pointers, attainment) as compact JSON."""
        book = self.attainment
        if book.dirty or self._attainment_json is None:
            # O(customers x quarters): the per-ticket part lives on the tickets. Still
            # serialised only when it changed, not on every flush.
            self._attainment_json = json.dumps(book.to_json(), separators=(",", ":"))
            book.dirty = False
        head = json.dumps({
            "now": self.now.isoformat() if self.now else None,
            "close": sorted([c, s, m] for (c, s), m in self._next_close.items()),
        }, separators=(",", ":"))
        return head[:-1] + ',"attainment":' + self._attainment_json + "}"

    def restore(self, text: str | bytes) -> None:
        """Inverse of `snapshot` (contracts are installed separately). Also reads a snapshot
        written before the attainment book moved its per-ticket entries to the tickets
        (see `policies.attainment._upcast_v1`)."""
        data = json.loads(text)
        self.now = datetime.fromisoformat(data["now"]) if data["now"] else None
        self._next_close = {(c, s): m for c, s, m in data["close"]}
        self.attainment.load(data["attainment"])
        self._attainment_json = None
        self._closes_checked_until = None

    def open_clocks(self) -> int:
        tickets = getattr(self.store, "tickets", {})
        return sum(1 for st in tickets.values() for s in st.slots if not s.done and s.pending)
