"""Real TLS (SPEC §12): the worker and `slaproc publish` through a TLS terminator (socat) in front
of the embedded Tansu broker, with a throwaway CA; mutual TLS when the terminator requires client
certificates. Each misconfiguration stops the command at start with one line naming the setting,
within seconds.

End to end: publish contracts and a generated event mix over TLS, the worker (over TLS) processes
them, the test ticks and reads the outputs back over TLS; outputs equal replay's.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench.generate import generate, write_workload
from streams.testing.harness import REPO, Workers, metric_sum, scrape, tick_until_at, wait_until
from streams.kafka_config import KafkaSettings, preflight
from tests.integration.netsupport import make_pki, tls_broker
from tests.integration.test_stream_equals_replay import collect_at_least, replay_outputs

pytestmark = pytest.mark.broker
UTC = timezone.utc
PARTITIONS = 3
LATENESS = 30.0
SLAPROC = str(Path(sys.executable).parent / "slaproc")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls(pki):
    with tls_broker(pki, mtls=False) as b:
        yield b


@pytest.fixture(scope="module")
def mtls(pki):
    with tls_broker(pki, mtls=True) as b:
        yield b


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> dict:
    work = generate(events=1_500, tickets=150, seed=13)
    return write_workload(work, tmp_path_factory.mktemp("mix"))


def tls_env(pki: dict[str, Path], *, client_cert: bool = False) -> dict[str, str]:
    env = {"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["ca"])}
    if client_cert:
        env |= {"SLAPROC_KAFKA_SSL_CERT_FILE": str(pki["client"]), "SLAPROC_KAFKA_SSL_KEY_FILE": str(pki["client_key"])}
    return env


def publish(kind: str, path: Path, url: str, prefix: str, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([SLAPROC, "publish", kind, str(path), *extra],
                          env={**os.environ, "SLAPROC_BROKER": url, "SLAPROC_TOPIC_PREFIX": prefix, **env},
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def split(lines: list[bytes]) -> tuple[Counter, set]:
    outputs, dead = Counter(), set()
    for line in lines:
        data = json.loads(line)
        if data["type"] == "dead_letter":
            dead.add((data["reason"], data["raw"]))
        else:
            outputs[line] += 1
    return outputs, dead


def _ready(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/ready", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def run_end_to_end(url: str, env: dict[str, str], mix: dict, tmp_path: Path) -> dict:
    """Worker + publish + ticks + collect, all over `env`'s connection settings; returns numbers."""
    kafka = KafkaSettings.from_env(env)
    tag = uuid.uuid4().hex[:8]
    app = Workers(url, f"t{tag}.", f"slaproc-{tag}", tmp_path, partitions=PARTITIONS, tick_interval=3600.0,
                  extra_env=env)
    started = time.monotonic()
    try:
        worker = app.start()
        inputs = [f"{app.prefix}sla.{t}" for t in ("contracts", "ticket-events", "monitoring-events")]

        def topics_exist() -> bool:
            if worker.process.poll() is not None:
                raise AssertionError("worker exited:\n" + app.logs())
            return len(asyncio.run(preflight(url, kafka, topics=inputs)).partitions) == 3
        wait_until(topics_exist, 60, what="the worker created its topics over TLS")
        contracts = publish("contracts", mix["contracts"], url, app.prefix, env, "--occurred-at", "2026-03-01T00:00:00Z")
        assert contracts.returncode == 0, contracts.stderr
        n_contracts = int(contracts.stderr.split("publish: ")[1].split(" sent")[0])
        wait_until(lambda: metric_sum(scrape(worker.url), "slaproc_events_in_total", type="contract.upserted")
                   >= n_contracts, 60, what="contracts consumed")
        events = publish("events", mix["events"], url, app.prefix, env)
        assert events.returncode in (0, 1), events.stderr  # 1: the mix's few bad lines are rejected
        rejected = sum(1 for line in events.stderr.splitlines() if line.startswith(str(mix["events"])))
        at = datetime.now(UTC).replace(microsecond=0)
        asyncio.run(tick_until_at(url, app.app_id, PARTITIONS, at, LATENESS, [worker], kafka=kafka))
        replay = replay_outputs(mix["events"], mix["contracts"], at - timedelta(seconds=LATENESS))
        # publish kept the rejected lines off the topics: replay dead-letters them, the stream cannot
        stream = collect_at_least(url, app.prefix, len(replay) - rejected, kafka=kafka)
        # readiness checks the broker the way the clients connect (a TLS listener never answers plaintext)
        wait_until(lambda: _ready(worker.url), 30, what="/ready over TLS\n" + app.logs())
    finally:
        app.stop_all()
    s_out, s_dead = split(stream)
    r_out, r_dead = split(replay)
    assert sum(r_out.values()) > 100
    assert s_out == r_out, f"only stream {len(s_out - r_out)}, only replay {len(r_out - s_out)}\n" + app.logs()
    assert s_dead <= r_dead  # publish kept the undecodable lines off the topics: replay dead-letters them
    assert len(r_dead - s_dead) == rejected
    return {"outputs": sum(s_out.values()), "rejected": rejected, "seconds": time.monotonic() - started}


