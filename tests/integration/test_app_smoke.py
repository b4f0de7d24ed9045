"""The Faust worker shell against a real broker, with a fake core.

The fake core stands in for events/ + policies/ (being written in parallel): it decodes
JSON, keeps a per-ticket counter in the Store, schedules a wake 60 s after a ticket
opens and emits one output per applied event and per fired wake. That is enough to
see the shell's wiring: topics, routing and keys, dead letters, tables, ticks.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP

from streams.app import (CONTRACTS, DEAD_LETTER, MONITORING_EVENTS, REFUNDS, BREACHES,
                         TICKET_EVENTS, build_app, partition_for_key)
from streams.testing.broker import bootstrap_servers
from streams.settings import SettingsError, WorkerSettings
from streams.ticks import encode_tick

pytestmark = pytest.mark.broker

PARTITIONS = 3


# --- fake core -------------------------------------------------------------------------

def _instant(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise ValueError("naive timestamp")
    return t.astimezone(timezone.utc)


class FakeProcessor:
    def __init__(self, store, owns_service):
        self.store = store
        self.owns_service = owns_service
        self.now: datetime | None = None
        self.contracts: dict[str, dict] = {}
        self.advances: list[datetime] = []

    def upsert_contract(self, contract, release=True):
        self.contracts[contract["customer_id"]] = contract
        return []

    def advance_to(self, t):
        self.advances.append(t)
        if self.now is not None and t <= self.now:
            return []
        self.now = t
        return [{"type": "sla.breached", "event_id": f"due-{key}", "ticket_id": key,
                 "occurred_at": t.isoformat()} for key in self.store.pop_due(t)]

    def apply(self, ev):
        if ev["type"] == "boom":
            raise ValueError("rejected: the fake core refuses 'boom'")
        at = _instant(ev["occurred_at"])
        out = self.advance_to(at)
        if ev["type"].startswith("ticket."):
            tid = ev["ticket_id"]
            state = json.loads(self.store.get_ticket(tid) or '{"n": 0}')
            state["n"] += 1
            self.store.put_ticket(tid, json.dumps(state))
            if ev["type"] == "ticket.opened":
                self.store.schedule(tid, at + timedelta(seconds=60))
            out.append({"type": "sla.met", "event_id": "out-" + ev["event_id"], "ticket_id": tid,
                        "n": state["n"], "contract_known": ev.get("customer_id") in self.contracts})
        else:
            sid = ev["service_id"]
            out.append({"type": "uptime.month_closed", "event_id": "out-" + ev["event_id"],
                        "customer_id": ev["customer_id"], "service_id": sid,
                        "owned": self.owns_service(sid)})
        return out


class FakeCore:
    def __init__(self):
        self.processors: list[FakeProcessor] = []

    def decode(self, raw):
        try:
            ev = json.loads(raw)
        except (TypeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"invalid_json: {exc}") from None
        if not isinstance(ev, dict) or "type" not in ev:
            raise ValueError("invalid_envelope: no type")
        return ev

    def contract_of(self, ev):
        if ev["type"] != "contract.upserted":
            raise ValueError("invalid_contract: not a contract.upserted")
        return ev["customer_id"], ev

    def new_processor(self, store, owns_service):
        proc = FakeProcessor(store, owns_service)
        self.processors.append(proc)
        return proc

    def encode(self, output):
        return json.dumps(output, sort_keys=True, default=str).encode()

    def output_type(self, output):
        return output["type"]

    def output_field(self, output, name):
        return output.get(name)

    def event_type(self, ev):
        return ev["type"]

    def dead_letter(self, source, raw, error):
        return {"type": "dead_letter", "source": source,
                "raw": raw.decode("utf-8", "replace") if raw is not None else None, "error": error}


# --- helpers ---------------------------------------------------------------------------

def _settings(broker_url, prefix, tmp_path, **kw):
    base = dict(broker=broker_url, topic_prefix=prefix, app_id=prefix + "slaproc",
                partitions=PARTITIONS, web_enabled=False, data_dir=tmp_path / "data",
                tick_interval=3600.0, batch_within=0.05,
                # Tansu accepts a 3 s session (Apache Kafka's default minimum is 6 s): a restarted
                # worker rejoins in ~3 s instead of ~12 s (docs/stream.md).
                broker_session_timeout=3.0, broker_heartbeat_interval=0.5,
                broker_rebalance_timeout=3.0)
    base.update(kw)
    return WorkerSettings(**base)


@asynccontextmanager
async def running(app, timings=None):
    """Start the Faust app in this event loop; yield once its partitions are assigned."""
    t0 = time.monotonic()
    await app.start()
    deadline = time.monotonic() + 60
    while not app.consumer.assignment():
        if time.monotonic() > deadline:
            raise AssertionError("worker got no partitions within 60 s")
        await asyncio.sleep(0.05)
    if timings is not None:
        timings["assigned_after_s"] = round(time.monotonic() - t0, 2)
    try:
        yield app
    finally:
        await asyncio.wait_for(app.stop(), 30)


async def _produce(broker_url, topic, records):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url))
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode() if key else None)
    finally:
        await producer.stop()


async def _read(broker_url, topic, count, timeout=20.0, partitions=PARTITIONS):
    """Read `count` messages (any partition) from the start of `topic`."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(broker_url),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got = []
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, msgs in batch.items():
                got.extend(msgs)
    finally:
        await consumer.stop()
    return got


