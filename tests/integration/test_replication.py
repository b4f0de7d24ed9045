"""SLAPROC_REPLICATION_FACTOR (SPEC §12), asserted through the admin API: every topic the worker
creates, Faust's changelogs and internal topics included, gets the configured factor; the worker caps
it at the cluster's broker count with a warning (Tansu is one broker: 3 -> 1); existing topics with
another partition count stop the worker with one line naming the topic."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from streams.app import build_app
from streams.testing.broker import bootstrap_servers, create_topics
from streams.testing.harness import REPO, WorkerProcess, wait_until
from streams.store import STATE_TABLES
from tests.integration.test_app_smoke import FakeCore, _settings, running

pytestmark = pytest.mark.broker
PARTITIONS = 3


async def replicas_of(broker_url: str, match) -> dict[str, tuple[int, set[int]]]:
    """topic -> (partition count, set of replica-list lengths) for the topics `match` accepts."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if match(t)]
        described = await admin.describe_topics(names) if names else []
        return {d["topic"]: (len(d["partitions"]), {len(p["replicas"]) for p in d["partitions"]}) for d in described}
    finally:
        await admin.close()


def expected_topics(prefix: str, app_id: str) -> set[str]:
    inputs_outputs = {prefix + t for t in ("sla.contracts", "sla.ticket-events", "sla.monitoring-events",
                                           "sla.breaches", "sla.warnings", "sla.notices", "sla.refund-eligibility",
                                           "sla.dead-letter")}
    internal = {f"{app_id}-ticks", f"{app_id}-attainment"}
    changelogs = {f"{app_id}-{t}-changelog" for t in (*STATE_TABLES, "attainment", "contracts")}
    return inputs_outputs | internal | changelogs


async def test_configured_factor_reaches_every_topic_faust_and_the_worker_create(broker_url, topic_prefix, tmp_path):
    # In-process app without the worker's start-up cap: as on a cluster of 3 brokers. Tansu records
    # the factor asked for (replica lists of that length), so the admin API shows what was requested.
    settings = _settings(broker_url, topic_prefix, tmp_path, replication_factor=3)
    app = build_app(settings, core=FakeCore())
    async with running(app):
        want = expected_topics(topic_prefix, settings.app_id)
        deadline = time.monotonic() + 30
        while True:
            got = await replicas_of(broker_url, lambda t: t in want)
            if set(got) == want or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    assert set(got) == want, sorted(want - set(got))
    assert {t: r for t, (_, r) in got.items()} == {t: {3} for t in want}
    assert {n for t, (n, _) in got.items() if not t.endswith("contracts-changelog")} == {PARTITIONS}


def test_worker_caps_the_factor_at_the_broker_count_with_a_warning(broker_url, topic_prefix, tmp_path):
    app_id = f"slaproc-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    worker = WorkerProcess(broker_url, topic_prefix, partitions=PARTITIONS, app_id=app_id, data_dir=tmp_path / "d",
                           tick_interval=3600.0, log_path=log, extra_env={"SLAPROC_REPLICATION_FACTOR": "3"}).start()
    want = expected_topics(topic_prefix, app_id)
    try:
        wait_until(lambda: set(asyncio.run(replicas_of(broker_url, lambda t: t in want))) == want, 60,
                   what="every topic created")
        got = asyncio.run(replicas_of(broker_url, lambda t: t in want))
    finally:
        worker.stop()
    assert {t: r for t, (_, r) in got.items()} == {t: {1} for t in want}
    text = log.read_text()
    assert "warning: SLAPROC_REPLICATION_FACTOR=3 but the cluster has 1 broker: topics are created with " \
           "replication factor 1" in text, text[-2000:]


def test_existing_topic_with_another_partition_count_stops_the_worker(broker_url, topic_prefix, tmp_path):
    asyncio.run(create_topics(broker_url, [topic_prefix + "sla.ticket-events"], PARTITIONS))
    asyncio.run(create_topics(broker_url, [topic_prefix + "sla.monitoring-events"], 2))
    env = {**os.environ, "SLAPROC_BROKER": broker_url, "SLAPROC_TOPIC_PREFIX": topic_prefix,
           "SLAPROC_PARTITIONS": str(PARTITIONS), "SLAPROC_DATA_DIR": str(tmp_path / "d"), "SLAPROC_WEB_ENABLED": "false"}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "streams.worker"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [
        f"slaproc worker: SLAPROC_PARTITIONS: topic '{topic_prefix}sla.monitoring-events' has 2 partitions, the "
        f"worker uses {PARTITIONS}; co-partitioned topics must have equal counts (set SLAPROC_PARTITIONS=2, or "
        f"recreate the topic)"]
    assert time.monotonic() - started < 15


def test_changelog_of_another_partition_count_stops_the_worker(broker_url, topic_prefix, tmp_path):
    """A worker restarted with another SLAPROC_PARTITIONS than its state was written with."""
    app_id = f"slaproc-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(broker_url, [f"{app_id}-tickets-changelog"], 4))
    env = {**os.environ, "SLAPROC_BROKER": broker_url, "SLAPROC_TOPIC_PREFIX": topic_prefix, "SLAPROC_APP_ID": app_id,
           "SLAPROC_PARTITIONS": str(PARTITIONS), "SLAPROC_DATA_DIR": str(tmp_path / "d"), "SLAPROC_WEB_ENABLED": "false"}
    proc = subprocess.run([sys.executable, "-m", "streams.worker"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"slaproc worker: SLAPROC_PARTITIONS: topic '{app_id}-tickets-changelog' has 4 partitions")
