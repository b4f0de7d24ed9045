"""`slaproc gateway` HTTP behaviour against a recording sink (no broker): what each kind of
request gets (SPEC §13) and what reaches the topics. The same paths against the embedded
broker: tests/integration/test_gateway.py."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from streams.gateway.config import load_mapping
from streams.gateway.server import Gateway, build_app
from streams.gateway.settings import GatewaySettings, SettingsError

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "webhooks"
MAPPING = load_mapping(REPO / "samples" / "mapping.yaml")
NOW = 1_780_000_000.0                          # the gateway's clock in these tests (pinned)
ZD_STAMP = "2026-05-28T20:26:40Z"              # = NOW
SECRETS = dict(events_token="events-token-0123456789", alertmanager_token="am-token-0123456789",
               zendesk_secret="zendesk-secret-0123456789", jira_token="jira-token-0123456789")


class RecordingSink:
    def __init__(self) -> None:
        self.records: list = []
        self.fail: Exception | None = None
        self.delay = 0.0

    async def send_all(self, records) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise self.fail
        self.records += records


def fixture(name: str) -> bytes:
    return json.dumps(json.loads((FIXTURES / name).read_bytes())).encode()


def zendesk_headers(body: bytes, secret: str = SECRETS["zendesk_secret"], stamp: str = ZD_STAMP) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), stamp.encode() + body, hashlib.sha256).digest()).decode()
    return {"X-Zendesk-Webhook-Signature": signature, "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "Content-Type": "application/json"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def client(sink):
    settings = GatewaySettings(topic_prefix="p.", max_body_bytes=64 * 1024, send_timeout=0.5, **SECRETS)
    gateway = Gateway(settings, MAPPING, sink, clock=lambda: NOW)
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1")) as c:
        c.gateway = gateway
        yield c


async def metrics(client) -> dict:
    text = await (await client.get("/metrics")).text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


# --------------------------------------------------------------------------- accepted


async def test_alertmanager_accepted_raw_body_first_then_events_keyed_by_service(client, sink):
    body = fixture("alertmanager_firing.json")
    r = await client.post("/v1/alertmanager", data=body, headers=bearer(SECRETS["alertmanager_token"]))
    answer = await r.json()
    assert r.status == 200 and answer["outcome"] == "accepted"
    assert answer["ignored"] == ["alerts[2]: labels do not match alertmanager.match"]
    raw, *events = sink.records
    assert (raw.topic, raw.key, raw.value) == ("p.sla.raw-webhooks", b"alertmanager", body)
    assert dict(raw.headers)["slaproc-outcome"] == b"accepted"
    assert [(e.topic, e.key) for e in events] == [("p.sla.monitoring-events", b"api-prod")] * 2
    assert [json.loads(e.value)["event_id"] for e in events] == answer["events"]
    # the re-sent notification: the same ids (the worker drops the copies)
    again = await (await client.post("/v1/alertmanager", data=body, headers=bearer(SECRETS["alertmanager_token"]))).json()
    assert again["events"] == answer["events"]
    m = await metrics(client)
    assert m[("slaproc_gateway_requests_total", (("outcome", "accepted"), ("source", "alertmanager")))] == 2
    assert m[("slaproc_gateway_events_total", (("source", "alertmanager"), ("type", "outage.started")))] == 4
    assert m[("slaproc_gateway_ignored_total", (("source", "alertmanager"),))] == 2


async def test_zendesk_signed_body_accepted_and_keyed_by_ticket(client, sink):
    body = fixture("zendesk_ticket_created.json")
    r = await client.post("/v1/zendesk", data=body, headers=zendesk_headers(body))
    assert r.status == 200, await r.text()
    assert [(x.topic, x.key) for x in sink.records] == [("p.sla.raw-webhooks", b"zendesk"),
                                                         ("p.sla.ticket-events", b"5158")]


async def test_jira_token_in_query_bearer_or_hub_signature(client, sink):
    body = fixture("jira_issue_created.json")
    token = SECRETS["jira_token"]
    assert (await client.post(f"/v1/jira?token={token}", data=body)).status == 200
    assert (await client.post("/v1/jira", data=body, headers=bearer(token))).status == 200
    hub = "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
    assert (await client.post("/v1/jira", data=body, headers={"X-Hub-Signature": hub})).status == 200
    assert (await client.post("/v1/jira", data=body, headers={"X-Hub-Signature": "sha256=00"})).status == 401
    assert (await client.post("/v1/jira?token=wrong-token-0123456789", data=body)).status == 401


async def test_native_events_one_object_or_lines(client, sink):
    line = b'{"event_id":"n1","type":"ticket.resolved","occurred_at":"2026-03-03T10:00:00Z","ticket_id":"T9"}'
    r = await client.post("/v1/events", data=line + b"\n" + line.replace(b"n1", b"n2"),
                          headers=bearer(SECRETS["events_token"]))
    assert r.status == 200 and (await r.json())["events"] == ["n1", "n2"]
    assert [x.value for x in sink.records[1:]] == [line, line.replace(b"n1", b"n2")]
    r = await client.post("/v1/events", data=line + b"\n{}", headers=bearer(SECRETS["events_token"]))
    assert r.status == 422 and (await r.json())["reason"].startswith("line 2: unknown_type")


# --------------------------------------------------------------------------- refused


@pytest.mark.parametrize("headers", [
    {},                                                                         # unsigned
    {"X-Zendesk-Webhook-Signature": "bm9wZQ==", "X-Zendesk-Webhook-Signature-Timestamp": ZD_STAMP},  # mis-signed
    "wrong-secret", "stale", "other-body",
])
async def test_zendesk_bad_signatures_get_401_and_nothing_is_sent(client, sink, headers):
    body = fixture("zendesk_ticket_created.json")
    if headers == "wrong-secret":
        headers = zendesk_headers(body, secret="not-the-secret-0123456789")
    elif headers == "stale":          # a captured request replayed 10 minutes later (max skew 300 s)
        headers = zendesk_headers(body, stamp="2026-05-28T20:16:40Z")
    elif headers == "other-body":
        headers = zendesk_headers(fixture("zendesk_status_solved.json"))
    r = await client.post("/v1/zendesk", data=body, headers=headers)
    assert r.status == 401 and (await r.json())["outcome"] == "unauthorized"
    assert sink.records == []


@pytest.mark.parametrize("headers", [{}, bearer("wrong-token-0123456789"), {"Authorization": "Basic eDp5"}])
async def test_bearer_endpoints_refuse_missing_or_wrong_tokens(client, sink, headers):
    for path, body in (("/v1/alertmanager", fixture("alertmanager_firing.json")), ("/v1/events", b"{}")):
        r = await client.post(path, data=body, headers=headers)
        assert r.status == 401 and "bearer token" in (await r.json())["reason"]
    assert sink.records == []


async def test_one_bad_alert_is_rejected_alone_the_rest_accepted_and_the_body_kept_as_partial(client, sink):
    """Review ingest.md F2: Alertmanager never retries a 4xx; a 422 for the group lost its good alerts."""
    payload = json.loads(fixture("alertmanager_firing.json"))
    payload["alerts"][1]["labels"]["sla_scope"] = "degraded"
    body = json.dumps(payload).encode()
    r = await client.post("/v1/alertmanager", data=body, headers=bearer(SECRETS["alertmanager_token"]))
    answer = await r.json()
    assert r.status == 200 and answer["outcome"] == "partial"
    assert answer["rejected"] == ["alerts[1].labels.sla_scope: 'degraded' is neither 'all_users' nor 'partial'"]
    raw, *events = sink.records
    assert raw.value == body and dict(raw.headers)["slaproc-outcome"] == b"partial"
    assert dict(raw.headers)["slaproc-reason"].startswith(b"alerts[1].labels.sla_scope: 'degraded'")
    assert [json.loads(e.value)["event_id"] for e in events] == answer["events"] and len(events) == 1
    m = await metrics(client)
    assert m[("slaproc_gateway_requests_total", (("outcome", "partial"), ("source", "alertmanager")))] == 1
    assert m[("slaproc_gateway_rejected_parts_total", (("source", "alertmanager"),))] == 1


async def test_unmappable_gets_422_with_the_reason_and_the_raw_body_is_kept(client, sink):
    body = fixture("zendesk_created_no_org.json")
    r = await client.post("/v1/zendesk", data=body, headers=zendesk_headers(body))
    answer = await r.json()
    assert r.status == 422 and answer["outcome"] == "unmappable"
    assert answer["reason"].startswith("detail.organization_id: missing")
    assert answer["kept_on"] == "p.sla.raw-webhooks"
    [raw] = sink.records
    assert raw.value == body and dict(raw.headers)["slaproc-outcome"] == b"unmappable"
    assert dict(raw.headers)["slaproc-reason"].startswith(b"detail.organization_id: missing")


async def test_not_json_gets_400_and_is_kept(client, sink):
    r = await client.post("/v1/alertmanager", data=b"alerts=1", headers=bearer(SECRETS["alertmanager_token"]))
    assert r.status == 400 and (await r.json())["reason"].startswith("not valid JSON")
    assert [dict(x.headers)["slaproc-outcome"] for x in sink.records] == [b"bad_request"]


async def test_oversized_bodies_get_413_with_or_without_content_length(client, sink):
    big = b'{"alerts": [], "pad": "' + b"x" * (70 * 1024) + b'"}'
    r = await client.post("/v1/alertmanager", data=big, headers=bearer(SECRETS["alertmanager_token"]))
    assert r.status == 413 and (await r.json())["outcome"] == "too_large"

    async def chunks():
        for _ in range(70):
            yield b"x" * 1024
    r = await client.post("/v1/alertmanager", data=chunks(), headers=bearer(SECRETS["alertmanager_token"]))
    assert r.status == 413
    assert sink.records == []


async def test_broker_failure_or_timeout_gets_503_so_the_sender_retries(client, sink):
    body = fixture("alertmanager_firing.json")
    sink.fail = RuntimeError("KafkaTimeoutError")
    r = await client.post("/v1/alertmanager", data=body, headers=bearer(SECRETS["alertmanager_token"]))
    assert r.status == 503 and (await r.json())["outcome"] == "unavailable"
    # Zendesk retries a 503 only with a Retry-After under a minute (its webhook retry rules)
    assert 0 < int(r.headers["Retry-After"]) < 60
    sink.fail, sink.delay = None, 1.0     # over the 0.5 s send timeout
    r = await client.post("/v1/alertmanager", data=body, headers=bearer(SECRETS["alertmanager_token"]))
    assert r.status == 503 and 0 < int(r.headers["Retry-After"]) < 60


async def test_a_signature_header_that_is_not_utf8_is_a_401_not_a_500(client, sink):
    body = fixture("zendesk_ticket_created.json")
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /v1/zendesk HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 b"X-Zendesk-Webhook-Signature: \xff\xfe\r\n"  # raw bytes, not UTF-8 (a client sends what it likes)
                 + f"X-Zendesk-Webhook-Signature-Timestamp: {ZD_STAMP}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                 + body)
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"401" and sink.records == []
    m = await metrics(client)
    assert m.get(("slaproc_gateway_requests_total", (("outcome", "accepted"), ("source", "zendesk")))) == 0


@pytest.mark.parametrize("path, headers", [
    ("/v1/alertmanager", "Authorization: Bearer wrong-token-0123456789\r\n"),
    ("/v1/events", ""),
    ("/v1/jira?token=wrong-token-0123456789", ""),
    ("/v1/zendesk", "X-Zendesk-Webhook-Signature: c2ln\r\n"),  # no timestamp header
    ("/v1/zendesk", "X-Zendesk-Webhook-Signature: c2ln\r\nX-Zendesk-Webhook-Signature-Timestamp: 2020-01-01T00:00:00Z\r\n"),
])
async def test_a_sender_without_credentials_is_refused_before_its_body_is_read(client, sink, path, headers):
    """The token (or a signature's headers and timestamp) is checked on the headers: an
    unauthenticated sender announcing a large body gets its 401 at once, without the gateway
    waiting for (and buffering) the body. Before, it waited for the body (here it never comes:
    the 30 s body timeout)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}"
                 f"Content-Length: 900000\r\n\r\n".encode() + b"{")
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status_line.split()[1] == b"401" and sink.records == []