async def _read_until(broker_url, topic, done, timeout=30.0):
    """Read from the start of `topic` until `done(messages)` holds (or the timeout)."""
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        got = await _read(broker_url, topic, 10**6, timeout=2.0)
        if done(got):
            break
    return got


def _ev(type_, event_id, at, **fields):
    return json.dumps({"type": type_, "event_id": event_id, "occurred_at": at, **fields}).encode()


async def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# --- tests -----------------------------------------------------------------------------

def test_settings_from_env_and_overrides(tmp_path):
    s = WorkerSettings.from_env({"SLAPROC_BROKER": "kafka://k:1", "SLAPROC_PARTITIONS": "6",
                                 "SLAPROC_TICK_INTERVAL": "500ms", "SLAPROC_ALLOWED_LATENESS": "2m",
                                 "SLAPROC_TOPIC_PREFIX": "stg.", "SLAPROC_WEB_ENABLED": "no",
                                 "SLAPROC_DATA_DIR": str(tmp_path)},
                                web_port=7000, partitions=None)
    assert (s.broker, s.partitions, s.tick_interval, s.allowed_lateness, s.web_enabled,
            s.web_port, s.data_dir) == ("kafka://k:1", 6, 0.5, 120.0, False, 7000, tmp_path)
    assert s.topic("sla.breaches") == "stg.sla.breaches"
    assert WorkerSettings.from_env({}).broker == "kafka://localhost:9092"
    assert WorkerSettings.from_env({}).allowed_lateness == 30.0
    with pytest.raises(SettingsError, match="SLAPROC_PARTITIONS"):
        WorkerSettings.from_env({"SLAPROC_PARTITIONS": "0"})
    with pytest.raises(SettingsError, match="SLAPROC_TICK_INTERVAL"):
        WorkerSettings.from_env({"SLAPROC_TICK_INTERVAL": "soon"})


async def test_worker_routes_outputs_dead_letters_garbage_and_keeps_going(broker_url, topic_prefix, tmp_path):
    settings = _settings(broker_url, topic_prefix, tmp_path)
    core = FakeCore()
    app = build_app(settings, core=core)
    worker = app.slaproc
    timings = {}
    async with running(app, timings):
        t_assigned = time.monotonic()
        await _produce(broker_url, settings.topic(CONTRACTS), [
            ("acme", _ev("contract.upserted", "c1", "2026-03-02T09:00:00Z", customer_id="acme")),
            ("bad", b"\xff\xfenot json"),
        ])
        assert await _wait_for(lambda: "acme" in worker.contracts), "contract never reached the worker"
        timings["first_contract_after_assign_s"] = round(time.monotonic() - t_assigned, 2)
        await _produce(broker_url, settings.topic(TICKET_EVENTS), [
            ("T-1", _ev("ticket.opened", "e1", "2026-03-02T10:00:00+01:00", ticket_id="T-1", customer_id="acme")),
            ("T-2", b"{garbage"),
            ("T-2", _ev("boom", "e2", "2026-03-02T10:00:00Z", ticket_id="T-2")),
            ("T-1", _ev("ticket.replied", "e3", "2026-03-02T10:05:00Z", ticket_id="T-1", customer_id="acme")),
            ("T-2", _ev("ticket.opened", "e4", "2026-03-02T10:06:00Z", ticket_id="T-2", customer_id="acme")),
        ])
        await _produce(broker_url, settings.topic(MONITORING_EVENTS), [
            ("svc-9", _ev("outage.started", "m1", "2026-03-02T11:00:00Z", service_id="svc-9", customer_id="acme")),
        ])
        # The fake core has one time per partition: whether T-2's wake (10:07Z) also fires
        # depends on whether the 11:00Z outage is applied first, i.e. on which agent runs
        # first. Read until the four expected outputs are in.
        met = await _read_until(broker_url, settings.topic(BREACHES),
                                lambda got: {"out-e1", "out-e3", "out-e4", "due-T-1"}
                                <= {json.loads(m.value)["event_id"] for m in got})
        refunds = await _read(broker_url, settings.topic(REFUNDS), 1)
        dead = await _read(broker_url, settings.topic(DEAD_LETTER), 3)

    by_id = {json.loads(m.value)["event_id"]: (m.key, m.partition, json.loads(m.value)) for m in met}
    # T-1's wake (opened 09:00Z + 60 s) fires when its reply at 10:05Z moves the partition's time
    assert set(by_id) - {"due-T-2"} == {"out-e1", "out-e3", "out-e4", "due-T-1"}
    # keyed by ticket_id, hence on the ticket's partition; per-ticket state counted in the table
    assert by_id["out-e1"][0] == b"T-1" and by_id["out-e3"][2]["n"] == 2 and by_id["out-e4"][2]["n"] == 1
    assert by_id["out-e1"][1] == partition_for_key("T-1", PARTITIONS)
    assert all(v[2]["contract_known"] for k, v in by_id.items() if k.startswith("out-"))
    assert worker.tables["tickets"].data.get("T-1") == b'{"n": 2}'

    [refund] = refunds
    assert refund.key == b"acme" and json.loads(refund.value)["owned"] is True

    letters = [json.loads(m.value) for m in dead]
    assert all(m.key is None for m in dead)
    errors = {(d["source"]["topic"], d["error"].split(":")[0]) for d in letters}
    assert errors == {(settings.topic(CONTRACTS), "invalid_json"),
                      (settings.topic(TICKET_EVENTS), "invalid_json"),
                      (settings.topic(TICKET_EVENTS), "rejected")}
    boom = next(d for d in letters if d["error"].startswith("rejected"))
    assert json.loads(boom["raw"])["event_id"] == "e2" and boom["source"]["offset"] >= 0
    print(f"\nTIMINGS {timings}")


