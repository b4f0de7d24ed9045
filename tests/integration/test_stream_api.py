"""The query API and /metrics of running workers (two workers: requests routed to the key's owner)."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from bench.generate import generate, write_workload
from policies.uptime import month_bounds
from streams.app import partition_for_key
from streams.testing.harness import metric_sum, partition_times, produce, scrape, wait_until
from tests.integration.test_stream_equals_replay import (LATENESS, PARTITIONS, events_in, load_contracts, new_app,
                                                         replay_outputs, run_until_final)

pytestmark = pytest.mark.broker
UTC = timezone.utc


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_query_api_and_metrics_with_two_workers(broker_url, tmp_path):
    paths = write_workload(generate(events=4_000, tickets=400, seed=11), tmp_path / "work")
    lines = paths["events"].read_bytes().splitlines()
    app = new_app(tmp_path, broker_url)
    try:
        first = app.start()
        asyncio.run(load_contracts(app, paths["contracts"], [first.url]))
        before = events_in([first.url])
        asyncio.run(produce(broker_url, app.prefix, lines))
        wait_until(lambda: events_in([first.url]) > before + 500, 60, every=0.2, what="events counted")
        second = app.start()
        at = datetime.now(UTC).replace(microsecond=0)

        def second_owns_partitions() -> bool:  # ticks until the joined worker reports its partitions
            run_until_final(app, [first, second], at)
            return bool(partition_times([second.url]))

        wait_until(second_owns_partitions, 90, every=1.0, what="the second worker owning partitions")
        run_until_final(app, [first, second], at)
        owners = {url: set(partition_times([url])) for url in (first.url, second.url)}
        replay = [json.loads(x) for x in replay_outputs(paths["events"], paths["contracts"],
                                                        at - timedelta(seconds=LATENESS))]
        # a ticket still open at the end, and a service month closed with downtime figures
        opened = [json.loads(x) for x in lines if b'"ticket.opened"' in x]
        closed = {json.loads(x)["ticket_id"] for x in lines if b'"ticket.closed"' in x}
        with_clocks = {o.get("ticket_id") for o in replay}  # Vectorize Starter tickets keep no state
        open_ids = [e["ticket_id"] for e in opened if e["ticket_id"] not in closed and e["ticket_id"] in with_clocks]
        # the newest closed month (older ones are pruned once their claim window passed)
        last = max(o["month"] for o in replay if o["type"] == "uptime.month_closed")
        first_month = min(o["month"] for o in replay if o["type"] == "uptime.month_closed")
        months = [o for o in replay if o["type"] == "uptime.month_closed" and o["month"] == last]
        month = max(months, key=lambda o: (o["downtime_minutes"], o["service_id"]))
        answers = {}
        for url in (first.url, second.url):  # each worker answers for every key (routed to the owner)
            for ticket_id in open_ids[:6]:
                answers[(url, ticket_id)] = get(f"{url}/tickets/{ticket_id}")
            answers[(url, "month")] = get(f"{url}/services/{month['service_id']}/months/{last}")
            answers[(url, "pruned-month")] = get(f"{url}/services/{month['service_id']}/months/{first_month}")
            answers[(url, "unknown-ticket")] = get(f"{url}/tickets/NO-SUCH-TICKET")
            answers[(url, "unknown-service")] = get(f"{url}/services/no-such-service/months/2026-05")
            answers[(url, "bad-month")] = get(f"{url}/services/{month['service_id']}/months/April")
        metrics = [scrape(first.url), scrape(second.url)]
    finally:
        app.stop_all()

    assert owners[first.url] and owners[second.url], f"both workers own partitions: {owners}"
    keys_on_both = {partition_for_key(t, PARTITIONS) for t in open_ids[:6]}
    assert len(keys_on_both) > 1, "the sample tickets should live on several partitions"
    for url in (first.url, second.url):
        for ticket_id in open_ids[:6]:
            status, body = answers[(url, ticket_id)]
            assert status == 200, (url, ticket_id, body, partition_for_key(ticket_id, PARTITIONS), owners)
            assert body["ticket_id"] == ticket_id and body["customer_id"]
        status, body = answers[(url, "month")]
        assert status == 200, body
        assert body["service_id"] == month["service_id"]
        start, end = month_bounds(last)
        assert body["total_minutes"] == month["total_minutes"] == (end - start).total_seconds() / 60
        assert body["downtime_minutes"] == month["downtime_minutes"]
        assert body["excluded_minutes"] == month["excluded_minutes"]
        assert first_month < last, "the workload should close several months"
        for key in ("unknown-ticket", "unknown-service", "bad-month", "pruned-month"):
            assert answers[(url, key)][0] == 404, (url, key, answers[(url, key)])

    total_in = sum(metric_sum(m, "slaproc_events_in_total") for m in metrics)
    assert total_in >= len(lines) - 20  # every decodable line counted (some twice around the rebalance)
    assert sum(metric_sum(m, "slaproc_breaches_total") for m in metrics) > 0
    assert sum(metric_sum(m, "slaproc_ticks_total") for m in metrics) >= PARTITIONS
    assert sum(metric_sum(m, "slaproc_month_closes_total") for m in metrics) > 0
