"""Issue 18: no input can stop a worker (stream mode, real core, embedded broker).

Each test is one defect found by fault injection: a contract that claims another customer's
service (since issue 12 a shared service, simply accepted), record timestamps out of datetime's range, an event whose processing raises, an agent
that crashes, a broker that refuses connections, a month written with non-ASCII digits. The
traffic is dated in a fixed past (February 2026) and the workers get no ticks, so nothing here
depends on the wall clock.
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from streams.app import CONTRACTS, DEAD_LETTER_REASONS, TICKET_EVENTS, partition_for_key
from streams.testing.broker import bootstrap_servers, create_topics
from streams.testing.harness import collect, metric_sum, scrape, wait_until
from tests.integration.test_crash_loop import _committed
from tests.integration.test_stream_equals_replay import PARTITIONS, new_app

pytestmark = pytest.mark.broker

VP = {"event_id": "contract-vp", "type": "contract.upserted", "occurred_at": "2026-01-01T00:00:00Z",
      "customer_id": "vp", "policy": "vectorize", "plan": "pro",
      "services": [{"service_id": "vp-api", "monthly_fee": "1000.00", "currency": "USD"}],
      "effective_from": "2026-01-01T00:00:00Z"}


def _opened(ticket: str, at: str, event_id: str | None = None) -> bytes:
    return json.dumps({"event_id": event_id or f"open-{ticket}", "type": "ticket.opened", "occurred_at": at,
                       "ticket_id": ticket, "customer_id": "vp", "priority": "urgent"}).encode()


async def _send(broker_url: str, topic: str, records: list[tuple[bytes | None, bytes | None, int | None]]) -> None:
    """(key, value, record timestamp in ms or None) in order, one producer batch where possible."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), linger_ms=50)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key, timestamp_ms=ts) for key, value, ts in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _get(url: str) -> tuple[int, Any]:
    def body(raw: bytes) -> Any:
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return raw.decode(errors="replace")

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, body(response.read())
    except urllib.error.HTTPError as err:
        return err.code, body(err.read())
    except OSError:
        return 0, None


def _dead_letters(broker_url: str, prefix: str, expect: int) -> list[dict[str, Any]]:
    outputs = asyncio.run(collect(broker_url, prefix, quiet_for=2, timeout=60, expect=None))
    dead = [o for o in outputs if o["type"] == "dead_letter"]
    assert len(dead) >= expect, dead
    return dead


def _reason_labels(url: str) -> dict[str, float]:
    """The dead-letter reasons counted so far. Every reason's series exists from the start at 0
    (so increase() sees the first dead letter): only the counted ones are returned."""
    return {dict(labels)["reason"]: value for (name, labels), value in scrape(url).items()
            if name == "slaproc_dead_letters_total" and value}


def _same_partition(ticket: str, other: str) -> str:
    while partition_for_key(other, PARTITIONS) != partition_for_key(ticket, PARTITIONS):
        other += "x"
    return other


def _events_in(url: str, kind: str) -> float:
    return metric_sum(scrape(url), "slaproc_events_in_total", type=kind)


# --- item 1 (and 7, 11b) -------------------------------------------------------------------

