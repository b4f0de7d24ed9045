"""The worker's caught-up check against Faust's consumer bookkeeping (a fake consumer, no broker)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP

from streams.app import _tracker

TOPICS = ["t.sla.ticket-events", "t.sla.monitoring-events"]


class FakeConsumer:
    """What `_tracker` reads of Faust's consumer: ListOffsets ends, `_read_offset`, `_committed_offset`."""

    def __init__(self, ends: dict, read: dict, committed: dict) -> None:
        self.ends, self._read_offset, self._committed_offset = ends, read, committed

    async def highwaters(self, *tps):
        return {tp: self.ends.get(tp) for tp in tps}

    async def earliest_offsets(self, *tps):
        return {tp: 0 for tp in tps}


def _caught_up(consumer: FakeConsumer, processed: dict | None = None) -> bool:
    tracker = _tracker(SimpleNamespace(consumer=consumer), TOPICS)
    for tp, offset in (processed or {}).items():
        tracker.processed(tp, offset)
    return asyncio.run(tracker.caught_up(0))


T, M = TP(TOPICS[0], 0), TP(TOPICS[1], 0)


def test_fully_committed_partition_after_a_seek_is_caught_up():
    # Faust's seek sets _read_offset to the committed offset (the next one to read): nothing is unread.
    consumer = FakeConsumer(ends={T: 10, M: 0}, read={T: 10, M: 0}, committed={T: 10})
    assert _caught_up(consumer)


def test_message_read_past_the_commit_but_not_processed_keeps_it_behind():
    # ListOffsets says 11 (Tansu can answer short), offset 12 was handed to the agent: end is 13.
    consumer = FakeConsumer(ends={T: 11, M: 0}, read={T: 12, M: 0}, committed={T: 10})
    assert not _caught_up(consumer, {T: 10})
    assert _caught_up(consumer, {T: 12})


def test_unprocessed_backlog_is_behind():
    consumer = FakeConsumer(ends={T: 500, M: 3}, read={T: 10, M: None}, committed={T: 10})
    assert not _caught_up(consumer)
    assert not _caught_up(consumer, {T: 499})
    assert _caught_up(consumer, {T: 499, M: 2})


class FakeProbe:
    """An aiokafka consumer for `correct_end_offsets`: `records` per partition answer the fetch;
    a partition without records was reset to `reset_to` (its last records are gone)."""

    def __init__(self, records: dict, reset_to: dict) -> None:
        self.records, self.reset_to, self.seeks = records, reset_to, {}

    def assign(self, tps):
        pass

    def seek(self, tp, offset):
        self.seeks[tp] = offset

    async def getmany(self, *tps, timeout_ms=0):
        await asyncio.sleep(timeout_ms / 1000)
        return {tp: [SimpleNamespace(offset=o) for o in self.records[tp]] for tp in tps if self.records.get(tp)}

    async def position(self, tp):
        return self.reset_to.get(tp, self.seeks[tp])


def test_end_offsets_are_corrected_from_the_last_batch_and_a_gone_record_does_not_stall():
    import time

    from streams.app import correct_end_offsets

    short, emptied, empty = "short", "emptied", "empty"
    probe = FakeProbe(records={short: [6791, 6800, 6818]}, reset_to={emptied: 50})
    started = time.monotonic()
    ends = asyncio.run(correct_end_offsets(probe, {short: 6792, emptied: 50, empty: 0}, wait=2.0))
    assert ends == {short: 6819, emptied: 50, empty: 0}
    assert probe.seeks == {short: 6791, emptied: 49}
    assert time.monotonic() - started < 1.0  # not the 2 s deadline
