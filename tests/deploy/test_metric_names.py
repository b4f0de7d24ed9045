"""Every metric name used by a rule or a dashboard is in the contract of docs/design.md
"Metrics" (the worker's, and the gateway's that the alerts read), a recording rule of ours, or a
standard series, with labels the contract gives it.
The contract is parsed from docs/design.md, so these tests fail when the two drift.

Also checked against the code: every name is declared by streams/metrics.py or the gateway's
GatewayMetrics (streams/gateway/server.py). What a
running worker exports after real traffic (names, labels, samples) is checked by
test_live_worker.py."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import REPO
from tests.deploy.promql import (TARGET_LABELS, design_metrics, is_standard, metric_names,
                                 selector_labels)

RULE_FILES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
CONTRACT = design_metrics(REPO / "docs" / "design.md")


def _rules() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


RECORDED = {rule["record"] for rule in _rules() if "record" in rule}


def _label_values_query(query: str) -> str:
    """`label_values(selector, label)` -> selector; `label_values(label)` -> ''."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*[a-zA-Z_]+\s*\)\s*", query)
    return match.group(1) if match else ""


def _dashboard_exprs(path: Path) -> list[tuple[str, str]]:
    board = json.loads(path.read_text())
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            found.append((f"{path.name}: {panel['title']}", target["expr"]))
    for variable in board["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
        selector = _label_values_query(query)
        assert selector, f"{path.name}: variable {variable['name']} is not label_values(metric, label)"
        found.append((f"{path.name}: variable {variable['name']}", selector))
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            found.append((f"{path.name}: annotation {annotation['name']}", annotation["expr"]))
    return found


ALL_EXPRS = ([(f"{rule.get('record') or rule.get('alert')}", rule["expr"]) for rule in _rules()]
             + [item for path in DASHBOARDS for item in _dashboard_exprs(path)])


def test_the_design_contract_is_parsed() -> None:
    # A few fixed points of docs/design.md, so a parser regression cannot pass silently.
    assert CONTRACT.series["slaproc_breaches_total"] == {"provider", "plan", "priority", "metric", "binding"}
    assert CONTRACT.series["slaproc_first_response_seconds_bucket"] == {"provider", "plan", "le"}
    assert "slaproc_processing_seconds" in CONTRACT.histograms
    assert len(CONTRACT.series) >= 20


@pytest.mark.parametrize("where, expr", ALL_EXPRS, ids=[w for w, _ in ALL_EXPRS])
def test_metric_names_are_in_the_contract(where: str, expr: str) -> None:
    names = metric_names(expr)
    unknown = {n for n in names if n not in CONTRACT.series and n not in RECORDED and not is_standard(n)}
    assert not unknown, f"{where}: not in docs/design.md Metrics, not recorded, not standard: {unknown}"


@pytest.mark.parametrize("where, expr", ALL_EXPRS, ids=[w for w, _ in ALL_EXPRS])
def test_label_matchers_use_the_contract_labels(where: str, expr: str) -> None:
    for name, labels in selector_labels(expr):
        if name in CONTRACT.series:
            extra = labels - CONTRACT.series[name] - TARGET_LABELS
            assert not extra, f"{where}: {name} has no label(s) {extra} in docs/design.md"


def test_recording_rule_inputs_exist_somewhere() -> None:
    # Recording rules that read other recording rules must read ones that are defined.
    for rule in _rules():
        for name in metric_names(rule["expr"]):
            if ":" in name:
                assert name in RECORDED, f"{rule.get('record') or rule.get('alert')} reads undefined {name}"


def test_every_contract_metric_is_shown_or_alerted_on() -> None:
    used = set().union(*(metric_names(expr) for _, expr in ALL_EXPRS))
    base_names = {name for name in CONTRACT.series
                  if not any(name == h + suffix for h in CONTRACT.histograms
                             for suffix in ("_sum", "_count"))}
    missing = base_names - used
    assert not missing, f"worker metrics used by no rule or dashboard: {sorted(missing)}"


def test_the_checker_rejects_what_it_should() -> None:
    assert metric_names('sum by (provider) (rate(slaproc_breach_total{provider="x"}[5m]))') == \
        {"slaproc_breach_total"}
    assert "slaproc_breach_total" not in CONTRACT.series
    assert selector_labels('slaproc_open_clocks{plan="pro"}') == [("slaproc_open_clocks", {"plan"})]
    assert "plan" not in CONTRACT.series["slaproc_open_clocks"]


def test_metric_names_are_declared_by_the_worker_code() -> None:
    # The worker's and the gateway's registries, families declared whether or not they have samples yet.
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from streams.gateway.server import GatewayMetrics
    from streams.metrics import Metrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    declared = {family.name + suffix
                for registry in (Metrics().registry, GatewayMetrics().registry)
                for family in text_string_to_metric_families(generate_latest(registry).decode())
                for suffix in suffixes.get(family.type, ("",))}
    missing = {f"{where}: {name}" for where, expr in ALL_EXPRS for name in metric_names(expr)
               if name.startswith("slaproc_") and name not in declared}
    assert not missing, sorted(missing)


def test_the_gateway_alerts_read_series_and_labels_the_gateway_exports() -> None:
    """Every series exists at 0 from the gateway's start (so increase() sees the first refusal)
    with the labels the alerts match on; the alerts' outcomes are ones the gateway counts."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from streams.gateway.server import OUTCOMES, GatewayMetrics

    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(generate_latest(GatewayMetrics().registry).decode()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    gateway_exprs = [(w, e) for w, e in ALL_EXPRS if w.startswith("Gateway")]
    assert {w for w, _ in gateway_exprs} == {"GatewayDown", "GatewayRefusing", "GatewayUnmappable"}
    for where, expr in gateway_exprs:
        for name in metric_names(expr) - {"up"}:
            assert name in labels, f"{where}: {name} has no sample at the gateway's start"
        for name, matched in selector_labels(expr):
            if name != "up":
                assert matched - labels[name] - TARGET_LABELS == set(), f"{where}: {name} {matched}"
        for outcome in re.findall(r'outcome=~"([^"]*)"', expr):
            assert set(outcome.split("|")) <= set(OUTCOMES), f"{where}: {outcome}"