async def test_a_jira_comment_sent_as_issue_updated_is_the_reply(client, sink):
    """Jira's "Issue updated" webhook fires for each comment too (no changelog), with the whole issue:
    a new comment is the reply (review of 2026-12-06: Jira Cloud's comment_created has no reporter,
    Server's no issue); an edited one changes nothing (200, ignored)."""
    payload = json.loads(fixture("jira_issue_created.json"))
    payload.update(webhookEvent="jira:issue_updated", issue_event_type_name="issue_commented",
                   comment={"id": "10001", "body": "hello", "created": "2026-03-03T11:30:00.000+0100",
                            "author": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "accountType": "atlassian"}})
    r = await client.post(f"/v1/jira?token={SECRETS['jira_token']}", data=json.dumps(payload).encode())
    assert r.status == 200, await r.text()
    answer = await r.json()
    assert len(answer["events"]) == 1
    assert [json.loads(x.value)["type"] for x in sink.records[1:]] == ["ticket.replied"]  # after the raw copy
    payload["issue_event_type_name"] = "issue_comment_edited"
    r = await client.post(f"/v1/jira?token={SECRETS['jira_token']}", data=json.dumps(payload).encode())
    answer = await r.json()
    assert r.status == 200 and answer["events"] == [] and "edited or removed" in answer["ignored"][0]
    payload.pop("issue_event_type_name")  # an update without a changelog that is no comment: still unmappable
    r = await client.post(f"/v1/jira?token={SECRETS['jira_token']}", data=json.dumps(payload).encode())
    assert r.status == 422 and "changelog" in (await r.json())["reason"]


