"""Smoke test of the stream benchmark's third contender (bench/raw_consumer.py) on the embedded broker:
a small generated workload consumed by the raw aiokafka consumer, its throughput measured by the
bench's own path (`bench.stream.raw_round`), and its outputs equal to replay's."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from types import SimpleNamespace

import pytest

from bench import stream
from bench.generate import generate, write_workload
from streams.kafka_admin import bootstrap_servers
from streams.testing.harness import contract_events

pytestmark = pytest.mark.broker


@pytest.mark.parametrize("changelog", [True, False], ids=["changelog", "memory"])
def test_raw_consumer_processes_the_backlog_and_its_outputs_equal_replay(broker_url, tmp_path, changelog):
    work = generate(events=600, tickets=60, seed=11, bad_fraction=0.01)  # a few dead letters too
    paths = write_workload(work, tmp_path / "work")
    until = datetime.fromisoformat(work.meta["until"].replace("Z", "+00:00"))
    lines = [line for line in paths["events"].read_bytes().splitlines() if line.strip()]
    contracts = [json.dumps(e).encode() for e in contract_events(paths["contracts"])]
    reference = stream.replay_reference(paths["events"], paths["contracts"], until)
    assert len(reference["ids"]) > 100  # breaches, at-risk warnings, met, month closes: something to compare
    broker = SimpleNamespace(url=broker_url, bootstrap_servers=bootstrap_servers(broker_url), pid=None)

    result = asyncio.run(stream.raw_round(broker, lines, contracts, partitions=3, round_no=uuid.uuid4().int % 10**9,
                                          log_dir=tmp_path, poll=0.2, timeout=90, changelog=changelog,
                                          reference=reference, until=until))

    assert result["complete"], result  # its group committed every input offset (the rate needs a bigger backlog)
    check = result["check"]
    assert check["equal"], check
    assert check["stream_outputs"] == len(reference["ids"])
    counts = result["counts"]
    assert counts["events"] + counts["dead_letters"] == len(lines)  # every line: applied or dead-lettered
    assert counts["contracts"] == len(contracts)
    assert (counts.get("changelog_records", 0) > 0) == changelog
