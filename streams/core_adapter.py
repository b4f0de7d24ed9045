"""The real core behind the Faust shell: codec, processor per partition, table-backed store.

The store keeps live objects (ticket clocks, service ledgers) in memory for the partitions
this worker owns, and stages their JSON in the partition store only when `flush()` is called:
the shell flushes after the batch's outputs have been acknowledged by the broker and then
commits the partition's staged writes atomically (`PartitionStore.write_ahead`). A crash
before that replays the batch from the last committed offsets over the previous state,
which re-derives the same outputs with the same event ids (at-least-once, idempotent);
a state can never be persisted ahead of the outputs it caused.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Collection

from events.codec import ALL_REASONS, DeadLetterReason, dead_letter_event, decode
from events.models import DeadLetter, InputEvent
from policies.attainment import PARTIAL, add_partial
from policies.catalog import Catalog, ContractError, default_catalog
from policies.contracts import Contract, contract_from_event, history_key, recorded_order
from policies.downtime import ServiceState
from policies.outputs import Output, Rejected
from policies.processor import Processor, Settings
from policies.tickets import TicketState, open_clock_count
from streams.store import PartitionStore
from streams.wire import to_bytes

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DEFAULT_MAX_FUTURE = timedelta(hours=1)  # SPEC §10
_CLOSED = '{"closed":'  # prefix of a closed-ticket tombstone in the tickets table


class TableStore:
    """`policies.processor.Store` over one partition's tables, with a write-behind cache."""

    def __init__(self, partition_store: PartitionStore) -> None:
        self.p = partition_store
        self.tickets: dict[str, TicketState] = {}
        self.closed: dict[str, Collection[int]] = {}
        self.services: dict[str, ServiceState] = {}
        self._dirty_tickets: set[str] = set()
        self._dirty_services: set[str] = set()
        self._closing: dict[str, TicketState] = {}  # tickets closed since the last flush (their count goes)
        #: provider -> open clocks (`open_clock_count`) of the partition's stored tickets, kept by
        #: `flush` (each written ticket adds the change of its own count); None: not counted (a
        #: state written before the count was kept: `PartitionProcessor.open_clock_counts`).
        #: Replaced, never changed in place: the metrics thread reads it.
        self.open_clocks: dict[str, int] | None = None
        self.provider_of: Callable[[TicketState], str] = lambda state: "unknown"

    # tickets
    def _load_ticket(self, ticket_id: str) -> None:
        if ticket_id in self.tickets or ticket_id in self.closed:
            return
        raw = self.p.get_ticket(ticket_id)
        if raw is None:
            return
        if raw.startswith(_CLOSED):
            self.closed[ticket_id] = json.loads(raw)["seen"]
        else:
            self.tickets[ticket_id] = TicketState.from_json(raw)

    def ticket(self, ticket_id: str) -> TicketState | None:
        self._load_ticket(ticket_id)
        return self.tickets.get(ticket_id)

    def save_ticket(self, state: TicketState) -> None:
        self.tickets[state.ticket_id] = state
        self._dirty_tickets.add(state.ticket_id)
        self.p.schedule(state.ticket_id, state.next_wake)

    def close_ticket(self, state: TicketState) -> None:
        self._closing[state.ticket_id] = state
        self.tickets.pop(state.ticket_id, None)
        self.closed[state.ticket_id] = list(state.seen)
        self._dirty_tickets.add(state.ticket_id)
        self.p.schedule(state.ticket_id, None)

    def closed_digests(self, ticket_id: str) -> Collection[int] | None:
        self._load_ticket(ticket_id)
        return self.closed.get(ticket_id)

    def due_tickets(self, t: datetime) -> list[str]:
        return self.p.pop_due(t)

    # services
    def service(self, service_id: str) -> ServiceState | None:
        state = self.services.get(service_id)
        if state is None:
            raw = self.p.get_service(service_id)
            if raw is not None:
                state = self.services[service_id] = ServiceState.from_json(raw)
        return state

    def save_service(self, state: ServiceState) -> None:
        self.services[state.service_id] = state
        self._dirty_services.add(state.service_id)

    def _count_open_clocks(self) -> None:
        """Move each written ticket in the partition's count from what was counted for it (its
        `stored_open_clocks` under its `counted_provider`, stored with it) to its clocks now under
        the provider of its plan now. Subtracting exactly what was added keeps the count right when
        a ticket's provider or plan changed in between (a contract correction, a target removed).
        Cost per ticket written: counting its few clocks, and a provider lookup memoised on the state."""
        counts = self.open_clocks
        closing, self._closing = self._closing, {}
        if counts is None:
            return
        changed: dict[str, int] = {}
        for ticket_id in self._dirty_tickets:
            state = self.tickets.get(ticket_id)
            if state is None:
                state = closing.get(ticket_id)
                if state is None:
                    continue
                new, provider = 0, ""
            elif state.derived:
                new = open_clock_count((state,))
                provider = self.provider_of(state) if new else ""
            else:
                continue  # saved without being derived (waiting for its purge): its clocks did not move
            old, counted = state.stored_open_clocks, state.counted_provider
            if counted is None:  # stored by a version before "oc": counted (recount) under its plan now
                counted = self.provider_of(state) if old else ""
            if old:
                changed[counted] = changed.get(counted, 0) - old
            if new:
                changed[provider] = changed.get(provider, 0) + new
            state.stored_open_clocks, state.counted_provider = new, provider  # written with it ("oc")
        if any(changed.values()):
            updated = dict(counts)
            for provider, delta in changed.items():
                updated[provider] = updated.get(provider, 0) + delta
            self.open_clocks = updated

    def flush(self) -> None:
        """Write the changed states to the tables (their changelogs)."""
        self._count_open_clocks()
        for ticket_id in sorted(self._dirty_tickets):
            state = self.tickets.get(ticket_id)
            if state is not None:
                self.p.put_ticket(ticket_id, state.to_json())
            elif ticket_id in self.closed:
                self.p.put_ticket(ticket_id, json.dumps({"closed": True, "seen": list(self.closed[ticket_id])},
                                                         separators=(",", ":")))
        for service_id in sorted(self._dirty_services):
            self.p.put_service(service_id, self.services[service_id].to_json())
        self._dirty_tickets.clear()
        self._dirty_services.clear()


