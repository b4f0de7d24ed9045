"""Smoke tests of the stream benchmark's broker-free parts (bench/stream.py)."""
from __future__ import annotations

import os

from bench import stream


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert stream.percentile(values, 50) == 50.0
    assert stream.percentile(values, 99) == 99.0
    assert stream.percentile(values, 100) == 100.0
    assert stream.percentile([3.0], 99) == 3.0


def test_cpu_seconds_of_this_process_grows_with_work():
    before = stream.cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert stream.cpu_seconds(os.getpid()) > before
    assert stream.cpu_seconds(None) == 0.0


def test_timer_probe_fires_exactly_the_due_deadlines_per_tick():
    result = stream.timer_probe(open_tickets=30, due_per_tick=3, ticks=4, tick_seconds=1.0,
                                background="neural-magic")
    assert result["breaches_per_tick"] == [3]
    # 30 far-off clocks + 12 critical ones, all still running before the measured ticks
    assert result["open_clocks"] == 42
    assert result["total"]["median_ms"] > 0


def test_latency_table_judges_p99_against_tick_plus_lateness_plus_slack():
    res = {"deadlines": 4, "received": 4, "spread": 4.0, "tick_interval": 1.0, "lateness": 1.0, "partitions": 3,
           "kafka_latency": {"p50": 1.5, "p99": 4.5, "min": 1.1, "max": 4.5}}
    table = stream.latency_table(res)
    assert "| 4.50 s |" in table and "NOT met" in table
    res["kafka_latency"]["p99"] = 3.9
    assert "NOT met" not in stream.latency_table(res)
