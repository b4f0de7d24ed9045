"""streams/compat.guard_commits: Faust never commits past an input offset that was not processed.

The lost `sla.met` of `test_second_worker_mid_stream_equals_replay` (docs/stream.md, "Framework
facts"): a commit past an offset whose event was never processed, followed by a rebalance that
moves the partition to the other worker, loses that event for good (the other worker starts at
the commit). Faust 0.15.3 decides the offset to commit from its acked offsets and its "gaps"
(`Consumer._new_offset`), and these let it pass an unprocessed offset:

- `_new_offset` returns nothing only if the lowest acked offset is *more than one* past the
  committed offset: with N committed and never acked, N+1... acked, it commits past N;
- the reading loop (`_drain_messages`) records offsets r+1..o as a gap when a record o arrives
  after read offset r, and a seek back to the committed offset c sets r to c: records c..k
  already handed to the agents become a "gap" when the rest of a fetch made before the seek
  (k+1...) arrives, and a gap counts as done whether those records were processed or not;
- a stream acks the records it skips (flow control suspended, earlier generation) unprocessed.

These tests drive Faust's own `Consumer` bookkeeping: its real reading loop (`_drain_messages`,
where gaps are found), `Message.ack` -> `Consumer.ack`, `perform_seek` and the commit decision
(`_filter_committable_offsets`, the offsets `force_commit` sends), around a broker that is a
list of records per offset and a stream reduced to its skip-or-track rule. Without the guard,
the 7 cases that name an unprocessed record commit past it; the others check that the guard
neither holds the commit on offsets the broker skipped nor forgets processed records. The cases
after "from the review of 2026-12-04" each fail with the rule or fix they name removed. What this
harness models is Faust's pure-Python stream path (`Message.ack` -> `Consumer.ack`); the Cython
iterator production runs never acks a skipped record and counts processed ones without
`Consumer.ack`, which is why the rules live in `_new_offset` and `_add_gap`.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from weakref import WeakSet

import pytest
from intervaltree import IntervalTree
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP
from faust.types.tuples import ConsumerMessage, Message

from streams import compat

INPUT = TP("sla.ticket-events", 0)


class Stopped:
    """`Service._stopped` of a reading loop that reads one fetch and ends."""

    def __init__(self) -> None:
        self.done = False

    def is_set(self) -> bool:
        return self.done


class FlowControl:
    """Faust's `app.flow_control`, suspended from the start of a rebalance until the recovery ends."""

    def __init__(self) -> None:
        self.active = True

    def is_active(self) -> bool:
        return self.active


