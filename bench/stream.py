"""Stream worker benchmarks: throughput against a bare Faust agent, tick cost, breach latency.

    python -m bench.stream throughput [--events 200000 --tickets 20000 --rounds 1]
    python -m bench.stream timers [--sizes 1000,200000 --due-per-tick 10 --ticks 50]
    python -m bench.stream latency [--deadlines 300 --spread 60 --tick-interval 1 --lateness 1]
    python -m bench.stream throughput --profile   # + py-spy hotspots of the consumers (pip install py-spy)
    python -m bench.stream throughput --raw changelog,memory   # raw consumer variants (default: changelog)

- throughput: one embedded Tansu broker; per round, back to back, (1) the bare agent of
  `bench.bare_agent` (Faust, counts events per key in a Table) and (2) the slaproc worker
  (`streams.testing.harness.WorkerProcess`) each read the same event lines (`bench.generate`
  workload, routed by `harness.route`: ticket events keyed by ticket_id, monitoring events
  by service_id) from a backlog produced before the consumer starts. The worker gets its
  contracts first (a first start reads them, then it is stopped; the events are produced;
  it is started again on the same group). Progress of both = the group's committed offsets
  on the input topics (read by a consumer that never joins; Faust commits every 2.8 s), polled
  every `--poll` s; the rate is the messages committed between the first poll that saw a commit
  and the poll that saw all of them, divided by the time between those polls. CPU seconds of
  the consumer and of the broker over the same window come from /proc/<pid>/stat. The
  consumers' own counts (bare agent: `/progress/`, worker: `slaproc_events_in_total`) are
  read once at the end, as a check. Then (3) `bench.raw_consumer`: the core behind a plain
  aiokafka consumer, no Faust (what a worker bypassing Faust's stream would gain), measured the
  same way on its own copy of the topics; after its window one tick moves it to the workload's
  `until`, and its outputs are compared with `slaproc replay`'s to the same instant (distinct
  event ids; dead letters by reason and raw bytes), so its rate counts only if its work is whole.
- timers: in-process (no broker), what a tick costs the worker: a `RealCore` partition
  processor over `PartitionStore(DictTableBackend())` (the worker's store without Faust)
  with N open tickets whose deadlines are days away, plus `due-per-tick` x `ticks`
  critical tickets whose deadlines fall one tick apart; each tick = `advance_to` (fires
  exactly `due-per-tick` breaches) + `flush` (what the worker does after the outputs are
  acknowledged). One child process per N.
- latency: a worker in real time (tick interval, allowed lateness as given); Neural Magic
  critical tickets (30 min calendar first response) opened 30 min minus a few seconds ago,
  deadlines staggered over `--spread` s; latency = time the `sla.breached` is received
  (and its Kafka timestamp) minus its `due_at`.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
UTC = timezone.utc
TARGET_THROUGHPUT_RATIO = 1.0
WINDOW_TICK_INTERVAL_S = 3600.0  # throughput: the worker's timer does not tick inside the measured window
ALLOWED_LATENESS_S = 30.0  # throughput: the worker's SLAPROC_ALLOWED_LATENESS (the default)
TARGET_TICK_RATIO = 2.0
LATENCY_SLACK_S = 2.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_STARTED: list[Any] = []  # consumer processes (Popen or WorkerProcess) killed at exit, whatever happens


def _track(process: Any) -> Any:
    _STARTED.append(process)
    return process


def _kill_started() -> None:
    import signal

    for item in _STARTED:
        process = getattr(item, "process", item)
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass


# --------------------------------------------------------------------------- helpers


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process (0 if it is gone)."""
    if pid is None:
        return 0.0
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} "
            f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.2f} at start")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def contract_lines(entries: Iterable[dict[str, Any]], occurred_at: str = "2020-01-01T00:00:00Z") -> list[bytes]:
    """`contract.upserted` input lines for contract entries (as in a contracts YAML)."""
    return [json.dumps({"event_id": f"contract-{e['customer_id']}", "type": "contract.upserted",
                        "occurred_at": occurred_at, **json.loads(json.dumps(e, default=str))}).encode()
            for e in entries]


def sample_contracts(count: int = 10) -> list[dict[str, Any]]:
    """Generated contracts, one per plan first (index 0 = Neural Magic enterprise)."""
    from bench.generate import make_customers

    _, document = make_customers(random.Random(1), count, "2026-03-01T00:00:00Z")
    return document["contracts"]


def decodable(lines: Iterable[bytes]) -> int:
    """How many lines the core decodes (the worker counts those in slaproc_events_in)."""
    from events.codec import DeadLetterReason, decode

    return sum(1 for line in lines if not isinstance(decode(line), DeadLetterReason))


def bare_progress(url: str) -> float | None:
    try:
        with urllib.request.urlopen(url + "/progress/", timeout=5) as response:
            return float(json.loads(response.read())["events"])
    except OSError:
        return None


def worker_progress(url: str) -> tuple[float | None, float]:
    """(events counted except contracts, contracts counted) from the worker's /metrics."""
    from streams.testing.harness import metric_sum, scrape

    samples = scrape(url)
    if not samples:
        return None, 0.0
    contracts = metric_sum(samples, "slaproc_events_in_total", type="contract.upserted")
    return metric_sum(samples, "slaproc_events_in_total") - contracts, contracts


class GroupOffsets:
    """Committed offsets of a consumer group on some topics, read without joining the group."""

    def __init__(self, servers: str, group: str, topics: list[str]) -> None:
        from aiokafka import AIOKafkaConsumer

        self.topics = topics
        self.consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
        self.tps: list[Any] = []

    async def __aenter__(self) -> "GroupOffsets":
        from aiokafka.structs import TopicPartition

        await self.consumer.start()
        self.tps = [TopicPartition(t, p) for t in self.topics for p in sorted(await _partitions(self.consumer, t))]
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.consumer.stop()

    async def committed(self) -> int:
        """Sum of the committed offsets (= messages consumed and committed, topics starting at 0)."""
        total = 0
        for tp in self.tps:
            total += (await self.consumer.committed(tp)) or 0
        return total

    async def end(self) -> int:
        ends = await self.consumer.end_offsets(self.tps)
        return sum(ends.values())


