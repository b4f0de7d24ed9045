"""What any worker built on Faust's consumer pays per input record, doing no work: the floor under
issue 16's "worker >= 2 x the bare Faust agent" (docs/benchmarks.md, "The floor of a worker on
Faust").

Two floors, both run by `bench.bare_agent --mode`:

- `take`: an agent that takes `take_events(500, within=0.2)` batches and only counts them: the
  least a worker written as a Faust agent (public API) costs per record (fetch, conductor,
  `Event`, agent queue, stream, ack, commit).
- `direct`: no agent: Faust's consumer fetch loop hands each input record to an `Intake` (a copy
  of `Consumer._drain_messages` of faust-streaming 0.15.3 without its task per record,
  `deliver_directly`), and a task takes batches, tracks and acknowledges each record as Faust's
  stream does, and counts them. The least a worker that still uses Faust's consumer (group,
  assignment, recovery, commits) and bypasses its streams costs per record.

Both use Faust's private API (the fetch loop, `Message.tracked`); for the tested versions only
(`streams.compat.TESTED`): a benchmark, not a product path.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from typing import Any

__all__ = ["Intake", "deliver_directly", "direct_delivery"]


class Intake:
    """A bounded buffer of fetched input records, cleared by Faust's flow control on a rebalance
    (`FlowControlEvent.manage_queue`), as the agents' queues are."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._records: deque[Any] = deque()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._records)

    def full(self) -> bool:
        return len(self._records) >= self.limit

    def put(self, message: Any) -> None:
        records = self._records
        records.append(message)
        if len(records) == 1:
            self._ready.set()
        if len(records) >= self.limit:
            self._room.clear()

    async def wait_for_room(self) -> None:
        await self._room.wait()

    def clear(self) -> None:
        self._records.clear()
        self._ready.clear()
        self._room.set()

    async def take(self, n: int, within: float) -> list[Any]:
        """Up to `n` records: waits for the first, then at most `within` s for the batch to fill
        (as Faust's `take_events(n, within)`)."""
        records = self._records
        while not records:
            self._ready.clear()
            await self._ready.wait()
        if len(records) < n:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + within
            while len(records) < n and (remaining := deadline - loop.time()) > 0:
                await asyncio.sleep(min(remaining, 0.01))
        batch = [records.popleft() for _ in range(min(n, len(records)))]
        if not records:
            self._ready.clear()
        if len(records) < self.limit:
            self._room.set()
        return batch


def deliver_directly(consumer: Any, topics: Iterable[str], intake: Intake) -> None:
    """Hand `consumer`'s records of `topics` to `intake.put` from the fetch loop (needs
    `direct_delivery()`); records of other topics keep Faust's path."""
    consumer.__dict__["_bench_direct"] = (frozenset(topics), intake)


def direct_delivery() -> None:
    """Faust's `Consumer._drain_messages` (faust-streaming 0.15.3) with the records of the topics
    given to `deliver_directly` put into their intake without awaiting: Faust awaits, for every
    record, the conductor's callback raced against the flow-control event (`Service.wait_first`,
    two tasks and an `asyncio.wait`). The read offsets, gaps, periodic commit and flow control are
    Faust's: a record fetched while the flow is suspended is not handed out."""
    from faust.transport.consumer import CONSUMER_FETCHING, Consumer

    if getattr(Consumer, "_bench_direct_delivery", False):
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
                direct_topics, intake = self.__dict__.get("_bench_direct", (frozenset(), None))
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
    Consumer._bench_direct_delivery = True
