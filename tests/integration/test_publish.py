"""`slaproc publish` against the embedded broker: validation with line numbers, topics and keys
(SPEC §1), exit status, idempotent re-publishing, refusing a missing topic."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from streams.app import CONTRACTS, MONITORING_EVENTS, TICKET_EVENTS, partition_for_key
from streams.testing.broker import bootstrap_servers, create_topics
from streams.cli import main

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 3
AT = "2026-03-01T00:00:00Z"


def read_topic(broker_url: str, topic: str, expect: int, timeout: float = 20.0) -> list:
    async def run() -> list:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers(broker_url), group_id=None,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        out: list = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    out.extend(records)
                if len(out) >= expect:
                    await asyncio.sleep(0.5)  # anything beyond `expect` would show up now
                    for records in (await consumer.getmany(timeout_ms=300)).values():
                        out.extend(records)
                    break
        finally:
            await consumer.stop()
        return out
    return asyncio.run(run())


@pytest.fixture
def topics(broker_url, topic_prefix):
    asyncio.run(create_topics(broker_url, [topic_prefix + t for t in (CONTRACTS, TICKET_EVENTS, MONITORING_EVENTS)],
                              PARTITIONS))
    return topic_prefix


CONTRACTS_YAML = """\
contracts:
  - customer_id: acme
    policy: vectorize
    plan: pro
    services:
      - {service_id: acme-api, monthly_fee: "1000.00", currency: USD}
    effective_from: 2026-01-01T00:00:00Z
  - customer_id: bad-plan
    policy: vectorize
    plan: platinum
  - customer_id: globex
    policy: neptune
    plan: basic
    timezone: Europe/Berlin
  - customer_id: acme
    policy: neptune
    plan: basic
    timezone: UTC
    effective_from: 2026-01-01T00:00:00Z
  # the same customer's next terms (SPEC §14): a history, not a duplicate
  - {customer_id: acme, policy: vectorize, plan: pro, effective_from: 2026-04-01T00:00:00Z,
     services: [{service_id: acme-api, monthly_fee: "1500.00", currency: USD}]}
