"""Ticks: wall-clock time enters the stream as data.

The leader's timer sends, every `tick_interval`, one tick to *every* partition of the
ticks topic (explicit `partition=i`), carrying the leader's wall-clock instant. The
ticks topic has the same partition count as the input topics, so Faust's assignor puts
ticks partition i on the worker that owns input partition i (co-partitioning).

For its partition, the tick agent advances the Processor to
`tick instant - allowed lateness`, but only when the partition has caught up: for every
co-partitioned input TopicPartition, the next offset the worker will *process* is at the
high-water mark. Otherwise the tick is skipped and the backlog's own event times drive
time, as in replay.

"Processed" is tracked by the shell itself (`CaughtUpTracker.processed`), not taken
from the consumer's fetch position, because fetched events may still sit unprocessed in
an agent's buffer. Before anything was processed since the assignment, the baseline is
the group's committed offset (Faust keeps it in a private field, `compat.committed_offset`, after its
seek-to-committed on assignment) or, with no commit yet, the partition's earliest offset
(auto_offset_reset=earliest). High-water marks come from `consumer.highwaters(*tps)`
(aiokafka `end_offsets`, one ListOffsets request; the cached `highwater(tp)` from the
last fetch may be stale).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["encode_tick", "decode_tick", "tick_target", "CaughtUpTracker", "is_caught_up"]


def encode_tick(at: datetime) -> bytes:
    """A tick message value: {"at": ISO-8601 UTC}."""
    if at.tzinfo is None:
        raise ValueError("tick instant must be timezone-aware")
    return json.dumps({"at": at.astimezone(timezone.utc).isoformat()}, separators=(",", ":")).encode()


def decode_tick(raw: bytes) -> datetime:
    at = datetime.fromisoformat(json.loads(raw)["at"])
    if at.tzinfo is None:
        raise ValueError("naive tick instant")
    return at.astimezone(timezone.utc)


def tick_target(at: datetime, allowed_lateness: float) -> datetime:
    """The instant a caught-up partition advances to: tick instant - lateness (seconds)."""
    return at - timedelta(seconds=allowed_lateness)


def is_caught_up(next_to_process: Mapping[Any, int | None], highwaters: Mapping[Any, int]) -> bool:
    """True when, for every TopicPartition, the next offset to process >= its high-water mark.

    A partition with an unknown position counts as behind unless it is empty (hw == 0).
    """
    for tp, hw in highwaters.items():
        position = next_to_process.get(tp)
        if hw is None:
            return False
        if position is None:
            if hw > 0:
                return False
        elif position < hw:
            return False
    return True


class CaughtUpTracker:
    """Next-offset-to-process per input TopicPartition, and the caught-up test for a partition.

    `highwaters`, `committed` and `earliest` are async/sync callables so the tracker can be
    tested without a broker; `for_app(app, topics)` wires them to a Faust consumer.
    """

    def __init__(self, input_topics: Iterable[str],
                 highwaters: Callable[..., Awaitable[Mapping[Any, int]]],
                 committed: Callable[[Any], int | None],
                 earliest: Callable[..., Awaitable[Mapping[Any, int]]],
                 make_tp: Callable[[str, int], Any]) -> None:
        self.input_topics = tuple(input_topics)
        self._highwaters = highwaters
        self._committed = committed
        self._earliest = earliest
        self._make_tp = make_tp
        self._next: dict[Any, int] = {}

    @classmethod
    def for_app(cls, app: Any, input_topics: Iterable[str],
                highwaters: Callable[..., Awaitable[Mapping[Any, int]]] | None = None,
                earliest: Callable[..., Awaitable[Mapping[Any, int]]] | None = None) -> "CaughtUpTracker":
        """Wired to the app's consumer; `highwaters` / `earliest` replace its offset requests."""
        from faust.types import TP

        from streams import compat

        def committed(tp: Any) -> int | None:
            # Not public API: filled by Faust's perform_seek() on assignment and by commits.
            return compat.committed_offset(app.consumer, tp)

        return cls(input_topics,
                   highwaters=highwaters or (lambda *tps: app.consumer.highwaters(*tps)),
                   committed=committed,
                   earliest=earliest or (lambda *tps: app.consumer.earliest_offsets(*tps)),
                   make_tp=TP)

    def processed(self, tp: Any, offset: int) -> None:
        """Record that the message at `offset` of `tp` has been applied."""
        if offset + 1 > self._next.get(tp, -1):
            self._next[tp] = offset + 1

    def forget(self, tps: Iterable[Any]) -> None:
        """Drop positions of revoked partitions (a new owner starts from the commit)."""
        for tp in tps:
            self._next.pop(tp, None)

    def tps_for(self, partition: int) -> list[Any]:
        return [self._make_tp(topic, partition) for topic in self.input_topics]

    async def caught_up_many(self, partitions: Iterable[int]) -> dict[int, bool]:
        """`caught_up` for several partitions with one high-water request (the consumer
        answers offset requests between fetches: one call per tick batch, not per partition)."""
        partitions = list(partitions)
        tps = [tp for p in partitions for tp in self.tps_for(p)]
        if not tps:
            return {p: True for p in partitions}
        positions, highwaters = await self.offsets(tps)
        result = {}
        for p in partitions:
            own = self.tps_for(p)
            result[p] = is_caught_up({tp: positions.get(tp) for tp in own}, {tp: highwaters.get(tp) for tp in own})
        return result

    async def _positions(self, tps: list[Any]) -> dict[Any, int | None]:
        positions: dict[Any, int | None] = {}
        unknown = []
        for tp in tps:
            position = self._next.get(tp)
            committed = self._committed(tp)
            if committed is not None and (position is None or committed > position):
                position = committed
            positions[tp] = position
            if position is None:
                unknown.append(tp)
        if unknown:
            earliest = await self._earliest(*unknown)
            for tp in unknown:
                positions[tp] = earliest.get(tp)
        return positions

    async def offsets(self, tps: list[Any]) -> tuple[dict[Any, int | None], dict[Any, int | None]]:
        """(next offset to process, high-water mark) of each topic-partition."""
        highwaters = await self._highwaters(*tps)
        return await self._positions(tps), highwaters

    async def describe(self, partition: int) -> dict[str, tuple[int | None, int | None]]:
        """topic-partition -> (next offset to process, high-water mark): why a partition is behind."""
        tps = self.tps_for(partition)
        positions, highwaters = await self.offsets(tps)
        return {f"{tp.topic}[{tp.partition}]": (positions.get(tp), highwaters.get(tp)) for tp in tps}

    async def caught_up(self, partition: int) -> bool:
        """True when every input partition of `partition` is processed up to its high-water mark."""
        return (await self.caught_up_many([partition]))[partition]
