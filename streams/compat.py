"""Every use of a private Faust or aiokafka API, in one place, for the versions it was read from.

The shell needs seven things Faust and aiokafka do not offer publicly. Each is here with why and the
upstream issue it works around; nothing else in `streams/` or `bench/` reads a private attribute of
those libraries or patches one of their classes (`tests/unit/test_compat.py` greps for it).

| use | why | upstream |
|---|---|---|
| `consumer._committed_offset` (`committed_offset`) | the caught-up check needs the offset Faust sought to on assignment without a round trip; `Consumer` has no public getter | faust-streaming/faust#318 (commit bookkeeping after rebalances) |
| `consumer._read_offset` (`read_offset`) | a record fetched but not yet processed must keep a partition "behind" (ticks skipped) | faust-streaming/faust#221 (prefetched records after a rebalance) |
| `AIOKafkaConsumerThread._highwaters` patched (`correct_end_offsets_with`) | Tansu answers ListOffsets(latest) with the last *batch*'s base offset + 1; Faust's table recovery stopped short of a changelog's last batch (`ConsistencyError`) | Tansu (tansu-io/tansu), no issue found; kpn/kstreams#126 is the same symptom on another client |
| `AIOKafkaConsumerThread.seek_to_committed` patched (`seek_uncommitted_to_reset_position`) | aiokafka's seek-to-committed skips partitions with no commit, so records Faust dropped during a rebalance were never read again | faust-streaming/faust#216 (records skipped around a rebalance) |
| `AIOKafkaConsumerThread._fetch_records` patched (`fetch_only_active_partitions`) | Faust passes its live set of active partitions to aiokafka's `fetched_records()`, which reads an empty set as "all": paused input partitions were drained during table recovery and a record from their end could reach an agent before Faust's seek back to the committed offset (kill -9 divergence) | none found; faust-streaming/faust#216 is the same family (records around a rebalance) |
| `Consumer._new_offset`, `_add_gap`, `perform_seek`, `ack`, `_drain_messages` patched, `_read_offset` replaced (`guard_commits`, `hold_commits`) | Faust's commit arithmetic could commit past a record no agent processed (a one-off check, gaps made by a seek back, records a stream skipped); a rebalance then lost that event (`test_second_worker_mid_stream_equals_replay`) | faust-streaming/faust#606 (wrong offset commit in case of gaps, open); the skipped records' acks came with faust-streaming/faust#223 |
| `Recovery.on_recovery_completed`, `Recovery._resume_streams` wrapped (`seek_before_resuming_streams`) | both resume the input partitions, then seek them to the committed offsets through the consumer thread, which waits behind the fetch long-poll (~0.9 s after a short recovery, as with `SLAPROC_STATE_DIR`): the agents processed the records fetched meanwhile, the ones in flight at the seek were dropped and the stream went on after them, so the next incarnation read them late (kill -9 divergence, `test_a_worker_killed_every_few_seconds_finishes_the_backfill_with_replays_net_outcome`) | none found; faust-streaming/faust#216 is the same family |
| `consumer._client.force_metadata_update()` (`force_metadata_update`) | the benchmark waits for a topic created a moment ago to be known | aiokafka has no public metadata refresh on a consumer |

`check_versions()` compares the installed versions with `TESTED`; `slaproc worker` refuses to start
on any other version unless `SLAPROC_ALLOW_UNTESTED_VERSIONS=1` (docs/operations.md), because a
private attribute that moved fails silently (a `getattr` default, a patch of a method no longer
called), not loudly.
"""
from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

__all__ = ["TESTED", "ALLOW_UNTESTED_ENV", "UntestedVersionError", "check_versions", "require_tested_versions",
           "committed_offset", "read_offset", "correct_end_offsets_with", "seek_uncommitted_to_reset_position",
           "fetch_only_active_partitions", "seek_before_resuming_streams", "guard_commits", "hold_commits",
           "force_metadata_update", "deliver_directly", "direct_delivery"]

