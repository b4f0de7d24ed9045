"""Restart recovery: tables in memory vs persisted (`SLAPROC_STATE_DIR`), side by side, one run.

    python -m bench.restart_recovery [--events 20000 --tickets 2000 --restarts 3]

One embedded Tansu broker. Two worker groups (own app id, own topic prefix), one in each mode,
get the same contracts and the same `bench.generate` backfill and process all of it (their
changelogs then hold the same number of records). Then, `--restarts` times, each worker is
killed with kill -9 and started again, one at a time (the two never share the CPU), and its
log says when recovery ended: seconds from the process's start to Faust's "Recovery complete",
and the part of it Faust spent reading changelogs ("Restoring state from changelog topics..." to
"Recovery complete"; 0 when nothing was to read). The group join before recovery (JoinGroup +
SyncGroup: ~6 s on Tansu) is the same in both modes.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.generate import generate, write_workload
from bench.stream import decodable
from streams.kafka_admin import bootstrap_servers
from streams.testing.broker import EmbeddedBroker
from streams.testing.harness import WorkerProcess, contract_events, metric_sum, produce, scrape, wait_until

_LINE_TIME = re.compile(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")  # after any terminal escapes
PARTITIONS = 3
NO_TIMER = 3600.0


def _log_times(log: Path, since: int) -> dict[str, float]:
    """Epoch seconds of the first 'Restoring state' and 'Recovery complete' lines after byte `since`."""
    found: dict[str, float] = {}
    with open(log, "rb") as f:
        f.seek(since)
        for raw in f:
            line = raw.decode("utf-8", "replace")
            for key, text in (("restoring", "Restoring state from changelog topics"),
                              ("complete", "Recovery complete")):
                if text in line and key not in found:
                    match = _LINE_TIME.search(line)
                    if match:
                        # the log's local time, as the process's start (time.time()) is compared with it
                        found[key] = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").astimezone().timestamp()
    return found


async def _changelog_records(broker_url: str, app_id: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url), enable_auto_commit=False)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t.startswith(app_id) and t.endswith("-changelog")]
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


def _worker(broker_url: str, tag: str, work_dir: Path, state_dir: Path | None) -> WorkerProcess:
    env = {"SLAPROC_LOG_LEVEL": "info", "SLAPROC_GROUP_INSTANCE_ID": f"bench-{tag}"}
    if state_dir is not None:
        env["SLAPROC_STATE_DIR"] = str(state_dir)
    return WorkerProcess(broker_url, f"b{tag}.", partitions=PARTITIONS, app_id=f"bench-{tag}",
                         data_dir=work_dir / f"data-{tag}", tick_interval=NO_TIMER, extra_env=env,
                         log_path=work_dir / f"worker-{tag}.log")


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = generate(events=args.events, tickets=args.tickets, seed=7)
    out: dict[str, Any] = {"events": args.events}
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp, EmbeddedBroker() as broker:
        tmp_path = Path(tmp)
        paths = write_workload(work, tmp_path)
        lines = paths["events"].read_bytes().splitlines()
        countable = decodable(lines)  # what the worker counts in slaproc_events_in_total
        contracts = [json.dumps(e).encode() for e in contract_events(paths["contracts"])]
        modes = {"memory": None, "persisted": tmp_path / "state"}
        workers = {}
        for mode, state_dir in modes.items():
            w = _worker(broker.url, mode, tmp_path, state_dir)
            workers[mode] = w.start()
            asyncio.run(produce(broker.url, w.prefix, contracts))
            wait_until(lambda w=w: _applied(w) >= len(contracts), 300, what=f"{mode}: contracts consumed")
            asyncio.run(produce(broker.url, w.prefix, lines))
            wait_until(lambda w=w: _applied(w) >= len(contracts) + countable, 900, every=1, what=f"{mode}: backfill processed")
            time.sleep(4)  # a commit interval: the input offsets and the last changelog writes are in
        for mode in modes:
            out[f"{mode}_changelog_records"] = asyncio.run(_changelog_records(broker.url, workers[mode].app_id))
        samples: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
        try:
            for _ in range(args.restarts):
                for mode, w in workers.items():
                    w.kill()
                    since = w.log_path.stat().st_size
                    started = time.time()
                    w.start()
                    wait_until(lambda w=w, since=since: "complete" in _log_times(w.log_path, since), 300,
                               every=0.2, what=f"{mode}: recovery complete")
                    times = _log_times(w.log_path, since)
                    samples[mode].append((times["complete"] - started,
                                          times["complete"] - times.get("restoring", times["complete"])))
        finally:
            for w in workers.values():
                w.kill()
    for mode, values in samples.items():
        out[f"{mode}_to_recovered_s"] = [round(a, 2) for a, _ in values]
        out[f"{mode}_reading_changelog_s"] = [round(b, 2) for _, b in values]
        out[f"{mode}_median_reading_s"] = round(statistics.median(b for _, b in values), 2)
    return out


def _applied(worker: WorkerProcess) -> float:
    try:
        return metric_sum(scrape(worker.url), "slaproc_events_in_total")
    except OSError:
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.restart_recovery")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--tickets", type=int, default=2_000)
    parser.add_argument("--restarts", type=int, default=3)
    res = run(parser.parse_args(argv))
    for key, value in res.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
