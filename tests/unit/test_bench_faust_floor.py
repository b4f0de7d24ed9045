"""The direct floor's buffer (bench/faust_floor.py): batches as Faust's take_events, bounded, cleared."""
from __future__ import annotations

import asyncio

from bench.faust_floor import Intake


def test_take_returns_at_most_n_in_arrival_order_and_signals_room():
    async def run() -> None:
        intake = Intake(limit=3)
        for i in range(3):
            intake.put(i)
        assert intake.full()
        room = asyncio.ensure_future(intake.wait_for_room())
        await asyncio.sleep(0)
        assert not room.done()  # full: the fetch loop would wait here
        assert await intake.take(2, within=0.5) == [0, 1]
        await asyncio.wait_for(room, 1)  # below the limit again
        assert await intake.take(5, within=0.05) == [2]  # what came within the wait
        assert len(intake) == 0
    asyncio.run(run())


def test_take_waits_for_the_first_record_then_fills_within_the_wait():
    async def run() -> None:
        intake = Intake(limit=10)
        taker = asyncio.ensure_future(intake.take(2, within=1.0))
        await asyncio.sleep(0.02)
        assert not taker.done()  # nothing yet
        intake.put("a")
        await asyncio.sleep(0.02)
        assert not taker.done()  # one of two, within the wait
        intake.put("b")
        assert await asyncio.wait_for(taker, 1) == ["a", "b"]
    asyncio.run(run())


def test_clear_drops_what_was_not_taken():
    async def run() -> None:
        intake = Intake(limit=2)
        intake.put("stale")
        intake.put("stale too")
        intake.clear()  # Faust's flow control on a rebalance
        assert len(intake) == 0 and not intake.full()
        intake.put("fresh")
        assert await intake.take(5, within=0.01) == ["fresh"]
    asyncio.run(run())