#: Distribution -> the exact version the private uses below were read from and tested with
#: (the pins of pyproject.toml and constraints.txt).
TESTED: Mapping[str, str] = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "mode-streaming": "0.7.1"}

#: Set to 1 to start on untested versions anyway (a warning instead of an exit).
ALLOW_UNTESTED_ENV = "SLAPROC_ALLOW_UNTESTED_VERSIONS"


class UntestedVersionError(RuntimeError):
    """Installed Faust/aiokafka versions differ from `TESTED`; `problems` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def check_versions(installed: Callable[[str], str] = importlib.metadata.version) -> list[str]:
    """One line per distribution whose installed version is not the tested one (or is missing)."""
    problems = []
    for dist, tested in TESTED.items():
        try:
            version = installed(dist)
        except importlib.metadata.PackageNotFoundError:
            version = None
        if version != tested:
            problems.append(f"{dist} {version or '(not installed)'} is installed, slaproc is tested with {tested} "
                            f"only (streams/compat.py uses its private API); install the pinned version "
                            f"(constraints.txt) or set {ALLOW_UNTESTED_ENV}=1 to start anyway")
    return problems


def require_tested_versions(allow_untested: bool = False,
                            installed: Callable[[str], str] = importlib.metadata.version) -> list[str]:
    """Raise UntestedVersionError on an untested version, unless `allow_untested` (then the
    problems are returned, for a warning)."""
    problems = check_versions(installed)
    if problems and not allow_untested:
        raise UntestedVersionError(problems)
    return problems


# --- reads of Faust's consumer bookkeeping --------------------------------------------------

def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset Faust last committed or sought to on assignment for `tp` (None: none known).
    `Consumer._committed_offset`, filled by `perform_seek()` and by commits."""
    return getattr(consumer, "_committed_offset", {}).get(tp)


def read_offset(consumer: Any, tp: Any) -> int | None:
    """The offset of the last record Faust handed to a stream for `tp` (`Consumer._read_offset`);
    after a seek to the committed offset c it is c - 1 (`guard_commits`; Faust alone sets c)."""
    offsets = getattr(consumer, "_read_offset", {})
    return offsets.get(tp) if hasattr(offsets, "get") else None


# --- patches of Faust's aiokafka consumer thread ---------------------------------------------

def correct_end_offsets_with(start_probe: Callable[[str, Any], Awaitable[Any]],
                             correct: Callable[[Any, dict[Any, int | None]], Awaitable[dict[Any, int | None]]],
                             ) -> None:
    """Make Faust's `highwaters()` (ListOffsets latest; table recovery reads changelogs up to it)
    pass its answer through `correct(probe, ends)` (aiokafka TopicPartition keys), `probe` being a
    consumer of its own started once per consumer thread by `start_probe(bootstrap_servers, conf)`.
    Idempotent, process-wide."""
    from aiokafka import TopicPartition
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
    from faust.types import TP

    from streams.kafka_admin import bootstrap_servers

    if getattr(AIOKafkaConsumerThread, "_slaproc_end_offsets", False):
        return
    original = AIOKafkaConsumerThread._highwaters

    async def _highwaters(self: Any, partitions: Any) -> Any:
        ends = dict(await original(self, partitions))
        probe = getattr(self, "_slaproc_probe", None)
        if probe is None:
            servers = bootstrap_servers(",".join(str(url) for url in self.app.conf.broker))
            probe = self._slaproc_probe = await start_probe(servers, self.app.conf)
        fixed = await correct(probe, {TopicPartition(tp.topic, tp.partition): end for tp, end in ends.items()})
        return {TP(tp.topic, tp.partition): end for tp, end in fixed.items()}

    AIOKafkaConsumerThread._highwaters = _highwaters
    AIOKafkaConsumerThread._slaproc_end_offsets = True


