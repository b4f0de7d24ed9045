"""Prometheus configuration and rules: promtool checks, the promtool unit tests in
tests/deploy/promtool/, and that every alert is covered there (firing and silent) and
carries a severity and a runbook section that exists in docs/operations.md."""
from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.deploy.conftest import REPO

PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
RULES_DIR = REPO / "deploy" / "prometheus" / "rules"
UNIT_TESTS = sorted((REPO / "tests" / "deploy" / "promtool").glob("*_test.yml"))
OPERATIONS_MD = REPO / "docs" / "operations.md"

ALERTS = [rule for group in yaml.safe_load((RULES_DIR / "alerts.yml").read_text())["groups"]
          for rule in group["rules"]]
REQUIRED_ALERTS = {"SlaBreachRateHigh", "BindingCriticalBreach", "AttainmentBelowTarget",
                   "DeadLettersAppearing", "ConsumerLagGrowing", "NoWorkerUp", "TicksStopped",
                   "GatewayDown", "GatewayRefusing", "GatewayUnmappable"}


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)


@pytest.mark.prometheus
def test_promtool_check_config(promtool: str) -> None:
    result = _run([promtool, "check", "config", str(PROMETHEUS_YML)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
def test_promtool_check_rules(promtool: str) -> None:
    result = _run([promtool, "check", "rules", *map(str, sorted(RULES_DIR.glob("*.yml")))])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.prometheus
@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=[p.name for p in UNIT_TESTS])
def test_promtool_unit_tests(promtool: str, unit_test) -> None:
    result = _run([promtool, "test", "rules", str(unit_test)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_required_alerts_exist() -> None:
    assert REQUIRED_ALERTS <= {a["alert"] for a in ALERTS}


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    fires, silent = set(), set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in ALERTS}
    assert names - fires == set(), "alerts never shown to fire"
    assert names - silent == set(), "alerts never shown to stay silent"


def _github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub generates for headings: lower-case, punctuation dropped, spaces -> '-'."""
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


@pytest.mark.parametrize("alert", ALERTS, ids=[a["alert"] for a in ALERTS])
def test_alert_labels_and_annotations(alert: dict) -> None:
    labels, notes = alert.get("labels", {}), alert.get("annotations", {})
    assert labels.get("severity") in {"page", "ticket", "chat"}
    # The NoWorkerUp inhibition matches component="slaproc"; the gateway's alerts are "gateway":
    # a dead or refusing gateway loses input whether or not the workers run (test_alertmanager.py).
    assert labels.get("component") == ("gateway" if alert["alert"].startswith("Gateway") else "slaproc")
    assert notes.get("summary") and notes.get("description")
    path, _, anchor = notes.get("runbook_url", "").partition("#")
    assert path == "docs/operations.md" and anchor
    assert anchor in _github_anchors(OPERATIONS_MD.read_text()), \
        f"docs/operations.md has no section #{anchor}"


def test_the_gateway_is_scraped_by_its_own_job() -> None:
    """GatewayDown reads up{job="slaproc-gateway"}; the compose service serves /metrics on :8090."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["gateway"]
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "slaproc-gateway"]
    assert {t for c in job["static_configs"] for t in c["targets"]} == \
        {f"{compose['hostname']}:{compose['environment']['SLAPROC_GATEWAY_PORT']}"}
    assert job.get("metrics_path", "/metrics") == "/metrics"
    [down] = [a for a in ALERTS if a["alert"] == "GatewayDown"]
    assert 'job="slaproc-gateway"' in down["expr"]