def test_worker_and_publish_over_tls(tls, pki, mix, tmp_path):
    numbers = run_end_to_end(tls.url, tls_env(pki), mix, tmp_path)
    print(f"\nTLS: {numbers}")


def test_worker_and_publish_over_mutual_tls(mtls, pki, mix, tmp_path):
    numbers = run_end_to_end(mtls.url, tls_env(pki, client_cert=True), mix, tmp_path)
    print(f"\nmTLS: {numbers}")


# --- misconfiguration: one line naming the setting, within seconds -------------------------------

def start_worker_expecting_failure(url: str, env: dict[str, str], tmp_path: Path) -> tuple[list[str], float]:
    full = {**os.environ, "SLAPROC_BROKER": url, "SLAPROC_DATA_DIR": str(tmp_path / "data"),
            "SLAPROC_WEB_ENABLED": "false", "SLAPROC_KAFKA_CONNECT_TIMEOUT": "5", **env}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "streams.worker"], env=full, capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    return proc.stderr.splitlines(), elapsed


@pytest.mark.parametrize("case, setting, words", [
    ("wrong CA", "SLAPROC_KAFKA_SSL_CA_FILE", "is not trusted"),
    ("wrong hostname", "SLAPROC_KAFKA_SSL_CHECK_HOSTNAME", "is not valid for '127.0.0.1'"),
    # TLS 1.3: the server's refusal comes after the client's handshake; usually as an alert
    # (TLSV13_ALERT_CERTIFICATE_REQUIRED), on a loaded machine sometimes only as a reset
    ("missing client certificate", "SLAPROC_KAFKA_SSL_CERT_FILE", "requires a client certificate"),
    ("client certificate from another CA", "SLAPROC_KAFKA_SSL_CERT_FILE", "rejected the client certificate"),
    ("unknown mechanism", "SLAPROC_KAFKA_SASL_MECHANISM", "unknown mechanism 'SCRAM-SHA-1'"),
    ("PLAINTEXT client, TLS listener", "SLAPROC_KAFKA_SECURITY_PROTOCOL", "is it a TLS listener"),
    ("TLS client, PLAINTEXT listener", "SLAPROC_KAFKA_SECURITY_PROTOCOL", "is it a PLAINTEXT listener"),
])
def test_misconfiguration_is_one_line_within_seconds(case, setting, words, tls, mtls, pki, tmp_path):
    url, env = tls.url, tls_env(pki)
    if case == "wrong CA":
        env["SLAPROC_KAFKA_SSL_CA_FILE"] = str(pki["other_ca"])
    elif case == "wrong hostname":
        url = tls.url.replace("localhost", "127.0.0.1")
    elif case == "missing client certificate":
        url = mtls.url
    elif case == "client certificate from another CA":
        other = tmp_path / "other"
        other_pki = make_pki(other)  # a client certificate signed by a CA the terminator does not trust
        url = mtls.url
        env |= {"SLAPROC_KAFKA_SSL_CERT_FILE": str(other_pki["client"]),
                "SLAPROC_KAFKA_SSL_KEY_FILE": str(other_pki["client_key"])}
    elif case == "unknown mechanism":
        env |= {"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAPROC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-1",
                "SLAPROC_KAFKA_SASL_USERNAME": "u", "SLAPROC_KAFKA_SASL_PASSWORD": "p"}
    elif case == "PLAINTEXT client, TLS listener":
        env = {}
    elif case == "TLS client, PLAINTEXT listener":
        url = tls.plaintext_url
    lines, elapsed = start_worker_expecting_failure(url, env, tmp_path)
    print(f"\n{case}: {elapsed:.1f} s: {lines}")
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"slaproc worker: {setting}: ") and words in lines[0], lines[0]
    assert elapsed < 15, f"{case}: {elapsed:.1f} s"
    for secret in ("p",):
        assert f"={secret}" not in lines[0]


