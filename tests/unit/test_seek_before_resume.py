"""streams/compat.seek_before_resuming_streams: no input record reaches an agent before the seek.

Faust's end of a table recovery resumed the input partitions and then sought them to their
committed offsets through the consumer thread (~0.9 s behind its fetch long-poll after a short
recovery): the agents processed what was fetched meanwhile, the records in flight at the seek were
dropped and the stream went on after them, so a restarted worker skipped 17 records per partition
and the next one applied them late (test_backfill_progress, 4 failures in 11 runs). The fake
consumer here records the order of the two calls, as each recovery path makes them.
"""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.tables.recovery import Recovery
from faust.types import TP

from streams import compat

INPUT, CHANGELOG = TP("sla.ticket-events", 0), TP("app-tickets-changelog", 0)


class Consumer:
    def __init__(self, calls: list[Any]) -> None:
        self.calls = calls

    def assignment(self) -> set[Any]:
        return {INPUT, CHANGELOG}

    def resume_partitions(self, tps: Any) -> None:
        self.calls.append(("resume", {tp.topic for tp in tps}))

    async def perform_seek(self) -> None:
        await asyncio.sleep(0)  # the consumer thread's queue: the fetcher runs meanwhile
        self.calls.append("seek")

    def resume_flow(self) -> None:
        self.calls.append("flow")


async def _noop(*_args: Any, **_kwargs: Any) -> None:
    return None


def _recovery(calls: list[Any]) -> Any:
    consumer = Consumer(calls)
    app = SimpleNamespace(
        consumer=consumer, consumer_generation_id=0, on_rebalance_complete=SimpleNamespace(send=_noop),
        flow_control=SimpleNamespace(resume=lambda: None), _fetcher=SimpleNamespace(maybe_start=_noop),
        assignor=SimpleNamespace(assigned_standbys=lambda: set()), on_rebalance_end=lambda: None,
        conf=SimpleNamespace(broker_request_timeout=1.0))

    async def wait(coro: Any, timeout: Any = None) -> None:
        await coro

    return SimpleNamespace(
        app=app, tables=SimpleNamespace(values=lambda: [], on_actives_ready=lambda: None,
                                        on_standbys_ready=lambda: None),
        actives_for_table={}, standbys_for_table={}, _wait=wait, completed=asyncio.Event(),
        _set_recovery_ended=lambda: None, _is_changelog_tp=lambda tp: tp == CHANGELOG,
        log=SimpleNamespace(info=lambda *a, **k: None, dev=lambda *a, **k: None, warning=lambda *a, **k: None))


def _calls(method: str) -> tuple[list[Any], Any]:
    compat.seek_before_resuming_streams()
    calls: list[Any] = []
    recovery = _recovery(calls)
    asyncio.run(getattr(Recovery, method)(recovery, 0))
    return calls, recovery.app.consumer


def test_the_end_of_a_recovery_seeks_the_inputs_before_resuming_them():
    calls, consumer = _calls("on_recovery_completed")
    assert calls == ["seek", ("resume", {INPUT.topic}), "flow"]
    assert "resume_partitions" not in consumer.__dict__ and "perform_seek" not in consumer.__dict__  # restored


def test_resuming_the_streams_without_a_recovery_seeks_first_too():
    calls, _ = _calls("_resume_streams")
    assert calls == ["seek", ("resume", {INPUT.topic}), "flow"]


def test_the_patch_is_applied_once():
    compat.seek_before_resuming_streams()
    patched = Recovery.on_recovery_completed
    compat.seek_before_resuming_streams()
    assert Recovery.on_recovery_completed is patched
