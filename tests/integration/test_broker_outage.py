"""A broker outage mid-stream (SPEC §12): the worker's only way to the broker is a TCP proxy of the
test's own; the proxy is cut for 60 s in the middle of a backfill (every connection closed, new ones
refused: what clients see of a broker that is down) and restored. The worker must come back by
itself, finish the input, and the outputs must equal replay's (each repeat byte-identical: at-least-
once with deterministic ids). The time to recover is printed."""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from bench.generate import generate, write_workload
from streams.testing.broker import EmbeddedBroker, _free_port
from streams.testing.harness import collect, metric_sum, produce, scrape, tick_until_at, wait_until
from tests.integration.netsupport import TcpProxy
from tests.integration.test_stream_equals_replay import (LATENESS, PARTITIONS, diff, events_in, load_contracts,
                                                         new_app, replay_outputs, split_dead_letters)

pytestmark = [pytest.mark.broker, pytest.mark.slow]
UTC = timezone.utc
OUTAGE = 60.0


def test_sixty_second_broker_outage_mid_stream_equals_replay(tmp_path):
    work = generate(events=8_000, tickets=800, seed=21)
    paths = write_workload(work, tmp_path / "mix")
    lines = paths["events"].read_bytes().splitlines()
    proxy_port = _free_port("127.0.0.1")
    broker = EmbeddedBroker(advertised=f"127.0.0.1:{proxy_port}")
    broker.start()
    proxy = TcpProxy(broker.port, port=proxy_port).start()
    url = f"kafka://127.0.0.1:{proxy_port}"
    app = new_app(tmp_path, url)
    try:
        worker = app.start()
        asyncio.run(load_contracts(app, paths["contracts"], [worker.url]))
        asyncio.run(produce(url, app.prefix, lines))
        wait_until(lambda: events_in([worker.url]) >= 2_000, 120, every=0.05, what="2000 events processed")
        before = events_in([worker.url])
        proxy.cut()
        cut_at = time.monotonic()
        during = []
        while time.monotonic() - cut_at < OUTAGE:
            time.sleep(5)
            during.append(events_in([worker.url]))
            assert worker.process.poll() is None, "the worker died during the outage:\n" + app.logs()
        proxy.restore()
        restored_at = time.monotonic()
        progressed = wait_until(lambda: events_in([worker.url]) > during[-1], 120, every=0.2,
                                what="processing resumed after the outage")
        at = datetime.now(UTC).replace(microsecond=0)
        # a tick moves only a partition with no unread input: final = caught up with everything
        asyncio.run(tick_until_at(url, app.app_id, PARTITIONS, at, LATENESS, [worker], timeout=240))
        final = time.monotonic() - restored_at
        stream = asyncio.run(collect(url, app.prefix, quiet_for=3, raw=True))
        alive = worker.process.poll() is None
        metrics = scrape(worker.url)
    finally:
        app.stop_all()
        proxy.cut()
        broker.stop()
    first: dict[str, bytes] = {}
    counts: Counter = Counter()
    for raw in stream:
        event_id = json.loads(raw)["event_id"]
        counts[event_id] += 1
        assert first.setdefault(event_id, raw) == raw, "a repeat with other content"
    replay = replay_outputs(paths["events"], paths["contracts"], at - timedelta(seconds=LATENESS))
    s_out, s_dead = split_dead_letters(list(first.values()))
    r_out, r_dead = split_dead_letters(replay)
    repeats = sum(n - 1 for n in counts.values())
    print(f"\noutage {OUTAGE:.0f} s after {before:.0f} of {len(lines)} events (processed during it: {during}); "
          f"processing resumed {progressed:.1f} s after the restore, every partition caught up and final "
          f"{final:.1f} s after it; {sum(s_out.values())} outputs, {repeats} repeats; "
          f"worker alive {alive}; rebalances {metric_sum(metrics, 'slaproc_rebalances_total')}")
    assert before < len(lines), "the input was done before the outage: nothing was tested"
    assert s_out == r_out, diff(s_out, r_out) + "\n" + app.logs()
    assert set(s_dead) == set(r_dead), diff(Counter(set(s_dead)), Counter(set(r_dead)))
