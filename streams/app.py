"""The Faust app: topics, tables, agents and ticks around the pure core.

`build_app(settings, core)` returns a `faust.App` whose `.slaproc` attribute is the
`StreamWorker` holding the per-partition Processors. The shell does I/O only:
bytes in -> `core.decode` -> `Processor.apply` -> outputs routed to topics (SPEC §1);
anything the core rejects goes to the dead-letter topic and the stream goes on.

Delivery is at-least-once (Tansu has no transactions): Faust flushes the producer
before it commits offsets, and a crash replays events whose outputs may already be
out; the core's deterministic output ids and input-id de-duplication make that safe.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol

import faust
from aiokafka.errors import (CorruptRecordException, InvalidTimestampError, MessageSizeTooLargeError,
                             RecordListTooLargeError)
from aiokafka.partitioner import murmur2

from events.codec import DEFAULT_MAX_BYTES, Reason
from streams import compat, kafka_config
from streams.kafka_admin import bootstrap_servers, create_topics
from streams.health import Health, broker_reachable
from streams.settings import WorkerSettings
from streams.store import STATE_TABLES, FaustTableBackend, PartitionStore
from streams.ticks import CaughtUpTracker, decode_tick, encode_tick, tick_target
from streams.topic_configs import topic_config

if TYPE_CHECKING:  # the core's types, for the Core port; the app imports the core lazily (build_app)
    from events.models import DeadLetter, InputEvent
    from policies.contracts import Contract
    from policies.outputs import Output
    from streams.core_adapter import PartitionProcessor

__all__ = [
    "CONTRACTS", "TICKET_EVENTS", "MONITORING_EVENTS", "INPUT_TOPICS", "OUTPUT_TOPICS",
    "OUTPUT_ROUTES", "DEAD_LETTER", "Core", "Observer", "StreamWorker", "build_app",
    "partition_for_key",
]

log = logging.getLogger(__name__)

# SPEC §1 (names before the prefix).
CONTRACTS = "sla.contracts"
TICKET_EVENTS = "sla.ticket-events"
MONITORING_EVENTS = "sla.monitoring-events"
INPUT_TOPICS = (CONTRACTS, TICKET_EVENTS, MONITORING_EVENTS)
BREACHES, WARNINGS, NOTICES = "sla.breaches", "sla.warnings", "sla.notices"
REFUNDS, DEAD_LETTER = "sla.refund-eligibility", "sla.dead-letter"
OUTPUT_TOPICS = (BREACHES, WARNINGS, NOTICES, REFUNDS, DEAD_LETTER)

#: output type -> (topic, field whose value is the message key; None = no key)
OUTPUT_ROUTES: dict[str, tuple[str, str | None]] = {
    "sla.breached": (BREACHES, "ticket_id"),
    "sla.breach_retracted": (BREACHES, "ticket_id"),
    "sla.met": (BREACHES, "ticket_id"),
    "sla.met_retracted": (BREACHES, "ticket_id"),  # SPEC §10
    "sla.at_risk": (WARNINGS, "ticket_id"),
    "ticket.priority_change_rejected": (NOTICES, "ticket_id"),
    "ticket.priority_adjusted": (NOTICES, "ticket_id"),
    "ticket.priority_notice_retracted": (NOTICES, "ticket_id"),  # SPEC §10
    "sla.attainment_reported": (NOTICES, "customer_id"),
    "uptime.month_closed": (REFUNDS, "customer_id"),
    "refund.eligible": (REFUNDS, "customer_id"),
    "refund.withdrawn": (REFUNDS, "customer_id"),  # SPEC §10
    "dead_letter": (DEAD_LETTER, None),
    "attainment.partial": (None, "customer_id"),  # internal topic, summed by the attainment agent
}


class Core(Protocol):
    """What the shell needs from the pure core: `streams.core_adapter.RealCore` over events/ and
    policies/ (tests put fakes in its place). Outputs the shell routes are the core's `Output`
    records and the codec's `DeadLetter`."""

    def decode(self, raw: bytes | None) -> InputEvent:
        """Bytes of one input message -> input event. Raises ValueError ("<reason>: <message>")."""

    def contract_of(self, event: InputEvent) -> tuple[str, tuple[Contract, datetime]]:
        """A decoded contract.upserted -> (customer_id, (Contract, its occurred_at)). Raises ValueError."""

    def contract_key(self, contract: tuple[Contract, datetime]) -> str:
        """The contracts table's key of a contract from `contract_of`: one per customer and
        effective_from (SPEC §14), sorting as the effective_froms do. Optional: a core without
        contract histories keys by customer_id."""

    def contract_order(self, contract: tuple[Contract, datetime]) -> Any:
        """How two contracts of one `contract_key` compare: the greater stands, whatever the arrival
        order (the later record time; SPEC §10). Optional: without it the last read stands."""

    def new_processor(self, store: PartitionStore, owns_service: Callable[[str], bool]) -> PartitionProcessor:
        """The partition's processor over `store` (apply / advance_to / upsert_contract / now).
        `upsert_contract(contract, release=True)`: with release=False, events that waited for the
        contract are applied at the partition's next `apply` / `advance_to`, not by this call."""

    def encode(self, output: Output | DeadLetter) -> bytes:
        """An output event -> UTF-8 JSON bytes."""

    def encode_internal(self, output: Output) -> bytes:
        """An `attainment.partial` -> the internal topic's bytes."""

    def decode_internal(self, raw: bytes) -> Output:
        """The internal topic's bytes -> the `attainment.partial`."""

    def attainment_report(self, parts: dict[str, list[Any]], partial: Output, partitions: int) -> Output | None:
        """Fold one partition's partial into its quarter; the report once every partition's are in."""

    def output_type(self, output: Output | DeadLetter) -> str: ...

    def output_field(self, output: Output | DeadLetter, name: str) -> str | None: ...

    def event_type(self, event: InputEvent) -> str:
        """Input event type (metrics label)."""

    def dead_letter(self, source: dict[str, Any], raw: bytes | None, error: str) -> DeadLetter:
        """The dead_letter output for a rejected message."""


class Observer:
    """Hooks for metrics (streams/metrics.py); the default does nothing."""

    def event_in(self, event_type: str) -> None: ...
    def dead_letter(self, reason: str) -> None: ...
    def outputs(self, outputs: Sequence[Any], partition: int | None = None) -> None: ...
    def tick(self, partition: int, advanced: bool, target: datetime, now: datetime | None) -> None: ...
    def batch(self, seconds: float) -> None: ...
    def rebalance(self) -> None: ...
    def partition_dropped(self, partition: int) -> None: ...
    def misrouted(self, topic: str) -> None: ...
    def copy_dropped(self, reason: str) -> None: ...
    def processor_created(self, partition: int, processor: Any) -> None:
        """A partition's processor was built from its stored state (start, rebalance, roll-back),
        its contracts installed: gauges derived from that state are rebuilt here."""


#: The header a forwarded copy carries (`topic/partition/offset` of the record it copies): a copy
#: is never forwarded again (docs/stream.md, "Misrouted records"), and a copy of a record forwarded
#: before (a re-read from offset 0) that the core refuses as final is dropped, not dead-lettered.
FORWARDED_FROM = "slaproc-forwarded-from"

#: What the core can refuse a repeated copy for although the copy is the record's own content:
#: its month was pruned since the first copy was applied (SPEC §10), so the event-id
#: de-duplication can no longer see it. A repeat of a ticket event is de-duplicated silently.
REPEATED_COPY_REASONS = frozenset({Reason.MONTH_FINAL.value})

