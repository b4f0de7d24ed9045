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
from datetime import datetime, timezone
from typing import Any, Callable, Collection

from events.codec import DeadLetterReason, dead_letter_event, decode
from events.models import DeadLetter
from policies.attainment import PARTIAL
from policies.attainment import report as attainment_report
from policies.catalog import Catalog, ContractError, default_catalog
from policies.contracts import Contract, contract_from_event
from policies import downtime
from policies.downtime import ServiceState
from policies.outputs import Output
from policies.processor import Processor, Settings
from policies.tickets import TicketState
from streams.store import PartitionStore
from streams.wire import to_bytes

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
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

    def flush(self) -> None:
        """Write the changed states to the tables (their changelogs)."""
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


class _ServicesView:
    """The monitoring half's view of the store: services only. Its time must never fire a
    ticket deadline (the due index belongs to the ticket half)."""

    def __init__(self, store: TableStore) -> None:
        self._store = store

    def service(self, service_id: str) -> ServiceState | None:
        return self._store.service(service_id)

    def save_service(self, state: ServiceState) -> None:
        self._store.save_service(state)

    def due_tickets(self, t: datetime) -> list[str]:
        return []

    def ticket(self, ticket_id: str) -> None:
        return None

    def closed_digests(self, ticket_id: str) -> None:
        return None


class _MonitoringSide(Processor):
    """The monitoring half of a partition: services, month closes; no quarterly attainment
    (the ticket half reports it: two partials for one partition would be summed twice)."""

    def _close_quarters(self, t: datetime) -> list[Output]:
        return []


def _by_instant(out: Output) -> datetime:
    return out.occurred_at


class PartitionProcessor:
    """One partition's processing: a ticket half and a monitoring half over one store.

    Each input topic-partition has its own time. Kafka orders a topic-partition, not the
    ticket and monitoring topics against each other: two agents consume them independently,
    and in a backfill the smaller monitoring topic races ahead. With one shared time every
    ticket event behind it would be judged late (breaches fired, then retracted). Ticket
    clocks and quarterly attainment follow the ticket events' time, downtime and month closes
    the monitoring events' time; a caught-up tick moves both. The halves share nothing but the
    contracts: tickets and due index on one side, services on the other.
    """

    TICKETS_META = "processor"
    MONITORING_META = "processor.monitoring"

    def __init__(self, catalog: Catalog, partition_store: PartitionStore, owns_service: Callable[[str], bool],
                 settings: Settings) -> None:
        self.partition = partition_store.partition
        self.store = TableStore(partition_store)
        self.core = Processor(catalog, self.store, settings, lambda _service: False, partition=self.partition)
        self.monitoring = _MonitoringSide(catalog, _ServicesView(self.store), settings, owns_service,
                                          partition=self.partition)
        for side, name in ((self.core, self.TICKETS_META), (self.monitoring, self.MONITORING_META)):
            snapshot = partition_store.get_meta(name)
            if snapshot is not None:
                side.restore(snapshot)
        self.partition_store = partition_store

    def _times(self) -> list[datetime]:
        return [t for t in (self.core.now, self.monitoring.now) if t is not None]

    @property
    def now(self) -> datetime | None:
        """The later of the two halves' times."""
        return max(self._times(), default=None)

    @property
    def slowest_now(self) -> datetime | None:
        """The earlier of the two halves' times (what a tick's catch-up steps from)."""
        return min(self._times(), default=None)

    def upsert_contract(self, contract: tuple[Contract, datetime]) -> list[Output]:
        terms, at = contract
        out: list[Output] = []
        for side in (self.core, self.monitoring):
            side.install(terms, at=at)
            if side.now is not None:
                out += side.advance_to(side.now)
        return sorted(out, key=_by_instant)

    def apply(self, event: Any) -> tuple[list[Output], Any]:
        if event.type in downtime.MONITORING_TYPES:
            return self.monitoring.apply(event)
        if event.type == "contract.upserted":  # on an input topic: both halves must know it
            out, rejected = self.monitoring.apply(event)
            if rejected is not None:
                return out, rejected
            more, rejected = self.core.apply(event)
            return sorted(out + more, key=_by_instant), rejected
        return self.core.apply(event)

    def advance_to(self, t: datetime) -> list[Output]:
        return sorted(self.core.advance_to(t) + self.monitoring.advance_to(t), key=_by_instant)

    def flush(self) -> None:
        """Stage the changed state in the partition store (the shell commits it atomically)."""
        self.store.flush()
        self.partition_store.put_meta(self.TICKETS_META, self.core.snapshot())
        self.partition_store.put_meta(self.MONITORING_META, self.monitoring.snapshot())

    def persist(self) -> None:
        """`flush` and commit at once, for synchronous backends (tests, benchmarks)."""
        self.flush()
        self.partition_store.commit()

    def open_clocks(self) -> int:
        return sum(1 for st in self.store.tickets.values() for s in st.slots if not s.done and s.pending)


