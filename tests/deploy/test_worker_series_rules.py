"""What a worker really exports, scraped before and after a month close, through the recording
rules (review metrics.md F2): the refund series must exist at 0 before the first refund, or the
first scrape already holds the amount and `increase()` reads 0. The promtool input is built from
the worker's own exposition, not written by hand (the hand-written recording_test.yml case
started the series at 0, which the worker did not do)."""
from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from policies.processor import Processor, Settings
from streams.metrics import Metrics, MetricsObserver, refresh
from tests.deploy.conftest import REPO
from tests.support import CATALOG, at, contracts, decoded, wire

REFUND_SERIES = ("slaproc_refunds_total", "slaproc_refund_amount_total", "slaproc_refund_amount_withdrawn_total")


def _scrape(metrics: Metrics) -> dict[str, float]:
    """series selector text -> value, for the refund series of one exposition."""
    found = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            if sample.name in REFUND_SERIES:
                labels = ", ".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                found[f'{sample.name}{{job="slaproc", instance="worker-1:6066", {labels}}}'] = sample.value
    return found


@pytest.mark.prometheus
def test_a_month_close_refund_is_seen_by_the_recording_rules(promtool: str, tmp_path) -> None:
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    cs = contracts("vp")
    for c in cs:
        proc.install(c)
    metrics = Metrics(CollectorRegistry())
    metrics.zero_catalog(CATALOG)
    worker = SimpleNamespace(processors={}, contracts={c.customer_id: (c, None) for c in cs})
    observer = MetricsObserver(metrics, worker)
    refresh(metrics, worker)
    before = _scrape(metrics)  # scrapes during the month
    for obj in (wire("outage.started", "2026-07-20T08:00:00Z", "a1", service_id="vp-api", outage_id="A"),
                wire("outage.resolved", "2026-07-20T18:00:00Z", "a2", service_id="vp-api", outage_id="A")):
        out, rejected = proc.apply(decoded(obj))
        assert rejected is None
        observer.outputs(out)
    closing = proc.advance_to(at("2026-08-01T01:00:01Z"))  # one tick: the month close and its refund
    refunds = [o for o in closing if o.type == "refund.eligible"]
    assert len(refunds) == 1
    observer.outputs(closing)
    refresh(metrics, worker)
    after = _scrape(metrics)  # scrapes after the month close
    amount = float(refunds[0].fields["refund_amount"])
    currency = refunds[0].fields["currency"]

    def values(series: str) -> str:
        first = "_" if series not in before else f"{before[series]:g}"
        return f"{first}x40 {after[series]:g}x40"

    case = {
        "rule_files": [str(REPO / "deploy" / "prometheus" / "rules" / "recording.yml")],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "15s",
            "input_series": [{"series": s, "values": values(s)} for s in sorted(after)],
            "promql_expr_test": [
                {"expr": "round(currency:slaproc_refund_amount:increase1d, 0.01)", "eval_time": "15m",
                 "exp_samples": [{"labels": f'{{currency="{currency}"}}', "value": amount}]},
                {"expr": "currency:slaproc_refunds:increase1d", "eval_time": "15m",
                 "exp_samples": [{"labels": f'currency:slaproc_refunds:increase1d{{currency="{currency}"}}',
                                  "value": 1}]},
            ],
        }],
    }
    path = tmp_path / "worker_refund_test.yml"
    path.write_text(yaml.safe_dump(case))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{before=}\n{after=}\n{result.stdout}{result.stderr}"