#: Faust's producer is capped at 1,000,000 B per request by default, less than a record the codec
#: accepts (events/codec.py DEFAULT_MAX_BYTES, 1 MiB) plus its key and headers: such a record was
#: unforwardable. 2 MiB: the codec's limit, and as much again for key, headers and batch overhead
#: (the broker's own limit, message.max.bytes, is about 1 MiB unless raised).
PRODUCER_MAX_REQUEST_SIZE = 2 * DEFAULT_MAX_BYTES

_INT64_MS = 2.0 ** 63  # a record timestamp (ms) must fit a signed 64-bit integer


def forwarded_from(headers: Any) -> str | None:
    """The `slaproc-forwarded-from` header of a record (None: not a forwarded copy)."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for item in items:
        try:
            name, value = item
        except (TypeError, ValueError):
            continue
        if name == FORWARDED_FROM:
            return bytes(value).decode("utf-8", "replace") if value is not None else ""
    return None


def forward_timestamp(seconds: Any) -> float | None:
    """The timestamp a forwarded copy is produced with: the record's own, exactly, when the producer
    can encode it (ms in a signed 64-bit integer); else None, and the broker stamps the copy. A
    CreateTime near 2^63 ms overflowed on the way back to ms and the send raised (review finding 1)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    return seconds if 0 < seconds and seconds * 1000.0 < _INT64_MS else None


#: What the broker answers, for the record itself, to a copy's produce request: too large for the
#: topic's max.message.bytes (the copy has one header more than the record it copies), a timestamp
#: the topic's policy refuses, a record it cannot read. Sent again, it fails again.
_REFUSED_RECORD = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTimestampError, CorruptRecordException)


def unforwardable(exc: BaseException) -> bool:
    """Whether a forward's send failed for the record itself (it fails the same way every time):
    too large for the producer (`MessageSizeTooLargeError`, which Faust wraps in ProducerSendError)
    or refused by the broker, a partition the producer does not know (AssertionError), a value it
    cannot encode. A broker or connection error is not: it fails the unit and the worker, as for
    any output."""
    if isinstance(exc, (AssertionError, OverflowError, ValueError, TypeError, struct.error)):
        return True
    seen: BaseException | None = exc
    for _ in range(5):  # the cause chain, bounded
        if seen is None:
            return False
        if isinstance(seen, _REFUSED_RECORD):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def partition_for_key(key: str | bytes, partitions: int) -> int:
    """The partition the Kafka default (murmur2) partitioner picks for a key (str: its UTF-8 bytes)."""
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return (murmur2(raw) & 0x7FFFFFFF) % partitions


#: The field of a decoded input event whose murmur2 partition owns it (SPEC §1's message key): the
#: partition whose processor holds the ticket's clocks, and the one `owns_service` closes the
#: service's months on (docs/stream.md, "Misrouted records").
ROUTING_FIELDS = {TICKET_EVENTS: "ticket_id", MONITORING_EVENTS: "service_id"}


#: The closed set of dead-letter reasons (docs/operations.md, "Dead-letter reasons"): what a
#: `dead_letter` record's `reason` and the `slaproc_dead_letters_total{reason}` label can be.
#: One set for the codec, the core and the shell: `events.codec.Reason`. The shell's own is
#: `rejected`: the core raised on an input (a bug); the input changed no state.
PROCESSING_ERROR = Reason.REJECTED.value
DEAD_LETTER_REASONS: frozenset[str] = frozenset(reason.value for reason in Reason)


def reason_code(error: str) -> str:
    """The closed-set code an error text starts with (`code: message`), else `rejected`.
    Never exception text or a class name: those are unbounded (metric labels, alert routing)."""
    code, sep, _ = error.partition(":")
    return code if sep and code in DEAD_LETTER_REASONS else PROCESSING_ERROR


def _reason(exc: BaseException) -> str:
    """`code: message` for a dead letter. A ValueError from the core carries its code; anything
    else is a failure of the core (`rejected`), its class and text kept in the message."""
    text = str(exc) or type(exc).__name__
    reason = getattr(exc, "reason", None)  # policies.outputs.Rejected
    if isinstance(reason, str) and reason in DEAD_LETTER_REASONS:
        return f"{reason}: {getattr(exc, 'message', text)}"
    if isinstance(exc, ValueError) and reason_code(text) != PROCESSING_ERROR:
        return text
    return f"{PROCESSING_ERROR}: {type(exc).__name__}: {text}"


#: Record timestamps (seconds) a datetime can hold and a dead letter may carry: 1970 up to the
#: codec's limit for event times (year 9000). Producers set CreateTime; anything else is clamped
#: to the epoch, so a redelivered record still gives the identical dead letter.
_MAX_RECORD_SECONDS = 32503680000.0  # 3000-01-01: far beyond any real CreateTime, far from overflow


def record_seconds(timestamp: Any) -> float:
    """A Kafka record's timestamp as seconds usable for a dead letter's `occurred_at` (0 = unknown/absurd)."""
    try:
        seconds = float(timestamp)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    if not 0.0 <= seconds <= _MAX_RECORD_SECONDS:  # also NaN
        return 0.0
    return seconds