class RealCore:
    """The `streams.app.Core` protocol over events/ and policies/."""

    def __init__(self, settings: Any = None, catalog: Catalog | None = None,
                 core_settings: Settings = Settings()) -> None:
        self.catalog = catalog or default_catalog()
        self.core_settings = core_settings
        self.processors: dict[int, PartitionProcessor] = {}

    def decode(self, raw: bytes | None) -> Any:
        if raw is None:
            raise ValueError("invalid_json: empty message (a tombstone) is not an event")
        result = decode(raw)
        if isinstance(result, DeadLetterReason):
            raise ValueError(f"{result.code}: {result.message}")
        return result

    def contract_of(self, event: Any) -> tuple[str, tuple[Contract, datetime]]:
        if event.type != "contract.upserted":
            raise ValueError(f"unknown_type: {event.type!r} on the contracts topic (expected contract.upserted)")
        try:
            contract = contract_from_event(event, self.catalog)
        except ContractError as err:
            raise ValueError(f"invalid_contract: {err}") from None
        return contract.customer_id, (contract, event.occurred_at)

    def new_processor(self, store: PartitionStore, owns_service: Callable[[str], bool]) -> PartitionProcessor:
        proc = PartitionProcessor(self.catalog, store, owns_service, self.core_settings)
        self.processors[store.partition] = proc
        return proc

    def encode(self, output: Any) -> bytes:
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

    def attainment_report(self, parts: dict[str, list], partial: Output, partitions: int) -> Output | None:
        """The quarter's report once every partition's counts are in (`parts`: partition -> [measured, met, at])."""
        if len(parts) < partitions:
            return None
        f = partial.fields
        return attainment_report(f["customer_id"], f["quarter"],
                                 max(datetime.fromisoformat(at) for _, _, at in parts.values()),
                                 sum(m for m, _, _ in parts.values()), sum(n for _, n, _ in parts.values()))

    def output_type(self, output: Any) -> str:
        return output.type

    def output_field(self, output: Any, name: str) -> str | None:
        if isinstance(output, Output):
            value = output.fields.get(name)
        else:
            value = getattr(output, name, None)
        return None if value is None else str(value)

    def event_type(self, event: Any) -> str:
        return event.type

    def dead_letter(self, source: dict, raw: bytes | None, error: str) -> DeadLetter:
        code, _, message = error.partition(": ")
        if not message or not code.replace("_", "").isalpha() or not code.islower():
            code, message = "rejected", error
        stamp = source.get("timestamp")
        if stamp is not None:  # stream: the input record's timestamp (seconds), identical on redelivery
            at = datetime.fromtimestamp(round(float(stamp), 3), timezone.utc)
        else:
            proc = self.processors.get(source.get("partition", -1))
            at = proc.now if proc is not None and proc.now is not None else EPOCH
        where = f"{source.get('topic')}[{source.get('partition')}]@{source.get('offset')}"
        return dead_letter_event(where, raw or b"", DeadLetterReason(code, message), at)
