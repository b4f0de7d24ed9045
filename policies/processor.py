"""The processor: routes input events to the ticket clocks and downtime ledgers and moves time.

Pure and deterministic. Replay drives one processor over a file; the stream worker drives
one per partition. Time (`now`) is the latest of the event times applied and the instants
given to `advance_to`; it never goes backwards (SPEC §5).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Collection, Iterator, Mapping, Protocol

from events.contract import ContractTerms
from events.models import InputEvent
from policies import downtime, uptime
from policies.attainment import OUTCOME_WAIT, AttainmentBook, Spans, attainment_spans
from policies.catalog import Catalog, ContractError, ResolvedPlan
from policies.contracts import BEGINNING, Contract, contract_from_event, recorded_order
from policies.explain import Subscriber
from policies.memory_store import MemoryStore
from events.ids import month_event_id, refund_withdrawn_event_id
from policies.outputs import Output, Rejected, output_event_id
from policies.parking import (FULL, MONITORING, TICKETS, Parking, contract_reason, contract_subject, creates_key,
                              customer_key, outage_key, service_key, ticket_key, window_key)
from policies.tickets import TicketEngine, TicketState, content_digest, event_digest, measurable_under

UTC = timezone.utc
_MICROSECOND = timedelta(microseconds=1)
_DUPLICATE = "\x00duplicate"  # `Processor._check`: an input already applied (not a parking key)
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
    # A quarter's report waits for its tickets' first-response outcomes until its end + this at most.
    quarter_outcome_wait: timedelta = OUTCOME_WAIT
    parking_horizon: timedelta = timedelta(days=7)  # SPEC §10: parked events expire to `orphan` after it
    # docs/decisions.md, "Contract wait": a ticket.opened of a customer without a contract, a monitoring
    # event of a service no contract names, waits this long (event time) for the contract, then is a
    # dead letter with that reason (unknown_customer / unknown_service) ...
    contract_wait: timedelta = timedelta(minutes=10)
    # ... in a room of at most this many bytes (encoded, as the snapshot holds them) per processor; an
    # event that does not fit is rejected at once with that reason
    contract_wait_bytes: int = 256 * 1024
    # Bounded time: empty months whose claim deadline was over this long before the close are skipped.
    empty_month_backfill: timedelta = timedelta(days=366)
    # Forget a service's months once their claim window is over (bounded state). Off for tools
    # that explain a month from a file (`explain-month`): they must never show pruned figures.
    prune: bool = True


class Store(Protocol):
    """Where entity state lives: a dict for replay, Faust tables for the stream worker."""

    def ticket(self, ticket_id: str) -> TicketState | None: ...
    def save_ticket(self, state: TicketState) -> None: ...
    def close_ticket(self, state: TicketState) -> None: ...
    def closed_digests(self, ticket_id: str) -> Collection[int] | None: ...
    def due_tickets(self, t: datetime) -> list[str]: ...
    def service(self, service_id: str) -> downtime.ServiceState | None: ...
    def save_service(self, state: downtime.ServiceState) -> None: ...


class Subscribers(Mapping[str, tuple[str, ...]]):
    """service_id -> the customers whose contract lists it, in customer order (SPEC §11). Kept as
    sets, sorted only when read after a change: installing N contracts on one shared service
    costs N, not N² (a sorted tuple rebuilt at every install)."""

    def __init__(self) -> None:
        self._sets: dict[str, set[str]] = {}
        self._sorted: dict[str, tuple[str, ...]] = {}

    def add(self, service_id: str, customer_id: str) -> None:
        self._sets.setdefault(service_id, set()).add(customer_id)
        self._sorted.pop(service_id, None)

    def discard(self, service_id: str, customer_id: str) -> None:
        customers = self._sets.get(service_id)
        if customers is None:
            return
        customers.discard(customer_id)
        self._sorted.pop(service_id, None)
        if not customers:
            del self._sets[service_id]

    def __getitem__(self, service_id: str) -> tuple[str, ...]:
        ordered = self._sorted.get(service_id)
        if ordered is None:
            ordered = self._sorted[service_id] = tuple(sorted(self._sets[service_id]))
        return ordered

    def __iter__(self) -> Iterator[str]:
        return iter(self._sets)

    def __len__(self) -> int:
        return len(self._sets)

    def __contains__(self, service_id: object) -> bool:
        return service_id in self._sets


@dataclass(frozen=True)
class ContractEntry:
    terms: ContractTerms
    plan: ResolvedPlan
    start_month: str | None  # first month whose uptime this contract closes
    # SPEC §11: the instant the contract came in force (its `effective_from`); the month it falls
    # in counts only from it and its fee is prorated. None: whole months from `start_month`.
    in_force_from: datetime | None = None

    def service(self, service_id: str) -> Any:
        return next(s for s in self.terms.services if s.service_id == service_id)

    def find_service(self, service_id: str) -> Any | None:
        """The terms' entry for `service_id`, or None when these terms do not list it."""
        return next((s for s in self.terms.services if s.service_id == service_id), None)

    def scope(self, service_id: str) -> downtime.SubscriberScope:
        svc = self.service(service_id)
        return downtime.SubscriberScope.of(svc.components, svc.region)


