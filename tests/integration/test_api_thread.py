"""The query API runs off the processing loop (issue 18 item 4): a request handler held in the API
thread stops neither the events nor the ticks; the held request is answered once let go.

A real worker (real core, real broker) in this process; the ticket view's `describe_ticket` is
wrapped to block until the test lets it go. Had the view run on the processing loop, the loop
would block with it: no event after the hold would be applied and no tick would move time."""
from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

import streams.web
from bench.stream import contract_lines, sample_contracts
from streams.app import TICKET_EVENTS, partition_for_key
from streams.testing.harness import free_port, produce
from streams.worker import build_worker_app
from tests.integration.test_app_smoke import PARTITIONS, _settings, _wait_for, running

pytestmark = pytest.mark.broker
UTC = timezone.utc


def _opened(ticket_id: str, customer_id: str, at: datetime) -> bytes:
    return json.dumps({"event_id": f"open-{ticket_id}", "type": "ticket.opened", "occurred_at": at.isoformat(),
                       "ticket_id": ticket_id, "customer_id": customer_id, "priority": "low"}).encode()


async def test_a_held_query_stops_neither_events_nor_ticks(broker_url, topic_prefix, tmp_path, monkeypatch):
    settings = _settings(broker_url, topic_prefix, tmp_path, web_enabled=True, web_port=free_port(),
                         tick_interval=0.5)
    app = build_worker_app(settings)
    worker = app.slaproc
    entry = sample_contracts(1)[0]
    customer = entry["customer_id"]
    opened_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    held, release = threading.Event(), threading.Event()
    describe = streams.web.describe_ticket

    def holding(*args, **kwargs):
        held.set()
        release.wait(60)  # a regression fails the test, not hangs it
        return describe(*args, **kwargs)

    monkeypatch.setattr(streams.web, "describe_ticket", holding)
    answer: dict = {}

    def ask() -> None:
        with urllib.request.urlopen(f"http://127.0.0.1:{settings.web_port}/tickets/A1", timeout=120) as response:
            answer["status"], answer["body"] = response.status, json.loads(response.read())

    asker = threading.Thread(target=ask, daemon=True)
    try:
        async with running(app):
            await produce(broker_url, topic_prefix, contract_lines([entry]))
            # the contract first (a ticket of a customer without one is parked, SPEC §10)
            assert await _wait_for(lambda: customer in worker.contracts, 60)
            await produce(broker_url, topic_prefix, [_opened("A1", customer, opened_at)])
            assert await _wait_for(lambda: worker.snapshots.current.tables["tickets"].get("A1") is not None, 60)
            asker.start()
            assert await asyncio.to_thread(held.wait, 30), "the request reached the ticket view"
            # the API thread is now held inside the view
            times = {p: proc.now for p, proc in worker.processors.items()}
            later = [f"B{i}" for i in range(30)]
            await produce(broker_url, topic_prefix, [_opened(t, customer, opened_at) for t in later])

            def applied() -> bool:
                return all(worker.processors.get(partition_for_key(t, PARTITIONS)) is not None
                           and worker.processors[partition_for_key(t, PARTITIONS)].store.ticket(t) is not None
                           for t in later)

            def ticked() -> bool:  # a tick moved a partition's time (the events are older than its target)
                return any(proc.now is not None and (times.get(p) is None or proc.now > times[p])
                           and proc.now > opened_at + timedelta(minutes=5) for p, proc in worker.processors.items())

            progressed = await _wait_for(lambda: applied() and ticked(), 45)
            still_held = asker.is_alive() and not release.is_set()
            release.set()
            await asyncio.to_thread(asker.join, 30)
            published = worker.snapshots.current
    finally:
        release.set()
    assert progressed, "events and a tick went through while the API thread was held"
    assert still_held, "...and the request was still held then"
    assert answer["status"] == 200 and answer["body"]["ticket_id"] == "A1"
    assert {p for p in (partition_for_key(t, PARTITIONS) for t in ["A1", *later])} <= set(published.partitions)
    assert settings.topic(TICKET_EVENTS) in published.routes