async def test_ticks_advance_only_caught_up_partitions(broker_url, topic_prefix, tmp_path):
    settings = _settings(broker_url, topic_prefix, tmp_path, tick_interval=0.5, allowed_lateness=30.0)
    core = FakeCore()
    app = build_app(settings, core=core)
    worker = app.slaproc
    quiet, busy = "Q-1", "B-1"
    # two tickets on different partitions
    while partition_for_key(busy, PARTITIONS) == partition_for_key(quiet, PARTITIONS):
        busy += "x"
    p_quiet, p_busy = partition_for_key(quiet, PARTITIONS), partition_for_key(busy, PARTITIONS)
    opened = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    async with running(app):
        busy_tp = TP(settings.topic(TICKET_EVENTS), p_busy)  # Faust asserts its own TP type
        app.consumer.pause_partitions([busy_tp])  # input left unread on p_busy
        await _produce(broker_url, settings.topic(TICKET_EVENTS), [
            (quiet, _ev("ticket.opened", "q1", opened, ticket_id=quiet)),
            (busy, _ev("ticket.opened", "b1", opened, ticket_id=busy)),
        ])
        # the quiet partition's wake (opened + 60 s) only fires through a tick
        fired = await _read(broker_url, settings.topic(BREACHES), 2, timeout=20)
        ids = {json.loads(m.value)["event_id"] for m in fired}
        assert ids == {"out-q1", f"due-{quiet}"}
        proc_busy = worker.processors.get(p_busy)
        assert proc_busy is not None and proc_busy.now is None  # ticks came, none advanced it
        assert proc_busy.advances == []
        proc_quiet = worker.processors[p_quiet]
        lag = datetime.now(timezone.utc) - proc_quiet.now
        assert timedelta(seconds=30) <= lag < timedelta(seconds=40)

        app.consumer.resume_partitions([busy_tp])
        more = await _read(broker_url, settings.topic(BREACHES), 4, timeout=20)
        ids = {json.loads(m.value)["event_id"] for m in more}
        assert ids == {"out-q1", f"due-{quiet}", "out-b1", f"due-{busy}"}