def _by_instant(out: Output) -> datetime:
    return out.occurred_at


def _wall_clock() -> datetime:
    return datetime.now(timezone.utc)


class PartitionProcessor:
    """One partition's processing: one `policies.processor.Processor` over the partition's tables.

    The time rule (a ticket half and a monitoring half, each with its own time; ticks move
    both) lives in the core, so stream and replay run it by construction. This adapter adds
    what only the shell knows: the table-backed store, persistence of the processor's own
    state, and the wall clock that bounds event time (SPEC §10: `occurred_at` more than
    `max_future` ahead of it is `future_timestamp`).
    """

    TICKETS_META = "processor"
    MONITORING_META = "processor.monitoring"  # written by older versions (two processors per partition)
    #: provider -> open clocks of the partition's stored tickets, written with them in each unit (one
    #: write-ahead record) so a new owner reads the figure at once (the open-clocks gauge): a last key
    #: of the processor's snapshot (TICKETS_META), which every version writes at every flush. A
    #: version that does not keep the count (a rolling upgrade, a roll-back of the deployment)
    #: writes its snapshot without it, so the count is absent and made again, never trusted stale.
    OPEN_CLOCKS_KEY = "open_clocks"
    #: where the count was kept before (a meta of its own, which an older version leaves as it was):
    #: no longer read; removed at the first flush, so a version that reads it counts afresh
    OPEN_CLOCKS_META = "open_clocks"

    def __init__(self, catalog: Catalog, partition_store: PartitionStore, owns_service: Callable[[str], bool],
                 settings: Settings, max_future: timedelta = DEFAULT_MAX_FUTURE,
                 clock: Callable[[], datetime] = _wall_clock) -> None:
        self.partition = partition_store.partition
        self.store = TableStore(partition_store)
        self.core = Processor(catalog, self.store, settings, owns_service, partition=self.partition)
        snapshot = partition_store.get_meta(self.TICKETS_META)
        counted = None
        if snapshot is not None:
            self.core.restore(snapshot)
            # parsed a second time, once per processor built (the core's restore ignores the key)
            counted = json.loads(snapshot).get(self.OPEN_CLOCKS_KEY)
        old_monitoring = partition_store.get_meta(self.MONITORING_META)
        if old_monitoring is not None:  # the old monitoring half kept the month closes and its own time
            data = json.loads(old_monitoring)
            self.core.monitoring_now = datetime.fromisoformat(data["now"]) if data["now"] else None
            self.core.restore_month_closes({(c, s): m for c, s, m in data["close"]})
        self.partition_store = partition_store
        self.max_future = max_future
        self.clock = clock
        self.store.provider_of = self._provider_of
        if counted is not None:
            self.store.open_clocks = counted
        self._old_count_meta = partition_store.get_meta(self.OPEN_CLOCKS_META) is not None

    def _provider_of(self, state: TicketState) -> str:
        """The provider a ticket's clocks count under: the policy of the plan it is measured under."""
        try:
            return self.core.ticket_plan(state).policy
        except Rejected:  # its customer's contract is gone: counted apart, never dropped
            return "unknown"

    @property
    def open_clock_counts(self) -> dict[str, int] | None:
        """provider -> clocks running in this partition's tickets, stored ones included (read by the
        metrics thread); None until `count_open_clocks` ran on a state written before the count."""
        return self.store.open_clocks

    def count_open_clocks(self) -> dict[str, int]:
        """The count, made from the tables when the partition's state has none (written by a version
        that does not keep it): every ticket with a wake in the due index (a running clock has one),
        as counted for it when stored ("oc"), else derived on a copy (stored by a version before
        it). Call with the contracts installed (a ticket's plan needs them)."""
        counts = self.store.open_clocks
        if counts is not None:
            return counts
        counts = {}
        engine, store = self.core.tickets, self.store
        for ticket_id in self.partition_store.due.keys():
            raw = self.partition_store.get_ticket(ticket_id)
            if raw is None or raw.startswith(_CLOSED):
                continue
            state = TicketState.from_json(raw)
            provider = state.counted_provider
            if provider is not None:
                n = state.stored_open_clocks  # what was counted for it, whatever its plan says now
            else:
                try:
                    n = engine.stored_open_clocks(state, self.core.ticket_plan(state))
                except Rejected:
                    continue  # no contract for it: its clocks cannot be derived (nor can they run)
                provider = self._provider_of(state)
            if n:
                counts[provider] = counts.get(provider, 0) + n
        # Tickets in memory changed since the last commit were counted above from their stored form,
        # which their `stored_open_clocks` / `counted_provider` hold too: `flush` moves them from it.
        store.open_clocks = counts
        return counts

    @property
    def now(self) -> datetime | None:
        return self.core.now

    @property
    def slowest_now(self) -> datetime | None:
        return self.core.slowest_now

    def upsert_contract(self, contract: tuple[Contract, datetime], release: bool = True) -> list[Output]:
        """Install the contract; `release=False`: the events that waited for it are applied at the
        partition's next event or tick, not now (`Processor.upsert_contract`)."""
        return self.core.upsert_contract(contract, release=release)

    def apply(self, event: Any) -> tuple[list[Output], Any]:
        return self.core.apply(event, not_after=self.clock() + self.max_future)

    def advance_to(self, t: datetime) -> list[Output]:
        return self.core.advance_to(t)

    def flush(self) -> None:
        """Stage the changed state in the partition store (the shell commits it atomically)."""
        if self.store.open_clocks is None:
            self.count_open_clocks()
        self.store.flush()
        counts = json.dumps({p: n for p, n in sorted((self.store.open_clocks or {}).items()) if n},
                            separators=(",", ":"))
        snapshot = self.core.snapshot()  # a JSON object: the count goes in as its last key
        self.partition_store.put_meta(self.TICKETS_META, f'{snapshot[:-1]},"{self.OPEN_CLOCKS_KEY}":{counts}}}')
        if self._old_count_meta:
            self.partition_store.put_meta(self.OPEN_CLOCKS_META, None)
            self._old_count_meta = False

    def persist(self) -> None:
        """`flush` and commit at once, for synchronous backends (tests, benchmarks)."""
        self.flush()
        self.partition_store.commit()

    def open_clocks(self) -> int:
        return open_clock_count(self.store.tickets.values())