def test_a_contract_naming_another_customers_service_shares_it_and_survives_a_restart(broker_url, tmp_path):
    """Issue 18 found that such a contract took workers down; issue 12 (SPEC §11) makes it a shared service.

    The two contracts are sent right after the worker's start: when the producer gets there first,
    the broker auto-creates sla.contracts with its default of 4 partitions, `vp` on 1 and `second`
    on 3, read in either order. (When the first claim won, that order decided which contract was
    dead-lettered: the failures of 2026-12-03 from 12:10. Shared, both are installed either way.)"""
    app = new_app(tmp_path, broker_url)
    second = {**VP, "event_id": "contract-second", "customer_id": "second"}  # also lists vp-api
    contracts = app.prefix + CONTRACTS
    tickets = app.prefix + TICKET_EVENTS
    try:
        first = app.start()
        asyncio.run(_send(broker_url, contracts, [(b"vp", json.dumps(VP).encode(), None),
                                                  (b"second", json.dumps(second).encode(), None)]))
        wait_until(lambda: metric_sum(scrape(first.url), "slaproc_contracts") == 2, 60, what="both contracts installed")
        asyncio.run(_send(broker_url, tickets, [(b"T-A1", _opened("T-A1", "2026-02-02T15:00:00Z"), None)]))
        wait_until(lambda: _get(first.url + "/tickets/T-A1")[0] == 200, 60, what="T-A1 applied")
        labels_first = _reason_labels(first.url)
        first.stop()
        # A restart replays the global contracts table: both contracts are in it.
        restarted = app.start()
        asyncio.run(_send(broker_url, tickets, [(b"T-A2", _opened("T-A2", "2026-02-02T16:00:00Z"), None)]))
        wait_until(lambda: _get(restarted.url + "/tickets/T-A2")[0] == 200, 90, what="T-A2 applied after the restart")
        wait_until(lambda: _get(restarted.url + "/ready")[0] == 200, 30, what="restarted worker ready")
        month = _get(restarted.url + "/services/vp-api/months/2026-02")
        full_width = _get(restarted.url + "/services/vp-api/months/" + urllib.parse.quote("２０２６-０２"))
        first_ticket = _get(restarted.url + "/tickets/T-A1")
        contracts_after = metric_sum(scrape(restarted.url), "slaproc_contracts")
        alive = restarted.process.poll() is None
    finally:
        app.stop_all()
    assert "invalid_contract" not in labels_first and set(labels_first) <= DEAD_LETTER_REASONS
    assert contracts_after == 2
    assert month[0] == 200 and [c["customer_id"] for c in month[1]["customers"]] == ["second", "vp"]
    assert full_width[0] == 404, full_width  # item 11b: ASCII digits only
    assert first_ticket[0] == 200 and alive


def test_a_bad_contract_already_in_the_global_table_poisons_no_partition(broker_url, tmp_path):
    """A global contracts table written by an older version holds a contract this version refuses
    (a service listed twice): every worker replays it at start. It is logged and left out;
    tickets of the other customers are processed."""
    app = new_app(tmp_path, broker_url)
    thief = {**VP, "event_id": "contract-thief", "customer_id": "thief", "services": VP["services"] * 2}
    changelog = f"{app.app_id}-contracts-changelog"
    asyncio.run(create_topics(broker_url, [changelog], 1))  # a global table's changelog: one partition, one order
    asyncio.run(create_topics(broker_url, [app.prefix + TICKET_EVENTS], PARTITIONS))
    asyncio.run(_send(broker_url, changelog, [(b'"vp"', json.dumps(VP).encode(), None),
                                              (b'"thief"', json.dumps(thief).encode(), None)]))
    try:
        worker = app.start()
        asyncio.run(_send(broker_url, app.prefix + TICKET_EVENTS,
                          [(b"T-G1", _opened("T-G1", "2026-02-02T15:00:00Z"), None)]))
        wait_until(lambda: _get(worker.url + "/tickets/T-G1")[0] == 200, 90, what="T-G1 applied")
        wait_until(lambda: _get(worker.url + "/ready")[0] == 200, 30, what="ready")
        contracts = metric_sum(scrape(worker.url), "slaproc_contracts")
        log = worker.log_path.read_text(errors="replace")
    finally:
        app.stop_all()
    assert contracts == 1
    assert "stored contract" in log and "not installed" in log and "duplicate service_id 'vp-api'" in log, log[-2000:]


# --- item 2 -------------------------------------------------------------------------------

def test_record_timestamps_out_of_range_give_dead_letters_and_the_batch_goes_on(broker_url, tmp_path):
    app = new_app(tmp_path, broker_url)
    tickets = app.prefix + TICKET_EVENTS
    year_10000_ms = 253_402_300_800_000 + 86_400_000  # 10000-01-02
    try:
        worker = app.start()
        asyncio.run(_send(broker_url, app.prefix + CONTRACTS, [(b"vp", json.dumps(VP).encode(), None)]))
        wait_until(lambda: _events_in(worker.url, "contract.upserted") >= 1, 60, what="contract consumed")
        asyncio.run(_send(broker_url, tickets, [
            (b"T-B0", b"{not json, and stamped in year 10000", year_10000_ms),
            (b"T-B1", _opened("T-B1", "2026-02-02T15:00:00Z"), year_10000_ms),  # valid event, absurd stamp
            (b"T-B2", _opened("T-B2", "2026-02-02T15:01:00Z"), None),
        ]))
        wait_until(lambda: _get(worker.url + "/tickets/T-B2")[0] == 200, 60, what="T-B2 applied")
        b1 = _get(worker.url + "/tickets/T-B1")[0]
        dead = _dead_letters(broker_url, app.prefix, 1)
        labels = _reason_labels(worker.url)
    finally:
        app.stop_all()
    assert b1 == 200
    assert [(d["reason"], d["occurred_at"]) for d in dead] == [("invalid_json", "1970-01-01T00:00:00Z")]
    assert labels == {"invalid_json": 1.0}


