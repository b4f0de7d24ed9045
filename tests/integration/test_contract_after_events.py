"""A new customer's contract read after its first events (docs/decisions.md, "Contract wait"), on
the embedded broker with `python -m streams.worker`.

The review of 2026-12-05: customers x and y on a new service vz-new (terms from 2026-06-16, x adding
it to its vz-a terms), an outage of vz-new of 600 min in June; replay (contracts first) refunds 6.83
USD to each, the stream with the contracts published after the events closed June at 100.00 %, met,
no refund (the outage was an `unknown_service` dead letter, y's first ticket `unknown_customer`).

Here y's first ticket (its reply before its open), the outage's start and another customer's
traffic (which moves the partitions' time, less than the wait) are produced and consumed first; the
worker holds them (`slaproc_parked_events`). Then the contracts, then the outage's end, then ticks to
1 August. The net outcome equals replay's over the same events with every contract, and no dead
letter is written. Hand figures: tests/unit/test_service_added_mid_month.py (97.22 %, 6.83 USD).
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from streams.testing.harness import (collect, contract_events, metric_sum, produce, scrape, tick_until_at,
                                    wait_until)
from tests.integration.test_stream_equals_replay import (LATENESS, PARTITIONS, events_in, load_contracts, new_app,
                                                         replay_outputs)
from tests.net_outcome import net_outcome
from tests.unit.test_contract_wait import CONTRACTS, OTHER

pytestmark = pytest.mark.broker

UTC = timezone.utc
AT = datetime(2026, 8, 1, 2, 0, 30, tzinfo=UTC)  # ticks; replay's --until is AT - lateness


def _line(event_id: str, kind: str, at: str, **fields: str) -> bytes:
    return json.dumps({"event_id": event_id, "type": kind, "occurred_at": at, **fields}).encode()


FIRST = [  # read before the contracts
    _line("o1o", "ticket.opened", "2026-06-20T08:00:00Z", ticket_id="O-1", customer_id="old", priority="normal"),
    _line("y1r", "ticket.replied", "2026-06-20T10:03:00Z", ticket_id="Y-1", author="provider"),
    _line("y1o", "ticket.opened", "2026-06-20T10:01:00Z", ticket_id="Y-1", customer_id="y", priority="high"),
    _line("n1", "outage.started", "2026-06-20T10:00:00Z", service_id="vz-new", outage_id="N1"),
    _line("o1", "outage.started", "2026-06-20T10:02:00Z", service_id="vz-old", outage_id="OLD1"),
    _line("o2", "outage.resolved", "2026-06-20T10:05:00Z", service_id="vz-old", outage_id="OLD1"),
    _line("o1r", "ticket.replied", "2026-06-20T10:06:00Z", ticket_id="O-1", author="provider"),
]
LATER = [_line("n2", "outage.resolved", "2026-06-20T20:00:00Z", service_id="vz-new", outage_id="N1")]


def parked(worker: object) -> float:
    return metric_sum(scrape(worker.url), "slaproc_parked_events")  # type: ignore[attr-defined]


def _files(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """The old customer's contracts, the new ones, both (for replay) and the events file."""
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(OTHER)
    new.write_text(CONTRACTS)
    both = tmp_path / "contracts.yaml"
    both.write_text(OTHER + "".join(CONTRACTS.splitlines(keepends=True)[1:]))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(FIRST + LATER) + b"\n")
    return old, new, both, events


def _replay_and_collect(app, broker_url: str, both: Path, events: Path) -> tuple[list, dict, list]:
    """Replay's outputs and net outcome, and the stream's outputs collected from the topics."""
    replay = [json.loads(x) for x in replay_outputs(events, both, datetime(2026, 8, 1, 2, tzinfo=UTC))]
    r_net = net_outcome(replay)
    stream = asyncio.run(collect(broker_url, app.prefix, quiet_for=2, timeout=60,
                                 expect=sum(len(v) for v in r_net.values())))
    return replay, r_net, stream


def test_a_contract_read_after_its_customers_first_events_measures_them(broker_url, tmp_path: Path):
    old, new, both, events = _files(tmp_path)

    app = new_app(tmp_path, broker_url)
    try:
        worker = app.start()
        asyncio.run(load_contracts(app, old, [worker.url]))
        asyncio.run(produce(broker_url, app.prefix, FIRST))
        base = 1  # the old customer's contract
        wait_until(lambda: events_in([worker.url]) >= base + len(FIRST), 60, what="first events consumed")
        wait_until(lambda: parked(worker) == 3, 30, what="y1o, y1r and n1 waiting")
        asyncio.run(load_contracts(app, new, [worker.url]))
        wait_until(lambda: parked(worker) == 0, 30, what="the waiting events released")
        asyncio.run(produce(broker_url, app.prefix, LATER))
        asyncio.run(tick_until_at(broker_url, app.app_id, PARTITIONS, AT, LATENESS, [worker]))
        replay, r_net, stream = _replay_and_collect(app, broker_url, both, events)
    finally:
        app.stop_all()
    refunds = {(c, s, m): r["refund_amount"] for (c, s, m), r in net_outcome(stream)["refunds"].items()}
    assert refunds == {("x", "vz-new", "2026-06"): "6.83", ("y", "vz-new", "2026-06"): "6.83"}, app.logs()
    assert [o for o in stream if o["type"] == "dead_letter"] == []
    assert [o for o in replay if o["type"] == "dead_letter"] == []
    s_net = net_outcome(stream)
    for part in r_net:
        assert s_net[part] == r_net[part], part
    assert [o for o in s_net["met"].values() if o["ticket_id"] == "Y-1"], "Y-1 measured"


