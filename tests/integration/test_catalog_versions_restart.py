"""SPEC §14 on the embedded broker: a worker restarted with a catalog that gained a version keeps
the tickets it already holds on the version they were opened under; new tickets get the new one.

The first worker runs with version 2026.11.1 only (High: 2 business hours); it is stopped and a
new worker (a fresh data directory: its state comes back from the changelog topics) starts with
the golden scenario's catalog, which adds 2026.11.2 (High: 1 business hour) from Wednesday
21 October 2026 00:00 New York. The traffic is dated in that past week and the workers get only
the test's ticks, so nothing depends on the wall clock."""
from __future__ import annotations

import asyncio
import json
import shutil
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from streams.testing.harness import collect, produce, tick_until_at, wait_until
from tests.integration.test_stream_equals_replay import LATENESS, PARTITIONS, load_contracts, new_app

pytestmark = pytest.mark.broker

GOLDEN = Path(__file__).parents[1] / "golden" / "nm_catalog_version_midmonth"
UTC = timezone.utc


def _event(event_id: str, type_: str, at: str, ticket: str, **fields: object) -> bytes:
    return json.dumps({"event_id": event_id, "type": type_, "occurred_at": at, "ticket_id": ticket, **fields}).encode()


def _ticket_version(url: str, ticket: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/tickets/{ticket}", timeout=5) as response:
            return json.loads(response.read())["policy_version"]
    except OSError:
        return None


def test_restart_with_a_newer_catalog_keeps_open_tickets_on_their_version(broker_url, tmp_path):
    only_v1 = tmp_path / "catalog-v1"
    only_v1.mkdir()
    shutil.copy(GOLDEN / "catalog" / "neural-magic.yaml", only_v1)
    app = new_app(tmp_path, broker_url, module="tests.integration.versioned_worker")
    try:
        first = app.start(extra_env={"SLAPROC_TEST_CATALOG_DIR": str(only_v1)})
        asyncio.run(load_contracts(app, GOLDEN / "contracts.yaml", [first.url]))
        # Tuesday 20 October 19:30 New York: v1 deadline Wednesday 09:30 (13:30Z), v2's would be 08:30
        asyncio.run(produce(broker_url, app.prefix, [_event(
            "r-open-2", "ticket.opened", "2026-10-20T19:30:00-04:00", "NMV-2", customer_id="nm-ver", priority="high")]))
        wait_until(lambda: _ticket_version(first.url, "NMV-2") == "2026.11.1", 90, what="NMV-2 held by worker 1")
        first.stop()

        second = app.start(extra_env={"SLAPROC_TEST_CATALOG_DIR": str(GOLDEN / "catalog")})
        asyncio.run(produce(broker_url, app.prefix, [
            _event("r-reply-2", "ticket.replied", "2026-10-21T09:00:00-04:00", "NMV-2", author="provider"),
            _event("r-open-3", "ticket.opened", "2026-10-21T10:00:00-04:00", "NMV-3", customer_id="nm-ver",
                   priority="high"),
        ]))
        asyncio.run(tick_until_at(broker_url, app.app_id, PARTITIONS, datetime(2026, 10, 22, tzinfo=UTC), LATENESS,
                                  [second]))
        outputs = asyncio.run(collect(broker_url, app.prefix, quiet_for=3, timeout=60, expect=None))
    finally:
        app.stop_all()
    outcomes = sorted((o["ticket_id"], o["type"], o["policy_version"], o["due_at"]) for o in outputs
                      if o["type"] in ("sla.met", "sla.breached"))
    assert outcomes == [
        ("NMV-2", "sla.met", "2026.11.1", "2026-10-21T13:30:00Z"),      # kept v1 across the restart
        ("NMV-3", "sla.breached", "2026.11.2", "2026-10-21T15:00:00Z"),  # opened under v2: 10:00 + 1 bh
    ], app.logs()