# --- item 3 -------------------------------------------------------------------------------

def test_an_event_whose_processing_fails_changes_no_state(broker_url, tmp_path):
    """A reply dated 9999-12-31 raised inside the core (time moved first, then overflowed): the
    partition's time was persisted as 9999 and the next fresh ticket there was dead-lettered."""
    app = new_app(tmp_path, broker_url)
    tickets = app.prefix + TICKET_EVENTS
    late, fresh = _same_partition("T-C1", "T-C2"), _same_partition("T-C1", "T-C3")
    poison = json.dumps({"event_id": "poison", "type": "ticket.replied", "occurred_at": "9999-12-31T23:59:59Z",
                         "ticket_id": "T-C1", "author": "provider", "public": True}).encode()
    try:
        worker = app.start()
        asyncio.run(_send(broker_url, app.prefix + CONTRACTS, [(b"vp", json.dumps(VP).encode(), None)]))
        wait_until(lambda: _events_in(worker.url, "contract.upserted") >= 1, 60, what="contract consumed")
        asyncio.run(_send(broker_url, tickets, [
            (b"T-C1", _opened("T-C1", "2026-02-02T15:00:00Z"), None),
            (b"T-C1", poison, None),
            (late.encode(), _opened(late, "2026-02-02T15:05:00Z"), None),  # same batch, after the poison
        ]))
        wait_until(lambda: _get(worker.url + f"/tickets/{late}")[0] == 200, 60, what=f"{late} applied")
        worker.stop()  # what was persisted is what a restart sees
        worker = app.start()
        asyncio.run(_send(broker_url, tickets, [(fresh.encode(), _opened(fresh, "2026-02-02T15:10:00Z"), None)]))
        wait_until(lambda: _get(worker.url + f"/tickets/{fresh}")[0] == 200, 90, what=f"{fresh} applied")
        c1 = _get(worker.url + "/tickets/T-C1")
        dead = _dead_letters(broker_url, app.prefix, 1)
    finally:
        app.stop_all()
    assert [json.loads(d["raw"])["event_id"] for d in dead] == ["poison"], dead
    assert dead[0]["reason"] in DEAD_LETTER_REASONS
    assert c1[0] == 200 and "9999" not in json.dumps(c1[1]), c1  # the ticket did not see the poison


# --- item 4 -------------------------------------------------------------------------------

def test_a_far_future_event_does_not_block_the_event_loop(broker_url, tmp_path):
    """A reply dated in year 3000 made the worker close every month up to 3000 on its event loop
    (189 s of CPU, 3.8 GB, /metrics timing out). It is a `future_timestamp` dead letter now, and the
    worker answers its web port and goes on with the next event at once."""
    app = new_app(tmp_path, broker_url)
    tickets = app.prefix + TICKET_EVENTS
    far = json.dumps({"event_id": "far", "type": "ticket.replied", "occurred_at": "3000-01-01T00:00:00Z",
                      "ticket_id": "T-F1", "author": "provider", "public": True}).encode()
    try:
        worker = app.start()
        asyncio.run(_send(broker_url, app.prefix + CONTRACTS, [(b"vp", json.dumps(VP).encode(), None)]))
        wait_until(lambda: _events_in(worker.url, "contract.upserted") >= 1, 60, what="contract consumed")
        asyncio.run(_send(broker_url, tickets, [(b"T-F1", _opened("T-F1", "2026-02-02T15:00:00Z"), None),
                                                (b"T-F1", far, None),
                                                (b"T-F2", _opened("T-F2", "2026-02-02T15:05:00Z"), None)]))
        slowest = 0.0
        deadline = time.monotonic() + 60
        while _get(worker.url + "/tickets/T-F2")[0] != 200:
            assert time.monotonic() < deadline, "T-F2 not applied within 60 s"
            t0 = time.monotonic()
            status, _ = _get(worker.url + "/health")
            slowest = max(slowest, time.monotonic() - t0)
            assert status == 200, "the web port did not answer within 5 s"
            time.sleep(0.2)
        dead = _dead_letters(broker_url, app.prefix, 1)
    finally:
        app.stop_all()
    print(f"\nslowest /health while the far-future event was handled: {slowest * 1000:.0f} ms")
    assert [(json.loads(d["raw"])["event_id"], d["reason"]) for d in dead] == [("far", "future_timestamp")]
    assert slowest < 2.0


