"""Issue 18 item 3 (shell half): a unit of work that raises changes no state at all.

The Faust shell in this process with a fake core whose processor changes its state (a ticket's
counter, the partition's time, the due index) and then raises on an `explode` event: the shell
must undo that event's changes on its partition, keep the batch's other events, dead-letter it
with `rejected`, and go on. With the real core the same happened with a year-9999 event
(time moved to 9999 and was persisted, the next fresh ticket was dead-lettered).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from streams.app import BREACHES, DEAD_LETTER, TICKET_EVENTS, build_app, partition_for_key
from tests.integration.test_app_smoke import (PARTITIONS, FakeCore, FakeProcessor, _ev, _produce, _read_until,
                                              _settings, running)

pytestmark = pytest.mark.broker


class ExplodingProcessor(FakeProcessor):
    def apply(self, ev):
        if ev["type"] == "explode":
            self.store.put_ticket(ev["ticket_id"], json.dumps({"n": 100}))
            self.store.schedule(ev["ticket_id"], datetime(2100, 1, 1, tzinfo=timezone.utc))
            self.now = datetime(2100, 1, 1, tzinfo=timezone.utc)
            raise RuntimeError("the fake core fails after changing its state")
        return super().apply(ev)


class ExplodingCore(FakeCore):
    def new_processor(self, store, owns_service):
        proc = ExplodingProcessor(store, owns_service)
        self.processors.append(proc)
        return proc


async def test_an_event_that_raises_is_undone_and_the_batch_goes_on(broker_url, topic_prefix, tmp_path):
    settings = _settings(broker_url, topic_prefix, tmp_path, batch_within=1.0)
    app = build_app(settings, core=ExplodingCore())
    worker = app.slaproc
    at = (datetime(2026, 2, 2, 9, 0, tzinfo=timezone.utc))
    stamp = lambda minutes: (at + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    partition = partition_for_key("T-1", PARTITIONS)
    async with running(app):
        await _produce(broker_url, settings.topic(TICKET_EVENTS), [
            ("T-1", _ev("ticket.opened", "e1", stamp(0), ticket_id="T-1")),
            ("T-1", _ev("explode", "e2", stamp(1), ticket_id="T-1")),
            ("T-1", _ev("ticket.replied", "e3", stamp(2), ticket_id="T-1")),
        ])
        met = await _read_until(broker_url, settings.topic(BREACHES),
                                lambda got: {"out-e1", "out-e3", "due-T-1"} <= {json.loads(m.value)["event_id"] for m in got})
        dead = await _read_until(broker_url, settings.topic(DEAD_LETTER), lambda got: len(got) >= 1)
        stored = worker.tables["tickets"].data.get("T-1")
        proc = worker.processors[partition]
        due = proc.store.due.get("T-1")
    by_id = {json.loads(m.value)["event_id"]: json.loads(m.value) for m in met}
    assert by_id["out-e1"]["n"] == 1 and by_id["out-e3"]["n"] == 2  # e3 saw e1, not the exploded state
    assert stored == b'{"n": 2}'
    assert proc.now is not None and proc.now.year == 2026  # time did not move to 2100
    # the due index as e1 left it (its wake at 09:01 fired when e3 moved time to 09:02), not 2100
    assert due is None and "due-T-1" in by_id
    [letter] = [json.loads(m.value) for m in dead]
    assert json.loads(letter["raw"])["event_id"] == "e2"
    assert letter["error"].startswith("rejected: RuntimeError: the fake core fails")