async def test_state_due_index_and_contracts_survive_a_worker_restart(broker_url, topic_prefix, tmp_path):
    settings = _settings(broker_url, topic_prefix, tmp_path)
    ticket = "R-1"
    other = "R-2"
    while partition_for_key(other, PARTITIONS) != partition_for_key(ticket, PARTITIONS):
        other += "x"  # same partition, so its event moves the time that fires R-1's wake
    first = build_app(settings, core=FakeCore())
    async with running(first):
        await _produce(broker_url, settings.topic(CONTRACTS), [
            ("acme", _ev("contract.upserted", "c1", "2026-03-02T09:00:00Z", customer_id="acme"))])
        await _produce(broker_url, settings.topic(TICKET_EVENTS), [
            (ticket, _ev("ticket.opened", "r1", "2026-03-02T10:00:00Z", ticket_id=ticket))])
        assert len(await _read(broker_url, settings.topic(BREACHES), 1)) == 1
        assert await _wait_for(lambda: "acme" in first.slaproc.contracts)

    timings = {}
    second = build_app(settings, core=FakeCore())
    async with running(second, timings):
        worker = second.slaproc
        assert "acme" in worker.contracts  # global table recovered before the agents ran
        await _produce(broker_url, settings.topic(TICKET_EVENTS), [
            (ticket, _ev("ticket.replied", "r2", "2026-03-02T10:00:30Z", ticket_id=ticket)),
            (other, _ev("ticket.opened", "r3", "2026-03-02T10:02:00Z", ticket_id=other)),
        ])
        out = await _read(broker_url, settings.topic(BREACHES), 4)
    by_id = {json.loads(m.value)["event_id"]: json.loads(m.value) for m in out}
    assert by_id["out-r2"]["n"] == 2          # the per-ticket table came back from its changelog
    assert "due-R-1" in by_id                 # the due index was rebuilt from the `due` table
    assert by_id["due-R-1"]["occurred_at"].startswith("2026-03-02T10:02:00")
    print(f"\nRESTART TIMINGS {timings}")


def test_partition_store_due_index_persists_and_rebuilds_per_partition():
    from streams.store import DictTableBackend, PartitionStore
    from streams.ticks import is_caught_up

    backend = DictTableBackend()
    p0, p1 = PartitionStore(backend, 0), PartitionStore(backend, 1)
    t = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
    p0.schedule("b", t + timedelta(minutes=2))
    p0.schedule("a", t + timedelta(minutes=2))
    p0.schedule("c", t + timedelta(minutes=1))
    p0.schedule("c", t + timedelta(minutes=5))   # moved: the earlier wake is gone
    p1.schedule("z", t)
    p0.put_ticket("T", '{"n":1}')
    p0.put_ticket("T", '{"n":1}')                # no-op: no second write
    p0.commit()
    p1.commit()
    assert [w for w in backend.writes if w[0] == "tickets"] == [("tickets", 0, "T", '{"n":1}')]
    rebuilt = PartitionStore(backend, 0)          # e.g. after a restart: only partition 0's keys
    assert rebuilt.next_wake() == t + timedelta(minutes=2)
    assert rebuilt.pop_due(t + timedelta(minutes=3)) == ["a", "b"]
    rebuilt.commit()
    assert PartitionStore(backend, 0).pop_due(t + timedelta(days=1)) == ["c"]  # pops were persisted
    assert PartitionStore(backend, 1).pop_due(t) == ["z"]

    assert is_caught_up({"x": 5, "y": 0}, {"x": 5, "y": 0})
    assert not is_caught_up({"x": 4, "y": 0}, {"x": 5, "y": 0})
    assert not is_caught_up({"x": None}, {"x": 1})
    assert is_caught_up({"x": None}, {"x": 0})


async def test_a_tick_catches_up_in_steps_and_lets_other_work_in(tmp_path):
    """A tick months ahead of a partition's time is applied one CATCH_UP_STEP at a time, each
    committed on its own, with the worker lock released in between (no broker needed)."""
    settings = _settings("kafka://127.0.0.1:1", "t.", tmp_path)
    app = build_app(settings, core=FakeCore())
    worker = app.slaproc
    calls: list[datetime] = []
    interleaved: list[int] = []

    class Processor:  # the part of a partition processor a tick uses
        now = datetime(2026, 1, 1, tzinfo=timezone.utc)

        def advance_to(self, t: datetime) -> list:
            calls.append(t)
            self.now = max(self.now, t)
            return []

    worker.processors[0] = Processor()
    committed: list[int] = []

    async def commit_batch() -> None:
        committed.append(len(calls))

    worker.commit_batch = commit_batch

    async def other_work() -> None:  # e.g. an input batch of another partition
        for _ in range(3):
            async with worker.lock:
                interleaved.append(len(calls))
            await asyncio.sleep(0)

    at = datetime(2026, 1, 4, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=settings.allowed_lateness)
    _, advanced = await asyncio.gather(other_work(), worker.handle_tick(0, encode_tick(at), caught_up=True))
    assert advanced
    day = timedelta(days=1)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert calls == [start + day, start + 2 * day, start + 3 * day, datetime(2026, 1, 4, 12, 0, tzinfo=timezone.utc)]
    assert committed == [1, 2, 3, 4]
    assert any(0 < n < len(calls) for n in interleaved), interleaved  # other work ran between steps
