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


def _measured(rate: float, events: float, seconds: float, cpu: float) -> dict:
    return {"complete": True, "target": events, "window_events": events, "window_seconds": seconds, "rate": rate,
            "startup_seconds": 1.0, "cpu_seconds": cpu, "broker_cpu_seconds": 2.0}


def test_throughput_table_reports_the_rate_and_the_catch_up_apart():
    base = dict(_measured(10_000.0, 200_000, 20.0, 19.0), counted_by_agent=200_000.0)
    work = dict(_measured(10_500.0, 200_000, 19.05, 18.0), counted_by_worker=200_000.0)
    catch = {"complete": True, "seconds": 12.34, "ticks_sent": 13, "cpu_seconds": 11.0, "broker_cpu_seconds": 3.0,
             "span_days_min": 181.9, "span_days_max": 182.0, "outputs": 207_000,
             "counters": {"breaches": 5.0, "at_risk": 4.0, "met": 0.0}}
    res = {"workload": {"tickets": 20_000}, "lines": 200_000, "decodable": 200_000, "contracts": 10,
           "partitions": 3, "rounds": [{"round": 1, "baseline": base, "slaproc": work, "ratio": 1.05,
                                        "catch_up": catch}]}
    table = stream.throughput_table(res)
    assert "| 1 | slaproc worker | 10,500 |" in table and "**1.05**" in table
    assert "| 90 µs |" in table  # 18 CPU s / 200,000 events
    assert "| 1 | 12.3 s | 181.9-182.0 days | 207,000 | 5 / 4 / 0 |" in table
    del res["rounds"][0]["catch_up"]
    assert "Catch-up after the backlog" not in stream.throughput_table(res)


def test_throughput_table_gives_each_floor_its_row_and_the_ceiling_it_leaves_a_worker():
    base = dict(_measured(4_000.0, 200_000, 50.0, 44.0), counted_by_agent=200_000.0)  # 220 µs per event
    take = dict(_measured(12_000.0, 200_000, 16.0, 16.0), counted_by_agent=200_000.0, ratio=3.0)  # 80 µs
    direct = dict(_measured(40_000.0, 200_000, 5.0, 2.0), counted_by_agent=200_000.0, ratio=10.0)  # 10 µs
    res = {"workload": {"tickets": 20_000}, "lines": 200_000, "decodable": 200_000, "contracts": 10,
           "partitions": 3, "replay_cpu_per_line": 30e-6,
           "rounds": [{"round": 1, "baseline": base, "floor_take": take, "floor_direct": direct}]}
    table = stream.throughput_table(res)
    assert "| 1 | floor: Faust agent, no work | 12,000 |" in table and "**3.00**" in table
    assert "| 1 | floor: Faust consumer without streams, no work | 40,000 |" in table
    # 220 / (80 + 30) and 220 / (10 + 30)
    assert "220 / (80 + 30) = **2.00 x**" in table
    assert "220 / (10 + 30) = **5.50 x**" in table
    del res["replay_cpu_per_line"]
    assert "Ceiling" not in stream.throughput_table(res)


def test_bare_agent_refuses_an_unknown_mode():
    import pytest

    from bench import bare_agent

    with pytest.raises(ValueError, match="mode must be one of count, take, direct"):
        bare_agent.build_app("kafka://127.0.0.1:1", "x", "p.", 3, 0, "/nonexistent", mode="tkae")