class Worker:
    """One Faust consumer, its reading loop over scripted fetches, and its commits."""

    def __init__(self, committed: int | None = None) -> None:
        compat.guard_commits()
        consumer = Consumer.__new__(Consumer)  # Faust's consumer, without a broker or an app
        consumer.__dict__.update(
            app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
                                flow_control=FlowControl(), consumer_generation_id=1),
            diag=SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None),
            suspend_flow=asyncio.Event(), _commit_every=None, _n_acked=0, _waiting_for_ack=None, _crashed=Stopped(),
            log=SimpleNamespace(dev=lambda *a: None, info=lambda *a: None, exception=self._raise),
            # as Consumer.__init__ makes them
            _gap=defaultdict(IntervalTree), _acked=defaultdict(list), _acked_index=defaultdict(set),
            _read_offset=defaultdict(lambda: None), _committed_offset=defaultdict(lambda: None),
            _unacked_messages=WeakSet())
        self.consumer = consumer
        self.broker_committed = committed
        self.delivered: list[Message] = []
        consumer.callback = self._deliver
        consumer.seek_to_committed = self._seek_to_committed
        consumer.wait_first = self._wait_first
        consumer.sleep = self._sleep
        self.run(self.consumer.perform_seek())  # the assignment: seek to the committed offset

    @staticmethod
    def _raise(text: str, exc: BaseException) -> None:
        raise exc

    @staticmethod
    def run(coroutine):
        return asyncio.run(coroutine)

    async def _seek_to_committed(self):
        return {INPUT: self.broker_committed}

    async def _deliver(self, message: Message) -> None:
        message.incref()  # the conductor, for the one agent reading the topic
        self.delivered.append(message)

    @staticmethod
    async def _wait_first(*coroutines):
        await coroutines[0]
        for other in coroutines[1:]:
            other.close()

    @staticmethod
    async def _sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    def fetch(self, *offsets: int) -> list[int]:
        """Faust's reading loop over one fetch of `offsets`; returns the offsets it handed to the
        agents (it drops those below its read offset)."""
        stopped, before = Stopped(), len(self.delivered)

        async def getmany(timeout: float):
            for offset in offsets:
                yield INPUT, ConsumerMessage(INPUT.topic, INPUT.partition, offset, 0.0, 0, None, b"k", b"v", None,
                                             generation_id=self.consumer.app.consumer_generation_id)
            stopped.done = True

        self.consumer.getmany = getmany
        self.consumer._stopped = stopped
        self.run(self.consumer._drain_messages(SimpleNamespace(_stopped=stopped)))
        return [m.offset for m in self.delivered[before:]]

    def process(self, *offsets: int) -> None:
        """The agent's stream takes these delivered records from its queue and acks them once
        processed, or skips them and acks them at once (`Stream.__aiter__`: while the flow
        control is suspended, or a record fetched in an earlier generation; a record it does
        process is tracked first)."""
        app = self.consumer.app
        for message in [m for m in self.delivered if m.offset in offsets]:
            if app.flow_control.is_active() and message.generation_id == app.consumer_generation_id:
                message.tracked = True
                self.consumer.unacked.add(message)
            message.ack(self.consumer)

    def take(self, *offsets: int) -> list[Message]:
        """The stream takes these records to process them (a batch); `Message.ack` them later."""
        taken = [m for m in self.delivered if m.offset in offsets]
        for message in taken:
            message.tracked = True
            self.consumer.unacked.add(message)
        return taken

    def seek_back(self) -> None:
        """Faust's seek to the committed offsets (after a table recovery, a rebalance, a fetch
        made while its flow was stopped)."""
        self.run(self.consumer.perform_seek())

    def commit(self) -> int | None:
        """What `force_commit` would commit now; recorded as committed, as `_commit_offsets` does."""
        offsets = self.consumer._filter_committable_offsets([INPUT])
        self.consumer._committed_offset.update(offsets)
        if INPUT in offsets:
            self.broker_committed = offsets[INPUT]
        return offsets.get(INPUT)

    @property
    def committed(self) -> int | None:
        return self.broker_committed


def test_processed_records_are_committed():
    worker = Worker(committed=100)
    assert worker.fetch(*range(100, 110)) == list(range(100, 110))
    worker.process(*range(100, 105))
    assert worker.commit() == 105
    worker.process(*range(105, 110))
    assert worker.commit() == 110
    assert worker.commit() is None  # nothing new


def test_unprocessed_committed_offset_is_not_passed():
    # (a) N committed and never acked, N+1... acked: Faust's check lets one unacked offset through
    worker = Worker(committed=100)
    worker.fetch(*range(100, 110))
    worker.process(*range(101, 110))
    worker.commit()
    assert worker.committed == 100
    worker.process(100)
    assert worker.commit() == 110


@pytest.mark.parametrize("processed_before_the_seek", [[], [100]])
def test_records_handed_out_before_a_seek_back_are_not_passed(processed_before_the_seek):
    # (b) records 100..109 handed to the agents, at most 100 processed; a seek back to the
    # committed offset 100 (after a table recovery, or a fetch made while Faust's flow was
    # stopped); the rest of the fetch made before the seek (110..119) arrives and looks like a
    # jump over 101..110; the fetch after the seek brings 100..118 again, below Faust's read
    # offset now (dropped). 101..109 still wait in an agent's buffer.
    worker = Worker(committed=100)
    assert worker.fetch(*range(100, 110)) == list(range(100, 110))
    worker.process(*processed_before_the_seek)
    worker.seek_back()
    assert worker.fetch(*range(110, 120)) == list(range(110, 120))
    assert worker.fetch(*range(100, 119)) == []
    worker.process(*range(110, 120))
    worker.commit()
    assert worker.committed == (101 if processed_before_the_seek else 100)
    worker.process(*range(100, 110))
    assert worker.commit() == 120


