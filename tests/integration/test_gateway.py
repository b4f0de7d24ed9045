"""`slaproc gateway` as a process on the embedded broker: what reaches the topics (SPEC §13).

The raw body of every authenticated request is on `<prefix>sla.raw-webhooks` (key = source,
outcome in a header), the events on their input topics with the keys SPEC §1 gives them,
in the partitions the worker reads them from. A refused request (401, 413) leaves nothing.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from streams.app import partition_for_key
from streams.testing.broker import bootstrap_servers
from streams.testing.gateway_process import GatewayProcess

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "webhooks"
MAPPING = REPO / "samples" / "mapping.yaml"
SECRETS = {"SLAPROC_GATEWAY_EVENTS_TOKEN": "events-token-0123456789",
           "SLAPROC_GATEWAY_ALERTMANAGER_TOKEN": "am-token-0123456789",
           "SLAPROC_GATEWAY_ZENDESK_SECRET": "zendesk-secret-0123456789",
           "SLAPROC_GATEWAY_JIRA_TOKEN": "jira-token-0123456789"}


def fixture(name: str) -> bytes:
    return json.dumps(json.loads((FIXTURES / name).read_bytes())).encode()


def zendesk_headers(body: bytes, stamp: str | None = None) -> dict[str, str]:
    """Signed as Zendesk signs: base64 HMAC-SHA256 of timestamp + body; the timestamp is now (the
    gateway checks it against its wall clock)."""
    stamp = stamp or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    secret = SECRETS["SLAPROC_GATEWAY_ZENDESK_SECRET"].encode()
    signature = base64.b64encode(hmac.new(secret, stamp.encode() + body, hashlib.sha256).digest()).decode()
    return {"X-Zendesk-Webhook-Signature": signature, "X-Zendesk-Webhook-Signature-Timestamp": stamp}


def auth(source: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + SECRETS[f"SLAPROC_GATEWAY_{source.upper()}_TOKEN"]}


async def post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with session.post(url, data=body, headers=headers) as r:
        return r.status, await r.json()


async def consume(broker_url: str, topics: list[str], expect: int, timeout: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap_servers(broker_url),
                                auto_offset_reset="earliest", group_id=None, enable_auto_commit=False)
    await consumer.start()
    out: list = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(out) < expect:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                out += messages
        # and a moment more: nothing beyond what was expected
        for messages in (await consumer.getmany(timeout_ms=1000)).values():
            out += messages
    finally:
        await consumer.stop()
    return out


def test_gateway_on_the_broker_keeps_raw_bodies_and_sends_keyed_events(broker_url, topic_prefix, tmp_path):
    gateway = GatewayProcess(broker_url, topic_prefix, MAPPING, partitions=3, secrets=SECRETS,
                             log_path=tmp_path / "gateway.log").start()
    try:
        async def scenario() -> list[tuple[int, dict]]:
            async with aiohttp.ClientSession() as s:
                am = fixture("alertmanager_firing.json")
                zd = fixture("zendesk_ticket_created.json")
                bad = fixture("zendesk_created_no_org.json")
                jira = fixture("jira_issue_created.json")
                return [
                    await post(s, gateway.url + "/v1/alertmanager", am, auth("alertmanager")),
                    await post(s, gateway.url + "/v1/zendesk", zd, {}),                          # unsigned
                    await post(s, gateway.url + "/v1/zendesk", zd, zendesk_headers(b"other")),   # mis-signed
                    await post(s, gateway.url + "/v1/zendesk", zd, zendesk_headers(zd)),
                    await post(s, gateway.url + "/v1/zendesk", bad, zendesk_headers(bad)),       # unmappable
                    await post(s, gateway.url + "/v1/jira?token=" + SECRETS["SLAPROC_GATEWAY_JIRA_TOKEN"], jira, {}),
                    await post(s, gateway.url + "/v1/alertmanager", b"{" + b" " * (1024 * 1024 + 10) + b"}",
                               auth("alertmanager")),                                             # oversized
                ]
        answers = asyncio.run(scenario())
        assert [status for status, _ in answers] == [200, 401, 401, 200, 422, 200, 413], answers
        raw = asyncio.run(consume(broker_url, [topic_prefix + "sla.raw-webhooks"], expect=4))
        monitoring = asyncio.run(consume(broker_url, [topic_prefix + "sla.monitoring-events"], expect=2))
        tickets = asyncio.run(consume(broker_url, [topic_prefix + "sla.ticket-events"], expect=2))
    finally:
        gateway.stop()
    assert sorted((m.key, dict(m.headers)["slaproc-outcome"]) for m in raw) == [
        (b"alertmanager", b"accepted"), (b"jira", b"accepted"), (b"zendesk", b"accepted"), (b"zendesk", b"unmappable")]
    assert {m.value for m in raw} >= {fixture("zendesk_created_no_org.json"), fixture("alertmanager_firing.json")}
    assert [json.loads(m.value)["event_id"] for m in monitoring] == answers[0][1]["events"]
    assert {(m.key, m.partition) for m in monitoring} == {(b"api-prod", partition_for_key("api-prod", 3))}
    assert sorted((m.key, m.partition, json.loads(m.value)["type"]) for m in tickets) == sorted([
        (b"5158", partition_for_key("5158", 3), "ticket.opened"),
        (b"SD-42", partition_for_key("SD-42", 3), "ticket.opened")])


def test_gateway_refuses_a_bad_mapping_or_setting_at_start(broker_url, topic_prefix, tmp_path):
    bad = tmp_path / "mapping.yaml"
    bad.write_text("zendesk: {customer_feld: organization_id}\n")
    with pytest.raises(RuntimeError, match="did you mean 'customer_field'"):
        GatewayProcess(broker_url, topic_prefix, bad, log_path=tmp_path / "g1.log").start()
    with pytest.raises(RuntimeError, match="SLAPROC_GATEWAY_ZENDESK_SECRETS: unknown setting; did you mean"):
        GatewayProcess(broker_url, topic_prefix, MAPPING, log_path=tmp_path / "g2.log",
                       extra_env={"SLAPROC_GATEWAY_ZENDESK_SECRETS": "x" * 20}).start()
