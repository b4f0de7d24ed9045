"""Third contender of `bench.stream throughput`: the slaproc core behind a plain aiokafka consumer.

What a worker that bypasses Faust's stream for its inputs would do per unit of work (issue 16:
"can a worker be 2 x the bare Faust agent?"). No Faust anywhere in this process:

- one `AIOKafkaConsumer` in the group (the bench's group timings: session 3 s, heartbeat 0.5 s,
  rebalance 3 s) over the ticket and monitoring topics and the ticks topic; a unit of work is
  one `getmany(max_records=500, timeout_ms=200)` batch (the worker's `take_events(500, 0.2)`);
- each record decoded by the core (`RealCore.decode`, i.e. `events.codec`) and applied to its
  partition's processor, built as the worker builds it (`RealCore.new_processor` over a
  `PartitionStore`, services owned by `streams.app.partition_for_key`), the contracts installed
  in every processor first;
- outputs routed by `streams.app.OUTPUT_ROUTES`, encoded by the core (`streams.wire`), handed to
  the producer as they come (`send` returns a delivery future; none is awaited on its own) and
  gathered once per batch; dead letters built by `RealCore.dead_letter`;
- then the state, as the worker's `commit_batch` writes it: per touched partition one write-ahead
  record (acknowledged), then one changelog record per changed key (acknowledged by the next
  batch), on the `<app id>-<table>-changelog` topics; `--no-changelog` keeps the state in memory
  only (what is then left is the core and the I/O of inputs and outputs);
- and the batch's offsets committed (`consumer.commit`), once per batch.

What it leaves out, i.e. what the Faust worker adds for fault tolerance and operations and what a
production worker built this way would have to write by hand (docs/decisions.md, "Stream worker throughput"):
no table recovery (the state starts empty: the bench's group is new), no rebalance handling
(processors are never dropped, key writes never settled before a hand-over), no caught-up check
on ticks (a tick moves its partition at once: the bench sends one only after the backlog is
committed), attainment partials summed in memory (no attainment topic or table), no undo of an
event on which the core raised (it becomes a `rejected` dead letter, the state as the core left
it), no metrics, health or query API.

    python -m bench.raw_consumer --broker kafka://127.0.0.1:PORT --prefix r1.raw. --app-id bench-raw-r1 \
        --partitions 3 [--stats stats.json] [--no-changelog]

Runs until SIGTERM; then writes its counts (events, dead letters, outputs, batches, changelog
records) as JSON to `--stats`.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.app import (CONTRACTS, MONITORING_EVENTS, OUTPUT_ROUTES, OUTPUT_TOPICS, PROCESSING_ERROR,
                         TICKET_EVENTS, correct_end_offsets, partition_for_key, record_seconds,
                         start_offsets_consumer)
from streams.compat import force_metadata_update
from streams.core_adapter import RealCore
from streams.kafka_admin import bootstrap_servers, create_topics
from streams.store import STATE_TABLES, DictTableBackend, PartitionStore
from streams.ticks import decode_tick, tick_target

#: The group timings of the bench's other two contenders (bench.bare_agent, harness.WorkerProcess).
GROUP_TIMINGS = dict(session_timeout_ms=3000, heartbeat_interval_ms=500, rebalance_timeout_ms=3000)


class RawConsumer:
    """One process owning every partition of its group; see the module docstring."""

    def __init__(self, broker: str, prefix: str, app_id: str, partitions: int, *, max_records: int = 500,
                 timeout_ms: int = 200, lateness: float = 30.0, changelog: bool = True) -> None:
        self.broker, self.servers = broker, bootstrap_servers(broker)
        self.prefix, self.app_id, self.partitions = prefix, app_id, partitions
        self.max_records, self.timeout_ms, self.lateness, self.changelog = max_records, timeout_ms, lateness, changelog
        self.core = RealCore()
        self.backend = DictTableBackend()  # the tables; its `writes` are what goes to the changelogs
        self.processors: dict[int, Any] = {}
        self.stores: dict[int, PartitionStore] = {}
        self.contracts: list[Any] = []  # (Contract, at) in the order read, installed in every new processor
        self.attainment: dict[str, dict[str, Any]] = {}  # "customer|quarter" -> the partitions' counts
        self.topic_names = {name: prefix + name for name in OUTPUT_TOPICS}
        self.ticks_topic = f"{app_id}-ticks"
        self.changelogs = {table: f"{app_id}-{table}-changelog" for table in STATE_TABLES}
        self.producer: Any = None
        self._held: list[Any] = []  # outputs of contract installs in a processor created mid-unit
        self._sends: list[Any] = []  # delivery futures of the current batch's outputs
        self._key_writes: list[Any] = []  # delivery futures of the previous batch's key writes
        self.counts: Counter[str] = Counter()
        self.stop = asyncio.Event()

    # --- set-up ---------------------------------------------------------------
    async def declare_topics(self) -> None:
        names = [*self.topic_names.values(), self.ticks_topic, *self.changelogs.values()]
        await create_topics(self.broker, names, self.partitions)

    async def read_contracts(self) -> int:
        """Every record of the contracts topic up to its end (as the worker's global table recovery
        reads it); each contract the core accepts is kept for every processor. Returns the count."""
        topic = self.prefix + CONTRACTS
        reader = await start_offsets_consumer(self.servers)
        try:
            await force_metadata_update(reader)
            from aiokafka import TopicPartition

            tps = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
            if not tps:
                return 0
            ends = await correct_end_offsets(reader, await reader.end_offsets(tps))
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            pending = {tp for tp in tps if ends.get(tp)}
            while pending:
                batch = await reader.getmany(*pending, timeout_ms=500)
                for tp, records in batch.items():
                    for record in records:
                        if record.value is None:
                            continue
                        try:
                            self.contracts.append(self.core.contract_of(self.core.decode(record.value))[1])
                        except ValueError:
                            self.counts["contracts_refused"] += 1
                    if records and records[-1].offset + 1 >= (ends[tp] or 0):
                        pending.discard(tp)
            return len(self.contracts)
        finally:
            await reader.stop()

    def processor(self, partition: int) -> Any:
        proc = self.processors.get(partition)
        if proc is None:
            store = PartitionStore(self.backend, partition)
            n = self.partitions
            proc = self.core.new_processor(store, lambda service_id: partition_for_key(service_id, n) == partition)
            for contract in self.contracts:
                self._held.extend(proc.upsert_contract(contract))  # sent with the unit that created it
            self.processors[partition], self.stores[partition] = proc, store
        return proc

    async def _ready(self, partition: int) -> Any:
        """The partition's processor; the outputs of installing the contracts in a new one sent first."""
        proc = self.processor(partition)
        if self._held:
            held, self._held = self._held, []
            await self._send(held)
        return proc

    # --- outputs --------------------------------------------------------------
    def _records(self, outputs: Iterable[Any]) -> list[tuple[str, bytes | None, bytes]]:
        """(topic, key, value) of each output, routed as the worker routes them; an attainment
        partial is folded into its quarter here and only the report, once complete, is sent."""
        core, records = self.core, []
        for output in outputs:
            topic, key_field = OUTPUT_ROUTES[core.output_type(output)]
            if topic is None:
                output = self._fold_partial(output)
                if output is None:
                    continue
                topic, key_field = OUTPUT_ROUTES[core.output_type(output)]
            key = core.output_field(output, key_field) if key_field else None
            records.append((self.topic_names[topic], None if key is None else key.encode("utf-8"), core.encode(output)))
        return records

    def _fold_partial(self, partial: Any) -> Any:
        """The worker's attainment agent, in memory: the internal wire form, then the core's sum."""
        partial = self.core.decode_internal(self.core.encode_internal(partial))
        key = f"{partial.fields['customer_id']}|{partial.fields['quarter']}"
        parts = self.attainment.setdefault(key, {})
        if parts.get("reported"):
            return None
        report = self.core.attainment_report(parts, partial, self.partitions)
        if report is not None:
            self.attainment[key] = {"reported": True}
        return report

    async def _send(self, outputs: Iterable[Any]) -> None:
        send = self.producer.send
        for topic, key, value in self._records(outputs):
            self.counts["outputs"] += 1
            # Awaiting send() only appends the record to the producer's batch (it waits only when
            # the buffer is full); the future it returns resolves on the broker's ack.
            self._sends.append(await send(topic, value, key=key))

    async def _dead_letter(self, record: Any, error: str) -> None:
        self.counts["dead_letters"] += 1
        source = {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                  "timestamp": record_seconds(record.timestamp / 1000)}  # aiokafka: ms; a dead letter: s
        await self._send([self.core.dead_letter(source, record.value, error)])

    # --- a unit of work -------------------------------------------------------
    async def apply_batch(self, batch: dict[Any, list[Any]]) -> set[int]:
        """Apply a `getmany` batch (inputs first, then the newest tick of each partition); the
        partitions whose state it touched."""
        touched: set[int] = set()
        ticks: dict[int, bytes] = {}
        for tp, records in batch.items():
            if tp.topic == self.ticks_topic:
                ticks[tp.partition] = records[-1].value
                continue
            for record in records:
                await self._apply(record, touched)
        for partition, raw in sorted(ticks.items()):
            touched.add(partition)
            await self._send((await self._ready(partition)).advance_to(tick_target(decode_tick(raw), self.lateness)))
        return touched

    async def _apply(self, record: Any, touched: set[int]) -> None:
        try:
            event = self.core.decode(record.value)
        except ValueError as exc:  # "code: message", as the codec names it
            await self._dead_letter(record, str(exc))
            return
        self.counts["events"] += 1
        partition = record.partition
        touched.add(partition)
        try:
            outputs, rejected = (await self._ready(partition)).apply(event)
        except Exception as exc:  # a bug of the core: no undo here (the worker rebuilds the partition)
            await self._dead_letter(record, f"{PROCESSING_ERROR}: {type(exc).__name__}: {exc}")
            return
        await self._send(outputs)
        if rejected is not None:
            await self._dead_letter(record, f"{rejected.reason}: {rejected.message}")

    async def persist(self, touched: set[int]) -> None:
        """The worker's `commit_batch` order: outputs acknowledged; the previous batch's key writes
        acknowledged; one write-ahead record per touched partition, acknowledged; the keys sent."""
        sends, self._sends = self._sends, []
        if sends:
            await asyncio.gather(*sends)
        stores = []
        for partition in sorted(touched):
            self.processors[partition].flush()
            stores.append(self.stores[partition])
        if not self.changelog:
            for store in stores:
                store.commit()
            self.backend.writes.clear()
            return
        earlier, self._key_writes = self._key_writes, []
        if earlier:
            await asyncio.gather(*earlier)
        stores = [store for store in stores if store.write_ahead()]
        ahead = await self._send_writes()
        if ahead:
            await asyncio.gather(*ahead)
        for store in stores:
            store.apply_staged()
        self._key_writes = await self._send_writes()

    async def _send_writes(self) -> list[Any]:
        """The tables' writes since the last call, as changelog records (key JSON, as Faust's recovery reads it)."""
        writes, self.backend.writes = self.backend.writes, []
        self.counts["changelog_records"] += len(writes)
        send = self.producer.send
        return [await send(self.changelogs[table], None if value is None else value.encode("utf-8"),
                           key=json.dumps(key).encode(), partition=partition)
                for table, partition, key, value in writes]

    # --- the loop -------------------------------------------------------------
    async def run(self) -> None:
        await self.declare_topics()
        self.producer = AIOKafkaProducer(bootstrap_servers=self.servers, acks="all")
        await self.producer.start()
        consumer = AIOKafkaConsumer(self.prefix + TICKET_EVENTS, self.prefix + MONITORING_EVENTS, self.ticks_topic,
                                    bootstrap_servers=self.servers, group_id=self.app_id,
                                    enable_auto_commit=False, auto_offset_reset="earliest", **GROUP_TIMINGS)
        try:
            self.counts["contracts"] = await self.read_contracts()
            await consumer.start()
            while not self.stop.is_set():
                batch = await consumer.getmany(timeout_ms=self.timeout_ms, max_records=self.max_records)
                if not batch:
                    continue
                started = time.perf_counter()
                touched = await self.apply_batch(batch)
                await self.persist(touched)
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
                self.counts["batches"] += 1
                self.counts["batch_microseconds"] += int((time.perf_counter() - started) * 1e6)
            if self._key_writes:
                await asyncio.gather(*self._key_writes)
        finally:
            await consumer.stop()
            await self.producer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.raw_consumer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True, help="kafka://host:port")
    parser.add_argument("--prefix", required=True, help="topic prefix (the inputs, contracts and outputs)")
    parser.add_argument("--app-id", required=True, help="group id; internal topics are named after it")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--max-records", type=int, default=500)
    parser.add_argument("--timeout-ms", type=int, default=200)
    parser.add_argument("--lateness", type=float, default=30.0, help="a tick moves time to its instant minus this (s)")
    parser.add_argument("--no-changelog", action="store_true", help="keep the state in memory only")
    parser.add_argument("--stats", type=Path, help="write the counts here (JSON) on exit")
    args = parser.parse_args(argv)
    from streams.health import quiet_kafka_client_logs

    quiet_kafka_client_logs()

    async def run() -> None:
        raw = RawConsumer(args.broker, args.prefix, args.app_id, args.partitions, max_records=args.max_records,
                          timeout_ms=args.timeout_ms, lateness=args.lateness, changelog=not args.no_changelog)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, raw.stop.set)
        try:
            await raw.run()
        finally:
            if args.stats is not None:
                args.stats.write_text(json.dumps(dict(raw.counts)) + "\n")

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