async def start_offsets_consumer(servers: Any, **security: Any) -> Any:
    """A group-less aiokafka consumer for offset questions (ListOffsets, a short fetch)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False, group_id=None,
                                fetch_max_wait_ms=20, **security)
    await consumer.start()
    return consumer


async def correct_end_offsets(probe: Any, ends: dict[Any, int | None], wait: float = 2.0) -> dict[Any, int | None]:
    """ListOffsets(latest) answers corrected for Tansu (see `_correct_tansu_end_offsets`): fetch
    from `answer - 1` with `probe` and take one past the last offset returned. Keys: aiokafka
    TopicPartitions. On Apache Kafka the fetch returns just the last record: no change."""
    ends = dict(ends)
    todo = [tp for tp, end in ends.items() if end]
    if not todo:
        return ends
    probe.assign(todo)
    for tp in todo:
        probe.seek(tp, ends[tp] - 1)
    pending = set(todo)
    deadline = time.monotonic() + wait
    while pending and time.monotonic() < deadline:
        batch = await probe.getmany(*pending, timeout_ms=200)
        for tp, records in batch.items():
            if records:
                ends[tp] = max(ends[tp], records[-1].offset + 1)
                pending.discard(tp)
        for tp in [tp for tp in pending if not batch.get(tp)]:
            # The record before the answer is gone (retention emptied an idle partition): the
            # probe was reset to the end. Nothing to correct; do not wait out the deadline.
            if await probe.position(tp) >= ends[tp]:
                pending.discard(tp)
    if pending:  # left as the broker said: on Tansu possibly short of the last batch
        log.warning("end offsets of %s not corrected within %.1f s", sorted(str(tp) for tp in pending), wait)
    return ends


class OffsetsProbe:
    """End and earliest offsets of the input partitions for the caught-up check, asked on a
    connection of its own from the worker's event loop.

    Not Faust's `consumer.highwaters()` / `earliest_offsets()`: those go through the consumer
    thread's method queue and wait behind its fetch long-poll; measured 0.7-1.4 s each, so a
    tick's check took ~2 s and breaches fired 3-5 s after their deadline (docs/benchmarks.md).
    """

    def __init__(self, servers: str, security: dict[str, Any] | None = None) -> None:
        self.servers = servers
        self.security = security or {}  # kafka_config.aiokafka_kwargs: TLS/SASL
        self._consumer: Any = None
        self._lock = asyncio.Lock()

    async def _started_consumer(self) -> Any:
        if self._consumer is None:
            self._consumer = await start_offsets_consumer(self.servers, **self.security)
        return self._consumer

    async def ends(self, *tps: Any) -> dict[Any, int | None]:
        from aiokafka import TopicPartition

        async with self._lock:
            client = await self._started_consumer()
            asked = {TopicPartition(tp.topic, tp.partition): tp for tp in tps}
            ends = await client.end_offsets(list(asked))
            fixed = await correct_end_offsets(client, ends)
            return {asked[ktp]: end for ktp, end in fixed.items()}

    async def earliest(self, *tps: Any) -> dict[Any, int | None]:
        from aiokafka import TopicPartition

        async with self._lock:
            client = await self._started_consumer()
            asked = {TopicPartition(tp.topic, tp.partition): tp for tp in tps}
            return {asked[ktp]: offset for ktp, offset in (await client.beginning_offsets(list(asked))).items()}

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await consumer.stop()


def _tracker(app: faust.App, input_topics: list[str], probe: OffsetsProbe | None = None) -> CaughtUpTracker:
    """`CaughtUpTracker.for_app`, with a high-water mark that does not trust ListOffsets alone.

    Tansu answers ListOffsets(latest) with an offset behind the real end (by about the last
    produced batch: 6791 for a partition whose last offset is 6818, long after producing
    stopped), so `end_offsets` alone let a tick through while a backfill's last events were
    still unread, and those events were then judged late (breaches fired and retracted). The
    end is taken as the largest of: ListOffsets (corrected, `correct_end_offsets`; asked by
    `OffsetsProbe` when given, else through Faust's consumer) and
    one past the last offset Faust handed to the agents (`compat.read_offset`, not public
    API) when that offset is past the commit: a message fetched but not yet processed keeps
    the partition behind.
    """
    consumer_of = lambda: app.consumer  # noqa: E731 (the consumer exists only once the app runs)

    async def highwaters(*tps: Any) -> dict[Any, int | None]:
        consumer = consumer_of()
        ends = dict(await (probe.ends(*tps) if probe is not None else consumer.highwaters(*tps)))
        out: dict[Any, int | None] = {}
        for tp in tps:
            candidates = [ends.get(tp)]
            last_read = compat.read_offset(consumer, tp)
            # After a seek (assignment, rebalance, restart) Faust alone sets `_read_offset` to the
            # committed offset c, the *next* offset to read, not one read (`compat.guard_commits`
            # sets c - 1, the last one read): taking Faust's c + 1 kept a fully processed partition
            # "behind" for good (ticks skipped, time frozen) until a new event arrived. So only an
            # offset past the commit counts as read (right with either).
            if last_read is not None and last_read > (compat.committed_offset(consumer, tp) or 0):
                candidates.append(last_read + 1)
            known = [c for c in candidates if c is not None]
            out[tp] = max(known) if known else None
        return out

    return CaughtUpTracker.for_app(app, input_topics, highwaters=highwaters,
                                   earliest=probe.earliest if probe is not None else None)


def _correct_tansu_end_offsets() -> None:
    """Make Faust's `highwaters()` (ListOffsets latest) right on Tansu. Idempotent, process-wide.

    Tansu answers ListOffsets(latest) with the base offset of the partition's last record
    batch + 1, not the last offset + 1 (10 records in one batch at offsets 1..10: it says 2).
    Faust's table recovery reads a changelog up to that answer, so a worker taking over a
    partition misses the changelog's last batch, and its consistency check crashes the worker
    when its own persisted offset is beyond it (`ConsistencyError ... (9 > 3)`, seen on a
    rebalance). The correction fetches from `answer - 1` (the start of the last batch) with
    a separate consumer and takes one past the last offset returned. On Apache Kafka the
    answer is already right and the fetch returns just the last record.
    """
    async def start_probe(servers: str, conf: Any) -> Any:
        return await start_offsets_consumer(servers, **kafka_config.faust_conf_security(conf))

    compat.correct_end_offsets_with(start_probe, correct_end_offsets)


class SlaprocApp(faust.App):
    """faust.App that declares slaproc's topics before the consumer subscribes."""

    slaproc: "StreamWorker"
    slaproc_state_dir: Any = None  # streams.state_dir.StateDir when SLAPROC_STATE_DIR is set

    async def on_first_start(self) -> None:
        await super().on_first_start()
        worker = getattr(self, "slaproc", None)
        if worker is not None and worker.settings.create_topics:
            await worker.declare_topics()

    async def on_stop(self) -> None:
        worker = getattr(self, "slaproc", None)
        if worker is not None:
            await worker.offsets.stop()
        await super().on_stop()


class StreamWorker:
    """Per-worker state: one Processor per assigned partition, created lazily."""

    BEHIND_LOG_EVERY = 30.0  # seconds between "partition behind" warnings
    CATCH_UP_STEP = timedelta(days=1)  # partition time advanced per unit of work by one tick
    FAILURE_LOG_EVERY = 10.0  # seconds between two logged tracebacks of failing units
    MAX_TICK_AHEAD = timedelta(days=1)  # a tick further ahead of the wall clock is ignored

    def __init__(self, app: faust.App, settings: WorkerSettings, core: Core,
                 observer: Observer | None = None) -> None:
        self.app = app
        self.settings = settings
        self.core = core
        self.observer = observer or Observer()
        self.processors: dict[int, Any] = {}
        self.stores: dict[int, PartitionStore] = {}
        self.contracts: dict[str, Any] = {}  # customer_id -> its latest (Contract, at), this worker's view
        # customer_id -> every terms it has (SPEC §14), by the contracts table's key (`_contract_key`)
        self.contract_terms: dict[str, dict[str, Any]] = {}
        self.contracts_version = 0  # bumped on every contract change (caches keyed on it)
        n = settings.partitions
        # Keys as bytes, never decoded: a producer's key is not ours to trust, and a key that is not
        # UTF-8 (key_type=str) made Faust's decode fail and the topic's agent stop receiving records
        # (found by the wire fuzz; no error logged). The shell routes by partition, not by key.
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        self.input_topics = {name: app.topic(settings.topic(name), partitions=n, **raw)
                             for name in INPUT_TOPICS}
        # The same topics with str keys, for the query API's routing only (`topic_route` serializes
        # the URL's id with the topic's key type; no agent consumes these objects).
        self.route_topics = {name: app.topic(settings.topic(name), partitions=n,
                                             **{**raw, "key_type": str})
                             for name in INPUT_TOPICS}
        self.output_topics = {name: app.topic(settings.topic(name), partitions=n, **raw)
                              for name in OUTPUT_TOPICS}
        # Internal to the app, named like Faust's own internal topics (no prefix).
        self.ticks_topic_name = f"{settings.app_id}-ticks"
        self.ticks_topic = app.topic(self.ticks_topic_name, partitions=n, **raw)
        # Quarterly attainment: each partition's counts, keyed by customer, summed here.
        self.attainment_topic_name = f"{settings.app_id}-attainment"
        self.attainment_topic = app.topic(self.attainment_topic_name, partitions=n, **raw)
        self.attainment_table = app.Table("attainment", partitions=n, key_type=str, value_type=bytes)
        self._pending_sends: list[Any] = []  # delivery futures of the current batch's outputs
        self._refused_forwards: list[tuple[Any, str]] = []  # (record, error): copies the broker refused
        self._key_writes: list[Any] = []  # delivery futures of the last unit's state key writes
        # One unit of work at a time (an input batch, a contract batch, a tick, an attainment
        # partial): apply, send the outputs, wait for their acks, persist the state. The agents
        # run concurrently in one event loop; without this, one agent's commit could persist a
        # state another agent changed while its outputs were not sent yet (lost on a crash).
        self.lock = asyncio.Lock()
        self._touched: set[int] = set()  # partitions whose processor changed state in this batch
        self._behind_since: dict[int, float] = {}  # partition -> monotonic time ticks began to be skipped
        self._behind_logged: dict[int, float] = {}
        self._failure_logged = float("-inf")
        self._broker_logged = float("-inf")
        self._failures_suppressed = 0
        self.contract_rejections = 0  # stored contracts not installed (changelog, processor creation)
        # Per-partition state: changelog partitions match the input partitions.
        self.tables = {name: app.Table(name, partitions=n, key_type=str, value_type=bytes)
                       for name in STATE_TABLES}
        # Validated contract.upserted bytes by customer_id, replicated to every worker.
        # One partition + use_partitioner: the layout Faust documents for global tables
        # shared by several workers.
        # Always in memory, whatever the app's store (streams/state_dir.py): `_on_contract_changelog`
        # must see every record at each start. A URL with a host: yarl's `URL("memory://")` is false,
        # and Faust then takes the app's store.
        self.contracts_table = app.GlobalTable(
            "contracts", partitions=1, use_partitioner=True, recovery_buffer_size=1, store="memory://contracts",
            key_type=str, value_type=bytes, on_changelog_event=self._on_contract_changelog)
        self.backend = FaustTableBackend({**self.tables, "attainment": self.attainment_table,
                                          "contracts": self.contracts_table}, producer=lambda: app.producer)
        self._topic_names: dict[str | None, str] = {
            **{name: topic.get_topic_name() for name, topic in self.output_topics.items()},
            None: self.attainment_topic_name}
        self.offsets = OffsetsProbe(bootstrap_servers(settings.broker), kafka_config.aiokafka_kwargs(settings.kafka))
        self.health = Health()
        #: Messages not yet processed per owned input topic-partition, from the last successful
        #: check (`check_broker`); None when unknown (broker unreachable): no lag is reported then.
        self.lag: dict[Any, int] | None = None
        #: Called with the exception when the worker must stop (`fail`); `slaproc worker` sets it
        #: to stop the process with a non-zero exit. The default crashes the Faust app.
        self.on_fatal: Callable[[BaseException], Any] | None = None
        #: Called with {partition: its applied writes} after each unit's state is applied, and with
        #: {} after a rebalance; the query API publishes its snapshot there (streams/web.py).
        self.on_commit: Callable[[dict[int, dict[tuple[str, str], str | None]]], Any] = lambda committed: None
        self.tracker = _tracker(app, [settings.topic(TICKET_EVENTS), settings.topic(MONITORING_EVENTS)],
                                self.offsets)
        #: full input topic name -> the decoded event's field that routes it (`ROUTING_FIELDS`)
        self._routing_fields = {settings.topic(name): field for name, field in ROUTING_FIELDS.items()}
        self._misrouted_logged: set[str] = set()  # topics whose first misrouted record was logged

    # --- topics -------------------------------------------------------------
    async def declare_topics(self) -> None:
        """Create the topics that do not exist yet with their retention and cleanup policy
        (streams/topic_configs.py, the table deploy/kafka/topics.yml is checked against), not the
        broker's defaults: 7 days on Kafka would cut the input history replays need. An existing
        topic's configs are left as they are (deploy/kafka/create-topics.sh converges them)."""
        s = self.settings
        kw = dict(replication_factor=s.replication_factor, kafka=s.kafka)  # SPEC §12
        for name in INPUT_TOPICS + OUTPUT_TOPICS:
            await create_topics(s.broker, [s.topic(name)], s.partitions, topic_config(name), **kw)
        await create_topics(s.broker, [self.ticks_topic_name], s.partitions, topic_config("-ticks"), **kw)
        await create_topics(s.broker, [self.attainment_topic_name], s.partitions, topic_config("-attainment"), **kw)

    # --- processors ---------------------------------------------------------
    def owns_service(self, partition: int) -> Callable[[str], bool]:
        n = self.settings.partitions
        return lambda service_id: partition_for_key(service_id, n) == partition

    def processor(self, partition: int, observe: bool = True) -> Any:
        """`partition`'s processor, built from its tables if this worker has none. `observe`: tell the
        observer (`processor_created`), which rebuilds the gauges derived from the stored state."""
        proc = self.processors.get(partition)
        if proc is None:
            store = PartitionStore(self.backend, partition)
            if store.recovered_writes:
                log.info("partition %s: %s state writes redone from its write-ahead record",
                         partition, store.recovered_writes)
            proc = self.core.new_processor(store, self.owns_service(partition))
            for terms in list(self.contract_terms.values()):
                for key, contract in list(terms.items()):
                    try:
                        # Nothing goes out here (no unit of work to send it with): the events of the
                        # restored state that waited for a contract, and the months a contract the
                        # previous owner never read makes due, come at the partition's next event or
                        # tick, which sends them (release=False).
                        proc.upsert_contract(contract, release=False)
                    except Exception:  # validated when accepted; must not make the partition unusable
                        log.exception("partition %s: contract %s not installed", partition, key)
            self.processors[partition] = proc
            self.stores[partition] = store
            created = getattr(self.observer, "processor_created", None)  # optional for other observers
            if created is not None and observe:
                try:
                    created(partition, proc)
                except Exception:  # metrics must never make a partition unusable
                    log.exception("partition %s: metrics of its restored state not rebuilt", partition)
        return proc

    def forget_partitions(self, tps: Iterable[Any]) -> None:
        tps = list(tps)
        self.tracker.forget(tps)
        ticks = self.ticks_topic_name
        for tp in tps:
            if tp.topic == ticks:
                self.processors.pop(tp.partition, None)
                self.stores.pop(tp.partition, None)
                self.observer.partition_dropped(tp.partition)

    # --- output -------------------------------------------------------------
    async def send_outputs(self, outputs: Iterable[Any]) -> None:
        await self._send_prepared(self._prepare(outputs))

    def _prepare(self, outputs: Iterable[Any]) -> tuple[list[Any], list[tuple[str, bytes | None, bytes]]]:
        """Route and encode every output before any is sent: an output that cannot be encoded
        raises here, while nothing of its unit has left the worker (the unit can still be undone)."""
        outputs = list(outputs)
        records = []
        for output in outputs:
            kind = self.core.output_type(output)
            route = OUTPUT_ROUTES.get(kind)
            if route is None:
                raise ValueError(f"no topic for output type {kind!r}")
            topic, key_field = route
            key = self.core.output_field(output, key_field) if key_field else None
            value = self.core.encode_internal(output) if topic is None else self.core.encode(output)
            records.append((self._topic_names[topic], None if key is None else key.encode("utf-8"), value))
        return outputs, records

    async def _send_prepared(self, prepared: tuple[list[Any], list[tuple[str, bytes | None, bytes]]],
                             partition: int | None = None) -> None:
        """`partition`: the partition whose processor emitted the outputs, when there is one (metrics)."""
        outputs, records = prepared
        if not records:
            return
        self.observer.outputs(outputs, partition=partition)
        send = self.app.producer.send
        for target, key, value in records:
            # The producer directly (Faust's Topic.send costs several times more per record);
            # no partition: the key's murmur2 partition, as any Kafka producer would pick.
            self._pending_sends.append(await send(target, key, value, None, None, None))

    async def commit_batch(self) -> None:
        """Wait until the broker has the batch's outputs, then persist the processors' state
        and wait until the broker has that too.

        State is never written ahead of the outputs it caused: a crash in between replays
        the batch over the previous state and re-sends the same outputs (same event ids).
        Each partition's state changes go out atomically (`PartitionStore.write_ahead`): the
        previous unit's key writes are awaited, then this unit's write-ahead records, and only
        then are its keys written (awaited by the next unit). The batch's events are
        acknowledged (and their offsets become committable) only after this returns, so a
        committed offset always has its state on the changelog."""
        sends, self._pending_sends = self._pending_sends, []
        if sends:
            await asyncio.gather(*sends)
        while self._refused_forwards:  # their dead letters, acknowledged before the offsets move
            refused, self._refused_forwards = self._refused_forwards, []
            for message, error in refused:
                await self.dead_letter(message, error)
            sends, self._pending_sends = self._pending_sends, []
            await asyncio.gather(*sends)
        touched, self._touched = self._touched, set()
        stores = []
        for partition in sorted(touched):
            proc = self.processors.get(partition)
            if proc is None:
                continue
            if hasattr(proc, "flush"):
                proc.flush()
            stores.append(self.stores[partition])
        # The previous unit's key writes, and this unit's single-key writes (contracts, attainment).
        earlier = await self._take_unacknowledged_writes()
        if earlier:
            await asyncio.gather(*earlier)
        stores = [store for store in stores if store.write_ahead()]
        records = await self.backend.send_queued()
        if records:
            await asyncio.gather(*records)
        committed = {store.partition: store.apply_staged() for store in stores}
        self.on_commit(committed)  # the query API's snapshot (streams.snapshot), between two awaits
        self._key_writes = await self.backend.send_queued()  # on their way; awaited by the next unit

    async def _take_unacknowledged_writes(self) -> list[Any]:
        """The last unit's key-write futures plus whatever is still queued, sent now. Taken off the
        worker before anyone awaits them: a failed send fails one unit, not every unit after it."""
        writes, self._key_writes = self._key_writes, []
        return writes + await self.backend.send_queued()

    async def settle_key_writes(self, timeout: float = 10.0) -> None:
        """Before partitions are handed over: wait for any unit in progress (the lock), then
        send what is still queued (a store's recovered writes when no unit followed its
        creation) and wait for the last unit's key writes. A write still queued or in flight
        could otherwise reach the changelog after the new owner's own writes of the same key
        (the write-ahead record covers a crash, not a late arrival)."""
        try:
            await asyncio.wait_for(self.lock.acquire(), timeout)
        except asyncio.TimeoutError:
            log.warning("rebalance: a unit of work still runs after %.0f s; its partitions are released anyway",
                        timeout)
            return
        try:
            writes = await self._take_unacknowledged_writes()
            if writes:
                _, pending = await asyncio.wait([asyncio.ensure_future(w) for w in writes], timeout=timeout)
                if pending:
                    log.warning("rebalance: %s state writes not acknowledged within %.0f s", len(pending), timeout)
        finally:
            self.lock.release()

    async def dead_letter(self, message: Any, error: str) -> None:
        # The record's own timestamp (stable across redeliveries), not the partition's time at
        # rejection: after a crash the same record can be rejected again at another partition
        # time, and a repeat must be the identical event.
        # A producer sets the timestamp: one out of datetime's range (year 10000, negative) must not
        # stop the dead letter (`record_seconds` clamps it to the epoch, the same on every redelivery).
        source = {"topic": message.topic, "partition": message.partition, "offset": message.offset,
                  "timestamp": record_seconds(message.timestamp)}
        # Exactly `code: message` (what the core parses; without a message it would drop the code).
        code = reason_code(error)
        detail = error[len(code) + 1:].strip() if error.startswith(code + ":") else error.strip()
        error = f"{code}: {detail or '(no detail)'}"
        raw = message.value if isinstance(message.value, (bytes, type(None))) else bytes(message.value)
        try:
            prepared = self._prepare([self.core.dead_letter(source, raw, error)])
        except Exception:  # the raw bytes or the message cannot be encoded: keep the reason, drop the rest
            log.exception("dead letter for %s[%s]@%s could not be built; sent without its raw bytes",
                          message.topic, message.partition, message.offset)
            prepared = self._prepare([self.core.dead_letter(source, b"", f"{code}: (message not encodable)")])
        self.observer.dead_letter(code)
        await self._send_prepared(prepared)

    # --- health -------------------------------------------------------------
    async def fail(self, what: str, exc: BaseException) -> None:
        """An agent stopped on an exception the unit-of-work guards did not catch (a broker that
        refuses writes past the client's retries, a bug in the shell). Its input would no longer
        be processed while the process answered /metrics (a zombie): log why, turn not ready and
        not live, and stop the worker with a non-zero exit so that it is restarted."""
        if self.health.fatal is not None:
            return
        self.health.fatal = f"{what}: {type(exc).__name__}: {exc}"
        log.critical("%s; stopping the worker (exit status 1)", what, exc_info=exc)
        hook = self.on_fatal
        try:
            if hook is not None:
                result = hook(exc)
                if asyncio.iscoroutine(result):
                    await result
            else:
                await self.app.crash(exc)
        except Exception:
            log.exception("stopping the worker after %s failed", what)

    BROKER_LOG_EVERY = 30.0  # seconds between two "broker unreachable" lines

    async def check_broker(self, timeout: float = 2.0) -> bool:
        """One connectivity check (ApiVersions to the bootstrap servers), then, if connected, the
        lag of the owned input partitions. Logs one line when the broker goes away, one every
        BROKER_LOG_EVERY seconds while it stays away, and one when it is back."""
        h = self.health
        connected = await broker_reachable(self.offsets.servers, timeout, self.settings.kafka.ssl_context)
        now = time.monotonic()
        if connected:
            if h.broker_connected is False:
                log.warning("broker reachable again after %.0f s", now - (h.broker_down_since or now))
            h.broker_connected, h.broker_down_since = True, None
            try:
                self.lag = await asyncio.wait_for(self._lag(), timeout)
            except Exception:  # noqa: BLE001 - lag unknown this time
                self.lag = None
        else:
            self.lag = None
            if h.broker_connected is not False:
                h.broker_down_since = now
                self._broker_logged = now
                log.warning("broker unreachable at %s (no answer within %.0f s); retrying", self.offsets.servers,
                            timeout)
            elif now - self._broker_logged >= self.BROKER_LOG_EVERY:
                self._broker_logged = now
                log.warning("broker still unreachable at %s after %.0f s", self.offsets.servers,
                            now - (h.broker_down_since or now))
            h.broker_connected = False
        return connected

    async def _lag(self) -> dict[Any, int]:
        consumer = self.app.consumer
        inputs = set(self.tracker.input_topics)
        tps = sorted((tp for tp in consumer.assignment() if tp.topic in inputs), key=lambda tp: (tp.topic, tp.partition))
        if not tps:
            return {}
        positions, ends = await self.tracker.offsets(tps)
        return {tp: max(0, ends[tp] - positions[tp]) for tp in tps
                if ends.get(tp) is not None and positions.get(tp) is not None}

    # --- agents -------------------------------------------------------------
    async def handle_input_batch(self, events: Sequence[Any]) -> None:
        async with self.lock:
            await self._input_batch(events)

    async def _input_batch(self, events: Sequence[Any]) -> None:
        started = time.perf_counter()
        applied: dict[int, list[Any]] = {}  # partition -> the events this unit applied there, in order
        for event in events:
            message = event.message
            try:
                decoded = self.core.decode(message.value)
            except Exception as exc:
                await self.dead_letter(message, _reason(exc))
            else:
                if await self._forward_misrouted(message, decoded):
                    self.tracker.processed(message.tp, message.offset)
                    continue
                self.observer.event_in(self.core.event_type(decoded))
                partition = message.partition
                self._touched.add(partition)
                future = self._beyond_max_future(decoded)
                if future is not None:
                    await self.dead_letter(message, future)
                    self.tracker.processed(message.tp, message.offset)
                    continue
                try:
                    result = self.processor(partition).apply(decoded)
                    outputs, rejected = result if isinstance(result, tuple) else (result, None)
                    prepared = self._prepare(outputs)
                except Exception as exc:  # a bug must not stop the stream: undo, dead-letter, go on
                    self._log_failure(f"processor failed on {message.topic}[{partition}]@{message.offset}")
                    self._roll_back(partition, applied.get(partition, ()))
                    await self.dead_letter(message, _reason(exc))
                else:
                    applied.setdefault(partition, []).append(decoded)
                    await self._send_prepared(prepared, partition)
                    if rejected is not None:
                        if rejected.reason in REPEATED_COPY_REASONS and forwarded_from(message.headers) is not None:
                            # a copy forwarded again by a re-read from offset 0 (its first copy was
                            # applied before the month became final): counted, not a dead letter
                            self.observer.copy_dropped(rejected.reason)
                        else:
                            await self.dead_letter(message, f"{rejected.reason}: {rejected.message}")
            self.tracker.processed(message.tp, message.offset)
        await self.commit_batch()
        self.observer.batch(time.perf_counter() - started)

    def home_partition(self, message: Any, decoded: Any) -> int | None:
        """The partition an input record belongs on: murmur2 of its event's routing field (ticket_id,
        service_id: SPEC §1's key), else of its Kafka key; None when it has neither (left in place)."""
        field = self._routing_fields.get(message.topic)
        if field is None:
            return None
        key = getattr(decoded, field, None)
        if not isinstance(key, str):
            key = message.key
            if not isinstance(key, (str, bytes, bytearray, memoryview)):
                return None
        return partition_for_key(key, self.settings.partitions)

    async def _forward_misrouted(self, message: Any, decoded: Any) -> bool:
        """A record not on its key's murmur2 partition is copied there (key, value, headers and
        timestamp as they are) instead of being applied here; returns whether it was.

        The processors assume murmur2 (`owns_service`; one ticket's state on one partition), the
        default of the Java and aiokafka producers; librdkafka's (confluent-kafka, Go, .NET, kcat)
        is `consistent_random` (CRC32): a monitoring event applied on another partition was never
        folded into its service's month (no close, no refund), and one ticket's events could split
        over two partitions' states. The copy's delivery is awaited with the unit's outputs, before
        this record's offset can be committed; a crash in between sends it again, and the event id
        de-duplication (SPEC §2) on the home partition makes the repeat harmless."""
        home = self.home_partition(message, decoded)
        if home is None or home == message.partition:
            return False
        topic = message.topic
        self.observer.misrouted(topic)
        origin = forwarded_from(message.headers)
        if origin is not None:
            # Never a copy of a copy: workers that disagree on SLAPROC_PARTITIONS (topics expanded
            # while old workers run) would bounce it between two partitions for ever, one record
            # per hop. Not applied here either: a monitoring event off its service's partition is
            # never folded into the month (F14). The dead letter keeps it for a re-send.
            await self.dead_letter(message, f"misrouted_copy: forwarded from {origin}, its key's murmur2 partition "
                                            f"is {home} of {self.settings.partitions} (SLAPROC_PARTITIONS): do the "
                                            f"workers agree on the partition count?")
            return True
        if topic not in self._misrouted_logged:
            self._misrouted_logged.add(topic)
            log.warning("%s[%s]@%s belongs on partition %s (murmur2 of its key): forwarded there, as will be every "
                        "such record (slaproc_misrouted_records_total); a librdkafka producer needs "
                        "partitioner=murmur2_random (docs/operations.md)", topic, message.partition, message.offset,
                        home)
        # The record's own timestamp, kept exactly (the dead letter of a decodable event carries it,
        # SPEC §2 determinism); none (0, absent) lets the broker stamp the copy.
        # An out-of-range one (beyond int64 ms) is not copied: the broker stamps the copy.
        stamp = forward_timestamp(message.timestamp)
        headers = list(message.headers.items() if isinstance(message.headers, Mapping) else message.headers or ())
        headers.append((FORWARDED_FROM, f"{topic}/{message.partition}/{message.offset}".encode()))
        try:
            future = await self.app.producer.send(topic, message.key, message.value, home, stamp, headers)
        except Exception as exc:
            if not unforwardable(exc):
                raise
            # Bad input never stops the worker: raised again on every restart, it held the
            # partition for ever (review finding 1). The record is kept, not applied (F14).
            await self.dead_letter(message, f"forward_failed: to partition {home}: {type(exc).__name__}: {exc}")
            return True
        self._pending_sends.append(self._forward_delivered(future, message, home))
        return True

    async def _forward_delivered(self, future: Any, message: Any, home: int) -> Any:
        """A forward's delivery, awaited with the unit's outputs (`commit_batch`). The broker can
        refuse the copy for the record itself (the copy is one header larger than a record at the
        topic's size limit): that is a `forward_failed` dead letter, sent before the unit commits,
        not an error that fails the worker on every restart."""
        try:
            return await future
        except Exception as exc:
            if not unforwardable(exc):
                raise
            self._refused_forwards.append(
                (message, f"forward_failed: to partition {home}, the broker refused it: {type(exc).__name__}: {exc}"))
            return None

    def _beyond_max_future(self, event: Any) -> str | None:
        """SPEC §10 in the shell as well as in the core: an event dated more than `max_future` after
        the wall clock is a `future_timestamp` dead letter before the core sees it. The core moves
        a partition's time to an event's time; a year-9999 event made it close every month up to
        9999 (minutes of CPU on the event loop, gigabytes), which no per-unit guard can undo."""
        at = getattr(event, "occurred_at", None)
        if not isinstance(at, datetime) or at.tzinfo is None:
            return None
        bound = datetime.now(timezone.utc) + timedelta(seconds=self.settings.max_future)
        if at <= bound:
            return None
        return (f"future_timestamp: occurred_at {at.isoformat()} is more than {self.settings.max_future:g} s "
                f"after the wall clock")

    def _roll_back(self, partition: int, redo: Iterable[Any] = ()) -> None:
        """Undo whatever the current unit did to `partition`'s state: the processor and its store
        (staged writes, in-memory objects, time) are dropped and rebuilt from the tables, which
        hold the state as of the last committed unit; then the unit's earlier events on that
        partition are applied again (deterministic: the same state, and the same outputs, which
        are already on their way and are not sent twice). So an event whose processing raises
        changes nothing: not the partition's time, not a ticket, not the due index.

        The observer is not told (`processor_created`): the gauges already show what this worker sent,
        this unit's outputs included, while the tables are one unit behind; rebuilding the month
        gauges from them would hide a revision already sent until the next restart or close. The
        open-clocks count needs nothing either: it is read with the tables (or counted at the flush)."""
        self._drop_processor(partition)
        proc = self.processor(partition, observe=False)
        for event in redo:
            try:
                proc.apply(event)
            except Exception:  # applied once without error; should not happen
                log.exception("partition %s: an event of this unit failed when applied again; its state is "
                              "as of the last commit", partition)
                self._drop_processor(partition)
                return

    def _drop_processor(self, partition: int) -> None:
        self.processors.pop(partition, None)
        self.stores.pop(partition, None)

    def _log_failure(self, what: str) -> None:
        """log.exception, at most once per FAILURE_LOG_EVERY seconds (the rest counted)."""
        now = time.monotonic()
        if now - self._failure_logged >= self.FAILURE_LOG_EVERY:
            suppressed, self._failures_suppressed = self._failures_suppressed, 0
            self._failure_logged = now
            log.exception("%s; its unit was undone%s", what,
                          f" ({suppressed} similar failures not logged)" if suppressed else "")
        else:
            self._failures_suppressed += 1

    async def handle_contract_batch(self, events: Sequence[Any]) -> None:
        async with self.lock:
            await self._contract_batch(events)

    async def _contract_batch(self, events: Sequence[Any]) -> None:
        for event in events:
            message = event.message
            try:
                decoded = self.core.decode(message.value)
                customer_id, contract = self.core.contract_of(decoded)
            except Exception as exc:
                await self.dead_letter(message, _reason(exc))
                continue
            self.observer.event_in(self.core.event_type(decoded))
            try:
                installed = await self._upsert_contract(customer_id, contract)
            except Exception as exc:  # a processor refused it: it is not installed anywhere
                self._log_failure(f"contract of {customer_id} refused by a processor")
                await self.dead_letter(message, _reason(exc) if reason_code(_reason(exc)) != PROCESSING_ERROR
                                       else f"invalid_contract: {type(exc).__name__}: {exc}")
                continue
            if not installed:  # the same customer and effective_from, recorded later, stands (SPEC §10)
                continue
            # The global table's changelog has one partition; written through the backend so
            # that the write is on the broker before this batch's offsets can be committed.
            # Only a contract every processor accepted is stored: a stored contract is installed
            # by every worker at every start, and one that raises there would stop them all.
            # Keyed by customer and effective_from (`_contract_key`): each of a customer's terms stays.
            self.backend.set("contracts", 0, self._contract_key(customer_id, contract), message.value.decode("utf-8"))
        await self.commit_batch()

    def _contract_key(self, customer_id: str, contract: Any) -> str:
        key_of = getattr(self.core, "contract_key", None)  # optional in the Core protocol
        return key_of(contract) if key_of is not None else customer_id

    async def _upsert_contract(self, customer_id: str, contract: Any) -> bool:
        """Install in every processor, all or nothing: if one raises, the contract is taken back
        out of the worker's view and every processor is rebuilt from its stored state (this unit
        changed nothing else), and the error is raised to the caller. False (nothing installed, nothing
        to store) when the worker holds terms of the same key recorded after it (`Core.contract_order`):
        a correction read before the original keeps standing, as in replay."""
        key = self._contract_key(customer_id, contract)
        terms = self.contract_terms.setdefault(customer_id, {})
        previous, previous_terms = self.contracts.get(customer_id), terms.get(key)
        order_of = getattr(self.core, "contract_order", None)  # optional in the Core protocol
        if previous_terms is not None and order_of is not None and order_of(previous_terms) > order_of(contract):
            log.info("contract %s not installed: the terms stored for it were recorded later", key)
            return False
        terms[key] = contract
        self.contracts[customer_id] = terms[max(terms)]  # the latest: one customer's keys sort by effective_from
        self.contracts_version += 1
        outputs: list[Any] = []
        try:
            for partition, proc in list(self.processors.items()):
                self._touched.add(partition)
                outputs.extend(proc.upsert_contract(contract))
            prepared = self._prepare(outputs)
        except Exception:
            for table, k, value in ((self.contracts, customer_id, previous), (terms, key, previous_terms)):
                if value is None:
                    table.pop(k, None)
                else:
                    table[k] = value
            self.contracts_version += 1
            for partition in list(self.processors):
                self._drop_processor(partition)
            raise
        await self._send_prepared(prepared)
        return True

    async def _on_contract_changelog(self, event: Any) -> None:
        """Every worker (recovery and standby updates): learn the contract. A stored contract that
        no longer decodes or that a processor refuses (written by an older version) is logged and
        left out: it must not stop this worker, nor any partition it owns."""
        raw = event.message.value
        if raw is None:
            return
        try:
            customer_id, contract = self.core.contract_of(self.core.decode(raw))
        except Exception as exc:  # validated before it was written; a newer core may disagree
            self.contract_rejections += 1
            log.warning("stored contract at offset %s not installed: %s", event.message.offset, _reason(exc))
            return
        async with self.lock:
            try:
                await self._upsert_contract(customer_id, contract)
            except Exception as exc:
                self.contract_rejections += 1
                log.warning("stored contract of %s not installed: %s", customer_id, _reason(exc))
            await self.commit_batch()

    async def send_ticks(self, at: datetime | None = None) -> None:
        """Leader: one tick to every partition of the ticks topic."""
        at = at or datetime.now(timezone.utc)
        value = encode_tick(at)
        for partition in range(self.settings.partitions):
            await self.ticks_topic.send(key=None, value=value, partition=partition)

    async def handle_ticks(self, ticks: dict[int, bytes]) -> dict[int, bool]:
        """The newest tick of each partition; one caught-up check for all of them."""
        caught_up = await self.tracker.caught_up_many(sorted(ticks))
        return {p: await self.handle_tick(p, raw, caught_up[p]) for p, raw in sorted(ticks.items())}

    async def handle_tick(self, partition: int, raw: bytes, caught_up: bool | None = None) -> bool:
        """Advance the partition's time if it has caught up; return whether it did."""
        try:
            at = decode_tick(raw)
        except Exception:
            log.warning("bad tick on partition %s ignored: %r", partition, raw[:80])
            return False
        if at > datetime.now(timezone.utc) + self.MAX_TICK_AHEAD:
            # Ticks come from the leader's wall clock; anything else wrote this one.
            log.warning("tick for %s on partition %s is ahead of the wall clock; ignored", at.isoformat(), partition)
            return False
        target = tick_target(at, self.settings.allowed_lateness)
        advanced = await self.tracker.caught_up(partition) if caught_up is None else caught_up
        await self._log_behind(partition, advanced)
        previous = None
        while advanced:
            # In steps of at most CATCH_UP_STEP of partition time, each its own unit of work, the
            # lock released in between: the first tick after a backfill can move a partition
            # months ahead (a bench workload: 207k cadence outputs in one tick), which must not
            # hold every other partition's input for its whole length, nor sit in memory at once.
            async with self.lock:
                proc = self.processor(partition)
                start = getattr(proc, "slowest_now", None) or getattr(proc, "now", None)
                stuck = start is None or (previous is not None and start <= previous)  # time did not move: go all the way
                step = target if stuck or target - start <= self.CATCH_UP_STEP else start + self.CATCH_UP_STEP
                previous = start
                self._touched.add(partition)
                try:
                    prepared = self._prepare(proc.advance_to(step))
                except Exception:
                    # The core failed to move this partition's time: undo (time, state) and try again
                    # at the next tick; the partition stays where it was, the worker goes on.
                    self._log_failure(f"partition {partition}: moving time to {step.isoformat()} failed")
                    self._roll_back(partition)
                    await self.commit_batch()
                    advanced = False
                    break
                await self._send_prepared(prepared, partition)
                await self.commit_batch()
            if step >= target:
                break
            await asyncio.sleep(0)
        async with self.lock:
            self.observer.tick(partition, advanced, target, getattr(self.processor(partition), "now", None))
        return advanced

    async def _log_behind(self, partition: int, advanced: bool) -> None:
        """Ticks skipped for long (a backfill, or a partition stuck behind its high-water mark):
        a warning every BEHIND_LOG_EVERY seconds with the offsets, so the log says why."""
        now = time.monotonic()
        if advanced:
            since = self._behind_since.pop(partition, None)
            self._behind_logged.pop(partition, None)
            if since is not None and now - since >= self.BEHIND_LOG_EVERY:
                log.info("partition %s caught up after %.0f s; ticks move its time again", partition, now - since)
            return
        since = self._behind_since.setdefault(partition, now)
        if now - self._behind_logged.get(partition, since) >= self.BEHIND_LOG_EVERY:
            self._behind_logged[partition] = now
            log.warning("partition %s behind for %.0f s, ticks skipped; (next to process, high-water): %s",
                        partition, now - since, await self.tracker.describe(partition))

    async def handle_attainment(self, raw: bytes, partition: int) -> None:
        """Sum one partition's quarterly counts; report once every partition's are in.
        `partition`: the attainment topic's partition the partial came from (= the table's)."""
        async with self.lock:
            await self._attainment(raw, partition)

    async def _attainment(self, raw: bytes, partition: int) -> None:
        try:
            partial = self.core.decode_internal(raw)
            key = f"{partial.fields['customer_id']}|{partial.fields['quarter']}"
            stored = self.backend.get("attainment", key)
            parts = json.loads(stored) if stored else {}
            if parts.get("reported"):
                return
            report = self.core.attainment_report(parts, partial, self.settings.partitions)
            prepared = self._prepare([report] if report is not None else [])
        except Exception:  # an internal topic: only workers write it; anything else is ignored
            self._log_failure(f"attainment partial on partition {partition} unreadable ({(raw or b'')[:80]!r}); ignored")
            return
        if report is not None:
            parts = {"reported": True}
            await self._send_prepared(prepared)
        self.backend.set("attainment", partition, key, json.dumps(parts, separators=(",", ":")))
        await self.commit_batch()


def build_app(settings: WorkerSettings, core: Core | None = None,
              observer: Observer | None = None, **faust_options: Any) -> faust.App:
    """The configured Faust app (not started). `app.slaproc` is its StreamWorker.

    `core` defaults to the real core adapter (streams.core_adapter), imported lazily.
    `faust_options` override Faust settings (tests).
    """
    if core is None:
        from streams.core_adapter import RealCore

        core = RealCore(settings)
    options: dict[str, Any] = dict(
        broker=settings.broker,
        store=settings.store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        # Faust's defaults (session 60 s, rebalance 60 s, heartbeat 3 s) make a group
        # join take 30 s or more on Tansu; see docs/stream.md for the measurements.
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        broker_rebalance_timeout=settings.broker_rebalance_timeout,
        # Faust's 2.8 s by default. 1 s was tried for issue 18 item 10 and made the second-worker
        # rebalance test fail in 3 of 7 runs (0 of 8 at 2.8 s); see docs/stream.md.
        broker_commit_interval=settings.commit_interval,
        # Static membership (KIP-345): a restarted worker with the same id takes its partitions
        # back at once instead of waiting for its old session to expire (docs/stream.md).
        consumer_group_instance_id=settings.group_instance_id or None,
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        autodiscover=False,
        producer_max_request_size=PRODUCER_MAX_REQUEST_SIZE,  # a valid record stays forwardable
    )
    options.update(kafka_config.faust_app_kwargs(settings.kafka))  # TLS/SASL (SPEC §12)
    state_dir = None
    if settings.state_dir is not None:  # persisted tables: a restart reads the changelog's tail only
        from streams.state_dir import STORE_URL, StateDir

        state_dir = StateDir.open(settings.state_dir, settings.app_id)  # locked: one worker per directory
        options["store"] = STORE_URL
    options.update(faust_options)
    _correct_tansu_end_offsets()
    compat.seek_uncommitted_to_reset_position()
    compat.fetch_only_active_partitions()
    compat.seek_before_resuming_streams()  # no input record reaches an agent before the seek
    compat.guard_commits()  # never commit past an input record no agent processed
    app = SlaprocApp(settings.app_id, **options)
    app.slaproc_state_dir = state_dir
    worker = StreamWorker(app, settings, core, observer)
    app.slaproc = worker
    n = settings.batch_size
    within = settings.batch_within

    def supervised(name: str, body: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """The agent `body`, failing the worker if it raises (Faust would restart the agent and
        leave a worker that answers /metrics but no longer processes that input)."""
        async def agent(stream: Any) -> None:
            try:
                await body(stream)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # before any await: the batch Faust's take_events acks as its loop is torn down
                # must not be committed (compat.hold_commits)
                compat.hold_commits(app.consumer)
                await worker.fail(f"agent {name} crashed", exc)
        agent.__name__ = body.__name__
        return agent

    async def contracts_agent(stream: Any) -> None:
        async for events in stream.take_events(n, within=within):
            await worker.handle_contract_batch(events)

    async def input_agent(stream: Any) -> None:
        async for events in stream.take_events(n, within=within):
            await worker.handle_input_batch(events)

    async def ticks_agent(stream: Any) -> None:
        # Only a partition's newest tick matters: a batch is coalesced per partition and
        # checked with one high-water request, so ticks never queue up behind each other.
        async for events in stream.take_events(10_000, within=0.05):
            latest: dict[int, bytes] = {}
            for event in events:
                latest[event.message.partition] = event.message.value
            await worker.handle_ticks(latest)

    async def attainment_agent(stream: Any) -> None:
        async for event in stream.events():
            await worker.handle_attainment(event.message.value, event.message.partition)

    for topic, name, body in ((worker.input_topics[CONTRACTS], "slaproc.contracts", contracts_agent),
                              (worker.input_topics[TICKET_EVENTS], "slaproc.ticket-events", input_agent),
                              (worker.input_topics[MONITORING_EVENTS], "slaproc.monitoring-events", input_agent),
                              (worker.ticks_topic, "slaproc.ticks", ticks_agent),
                              (worker.attainment_topic, "slaproc.attainment", attainment_agent)):
        app.agent(topic, name=name)(supervised(name, body))

    @app.task
    async def broker_check() -> None:
        # A loop rather than a timer: a check against a blackholed broker lasts its whole timeout.
        while not app.should_stop:
            try:
                await worker.check_broker(timeout=max(1.0, settings.health_interval))
            except Exception:  # noqa: BLE001 - the check must never stop; it reports
                log.exception("broker check failed")
            await asyncio.sleep(settings.health_interval)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        worker.health.started = True
        worker.on_commit({})  # the query routes changed

    @app.timer(settings.tick_interval, on_leader=True)
    async def leader_tick() -> None:
        await worker.send_ticks()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        await worker.settle_key_writes()
        worker.forget_partitions(revoked)
        worker.on_commit({})
        worker.observer.rebalance()

    return app