async def measure(progress: Callable[[], Any], target: int, pid: int, broker_pid: int | None,
                  *, poll: float, timeout: float, alive: Callable[[], bool], stall: float = 60.0) -> dict[str, Any]:
    """Poll `progress()` until it reaches `target`; rate and CPU between the first and last poll."""
    started = last_report = last_change = time.monotonic()
    first = last = None
    seen = 0.0
    while time.monotonic() - started < timeout:
        n = progress()
        if asyncio.iscoroutine(n):
            n = await n
        now = time.monotonic()
        if now - last_report > 10:
            last_report = now
            print(f"    {now - started:5.0f} s: {n or 0:,.0f} of {target:,}", file=sys.stderr, flush=True)
        if n is not None:
            if n != seen:
                last_change = now
            elif first is not None and now - last_change > stall:
                break  # no progress: report what was counted
            seen = n
            snap = (now, n, cpu_seconds(pid), cpu_seconds(broker_pid))
            if first is None and n > 0:
                first = snap
            if n >= target:
                last = snap
                break
        if not alive():
            raise RuntimeError("the consumer process exited")
        await asyncio.sleep(poll)
    if first is None or last is None:
        return {"complete": False, "events_seen": seen, "target": target}
    wall = last[0] - first[0]
    events = last[1] - first[1]
    return {"complete": True, "target": target, "window_events": events, "window_seconds": wall,
            "rate": events / wall if wall > 0 else float("nan"),
            "startup_seconds": first[0] - started, "cpu_seconds": last[2] - first[2],
            "broker_cpu_seconds": last[3] - first[3]}


async def measure_group(servers: str, group: str, topics: list[str], pid: int, broker_pid: int | None, *,
                        poll: float, timeout: float, alive: Callable[[], bool]) -> dict[str, Any]:
    """`measure` of a consumer by its group's committed offsets on `topics`, up to their end offsets."""
    async with GroupOffsets(servers, group, topics) as offsets:
        end = await offsets.end()
        return await measure(offsets.committed, end, pid, broker_pid, poll=poll, timeout=timeout, alive=alive)


async def _partitions(consumer: Any, topic: str) -> set[int]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        from streams.compat import force_metadata_update

        await force_metadata_update(consumer)
        partitions = consumer.partitions_for_topic(topic)
    return partitions or set()


def _stop(process: subprocess.Popen | None, timeout: float = 20.0) -> None:
    import signal

    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


