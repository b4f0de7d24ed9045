"""A real Alertmanager notifies the gateway through deploy/alertmanager/slaproc-gateway-receiver.yml:
the bodies it sends have the shape the fixtures were written from, and its firing and resolved
notifications become one outage with the alert's own startsAt / endsAt (SPEC §13).

Instants are derived from the test's start (an alert that began 2 h ago and ended 1 h ago)."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from streams.testing.gateway_process import GatewayProcess
from tests.deploy.conftest import require_binary
from tests.deploy.servers import http_json, run_alertmanager
from tests.integration.test_gateway import FIXTURES, MAPPING, SECRETS, consume

pytestmark = [pytest.mark.broker, pytest.mark.prometheus]

REPO = FIXTURES.parents[2]


def z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_real_alertmanager_notifications_become_one_outage(broker_url, topic_prefix, tmp_path):
    binary = require_binary("prometheus-alertmanager", "alertmanager")
    gateway = GatewayProcess(broker_url, topic_prefix, MAPPING, partitions=3, secrets=SECRETS,
                             log_path=tmp_path / "gateway.log").start()
    token_file = tmp_path / "token"
    token_file.write_text(SECRETS["SLAPROC_GATEWAY_ALERTMANAGER_TOKEN"] + "\n")
    config = yaml.safe_load((REPO / "deploy" / "alertmanager" / "slaproc-gateway-receiver.yml").read_text())
    route = config["route"]["routes"][0]
    route.update(group_wait="1s", group_interval="1s")
    hook = config["receivers"][1]["webhook_configs"][0]
    hook["url"] = gateway.url + "/v1/alertmanager"
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    started = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    ended = started + timedelta(hours=1)
    labels = {"alertname": "ApiDown", "service": "api-prod", "sla": "true", "severity": "critical"}
    try:
        with run_alertmanager(binary, config, tmp_path / "am") as am:
            http_json(am + "/api/v2/alerts", [{"labels": labels, "startsAt": z(started)}])
            firing = asyncio.run(consume(broker_url, [topic_prefix + "sla.monitoring-events"], expect=1))
            http_json(am + "/api/v2/alerts", [{"labels": labels, "startsAt": z(started), "endsAt": z(ended)}])
            both = asyncio.run(consume(broker_url, [topic_prefix + "sla.monitoring-events"], expect=3))
            raw = asyncio.run(consume(broker_url, [topic_prefix + "sla.raw-webhooks"], expect=2))
    finally:
        gateway.stop()
    assert [json.loads(m.value)["type"] for m in firing] == ["outage.started"]
    events = [json.loads(m.value) for m in both]
    assert [(e["type"], e["occurred_at"]) for e in events] == [
        ("outage.started", z(started)), ("outage.started", z(started)), ("outage.resolved", z(ended))]
    assert events[0] == events[1]                       # the resolved notification repeats the start, same id
    assert len({e["outage_id"] for e in events}) == 1
    # the real bodies hold every field the fixtures rely on
    real = [json.loads(m.value) for m in raw]
    fixture = json.loads((FIXTURES / "alertmanager_resolved.json").read_text())
    assert all(set(fixture) <= set(body) and body["version"] == "4" for body in real)
    assert all(set(fixture["alerts"][0]) <= set(a) for body in real for a in body["alerts"])
    assert [a["status"] for body in real for a in body["alerts"]] == ["firing", "resolved"]
