"""Live plumbing: real Prometheus scrapes a prometheus_client endpoint exposing slaproc_*
series, evaluates the project's recording and alerting rules, and the project's
Alertmanager routing delivers to an in-process webhook. Also inhibition, live.

Intervals are shortened (scrape/evaluate 1 s, group_wait 1 s); rules and routing tree
are the real files, with only the webhook URLs pointed at the test's receiver.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from tests.deploy.conftest import REPO
from tests.deploy.servers import (WebhookReceiver, http_json, query, run_alertmanager,
                                  run_prometheus, wait_until)

pytestmark = pytest.mark.prometheus

RULES = REPO / "deploy" / "prometheus" / "rules"
ALERTMANAGER_YML = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def alertmanager_config_for_test(webhook_url: str) -> dict:
    """The project's alertmanager.yml, each receiver's webhook -> <webhook_url>/<receiver>."""
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}/{receiver['name']}"

    def quicken(route: dict) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route or route is config["route"]:
                route[key] = "1s"
        for child in route.get("routes", []):
            quicken(child)

    quicken(config["route"])
    return config



@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def alertmanager(alertmanager_bin: str, hook: WebhookReceiver,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = alertmanager_config_for_test(hook.url)
    with run_alertmanager(alertmanager_bin, config, tmp_path_factory.mktemp("alertmanager")) as url:
        yield url


class FakeWorker:
    """A prometheus_client endpoint with a few of the worker's series (docs/design.md names)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.breaches = Counter("slaproc_breaches", "SLA breaches",
                                ["provider", "plan", "priority", "metric", "binding"],
                                registry=self.registry)
        self.open_clocks = Gauge("slaproc_open_clocks", "open clocks", ["provider"],
                                 registry=self.registry)
        self.last_tick = Gauge("slaproc_last_tick_timestamp_seconds", "last tick (Unix s)",
                               registry=self.registry)
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.target = f"127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def worker() -> Iterator[FakeWorker]:
    fake = FakeWorker()
    yield fake
    fake.close()


def test_scraped_breach_is_recorded_alerted_routed_and_delivered(
        prometheus_bin: str, alertmanager: str, hook: WebhookReceiver, worker: FakeWorker,
        tmp_path: Path) -> None:
    critical = worker.breaches.labels(provider="neptune", plan="extended", priority="critical",
                                      metric="first_response", binding="true")
    critical.inc(0)  # exported at 0 before the breach, as a pre-initialised worker would
    worker.open_clocks.labels(provider="neptune").set(3)
    worker.open_clocks.labels(provider="vectorize").set(4)
    worker.last_tick.set(time.time())

    # BindingCriticalBreach's `for: 2m` (a breach retracted within it does not page) compressed
    # like the intervals (15 s scrape, 30 s evaluation in production; 1 s here).
    alerts = yaml.safe_load((RULES / "alerts.yml").read_text())
    for group in alerts["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "BindingCriticalBreach":
                rule["for"] = "5s"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(alerts, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "recording.yml"), str(tmp_path / "alerts.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [
            {"targets": [alertmanager.removeprefix("http://")]}]}]},
        "scrape_configs": [{"job_name": "slaproc", "static_configs": [{"targets": [worker.target]}]}],
    }
    with run_prometheus(prometheus_bin, config, tmp_path / "prometheus") as prometheus:
        # Scraped, and the recording rules ran on the scraped series.
        wait_until(lambda: [r for r in query(prometheus, 'up{job="slaproc"}') if r["value"][1] == "1"],
                   15, "the fake worker scraped")
        recorded = wait_until(lambda: query(prometheus, "provider:slaproc_open_clocks:sum"), 15,
                              "provider:slaproc_open_clocks:sum recorded")
        assert {r["metric"]["provider"]: float(r["value"][1]) for r in recorded} == \
            {"neptune": 3.0, "vectorize": 4.0}
        assert query(prometheus, 'ALERTS{alertname="BindingCriticalBreach"}') == []

        # Let Prometheus see the counter at 0 for a couple of scrapes, then breach.
        wait_until(lambda: query(prometheus, "count_over_time(slaproc_breaches_total[1m]) >= 2"), 15,
                   "two scrapes of the breach counter")
        critical.inc()

        page = hook.wait_for(lambda n: n.path == "/pager" and n.alerts("BindingCriticalBreach", "firing"),
                             timeout=30)
        [alert] = page.alerts("BindingCriticalBreach", "firing")
        assert {k: alert["labels"][k] for k in ("severity", "provider", "plan", "priority", "metric")} == \
            {"severity": "page", "provider": "neptune", "plan": "extended", "priority": "critical",
             "metric": "first_response"}
        assert alert["annotations"]["runbook_url"] == "docs/operations.md#bindingcriticalbreach"
        assert alert["annotations"]["summary"] == \
            "Binding first_response breach on a critical neptune ticket"
        # The page route continues to the provider's chat channel.
        chat = hook.wait_for(lambda n: n.path == "/chat-neptune" and n.alerts("BindingCriticalBreach"),
                             timeout=15)
        assert chat.body["receiver"] == "chat-neptune"
        # Nothing about a healthy worker: it ticks, it is up.
        firing = {r["metric"]["alertname"] for r in query(prometheus, 'ALERTS{alertstate="firing"}')}
        assert firing == {"BindingCriticalBreach"}


def _post_alert(alertmanager: str, labels: dict, summary: str) -> None:
    http_json(f"{alertmanager}/api/v2/alerts", [{
        "labels": labels,
        "annotations": {"summary": summary},
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }])


def test_no_worker_up_inhibits_the_other_slaproc_alerts(alertmanager: str, hook: WebhookReceiver) -> None:
    _post_alert(alertmanager, {"alertname": "NoWorkerUp", "severity": "page", "component": "slaproc",
                               "job": "slaproc"}, "No slaproc worker is up")
    hook.wait_for(lambda n: n.alerts("NoWorkerUp", "firing"), timeout=15)
    _post_alert(alertmanager, {"alertname": "TicksStopped", "severity": "page", "component": "slaproc",
                               "instance": "worker-1:6066", "job": "slaproc"}, "inhibited")
    _post_alert(alertmanager, {"alertname": "DeadLettersAppearing", "severity": "ticket",
                               "component": "slaproc", "reason": "unknown_type"}, "inhibited")
    # A control alert outside the slaproc component posted after the inhibited ones:
    # once it is delivered, the inhibited ones would have been too.
    _post_alert(alertmanager, {"alertname": "ControlAlert", "severity": "chat"}, "control")
    hook.wait_for(lambda n: n.alerts("ControlAlert"), timeout=15)
    time.sleep(2)  # one more group_interval for stragglers
    delivered = {a["labels"]["alertname"] for n in hook.notifications for a in n.alerts()}
    assert "TicksStopped" not in delivered and "DeadLettersAppearing" not in delivered
    silenced = {a["labels"]["alertname"]: a["status"]["inhibitedBy"]
                for a in http_json(f"{alertmanager}/api/v2/alerts")}
    assert silenced["TicksStopped"] and silenced["DeadLettersAppearing"]
    assert silenced["NoWorkerUp"] == [] and silenced["ControlAlert"] == []
