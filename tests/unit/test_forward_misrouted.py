"""The forwarding of misrouted input records (review of F14, findings 1, 4 and 5), without a broker.

The worker is the real one (`build_worker_app`); its producer is Faust's, over a real aiokafka
producer whose only fakes are the metadata (12 partitions, no connection): each send runs Faust's
timestamp conversion and aiokafka's size check, partition check and record-batch append, which is
where the review's repros failed (/tmp/rv/size.py, /tmp/rv/ts.py)."""
from __future__ import annotations

import asyncio
import json
import tempfile
from types import SimpleNamespace
from typing import Any

from aiokafka import AIOKafkaProducer

from streams.app import FORWARDED_FROM, TICKET_EVENTS, partition_for_key
from streams.settings import WorkerSettings
from streams.testing.harness import metric_sum
from streams.worker import build_worker_app

PARTITIONS = 12


def _event(ticket: str = "T1", pad: int = 0) -> bytes:
    obj = {"event_id": f"e-{ticket}", "type": "ticket.replied", "occurred_at": "2026-02-02T10:00:00Z",
           "ticket_id": ticket, "author": "provider", "public": True}
    raw = json.dumps(obj).encode()
    return raw[:-1] + b" " * max(0, pad - len(raw)) + b"}" if pad else raw


class Sent(list):
    """What reached the producer's accumulator: (topic, partition, timestamp_ms, headers, value);
    `futures`: their delivery futures, in the same order."""

    futures: list


async def _worker() -> tuple[Any, Sent]:
    app = build_worker_app(WorkerSettings(broker="kafka://127.0.0.1:1", data_dir=tempfile.mkdtemp(),
                                          web_enabled=False, partitions=PARTITIONS))
    worker = app.slaproc
    kafka = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", max_request_size=app.conf.producer_max_request_size)

    async def no_wait(topic: str) -> None:
        return None

    kafka.client._wait_on_metadata = no_wait
    kafka._metadata.partitions_for_topic = lambda t: set(range(PARTITIONS))
    kafka._metadata.available_partitions_for_topic = lambda t: set(range(PARTITIONS))
    sent = Sent()
    sent.futures = []
    real_send = kafka.send

    async def send(topic, value=None, key=None, partition=None, timestamp_ms=None, headers=None):
        future = await real_send(topic, value, key=key, partition=partition, timestamp_ms=timestamp_ms,
                                 headers=headers)
        sent.append((topic, partition, timestamp_ms, headers, value))
        sent.futures.append(future)
        return future

    kafka.send = send
    app.producer._producer = kafka
    return worker, sent


def _message(value: bytes, partition: int, timestamp: float = 1_770_000_000.0, headers: Any = None) -> Any:
    return SimpleNamespace(topic=TICKET_EVENTS, partition=partition, offset=7, key=b"T1", value=value,
                           timestamp=timestamp, headers=headers, tp=(TICKET_EVENTS, partition))


def _off(ticket: str = "T1") -> int:
    return (partition_for_key(ticket, PARTITIONS) + 1) % PARTITIONS


def _drop_deliveries(worker: Any) -> None:
    """The unit's pending deliveries, not awaited here (no broker answers them)."""
    for pending in worker._pending_sends:
        close = getattr(pending, "close", None)
        if close is not None:
            close()
    worker._pending_sends = []


def _dead_letters(sent: Sent) -> list[dict]:
    return [json.loads(v) for t, _p, _ts, _h, v in sent if t.endswith("dead-letter")]


def test_a_valid_record_as_large_as_the_codec_accepts_is_forwarded():
    async def run():
        worker, sent = await _worker()
        raw = _event(pad=1_020_000)  # decodes (< 1 MiB); over Faust's default 1,000,000 B request cap
        worker.core.decode(raw)
        big_headers = [("trace", b"x" * 20_000)]
        assert await worker._forward_misrouted(_message(raw, _off(), headers=big_headers), worker.core.decode(raw))
        _drop_deliveries(worker)
        return sent

    sent = asyncio.run(run())
    assert [(t, p) for t, p, *_ in sent] == [(TICKET_EVENTS, partition_for_key("T1", PARTITIONS))]
    assert sent[0][3] == [("trace", b"x" * 20_000), (FORWARDED_FROM, f"{TICKET_EVENTS}/{_off()}/7".encode())]


