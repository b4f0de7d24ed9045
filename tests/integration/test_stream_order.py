"""Order independence in stream mode (SPEC §10, issue 11), on the embedded broker.

The session's generated mix (the `mix` fixture of conftest.py) is produced in two arrival
orders — every event delayed by 0-6 h (one in ten by up to 3 days) and sent in arrival order,
and every ticket event sent before every monitoring event of the same partition key space (the
per-topic backfill) — then the partitions are ticked to the mix's instant. The stream's net outcome
(tests/net_outcome.py: standing breaches, met net of retractions, notices by id, final month
figures, standing refunds) must be replay's over the same file (the mix's replay, until that instant
less the allowed lateness: the arrival order changes nothing on replay's side).
"""
from __future__ import annotations

import asyncio
import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from streams.testing.harness import produce
from tests.integration.test_stream_equals_replay import (collect_at_least, load_contracts, net_size, new_app,
                                                         run_until_final)
from tests.net_outcome import net_outcome

pytestmark = pytest.mark.broker
UTC = timezone.utc


def _delayed(lines: list[bytes], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    arrivals = []
    for n, line in enumerate(lines):
        try:
            at = datetime.fromisoformat(json.loads(line)["occurred_at"].replace("Z", "+00:00"))
            assert at.tzinfo is not None
        except Exception:
            at = datetime(2026, 3, 1, tzinfo=UTC)  # a bad line: anywhere
        hours = rng.uniform(0, 6) if rng.random() < 0.9 else rng.uniform(6, 72)
        arrivals.append((at + timedelta(hours=hours), n, line))
    return [line for _a, _n, line in sorted(arrivals)]


def _per_topic(lines: list[bytes], seed: int) -> list[bytes]:
    tickets = [line for line in lines if b'"ticket.' in line]
    return tickets + [line for line in lines if b'"ticket.' not in line]


@pytest.mark.parametrize("order", [_delayed, _per_topic], ids=["delayed", "per_topic"])
def test_stream_net_outcome_whatever_the_arrival_order(broker_url, tmp_path, mix, order):
    lines = order(mix["lines"], 11)
    app = new_app(tmp_path, broker_url)
    try:
        worker = app.start()
        asyncio.run(load_contracts(app, mix["contracts"], [worker.url]))
        asyncio.run(produce(broker_url, app.prefix, lines))
        run_until_final(app, [worker], mix["at"])
        replay = mix["replay"]
        r_net = net_outcome(json.loads(x) for x in replay)
        stream = collect_at_least(broker_url, app.prefix, net_size(r_net))
    finally:
        app.stop_all()
    s_net = net_outcome(json.loads(x) for x in stream)
    corrections = sum(1 for x in stream if b'"sla.breach_retracted"' in x or b'"sla.met_retracted"' in x)
    print(f"\n{order.__name__}: {len(lines)} lines; replay net outcome {({k: len(v) for k, v in r_net.items()})}; "
          f"stream corrections {corrections}")
    assert len(r_net["breaches"]) > 100 and len(r_net["met"]) > 100
    for part in ("breaches", "met", "months", "refunds"):
        assert s_net[part] == r_net[part], part
    assert sorted(s_net["notices"]) == sorted(r_net["notices"])
