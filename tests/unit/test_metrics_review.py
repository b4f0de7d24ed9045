"""Metrics adapter defects found by the metrics review (/work/reviews/metrics.md, F1-F6):
what `streams.metrics` exports after the outputs the core really emits."""
from __future__ import annotations

from datetime import datetime, timezone

from prometheus_client import CollectorRegistry

from policies.outputs import Output
from streams.metrics import Metrics
from tests.support import CATALOG, Run, at, opened, reply

NM_CRITICAL = dict(provider="neural-magic", plan="enterprise", priority="critical", metric="first_response",
                   binding="true")


def _value(m: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return m.registry.get_sample_value(name, labels or {})


# --- F1: retractions carry the labels of the outcome they retract ----------------------------

def _breach_then_late_reply() -> list[Output]:
    run = Run("nm", thresholds=())
    outs, _ = run.proc.apply(opened("T1", "nm", "critical", "2026-02-03T15:00:00Z"))
    outs = list(outs) + run.proc.advance_to(at("2026-02-03T15:30:05Z"))  # deadline 15:30: breached
    late, _ = run.proc.apply(reply("T1", "2026-02-03T15:29:00Z"))        # the reply, delivered late
    return outs + list(late)


def test_a_retracted_breach_is_subtractable_from_the_breach_counter_it_was_counted_in():
    outs = _breach_then_late_reply()
    assert [o.type for o in outs] == ["sla.breached", "sla.met", "sla.breach_retracted"]
    m = Metrics(CollectorRegistry())
    m.zero_catalog(CATALOG)
    m.observe(outs, {"nm": "neural-magic"})
    assert _value(m, "slaproc_breaches_total", NM_CRITICAL) == 1
    assert _value(m, "slaproc_breach_retractions_total", NM_CRITICAL) == 1  # same labels: rules subtract it


def test_a_met_retraction_is_counted_under_the_labels_of_the_met():
    fields = dict(met_event_id="m1", ticket_id="T1", customer_id="nm", metric="first_response", binding=True,
                  policy="neural-magic", plan="enterprise", priority="critical", reason="late event")
    m = Metrics(CollectorRegistry())
    m.observe([Output("sla.met_retracted", datetime(2026, 2, 3, tzinfo=timezone.utc), "T1", "r1", fields)],
              {"nm": "neural-magic"})
    assert _value(m, "slaproc_met_retractions_total", NM_CRITICAL) == 1


def test_zero_catalog_creates_the_retraction_series_with_the_breach_series():
    m = Metrics(CollectorRegistry())
    m.zero_catalog(CATALOG)
    assert _value(m, "slaproc_breach_retractions_total", NM_CRITICAL) == 0
    assert _value(m, "slaproc_met_retractions_total", NM_CRITICAL) == 0
