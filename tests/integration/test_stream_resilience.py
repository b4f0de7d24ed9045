"""Crash and rebalance in the middle of the 20k-event mix; bad input on the wire.

Same setup as test_stream_equals_replay (contracts first, workers without their own ticks, final
ticks from the test). At-least-once: after a crash or a rebalance some outputs come twice; the
check is that the *set* of outputs equals replay's and that every repeat is byte-identical to the
first copy (same event_id => same bytes).
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from streams.testing.harness import collect, metric_sum, produce, scrape, wait_until
from tests.integration.test_stream_equals_replay import (QUIET, collect_at_least, diff, events_in, load_contracts,
                                                         new_app, run_until_final, split_dead_letters)

pytestmark = pytest.mark.broker


def check_repeats_identical(stream: list[bytes]) -> Counter:
    """Every event_id maps to one byte string; returns how often each id came."""
    first: dict[str, bytes] = {}
    counts: Counter = Counter()
    for raw in stream:
        event_id = json.loads(raw)["event_id"]
        counts[event_id] += 1
        assert first.setdefault(event_id, raw) == raw, f"repeat with other content:\n{first[event_id]!r}\n{raw!r}"
    return counts


def _entity(output: dict) -> str:
    return output.get("ticket_id") or output.get("customer_id") or output.get("service_id") or "?"


def first_divergences(stream: list[bytes], replay: list[bytes], limit: int = 6) -> str:
    """Per entity (ticket, else customer) whose outputs differ, in the stream's order: the first
    output where the two sides part, then the next few of each side (what a post-mortem needs
    first: which event was applied twice, lost or out of order)."""
    def by_entity(lines: list[bytes]) -> dict[str, list[tuple[str, str, str]]]:
        out: dict[str, list[tuple[str, str, str]]] = {}
        for line in lines:
            data = json.loads(line)
            if data["type"] == "dead_letter":
                continue
            out.setdefault(_entity(data), []).append((data["occurred_at"], data["type"], line.decode()[:300]))
        return out

    s_by, r_by = by_entity(stream), by_entity(replay)
    parts = []
    differing = sorted(k for k in s_by.keys() | r_by.keys() if s_by.get(k) != r_by.get(k))
    for key in differing[:limit]:
        s, r = s_by.get(key, []), r_by.get(key, [])
        i = next((i for i, (a, b) in enumerate(zip(s, r)) if a != b), min(len(s), len(r)))
        parts.append(f"{key}: {len(s)} outputs in the stream, {len(r)} in replay; they part at #{i}")
        parts += [f"    S {x[2]}" for x in s[i:i + 3]] + [f"    R {x[2]}" for x in r[i:i + 3]]
    return f"{len(differing)} entities differ: {differing[:20]}\n" + "\n".join(parts)


def assert_equals_replay(stream: list[bytes], replay: list[bytes], keep: Path | None = None) -> tuple[int, int]:
    """Distinct outputs equal replay's (dead letters by reason and raw); returns (outputs, repeats).
    `keep`: a directory where both sides are written (stream.jsonl, replay.jsonl) for a post-mortem."""
    if keep is not None:
        (keep / "stream.jsonl").write_bytes(b"\n".join(stream) + b"\n")
        (keep / "replay.jsonl").write_bytes(b"\n".join(replay) + b"\n")
    counts = check_repeats_identical(stream)
    distinct = list({json.loads(raw)["event_id"]: raw for raw in stream}.values())
    s_out, s_dead = split_dead_letters(distinct)
    r_out, r_dead = split_dead_letters(replay)
    dead_diff = diff(Counter(set(s_dead)), Counter(set(r_dead)))
    # The dead letters' side goes with an outputs failure too: an input lost or applied out of order
    # shows there first (a ticket whose opening was never applied: its later events become
    # `unknown_ticket` / orphan dead letters, while its outputs are simply missing).
    assert s_out == r_out, (diff(s_out, r_out) + "\n" + first_divergences(distinct, replay)
                            + "\ndead letters: " + dead_diff)
    assert set(s_dead) == set(r_dead), dead_diff
    return len(distinct), sum(n - 1 for n in counts.values())


def test_kill_9_mid_stream_and_restart_equals_replay(broker_url, tmp_path, mix):
    app = new_app(tmp_path, broker_url)
    try:
        first = app.start()
        asyncio.run(load_contracts(app, mix["contracts"], [first.url]))
        asyncio.run(produce(broker_url, app.prefix, mix["lines"]))
        wait_until(lambda: events_in([first.url]) >= 6_000, 120, every=0.1, what="6000 events processed")
        processed_before = events_in([first.url])
        first.kill()  # kill -9: no flush, no commit, no LeaveGroup
        restarted_at = time.monotonic()
        second = app.start()
        waited = run_until_final(app, [second], mix["at"])
        stream = collect_at_least(broker_url, app.prefix, len(mix["replay"]))
    finally:
        app.stop_all()
    outputs, repeats = assert_equals_replay(stream, mix["replay"], keep=tmp_path)
    print(f"\nkill -9 after {processed_before:.0f} events; restart caught up and ticked after "
          f"{time.monotonic() - restarted_at:.1f} s ({waited:.1f} s of ticking); {outputs} outputs, {repeats} repeats")
    assert processed_before < len(mix["lines"]), "the worker finished before the kill: nothing was tested"


def test_second_worker_mid_stream_equals_replay(broker_url, tmp_path, mix):
    app = new_app(tmp_path, broker_url)
    try:
        first = app.start()
        asyncio.run(load_contracts(app, mix["contracts"], [first.url]))
        asyncio.run(produce(broker_url, app.prefix, mix["lines"]))
        wait_until(lambda: events_in([first.url]) >= 5_000, 120, every=0.1, what="5000 events processed")
        processed_before = events_in([first.url])
        second = app.start()
        # the second worker joins and takes partitions (it then reports a partition time)
        waited = run_until_final(app, [first, second], mix["at"])
        owned = {url: metric_sum(scrape(url), "slaproc_rebalances_total") for url in (first.url, second.url)}
        times_second = [name for (name, labels), _ in scrape(second.url).items()
                        if name == "slaproc_partition_time_seconds"]
        stream = collect_at_least(broker_url, app.prefix, len(mix["replay"]))
    finally:
        app.stop_all()
    outputs, repeats = assert_equals_replay(stream, mix["replay"], keep=tmp_path)
    print(f"\nsecond worker joined after {processed_before:.0f} events; all partitions final after {waited:.1f} s; "
          f"{outputs} outputs, {repeats} repeats; rebalances seen {owned}")
    assert processed_before < len(mix["lines"]), "the first worker finished before the second joined"
    assert times_second, "the second worker owns no partition: no rebalance happened"


def test_bad_input_on_the_wire_is_dead_lettered_and_the_worker_goes_on(broker_url, tmp_path, mix):
    from aiokafka import AIOKafkaProducer

    from streams.testing.broker import bootstrap_servers

    contracts = [e for e in __import__("yaml").safe_load(mix["contracts"].read_text())["contracts"]
                 if e["policy"] == "neural-magic"][:1]
    small = tmp_path / "contracts.yaml"
    small.write_text(__import__("yaml").safe_dump({"contracts": contracts}))
    customer = contracts[0]["customer_id"]
    app = new_app(tmp_path, broker_url)
    tickets = app.prefix + "sla.ticket-events"
    big = (b'{"event_id":"big","type":"ticket.replied","occurred_at":"2026-03-02T10:00:00Z","ticket_id":"T-BAD",'
           b'"author":"provider","x":"' + b"x" * 5_000_000 + b'"}')
    bad = [
        (b"\xff\xfe\x00garbage", "invalid_encoding", None),
        (b'{"event_id": 5, "type": "ticket.opened", "occurred_at": "2026-03-02T10:00:00Z", "ticket_id": "T-BAD",'
         b' "customer_id": "x", "priority": "high"}', "invalid_field", "event_id"),
        (b'{"event_id": "e-ts", "type": "ticket.opened", "occurred_at": 12345, "ticket_id": "T-BAD",'
         b' "customer_id": "x", "priority": "high"}', "invalid_field", "occurred_at"),
        (b"[1, 2]", "not_an_object", None),
        (big, "too_large", None),
    ]

    def ev(event_id: str, type_: str, at: str, **fields: str) -> bytes:
        return json.dumps({"event_id": event_id, "type": type_, "occurred_at": at, **fields}).encode()

    good = [ev("g1", "ticket.opened", "2026-03-02T14:00:00Z", ticket_id="T-GOOD", customer_id=customer,
               priority="high"),
            ev("g2", "ticket.replied", "2026-03-02T14:30:00Z", ticket_id="T-GOOD", author="provider")]

    async def send_all() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(broker_url), max_request_size=16 * 1024 * 1024)
        await producer.start()
        try:
            for raw, _reason, _field in bad:
                await producer.send_and_wait(tickets, raw, key=b"T-BAD")
            for raw in good:
                await producer.send_and_wait(tickets, raw, key=b"T-GOOD")
        finally:
            await producer.stop()

    try:
        worker = app.start()
        asyncio.run(load_contracts(app, small, [worker.url]))
        asyncio.run(send_all())
        outputs = asyncio.run(collect(broker_url, app.prefix, quiet_for=QUIET, expect=len(bad) + 1, timeout=90))
        alive = worker.process.poll() is None
        dead_metric = metric_sum(scrape(worker.url), "slaproc_dead_letters_total")
    finally:
        app.stop_all()
    letters = [o for o in outputs if o["type"] == "dead_letter"]
    assert sorted(d["reason"] for d in letters) == sorted(r for _raw, r, _f in bad), letters
    for raw, reason, field_name in bad:
        [letter] = [d for d in letters if d["reason"] == reason and (field_name is None or field_name in d["error"])]
        assert letter["source"].startswith(f"{tickets}[") and "]@" in letter["source"]
        assert letter["raw_bytes"] == len(raw)
        assert len(letter["raw"]) <= 65536
    # later events are processed: the good ticket's first response is met
    met = [o for o in outputs if o["type"] == "sla.met" and o["ticket_id"] == "T-GOOD"]
    assert met and met[0]["metric"] == "first_response"
    assert alive and dead_metric == len(bad)
