"""What any worker built on Faust's consumer pays per input record, doing no work: the floor under
issue 16's "worker >= 2 x the bare Faust agent" (docs/benchmarks.md, "The floors of a
worker on Faust").

Two floors, both run by `bench.bare_agent --mode`:

- `take`: an agent that takes `take_events(500, within=0.2)` batches and only counts them: the
  least a worker written as a Faust agent (public API) costs per record (fetch, conductor,
  `Event`, agent queue, stream, ack, commit).
- `direct`: no agent: Faust's consumer fetch loop hands each input record to an `Intake` (a copy
  of `Consumer._drain_messages` of faust-streaming 0.15.3 without its task per record,
  `deliver_directly`), and a task takes batches, tracks and acknowledges each record as Faust's
  stream does, and counts them. The least a worker that still uses Faust's consumer (group,
  assignment, recovery, commits) and bypasses its streams costs per record.

The direct floor patches Faust's private fetch loop (`streams.compat.direct_delivery`, where
every private use of Faust lives; for the tested versions only): a benchmark, not a product path.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from streams.compat import deliver_directly, direct_delivery

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
