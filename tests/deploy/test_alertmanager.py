"""Alertmanager configuration: amtool check-config, the routing tree (amtool's route
tester), and that the rules' severities and the inhibition fit the routes."""
from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.deploy.conftest import REPO

ALERTMANAGER_YML = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
CONFIG = yaml.safe_load(ALERTMANAGER_YML.read_text())
ALERTS = [rule for group in yaml.safe_load(
    (REPO / "deploy" / "prometheus" / "rules" / "alerts.yml").read_text())["groups"]
    for rule in group["rules"]]


@pytest.mark.prometheus
def test_amtool_check_config(amtool: str) -> None:
    result = subprocess.run([amtool, "check-config", str(ALERTMANAGER_YML)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


ROUTES = [
    # labels -> receivers notified, in order
    ({"alertname": "BindingCriticalBreach", "severity": "page", "provider": "neptune"},
     "pager,chat-neptune"),
    ({"alertname": "BindingCriticalBreach", "severity": "page", "provider": "vectorize"},
     "pager,chat-vectorize"),
    ({"alertname": "NoWorkerUp", "severity": "page", "job": "slaproc"}, "pager,chat-platform"),
    ({"alertname": "TicksStopped", "severity": "page", "instance": "worker-1:6066"},
     "pager,chat-platform"),
    ({"alertname": "AttainmentBelowTarget", "severity": "ticket", "provider": "rescale"},
     "ticket-support-ops"),
    ({"alertname": "DeadLettersAppearing", "severity": "ticket", "reason": "unknown_type"},
     "ticket-platform"),
    ({"alertname": "ConsumerLagGrowing", "severity": "ticket", "topic": "sla.ticket-events"},
     "ticket-platform"),
    ({"alertname": "SlaBreachRateHigh", "severity": "chat", "provider": "neural-magic"},
     "chat-neural-magic"),
    ({"alertname": "SlaBreachRateHigh", "severity": "chat", "provider": "rescale"}, "chat-rescale"),
    ({"alertname": "GatewayDown", "severity": "page", "component": "gateway", "job": "slaproc-gateway"},
     "pager,chat-platform"),
    ({"alertname": "GatewayRefusing", "severity": "page", "component": "gateway", "source": "zendesk",
      "outcome": "unavailable"}, "pager,chat-platform"),
    ({"alertname": "GatewayUnmappable", "severity": "ticket", "component": "gateway", "source": "jira"},
     "ticket-platform"),
    ({"alertname": "Unlabelled"}, "chat-platform"),
]


@pytest.mark.prometheus
@pytest.mark.parametrize("labels, receivers", ROUTES, ids=[",".join(f"{k}={v}" for k, v in l.items())
                                                           for l, _ in ROUTES])
def test_routing_tree(amtool: str, labels: dict, receivers: str) -> None:
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}",
         f"--verify.receivers={receivers}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_the_route_tester_can_fail(amtool: str) -> None:
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}",
         "--verify.receivers=chat-platform", "severity=page", "provider=neptune"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_every_alert_severity_has_a_route() -> None:
    routed = " ".join(m for r in CONFIG["route"]["routes"] for m in r["matchers"])
    for alert in ALERTS:
        assert alert["labels"]["severity"] in routed


def test_no_worker_up_inhibits_the_other_slaproc_alerts() -> None:
    [rule] = [r for r in CONFIG["inhibit_rules"] if r["source_matchers"] == ['alertname="NoWorkerUp"']]
    assert 'component="slaproc"' in rule["target_matchers"]
    assert 'alertname!="NoWorkerUp"' in rule["target_matchers"]
    assert not rule.get("equal")  # NoWorkerUp has no per-target labels to match on


def test_receivers_are_all_used_and_webhooks() -> None:
    def used(route: dict) -> set[str]:
        return {route["receiver"]} | set().union(*(used(r) for r in route.get("routes", [])))
    names = {r["name"] for r in CONFIG["receivers"]}
    assert used(CONFIG["route"] | {"receiver": CONFIG["route"]["receiver"]}) == names
    for receiver in CONFIG["receivers"]:
        [hook] = receiver["webhook_configs"]
        assert hook["url"] == f"http://alert-sink:8080/{receiver['name']}"


def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    """Just the matcher forms this file uses: name="v", name!="v"."""
    for matcher in matchers:
        name, op, value = re.fullmatch(r'(\w+)(!=|=)"(.*)"', matcher).groups()
        if (labels.get(name, "") == value) != (op == "="):
            return False
    return True


def test_no_worker_up_inhibits_the_worker_alerts_but_not_the_gateway_ones() -> None:
    """The gateway takes webhooks into Kafka whether or not a worker runs: a dead or refusing gateway
    while the workers are down loses input that the workers would have caught up on, so its
    alerts are no consequence of NoWorkerUp and must reach the pager."""
    [rule] = [r for r in CONFIG["inhibit_rules"] if r["source_matchers"] == ['alertname="NoWorkerUp"']]
    for alert in ALERTS:
        labels = {"alertname": alert["alert"], **alert["labels"]}
        inhibited = _matches(rule["target_matchers"], labels)
        assert inhibited == (alert["alert"] not in {"NoWorkerUp"} and alert["labels"]["component"] == "slaproc")
        if alert["alert"].startswith("Gateway"):
            assert not inhibited, alert["alert"]
    assert not any(_matches(r["target_matchers"], {"alertname": a["alert"], **a["labels"]})
                   for r in CONFIG["inhibit_rules"] for a in ALERTS if a["alert"].startswith("Gateway"))