class RealCore:
    """The `streams.app.Core` protocol over events/ and policies/."""

    def __init__(self, settings: Any = None, catalog: Catalog | None = None,
                 core_settings: Settings = Settings()) -> None:
        self.catalog = catalog or default_catalog()
        self.settings = settings
        self.core_settings = core_settings
        self.clock: Callable[[], datetime] = _wall_clock  # tests pin it
        self.processors: dict[int, PartitionProcessor] = {}

    def decode(self, raw: bytes | None) -> InputEvent:
        if raw is None:
            raise ValueError("invalid_json: empty message (a tombstone) is not an event")
        result = decode(raw)
        if isinstance(result, DeadLetterReason):
            raise ValueError(f"{result.code}: {result.message}")
        return result

    def contract_of(self, event: InputEvent) -> tuple[str, tuple[Contract, datetime]]:
        if event.type != "contract.upserted":
            raise ValueError(f"unknown_type: {event.type!r} on the contracts topic (expected contract.upserted)")
        try:
            contract = contract_from_event(event, self.catalog)
        except ContractError as err:
            raise ValueError(f"invalid_contract: {err}") from None
        return contract.customer_id, (contract, event.occurred_at)

    def contract_key(self, contract: tuple[Contract, datetime]) -> str:
        return history_key(contract[0])

    def contract_order(self, contract: tuple[Contract, datetime]) -> tuple[datetime, str]:
        return recorded_order(contract[0], contract[1])

    def new_processor(self, store: PartitionStore, owns_service: Callable[[str], bool]) -> PartitionProcessor:
        max_future = getattr(self.settings, "max_future", None) or DEFAULT_MAX_FUTURE
        if not isinstance(max_future, timedelta):  # seconds
            max_future = timedelta(seconds=float(max_future))
        proc = PartitionProcessor(self.catalog, store, owns_service, self.core_settings, max_future, self.clock)
        self.processors[store.partition] = proc
        return proc

    def encode(self, output: Output | DeadLetter) -> bytes:
        if isinstance(output, DeadLetter):
            from events.codec import encode

            return encode(output)
        return to_bytes(output)

    # internal attainment partials (stream mode): one partition's quarterly counts
    def encode_internal(self, output: Output) -> bytes:
        return json.dumps({"occurred_at": output.occurred_at.isoformat(), "event_id": output.event_id,
                           **output.fields}, separators=(",", ":")).encode()

    def decode_internal(self, raw: bytes) -> Output:
        data = json.loads(raw)
        at = datetime.fromisoformat(data.pop("occurred_at"))
        return Output(PARTIAL, at, data["customer_id"], data.pop("event_id"), data)

    def attainment_report(self, parts: dict[str, list[Any]], partial: Output, partitions: int) -> Output | None:
        """The quarter's report once every partition's counts are in (`parts`: partition -> [measured, met, at])."""
        return add_partial(parts, partial, partitions)

    def output_type(self, output: Output | DeadLetter) -> str:
        return output.type

    def output_field(self, output: Output | DeadLetter, name: str) -> str | None:
        if isinstance(output, Output):
            value = output.fields.get(name)
        else:
            value = getattr(output, name, None)
        return None if value is None else str(value)

    def event_type(self, event: InputEvent) -> str:
        return event.type

    def dead_letter(self, source: dict[str, Any], raw: bytes | None, error: str) -> DeadLetter:
        code, _, message = error.partition(": ")
        if not message or code not in ALL_REASONS:
            code, message = "rejected", error
        stamp = source.get("timestamp")
        at = None
        if stamp is not None:  # stream: the input record's timestamp (seconds), identical on redelivery
            try:
                at = datetime.fromtimestamp(round(float(stamp), 3), timezone.utc)
            except (OverflowError, OSError, ValueError):  # a producer-set timestamp out of range
                at = None
        if at is None:
            proc = self.processors.get(source.get("partition", -1))
            at = proc.now if proc is not None and proc.now is not None else EPOCH
        where = f"{source.get('topic')}[{source.get('partition')}]@{source.get('offset')}"
        return dead_letter_event(where, raw or b"", DeadLetterReason(code, message), at)