def test_records_cleared_from_a_queue_hold_the_commit_until_read_again():
    # the next rebalance clears the agents' queues (Faust's `flow_control.clear()`): 101..109
    # are never processed by this generation; the commit stays before them, and the next
    # assignment's seek to the committed offset reads them again from there
    worker = Worker(committed=100)
    worker.fetch(*range(100, 110))
    worker.process(100)
    worker.seek_back()
    worker.fetch(*range(110, 120))
    worker.process(*range(110, 120))
    assert worker.commit() == 101
    worker.delivered.clear()  # the queues, cleared
    worker.seek_back()  # the next assignment
    assert worker.fetch(*range(101, 120)) == list(range(101, 120))
    worker.process(*range(101, 120))
    assert worker.commit() == 120


@pytest.mark.parametrize("committed", [100, None])
def test_offsets_the_broker_skipped_do_not_hold_the_commit(committed):
    # compacted or transactional topics have offsets no record has; Faust reads them as gaps
    worker = Worker(committed=committed)
    start = committed or 0
    assert worker.fetch(*range(start, start + 5), *range(start + 10, start + 15)) == \
        [*range(start, start + 5), *range(start + 10, start + 15)]
    worker.process(*range(start, start + 5), *range(start + 10, start + 14))
    worker.commit()
    assert worker.committed <= start + 14  # the last record is not processed yet
    worker.process(start + 14)
    worker.commit()
    worker.commit()
    assert worker.committed == start + 15  # the missing offsets never hold it


def test_a_skipped_committed_offset_does_not_hold_the_commit():
    # the record at the committed offset itself was compacted away: the first one read is 101
    worker = Worker(committed=100)
    assert worker.fetch(*range(101, 105)) == list(range(101, 105))
    worker.process(*range(101, 105))
    assert worker.commit() == 105


def test_several_skipped_offsets_from_the_committed_one_do_not_hold_the_commit():
    worker = Worker(committed=100)
    assert worker.fetch(103, 104) == [103, 104]
    worker.process(103, 104)
    worker.commit()
    worker.commit()
    assert worker.committed == 105


@pytest.mark.parametrize("rebalance", ["flow stopped", "next generation"])
def test_a_record_a_stream_skipped_is_not_counted_as_processed(rebalance):
    # Faust's stream acks a record it takes from a queue while the flow control is suspended
    # (the rebalance has begun) or that was fetched in an earlier generation, unprocessed
    worker = Worker(committed=100)
    worker.fetch(*range(100, 105))
    worker.process(*range(100, 104))
    if rebalance == "flow stopped":
        worker.consumer.app.flow_control.active = False
    else:
        worker.consumer.app.consumer_generation_id += 1
    worker.process(104)  # skipped by the stream
    assert len(worker.consumer.unacked) == 0  # done with, for Faust's wait for the agents
    worker.commit()
    assert worker.committed == 104
    worker.consumer.app.flow_control.active = True
    worker.seek_back()  # the assignment
    assert worker.fetch(104) == [104]
    worker.process(104)
    assert worker.commit() == 105


def test_a_batch_processed_while_a_rebalance_begins_is_counted():
    # the agent's batch was taken before the flow control was suspended and is acked after
    # (Faust waits for it before its last commit of the revoked partitions)
    worker = Worker(committed=100)
    worker.fetch(*range(100, 110))
    batch = worker.take(*range(100, 110))
    worker.consumer.app.flow_control.active = False
    for message in batch:
        message.ack(worker.consumer)
    assert worker.commit() == 110