"""


def test_publish_contracts_validates_reports_lines_and_keys_by_customer_and_terms(broker_url, topics, tmp_path,
                                                                                  capsys):
    """One record per terms of a customer (SPEC §14: a history), keyed `customer_id[@effective_from]`
    as the worker's contracts table is: on the compacted topic a key per customer would keep only
    its last terms. The same customer and effective_from twice is the error."""
    path = tmp_path / "contracts.yaml"
    path.write_text(CONTRACTS_YAML)
    args = ["publish", "contracts", str(path), "--broker", broker_url, "--topic-prefix", topics, "--occurred-at", AT]
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{path}:8: invalid_contract: ") and "platinum" in err[0]
    assert err[1] == (f"{path}:15: duplicate: customer_id 'acme' with effective_from 2026-01-01T00:00:00+00:00 "
                      "already on line 2")
    assert err[-1].startswith("slaproc publish: 3 sent: 3 to " + topics + "sla.contracts; 2 rejected")
    records = read_topic(broker_url, topics + CONTRACTS, 3)
    assert sorted(r.key for r in records) == [b"acme@2026-01-01T00:00:00+00:00", b"acme@2026-04-01T00:00:00+00:00",
                                              b"globex"]
    for r in records:
        assert r.partition == partition_for_key(r.key.decode(), PARTITIONS)
        value = json.loads(r.value)
        customer = r.key.decode().partition("@")[0]
        assert value["type"] == "contract.upserted" and value["customer_id"] == customer
        assert value["occurred_at"] == AT and value["event_id"].startswith(f"contract-{customer}-")
    # re-publishing the same file sends the same events (the same ids): safe
    assert main(args + ["-q"]) == 1
    again = read_topic(broker_url, topics + CONTRACTS, 6)
    first_ids = [json.loads(r.value)["event_id"] for r in records]
    assert sorted(json.loads(r.value)["event_id"] for r in again) == sorted(first_ids * 2)


def test_publish_events_routes_each_type_to_its_topic_and_key(broker_url, topics, tmp_path):
    lines = [
        {"event_id": "e1", "type": "ticket.opened", "occurred_at": "2026-03-02T09:00:00Z", "ticket_id": "T-1",
         "customer_id": "acme", "priority": "urgent"},
        {"event_id": "e2", "type": "outage.started", "occurred_at": "2026-03-02T09:05:00+01:00",
         "outage_id": "O-1", "service_id": "acme-api"},
        "this is not json",
        {"event_id": "e3", "type": "ticket.replied", "occurred_at": "2026-03-02T09:30:00", "ticket_id": "T-1",
         "author": "provider"},
        {"event_id": "e4", "type": "ticket.replied", "occurred_at": "2026-03-02T09:31:00Z", "ticket_id": "T-1",
         "author": "provider"},
        {"event_id": "e5", "type": "ticket.merged", "occurred_at": "2026-03-02T09:32:00Z", "ticket_id": "T-1"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n")
    # the installed console script, as a user runs it: exit status and stderr
    proc = subprocess.run([str(Path(sys.executable).parent / "slaproc"), "publish", "events", str(path),
                           "--broker", broker_url, "--topic-prefix", topics],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.splitlines()
    assert [line.split(": ")[1] for line in err[:3]] == ["invalid_json", "naive_timestamp", "unknown_type"]
    assert [line.split(":")[1] for line in err[:3]] == ["3", "4", "6"]
    assert "3 sent: 2 to " in err[-1] and "1 to " + topics + "sla.monitoring-events; 3 rejected" in err[-1]
    tickets = read_topic(broker_url, topics + TICKET_EVENTS, 2)
    monitoring = read_topic(broker_url, topics + MONITORING_EVENTS, 1)
    assert [(r.key, json.loads(r.value)["event_id"]) for r in sorted(tickets, key=lambda r: r.offset)] == [
        (b"T-1", "e1"), (b"T-1", "e4")]
    assert [(r.key, r.value) for r in monitoring] == [(b"acme-api", json.dumps(lines[1]).encode())]
    assert all(r.partition == partition_for_key(r.key.decode(), PARTITIONS) for r in tickets + monitoring)


def test_publish_refuses_missing_topics_and_sends_nothing(broker_url, topic_prefix, tmp_path, capsys):
    path = tmp_path / "contracts.yaml"
    path.write_text(CONTRACTS_YAML)
    assert main(["publish", "contracts", str(path), "--broker", broker_url, "--topic-prefix", topic_prefix]) == 2
    err = capsys.readouterr().err.splitlines()
    # one line per missing topic and nothing else: the check comes before anything is sent or reported
    assert len(err) == 3 and all(line.startswith("slaproc publish: SLAPROC_TOPIC_PREFIX: topic ") for line in err)
    assert err[0].startswith(f"slaproc publish: SLAPROC_TOPIC_PREFIX: topic '{topic_prefix}sla.contracts' does not "
                             "exist; start the worker once")


def test_publish_big_file_reports_progress(broker_url, topics, tmp_path, capsys, monkeypatch):
    import streams.publish as publish

    monkeypatch.setattr(publish.Progress, "EVERY", 0.0)  # a line per entry instead of every 5 s
    path = tmp_path / "events.jsonl"
    with path.open("w") as f:
        for i in range(5_000):
            f.write(json.dumps({"event_id": f"b{i}", "type": "ticket.replied", "occurred_at": "2026-03-02T09:31:00Z",
                                "ticket_id": f"T-{i % 500}", "author": "provider"}) + "\n")
    assert main(["publish", "events", str(path), "--broker", broker_url, "--topic-prefix", topics]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "slaproc publish events: 2500 of 5000 lines read (50%), 0 rejected" in err
    assert err[-1].startswith(f"slaproc publish: 5000 sent: 5000 to {topics}sla.ticket-events; 0 rejected")