class Processor:
    """Routes events, keeps time, and returns what each step emitted (in emission order).

    One processor per partition (replay: one for the file). It keeps two clocks (SPEC §10):
    the ticket half's time (ticket clocks, quarterly attainment) follows the ticket events,
    the monitoring half's (downtime, month closes) the monitoring events; `advance_to` (a
    tick, replay's `--until`) moves both. A lag between the two input topics therefore
    changes nothing. `now` is the later of the two.
    """

    def __init__(self, catalog: Catalog, store: Store | None = None, settings: Settings = Settings(),
                 owns_service: Callable[[str], bool] = lambda _s: True, partition: int | None = None):
        """`partition`: set in stream mode, where this processor sees one partition's tickets
        (attainment is then emitted as partial counts for the aggregator)."""
        self.catalog = catalog
        self.store: Store = store if store is not None else MemoryStore()
        self.settings = settings
        self.owns_service = owns_service
        self.tickets = TicketEngine(settings.at_risk_thresholds)
        # customer -> its latest terms (by effective_from), with the first month and instant of the
        # whole history; the terms in force at an instant come from `contract_at`
        self.contracts: dict[str, ContractEntry] = {}
        # customer -> every terms it had, ordered by effective_from (SPEC §14: a later contract adds
        # the next terms, the earlier ones stay for what happened before it)
        self.histories: dict[str, list[Contract]] = {}
        # (customer, effective_from or BEGINNING) -> `recorded_order` of the terms installed for it, when
        # they came with their record time (a contract event): a correction read before the original
        # keeps standing (`_add_to_history`)
        self._recorded: dict[tuple[str, datetime], tuple[datetime, str]] = {}
        # (customer, effective_from, catalog version) -> those terms' plan under that version (SPEC
        # §14); cleared when a contract is installed
        self._versioned_plans: dict[tuple[str, datetime | None, str], ResolvedPlan] = {}
        # A new object whenever `contracts` / `histories` change: a ticket's plan memoised under
        # another token is stale (`ticket_plan`). A token, not a counter: unique across processors.
        self._plans_token = object()
        # service_id -> the customers whose contract lists it, sorted (SPEC §11: shared services)
        self.subscribers = Subscribers()
        self.ticket_now: datetime | None = None
        self.monitoring_now: datetime | None = None
        # the first instant this processor saw (kept in its snapshot): customers with undated terms
        # start there (docs/decisions.md, "Contract history")
        self.first_instant: datetime | None = None
        self.attainment = AttainmentBook(partition, settings.quarter_outcome_wait)
        self.parking = Parking(settings.parking_horizon, settings.contract_wait, settings.contract_wait_bytes)
        # A contract was installed (or parked events restored) since events waiting for a contract were
        # last looked at: `_release_waiting` at the next contract upsert, event or tick.
        self._contract_release = False
        # A contract was installed with release=False since: its months' closes are due at the next
        # event or tick too (`upsert_contract`, `_release_waiting`).
        self._months_due = False
        self._next_close: dict[tuple[str, str], str] = {}  # (customer, service) -> next month to close
        # service -> the latest of its subscribers' next months to close: every closed month is before
        # it, so an event affecting only instants from its start revises nothing (no scan of N closes)
        self._service_next_close: dict[str, str] = {}
        self._service_held: dict[str, str | None] = {}  # cache of `service_oldest_month_held`
        # Instant up to which month closes are known to be done (the next close instant);
        # reset when a contract arrives, since its months may need catching up.
        self._closes_checked_until: datetime | None = None
        self._attainment_quarters: dict[str, Spans] | None = None  # Rescale customers -> quarters to report
        self._attainment_json: str | None = None  # cache of the serialised attainment book
        self._checked_contract: tuple[str, Contract] | None = None  # `_check` -> `_apply` of a contract event
        # `_check` -> `_apply_ticket`: the ticket event just checked and its state, whose seen ids
        # were found not to hold the event's id (nothing adds to them between the two: time moving
        # only fires clocks). The common in-order event then looks its id up once, not two or three
        # times. Identity-checked: a state purged or reloaded in between is looked up again.
        self._unseen_event: Any = None
        self._unseen_state: TicketState | None = None
        # A ticket opened late with events parked for it: its own clocks move with its events only
        # (each applied at its own time) until the last parked one, then to the half's time (`_unpark`).
        self._held_ticket: str | None = None
        self.month_closes = 0  # months closed (emitted or skipped as empty): a work counter for tests

    @property
    def now(self) -> datetime | None:
        """The later of the two halves' times."""
        times = [t for t in (self.ticket_now, self.monitoring_now) if t is not None]
        return max(times) if times else None

    @now.setter
    def now(self, t: datetime | None) -> None:
        """Set both halves' times (benchmarks and tests rewinding a processor)."""
        self.ticket_now = self.monitoring_now = t

    @property
    def slowest_now(self) -> datetime | None:
        """The earlier of the two halves' times (what a tick's catch-up steps from)."""
        times = [t for t in (self.ticket_now, self.monitoring_now) if t is not None]
        return min(times) if times else None

    # ---- contracts --------------------------------------------------------------------
    def install(self, contract: Contract, at: datetime | None = None) -> bool:
        """Install a validated contract. The customer's months close from the earliest
        `effective_from` of its history; when its history has undated terms (they sort first and
        apply from the start), from the month of the first instant the processor sees, whatever
        order the terms arrive in and whenever they were recorded. `at` (a contract event's time)
        is not a start: a contract recorded today for a backfill of last month still applies to
        last month (docs/decisions.md, "Contract history").

        Terms with the effective_from of installed ones replace them unless both were recorded (`at`)
        and the installed ones later (`recorded_order`): the later record stands in every arrival
        order, as in replay's (occurred_at, event_id) order. Returns whether the contract was installed."""
        terms = contract.terms
        old_listed = self._services_listed(terms.customer_id)
        history = self._add_to_history(contract, at)
        if history is None:
            return False  # terms of this effective_from recorded later stand (SPEC §10)
        self.contracts[terms.customer_id] = self._entry(history)
        self._versioned_plans.clear()
        self._plans_token = object()
        self._closes_checked_until = None
        self._attainment_quarters = None
        self._service_held.clear()
        listed = self._services_listed(terms.customer_id)
        for service_id in old_listed - listed:
            self.subscribers.discard(service_id, terms.customer_id)
        for service_id in listed:
            self.subscribers.add(service_id, terms.customer_id)
        if self.parking:
            self._contract_release = True  # events may wait for this contract: `_release_waiting`
        return True

    def _entry(self, history: list[Contract]) -> ContractEntry:
        """The customer's entry: its latest terms, with the first month and instant of the whole
        history. The history is in effective_from order with undated terms first, so its first
        terms give the start: undated ones start at the first instant (None before it: whole
        months, `in_force_from` None), dated ones at their effective_from (SPEC §11 proration)."""
        latest, first = history[-1], history[0].effective_from
        if first is None:
            start_month = uptime.month_of(self.first_instant) if self.first_instant is not None else None
            return ContractEntry(latest.terms, latest.plan, start_month, None)
        return ContractEntry(latest.terms, latest.plan, uptime.month_of(first), first)

    def _add_to_history(self, contract: Contract, at: datetime | None = None) -> list[Contract] | None:
        """Put `contract` in its customer's history: it replaces the terms with the same
        effective_from, else goes in effective_from order (so the arrival order does not matter).
        None (nothing changed) when the terms it would replace were recorded after it (`install`)."""
        history = self.histories.setdefault(contract.customer_id, [])
        key = contract.effective_from or BEGINNING
        recorded = self._recorded
        slot = (contract.customer_id, key)
        for i, earlier in enumerate(history):
            earlier_key = earlier.effective_from or BEGINNING
            if earlier_key == key:
                order = recorded_order(contract, at) if at is not None else None
                standing = recorded.get(slot)
                if order is not None and standing is not None and standing > order:
                    return None
                history[i] = contract
                if order is None:
                    recorded.pop(slot, None)
                else:
                    recorded[slot] = order
                return history
            if earlier_key > key:
                history.insert(i, contract)
                break
        else:
            history.append(contract)
        if at is not None:
            recorded[slot] = recorded_order(contract, at)
        return history

    def _services_listed(self, customer_id: str) -> set[str]:
        """Every service the customer's terms list, over its whole history."""
        return {svc.service_id for c in self.histories.get(customer_id, ()) for svc in c.terms.services}

    def contract_at(self, customer_id: str, at: datetime) -> ContractEntry:
        """The customer's terms in force at `at` (SPEC §14: a ticket's opening, a month's start): the
        last of its history whose effective_from is at or before `at`; before the first, the first.
        Raises Rejected (unknown_customer) when the customer has no contract."""
        entry = self._contract(customer_id)
        history = self.histories.get(customer_id)
        if not history or len(history) == 1:
            return entry
        chosen = history[0]
        for later in history[1:]:
            if later.effective_from is None or later.effective_from > at:
                break
            chosen = later
        if chosen is history[-1]:
            return entry
        return replace(entry, terms=chosen.terms, plan=chosen.plan)

    def upsert_contract(self, contract: tuple[Contract, datetime] | Contract, release: bool = True) -> list[Output]:
        """A contract from the contracts topic (or file): install it, apply the events that waited
        for it (docs/decisions.md, "Contract wait") and catch its months up.

        `release=False`: leave the waiting events and the month closes the contract makes due for the
        next event or tick (`apply`, `advance_to`), whose outputs go out, for a caller that cannot send
        outputs now (the stream worker installing every contract into a
        processor it builds from its snapshot)."""
        terms, at = contract if isinstance(contract, tuple) else (contract, None)
        self.install(terms, at=at)
        if not release:
            # The months this contract makes due close at the next event or tick too, with the waiting
            # events: closed here, their outputs would be dropped and the months marked closed (a
            # restored processor learning a contract its partition's previous owner never read).
            self._contract_release = True
            self._months_due = True
            return []
        out = self._release_waiting() if self._contract_release else []
        if self.monitoring_now is not None:
            out += self._close_months(self.monitoring_now)
        return out

    def _release_waiting(self) -> list[Output]:
        """Apply the events that waited for a contract now installed (a customer's `ticket.opened`, a
        service's monitoring events), all together in (occurred_at, event_id) order, each at its own
        time as a late event; one rejected now is a dead letter stamped with its occurred_at."""
        self._contract_release = False
        parking = self.parking
        ready = [key for key in parking.contract_keys()
                 if (contract_subject(key) in self.contracts if key[0] == "c"
                     else contract_subject(key) in self.subscribers)]
        waiting = sorted((ev for key in ready for ev in parking.take(key)), key=lambda e: (e.occurred_at, e.event_id))
        out: list[Output] = []
        for ev in waiting:
            try:
                more, rejected = self.apply(ev)
            except Exception as exc:  # a bug: this event is a `rejected` dead letter, as replay makes it
                # (raised, it would make the contract's install fail: the contract refused everywhere)
                more, rejected = [], Rejected("rejected", f"{type(exc).__name__}: {exc}")
            out.extend(more)
            if rejected is not None:
                out.append(parking.dead_letter(ev, rejected.reason, rejected.message, ev.occurred_at))
        if self._months_due:  # after the waiting events, as `upsert_contract` closes after releasing
            self._months_due = False
            if self.monitoring_now is not None:
                out += self._close_months(self.monitoring_now)
        return out

    def _contract(self, customer_id: str) -> ContractEntry:
        entry = self.contracts.get(customer_id)
        if entry is None:
            raise Rejected("unknown_customer", f"customer_id {customer_id!r} has no contract")
        return entry

    # ---- catalog versions (SPEC §14) ----------------------------------------------------
    def _plan_under(self, entry: ContractEntry, version: str) -> ResolvedPlan:
        """The contract's plan under catalog `version` of its policy."""
        if version == entry.plan.policy_version:
            return entry.plan
        key = (entry.terms.customer_id, entry.terms.effective_from, version)
        plan = self._versioned_plans.get(key)
        if plan is None:
            try:
                plan = self.catalog.resolve(entry.terms, version=version)
            except ContractError as err:
                raise Rejected("invalid_contract", str(err)) from None
            self._versioned_plans[key] = plan
        return plan

    def plan_at(self, customer_id: str, at: datetime) -> ResolvedPlan:
        """The customer's plan under the catalog version in force at `at` (a ticket's opening,
        a month's start), under the customer's terms in force at `at`."""
        entry = self.contract_at(customer_id, at)
        return self._plan_under(entry, self.catalog.version_at(entry.plan.policy, at))

    def ticket_plan(self, state: TicketState) -> ResolvedPlan:
        """The plan a ticket is measured under: the catalog version it was opened under, kept in
        its state, so a restart with a catalog that gained a version changes nothing for it.
        A version the catalog no longer has (published versions are never removed, see
        docs/operations.md) falls back to the one in force at the opening, as a replay would.

        Looked up 1-2 times per event of the ticket, and the answer depends only on the ticket's
        customer, opening and version (set at its opening, never changed) and on the contracts and
        the catalog (immutable): memoised on the state until a contract changes (`_plans_token`)."""
        if state.plan_token is self._plans_token and state.plan is not None:
            return state.plan
        entry = self.contract_at(state.customer_id, state.opened_at)  # the terms in force at its opening
        version = state.policy_version
        if version != entry.plan.policy_version and not self.catalog.has_version(entry.plan.policy, version):
            version = self.catalog.version_at(entry.plan.policy, state.opened_at)
        plan = self._plan_under(entry, version)
        previous = state.plan
        if not measurable_under(state, plan):
            # Terms installed after the fact, of a policy without the ticket's priorities (review of
            # 2026-12-06: every tick raised KeyError on this ticket): it stays under the terms it
            # was measured under, else the latest of its customer's that know them. Replay, with
            # those terms from the start, rejects its ticket.opened (a backfill, decisions.md).
            plan = previous if previous is not None else self._plan_measuring(state, version, plan)
        state.plan_token, state.plan = self._plans_token, plan
        if previous is not None and state.derived and not previous.same_clocks(plan):
            # Terms installed since (a correction, terms backdated before its opening): its clocks are
            # derived again under them at this use, and what they no longer derive is retracted
            # (`TicketEngine._ensure_derived`), as a restart would; replay measures it under them from
            # the start (review of 2026-12-06: the old targets ran on until a restart, which then
            # left a met and a breach standing for one clock).
            state.derived = False
        return plan

    def _plan_measuring(self, state: TicketState, version: str, plan: ResolvedPlan) -> ResolvedPlan:
        """The plan of the latest of the customer's terms that knows the ticket's priorities (a
        restored ticket: the plan it ran under is not kept); `plan` when none does."""
        catalog = self.catalog
        for contract in reversed(self.histories.get(state.customer_id, ())):
            policy = contract.plan.policy
            under = version if version == contract.plan.policy_version or catalog.has_version(policy, version) \
                else catalog.version_at(policy, state.opened_at)
            candidate = self._plan_under(replace(self._contract(state.customer_id), terms=contract.terms,
                                                 plan=contract.plan), under)
            if measurable_under(state, candidate):
                return candidate
        return plan

    # ---- time -------------------------------------------------------------------------
    def _first_instant(self, t: datetime) -> None:
        # `now` is None (called per event: no property); once set, the first instant stays (replay
        # --jobs sets the file's before a job's own first event)
        if self.first_instant is None and self.ticket_now is None and self.monitoring_now is None:
            self._set_first_instant(t)

    def _lower_first_instant(self, t: datetime) -> None:
        """An event earlier than the first instant: the first instant becomes its time (undated terms
        start at the earliest instant of the events, as in the sorted order, not at the first one to
        arrive), while no customer with undated terms has closed a month. A fresh partition reading a
        backlog across two topics, or out of order, then closes the same months as replay (review of
        2026-12-06, F3: a ticket of June 1 applied before May 28's outage left May never closed, its
        8.44 USD refund missing). Once such a month has closed, the months before it stay unmeasured
        (docs/decisions.md, "Contract history")."""
        undated = {c for c, history in self.histories.items() if history[0].effective_from is None}
        if undated and any(customer_id in undated for customer_id, _service in self._next_close):
            return
        self._set_first_instant(t)
        self._closes_checked_until = None

    def _set_first_instant(self, t: datetime) -> None:
        """The first instant the processor sees: where customers with undated terms start."""
        self.first_instant = t
        for customer_id, history in self.histories.items():
            if history[0].effective_from is None:
                self.contracts[customer_id] = self._entry(history)
                self._plans_token = object()
                self._attainment_quarters = None

    def advance_to(self, t: datetime) -> list[Output]:
        """A tick: move both halves to `t` (never backwards) and fire everything due before it (first,
        the events that waited for a contract installed since: `_release_waiting`)."""
        released = self._release_waiting() if self._contract_release else []
        out = self._advance_tickets(t) + self._advance_monitoring(t)
        if len(out) > 1:
            out.sort(key=_instant_of)  # in due order across tickets (stable within one ticket)
        return released + out if released else out

    def _advance_tickets(self, t: datetime) -> list[Output]:
        if self.ticket_now is not None and t <= self.ticket_now:
            return []
        if self.first_instant is None:
            self._first_instant(t)
        self.ticket_now = t
        out: list[Output] = []
        store = self.store
        for ticket_id in store.due_tickets(t):
            state = store.ticket(ticket_id)
            if state is None:
                continue
            if state.purge_at is not None:
                if state.purge_at < t:
                    store.close_ticket(state)  # closed long enough: keep only its seen ids
                else:
                    store.save_ticket(state)
                continue
            out.extend(self._advance_ticket(state, t))
        out.extend(self._close_quarters(t))
        if self.parking.events:  # `expire` of an empty parking is [] (checked here: once per event)
            out.extend(self.parking.expire(TICKETS, t))
        if len(out) > 1:
            out.sort(key=_instant_of)
        return out

    def _advance_monitoring(self, t: datetime) -> list[Output]:
        if self.monitoring_now is not None and t <= self.monitoring_now:
            return []
        self._first_instant(t)
        self.monitoring_now = t
        out = self._close_months(t)
        out.extend(self.parking.expire(MONITORING, t))
        return out

    # ---- events -----------------------------------------------------------------------
    def apply(self, ev: InputEvent, not_after: datetime | None = None) -> tuple[list[Output], Rejected | None]:
        """Check the event, advance its half to the event's time, then apply it.

        `not_after` is the bound of SPEC §10 (stream: wall clock + max_future; replay: `--until`):
        an event after it is rejected (`future_timestamp`). A rejected event moves no time, and
        neither does one parked until its entity (or its contract) appears. A rejection comes back
        for the dead letter. Events that waited for a contract installed since the last event or
        tick are applied first (`_release_waiting`).
        """
        if self._contract_release:
            return self._apply_after_release(ev, not_after)
        if not_after is not None and ev.occurred_at > not_after:
            return [], Rejected("future_timestamp", f"occurred_at {ev.occurred_at.isoformat()} is after the "
                                                    f"bound {not_after.isoformat()}; it moves no time")
        try:
            parked = self._check(ev)
        except Rejected as rejected:
            return [], rejected
        if parked is not None:
            if parked is not _DUPLICATE:
                waiting = self.parking.park(parked, ev)
                if waiting is FULL:
                    reason = contract_reason(parked)
                    subject = contract_subject(parked)
                    what = (f"customer_id {subject!r} has no contract" if reason == "unknown_customer"
                            else f"service_id {subject!r} is not in any contract")
                    return [], Rejected(reason, f"{what} (not parked: {self.parking.contract_bytes} bytes of "
                                                f"events already wait for a contract here, the room holds "
                                                f"{self.parking.contract_room}; docs/decisions.md, \"Contract wait\")")
                if waiting is not None and content_digest(waiting) != content_digest(ev):
                    return [], Rejected("conflicting_duplicate", f"event_id {ev.event_id!r} is parked (its entity "
                                                                 "does not exist yet) with other content; the first stands")
            return [], None
        t = ev.type  # `_half` and `_apply`'s dispatch, inline: this runs once per event
        at = ev.occurred_at  # read once: a pydantic field read costs ~500 instructions (`__getattr__` hook)
        first = self.first_instant
        if first is not None and at < first and t != "contract.upserted":
            self._lower_first_instant(at)
        if t in TICKET_TYPES:
            out = self._advance_tickets(at)
            apply_event = self._apply_ticket
        else:
            if t in downtime.MONITORING_TYPES:
                out = self._advance_monitoring(at)
            else:  # a contract on an input topic: both halves know it at its time
                out = self.advance_to(at)
            apply_event = self._apply
        try:
            out.extend(apply_event(ev))
            if self.parking.events or self.parking.remembered:  # the common case: nothing to unpark
                out.extend(self._unpark(ev))
        except Rejected as rejected:
            return out, rejected
        return out, None

    def _apply_after_release(self, ev: Any, not_after: datetime | None) -> tuple[list[Output], Rejected | None]:
        """`apply`, after the events that waited for a contract installed since (`_release_waiting`)."""
        released = self._release_waiting()
        out, rejected = self.apply(ev, not_after)
        return (released + out if released else out), rejected

    def _check(self, ev: Any) -> str | None:
        """Reject what cannot apply before any time moves; return the parking key of an event
        whose entity does not exist yet (SPEC §10), None when it can apply now."""
        t = ev.type
        if t in TICKET_TYPES:
            store = self.store
            state = store.ticket(ev.ticket_id)
            self._unseen_event = self._unseen_state = None
            if state is not None:
                # An id its replay batch reads once is not among the ticket's seen ids: not looked up
                # (a byte search of the ticket's seen ids, once per event; `TicketEngine.repeated_ids`)
                repeated = self.tickets.repeated_ids
                if (repeated is None or ev.event_id in repeated) and event_digest(ev.event_id) in state.seen:
                    if state.conflicts(ev):
                        raise Rejected("conflicting_duplicate", f"event_id {ev.event_id!r} was applied to ticket "
                                                                f"{ev.ticket_id!r} with other content; the first stands")
                    return _DUPLICATE  # SPEC §2: ignored (and it moves no time)
                self._unseen_event, self._unseen_state = ev, state  # `_apply_ticket` need not look again
            if t == "ticket.opened":
                if ev.customer_id not in self.contracts:
                    return customer_key(ev.customer_id)  # waits for its contract (docs/decisions.md)
                plan = self.plan_at(ev.customer_id, ev.occurred_at)
                TicketEngine._check_priority(ev.priority.lower(), plan)
                seen = state.seen if state is not None else store.closed_digests(ev.ticket_id)
                if seen is not None and event_digest(ev.event_id) not in seen:
                    raise Rejected("duplicate_ticket", f"ticket {ev.ticket_id!r} was already opened")
                return None
            if state is None:
                if store.closed_digests(ev.ticket_id) is not None:
                    return None  # a duplicate of a closed ticket's event, or ticket_closed: `_apply` says
                return ticket_key(ev.ticket_id)
            if state.closed_at is not None and ev.occurred_at > state.closed_at \
                    and event_digest(ev.event_id) not in state.seen:
                raise Rejected("ticket_closed", f"ticket {ev.ticket_id!r} is closed; {t} at "
                                                f"{ev.occurred_at.isoformat()} is after its ticket.closed")
            if t == "ticket.priority_changed":
                TicketEngine._check_priority(ev.priority.lower(), self.ticket_plan(state))
            if ev.occurred_at < state.opened_at and event_digest(ev.event_id) not in state.seen:
                raise Rejected("orphan", f"{t} at {ev.occurred_at.isoformat()} is dated before its ticket "
                                         f"{ev.ticket_id!r} was opened ({state.opened_at.isoformat()})")
            return None
        if t in downtime.MONITORING_TYPES:
            if ev.service_id not in self.subscribers:
                return service_key(ev.service_id)  # waits for a contract naming it (docs/decisions.md)
            service = self.store.service(ev.service_id)
            fields = ev.__dict__
            self._check_month_final(ev, service)
            content = downtime.applied_content(service, downtime.record_key(t, fields), event_digest(ev.event_id))
            if content is not None:
                if content != content_digest(ev):
                    raise Rejected("conflicting_duplicate", f"event_id {ev.event_id!r} was applied to service "
                                                            f"{ev.service_id!r} with other content; the first stands")
                return _DUPLICATE  # SPEC §2: ignored (and it moves no time)
            missing = downtime.needs_entity(service, t, fields)
            if missing is None:
                return None
            return (window_key if t.startswith("maintenance.") else outage_key)(ev.service_id, missing)
        if t == "contract.upserted":
            try:
                contract = contract_from_event(ev, self.catalog)
            except ContractError as err:
                raise Rejected("invalid_contract", str(err)) from None
            self._checked_contract = (ev.event_id, contract)
            return None
        raise Rejected("unknown_type", f"type {t!r} is not an input event")

    def _check_month_final(self, ev: Any, service: downtime.ServiceState | None) -> None:
        """SPEC §10: a monitoring event that would change only months whose claim window is over
        (their state pruned: before the oldest month the service holds) is `month_final`.

        An event about an outage or window the service still holds is applied, whatever its date:
        pruning keeps exactly the records that reach the oldest month held, so the event changes
        that month or a later one, and the final months' closes stand (their records are pruned,
        so nothing revises them). Refused, a late `outage.resolved` of an outage that started in a
        final month left it open for ever: every later month closed at 0.00 % with a refund of
        nearly the whole fee (review, 2026-12-06). A new record is judged by its own reach: a
        window by its end, an outage by its start (its end is not known; a re-sent start of an
        outage pruned long ago must not open it again)."""
        held = self.service_oldest_month_held(ev.service_id)
        if held is None:
            return
        fields = ev.__dict__
        if service is not None:
            key = downtime.record_key(ev.type, fields)
            if (service.maintenance if key[0] == "m" else service.outages).get(key[2:]) is not None:
                return
        held_from = uptime.month_bounds(held)[0]
        if ev.type == "maintenance.scheduled" and fields["ends_at"] > held_from:
            return
        at = fields.get("starts_at") or ev.occurred_at
        if at < held_from:
            month = uptime.month_of(at)
            raise Rejected("month_final", f"{ev.type} at {at.isoformat()} would change only {month} and "
                                          f"earlier months of service {ev.service_id!r}, final since "
                                          f"{month}'s claim window closed "
                                          f"({uptime.claim_deadline(month).isoformat()})")

    def _unpark(self, ev: Any) -> list[Output]:
        """The events parked for the entity `ev` created, applied in (occurred_at, event_id) order.

        A ticket's parked events are applied at their own times before the ticket's clocks move to
        the half's time: judged at that time first, a ticket opened late (its reply parked, the
        partition hours ahead) fired a breach its parked reply then turned into a met and a
        retraction, a page the sorted order never gives (`_apply_ticket` holds its clocks)."""
        parking = self.parking
        if not parking and not parking.remembered:
            return []
        key = creates_key(ev)
        if key is None:
            return []
        waiting, remembered = parking.take_for_entity(key)  # with expired orphans (`Parking.remembered`)
        if not waiting:
            return []
        out: list[Output] = []
        held = ev.type == "ticket.opened"
        if held:
            self._held_ticket = ev.ticket_id
        try:
            for parked in waiting:
                more, rejected = self.apply(parked)
                out.extend(more)
                if rejected is not None and parked.event_id not in remembered:
                    # stamped with its own occurred_at, as an expired or released one: the partition's
                    # time when its entity arrived depends on the arrival order
                    out.append(self.parking.dead_letter(parked, rejected.reason, rejected.message,
                                                        parked.occurred_at))
        finally:
            if held:
                self._held_ticket = None
        if held:
            out.extend(self._release_ticket(ev.ticket_id))
        return out

    def _release_ticket(self, ticket_id: str) -> list[Output]:
        """Move a ticket held while its parked events were applied to the tickets' time."""
        state = self.store.ticket(ticket_id)
        if state is None or state.purge_at is not None or self.ticket_now is None:
            return []
        out = self._advance_ticket(state, self.ticket_now)
        if self.ticket_plan(state).attainment_quarterly:
            out += self._close_quarters(self.ticket_now)
        return out

    def _advance_ticket(self, state: TicketState, t: datetime) -> list[Output]:
        """Move one open ticket's clocks to `t`, count its outcomes, and store it."""
        plan = self.ticket_plan(state)
        emitted = self.tickets.advance(state, plan, t)
        if plan.attainment_quarterly:  # `_observe`'s own check, before the call: once per due ticket
            self._observe(emitted, plan, state)
        self.store.save_ticket(state)
        return emitted

    def _apply(self, ev: Any) -> list[Output]:
        t = ev.type
        if t in TICKET_TYPES:
            return self._apply_ticket(ev)
        if t in downtime.MONITORING_TYPES:
            return self._apply_monitoring(ev)
        if t == "contract.upserted":
            checked = self._checked_contract
            self._checked_contract = None
            if checked is not None and checked[0] == ev.event_id:
                contract = checked[1]
            else:
                try:
                    contract = contract_from_event(ev, self.catalog)
                except ContractError as err:
                    raise Rejected("invalid_contract", str(err)) from None
            self.install(contract, at=ev.occurred_at)
            out = self._release_waiting() if self._contract_release else []
            if self.monitoring_now is not None:
                out += self._close_months(self.monitoring_now)
            return out
        raise Rejected("unknown_type", f"type {t!r} is not an input event")

    def _apply_ticket(self, ev: Any) -> list[Output]:
        store = self.store
        ticket_id, t = ev.ticket_id, ev.type  # read once (pydantic fields)
        state = store.ticket(ticket_id)
        now = self.ticket_now if self.ticket_now is not None else ev.occurred_at
        if ticket_id == self._held_ticket or (t == "ticket.opened" and self.parking
                                              and ticket_key(ticket_id) in self.parking.events):
            now = ev.occurred_at  # its parked events come next, each at its own time (`_unpark`)
        if t == "ticket.opened":
            if state is not None or store.closed_digests(ticket_id) is not None:
                seen = state.seen if state is not None else store.closed_digests(ticket_id)
                if seen is not None and event_digest(ev.event_id) in seen:
                    return []
                raise Rejected("duplicate_ticket", f"ticket {ev.ticket_id!r} was already opened")
            plan = self.plan_at(ev.customer_id, ev.occurred_at)
            state, out = self.tickets.open(ev, plan, now)
            state.plan_token, state.plan = self._plans_token, plan  # `ticket_plan`'s answer, and what its clocks ran under
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
        unseen = ev is self._unseen_event and state is self._unseen_state
        self._unseen_event = self._unseen_state = None
        # `ticket_plan`'s memo read here (once per event), the call only when it is stale
        plan = state.plan if state.plan_token is self._plans_token and state.plan is not None else \
            self.ticket_plan(state)
        if t == "ticket.closed" and state.closed_at is None and (unseen or event_digest(ev.event_id) not in state.seen):
            state.closed_at = ev.occurred_at
            state.purge_at = ev.occurred_at + self.settings.parking_horizon
            if plan.attainment_quarterly:
                self.attainment.stopped(state)
        out = self.tickets.apply(state, ev, plan, now, unseen=unseen)
        if plan.attainment_quarterly:  # `_observe`'s own check, before the call: once per event
            self._observe(out, plan, state)
            if state.first_response_done:
                self.attainment.stopped(state)  # no-op when the outcome was observed
            store.save_ticket(state)
            out += self._close_quarters(now)
        else:
            store.save_ticket(state)
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
        store = self.store
        state = store.service(ev.service_id) or downtime.new_state(ev.service_id)
        fields = ev.model_dump()
        applied = downtime.apply_event(state, ev.type, fields)
        if applied.error is not None:
            raise Rejected(*applied.error)
        state = downtime.remember(applied.state, downtime.record_key(ev.type, fields), event_digest(ev.event_id),
                                  content_digest(ev))
        out: list[Output] = []
        now = self.monitoring_now
        revise: dict[str, list[str]] = {}
        horizon = self._service_next_close.get(ev.service_id)
        if now is not None and applied.affected_from is not None and horizon is not None \
                and applied.affected_from < uptime.month_bounds(horizon)[0]:
            revise = uptime.closed_months_after(state, applied.affected_from)
        if revise:
            assert now is not None
            cache = uptime.FiguresCache()  # one computation per distinct scope among the subscribers
            state = uptime.owning_emitted(state)
            for customer_id in self.subscribers[ev.service_id]:  # sorted: the same order in stream and replay
                entry = self.contracts[customer_id]
                if not self._commits_uptime(customer_id):
                    continue
                for month in revise.get(customer_id, ()):
                    state, closed_out = self._close_one(state, entry, ev.service_id, month, now, cache)
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
        # the earliest close instant at or after `t` (a month closes once time passes its close
        # instant): of the month before the one `t - delay` falls in when `t` is exactly a close
        # instant. With month_of(t - delay) a `t` landing exactly on April's close (May 1 01:00)
        # moved the check past May's close, and April stayed open until June 1 01:00 had passed.
        self._closes_checked_until = uptime.close_instant(uptime.month_of(t - delay - _MICROSECOND), delay)
        # Service by service (SPEC §11): a shared service's months are computed once per distinct
        # subscriber scope (`FiguresCache`) and closed for each subscriber in customer order.
        for service_id in sorted(self.subscribers):
            if not self.owns_service(service_id):
                continue
            state: downtime.ServiceState | None = None
            cache = uptime.FiguresCache()
            for customer_id in self.subscribers[service_id]:
                entry = self.contracts[customer_id]
                if entry.start_month is None or not self._commits_uptime(customer_id):
                    continue
                key = (customer_id, service_id)
                month = self._next_close.get(key)
                if month is None:
                    # its first close: not before the months the service's state still holds (a new
                    # subscriber of a shared service; what came before was pruned after its claim window)
                    held = self.service_oldest_month_held(service_id)
                    month = entry.start_month if held is None else max(entry.start_month, held)
                if uptime.close_instant(month, delay) >= t:
                    continue
                if state is None:
                    state = uptime.owning_emitted(self.store.service(service_id) or downtime.new_state(service_id))
                state, month = self._close_service_months(state, entry, service_id, month, t, out, cache)
                self._next_close[key] = month
                self._service_next_close[service_id] = max(month, self._service_next_close.get(service_id, month))
            if state is None:
                continue
            # Months whose claim window has passed for every subscriber can no longer change what
            # was emitted: forget them, so a service's state and its month closes do not grow with history.
            self._service_held.pop(service_id, None)
            held = self.service_oldest_month_held(service_id)
            if held is not None:
                state = downtime.prune(state, held)
            self.store.save_service(state)
        return out

    def _commits_uptime(self, customer_id: str) -> bool:
        """Whether any of the customer's terms commits to uptime (each month checks its own)."""
        return any(c.plan.uptime_commitment_percent is not None for c in self.histories.get(customer_id, ()))

    def _close_service_months(self, state: downtime.ServiceState, entry: ContractEntry, service_id: str, month: str,
                              t: datetime, out: list[Output],
                              cache: uptime.FiguresCache) -> tuple[downtime.ServiceState, str]:
        """Close `service_id`'s months from `month` while their close instant is before `t`;
        return the state and the next month to close.

        Bounded time (SPEC §10, docs/decisions.md): a month with nothing recorded (no outage,
        no window, never emitted) whose claim deadline was over `empty_month_backfill` before
        `t` is skipped, not emitted: no claim can be made on it, and a jump of time over years
        of empty months costs work for the months with data plus about a year, not per month
        of the jump."""
        delay = self.settings.month_close_delay
        customer_id = entry.terms.customer_id
        horizon = t - self.settings.empty_month_backfill
        # the first month whose claim deadline is at or after `horizon` (earlier empty ones are skipped)
        first_kept = uptime.month_of(horizon - uptime.CLAIM_WINDOW - _MICROSECOND)
        spans: list[tuple[datetime, datetime]] | None = None
        while uptime.close_instant(month, delay) < t:
            if month < first_kept and (customer_id, month) not in state.emitted:
                if spans is None:
                    spans = downtime.busy_spans(state, t)
                start, end = uptime.month_bounds(month)
                if not any(a < end and b > start for a, b in spans):
                    later = [uptime.month_of(a) for a, b in spans if a >= end]
                    month = min([first_kept, *later])
                    continue
            state, closed_out = self._close_one(state, entry, service_id, month, uptime.close_instant(month, delay),
                                                cache)
            self.month_closes += 1
            out.extend(closed_out)
            month = uptime.next_month(month)
        return state, month

    @staticmethod
    def _oldest_month_held(next_to_close: str) -> str:
        """The oldest month a service's state keeps once `next_to_close` is the next month to close."""
        return uptime.previous_month(uptime.previous_month(next_to_close))

    def oldest_month_held(self, customer_id: str, service_id: str) -> str | None:
        """The oldest month whose figures the service's state still holds (earlier ones were
        pruned after their claim window); None before its first close."""
        next_close = self._next_close.get((customer_id, service_id))
        if next_close is None or not self.settings.prune:
            return None
        return self._oldest_month_held(next_close)

    def service_oldest_month_held(self, service_id: str) -> str | None:
        """The oldest month a shared service's state still holds: the earliest over its
        subscribers that have closed a month (one still behind keeps the older months)."""
        if service_id in self._service_held:
            return self._service_held[service_id]
        held = [self.oldest_month_held(c, service_id) for c in self.subscribers.get(service_id, ())]
        known = [m for m in held if m is not None]
        oldest = self._service_held[service_id] = min(known) if known else None
        return oldest

    def subscriber_terms(self, service_id: str, month: str) -> list[Subscriber]:
        """Every subscriber of `service_id` with the terms its figures for `month` use, in customer
        order (`month_service_terms`): the commitment of the catalog version in force at the month's
        start (SPEC §14)."""
        subs = []
        for customer_id in self.subscribers.get(service_id, ()):
            terms = self.month_service_terms(customer_id, service_id, month)
            if terms is None:
                continue  # no terms in force during the month list the service
            entry, svc, plan = terms
            subs.append(Subscriber(customer_id, plan.uptime_commitment_percent, svc.fee_per_month, svc.currency,
                                   entry.scope(service_id), (entry.in_force_from, None)))
        return subs

    def month_service_terms(self, customer_id: str, service_id: str,
                            month: str) -> tuple[ContractEntry, Any, ResolvedPlan] | None:
        """The terms a customer's `month` of `service_id` is measured under: (entry, its service
        entry, the plan under the catalog version in force at the month's start); None when no
        terms in force during the month list the service.

        SPEC §14: those in force at the month's start. When they do not list the service, or their
        plan commits to no uptime, the service's contract with an uptime commitment starts in this
        month (SPEC §11) with the first terms that take effect during the month, list it and commit:
        the month is measured under those, counted from their effective_from (the entry's
        `in_force_from`; the fee prorated alike), as a new customer's first month is (review11 F1,
        F1b: before, such a month closed nothing for the service, no refund). Without such terms,
        the terms at the start (no commitment: nothing to close), else the first listing it.
        Raises Rejected (unknown_customer) when the customer has no contract."""
        start, end = uptime.month_bounds(month)
        entry = self.contract_at(customer_id, start)
        svc = entry.find_service(service_id)
        found: tuple[ContractEntry, Any, ResolvedPlan] | None = None
        if svc is not None:
            found = entry, svc, self.plan_at(customer_id, start)
            if found[2].uptime_commitment_percent is not None:
                return found
        for later in self.histories.get(customer_id, ()):
            since = later.effective_from
            if since is None or not start < since < end:
                continue
            svc = next((s for s in later.terms.services if s.service_id == service_id), None)
            if svc is None:
                continue
            entry = replace(self.contract_at(customer_id, since), in_force_from=since)
            terms = entry, svc, self._plan_under(entry, self.catalog.version_at(entry.plan.policy, start))
            if terms[2].uptime_commitment_percent is not None:
                return terms
            found = found or terms
        return found

    def month_service_ids(self, customer_id: str, month: str) -> list[str]:
        """The services a customer's `month` is measured for (`month_service_terms`), in order: those
        of the terms in force at the month's start, then those that terms taking effect during the
        month add (SPEC §11: their contract starts in the month)."""
        start, end = uptime.month_bounds(month)
        ids = [s.service_id for s in self.contract_at(customer_id, start).terms.services]
        for later in self.histories.get(customer_id, ()):
            since = later.effective_from
            if since is not None and start < since < end:
                ids += [s.service_id for s in later.terms.services if s.service_id not in ids]
        return ids

    def _month_terms(self, customer_id: str, service_id: str, month: str) -> tuple[ContractEntry, Any, Any] | None:
        """The terms a customer's close of `month` uses (`month_service_terms`): (entry, its service,
        the uptime commitment); None when no terms of the month list the service or they commit to
        no uptime (nothing to close)."""
        terms = self.month_service_terms(customer_id, service_id, month)
        if terms is None:
            return None
        entry, svc, plan = terms
        commitment = plan.uptime_commitment_percent
        if commitment is None:
            return None  # that version makes no uptime commitment: nothing to close
        return entry, svc, commitment

    def owned_services(self) -> list[str]:
        """The contracted services whose months this processor closes, sorted."""
        return sorted(s for s in self.subscribers if self.owns_service(s))

    def standing_closes(self, service_id: str, newest: int) -> dict[str, dict[str, tuple[Any, bool]]]:
        """month -> customer -> (uptime_percent, met) of the last close emitted for it, for the
        `newest` newest months the service's state holds closes of (what stands after every
        revision; the shell's gauges are rebuilt from it after a restart). Each figure is computed
        again from the state by the close's own functions, and kept only if it is the close
        emitted (its fingerprint): a month one of whose closes cannot be reproduced so is left
        out whole, never shown with part of its subscribers. Reads the state; changes nothing."""
        state = self.store.service(service_id)
        if state is None or not state.emitted:
            return {}
        by_month: dict[str, list[tuple[str, Any]]] = {}
        for (customer_id, month), record in state.emitted.items():
            by_month.setdefault(month, []).append((customer_id, record))
        cache = uptime.FiguresCache()
        out: dict[str, dict[str, tuple[Any, bool]]] = {}
        for month in sorted(by_month)[-newest:] if newest > 0 else ():
            closes: dict[str, tuple[Any, bool]] = {}
            for customer_id, record in sorted(by_month[month], key=lambda item: item[0]):
                try:
                    terms = self._month_terms(customer_id, service_id, month)
                except Rejected:  # no contract for it any more
                    terms = None
                if terms is None:
                    closes = {}
                    break
                entry, svc, commitment = terms
                figures = cache.get(state, month, uptime.month_bounds(month)[1], entry.scope(service_id),
                                    (entry.in_force_from, None))
                closed, refund = uptime.close_month(figures, customer_id=customer_id, service_id=service_id,
                                                    commitment_percent=commitment, fee_per_month=svc.fee_per_month,
                                                    currency=svc.currency)
                if uptime.fingerprint(closed, refund) != record.fingerprint:
                    closes = {}
                    break
                closes[customer_id] = (closed["uptime_percent"], bool(closed["met"]))
            if closes:
                out[month] = closes
        return out

    def _close_one(self, state: downtime.ServiceState, entry: ContractEntry, service_id: str, month: str,
                   at: datetime, cache: uptime.FiguresCache) -> tuple[downtime.ServiceState, list[Output]]:
        """Close (or revise) `month` for one subscriber. `state` comes from `uptime.owning_emitted`:
        the close is recorded in place. The month is measured under the customer's terms in force
        at its start (SPEC §14); terms that do not list the service close nothing for it."""
        customer_id = entry.terms.customer_id
        terms = self._month_terms(customer_id, service_id, month)
        if terms is None:
            return state, []
        entry, svc, commitment = terms
        before = state.emitted.get((customer_id, month))
        state, closed, refund = uptime.close_and_record(
            state, customer_id=customer_id, month=month,
            commitment_percent=commitment, fee_per_month=svc.fee_per_month,
            currency=svc.currency, scope=entry.scope(service_id), in_force=(entry.in_force_from, None),
            cache=cache, in_place=True)
        out: list[Output] = []
        if closed is not None:
            rev = str(closed["revision"])
            out.append(Output("uptime.month_closed", at, customer_id,
                              output_event_id("uptime.month_closed", customer_id, service_id, month, rev), closed))
            # Not on the wire (the models ignore it): the amount of the refund this output supersedes,
            # so the shell's refund totals count each month once (a revision adds its difference).
            superseded = before.refund_amount if before is not None and before.refund_revision else "0"
            if refund is not None:
                refund = {**refund, "superseded_amount": superseded}
                out.append(Output("refund.eligible", at, customer_id,
                                  output_event_id("refund.eligible", customer_id, service_id, month, rev), refund))
            elif before is not None and before.refund_revision:
                # SPEC §10: the month is met after all; the refund standing for it is withdrawn
                withdrawn = {"customer_id": customer_id, "service_id": service_id, "month": month,
                             "revision": closed["revision"],
                             "refund_event_id": month_event_id("refund.eligible", customer_id, service_id, month,
                                                               before.refund_revision),
                             "reason": f"revision {rev} of {month} meets the commitment "
                                       f"({closed['uptime_percent']} % >= {closed['commitment_percent']} %)",
                             "superseded_amount": superseded, "currency": svc.currency}  # these two: not on the wire
                out.append(Output("refund.withdrawn", at, customer_id,
                                  refund_withdrawn_event_id(customer_id, service_id, month, closed["revision"]),
                                  withdrawn))
        return state, out

    def _close_quarters(self, t: datetime) -> list[Output]:
        quarters = self._attainment_quarters
        if quarters is None:  # recomputed only when a contract (or the first instant) changes
            quarters = self._attainment_quarters = self._quarters_to_report()
        if not quarters:
            return []
        return self.attainment.close_due(t, self.settings.quarter_close_delay, quarters)

    def _quarters_to_report(self) -> dict[str, Spans]:
        """Per customer, the quarters in which terms with quarterly attainment (Rescale) were in
        force, from its whole history (SPEC §14: terms replaced by a later effective_from still
        hold for what happened before it; review F8: the latest terms alone lost a Rescale
        quarter after a move to Vectorize, and reported quarters before a move to Rescale).
        Undated first terms start at the first instant's month, as its months do (`_entry`)."""
        out: dict[str, Spans] = {}
        for customer_id, history in sorted(self.histories.items()):
            start_month = self.contracts[customer_id].start_month
            undated_start = None if start_month is None else uptime.month_bounds(start_month)[0]
            terms = [(c.effective_from or undated_start,
                      history[i + 1].effective_from if i + 1 < len(history) else None,
                      c.plan.attainment_quarterly)
                     for i, c in enumerate(history)]
            spans = attainment_spans(terms)
            if spans:
                out[customer_id] = spans
        return out

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
            "now": self.ticket_now.isoformat() if self.ticket_now else None,
            "now_monitoring": self.monitoring_now.isoformat() if self.monitoring_now else None,
            "first": self.first_instant.isoformat() if self.first_instant else None,
            "close": sorted([c, s, m] for (c, s), m in self._next_close.items()),
            "parked": self.parking.to_json(),
        }, separators=(",", ":"))
        return head[:-1] + ',"attainment":' + self._attainment_json + "}"

    def restore_month_closes(self, next_close: dict[tuple[str, str], str]) -> None:
        """The month each (customer, service) closes next, as a snapshot kept it, with what derives
        from it: each service's revision horizon (a late event revises the closed months before
        it) and the held months, recomputed. Set alone (an old two-processor snapshot's table), the
        horizon stayed empty and no late event revised a closed month until the next close."""
        self._next_close = next_close
        self._service_next_close = {}
        self._service_held = {}
        self._closes_checked_until = None
        for (_c, s), m in next_close.items():
            self._service_next_close[s] = max(m, self._service_next_close.get(s, m))

    def restore(self, text: str | bytes) -> None:
        """Inverse of `snapshot` (contracts are installed separately). Also reads a snapshot
        written before the attainment book moved its per-ticket entries to the tickets
        (see `policies.attainment._upcast_v1`)."""
        data = json.loads(text)
        self.ticket_now = datetime.fromisoformat(data["now"]) if data["now"] else None
        monitoring = data.get("now_monitoring", data["now"])  # absent before the halves' clocks moved here
        self.monitoring_now = datetime.fromisoformat(monitoring) if monitoring else None
        self.restore_month_closes({(c, s): m for c, s, m in data["close"]})
        self.parking.load(data.get("parked", []))
        # contracts may be installed already (and with release=False, their months due)
        self._contract_release = self._months_due or bool(self.parking.contract_keys())
        self.attainment.load(data["attainment"])
        self._attainment_json = None
        self._closes_checked_until = None
        first = data.get("first")
        if first is not None:
            self._set_first_instant(datetime.fromisoformat(first))
        elif (reached := self.slowest_now) is not None:
            # written before the first instant was kept: the start of the oldest month still to close,
            # else the time reached (an undated contract installed later starts no later than that)
            pending = [uptime.month_bounds(m)[0] for m in self._next_close.values()]
            self._set_first_instant(min([*pending, reached]))