async def test_native_contracts_are_checked_and_keyed_by_their_terms(client, sink):
    contract = {"event_id": "c1", "type": "contract.upserted", "occurred_at": "2026-03-01T00:00:00Z",
                "customer_id": "acme", "policy": "neptune", "plan": "basic", "timezone": "UTC",
                "effective_from": "2026-04-01T00:00:00Z"}
    r = await client.post("/v1/events", data=json.dumps(contract).encode(), headers=bearer(SECRETS["events_token"]))
    assert r.status == 200, await r.text()
    assert [(x.topic, x.key) for x in sink.records[1:]] == [("p.sla.contracts", b"acme@2026-04-01T00:00:00+00:00")]
    bad = {**contract, "event_id": "c2", "plan": "platinum"}  # the worker would dead-letter it as invalid_contract
    r = await client.post("/v1/events", data=json.dumps(bad).encode(), headers=bearer(SECRETS["events_token"]))
    assert r.status == 422 and "invalid_contract" in (await r.json())["reason"] and "platinum" in (await r.json())["reason"]


async def test_an_endpoint_without_its_secret_or_mapping_section_is_off_and_says_why(sink):
    from streams.gateway.config import parse_mapping

    settings = GatewaySettings(alertmanager_token=SECRETS["alertmanager_token"], jira_token=SECRETS["jira_token"])
    gateway = Gateway(settings, parse_mapping({"alertmanager": {"service_label": "service"}}), sink)
    async with TestClient(TestServer(build_app(gateway), host="127.0.0.1")) as client:
        r = await client.post("/v1/zendesk", data=b"{}")
        assert r.status == 404 and "SLAPROC_GATEWAY_ZENDESK_SECRET" in (await r.json())["reason"]
        r = await client.post("/v1/jira", data=b"{}")
        assert r.status == 404 and "no jira section" in (await r.json())["reason"]
        health = await (await client.get("/health")).json()
        assert health["status"] == "ok" and health["endpoints"]["alertmanager"] == "enabled"
        assert health["endpoints"]["events"].startswith("disabled")


