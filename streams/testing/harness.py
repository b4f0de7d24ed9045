"""Drive a real worker from outside: start it as a process, feed files to the input topics,
collect the output topics. Used by the integration tests, the stream benchmark and the demo.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.app import CONTRACTS, MONITORING_EVENTS, OUTPUT_TOPICS, TICKET_EVENTS
from streams.testing.broker import _die_with_parent
from streams.kafka_config import KafkaSettings, consumer_kwargs, producer_kwargs

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WorkerProcess:
    """`python -m streams.worker` with settings as environment variables; stopped by `stop()`/`kill()`."""

    broker_url: str
    prefix: str
    partitions: int = 3
    app_id: str = "slaproc"
    data_dir: Path | None = None
    web_port: int = field(default_factory=free_port)
    tick_interval: float = 1.0
    extra_env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    #: The Python module run as the worker (`python -m ...`); tests put a fault-injecting wrapper here.
    module: str = "streams.worker"
    process: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "SLAPROC_BROKER": self.broker_url, "SLAPROC_TOPIC_PREFIX": self.prefix,
            "SLAPROC_PARTITIONS": str(self.partitions), "SLAPROC_APP_ID": self.app_id,
            "SLAPROC_WEB_PORT": str(self.web_port), "SLAPROC_WEB_HOST": "127.0.0.1",
            "SLAPROC_TICK_INTERVAL": str(self.tick_interval),
            # Tansu-friendly group timings (docs/stream.md); Apache Kafka wants >= 6 s.
            "SLAPROC_BROKER_SESSION_TIMEOUT": "3", "SLAPROC_BROKER_HEARTBEAT_INTERVAL": "0.5",
            "SLAPROC_BROKER_REBALANCE_TIMEOUT": "3",
            "SLAPROC_DATA_DIR": str(self.data_dir or Path("/tmp") / f"slaproc-{self.app_id}-{self.web_port}"),
            "SLAPROC_LOG_LEVEL": os.environ.get("SLAPROC_TEST_WORKER_LOG_LEVEL", "warning"),
            "PYTHONUNBUFFERED": "1",  # a kill -9 must not lose the log's last lines
        })
        env.update(self.extra_env)
        return env

    def start(self) -> "WorkerProcess":
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen([sys.executable, "-m", self.module], env=self.env(), cwd=REPO,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                        # a test run killed before its teardown leaves no worker behind
                                        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (Faust stops cleanly), then SIGKILL after `timeout`."""
        self.terminate()
        self.wait_stopped(timeout)

    def terminate(self) -> None:
        """SIGTERM only: Faust starts its clean shutdown; `wait_stopped` waits for it."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def wait_stopped(self, timeout: float) -> None:
        """Wait up to `timeout` for the process to exit (after `terminate`), then SIGKILL it."""
        if self.process and self.process.poll() is None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """kill -9: no shutdown, no flush, no commit."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def contract_events(contracts_yaml: Path, occurred_at: str = "2020-01-01T00:00:00Z") -> list[dict[str, Any]]:
    """The entries of a contracts YAML file as `contract.upserted` events."""
    entries = yaml.safe_load(contracts_yaml.read_text())["contracts"]
    return [{"event_id": f"contract-{e['customer_id']}", "type": "contract.upserted", "occurred_at": occurred_at,
             **json.loads(json.dumps(e, default=str))} for e in entries]


def route(line: bytes) -> tuple[str, bytes | None]:
    """Input topic and key of a raw input line (SPEC §1); unparseable lines go to the ticket topic, unkeyed."""
    try:
        data = json.loads(line)
    except ValueError:
        return TICKET_EVENTS, None
    if not isinstance(data, dict):
        return TICKET_EVENTS, None
    kind = str(data.get("type", ""))
    if kind == "contract.upserted":
        key = data.get("customer_id")
        return CONTRACTS, str(key).encode() if key else None
    if kind.startswith(("outage.", "maintenance.")):
        key = data.get("service_id")
        return MONITORING_EVENTS, str(key).encode() if key else None
    key = data.get("ticket_id")
    return TICKET_EVENTS, str(key).encode() if key else None


