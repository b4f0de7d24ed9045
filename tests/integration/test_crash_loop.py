"""Issue 18 item 10: a worker killed again and again in the middle of a backfill loses nothing.

Four `kill -9`s of the same worker (static group membership, `SLAPROC_GROUP_INSTANCE_ID`): one
during its start (group join, table recovery), three right after the incarnation committed
progress of its own. Each incarnation must commit progress (the group's committed input offsets
grow), and once the last one is through the backfill, the outputs equal replay's (repeats
byte-identical). Kills are driven by observed progress, not by a clock: on Tansu a restart is
ready only ~8 s after its start at best (docs/stream.md, "Short-lived workers"), so a fixed short
kill period would test the broker, not the worker.

The backfill must outlast the kills. The whole input is produced while no worker runs (the
worker that consumed the contracts is killed first), and the workers commit every second
(`SLAPROC_COMMIT_INTERVAL=1`): an incarnation killed at its first commit has processed at most
about a second of input. Before, the contracts' worker read the input for 2 s before its kill
and committed every 2.8 s: the first three incarnations could commit all 20,000 events (seen
at 10,294 + 8,000 + 1,706), and the third kill then waited 120 s for progress no input was left
to make (a clean-clone CI failure of 2026-12-06).
"""
from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.app import MONITORING_EVENTS, TICKET_EVENTS
from streams.kafka_admin import bootstrap_servers
from streams.testing.harness import produce, wait_until
from tests.integration.test_stream_equals_replay import (PARTITIONS, collect_at_least, events_in, load_contracts,
                                                         new_app, run_until_final)
from tests.integration.test_stream_resilience import assert_equals_replay

pytestmark = pytest.mark.broker


async def _committed(broker_url: str, group: str, topics: list[str]) -> int:
    """Sum of the group's committed offsets over the input partitions (0 where none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        total = 0
        for topic in topics:
            for partition in range(PARTITIONS):
                total += await consumer.committed(TopicPartition(topic, partition)) or 0
        return total
    finally:
        await consumer.stop()


def test_a_worker_killed_four_times_mid_backfill_keeps_its_progress_and_equals_replay(broker_url, tmp_path, mix):
    app = new_app(tmp_path, broker_url, extra_env={"SLAPROC_GROUP_INSTANCE_ID": "worker-a",
                                                   "SLAPROC_COMMIT_INTERVAL": "1"})
    inputs = [app.prefix + TICKET_EVENTS, app.prefix + MONITORING_EVENTS]
    committed = lambda: asyncio.run(_committed(broker_url, app.app_id, inputs))  # noqa: E731
    progress: list[int] = []
    try:
        worker = app.start()
        asyncio.run(load_contracts(app, mix["contracts"], [worker.url]))
        worker.kill()  # the contracts are in its table; no input yet
        total = asyncio.run(produce(broker_url, app.prefix, mix["lines"]))
        worker = app.start()
        time.sleep(2)
        worker.kill()  # during its start: group join, table recovery
        for _ in range(3):
            before = committed()
            assert before < total, (f"the backfill ended before incarnation {len(progress) + 3} of 6 "
                                    f"({before} of {total} events committed): the test's work is too small")
            worker = app.start()
            wait_until(lambda before=before: committed() > before, 120, every=0.3, what="this incarnation commits progress")
            progress.append(committed() - before)
            worker.kill()  # right after its first commit: what it processed since is done again
        final = app.start()
        run_until_final(app, [final], mix["at"])  # the session mix's tick instant, as its replay
        left_for_the_last = events_in([final.url])
        stream = collect_at_least(broker_url, app.prefix, len(mix["replay"]))
    finally:
        app.stop_all()
    outputs, repeats = assert_equals_replay(stream, mix["replay"], keep=tmp_path)
    print(f"\ncommitted per killed incarnation: {progress}; the last one processed {left_for_the_last:.0f} "
          f"of {len(mix['lines'])} events; {outputs} outputs, {repeats} repeats")
    assert all(p > 0 for p in progress)
    assert left_for_the_last < len(mix["lines"]), "the killed incarnations kept nothing"
