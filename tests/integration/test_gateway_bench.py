"""bench/gateway.py runs bounded and finds every acknowledged event on the topic."""
from __future__ import annotations

import json

import pytest

from bench.gateway import body, main

pytestmark = pytest.mark.broker


def test_bench_bodies_are_unique_alertmanager_notifications():
    from streams.gateway.config import load_mapping
    from streams.gateway.mapping import convert
    from tests.integration.test_gateway import MAPPING

    ids = [e.event["event_id"] for n in range(300) for e in convert("alertmanager", body(n, 2), load_mapping(MAPPING)).events]
    assert len(ids) == len(set(ids)) == 600


def test_bench_smoke(broker_url, capsys):
    assert main(["--requests", "60", "--warmup", "10", "--concurrency", "4", "--broker", broker_url]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["statuses"] == {"200": 60} and result["events_on_topic"] == result["events_expected"] == 120
    assert result["measured"] == 50 and result["p99_ms"] > 0
