"""The query API must not starve processing (issue 18 item 4): the worker's events/s with the API
flooded, next to the same workload without the flood, in one run; and the API's latency then.

    python -m bench.api_load [--events 60000 --tickets 6000 --concurrency 2000 --rounds 1]
    python -m bench.api_load --ignore-retry-after   # clients that retry a 503 at once

One embedded Tansu broker; per round, back to back, the same `bench.generate` workload twice, each
on topics and a consumer group of its own: (1) quiet: the worker reads its contracts (first start,
stopped), the events are produced, the worker is started again on that backlog; (2) flooded: the
same, and as soon as the restarted worker's port answers, a client process (`flood`) keeps
`--concurrency` requests in flight until the window ends: 90 % GET /tickets/{id} (ids of the
workload, in a shuffled order), 10 % GET /services/{id}/months/{month}. A client whose request
is answered 503 waits the `Retry-After` it was given (unless `--ignore-retry-after`) and sends
again. Progress = the group's committed offsets on the input topics (`bench.stream.measure`:
first commit seen to all of them, CPU of the worker from /proc over the same window). Latency =
send to end of body at the client, for the answers of a view (200, 404) and for the 503s apart;
answers counted by status; and a probe's view: `/health` on a new connection once a second.

The client runs on the same machine (2 CPUs shared with the broker and the worker): its own CPU
is part of what the flooded round pays.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.stream import (ROOT, GroupOffsets, _kill_started, _stop, _track, cpu_seconds, decodable, machine, measure,
                          percentile, read_contracts, worker_progress)

TARGET_RATIO = 0.8  # flooded / quiet events/s ("within ~20 %")


async def _worker_round(broker: Any, lines: list[bytes], contracts: list[bytes], *, label: str, partitions: int,
                        log_dir: Path, poll: float, timeout: float, flood: list[str] | None,
                        env: dict[str, str]) -> dict[str, Any]:
    from streams.app import CONTRACTS, MONITORING_EVENTS, TICKET_EVENTS
    from streams.testing.broker import create_topics
    from streams.testing.harness import WorkerProcess, produce

    inputs = [TICKET_EVENTS, MONITORING_EVENTS]
    prefix, app_id = f"{label}.", f"bench-api-{label}"
    await create_topics(broker.url, [prefix + CONTRACTS], partitions, {"cleanup.policy": "compact"})
    await create_topics(broker.url, [prefix + t for t in inputs], partitions)
    await produce(broker.url, prefix, contracts)
    common = dict(partitions=partitions, app_id=app_id, data_dir=log_dir / label, tick_interval=3600.0,
                  log_path=log_dir / f"{label}.log", extra_env=env)
    await read_contracts(WorkerProcess(broker.url, prefix, **common), len(contracts))
    await produce(broker.url, prefix, lines)
    worker = _track(WorkerProcess(broker.url, prefix, **common).start())
    client = None
    stats_path = log_dir / f"{label}-client.json"
    try:
        print(f"{label}: worker on {len(lines):,} lines" + (" with the API flooded" if flood else ""),
              file=sys.stderr, flush=True)
        if flood is not None:
            while worker_progress(worker.url)[0] is None:  # the port answers
                if worker.process.poll() is not None:
                    raise RuntimeError(f"worker exited (see {common['log_path']})")
                await asyncio.sleep(0.1)
            client = _track(subprocess.Popen([sys.executable, "-m", "bench.api_load", "flood", "--url", worker.url,
                                              "--out", str(stats_path), *flood], cwd=ROOT,
                                             start_new_session=True))
        async with GroupOffsets(broker.bootstrap_servers, app_id, [prefix + t for t in inputs]) as offsets:
            end = await offsets.end()
            result = await measure(offsets.committed, end, worker.process.pid, broker.pid, poll=poll,
                                   timeout=timeout, alive=lambda: worker.process.poll() is None)
        if client is not None:
            result["client_cpu_seconds"] = cpu_seconds(client.pid)
            _stop(client)
            result["client"] = json.loads(stats_path.read_text()) if stats_path.exists() else None
        result["counted_by_worker"] = worker_progress(worker.url)[0]
    finally:
        _stop(client)
        worker.stop()
    print(f"  {label}: {result.get('rate', 0):,.0f} events/s", file=sys.stderr, flush=True)
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench.replay import ensure_workload
    from streams.testing.broker import EmbeddedBroker
    from streams.testing.harness import contract_events

    work = ensure_workload(args.events, args.tickets)
    meta = json.loads((work / "meta.json").read_text())
    lines = [line for line in (work / "events.jsonl").read_bytes().splitlines() if line.strip()]
    contracts = [json.dumps(e).encode() for e in contract_events(work / "contracts.yaml")]
    log_dir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    targets = log_dir / "targets.json"
    targets.write_text(json.dumps(_targets(lines)))
    flood = ["--targets", str(targets), "--concurrency", str(args.concurrency)]
    if args.ignore_retry_after:
        flood.append("--ignore-retry-after")
    env = dict(item.split("=", 1) for item in args.worker_env)
    rounds = []
    async with EmbeddedBroker(log_path=log_dir / "broker.log") as broker:
        for r in range(1, args.rounds + 1):
            common = dict(partitions=args.partitions, log_dir=log_dir, poll=args.poll, timeout=args.timeout, env=env)
            quiet = await _worker_round(broker, lines, contracts, label=f"r{r}-quiet", flood=None, **common)
            flooded = await _worker_round(broker, lines, contracts, label=f"r{r}-flooded", flood=flood, **common)
            ratio = (flooded["rate"] / quiet["rate"]) if quiet.get("complete") and flooded.get("complete") else None
            rounds.append({"round": r, "quiet": quiet, "flooded": flooded, "ratio": ratio})
    return {"workload": meta, "lines": len(lines), "decodable": decodable(lines), "partitions": args.partitions,
            "concurrency": args.concurrency, "ignore_retry_after": args.ignore_retry_after, "worker_env": env,
            "rounds": rounds,
            "logs": str(log_dir)}


def _targets(lines: list[bytes]) -> dict[str, list[str]]:
    tickets, services, months = set(), set(), set()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if isinstance(event.get("ticket_id"), str):
            tickets.add(event["ticket_id"])
        if isinstance(event.get("service_id"), str):
            services.add(event["service_id"])
        at = event.get("occurred_at")
        if isinstance(at, str) and len(at) >= 7:
            months.add(at[:7])
    return {"tickets": sorted(tickets), "services": sorted(services), "months": sorted(months)}


def table(res: dict[str, Any]) -> str:
    meta = res["workload"]
    out = [f"Workload: {res['lines']:,} lines, {meta['tickets']:,} tickets, {res['partitions']} partitions; "
           f"worker settings {res['worker_env'] or 'defaults'}; "
           f"flood: {res['concurrency']:,} requests in flight"
           + (" (503 retried at once)" if res["ignore_retry_after"] else " (503: after Retry-After)"), "",
           "| round | quiet events/s | flooded events/s | ratio | worker CPU s quiet / flooded | client CPU s "
           "| answers (status: n) | answered (200, 404): p50 / p99 s, per s | 503: p50 / p99 s | /health p50 / max s |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["rounds"]:
        q, f = r["quiet"], r["flooded"]
        c = f.get("client") or {}
        statuses = ", ".join(f"{k}: {v:,}" for k, v in sorted((c.get("statuses") or {}).items()))
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "n/a"
        out.append(f"| {r['round']} | {q.get('rate', 0):,.0f} | {f.get('rate', 0):,.0f} | {ratio} | "
                   f"{q.get('cpu_seconds', 0):.1f} / {f.get('cpu_seconds', 0):.1f} | "
                   f"{f.get('client_cpu_seconds') or 0:.1f} | {statuses} | "
                   f"{c.get('p50', float('nan')):.3f} / {c.get('p99', float('nan')):.3f}, "
                   f"{c.get('answers_per_second', 0):,.1f} | "
                   f"{c.get('p50_503', float('nan')):.3f} / {c.get('p99_503', float('nan')):.3f} | "
                   f"{c.get('health_p50', float('nan')):.3f} / {c.get('health_max', float('nan')):.3f} |")
    met = all(r["ratio"] is not None and r["ratio"] >= TARGET_RATIO for r in res["rounds"])
    out.append("")
    out.append(f"Target flooded / quiet >= {TARGET_RATIO}: {'met' if met else 'NOT met'}")
    return "\n".join(out)


# --------------------------------------------------------------------------- the client


async def flood(args: argparse.Namespace) -> dict[str, Any]:
    """Keep `concurrency` requests in flight until SIGTERM; the answers' statuses and latencies."""
    import signal

    from aiohttp import ClientSession, ClientTimeout, TCPConnector

    targets = json.loads(Path(args.targets).read_text())
    rng = random.Random(7)
    paths = [f"/tickets/{t}" for t in targets["tickets"]]
    months = targets["months"][-3:] or ["2026-05"]
    paths_months = [f"/services/{s}/months/{m}" for s in targets["services"] for m in months]
    statuses: dict[str, int] = {}
    latencies: list[float] = []  # answered by a view (200, 404)
    refused: list[float] = []  # 503
    errors = 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    started = time.monotonic()

    async def one_client(session: Any, seed: int) -> None:
        nonlocal errors
        r = random.Random(seed)
        while not stop.is_set():
            path = r.choice(paths_months) if paths_months and r.random() < 0.1 else r.choice(paths)
            t0 = time.monotonic()
            try:
                async with session.get(args.url + path) as response:
                    await response.read()
                    status = response.status
                    retry = response.headers.get("Retry-After")
            except Exception:  # noqa: BLE001 - counted; the flood goes on
                errors += 1
                await asyncio.sleep(0.1)
                continue
            (refused if status == 503 else latencies).append(time.monotonic() - t0)
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if status == 503 and retry and not args.ignore_retry_after:
                try:
                    await asyncio.wait_for(stop.wait(), float(retry))
                except asyncio.TimeoutError:
                    pass

    probes: list[float] = []

    async def probe() -> None:  # what a liveness probe sees: a new connection a second to /health
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                async with ClientSession(timeout=ClientTimeout(total=60)) as own:
                    async with own.get(args.url + "/health") as response:
                        await response.read()
                probes.append(time.monotonic() - t0)
            except Exception:  # noqa: BLE001 - a probe that failed: counted as its time out
                probes.append(60.0)
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    async with ClientSession(connector=TCPConnector(limit=0), timeout=ClientTimeout(total=120)) as session:
        tasks = [asyncio.ensure_future(one_client(session, rng.random())) for _ in range(args.concurrency)]
        tasks.append(asyncio.ensure_future(probe()))
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    seconds = time.monotonic() - started
    nan = float("nan")
    res = {"statuses": statuses, "errors": errors, "seconds": seconds,
           "answers_per_second": len(latencies) / seconds if seconds > 0 else 0.0,
           "p50": percentile(latencies, 50) if latencies else nan, "p99": percentile(latencies, 99) if latencies else nan,
           "p50_503": percentile(refused, 50) if refused else nan, "p99_503": percentile(refused, 99) if refused else nan,
           "health_p50": percentile(probes, 50) if probes else nan, "health_max": max(probes) if probes else nan}
    Path(args.out).write_text(json.dumps(res))
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    fl = sub.add_parser("flood", help="(internal) the client process")
    fl.add_argument("--url", required=True)
    fl.add_argument("--targets", required=True)
    fl.add_argument("--out", required=True)
    fl.add_argument("--concurrency", type=int, default=2000)
    fl.add_argument("--ignore-retry-after", action="store_true")
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--tickets", type=int, default=6_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ignore-retry-after", action="store_true")
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--worker-env", action="append", default=[], metavar="VAR=VALUE",
                        help="setting for both workers, e.g. SLAPROC_API_CPU_SHARE=0.05")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.command == "flood":
        asyncio.run(flood(args))
        return 0
    import atexit
    import signal

    atexit.register(_kill_started)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(machine(), file=sys.stderr)
    res = asyncio.run(run(args))
    print(table(res))
    res["machine"] = machine()
    res["measured_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
