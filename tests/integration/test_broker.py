"""The embedded Tansu broker: lifecycle (never leaves a process) and topic creation."""

from __future__ import annotations

import asyncio
import os

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.testing.broker import BrokerError, EmbeddedBroker, bootstrap_servers, create_topics

pytestmark = pytest.mark.broker


def _process_group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's group with our id
        return True
    return True


def test_bootstrap_servers_accepts_faust_and_plain_forms():
    assert bootstrap_servers("kafka://127.0.0.1:9092") == "127.0.0.1:9092"
    assert bootstrap_servers("kafka://a:1;kafka://b:2") == "a:1,b:2"
    assert bootstrap_servers("a:1,b:2") == "a:1,b:2"
    with pytest.raises(ValueError):
        bootstrap_servers("kafka://")


async def test_broker_serves_kafka_and_stop_leaves_no_process():
    broker = EmbeddedBroker()
    await broker.astart()
    pid = broker.pid
    try:
        assert broker.url == f"kafka://127.0.0.1:{broker.port}"
        assert await create_topics(broker.url, ["roundtrip"], partitions=2) == ["roundtrip"]
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait("roundtrip", b"hello", key=b"k", partition=1)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition("roundtrip", 1)
            consumer.assign([tp])
            batch = await consumer.getmany(tp, timeout_ms=5000)
            assert [(m.key, m.value) for m in batch[tp]] == [(b"k", b"hello")]
        finally:
            await consumer.stop()
        assert _process_group_alive(pid)
    finally:
        broker.stop()
    assert broker.pid is None
    assert not _process_group_alive(pid)
    broker.stop()  # idempotent


def test_sync_context_manager_stops_on_exception():
    with pytest.raises(ZeroDivisionError):
        with EmbeddedBroker() as broker:
            pid = broker.pid
            assert _process_group_alive(pid)
            1 / 0  # noqa: B018 - the error that must not leak the broker
    assert not _process_group_alive(pid)


def test_stop_kills_a_broker_that_ignores_sigterm(tmp_path):
    # A stand-in "binary" that ignores SIGTERM: stop() must escalate to SIGKILL.
    fake = tmp_path / "stubborn"
    pidfile = tmp_path / "pid"
    fake.write_text(f"#!/bin/sh\ntrap '' TERM\necho $$ > {pidfile}\nwhile :; do sleep 0.1; done\n")
    fake.chmod(0o755)
    broker = EmbeddedBroker(binary=fake, ready_timeout=0.5, stop_timeout=0.5)
    with pytest.raises(BrokerError, match="not ready"):
        broker.start()  # never answers metadata requests
    assert broker.process is None
    assert not _process_group_alive(int(pidfile.read_text()))


def test_dead_binary_is_reported_with_its_output(tmp_path):
    fake = tmp_path / "crashing"
    fake.write_text("#!/bin/sh\necho 'boom: cannot bind' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(BrokerError, match="exited with 3.*boom: cannot bind"):
        EmbeddedBroker(binary=fake).start()


async def test_create_topics_is_idempotent_and_accepts_compaction(broker_url, topic_prefix):
    names = [topic_prefix + "a", topic_prefix + "b"]
    created = await create_topics(broker_url, names, partitions=3,
                                  config={"cleanup.policy": "compact"})
    assert sorted(created) == sorted(names)
    assert await create_topics(broker_url, names, partitions=3) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(broker_url))
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    assert {d["topic"]: len(d["partitions"]) for d in described} == {n: 3 for n in names}


async def test_async_context_manager_stops_when_cancelled():
    started = asyncio.Event()
    pids = []

    async def run():
        async with EmbeddedBroker() as broker:
            pids.append(broker.pid)
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(run())
    await asyncio.wait_for(started.wait(), 20)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _process_group_alive(pids[0])


def test_broker_dies_with_a_killed_parent():
    # SIGKILL leaves no chance for finally blocks; PR_SET_PDEATHSIG must take the broker down.
    import subprocess
    import sys
    import time

    code = ("from streams.testing.broker import EmbeddedBroker\n"
            "import time\n"
            "b = EmbeddedBroker().start()\n"
            "print(b.pid, flush=True)\n"
            "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
        assert _process_group_alive(pid)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 5
        while _process_group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _process_group_alive(pid)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