async def produce(broker_url: str, prefix: str, lines: Iterable[bytes], kafka: KafkaSettings | None = None) -> int:
    """Send raw input lines to their topics, in order; returns the count. `kafka`: TLS/SASL (None: PLAINTEXT)."""
    producer = AIOKafkaProducer(**producer_kwargs(broker_url, kafka or KafkaSettings(), linger_ms=5,
                                                  max_request_size=16 * 1024 * 1024))
    await producer.start()
    n = 0
    try:
        futures = []
        for line in lines:
            topic, key = route(line)
            futures.append(await producer.send(prefix + topic, line, key=key))
            n += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return n


async def collect(broker_url: str, prefix: str, *, quiet_for: float = 5.0, timeout: float = 120.0,
                  expect: int | None = None, raw: bool = False, kafka: KafkaSettings | None = None,
                  distinct: bool = False) -> list[Any]:
    """Read every output topic from the start until `expect` outputs were read (if given) and
    nothing new arrived for `quiet_for` seconds, or `timeout` passed. With `raw`, the message
    values as bytes instead of parsed JSON. With `distinct`, `expect` counts distinct event ids:
    at-least-once repeats (after a rebalance or a crash) do not make up for outputs still on
    their way."""
    consumer = AIOKafkaConsumer(*[prefix + t for t in OUTPUT_TOPICS],
                                **consumer_kwargs(broker_url, kafka or KafkaSettings(), auto_offset_reset="earliest",
                                                  group_id=None, enable_auto_commit=False))
    await consumer.start()
    out: list[dict[str, Any]] = []
    ids: set[str] = set()
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for m in messages:
                    value = m.value if raw and not distinct else json.loads(m.value)
                    out.append(m.value if raw else value)
                    if distinct:
                        ids.add(value["event_id"])
                    last = time.monotonic()
            count = len(ids) if distinct else len(out)
            if time.monotonic() - last > quiet_for and (expect is None or count >= expect):
                break
    finally:
        await consumer.stop()
    return out