def seek_uncommitted_to_reset_position() -> None:
    """Make Faust's "seek back to committed" also cover partitions nothing was committed for.

    Faust drops records it fetched while its flow was stopped (a rebalance, table recovery, a
    generation change) and relies on `perform_seek()` -> aiokafka `seek_to_committed()` to read
    them again. That call seeks only partitions whose committed offset is > 0: a partition never
    committed keeps the position past the dropped records, and they are never processed. Seen
    after a `kill -9`: the restarted worker started the attainment topic at its end and two
    customers' quarterly partials were lost for good. Here such a partition is sought to the
    position `consumer_auto_offset_reset` names ("earliest" for slaproc), which is what a fresh
    consumer would read from. Idempotent, process-wide.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if getattr(AIOKafkaConsumerThread, "_slaproc_seek_uncommitted", False):
        return

    async def _seek(consumer: Any, reset: str) -> Any:
        committed = await consumer.seek_to_committed()
        uncommitted = [tp for tp, offset in committed.items() if not offset]  # None, or 0
        if uncommitted and reset == "earliest":
            await consumer.seek_to_beginning(*uncommitted)
        elif uncommitted and reset == "latest":
            await consumer.seek_to_end(*uncommitted)
        return committed

    async def seek_to_committed(self: Any) -> Any:
        return await self.call_thread(_seek, self._ensure_consumer(), self.app.conf.consumer_auto_offset_reset)

    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed
    AIOKafkaConsumerThread._slaproc_seek_uncommitted = True


def fetch_only_active_partitions() -> None:
    """Make Faust's fetch drain only the partitions that are active when the fetch runs, and none
    when none is.

    Faust pauses a worker's input partitions while it recovers its tables (only the changelog
    partitions are active then) and hands aiokafka its *live* set of active partitions, from
    another thread. When that set is empty at the moment aiokafka reads it (between the end of
    the changelog reading and the resumption of the inputs), aiokafka's `fetched_records()` takes
    the empty set for "every partition": it drained the paused input partitions to their end,
    Faust dropped those records, and its seek back to the committed offsets comes only *after*
    the inputs are resumed. A record drained from far ahead could therefore still reach an
    agent before that seek, ahead of the records before it. Seen after a `kill -9`: the
    restarted worker applied the last batch's first event of a partition (May 31) first, then
    the partition again from its committed offset (April 2), every later event judged late
    (31,328 outputs replay does not have). A worker log shows the drain: its seek to the
    committed offsets moved the input positions back from their ends (6820 -> 1789).

    Here the fetch takes a copy of the active set when it runs and, when that copy is empty,
    returns nothing. A paused partition then keeps its position until it is resumed (its
    committed offset after an assignment), so what reaches an agent comes in offset order.
    Idempotent, process-wide.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if getattr(AIOKafkaConsumerThread, "_slaproc_fetch_active", False):
        return
    original = AIOKafkaConsumerThread._fetch_records

    async def _fetch_records(self: Any, consumer: Any, active_partitions: Any, timeout: float | None = None,
                             max_records: int | None = None) -> Any:
        active = None if active_partitions is None else set(active_partitions)  # None: a client-only app
        if active is not None and not active:
            return {}
        return await original(self, consumer, active, timeout=timeout, max_records=max_records)

    AIOKafkaConsumerThread._fetch_records = _fetch_records
    AIOKafkaConsumerThread._slaproc_fetch_active = True


