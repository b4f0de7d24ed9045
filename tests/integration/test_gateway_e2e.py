"""End to end on the embedded broker (SPEC §13): webhook bodies posted to `slaproc gateway` ->
`slaproc worker` -> outputs, with the figures computed by hand; and the same bodies through
`slaproc convert` + `slaproc replay` reach the same net outcome.

Scenario (tests/fixtures/webhooks/README.md), March 2026 = 44,640 min, Vectorize Pro 99.5 %:
A 03-10 10:00-13:00Z = 180 min, B 03-20 08:00:00.25-09:30:00.25Z = 90 min (only its resolved
notification arrives), P partial (not downtime), D filtered out by `match` -> downtime 270 min,
uptime 100 - 270/44,640 x 100 = 99.3952 -> 99.40 < 99.50, not met; threshold 223.2 min, excess
46.8 min, refund 46.8/44,640 x 1,000.00 = 1.0484 -> 1.05 USD. Zendesk ticket 5158 (customer nx,
Neptune Extended, URGENT -> critical: first response 2 h calendar) opened Tue 03-03 10:00Z; the
first public staff reply is at 13:00Z -> `sla.breached` first_response due 12:00Z. Jira SD-42
(Northwind -> nx, Highest -> critical) opened 10:00Z, the agent's public comment at 11:00Z
(12:00+01:00) -> `sla.met` first_response after 60 min.

Time is pinned: the worker runs without its own timer and is ticked to 2026-04-01T02:00:30Z
(partition time 02:00:00Z, past March's close at 01:00Z); replay uses --until 02:00:00Z.
Bodies are posted in an order in which every native event is valid on arrival (no reliance on
SPEC §10 parking), though A's resolved notification comes before its firing one; duplicates (a
re-sent notification, a redelivered Zendesk event), an unsigned and an unmappable body are included.
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest

from streams.cli import main as slaproc
from streams.testing.gateway_process import GatewayProcess
from streams.testing.harness import collect, net_outcome
from tests.integration.test_gateway import FIXTURES, MAPPING, SECRETS, auth, fixture, post, zendesk_headers
from tests.integration.test_stream_equals_replay import (LATENESS, PARTITIONS, load_contracts, new_app,
                                                         replay_outputs, run_until_final)

pytestmark = pytest.mark.broker

CONTRACTS = FIXTURES / "contracts.yaml"
AT = datetime(2026, 4, 1, 2, 0, 30, tzinfo=timezone.utc)
def convert_time(source: str, name: str) -> str:
    """The occurred_at of the (first) event a fixture body converts to."""
    from streams.gateway.config import load_mapping
    from streams.gateway.mapping import convert

    return convert(source, fixture(name), load_mapping(MAPPING)).events[0].event["occurred_at"]


# Out of order: A's resolved notification before its firing one (a resolved body carries the
# start too, so every native event is still valid on arrival), then the firing one twice.
ALERTMANAGER = ["alertmanager_resolved.json", "alertmanager_firing.json", "alertmanager_b_resolved_only.json",
                "alertmanager_firing.json", "alertmanager_partial_resolved.json"]
ZENDESK = ["zendesk_ticket_created.json", "zendesk_comment_customer.json", "zendesk_comment_private.json",
           "zendesk_comment_public.json", "zendesk_comment_public.json", "zendesk_status_solved.json"]
# Jira SD-42 (Northwind -> nx, Highest -> critical) opened 10:00Z, agent's public reply 11:00Z: met.
JIRA = ["jira_issue_created.json", "jira_comment_customer.json", "jira_comment_internal.json",
        "jira_comment_agent.json", "jira_comment_agent.json", "jira_issue_updated_waiting.json",
        "jira_issue_updated_resolved.json"]
# Both tickets' bodies merged in time order: the two tickets may share a partition, and without
# SPEC §10 (being built) an event older than its partition's time is judged late.
TICKETS = sorted([("zendesk", n) for n in ZENDESK] + [("jira", n) for n in JIRA],
                 key=lambda sn: (convert_time(*sn), sn[0]))


async def post_all(url: str) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as s:
        for name in ALERTMANAGER:
            statuses.append((await post(s, url + "/v1/alertmanager", fixture(name), auth("alertmanager")))[0])
        for source, name in TICKETS:
            body = fixture(name)
            if source == "zendesk":
                statuses.append((await post(s, url + "/v1/zendesk", body, zendesk_headers(body)))[0])
            else:
                jira_url = url + "/v1/jira?token=" + SECRETS["SLAPROC_GATEWAY_JIRA_TOKEN"]
                statuses.append((await post(s, jira_url, body, {}))[0])
        # refused and unmappable bodies change nothing downstream
        body = fixture("zendesk_status_hold.json")
        statuses.append((await post(s, url + "/v1/zendesk", body, {}))[0])
        body = fixture("zendesk_created_no_org.json")
        statuses.append((await post(s, url + "/v1/zendesk", body, zendesk_headers(body)))[0])
    return statuses


def converted(tmp_path: Path, capfd) -> Path:
    """The same bodies through `slaproc convert`, one file per source, concatenated."""
    lines = []
    for source, names in (("alertmanager", ALERTMANAGER), ("zendesk", ZENDESK), ("jira", JIRA)):
        payloads = tmp_path / f"{source}.jsonl"
        payloads.write_bytes(b"".join(fixture(n) + b"\n" for n in names))
        assert slaproc(["convert", "--from", source, "--mapping", str(MAPPING), "-q", str(payloads)]) == 0
        lines.append(capfd.readouterr().out)
    events = tmp_path / "converted.jsonl"
    events.write_text("".join(lines))
    return events


def test_webhooks_through_gateway_and_worker_give_the_hand_computed_outcome(broker_url, tmp_path, capfd):
    app = new_app(tmp_path, broker_url)
    gateway = None
    try:
        worker = app.start()
        asyncio.run(load_contracts(app, CONTRACTS, [worker.url]))
        gateway = GatewayProcess(broker_url, app.prefix, MAPPING, partitions=PARTITIONS, secrets=SECRETS,
                                 log_path=tmp_path / "gateway.log").start()
        statuses = asyncio.run(post_all(gateway.url))
        assert statuses == [200] * 18 + [401, 422], statuses
        run_until_final(app, [worker], AT)
        stream = asyncio.run(collect(broker_url, app.prefix, quiet_for=3))
    finally:
        if gateway:
            gateway.stop()
        app.stop_all()

    assert [o for o in stream if o["type"] == "dead_letter"] == [], app.logs()
    months = [o for o in stream if o["type"] == "uptime.month_closed"]
    assert [(m["customer_id"], m["service_id"], m["month"], m["total_minutes"], m["downtime_minutes"],
             m["uptime_percent"], m["met"]) for m in months] == [("vp", "api-prod", "2026-03", 44640, 270, "99.40", False)]
    refunds = [o for o in stream if o["type"] == "refund.eligible"]
    assert [(r["threshold_minutes"], r["excess_minutes"], r["refund_amount"], r["currency"]) for r in refunds] == [
        (223.2, 46.8, "1.05", "USD")]
    breaches = [o for o in stream if o["type"] == "sla.breached" and o["metric"] == "first_response"]
    assert [(b["ticket_id"], b["customer_id"], b["priority"], b["due_at"], b["occurred_at"]) for b in breaches] == [
        ("5158", "nx", "critical", "2026-03-03T12:00:00Z", "2026-03-03T12:00:00Z")]

    met = [o for o in stream if o["type"] == "sla.met" and o["ticket_id"] == "SD-42" and o["metric"] == "first_response"]
    assert [(m["customer_id"], m["priority"], m["started_at"], m["met_at"], m["elapsed_minutes"]) for m in met] == [
        ("nx", "critical", "2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z", 60)]
    assert not [o for o in stream if o["type"] == "sla.breached" and o["ticket_id"] == "SD-42"
                and o["metric"] == "first_response"]

    # the offline twin: convert + replay reaches the same net outcome
    replay = [json.loads(x) for x in replay_outputs(converted(tmp_path, capfd), CONTRACTS,
                                                    AT - timedelta(seconds=LATENESS))]
    assert net_outcome(stream) == net_outcome(replay)
    assert net_outcome(stream)["standing_breaches"]