def test_the_last_commit_of_a_revoked_partition_does_not_pass_a_skipped_record():
    # A revocation: Faust suspends the flow control, clears the agents' queues, forgets its
    # bookkeeping of the revoked partitions (`Consumer.on_partitions_revoked`) and commits what
    # the agents ack meanwhile. Record 104 reaches the cleared queue afterwards (its conductor was
    # waiting for the producer); the stream skips it and acks it. With no committed offset known
    # any more, Faust would commit 105 for the worker that takes the partition over.
    worker = Worker(committed=100)
    worker.fetch(*range(100, 105))
    worker.process(*range(100, 104))
    assert worker.commit() == 104
    worker.consumer.app.flow_control.active = False
    for bookkeeping in ("_gap", "_acked", "_acked_index", "_read_offset", "_committed_offset"):
        getattr(worker.consumer, bookkeeping).pop(INPUT, None)
    worker.process(104)  # skipped
    worker.commit()
    assert worker.committed == 104


# --- from the review of 2026-12-04 ----------------------------------------------------------

def test_the_first_record_after_a_broker_gap_is_not_passed_unprocessed():
    # the arriving record is not part of the gap it ends: 110 arrives after 104, is never
    # processed, and 111 is: the commit stays at 110
    worker = Worker(committed=100)
    assert worker.fetch(*range(100, 105), 110, 111) == [*range(100, 105), 110, 111]
    worker.process(*range(100, 105), 111)
    worker.commit()
    worker.commit()
    assert worker.committed == 110


def test_one_record_handed_out_before_a_seek_back_is_not_passed():
    # only the committed record itself was handed out before the seek; the rest of that fetch
    # (101..103) arrives after it and is processed: 100 still waits in a queue
    worker = Worker(committed=100)
    assert worker.fetch(100) == [100]
    worker.seek_back()
    assert worker.fetch(101, 102, 103) == [101, 102, 103]
    worker.process(101, 102, 103)
    worker.commit()
    assert worker.committed == 100


@pytest.mark.parametrize("committed, offsets", [(1, (2, 3, 4)), (None, (0, 2, 3, 4))])
def test_a_gap_after_read_offset_zero_does_not_stop_the_commit(committed, offsets):
    # Faust's reading loop tests the read offset for truth: after record 0, or after a seek to
    # committed offset 1 (read offset 0), a jump over offset 1 (a transaction marker, a record
    # compacted away) was never recorded and the commit stopped at 1 for good
    worker = Worker(committed=committed)
    assert worker.fetch(*offsets) == list(offsets)
    worker.process(*offsets)
    worker.commit()
    worker.commit()
    assert worker.committed == 5


def test_a_broker_gap_in_the_reread_after_a_revocation_does_not_hold_the_commit():
    # 103 has no record (a transaction marker). A revocation pops Faust's bookkeeping, then the
    # reading loop's record in flight sets the read offset to 106 after the pop; the assignment's
    # seek goes back to 100 and the re-read jumps 102 -> 104: a real gap, below the highest record
    # handed out before the seek. Clipped as if it were the tail of the old fetch, it held the
    # commit at 103 until the next rebalance.
    worker = Worker(committed=100)
    worker.fetch(100, 101, 102, 104, 105, 106)
    for bookkeeping in ("_gap", "_acked", "_acked_index", "_read_offset", "_committed_offset"):
        getattr(worker.consumer, bookkeeping).pop(INPUT, None)
    worker.consumer._read_offset[INPUT] = 106  # the record in flight, set after the pop
    worker.delivered.clear()  # the queues, cleared by the revocation
    worker.seek_back()  # the next assignment
    assert worker.fetch(100, 101, 102, 104, 105, 106, 107, 108) == [100, 101, 102, 104, 105, 106, 107, 108]
    worker.process(100, 101, 102, 104, 105, 106, 107, 108)
    worker.commit()
    worker.commit()
    assert worker.committed == 109


def test_held_commits_do_not_pass_a_batch_acked_as_its_failed_agent_is_torn_down():
    # the agent raised on a batch (e.g. the producer refused its outputs); Faust's take_events
    # acks the batch in its finally when the loop is torn down; the worker is stopping and holds
    # its commits (compat.hold_commits, called by the agent's supervisor before any await)
    worker = Worker(committed=100)
    worker.fetch(*range(100, 110))
    worker.process(*range(100, 105))
    assert worker.commit() == 105
    batch = worker.take(*range(105, 110))
    compat.hold_commits(worker.consumer)
    for message in batch:
        message.ack(worker.consumer)
    assert worker.commit() is None
    assert worker.committed == 105