def net_outcome(outputs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """SPEC §5 "stream equals replay": standing breaches, met and notices by event id (content
    included), the final figures of every month and refund (revision left out), attainment."""
    outputs = list(outputs)
    retracted = {o["breach_event_id"] for o in outputs if o["type"] == "sla.breach_retracted"}
    by_id = {o["event_id"]: o for o in outputs}
    standing = {i: o for i, o in by_id.items() if o["type"] == "sla.breached" and i not in retracted}
    met_retracted = {o["met_event_id"] for o in outputs if o["type"] == "sla.met_retracted"}  # SPEC §10
    met = {i: o for i, o in by_id.items() if o["type"] == "sla.met" and i not in met_retracted}
    notices_retracted = {o["notice_event_id"] for o in outputs if o["type"] == "ticket.priority_notice_retracted"}
    notices = {i: o for i, o in by_id.items() if i not in notices_retracted
               and o["type"] in ("ticket.priority_change_rejected", "ticket.priority_adjusted", "sla.attainment_reported")}
    months: dict[tuple[str, str, str], dict[str, Any]] = {}
    refunds: dict[tuple[str, str, str], dict[str, Any]] = {}
    for o in sorted(outputs, key=lambda o: o.get("revision", 0)):
        if o["type"] == "uptime.month_closed":
            key = (o["customer_id"], o["service_id"], o["month"])
            months[key] = {k: v for k, v in o.items() if k not in ("event_id", "revision", "occurred_at")}
            refunds.pop(key, None) if o["met"] else None
        elif o["type"] == "refund.eligible":
            key = (o["customer_id"], o["service_id"], o["month"])
            refunds[key] = {k: v for k, v in o.items() if k not in ("event_id", "revision", "occurred_at")}
        elif o["type"] == "refund.withdrawn":  # SPEC §10
            refunds.pop((o["customer_id"], o["service_id"], o["month"]), None)
    return {"standing_breaches": standing, "met": met, "notices": notices,
            "months": {"|".join(k): v for k, v in months.items()},
            "refunds": {"|".join(k): v for k, v in refunds.items()}}


async def send_ticks(broker_url: str, app_id: str, partitions: int, at: Any, kafka: KafkaSettings | None = None) -> None:
    """What the leader's timer sends: one tick `at` (UTC datetime) to every partition of `<app_id>-ticks`.

    Tests run workers with a tick interval longer than the test and tick them with a chosen
    instant, so that every partition's final time is known exactly (it then equals replay's
    `--until at - allowed lateness`)."""
    from streams.ticks import encode_tick

    producer = AIOKafkaProducer(**producer_kwargs(broker_url, kafka or KafkaSettings()))
    await producer.start()
    try:
        value = encode_tick(at)
        await asyncio.gather(*[await producer.send(f"{app_id}-ticks", value, partition=p) for p in range(partitions)])
    finally:
        await producer.stop()


def scrape(url: str, timeout: float = 5.0) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET `url`/metrics -> {(sample name, sorted labels): value}; {} when the worker does not answer."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url + "/metrics", timeout=timeout) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric_sum(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def partition_times(urls: Iterable[str]) -> dict[int, float]:
    """`slaproc_partition_time_seconds` of every partition the given workers report."""
    times: dict[int, float] = {}
    for url in urls:
        for (name, labels), value in scrape(url).items():
            if name == "slaproc_partition_time_seconds":
                times[int(dict(labels)["partition"])] = value
    return times


async def tick_until_at(broker_url: str, app_id: str, partitions: int, at: Any, lateness: float,
                        workers: Iterable["WorkerProcess"], timeout: float = 120.0, every: float = 1.0,
                        kafka: KafkaSettings | None = None) -> float:
    """Send ticks `at` until every partition's time is `at - lateness` on the workers (so each has
    caught up: a tick only moves a partition that has no unread input). Returns the seconds waited."""
    from datetime import timedelta

    target = (at - timedelta(seconds=lateness)).timestamp()
    urls = [w.url for w in workers]
    started = time.monotonic()
    while True:
        await send_ticks(broker_url, app_id, partitions, at, kafka)
        await asyncio.sleep(every)
        times = partition_times(urls)
        if all(abs(times.get(p, 0.0) - target) < 1e-3 for p in range(partitions)):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"partitions not at {target} after {timeout} s: {times}")


def wait_until(predicate: Any, timeout: float, every: float = 0.5, what: str = "condition") -> float:
    """Poll `predicate()` until true; returns the seconds waited, raises TimeoutError naming `what`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(every)
    return time.monotonic() - started


class Workers:
    """Worker processes of one test (one app id and topic prefix); `stop_all()` in a finally."""

    def __init__(self, broker_url: str, prefix: str, app_id: str, log_dir: Path, **defaults: Any) -> None:
        self.broker_url, self.prefix, self.app_id, self.log_dir = broker_url, prefix, app_id, log_dir
        self.defaults = defaults
        self.started: list[WorkerProcess] = []

    def start(self, **overrides: Any) -> WorkerProcess:
        options = {**self.defaults, **overrides}
        n = len(self.started)
        worker = WorkerProcess(self.broker_url, self.prefix, app_id=self.app_id,
                               data_dir=self.log_dir / f"data-{n}", log_path=self.log_dir / f"worker-{n}.log",
                               **options)
        self.started.append(worker.start())
        return worker

    def stop_all(self) -> None:
        """SIGTERM to every worker first, then wait for each: the clean shutdowns (each waits on
        Faust's service stops, seconds) overlap instead of adding up. SIGKILL for any worker still
        running 20 s after its SIGTERM."""
        try:
            for worker in self.started:
                worker.terminate()
            deadline = time.monotonic() + 20
            for worker in self.started:
                worker.wait_stopped(max(0.0, deadline - time.monotonic()))
        finally:
            for worker in self.started:
                worker.kill()

    def logs(self) -> str:
        """The tail of every worker's log (for assertion messages)."""
        parts = []
        for worker in self.started:
            if worker.log_path and worker.log_path.exists():
                parts.append(f"--- {worker.log_path.name}\n" + worker.log_path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)