async def test_truncated_alerts_counted_and_logged(client, sink, caplog):
    with caplog.at_level(logging.WARNING, logger="slaproc.gateway"):
        r = await client.post("/v1/alertmanager", data=fixture("alertmanager_truncated.json"),
                              headers=bearer(SECRETS["alertmanager_token"]))
    assert r.status == 200 and (await r.json())["truncated_alerts"] == 2
    assert (await metrics(client))[("slaproc_gateway_truncated_alerts_total", ())] == 2
    assert "2 alert(s) were dropped upstream" in caplog.text and "max_alerts: 0" in caplog.text


async def test_metrics_labels_are_bounded(client):
    await client.post("/v1/zendesk", data=b"{}")
    m = await metrics(client)
    sources = {dict(labels).get("source") for (name, labels) in m if name.startswith("slaproc_gateway_")}
    assert sources <= {None, "events", "alertmanager", "zendesk", "jira"}
    assert m[("slaproc_gateway_requests_total", (("outcome", "unauthorized"), ("source", "zendesk")))] == 1
    assert m[("slaproc_gateway_request_seconds_count", (("source", "zendesk"),))] == 1


# --------------------------------------------------------------------------- settings


def test_settings_from_env_files_and_typos(tmp_path):
    secret = tmp_path / "zd"
    secret.write_text("zendesk-secret-from-file-0123\n")
    s = GatewaySettings.from_env({"SLAPROC_BROKER": "kafka://b:9092", "SLAPROC_TOPIC_PREFIX": "stg.",
                                  "SLAPROC_GATEWAY_PORT": "9000", "SLAPROC_GATEWAY_ZENDESK_SECRET_FILE": str(secret),
                                  "SLAPROC_GATEWAY_SEND_TIMEOUT": "2s"}, port=9100)
    assert (s.broker, s.topic("sla.raw-webhooks"), s.port, s.send_timeout) == ("kafka://b:9092", "stg.sla.raw-webhooks", 9100, 2.0)
    assert s.zendesk_secret == "zendesk-secret-from-file-0123"
    assert "zendesk-secret" not in repr(s)
    with pytest.raises(SettingsError, match="SLAPROC_GATEWAY_ZENDSK_SECRET: unknown setting; did you mean "
                                            "SLAPROC_GATEWAY_ZENDESK_SECRET"):
        GatewaySettings.from_env({"SLAPROC_GATEWAY_ZENDSK_SECRET": "x" * 20})
    with pytest.raises(SettingsError, match="keep one"):
        GatewaySettings.from_env({"SLAPROC_GATEWAY_JIRA_TOKEN": "x" * 20, "SLAPROC_GATEWAY_JIRA_TOKEN_FILE": str(secret)})
    with pytest.raises(SettingsError, match="SLAPROC_GATEWAY_EVENTS_TOKEN: too short"):
        GatewaySettings.from_env({"SLAPROC_GATEWAY_EVENTS_TOKEN": "short"})
    with pytest.raises(SettingsError, match="SLAPROC_GATEWAY_PORT"):
        GatewaySettings.from_env({"SLAPROC_GATEWAY_PORT": "http"})


async def test_a_body_the_broker_refuses_as_too_large_is_a_413_not_a_503_retried_for_ever(client, sink):
    from aiokafka.errors import MessageSizeTooLargeError

    sink.fail = MessageSizeTooLargeError()
    r = await client.post("/v1/alertmanager", data=fixture("alertmanager_firing.json"),
                          headers=bearer(SECRETS["alertmanager_token"]))
    assert r.status == 413 and (await r.json())["outcome"] == "too_large"


async def test_a_body_that_trickles_in_is_given_up_after_the_read_timeout(client, sink, monkeypatch):
    import streams.gateway.server as server

    monkeypatch.setattr(server, "BODY_READ_TIMEOUT", 0.3)
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 1000\r\n"
                 b"Authorization: Bearer " + SECRETS["events_token"].encode() + b"\r\n\r\n{\"event_id\"")
    status_line = await asyncio.wait_for(reader.readline(), 10)  # the rest never comes
    writer.close()
    assert status_line.split()[1] == b"408" and sink.records == []