# --- item 9 -------------------------------------------------------------------------------

FAULTY = Path(__file__).with_name("faulty_worker.py")


def test_a_crashed_agent_stops_the_worker_with_a_nonzero_exit(broker_url, tmp_path):
    app = new_app(tmp_path, broker_url)
    try:
        worker = app.start(module="tests.integration.faulty_worker")
        asyncio.run(_send(broker_url, app.prefix + CONTRACTS, [(b"vp", json.dumps(VP).encode(), None)]))
        wait_until(lambda: _events_in(worker.url, "contract.upserted") >= 1, 60, what="contract consumed")
        asyncio.run(_send(broker_url, app.prefix + TICKET_EVENTS,
                          [(b"T-D1", _opened("T-D1", "2026-02-02T15:00:00Z", event_id="INJECT-CRASH"), None)]))
        waited = wait_until(lambda: worker.process.poll() is not None, 60, what="the worker exits")
        code = worker.process.returncode
        log = worker.log_path.read_text(errors="replace")
        # the failed batch (the crash record alone) is not committed: Faust's take_events acks it
        # as the agent's loop is torn down, and the stop's commit would pass it (compat.hold_commits)
        committed = asyncio.run(_committed(broker_url, app.app_id, [app.prefix + TICKET_EVENTS]))
    finally:
        app.stop_all()
    print(f"\nworker exited {waited:.1f} s after the crash, status {code}, ticket-events committed {committed}")
    assert code not in (0, None), log[-3000:]
    assert "agent slaproc.ticket-events crashed" in log and "injected fault" in log, log[-3000:]
    assert committed == 0


# --- item 8 -------------------------------------------------------------------------------

def test_broker_outage_is_reported_not_ready_and_logged_quietly(tmp_path):
    """The worker's broker goes away (connections refused): the worker stays up and live, turns
    not ready, reports connectivity 0 and no lag series (not a lag of 0), and its log does not
    flood (aiokafka alone wrote ~115 lines/s). A broker of its own: the session's must stay up."""
    from streams.testing.broker import EmbeddedBroker
    from streams.testing.harness import Workers

    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker.start()
    app = Workers(broker.url, "tout.", "slaproc-outage", tmp_path, partitions=PARTITIONS, tick_interval=1.0,
                  extra_env={"SLAPROC_HEALTH_INTERVAL": "0.5"})
    try:
        worker = app.start()
        asyncio.run(_send(broker.url, app.prefix + CONTRACTS, [(b"vp", json.dumps(VP).encode(), None)]))
        wait_until(lambda: _get(worker.url + "/ready")[0] == 200, 60, what="ready with the broker up")
        wait_until(lambda: any(name == "slaproc_consumer_lag" for name, _ in scrape(worker.url)), 30,
                   what="a lag series while connected")
        connected_before = metric_sum(scrape(worker.url), "slaproc_broker_connected")
        broker.stop()
        cut = time.monotonic()
        waited = wait_until(lambda: _get(worker.url + "/ready")[0] == 503, 30, every=0.2, what="/ready answers 503")
        lines_before = len(worker.log_path.read_text(errors="replace").splitlines())
        time.sleep(10)  # the measurement window: what the log gets while the broker stays away
        lines = len(worker.log_path.read_text(errors="replace").splitlines()) - lines_before
        window = time.monotonic() - cut - waited
        ready = _get(worker.url + "/ready")
        health = _get(worker.url + "/health")
        samples = scrape(worker.url)
        alive = worker.process.poll() is None
        log_tail = worker.log_path.read_text(errors="replace").splitlines()[-40:]
    finally:
        app.stop_all()
        broker.stop()
    print(f"\nnot ready {waited:.1f} s after the broker went away; {lines} log lines in the next {window:.1f} s")
    assert connected_before == 1
    assert alive and health[0] == 200, log_tail
    assert ready[0] == 503 and any("broker unreachable" in r for r in ready[1]["reasons"]), ready
    assert ("slaproc_broker_connected", ()) in samples and metric_sum(samples, "slaproc_broker_connected") == 0
    assert not [name for name, _ in samples if name == "slaproc_consumer_lag"]
    assert lines <= 10, "\n".join(log_tail)
