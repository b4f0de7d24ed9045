"""Gateway load: how many webhook requests/s `slaproc gateway` answers 200 on this machine,
with every event acknowledged by the embedded broker, and at what latency.

    python -m bench.gateway [--requests 20000] [--duration 60] [--concurrency 16] [--alerts 2]

- One embedded Tansu broker (or --broker URL), one gateway process (`GatewayProcess`, its own
  topic prefix) on 127.0.0.1; the load generator is this process (aiohttp, keep-alive, a
  fixed number of concurrent clients), loopback only.
- Bounded: stops after --requests requests or --duration seconds, whichever comes first.
- Each request is an Alertmanager webhook v4 body with --alerts distinct firing alerts
  (~1 KB per alert), so each request = 1 raw record + --alerts events, all acked (acks=all)
  before the 200.
- Reported: requests/s over the measured window (after --warmup requests), p50 / p99 / max
  latency (time from send to the full answer), statuses; at the end a consumer counts the
  events on the monitoring topic: nothing answered 200 may be missing.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-alertmanager-token-0123456789"


def body(n: int, alerts: int) -> bytes:
    """A firing notification with `alerts` alerts unique to request n."""
    return json.dumps({
        "receiver": "slaproc", "status": "firing", "version": "4", "truncatedAlerts": 0,
        "groupKey": "{}/{sla=\"true\"}:{service=\"api-%d\"}" % (n % 50),
        "groupLabels": {"service": f"api-{n % 50}"}, "commonLabels": {"service": f"api-{n % 50}", "sla": "true"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.example.com:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "ApiDown", "service": f"api-{n % 50}", "sla": "true", "instance": f"api-{i}:8080"},
            "annotations": {"summary": "API error rate above 5%", "runbook_url": "https://runbooks.example.com/api"},
            "startsAt": f"2026-03-{1 + n % 28:02d}T{n % 24:02d}:{(n // 24) % 60:02d}:{i % 60:02d}Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=up+%3D%3D+0",
            "fingerprint": f"{n:012x}{i:04x}",
        } for i in range(alerts)],
    }).encode()


async def load(url: str, requests: int, duration: float, concurrency: int, alerts: int,
               warmup: int) -> dict:
    import aiohttp

    bodies = [body(n, alerts) for n in range(min(requests, 5000))]
    latencies: list[float] = []
    statuses: Counter = Counter()
    next_n = 0
    measured_start: list[float] = []
    deadline = time.monotonic() + duration
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal next_n
        while next_n < requests and time.monotonic() < deadline:
            n = next_n
            next_n += 1
            data = bodies[n % len(bodies)] if n < len(bodies) else body(n, alerts)
            t0 = time.perf_counter()
            async with session.post(url + "/v1/alertmanager", data=data, headers=headers) as r:
                await r.read()
                statuses[r.status] += 1
            if n == warmup:
                measured_start.append(time.perf_counter())
            if n >= warmup:
                latencies.append(time.perf_counter() - t0)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*[client(session) for _ in range(concurrency)])
    end = time.perf_counter()
    window = end - (measured_start[0] if measured_start else end)
    latencies.sort()
    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else float("nan")
    return {"sent": next_n, "measured": len(latencies), "window_s": window,
            "rps": len(latencies) / window if window > 0 else float("nan"),
            "p50_ms": q(0.50) * 1000, "p99_ms": q(0.99) * 1000, "max_ms": (latencies[-1] * 1000) if latencies else 0,
            "statuses": dict(statuses)}


async def count_events(broker_url: str, topic: str, expect: int, timeout: float = 60.0) -> int:
    from aiokafka import AIOKafkaConsumer

    from streams.testing.broker import bootstrap_servers

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers(broker_url), auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False, max_poll_records=5000)
    await consumer.start()
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while seen < expect and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                seen += len(messages)
    finally:
        await consumer.stop()
    return seen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gateway", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=20000, help="stop after this many requests")
    p.add_argument("--duration", type=float, default=60.0, help="or after this many seconds")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--alerts", type=int, default=2, help="alerts (= events) per request")
    p.add_argument("--warmup", type=int, default=500, help="requests not measured")
    p.add_argument("--broker", help="an existing broker (default: an embedded Tansu)")
    args = p.parse_args(argv)
    if not 1 <= args.concurrency <= 256 or args.requests < 1 or args.duration <= 0 or args.duration > 600:
        p.error("--concurrency 1..256, --requests >= 1, --duration in (0, 600]")

    from streams.testing.broker import EmbeddedBroker
    from streams.testing.gateway_process import GatewayProcess

    broker = None
    if args.broker:
        url = args.broker
    else:
        broker = EmbeddedBroker()
        broker.start()
        url = broker.url
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    mapping = REPO / "samples" / "mapping.yaml"
    log = Path(tempfile.mkdtemp(prefix="bench-gateway-")) / "gateway.log"
    gateway = GatewayProcess(url, prefix, mapping, partitions=4, log_path=log,
                             secrets={"SLAPROC_GATEWAY_ALERTMANAGER_TOKEN": TOKEN})
    try:
        gateway.start()
        result = asyncio.run(load(gateway.url, args.requests, args.duration, args.concurrency, args.alerts,
                                  args.warmup))
        accepted = result["statuses"].get(200, 0)
        events = asyncio.run(count_events(url, prefix + "sla.monitoring-events", accepted * args.alerts))
    finally:
        gateway.stop()
        if broker:
            broker.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    load_avg = os.getloadavg()[0]
    print(json.dumps({**result, "events_expected": accepted * args.alerts, "events_on_topic": events,
                      "concurrency": args.concurrency, "alerts_per_request": args.alerts,
                      "commit": commit, "cpus": os.cpu_count(), "load_at_end": round(load_avg, 2),
                      "python": platform.python_version()}, indent=1))
    lost = accepted * args.alerts - events
    if lost > 0:
        print(f"LOST {lost} events answered 200", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
