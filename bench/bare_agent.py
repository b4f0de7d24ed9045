"""Baseline of the stream benchmark: a bare Faust agent that only counts events per key.

The same broker, group timings (session 3 s, heartbeat 0.5 s, rebalance 3 s), partition
count, raw serializers and `take_events(batch, within)` batching as the slaproc worker
run by `streams.testing.harness.WorkerProcess`; per event it increments one entry of a Table
(`counts[key] += 1`, one changelog record per event, as Faust tables do). Nothing else:
no decoding, no outputs. Progress is served as JSON on `GET /progress/`:
`{"events": n, "first": unix s, "last": unix s}` (first / last event processed).

`--mode take` and `--mode direct` are the floors of `bench.faust_floor` (no table, no work: the
least a worker on Faust's agents, or on Faust's consumer without its streams, pays per record).

    python -m bench.bare_agent --broker kafka://127.0.0.1:PORT --prefix bare. --partitions 3 --web-port 6070
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import faust

from streams.app import MONITORING_EVENTS, TICKET_EVENTS


MODES = ("count", "take", "direct")


def build_app(broker: str, app_id: str, prefix: str, partitions: int, web_port: int, data_dir: str,
              batch_size: int = 500, batch_within: float = 0.2, mode: str = "count") -> faust.App:
    """The baseline app (not started): one agent over the ticket and monitoring topics of `prefix`
    (`mode` count: the bare agent; take, direct: the floors of `bench.faust_floor`)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    app = faust.App(
        app_id, broker=broker, store="memory://", datadir=data_dir,
        topic_partitions=partitions, topic_replication_factor=1,
        key_serializer="raw", value_serializer="raw", consumer_auto_offset_reset="earliest",
        broker_session_timeout=3.0, broker_heartbeat_interval=0.5, broker_rebalance_timeout=3.0,
        web_enabled=True, web_port=web_port, web_bind="127.0.0.1", web_host="127.0.0.1",
        autodiscover=False,
    )
    topic = app.topic(prefix + TICKET_EVENTS, prefix + MONITORING_EVENTS, partitions=partitions,
                      key_type=str, value_type=bytes, key_serializer="raw", value_serializer="raw")
    progress: dict[str, Any] = {"events": 0, "first": None, "last": None}

    def counted(n: int) -> None:
        if progress["first"] is None:
            progress["first"] = time.time()
        progress["events"] += n
        progress["last"] = time.time()

    if mode == "count":
        # use_partitioner: a take_events batch mixes partitions, so the changelog partition must
        # follow the key (the producer's murmur2, the same partition as the input message).
        counts = app.Table("counts", partitions=partitions, key_type=str, value_type=bytes,
                           use_partitioner=True)

        @app.agent(topic, name="bare.count")
        async def count(stream: Any) -> None:
            async for events in stream.take_events(batch_size, within=batch_within):
                for event in events:
                    key = event.key
                    key = key.decode() if isinstance(key, bytes) else (key or "")
                    old = counts.get(key)
                    counts[key] = b"1" if old is None else str(int(old) + 1).encode()
                counted(len(events))
    elif mode == "take":
        @app.agent(topic, name="bare.take")
        async def take(stream: Any) -> None:
            async for events in stream.take_events(batch_size, within=batch_within):
                counted(len(events))
    else:
        from bench.faust_floor import Intake, deliver_directly, direct_delivery

        direct_delivery()
        intake = Intake()
        app.flow_control.manage_queue(intake)  # cleared with the agents' queues on a rebalance
        app.topics.add(topic)  # subscribed through the conductor, as an agent's topic is
        deliver_directly(app.consumer, topic.topics, intake)  # before the fetcher's first fetch

        @app.task
        async def direct() -> None:
            consumer = app.consumer
            flow_active = app.flow_control.is_active
            while not app.should_stop:
                batch = await intake.take(batch_size, batch_within)
                generation = app.consumer_generation_id
                taken = 0
                for message in batch:
                    if flow_active() and message.generation_id == generation:
                        message.tracked = True  # as Faust's stream does when it takes a record
                        consumer.track_message(message)
                        taken += 1
                    message.ack(consumer)
                counted(taken)

    @app.page("/progress/")
    async def progress_view(web: Any, request: Any) -> Any:
        return web.json(progress)

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_agent", description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True, help="kafka://host:port")
    parser.add_argument("--app-id", default="bench-bare")
    parser.add_argument("--prefix", default="bare.")
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--web-port", type=int, default=6070)
    parser.add_argument("--data-dir", default="/tmp/bench-bare-agent")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--batch-within", type=float, default=0.2)
    parser.add_argument("--mode", choices=MODES, default="count",
                        help="count: the bare agent (a Table write per event); take, direct: the floors of "
                             "bench.faust_floor (no work)")
    args = parser.parse_args(argv)
    from faust.worker import Worker

    app = build_app(args.broker, args.app_id, args.prefix, args.partitions, args.web_port, args.data_dir,
                    args.batch_size, args.batch_within, args.mode)
    Worker(app, loglevel="warning", quiet=True).execute_from_commandline()  # until SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
