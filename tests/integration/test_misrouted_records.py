"""Records on another partition than their key's murmur2 one (review topics F14), on the embedded
broker: what a librdkafka producer (`consistent_random`, CRC32) does to slaproc's input topics.

Every golden scenario (test_stream_equals_replay.combined_golden) is produced with each record put
explicitly on the partition after its key's murmur2 partition. The worker must forward each one to
its partition and apply it there only: every decodable event applied exactly once (its
`slaproc_events_in_total`), each counted in `slaproc_misrouted_records_total`, and the stream's net
outcome and dead letters equal to replay's, each output once. Without the forwarding, monitoring
events are folded on partitions that do not own their service: months never close, refunds never
come, and one ticket's events split over two partitions.

The ticks are sent only once every event was applied: a tick moves a caught-up partition's time, and
one moved to the test's instant before a forwarded backfill event reached it would judge it months
late (the same holds for any backfill a partition catches up with before the rest is written).
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from aiokafka import AIOKafkaProducer

from streams.app import partition_for_key
from streams.core_adapter import RealCore
from streams.kafka_config import KafkaSettings, producer_kwargs
from streams.testing.harness import metric_sum, route, scrape, wait_until
from tests.golden_support import scenarios
from tests.integration.test_stream_equals_replay import (PARTITIONS, assert_same_outcome, combined_golden,
                                                         load_contracts, new_app, replay_and_stream,
                                                         run_until_final)

pytestmark = pytest.mark.broker
UTC = timezone.utc


async def produce_misrouted(broker_url: str, prefix: str, lines: list[bytes]) -> int:
    """Each keyed line on the partition after its key's murmur2 one; returns how many were."""
    producer = AIOKafkaProducer(**producer_kwargs(broker_url, KafkaSettings(), linger_ms=5))
    await producer.start()
    moved = 0
    try:
        futures = []
        for line in lines:
            topic, key = route(line)
            partition = None
            if key is not None:
                partition = (partition_for_key(key, PARTITIONS) + 1) % PARTITIONS
                moved += 1
            futures.append(await producer.send(prefix + topic, line, key=key, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return moved


def applied(samples: dict) -> float:
    """Input events the worker applied (decoded and handed to a processor), contracts left out."""
    return (metric_sum(samples, "slaproc_events_in_total")
            - metric_sum(samples, "slaproc_events_in_total", type="contract.upserted"))


def _decodable(lines: list[bytes]) -> int:
    core = RealCore()
    n = 0
    for line in lines:
        try:
            core.decode(line)
        except ValueError:
            continue
        n += 1
    return n


def test_misrouted_records_are_applied_once_on_their_partition(broker_url, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    contracts, events = combined_golden(tmp_path, now)
    lines = events.read_bytes().splitlines()
    decodable = _decodable(lines)
    app = new_app(tmp_path, broker_url)
    try:
        worker = app.start()
        asyncio.run(load_contracts(app, contracts, [worker.url]))
        moved = asyncio.run(produce_misrouted(broker_url, app.prefix, lines))
        wait_until(lambda: applied(scrape(worker.url)) >= decodable, 120, what=f"{decodable} input events applied")
        at = datetime.now(UTC).replace(microsecond=0)
        run_until_final(app, [worker], at)
        samples = scrape(worker.url)
        replay, stream = replay_and_stream(app, events, contracts, at)
    finally:
        app.stop_all()
    misrouted = {t: metric_sum(samples, "slaproc_misrouted_records_total", topic=app.prefix + t)
                 for t in ("sla.ticket-events", "sla.monitoring-events")}
    print(f"\n{len(lines)} lines of {len(scenarios())} scenarios, {moved} put on a wrong partition, "
          f"{decodable} decodable; misrouted {misrouted}")
    counts = assert_same_outcome(replay, stream)  # and no output twice: no event applied twice
    assert counts["months"] > 20 and counts["refunds"] > 0 and counts["met"] > 20
    # every decodable event was forwarded once and applied once (on its own partition)
    assert sum(misrouted.values()) == decodable and all(misrouted.values())
    assert applied(samples) == decodable


def test_a_large_record_is_forwarded_and_a_copy_is_never_forwarded_again(broker_url, tmp_path):
    """Review of F14, findings 1 and 5, on the broker: a valid record over Faust's default
    1,000,000 B producer request cap is forwarded and applied on its partition (was: the send
    raised, the worker exited, restarted on it for ever); a copy found off its partition (workers
    with another SLAPROC_PARTITIONS) is a `misrouted_copy` dead letter, not forwarded again."""
    import json

    from streams.app import FORWARDED_FROM

    def event(ticket: str, pad: int = 0) -> bytes:
        raw = json.dumps({"event_id": f"e-{ticket}", "type": "ticket.replied", "ticket_id": ticket,
                          "occurred_at": "2026-02-02T10:00:00Z", "author": "provider", "public": True}).encode()
        return raw[:-1] + b" " * max(0, pad - len(raw)) + b"}" if pad else raw

    async def produce(prefix: str) -> None:
        producer = AIOKafkaProducer(**producer_kwargs(broker_url, KafkaSettings(), max_request_size=1_040_000))
        await producer.start()
        try:
            topic = prefix + "sla.ticket-events"
            off = (partition_for_key("BIG", PARTITIONS) + 1) % PARTITIONS
            await producer.send_and_wait(topic, event("BIG", pad=1_010_000), key=b"BIG", partition=off)
            off = (partition_for_key("COPY", PARTITIONS) + 1) % PARTITIONS
            await producer.send_and_wait(topic, event("COPY"), key=b"COPY", partition=off,
                                         headers=[(FORWARDED_FROM, b"sla.ticket-events/0/1")])
        finally:
            await producer.stop()

    contracts, _events = combined_golden(tmp_path, datetime.now(UTC).replace(microsecond=0))
    app = new_app(tmp_path, broker_url)
    try:
        worker = app.start()
        asyncio.run(load_contracts(app, contracts, [worker.url]))  # the worker's topics exist
        asyncio.run(produce(app.prefix))
        # BIG applied once (on its partition, after its forward); COPY dead-lettered where it is
        wait_until(lambda: metric_sum(scrape(worker.url), "slaproc_dead_letters_total", reason="misrouted_copy") >= 1
                   and applied(scrape(worker.url)) >= 1, 90, what="BIG applied, COPY dead-lettered")
        samples = scrape(worker.url)
    finally:
        app.stop_all()
    assert applied(samples) == 1
    assert metric_sum(samples, "slaproc_misrouted_records_total") == 2
    assert metric_sum(samples, "slaproc_dead_letters_total", reason="forward_failed") == 0