def test_an_unforwardable_record_is_a_dead_letter_and_the_worker_goes_on():
    async def run():
        worker, sent = await _worker()
        raw = _event()
        # headers beyond any request size: the producer refuses the copy (was: the agent crashed,
        # the worker restarted on the same record for ever)
        message = _message(raw, _off(), headers=[("blob", b"x" * (3 << 20))])
        assert await worker._forward_misrouted(message, worker.core.decode(raw))
        return worker, sent

    worker, sent = asyncio.run(run())
    letters = _dead_letters(sent)
    assert [d["reason"] for d in letters] == ["forward_failed"]
    assert "MessageSizeTooLargeError" in letters[0]["error"] and letters[0]["source"].startswith(TICKET_EVENTS)
    assert not [s for s in sent if s[0] == TICKET_EVENTS]  # nothing forwarded
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for m in worker.metrics.registry.collect() for s in m.samples}
    assert metric_sum(samples, "slaproc_dead_letters_total", reason="forward_failed") == 1


def test_a_timestamp_the_producer_cannot_encode_is_left_to_the_broker():
    async def run():
        worker, sent = await _worker()
        raw = _event()
        for stamp in ((2 ** 63 - 1) / 1000.0, 1_770_000_000.5):
            assert await worker._forward_misrouted(_message(raw, _off(), timestamp=stamp), worker.core.decode(raw))
        _drop_deliveries(worker)
        return sent

    sent = asyncio.run(run())
    assert [ts for _t, _p, ts, _h, _v in sent] == [None, 1_770_000_000_500]  # was: OverflowError, agent down
    assert not _dead_letters(sent)


def test_a_forwarded_copy_is_never_forwarded_again():
    async def run():
        worker, sent = await _worker()
        raw = _event()
        tag = [(FORWARDED_FROM, f"{TICKET_EVENTS}/3/7".encode())]
        assert await worker._forward_misrouted(_message(raw, _off(), headers=tag), worker.core.decode(raw))
        # a copy on its own partition is applied there (not handled by the forward)
        home = partition_for_key("T1", PARTITIONS)
        assert not await worker._forward_misrouted(_message(raw, home, headers=tag), worker.core.decode(raw))
        return sent

    sent = asyncio.run(run())
    letters = _dead_letters(sent)
    assert [d["reason"] for d in letters] == ["misrouted_copy"]
    assert f"forwarded from {TICKET_EVENTS}/3/7" in letters[0]["error"]
    assert not [s for s in sent if s[0] == TICKET_EVENTS]


class _FinalMonth:
    """A processor that refuses every event as `month_final` (what the core answers for a monitoring
    event whose month's claim window is over: policies/processor.py `_check_month_final`)."""

    def apply(self, event: Any) -> tuple[list, Any]:
        from policies.outputs import Rejected

        return [], Rejected("month_final", "would change 2026-01 of service 'cloud', final since ...")


def _unit(headers: Any) -> tuple[Any, Sent]:
    async def run():
        worker, sent = await _worker()
        home = partition_for_key("T1", PARTITIONS)
        worker.processor = lambda partition: _FinalMonth()

        async def commit() -> None:
            return None

        worker.commit_batch = commit
        worker.tracker = SimpleNamespace(processed=lambda tp, offset: None)
        await worker._input_batch([SimpleNamespace(message=_message(_event(), home, headers=headers))])
        return worker, sent

    return asyncio.run(run())


def test_a_repeated_copy_the_core_refuses_as_final_is_dropped_and_counted():
    # a re-read from offset 0 forwards an old misrouted record again: its copy reaches a month that
    # became final since the first copy was applied; replay has no such dead letter
    worker, sent = _unit([(FORWARDED_FROM, f"{TICKET_EVENTS}/3/7".encode())])
    assert not _dead_letters(sent)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for m in worker.metrics.registry.collect() for s in m.samples}
    assert metric_sum(samples, "slaproc_forwarded_copies_dropped_total", reason="month_final") == 1
    assert metric_sum(samples, "slaproc_dead_letters_total") == 0
    # a record produced there (not a copy) is still a month_final dead letter
    worker, sent = _unit(None)
    assert [d["reason"] for d in _dead_letters(sent)] == ["month_final"]


def test_a_copy_the_broker_refuses_is_a_dead_letter_before_the_unit_commits():
    from aiokafka.errors import MessageSizeTooLargeError

    async def run():
        worker, sent = await _worker()
        raw = _event()
        assert await worker._forward_misrouted(_message(raw, _off()), worker.core.decode(raw))
        # the record was at the topic's max.message.bytes; its copy, one header larger, is not
        sent.futures[0].set_exception(MessageSizeTooLargeError("refused by the broker"))
        done = asyncio.ensure_future(worker.commit_batch())  # was: raised, the agent and worker down
        for _ in range(1000):  # a few loop turns: commit_batch sends the dead letter
            if len(sent.futures) == 2:
                break
            await asyncio.sleep(0)
        assert not done.done()  # the unit waits for the dead letter's ack
        sent.futures[1].set_result(None)
        await done
        return sent

    letters = _dead_letters(asyncio.run(run()))
    assert [d["reason"] for d in letters] == ["forward_failed"] and "broker refused" in letters[0]["error"]