def test_waiting_events_survive_a_restart_and_go_out_at_the_next_tick(broker_url, tmp_path: Path):
    """The first worker holds y's events and stops (they are in its partitions' snapshots); a second
    worker (fresh data directory: the state comes back from the changelogs) reads the contracts
    before any event or tick built its processors. A processor built later installs them without
    sending outputs (`Worker.processor`, release=False): the waiting events are applied at its first
    tick, whose outputs are sent. Same net outcome as replay."""
    old, new, both, events = _files(tmp_path)

    app = new_app(tmp_path, broker_url)
    try:
        first = app.start()
        asyncio.run(load_contracts(app, old, [first.url]))
        asyncio.run(produce(broker_url, app.prefix, FIRST))
        wait_until(lambda: parked(first) == 3, 60, what="y1o, y1r and n1 waiting")
        first.stop()
        second = app.start()
        asyncio.run(load_contracts(app, new, [second.url]))
        asyncio.run(produce(broker_url, app.prefix, LATER))
        asyncio.run(tick_until_at(broker_url, app.app_id, PARTITIONS, AT, LATENESS, [second]))
        assert parked(second) == 0, app.logs()
        replay, r_net, stream = _replay_and_collect(app, broker_url, both, events)
    finally:
        app.stop_all()
    s_net = net_outcome(stream)
    refunds = {k: r["refund_amount"] for k, r in s_net["refunds"].items()}
    assert refunds == {("x", "vz-new", "2026-06"): "6.83", ("y", "vz-new", "2026-06"): "6.83"}, app.logs()
    assert [o for o in stream if o["type"] == "dead_letter"] == []
    for part in r_net:
        assert s_net[part] == r_net[part], part


def test_a_contract_no_worker_read_before_a_restart_closes_its_months(broker_url, tmp_path: Path):
    """The first worker knows y's contract only: June closes for y (6.83 USD) and the worker stops.
    x's contracts (vz-new added from 06-16) are published while no worker runs, so no snapshot of
    the partition has them. The second worker reads them with the contracts table and installs them
    into the processors it rebuilds from the changelogs, where nothing can be sent: x's June close
    and 6.83 USD refund were dropped there, and June marked closed (review, 2026-12-05). They go out
    at the partition's next tick now. Same net outcome as replay with every contract."""
    old, _new, both, events = _files(tmp_path)
    entries = yaml.safe_load(CONTRACTS)["contracts"]
    y_only, x_only = tmp_path / "y.yaml", tmp_path / "x.yaml"
    y_only.write_text(yaml.safe_dump({"contracts": [e for e in entries if e["customer_id"] == "y"]}))
    x_only.write_text(yaml.safe_dump({"contracts": [e for e in entries if e["customer_id"] == "x"]}))

    app = new_app(tmp_path, broker_url)
    try:
        first = app.start()
        asyncio.run(load_contracts(app, old, [first.url]))
        asyncio.run(load_contracts(app, y_only, [first.url]))
        asyncio.run(produce(broker_url, app.prefix, FIRST + LATER))
        wait_until(lambda: events_in([first.url]) >= 2 + len(FIRST + LATER), 60, what="events consumed")
        asyncio.run(tick_until_at(broker_url, app.app_id, PARTITIONS, AT, LATENESS, [first]))
        first.stop()
        x_entries = contract_events(x_only)
        asyncio.run(produce(broker_url, app.prefix, [json.dumps(e).encode() for e in x_entries]))
        second = app.start()
        customers = len({e["customer_id"] for e in contract_events(both)})  # the gauge counts customers
        wait_until(lambda: metric_sum(scrape(second.url), "slaproc_contracts") >= customers, 60,
                   what="the second worker holds every contract")
        asyncio.run(tick_until_at(broker_url, app.app_id, PARTITIONS, AT.replace(minute=1), LATENESS, [second]))
        replay, r_net, stream = _replay_and_collect(app, broker_url, both, events)
    finally:
        app.stop_all()
    s_net = net_outcome(stream)
    refunds = {k: r["refund_amount"] for k, r in s_net["refunds"].items()}
    assert refunds == {("x", "vz-new", "2026-06"): "6.83", ("y", "vz-new", "2026-06"): "6.83"}, app.logs()
    for part in r_net:
        assert s_net[part] == r_net[part], part