class Profiler:
    """`py-spy record` (a dev-only tool: pip install py-spy) on a pid; `stop()` writes collapsed stacks."""

    def __init__(self, pid: int, out: Path, rate: int = 50) -> None:
        import shutil

        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.out = out
        self.process = _track(subprocess.Popen(
            [exe, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking", "--format", "raw",
             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    def stop(self) -> str:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return hotspots(self.out) if self.out.exists() else "(no profile written)"


def hotspots(collapsed: Path, top: int = 25) -> str:
    """Top functions by own samples and by inclusive samples, from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 2)[-1]
                  if " (" in f else f for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    out = [f"{total} samples", "", "own time:"]
    out += [f"  {n / total * 100:5.1f} %  {f}" for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    out += ["", "inclusive time:"]
    out += [f"  {n / total * 100:5.1f} %  {f}" for f, n in sorted(incl.items(), key=lambda kv: -kv[1])[:top]]
    return "\n".join(out)


# --------------------------------------------------------------------------- throughput


FLOOR_NAMES = {"take": "floor: Faust agent, no work", "direct": "floor: Faust consumer without streams, no work"}
FLOOR_KEYS = {"take": "floor_take", "direct": "floor_direct"}


async def agent_round(broker: Any, lines: list[bytes], mode: str, *, partitions: int, round_no: int, log_dir: Path,
                      poll: float, timeout: float, profile: bool = False) -> dict[str, Any]:
    """`bench.bare_agent --mode mode` on its own copy of the input topics, measured by its group's commits."""
    from streams.app import MONITORING_EVENTS, TICKET_EVENTS
    from streams.testing.broker import create_topics
    from streams.testing.harness import free_port, produce

    inputs = [TICKET_EVENTS, MONITORING_EVENTS]
    name = "bare" if mode == "count" else mode
    prefix, app_id = f"r{round_no}.{name}.", f"bench-{name}-r{round_no}"
    await create_topics(broker.url, [prefix + t for t in inputs], partitions)
    await produce(broker.url, prefix, lines)
    port = free_port()
    log = open(log_dir / f"{name}-r{round_no}.log", "ab")
    agent = _track(subprocess.Popen([sys.executable, "-m", "bench.bare_agent", "--broker", broker.url, "--app-id", app_id,
                                     "--prefix", prefix, "--partitions", str(partitions), "--web-port", str(port),
                                     "--data-dir", str(log_dir / f"{name}-r{round_no}"), "--mode", mode],
                                    cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    try:
        label = "bare agent" if mode == "count" else FLOOR_NAMES[mode]
        print(f"round {round_no}: {label} on {len(lines):,} lines", file=sys.stderr, flush=True)
        profiler = Profiler(agent.pid, log_dir / f"{name}-r{round_no}.collapsed") if profile else None
        url = f"http://127.0.0.1:{port}"
        if mode == "count":
            measured = await measure_group(broker.bootstrap_servers, app_id, [prefix + t for t in inputs], agent.pid,
                                           broker.pid, poll=poll, timeout=timeout, alive=lambda: agent.poll() is None)
        else:
            # A floor takes the backlog in a few of Faust's 2.8 s commit intervals, too few for a rate
            # by committed offsets: by its own count of records taken, polled every 0.1 s.
            measured = await measure(lambda: bare_progress(url), len(lines), agent.pid, broker.pid,
                                     poll=min(poll, 0.1), timeout=timeout, alive=lambda: agent.poll() is None)
        if profiler is not None:
            measured["profile"] = profiler.stop()
        measured["counted_by_agent"] = bare_progress(url)
    finally:
        _stop(agent)
        log.close()
    return measured


async def throughput_round(broker: Any, lines: list[bytes], contracts: list[bytes], n_decodable: int, *,
                           partitions: int, round_no: int, log_dir: Path, poll: float, timeout: float,
                           profile: bool = False, workload_end: datetime | None = None,
                           raw_variants: Iterable[bool] = (True,), reference: dict[str, Any] | None = None,
                           floors: Iterable[str] = ()) -> dict[str, Any]:
    from streams.app import CONTRACTS, MONITORING_EVENTS, TICKET_EVENTS
    from streams.testing.broker import create_topics
    from streams.testing.harness import WorkerProcess, produce

    servers = broker.bootstrap_servers
    inputs = [TICKET_EVENTS, MONITORING_EVENTS]
    result: dict[str, Any] = {"round": round_no}

    # (1) baseline: the bare agent; then the floors (bench.faust_floor), same topics' content
    base = await agent_round(broker, lines, "count", partitions=partitions, round_no=round_no, log_dir=log_dir,
                             poll=poll, timeout=timeout, profile=profile)
    result["baseline"] = base
    print(f"  bare agent: {base.get('rate', 0):,.0f} events/s", file=sys.stderr, flush=True)
    for mode in floors:
        floor = await agent_round(broker, lines, mode, partitions=partitions, round_no=round_no, log_dir=log_dir,
                                  poll=poll, timeout=timeout, profile=profile)
        if base.get("complete") and floor.get("complete"):
            floor["ratio"] = floor["rate"] / base["rate"]
        result[FLOOR_KEYS[mode]] = floor
        print(f"  {FLOOR_NAMES[mode]}: {floor.get('rate', 0):,.0f} events/s, ratio {floor.get('ratio', float('nan')):.3f}",
              file=sys.stderr, flush=True)

    # (2) the slaproc worker: contracts first, then the events as a backlog
    prefix, app_id = f"r{round_no}.slaproc.", f"bench-slaproc-r{round_no}"
    await create_topics(broker.url, [prefix + CONTRACTS], partitions, {"cleanup.policy": "compact"})
    await create_topics(broker.url, [prefix + t for t in inputs], partitions)
    await produce(broker.url, prefix, contracts)
    data_dir = log_dir / f"slaproc-r{round_no}"
    # No tick inside the measured window (tick interval 1 h): the window measures input events/s
    # like the bare agent's. The wall-clock catch-up is measured after it (`catch_up`).
    common = dict(partitions=partitions, app_id=app_id, data_dir=data_dir, tick_interval=WINDOW_TICK_INTERVAL_S,
                  extra_env={"SLAPROC_ALLOWED_LATENESS": str(ALLOWED_LATENESS_S)},
                  log_path=log_dir / f"slaproc-r{round_no}.log")
    result["contracts_seconds"] = await read_contracts(WorkerProcess(broker.url, prefix, **common), len(contracts))
    await produce(broker.url, prefix, lines)
    worker = _track(WorkerProcess(broker.url, prefix, **common).start())
    try:
        print(f"round {round_no}: slaproc worker on {len(lines):,} lines ({n_decodable:,} decodable)",
              file=sys.stderr, flush=True)
        profiler = Profiler(worker.process.pid, log_dir / f"slaproc-r{round_no}.collapsed") if profile else None
        # Not /metrics: rendering it costs the worker ~40 ms a scrape (py-spy: 16 % of its samples at 4 polls/s).
        work = await measure_group(servers, app_id, [prefix + t for t in inputs], worker.process.pid, broker.pid,
                                   poll=poll, timeout=timeout, alive=lambda: worker.process.poll() is None)
        if profiler is not None:
            work["profile"] = profiler.stop()
        from streams.testing.harness import metric_sum, scrape

        samples = scrape(worker.url)
        work["counted_by_worker"] = worker_progress(worker.url)[0]
        work["batch_seconds_sum"] = metric_sum(samples, "slaproc_processing_seconds_sum")
        work["batches"] = metric_sum(samples, "slaproc_processing_seconds_count")
        work["dead_letters"] = metric_sum(samples, "slaproc_dead_letters_total")
        if work.get("complete"):
            print(f"round {round_no}: catch-up to the wall clock", file=sys.stderr, flush=True)
            result["catch_up"] = await catch_up(broker, prefix, app_id, partitions, worker,
                                                workload_end=workload_end, timeout=timeout)
    finally:
        worker.stop()
    result["slaproc"] = work
    if base.get("complete") and work.get("complete"):
        result["ratio"] = work["rate"] / base["rate"]
    print(f"  slaproc worker: {work.get('rate', 0):,.0f} events/s, ratio {result.get('ratio', float('nan')):.3f}",
          file=sys.stderr, flush=True)
    if "catch_up" in result:
        c = result["catch_up"]
        print(f"  catch-up: {c['seconds']:.1f} s for {c['span_days_max']:.1f} days, {c['outputs']:,} outputs",
              file=sys.stderr, flush=True)

    # (3) the core behind a plain aiokafka consumer (bench.raw_consumer), one run per variant
    for changelog in raw_variants:
        key = raw_key(changelog)
        raw = await raw_round(broker, lines, contracts, partitions=partitions, round_no=round_no, log_dir=log_dir,
                              poll=poll, timeout=timeout, changelog=changelog, reference=reference, until=workload_end,
                              profile=profile)
        result[key] = raw
        if base.get("complete") and raw.get("complete"):
            raw["ratio"] = raw["rate"] / base["rate"]
        check = raw.get("check", {})
        print(f"  {RAW_NAMES[key]}: {raw.get('rate', 0):,.0f} events/s, ratio {raw.get('ratio', float('nan')):.3f}"
              f"{'; outputs equal replay' if check.get('equal') else '; outputs checked: ' + str(check or 'no')}",
              file=sys.stderr, flush=True)
    return result


RAW_NAMES = {"raw": "raw aiokafka consumer", "raw_memory": "raw aiokafka consumer, state in memory"}


def raw_key(changelog: bool) -> str:
    return "raw" if changelog else "raw_memory"


async def raw_round(broker: Any, lines: list[bytes], contracts: list[bytes], *, partitions: int, round_no: int,
                    log_dir: Path, poll: float, timeout: float, changelog: bool = True,
                    reference: dict[str, Any] | None = None, until: datetime | None = None,
                    profile: bool = False) -> dict[str, Any]:
    """`bench.raw_consumer` on the same backlog: contracts and events produced before it starts, rate
    and CPU from its group's committed offsets (`measure_group`); then, with a `reference` (replay's
    outputs up to `until`), one tick at `until + lateness` and its outputs compared with replay's."""
    from streams.app import CONTRACTS, MONITORING_EVENTS, TICKET_EVENTS
    from streams.testing.broker import create_topics
    from streams.testing.harness import produce

    inputs = [TICKET_EVENTS, MONITORING_EVENTS]
    key = raw_key(changelog)
    prefix, app_id = f"r{round_no}.{key}.", f"bench-{key}-r{round_no}"
    await create_topics(broker.url, [prefix + CONTRACTS], partitions, {"cleanup.policy": "compact"})
    await create_topics(broker.url, [prefix + t for t in inputs], partitions)
    await produce(broker.url, prefix, contracts)
    await produce(broker.url, prefix, lines)
    stats = log_dir / f"{key}-r{round_no}.json"
    cmd = [sys.executable, "-m", "bench.raw_consumer", "--broker", broker.url, "--prefix", prefix, "--app-id", app_id,
           "--partitions", str(partitions), "--lateness", str(ALLOWED_LATENESS_S), "--stats", str(stats)]
    log = open(log_dir / f"{key}-r{round_no}.log", "ab")
    raw = _track(subprocess.Popen(cmd + ([] if changelog else ["--no-changelog"]), cwd=ROOT, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True))
    try:
        print(f"round {round_no}: {RAW_NAMES[key]} on {len(lines):,} lines", file=sys.stderr, flush=True)
        profiler = Profiler(raw.pid, log_dir / f"{key}-r{round_no}.collapsed") if profile else None
        result = await measure_group(broker.bootstrap_servers, app_id, [prefix + t for t in inputs], raw.pid,
                                     broker.pid, poll=poll, timeout=timeout, alive=lambda: raw.poll() is None)
        if profiler is not None:
            result["profile"] = profiler.stop()
        if result.get("complete") and reference is not None and until is not None:
            result["check"] = await check_against_replay(broker.url, prefix, app_id, partitions, until, reference)
    finally:
        _stop(raw)
        log.close()
    if stats.exists():
        result["counts"] = json.loads(stats.read_text())
        result["counted_by_raw"] = result["counts"].get("events", 0) + result["counts"].get("dead_letters", 0)
    return result


def output_identity(lines: Iterable[bytes]) -> dict[str, Any]:
    """What a stream's outputs are compared with replay's by: the distinct event ids of every output
    but the dead letters, and the dead letters as (reason, raw) counts (their `source` and
    `occurred_at` name a file line in replay, a topic offset and a record time in a stream)."""
    ids: set[str] = set()
    dead: Counter[tuple[str, str]] = Counter()
    for line in lines:
        data = json.loads(line)
        if data["type"] == "dead_letter":
            dead[(data["reason"], data["raw"])] += 1
        else:
            ids.add(data["event_id"])
    return {"ids": ids, "dead_letters": dead}


def replay_cpu_per_line(events: Path, contracts: Path, until: datetime | None, lines: int) -> float:
    """CPU seconds per input line of `slaproc replay` over the workload in this process (contracts
    loaded, every line decoded and applied, outputs encoded; no Kafka, no state written): what the
    core costs a worker per event, besides reading, state writes and sends."""
    import io

    from streams.replay import replay_file

    started = time.process_time()
    replay_file(events, contracts, until, io.BytesIO(), progress=None)
    return (time.process_time() - started) / max(lines, 1)


def replay_reference(events: Path, contracts: Path, until: datetime) -> dict[str, Any]:
    """`output_identity` of `slaproc replay` over the workload up to `until`, with `at_batch_end`: the
    dead letters replay writes only because its batch is over, which a stream writes later.

    Those are the events still parked at `until` (an event for an entity that never came, less than
    the parking horizon old): replay drains them as `orphan`s at the end of the file, a stream keeps
    them parked until their horizon passes (SPEC §10), i.e. after `until`. Likewise the events still
    waiting for a contract at `until` (less than the contract wait old; docs/decisions.md, "Contract
    wait"): `unknown_customer` / `unknown_service` saying they waited."""
    import io

    from policies.processor import Settings
    from streams.replay import replay_file

    out = io.BytesIO()
    replay_file(events, contracts, until, out, progress=None)
    lines = out.getvalue().splitlines()
    reference = output_identity(lines)
    horizon_start = until - Settings().parking_horizon
    wait_start = until - Settings().contract_wait

    def at_batch_end(d: dict[str, Any]) -> bool:
        at = datetime.fromisoformat(d["occurred_at"].replace("Z", "+00:00"))
        if d["reason"] == "orphan":
            return at >= horizon_start
        return d["reason"] in ("unknown_customer", "unknown_service") and "waited" in d["error"] and at >= wait_start
    reference["at_batch_end"] = Counter(
        (d["reason"], d["raw"]) for d in map(json.loads, lines) if d["type"] == "dead_letter" and at_batch_end(d))
    return reference


async def check_against_replay(broker_url: str, prefix: str, app_id: str, partitions: int, until: datetime,
                               reference: dict[str, Any], timeout: float = 180.0) -> dict[str, Any]:
    """Tick every partition to `until` (a tick at `until + lateness`), read the output topics until
    replay's count of distinct outputs is there and nothing new came for 2 s, and compare."""
    from streams.testing.harness import collect, send_ticks

    await send_ticks(broker_url, app_id, partitions, until + timedelta(seconds=ALLOWED_LATENESS_S))
    dead_letters = reference["dead_letters"] - reference.get("at_batch_end", Counter())
    expect = len(reference["ids"]) + sum(dead_letters.values())
    got = output_identity(await collect(broker_url, prefix, quiet_for=2.0, timeout=timeout, expect=expect,
                                        raw=True, distinct=True))
    ids, want = got["ids"], reference["ids"]
    return {"replay_outputs": len(want), "stream_outputs": len(ids), "only_in_stream": len(ids - want),
            "only_in_replay": len(want - ids), "replay_dead_letters": sum(reference["dead_letters"].values()),
            "replay_at_batch_end": sum(reference.get("at_batch_end", Counter()).values()),
            "stream_dead_letters": sum(got["dead_letters"].values()),
            "dead_letters_equal": got["dead_letters"] == dead_letters,
            "equal": ids == want and got["dead_letters"] == dead_letters}


async def read_contracts(first: Any, count: int, timeout: float = 120.0) -> float:
    """Start the worker `first`, wait until it has counted `count` contracts, stop it; the seconds taken."""
    _track(first.start())
    try:
        started = time.monotonic()
        while worker_progress(first.url)[1] < count:
            if time.monotonic() - started > timeout or first.process.poll() is not None:
                raise RuntimeError(f"worker did not read the contracts (see {first.log_path})")
            await asyncio.sleep(0.5)
        return time.monotonic() - started
    finally:
        first.stop()


_COUNTED_OUTPUTS = ("slaproc_breaches_total", "slaproc_met_total", "slaproc_at_risk_total",
                    "slaproc_breach_retractions_total", "slaproc_month_closes_total", "slaproc_refunds_total",
                    "slaproc_ticks_total")


async def catch_up(broker: Any, prefix: str, app_id: str, partitions: int, worker: Any, *,
                   workload_end: datetime | None, timeout: float, every: float = 1.0, poll: float = 0.5) -> dict[str, Any]:
    """After the backlog: what the leader's timer does (a tick at the wall clock every `every` s),
    timed until every partition's time is at least (wall clock of the first tick - allowed lateness).

    This is time-driven work, proportional to the time between the workload's end and now
    (cadence outputs of the still-open tickets, month closes...), not per-event work.
    Outputs = growth of the output topics' end offsets; counters = growth of the worker's metrics.
    The span covered runs from `workload_end` (the workload's `until`; the worker only reports a
    partition's time once a tick was applied) to the target."""
    from streams.app import OUTPUT_TOPICS
    from streams.testing.harness import metric_sum, partition_times, scrape, send_ticks

    servers = broker.bootstrap_servers
    before_times = partition_times([worker.url])
    before = scrape(worker.url)
    pid = worker.process.pid
    async with GroupOffsets(servers, f"{app_id}-bench-probe", [prefix + t for t in OUTPUT_TOPICS]) as out_offsets:
        out_before = await out_offsets.end()
        first_at = datetime.now(UTC)
        target = first_at.timestamp() - ALLOWED_LATENESS_S
        cpu0, bcpu0 = cpu_seconds(pid), cpu_seconds(broker.pid)
        started = time.monotonic()
        last_sent, ticks = started, 0
        times: dict[int, float] = {}
        done = False
        while time.monotonic() - started < timeout:
            if ticks == 0 or time.monotonic() - last_sent >= every:
                last_sent = time.monotonic()
                await send_ticks(broker.url, app_id, partitions, first_at if ticks == 0 else datetime.now(UTC))
                ticks += 1
            await asyncio.sleep(poll)
            times = partition_times([worker.url])
            if len(times) == partitions and all(t >= target - 1e-3 for t in times.values()):
                done = True
                break
            if worker.process.poll() is not None:
                raise RuntimeError("the worker exited during the catch-up")
        seconds = time.monotonic() - started
        cpu, bcpu = cpu_seconds(pid) - cpu0, cpu_seconds(broker.pid) - bcpu0
        await asyncio.sleep(2 * poll)  # the last outputs of the batch that reached the target
        out_after = await out_offsets.end()
    after = scrape(worker.url)
    starts = list(before_times.values()) or ([workload_end.timestamp()] if workload_end else [])
    spans = [(target - t) / 86400 for t in starts] or [float("nan")]
    return {"complete": done, "seconds": seconds, "ticks_sent": ticks, "cpu_seconds": cpu, "broker_cpu_seconds": bcpu,
            "first_tick_at": _iso(first_at), "lateness": ALLOWED_LATENESS_S,
            "partition_times_before": {p: _iso(datetime.fromtimestamp(t, UTC)) for p, t in sorted(before_times.items())},
            "partition_times_after": {p: _iso(datetime.fromtimestamp(t, UTC)) for p, t in sorted(times.items())},
            "span_days_min": min(spans), "span_days_max": max(spans), "outputs": out_after - out_before,
            "counters": {n.removeprefix("slaproc_").removesuffix("_total"): metric_sum(after, n) - metric_sum(before, n)
                         for n in _COUNTED_OUTPUTS}}


async def throughput(args: argparse.Namespace) -> dict[str, Any]:
    from bench.replay import ensure_workload
    from streams.testing.broker import EmbeddedBroker
    from streams.testing.harness import contract_events

    work = ensure_workload(args.events, args.tickets)
    meta = json.loads((work / "meta.json").read_text())
    lines = [line for line in (work / "events.jsonl").read_bytes().splitlines() if line.strip()]
    contracts = [json.dumps(e).encode() for e in contract_events(work / "contracts.yaml")]
    n_decodable = decodable(lines)
    until = datetime.fromisoformat(meta["until"].replace("Z", "+00:00")) if meta.get("until") else None
    log_dir = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    raw_variants = [v == "changelog" for v in args.raw.split(",") if v in ("changelog", "memory")]
    floors = [v for v in args.floors.split(",") if v in FLOOR_KEYS]
    reference = None
    if raw_variants and until is not None and not args.no_check:
        print(f"replay of the workload up to {meta['until']} (the raw consumer's outputs are compared with it)",
              file=sys.stderr, flush=True)
        reference = replay_reference(work / "events.jsonl", work / "contracts.yaml", until)
    replay_cpu = replay_cpu_per_line(work / "events.jsonl", work / "contracts.yaml", until, len(lines))
    print(f"replay in process: {replay_cpu * 1e6:.0f} µs CPU per line", file=sys.stderr, flush=True)
    rounds = []
    async with EmbeddedBroker(log_path=log_dir / "broker.log") as broker:
        for r in range(args.rounds):
            rounds.append(await throughput_round(broker, lines, contracts, n_decodable, partitions=args.partitions,
                                                 round_no=r + 1, log_dir=log_dir, poll=args.poll,
                                                 timeout=args.timeout, profile=args.profile,
                                                 workload_end=until, raw_variants=raw_variants,
                                                 reference=reference, floors=floors))
    return {"workload": meta, "workload_dir": str(work), "lines": len(lines), "decodable": n_decodable,
            "replay_cpu_per_line": replay_cpu,
            "contracts": len(contracts), "partitions": args.partitions, "rounds": rounds, "logs": str(log_dir)}


def _cpu_per_event(m: dict[str, Any]) -> float | None:
    if not m.get("complete") or not m.get("window_events"):
        return None
    return float(m["cpu_seconds"]) / float(m["window_events"])


def ceilings(res: dict[str, Any]) -> list[str]:
    """Per round, the most a worker built on each floor could be, by CPU per event, against the bare
    agent: the bare agent's CPU per event / (the floor's + replay's in-process CPU per line). A worker
    pays at least its floor (reading the records) and the core (replay: decode, apply, encode), and
    on top of them its state writes and sends, counted here as nothing: an upper bound."""
    core = res.get("replay_cpu_per_line")
    if not core:
        return []
    out = ["", f"Ceiling by CPU per event (replay in process: {core * 1e6:.0f} µs CPU per line, the core's cost "
           "without reading, state writes or sends): bare agent's CPU per event / (floor's + replay's).", ""]
    for r in res["rounds"]:
        bare = _cpu_per_event(r.get("baseline", {}))
        if bare is None:
            continue
        parts = []
        for mode, key in FLOOR_KEYS.items():
            floor = _cpu_per_event(r.get(key, {}))
            if floor is not None:
                parts.append(f"{FLOOR_NAMES[mode].removeprefix('floor: ')}: {bare * 1e6:.0f} / ({floor * 1e6:.0f} + "
                             f"{core * 1e6:.0f}) = **{bare / (floor + core):.2f} x**")
        if parts:
            out.append(f"- round {r['round']}: " + "; ".join(parts))
    return out


def throughput_table(res: dict[str, Any]) -> str:
    meta = res["workload"]
    out = [f"Workload: {res['lines']:,} lines ({res['decodable']:,} decodable), {meta['tickets']:,} tickets, "
           f"{res['contracts']} contracts, {res['partitions']} partitions. The worker's timer does not tick "
           f"inside its window (tick interval {WINDOW_TICK_INTERVAL_S:g} s); its catch-up to the wall clock is "
           f"measured after it (second table).", "",
           "| round | consumer | events/s | window (committed offsets) | CPU (consumer) | CPU / event | "
           "CPU (broker) | counted by the consumer | ratio |",
           "|---|---|---|---|---|---|---|---|---|"]
    contenders = (("bare Faust agent", "baseline"), *((FLOOR_NAMES[mode], key) for mode, key in FLOOR_KEYS.items()),
                  ("slaproc worker", "slaproc"), *((name, key) for key, name in RAW_NAMES.items()))
    for r in res["rounds"]:
        for name, key in contenders:
            if key not in r:
                continue
            m = r[key]
            if not m.get("complete"):
                out.append(f"| {r['round']} | {name} | incomplete ({m.get('events_seen', 0):,.0f} of "
                           f"{m['target']:,}) | | | | | | |")
                continue
            counted = m.get("counted_by_agent", m.get("counted_by_worker", m.get("counted_by_raw")))
            ratio = r.get("ratio") if key == "slaproc" else m.get("ratio")
            ratio = f"**{ratio:.2f}**" if ratio is not None and key != "baseline" else ""
            out.append(f"| {r['round']} | {name} | {m['rate']:,.0f} | {m['window_events']:,.0f} ev in "
                       f"{m['window_seconds']:.1f} s | {m['cpu_seconds']:.1f} s "
                       f"({m['cpu_seconds'] / max(m['window_seconds'], 1e-9) * 100:.0f} %) | "
                       f"{m['cpu_seconds'] / max(m['window_events'], 1) * 1e6:.0f} µs | {m['broker_cpu_seconds']:.1f} s | "
                       f"{'n/a' if counted is None else f'{counted:,.0f}'} | {ratio} |")
    out += ceilings(res)
    checks = [(r["round"], RAW_NAMES[key], r[key]["check"]) for r in res["rounds"] for key in RAW_NAMES
              if "check" in r.get(key, {})]
    if checks:
        out += ["", "Outputs of the raw consumer after one tick to the workload's `until`, against `slaproc replay` "
                "to the same instant: distinct event ids (dead letters by reason and raw bytes).", "",
                "| round | consumer | replay outputs | stream outputs | only in stream | only in replay | "
                "dead letters: replay (of which at its batch end*) / stream | equal |", "|---|---|---|---|---|---|---|---|"]
        for round_no, name, c in checks:
            out.append(f"| {round_no} | {name} | {c['replay_outputs']:,} | {c['stream_outputs']:,} | "
                       f"{c['only_in_stream']:,} | {c['only_in_replay']:,} | {c['replay_dead_letters']:,} "
                       f"({c.get('replay_at_batch_end', 0):,}) / {c['stream_dead_letters']:,} | "
                       f"{'**yes**' if c['equal'] else '**NO**'} |")
        out += ["", "\\* events still parked at `until` (less than the parking horizon old): replay writes them as "
                "`orphan`s because its batch is over, a stream once their horizon passes; left out of `equal`."]
    catch = [r for r in res["rounds"] if "catch_up" in r]
    if catch:
        out += ["", "Catch-up after the backlog (slaproc worker): ticks at the wall clock every 1 s until every "
                "partition's time >= first tick - allowed lateness; outputs = growth of the output topics.", "",
                "| round | catch-up | partition time covered | outputs | breaches / at-risk / met | "
                "CPU (worker) | CPU (broker) | ticks sent |", "|---|---|---|---|---|---|---|---|"]
        for r in catch:
            c = r["catch_up"]
            k = c["counters"]
            seconds = f"{c['seconds']:.1f} s" + ("" if c["complete"] else " (timed out)")
            out.append(f"| {r['round']} | {seconds} | {c['span_days_min']:.1f}-{c['span_days_max']:.1f} days | "
                       f"{c['outputs']:,} | {k['breaches']:,.0f} / {k['at_risk']:,.0f} / {k['met']:,.0f} | "
                       f"{c['cpu_seconds']:.1f} s | {c['broker_cpu_seconds']:.1f} s | {c['ticks_sent']} |")
    return "\n".join(out)


# --------------------------------------------------------------------------- timers


def timer_probe(open_tickets: int, due_per_tick: int, ticks: int, tick_seconds: float,
                background: str) -> dict[str, Any]:
    """One processor with `open_tickets` far-off clocks; time `ticks` ticks of `due_per_tick` deadlines each."""
    from policies.catalog import default_catalog
    from streams.core_adapter import RealCore
    from streams.store import DictTableBackend, PartitionStore

    core = RealCore(catalog=default_catalog())
    proc = core.new_processor(PartitionStore(DictTableBackend(), 0), lambda _s: True)
    entries = sample_contracts()
    nm = entries[0]
    bg = next(e for e in entries if e["policy"] == background)
    for line in contract_lines([nm] if bg is nm else [nm, bg]):
        proc.upsert_contract(core.contract_of(core.decode(line))[1])

    t0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # a Monday: business clocks run
    low = {"neural-magic": "low", "neptune": "low", "rescale": "low", "vectorize": "low"}[background]

    def opened(ticket_id: str, customer: str, priority: str, at: datetime) -> Any:
        return core.decode(json.dumps({"event_id": f"o-{ticket_id}", "type": "ticket.opened", "occurred_at": _iso(at),
                                       "ticket_id": ticket_id, "customer_id": customer,
                                       "priority": priority}).encode())

    build_started = time.perf_counter()
    for i in range(open_tickets):
        proc.apply(opened(f"B{i:07d}", bg["customer_id"], low, t0))
    step = tick_seconds / due_per_tick
    due_total = due_per_tick * ticks
    for j in range(due_total):
        proc.apply(opened(f"D{j:05d}", nm["customer_id"], "critical", t0 + timedelta(seconds=j * step)))
    proc.persist()
    # Warm-up: fire every at-risk warning of the due tickets (90 % = 27 min), no breach yet.
    deadline0 = t0 + timedelta(minutes=30)
    proc.advance_to(deadline0 - timedelta(seconds=step / 2))
    proc.persist()
    build_seconds = time.perf_counter() - build_started
    open_clocks = proc.open_clocks()
    gc.collect()
    advance, flush, fired = [], [], []
    for i in range(1, ticks + 1):
        target = deadline0 + timedelta(seconds=i * tick_seconds - step / 2)
        a = time.perf_counter()
        outputs = proc.advance_to(target)
        b = time.perf_counter()
        proc.persist()
        c = time.perf_counter()
        advance.append(b - a)
        flush.append(c - b)
        fired.append(sum(1 for o in outputs if o.type == "sla.breached"))
    snapshot_bytes = len(proc.core.snapshot())
    return {"open_tickets": open_tickets, "open_clocks": open_clocks, "background": background,
            "due_per_tick": due_per_tick, "ticks": ticks, "breaches_per_tick": sorted(set(fired)),
            "build_seconds": build_seconds, "snapshot_bytes": snapshot_bytes,
            "advance": _stats(advance), "flush": _stats(flush),
            "total": _stats([x + y for x, y in zip(advance, flush)])}


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"median_ms": statistics.median(ms), "p90_ms": percentile(ms, 90), "max_ms": max(ms),
            "mean_ms": statistics.fmean(ms)}


def timers(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for background in args.backgrounds.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"timers: {size:,} open tickets ({background})", file=sys.stderr, flush=True)
            cmd = [sys.executable, "-m", "bench.stream", "timer-probe", "--open", str(size),
                   "--due-per-tick", str(args.due_per_tick), "--ticks", str(args.ticks), "--background", background]
            done = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, timeout=args.timeout)
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"runs": runs}


def timers_table(res: dict[str, Any]) -> str:
    out = ["| background tickets | open tickets | open clocks | breaches / tick | advance_to median (p90, max) | "
           "flush median (p90, max) | tick median | ratio to smallest |", "|---|---|---|---|---|---|---|---|"]
    smallest: dict[str, float] = {}
    for run in res["runs"]:
        a, f, t = run["advance"], run["flush"], run["total"]
        base = smallest.setdefault(run["background"], t["median_ms"])
        out.append(f"| {run['background']} | {run['open_tickets']:,} | {run['open_clocks']:,} | "
                   f"{','.join(map(str, run['breaches_per_tick']))} | {a['median_ms']:.2f} ms ({a['p90_ms']:.2f}, "
                   f"{a['max_ms']:.2f}) | {f['median_ms']:.2f} ms ({f['p90_ms']:.2f}, {f['max_ms']:.2f}) | "
                   f"{t['median_ms']:.2f} ms | **{t['median_ms'] / base:.2f}** |")
    return "\n".join(out)


# --------------------------------------------------------------------------- latency


async def latency(args: argparse.Namespace) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer

    from streams.app import BREACHES, CONTRACTS
    from streams.testing.broker import EmbeddedBroker, create_topics
    from streams.testing.harness import WorkerProcess, partition_times, produce

    nm = sample_contracts()[0]
    customers = []
    for k in range(3):  # several customers: tickets spread over the partitions anyway (key = ticket_id)
        entry = json.loads(json.dumps(nm))
        entry["customer_id"] = f"lat{k}-neural-magic"
        entry["services"] = [dict(s, service_id=f"lat{k}-{s['service_id']}") for s in entry["services"]]
        customers.append(entry)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    prefix, app_id = "lat.", "bench-latency"
    async with EmbeddedBroker(log_path=log_dir / "broker.log") as broker:
        await create_topics(broker.url, [prefix + CONTRACTS], args.partitions, {"cleanup.policy": "compact"})
        await produce(broker.url, prefix, contract_lines(customers))
        worker = _track(WorkerProcess(broker.url, prefix, partitions=args.partitions, app_id=app_id,
                                      data_dir=log_dir / "data", tick_interval=args.tick_interval,
                                      extra_env={"SLAPROC_ALLOWED_LATENESS": str(args.lateness)},
                                      log_path=log_dir / "worker.log").start())
        consumer = None
        try:
            started = time.monotonic()
            while True:  # every partition follows the wall clock (ticks applied)
                times = partition_times([worker.url])
                now = time.time()
                if len(times) == args.partitions and all(now - t < args.lateness + 3 * args.tick_interval
                                                         for t in times.values()):
                    if worker_progress(worker.url)[1] >= len(customers):
                        break
                if time.monotonic() - started > 120 or worker.process.poll() is not None:
                    raise RuntimeError(f"worker not following the clock (see {log_dir}/worker.log)")
                await asyncio.sleep(0.5)
            consumer = AIOKafkaConsumer(prefix + BREACHES, bootstrap_servers=broker.bootstrap_servers,
                                        auto_offset_reset="latest", group_id=None, enable_auto_commit=False,
                                        fetch_max_wait_ms=20)
            await consumer.start()
            await consumer.seek_to_end()
            await consumer.getmany(timeout_ms=200)  # positions resolved before the tickets go out
            first_due = datetime.now(UTC) + timedelta(seconds=args.lead)
            step = args.spread / args.deadlines
            tickets = []
            for i in range(args.deadlines):
                due = first_due + timedelta(seconds=i * step)
                tickets.append(json.dumps({
                    "event_id": f"lat-open-{i}", "type": "ticket.opened",
                    "occurred_at": _iso(due - timedelta(minutes=30)), "ticket_id": f"LAT{i:05d}",
                    "customer_id": customers[i % len(customers)]["customer_id"], "priority": "critical"}).encode())
            await produce(broker.url, prefix, tickets)
            produced_at = datetime.now(UTC)
            received: dict[str, tuple[float, float, str]] = {}
            deadline = time.monotonic() + args.lead + args.spread + 30
            while len(received) < args.deadlines and time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=100)
                now = time.time()
                for messages in batch.values():
                    for m in messages:
                        out = json.loads(m.value)
                        if out.get("type") == "sla.breached" and out["ticket_id"].startswith("LAT"):
                            received.setdefault(out["ticket_id"], (now, m.timestamp / 1000, out["due_at"]))
        finally:
            if consumer is not None:
                await consumer.stop()
            worker.stop()
    recv, kafka, series = [], [], []
    for now, ts, due_at in received.values():
        due = datetime.fromisoformat(due_at.replace("Z", "+00:00")).timestamp()
        recv.append(now - due)
        kafka.append(ts - due)
        series.append((round(due - first_due.timestamp(), 2), round(now - due, 2)))
    result = {"deadlines": args.deadlines, "received": len(received), "spread": args.spread,
              "tick_interval": args.tick_interval, "lateness": args.lateness, "partitions": args.partitions,
              "produced_before_first_due_s": (first_due - produced_at).total_seconds(), "logs": str(log_dir),
              "series": sorted(series)}  # (due_at - first deadline, receive latency), seconds
    if recv:
        for name, values in (("receive_latency", recv), ("kafka_latency", kafka)):
            result[name] = {"p50": percentile(values, 50), "p99": percentile(values, 99), "min": min(values),
                            "max": max(values)}
    return result


def latency_table(res: dict[str, Any]) -> str:
    tick, late = res["tick_interval"], res["lateness"]
    bound = tick + late + LATENCY_SLACK_S
    out = [f"{res['received']} of {res['deadlines']} breaches received; deadlines every "
           f"{res['spread'] / res['deadlines']:.2f} s over {res['spread']:.0f} s; tick interval {tick:g} s, "
           f"allowed lateness {late:g} s, {res['partitions']} partitions.", "",
           "| measured at | p50 | p99 | min | max | p99 - lateness | target: p99 <= tick + lateness + 2 s |",
           "|---|---|---|---|---|---|---|"]
    for name, label in (("receive_latency", "consumer receive time - due_at"),
                        ("kafka_latency", "Kafka message timestamp - due_at")):
        if name in res:
            m = res[name]
            out.append(f"| {label} | {m['p50']:.2f} s | {m['p99']:.2f} s | {m['min']:.2f} s | {m['max']:.2f} s | "
                       f"{m['p99'] - late:.2f} s | {bound:g} s: {'met' if m['p99'] <= bound else 'NOT met'} |")
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tp = sub.add_parser("throughput")
    tp.add_argument("--events", type=int, default=200_000)
    tp.add_argument("--tickets", type=int, default=20_000)
    tp.add_argument("--partitions", type=int, default=3)
    tp.add_argument("--rounds", type=int, default=1, help="baseline + worker pairs, back to back")
    tp.add_argument("--poll", type=float, default=0.5, help="committed-offset poll period (s)")
    tp.add_argument("--timeout", type=float, default=900, help="per consumer (s)")
    tp.add_argument("--profile", action="store_true",
                    help="sample the consumers with py-spy (dev-only tool) and print their hotspots")
    tp.add_argument("--raw", default="changelog",
                    help="raw aiokafka consumer variants after the worker, comma-separated: changelog (state "
                         "written as the worker writes it), memory (state in memory only); none: no raw consumer")
    tp.add_argument("--floors", default="take,direct",
                    help="floors after the bare agent (bench.faust_floor), comma-separated: take (a Faust agent "
                         "doing no work), direct (Faust's consumer without its streams, no work); none: no floor")
    tp.add_argument("--no-check", action="store_true",
                    help="do not compare the raw consumer's outputs with replay's (saves a replay of the workload)")
    tm = sub.add_parser("timers")
    tm.add_argument("--sizes", default="1000,200000")
    tm.add_argument("--backgrounds", default="neural-magic,rescale",
                    help="provider of the far-off tickets (rescale: attainment bookkeeping)")
    tm.add_argument("--due-per-tick", type=int, default=10)
    tm.add_argument("--ticks", type=int, default=50)
    tm.add_argument("--timeout", type=float, default=900)
    probe = sub.add_parser("timer-probe")
    probe.add_argument("--open", type=int, required=True)
    probe.add_argument("--due-per-tick", type=int, default=10)
    probe.add_argument("--ticks", type=int, default=50)
    probe.add_argument("--background", default="neural-magic")
    lt = sub.add_parser("latency")
    lt.add_argument("--deadlines", type=int, default=300)
    lt.add_argument("--spread", type=float, default=60.0, help="deadlines spread over this many seconds")
    lt.add_argument("--lead", type=float, default=8.0, help="first deadline this many seconds after the produce")
    lt.add_argument("--tick-interval", type=float, default=1.0)
    lt.add_argument("--lateness", type=float, default=1.0)
    lt.add_argument("--partitions", type=int, default=3)
    for p in (tp, tm, lt):
        p.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import atexit
    import signal

    atexit.register(_kill_started)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks and atexit
    if args.command == "timer-probe":
        print(json.dumps(timer_probe(args.open, args.due_per_tick, args.ticks, 1.0, args.background)))
        return 0
    print(machine(), file=sys.stderr)
    if args.command == "throughput":
        res = asyncio.run(throughput(args))
        print(throughput_table(res))
        for r in res["rounds"]:
            for key in ("baseline", "slaproc", *RAW_NAMES):
                if "profile" in r.get(key, {}):
                    print(f"\n### py-spy, round {r['round']}, {key}\n\n```\n{r[key]['profile']}\n```")
    elif args.command == "timers":
        res = timers(args)
        print(timers_table(res))
    else:
        res = asyncio.run(latency(args))
        print(latency_table(res))
    res["machine"] = machine()
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
