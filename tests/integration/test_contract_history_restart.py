"""SPEC §14 on the embedded broker: a customer's two terms (golden
vectorize_pro_to_enterprise_midquarter: Pro from 1 April 2026, Enterprise from 15 May, published
later terms first) survive a restart. The first worker consumes both contracts and is stopped; a
new worker (a fresh data directory: the contracts come back from the contracts table's changelog)
gets the tickets. A ticket opened before the upgrade is measured under Pro, one opened after under
Enterprise. Traffic is pinned in May 2026 (a backfill) and the workers get only the test's ticks.
A third worker, started after the second stops, exports April's uptime gauge (closed by the
second) as soon as its partitions' processors are built from the restored state."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from streams.testing.harness import collect, produce, scrape, tick_until_at
from tests.integration.test_stream_equals_replay import LATENESS, PARTITIONS, load_contracts, new_app

pytestmark = pytest.mark.broker

GOLDEN = Path(__file__).parents[1] / "golden" / "vectorize_pro_to_enterprise_midquarter"
UTC = timezone.utc


def _ticket_lines() -> list[bytes]:
    """The tickets, and April's outage (its month closes by the test's last tick, 20 May)."""
    lines = [line for line in (GOLDEN / "events.jsonl").read_bytes().splitlines() if line.strip()]
    return [line for line in lines if json.loads(line)["type"].startswith("ticket.")
            or json.loads(line)["occurred_at"].startswith("2026-04")]


def _april(url: str) -> dict:
    return {name: value for (name, labels), value in scrape(url).items()
            if name in ("slaproc_uptime_percent", "slaproc_service_subscribers_not_met")
            and ("month", "2026-04") in labels and ("service_id", "up-api") in labels}


def test_a_restarted_worker_keeps_every_terms_of_a_customer(broker_url, tmp_path):
    app = new_app(tmp_path, broker_url)
    try:
        first = app.start()
        assert asyncio.run(load_contracts(app, GOLDEN / "contracts.yaml", [first.url])) == 2
        first.stop()

        second = app.start()
        asyncio.run(produce(broker_url, app.prefix, _ticket_lines()))
        asyncio.run(tick_until_at(broker_url, app.app_id, PARTITIONS, datetime(2026, 5, 20, tzinfo=UTC), LATENESS,
                                  [second]))
        outputs = asyncio.run(collect(broker_url, app.prefix, quiet_for=3, timeout=60, expect=None))
        # 3 h down of April's 43,200 min: 99.58 %, Pro's 99.5 % met
        assert _april(second.url) == {"slaproc_uptime_percent": 99.58, "slaproc_service_subscribers_not_met": 0.0}
        second.stop()
        third = app.start()
        asyncio.run(tick_until_at(broker_url, app.app_id, PARTITIONS, datetime(2026, 5, 20, tzinfo=UTC), LATENESS,
                                  [third]))  # no time moves: the ticks only build the processors
        # rebuilt from the restored state (was: empty until the next month close)
        assert _april(third.url) == {"slaproc_uptime_percent": 99.58, "slaproc_service_subscribers_not_met": 0.0}
    finally:
        app.stop_all()
    outcomes = sorted((o["ticket_id"], o["binding"], o["type"], o["plan"], o["due_at"]) for o in outputs
                      if o["type"] in ("sla.met", "sla.breached"))
    assert outcomes == [  # the golden's arithmetic
        ("UP-1", False, "sla.breached", "pro", "2026-05-14T18:00:00Z"),
        ("UP-1", True, "sla.met", "pro", "2026-05-15T14:00:00Z"),
        ("UP-2", False, "sla.breached", "enterprise", "2026-05-19T15:00:00Z"),
        ("UP-2", True, "sla.breached", "enterprise", "2026-05-19T18:00:00Z"),
    ], app.logs()
