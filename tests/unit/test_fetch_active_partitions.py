"""streams/compat.fetch_only_active_partitions: a paused input partition is never drained.

The kill -9 divergence (docs/stream.md, "Framework facts"): Faust hands aiokafka its live set of
active partitions; aiokafka's `Fetcher.fetched_records(partitions)` skips a partition only
`if partitions and tp not in partitions`, so an empty set drains every partition. During table
recovery the inputs are paused and the set went empty: the inputs were drained to their end and a
record from there reached an agent before Faust's seek back to the committed offset. The fetcher
here is aiokafka's own `fetched_records` rule over records waiting per partition.
"""
from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams import compat

INPUT, CHANGELOG = ("sla.ticket-events", 0), ("app-tickets-changelog", 0)


class Fetcher:
    """aiokafka's draining rule (`if partitions and tp not in partitions: continue`) over
    records waiting per partition; `during` runs while the fetch waits, as Faust's loop does."""

    _closed = False

    def __init__(self, waiting: dict, during=lambda: None) -> None:
        self.waiting = waiting
        self.during = during
        self._subscriptions = SimpleNamespace(fetch_context=contextlib.nullcontext)

    async def fetched_records(self, partitions, timeout=0, max_records=None):
        self.during()  # the other thread pauses or resumes partitions meanwhile
        drained = {}
        for tp in list(self.waiting):
            if partitions and tp not in partitions:
                continue
            drained[tp] = self.waiting.pop(tp)
        return drained


def _fetch(fetcher: Fetcher, active: set) -> dict:
    compat.fetch_only_active_partitions()
    thread = SimpleNamespace(consumer=SimpleNamespace(flow_active=True))
    consumer = SimpleNamespace(_closed=False, _fetcher=fetcher)
    return asyncio.run(AIOKafkaConsumerThread._fetch_records(thread, consumer, active, timeout=0.0, max_records=500))


def test_no_active_partition_drains_nothing():
    # between the end of the changelog reading and the resumption of the inputs
    fetcher = Fetcher({INPUT: [2285, 2286]})
    assert _fetch(fetcher, set()) == {}
    assert fetcher.waiting == {INPUT: [2285, 2286]}  # still there for the agent, in order, once resumed


def test_a_partition_paused_while_the_fetch_waits_is_still_left_alone_when_the_set_empties():
    active = {CHANGELOG}
    fetcher = Fetcher({INPUT: [6764], CHANGELOG: [10]}, during=lambda: active.clear())
    assert _fetch(fetcher, active) == {CHANGELOG: [10]}  # the set as the fetch began, not "every partition"
    assert fetcher.waiting == {INPUT: [6764]}


def test_active_partitions_are_fetched():
    fetcher = Fetcher({INPUT: [1789], CHANGELOG: [10]})
    assert _fetch(fetcher, {INPUT}) == {INPUT: [1789]}
    assert fetcher.waiting == {CHANGELOG: [10]}