def seek_before_resuming_streams() -> None:
    """Make Faust seek the input partitions to their committed offsets *before* it resumes them
    at the end of a table recovery, not after.

    `Recovery.on_recovery_completed` and `Recovery._resume_streams` call
    `consumer.resume_partitions(inputs)` and then await `consumer.perform_seek()`. The seek goes
    through the consumer thread's method queue and waits behind its fetch long-poll (measured
    0.9 s after a recovery that read almost nothing: a state directory). Meanwhile the fetcher
    hands the resumed inputs' records to the agents (the flow is already active), the records in
    flight when the seek lands are dropped, and the stream goes on *after* them: 17 records per
    partition were never processed by that incarnation, the commit guard held its commits at the
    first of them (1,577 of 3,947 events committed), and the next incarnation applied them after
    their successors, as late events (`ticket_closed` and `orphan` dead letters, a quarter's
    attainment already reported, update cycles renumbered). Seen in 4 of 11 runs of
    `test_a_worker_killed_every_few_seconds_finishes_the_backfill_with_replays_net_outcome`, and
    with the seek delayed 1.5 s in every restarted incarnation; none with this patch.

    Here, while either method runs, `resume_partitions` only notes the partitions, and
    `perform_seek` seeks first and resumes them after: a paused partition is not fetched
    (`fetch_only_active_partitions`), so no record reaches an agent before the seek. Idempotent,
    process-wide.
    """
    from faust.tables.recovery import Recovery

    if getattr(Recovery, "_slaproc_seek_first", False):
        return

    def wrap(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            consumer = self.app.consumer
            deferred: list[Any] = []
            resume, seek = consumer.resume_partitions, consumer.perform_seek

            def resume_after_the_seek(tps: Any) -> None:
                deferred.append(set(tps))

            async def seek_then_resume() -> None:
                try:
                    await seek()
                finally:
                    while deferred:
                        resume(deferred.pop(0))

            consumer.resume_partitions, consumer.perform_seek = resume_after_the_seek, seek_then_resume
            try:
                return await original(self, *args, **kwargs)
            finally:
                consumer.__dict__.pop("resume_partitions", None)
                consumer.__dict__.pop("perform_seek", None)
                while deferred:  # no seek came (an empty assignment): resume as Faust would have
                    resume(deferred.pop(0))
        return method

    Recovery.on_recovery_completed = wrap(Recovery.on_recovery_completed)
    Recovery._resume_streams = wrap(Recovery._resume_streams)
    Recovery._slaproc_seek_first = True


# --- the direct floor of bench/faust_floor.py (a benchmark, not used by the worker) ----------

def deliver_directly(consumer: Any, topics: Iterable[str], intake: Any) -> None:
    """Hand `consumer`'s records of `topics` to `intake.put` from the fetch loop (needs
    `direct_delivery()`); records of other topics keep Faust's path."""
    consumer.__dict__["_slaproc_direct"] = (frozenset(topics), intake)


def direct_delivery() -> None:
    """Faust's `Consumer._drain_messages` (faust-streaming 0.15.3) with the records of the topics
    given to `deliver_directly` put into their intake without awaiting: Faust awaits, for every
    record, the conductor's callback raced against the flow-control event (`Service.wait_first`,
    two tasks and an `asyncio.wait`). The read offsets, gaps, periodic commit and flow control are
    Faust's: a record fetched while the flow is suspended is not handed out."""
    from faust.transport.consumer import CONSUMER_FETCHING, Consumer

    if getattr(Consumer, "_slaproc_direct_delivery", False):
        return

    async def _drain_messages(self: Any, fetcher: Any) -> None:
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        suspended = self.suspend_flow.is_set
        num_since_yield = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                direct_topics, intake = self.__dict__.get("_slaproc_direct", (frozenset(), None))
                self.diag.set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if self.should_stop:
                    continue
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > 100:
                        await asyncio.sleep(0)
                        num_since_yield = 0
                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        if gap > 1 and r_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        if intake is not None and message.topic in direct_topics:
                            if intake.full() and not suspended():
                                await self.wait_first(intake.wait_for_room(), self.suspend_flow.wait())
                            if not suspended():
                                intake.put(message)
                        else:
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        set_read_offset(tp, offset)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    Consumer._drain_messages = _drain_messages
    Consumer._slaproc_direct_delivery = True


# --- the offset Faust commits ---------------------------------------------------------------

def guard_commits() -> None:
    """Make the offset Faust commits for a partition never pass a record that no agent processed.

    The rule: commit = 1 + the highest offset h such that every offset in [committed, h] was
    acknowledged by the agents or has no record in the topic (the broker skipped it: compaction,
    transaction markers). Faust 0.15.3 (`Consumer._new_offset`, `_add_gap`, `perform_seek`,
    `ack`) breaks it in these ways, each a way to lose an event when the partition then moves to
    another worker, which starts at the commit (docs/stream.md, "Framework facts"):

    - `_new_offset` gives up only when the lowest acked offset is *more than one* past the
      committed offset c: with c handed out and never acked, c+1... acked, it commits past c;
    - its reading loop takes a jump from its read offset r to a record o as offsets r+1..o that
      the broker skipped (a "gap", counted as done), o itself included although no agent has
      seen it yet; and `perform_seek` sets r back to c, so when the rest of a fetch made before
      the seek arrives (k+1...), records c+1..k already handed to the agents, processed or not,
      become a gap;
    - a stream acks the records it skips without processing them (`Stream.__aiter__`: a record
      taken from an agent's queue while Faust's flow control is suspended for a rebalance, or
      fetched in an earlier generation), so they count as processed too. One can reach a
      queue just after the rebalance cleared it (its conductor was awaiting the producer).

    Here `_new_offset` walks from the committed offset over acked and skipped offsets and stops
    at the first other one, and a gap holds only offsets no record was handed out for: not the
    arriving record, not offsets at or below the highest one handed out before a seek moved
    the read offset back (remembered by `perform_seek`), which sets the read offset to c - 1,
    the last offset read, so that a record missing at c itself is seen as skipped too.
    A record handed out and then dropped unprocessed (a rebalance clears the agents' queues)
    holds the commit until the next assignment's seek reads it again, and so does a record a
    stream skipped: `ack` does not count a record no stream took to process (`Message.tracked`,
    set by the stream past its skip check) acked while the flow control is suspended or from an
    earlier generation. Idempotent, process-wide.
    """
    from faust.transport.consumer import Consumer
    from faust.types import TP
    from faust.types.tuples import ack_lock
    from mode.utils.futures import notify

    if getattr(Consumer, "_slaproc_commit_guard", False):
        return
    counted_ack = Consumer.ack

    def handed_out_before_seek(consumer: Any) -> dict[Any, int]:
        return consumer.__dict__.setdefault("_slaproc_handed_out_before_seek", {})

    async def perform_seek(self: Any) -> None:
        handed_out = handed_out_before_seek(self)
        for tp, offset in (await self.seek_to_committed()).items():
            tp = TP(tp.topic, tp.partition)
            last_read = self._read_offset.get(tp)
            if last_read is None:  # a new assignment: nothing of it handed out yet
                handed_out.pop(tp, None)
            highest = max(handed_out.get(tp, -1), -1 if last_read is None else last_read)
            if offset is not None and offset >= 0 and highest >= offset:
                handed_out[tp] = highest
            else:
                handed_out.pop(tp, None)
            # Faust: the committed offset (the next one to read); here the last one read
            self._read_offset[tp] = None if offset is None or offset < 0 else offset - 1
            if offset is not None:
                self._committed_offset[tp] = offset or None  # as Faust: 0 is "none"

    async def _add_gap(self: Any, tp: Any, offset_from: int, offset_to: int) -> None:
        # called when record `offset_to` arrives after read offset `offset_from - 1`
        first = offset_from
        committed = self._committed_offset[tp]
        if committed is not None:
            first = max(first, committed)
        handed_out = handed_out_before_seek(self).get(tp)
        if handed_out is not None and offset_to > handed_out:
            # the tail of a fetch made before the seek (every record of it is above the highest
            # handed out): the records it jumps over may wait unprocessed in a queue. A jump of
            # the re-read itself (below that record) is a real gap: clipping it too held the
            # commit at a transaction marker or compacted offset until the next rebalance
            first = max(first, handed_out + 1)
        if first < offset_to:
            gaps = self._gap[tp]
            gaps.addi(first, offset_to)  # [first, offset_to): the arriving record is not skipped
            gaps.merge_overlaps()

    def _new_offset(self: Any, tp: Any) -> int | None:
        acked = self._acked[tp]
        if not acked or self.__dict__.get("_slaproc_commits_held"):
            return None
        with ack_lock:  # acks may come from another thread (Faust's public Event.ack)
            done, skipped = self._acked_index[tp], self._gap[tp]
            committed = self._committed_offset[tp]
            start = offset = min(acked) if committed is None else committed
            while True:
                if offset in done:
                    offset += 1
                elif spans := skipped.at(offset):
                    offset = max(span.end for span in spans)
                else:
                    break
            if offset == start:
                return None
            acked[:] = [o for o in acked if o >= offset]
            done.difference_update([o for o in done if o < offset])
            skipped.chop(0, offset)
            return offset

    def ack(self: Any, message: Any) -> bool:
        app = self.app
        stale = getattr(message, "generation_id", None) not in (None, app.consumer_generation_id)
        skipped = not message.tracked and (stale or not app.flow_control.is_active())
        if not skipped:  # a stream tracks a record when it takes it to process it
            return bool(counted_ack(self, message))
        with ack_lock:  # Faust's ack without the offset bookkeeping: done with, not processed
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
            return False

    drain_messages = Consumer._drain_messages

    async def _drain_messages(self: Any, fetcher: Any) -> None:
        if not isinstance(self._read_offset, _ReadOffsets):  # before the loop binds its methods
            self._read_offset = _ReadOffsets(self._read_offset)
        await drain_messages(self, fetcher)

    Consumer.ack = ack
    Consumer._drain_messages = _drain_messages
    Consumer.perform_seek = perform_seek
    Consumer._add_gap = _add_gap
    Consumer._new_offset = _new_offset
    Consumer._slaproc_commit_guard = True


class _ReadOffsetZero(int):
    """Read offset 0 that is true: Faust's reading loop records a jump only `if gap > 1 and
    r_offset`, so after record 0 (or a seek to committed offset 1, read offset 0) a jump over
    offsets with no record (a transaction marker, a compacted record) was never recorded and the
    guarded commit stopped there for good."""

    def __bool__(self) -> bool:
        return True


_READ_OFFSET_ZERO = _ReadOffsetZero(0)


class _ReadOffsets(dict[Any, Any]):
    """`Consumer._read_offset` (a `defaultdict(lambda: None)` in Faust) whose 0 is true."""

    def __init__(self, offsets: Mapping[Any, Any] = {}) -> None:  # noqa: B006 (read only)
        super().__init__()
        for tp, offset in offsets.items():
            self[tp] = offset

    def __missing__(self, tp: Any) -> None:
        return None

    def __setitem__(self, tp: Any, offset: Any) -> None:
        super().__setitem__(tp, _READ_OFFSET_ZERO if type(offset) is int and offset == 0 else offset)


def hold_commits(consumer: Any) -> None:
    """From now on, commit nothing more for this consumer (the worker is stopping on an agent's
    exception): Faust's `take_events` acks a batch in its `finally` when the agent's loop is torn
    down, so a batch whose processing failed would count as processed, and the next commit (the
    periodic one, or the one of the stop) would pass records whose outputs never went out. The
    restart reads them again from the last commit. Needs `guard_commits`."""
    consumer.__dict__["_slaproc_commits_held"] = True


# --- aiokafka ------------------------------------------------------------------------------

async def force_metadata_update(consumer: Any) -> None:
    """Refresh an aiokafka consumer's cluster metadata now (`consumer._client`)."""
    await consumer._client.force_metadata_update()