def test_publish_with_a_wrong_ca_is_one_line_and_sends_nothing(tls, pki, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"event_id":"x","type":"ticket.replied","occurred_at":"2026-03-02T09:31:00Z",'
                    '"ticket_id":"T-1","author":"provider"}\n')
    proc = publish("events", path, tls.url, "nope.", {**tls_env(pki), "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["other_ca"])})
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    assert line.startswith("slaproc publish: SLAPROC_KAFKA_SSL_CA_FILE: the certificate of localhost:")


def test_demo_feed_only_over_tls(tls, pki, tmp_path):
    """`slaproc demo --feed-only` (docker compose's feeder) creates the topics and feeds them over TLS."""
    from aiokafka import AIOKafkaConsumer

    from streams.kafka_config import consumer_kwargs

    prefix = f"t{uuid.uuid4().hex[:8]}."
    env = {**os.environ, "SLAPROC_BROKER": tls.url, "SLAPROC_TOPIC_PREFIX": prefix, "SLAPROC_PARTITIONS": "3",
           **tls_env(pki)}
    proc = subprocess.run([SLAPROC, "demo", "--feed-only", "--no-color"], env=env, capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kafka = KafkaSettings.from_env(tls_env(pki))

    async def count() -> int:
        consumer = AIOKafkaConsumer(prefix + "sla.contracts", **consumer_kwargs(
            tls.url, kafka, group_id=None, auto_offset_reset="earliest", enable_auto_commit=False))
        await consumer.start()
        try:
            got, deadline = 0, time.monotonic() + 30
            while not got and time.monotonic() < deadline:  # the first contract read is enough
                got += sum(len(v) for v in (await consumer.getmany(timeout_ms=500)).values())
            return got
        finally:
            await consumer.stop()
    assert asyncio.run(count()) > 0


# --- the gateway: the same connection settings ----------------------------------------------------

GATEWAY_TOKEN = {"SLAPROC_GATEWAY_EVENTS_TOKEN": "events-token-0123456789"}


def test_gateway_over_tls_sends_what_it_acknowledges(tls, pki, tmp_path):
    """`slaproc gateway` connects with the SLAPROC_KAFKA_* settings: a native event posted to
    /v1/events is acknowledged and read back from the ticket topic over TLS."""
    import urllib.request

    from aiokafka import AIOKafkaConsumer

    from streams.testing.gateway_process import GatewayProcess
    from streams.kafka_config import consumer_kwargs

    prefix = f"gwtls{uuid.uuid4().hex[:6]}."
    event = {"event_id": "gw-tls-1", "type": "ticket.replied", "occurred_at": "2026-03-02T09:31:00Z",
             "ticket_id": "T-GW-1", "author": "provider", "public": True}
    gateway = GatewayProcess(tls.url, prefix, partitions=PARTITIONS, secrets=GATEWAY_TOKEN,
                             extra_env={**tls_env(pki), "SLAPROC_REPLICATION_FACTOR": "1"},
                             log_path=tmp_path / "gateway.log").start()
    try:
        request = urllib.request.Request(gateway.url + "/v1/events", data=json.dumps(event).encode(), method="POST",
                                         headers={"Authorization": "Bearer " + GATEWAY_TOKEN["SLAPROC_GATEWAY_EVENTS_TOKEN"],
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200, response.read()
    finally:
        gateway.stop()

    async def read_back() -> list:
        kafka = KafkaSettings.from_env(tls_env(pki))
        consumer = AIOKafkaConsumer(prefix + "sla.ticket-events", **consumer_kwargs(
            tls.url, kafka, auto_offset_reset="earliest", group_id=None, enable_auto_commit=False))
        await consumer.start()
        try:
            found: list = []
            deadline = time.monotonic() + 30
            while not found and time.monotonic() < deadline:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    found += messages
            return found
        finally:
            await consumer.stop()

    [record] = asyncio.run(read_back())
    assert record.key == b"T-GW-1" and json.loads(record.value)["event_id"] == "gw-tls-1"


def test_gateway_with_a_wrong_ca_is_one_line_within_seconds(tls, pki, tmp_path):
    env = {**os.environ, "SLAPROC_BROKER": tls.url, "SLAPROC_GATEWAY_PORT": "0", "SLAPROC_KAFKA_CONNECT_TIMEOUT": "5",
           **GATEWAY_TOKEN, **tls_env(pki), "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["other_ca"])}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "gateway"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("slaproc gateway: SLAPROC_KAFKA_SSL_CA_FILE: ") and "is not trusted" in line, line
    assert time.monotonic() - started < 15
