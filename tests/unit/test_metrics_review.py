"""Metrics adapter defects found by the metrics review (findings F1-F6):
what `streams.metrics` exports after the outputs the core really emits."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from events.codec import Reason
from policies.attainment import report
from policies.outputs import Output
from streams.metrics import Metrics, MetricsObserver, refresh
from tests.support import CATALOG, Run, at, contracts, opened, reply

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


def test_the_contracted_plans_retraction_series_exist_at_0_with_the_breach_series():
    m = Metrics(CollectorRegistry())
    m.zero_catalog(CATALOG)
    m.zero_contracts({c.customer_id: (c, None) for c in contracts("nm")})
    assert _value(m, "slaproc_breaches_total", NM_CRITICAL) == 0
    assert _value(m, "slaproc_breach_retractions_total", NM_CRITICAL) == 0
    assert _value(m, "slaproc_met_retractions_total", NM_CRITICAL) == 0


# --- F2: series whose first increment matters exist at 0 before it ---------------------------

def _worker(*names: str, processors: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(processors=processors or {}, contracts={c.customer_id: (c, None) for c in contracts(*names)})


def test_the_refund_series_of_every_contracted_currency_exist_at_0_before_the_first_refund():
    m = Metrics(CollectorRegistry())
    refresh(m, _worker("vp"))  # a scrape: the worker has its contracts, no refund yet
    currencies = {s.currency for c in contracts("vp") for s in c.terms.services}
    assert currencies
    for currency in currencies:
        for name in ("slaproc_refunds_total", "slaproc_refund_amount_total",
                     "slaproc_refund_amount_withdrawn_total", "slaproc_refund_withdrawals_total"):
            assert _value(m, name, {"currency": currency}) == 0, (name, currency)


def test_dead_letter_at_risk_and_resolution_series_exist_at_0_from_the_start():
    m = Metrics(CollectorRegistry())
    m.zero_catalog(CATALOG, at_risk_thresholds=(0.5, 0.9))
    for reason in Reason:
        assert _value(m, "slaproc_dead_letters_total", {"reason": reason.value}) == 0
    m.zero_contracts({c.customer_id: (c, None) for c in contracts("nm", "rs")})
    resolution = dict(provider="rescale", plan="production", priority="urgent", metric="resolution", binding="true")
    assert _value(m, "slaproc_breaches_total", resolution) == 0  # rescale runs a resolution clock
    assert _value(m, "slaproc_met_total", resolution) == 0
    risk = {k: v for k, v in NM_CRITICAL.items() if k != "binding"}
    assert _value(m, "slaproc_at_risk_total", dict(risk, threshold="0.9")) == 0
    # the label the core's output gets: str() of the threshold, as observe() writes it
    run = Run("nm", thresholds=(0.5, 0.9))
    run.proc.apply(opened("T1", "nm", "critical", "2026-02-03T15:00:00Z"))
    warn = [o for o in run.proc.advance_to(at("2026-02-03T15:28:00Z")) if o.type == "sla.at_risk"]
    assert warn
    m.observe(warn, {"nm": "neural-magic"})
    assert _value(m, "slaproc_at_risk_total", dict(risk, threshold="0.9")) == 1


# --- F5: quarterly attainment summed over customers, not the last customer's ------------------

def test_quarterly_attainment_is_summed_over_customers_with_the_lowest_customer_kept():
    m = Metrics(CollectorRegistry())
    t = datetime(2026, 10, 1, tzinfo=timezone.utc)
    prov = {"rs-a": "rescale", "rs-b": "rescale"}
    m.observe([report("rs-a", "2026-Q3", t, 100, 60), report("rs-b", "2026-Q3", t, 10, 10)], prov)
    labels = {"provider": "rescale", "quarter": "2026-Q3"}
    assert _value(m, "slaproc_attainment_measured_total", labels) == 110
    assert _value(m, "slaproc_attainment_met_total", labels) == 70
    assert _value(m, "slaproc_attainment_min_ratio", labels) == 0.6  # rs-a, not the last report (rs-b, 1.0)
    m.observe([report("nm-x", "2026-Q3", t, 10, 1)], {})  # a customer the worker has no contract for
    assert _value(m, "slaproc_attainment_measured_total", labels) == 110  # not labelled rescale
    assert _value(m, "slaproc_attainment_measured_total", {"provider": "unknown", "quarter": "2026-Q3"}) == 10


# --- F4: a dropped partition's service-month gauges leave the exposition ----------------------

def _close(customer: str, up: str, met: bool, rev: int = 1) -> Output:
    return Output("uptime.month_closed", datetime(2026, 8, 1, tzinfo=timezone.utc), customer, f"id-{customer}-{rev}",
                  dict(customer_id=customer, service_id="vp-api", month="2026-07", uptime_percent=up, met=met,
                       revision=rev))


def test_a_revoked_partitions_uptime_gauges_are_removed():
    m = Metrics(CollectorRegistry())
    o = MetricsObserver(m)
    o.outputs([_close("vp", "98.66", False)], partition=3)
    moved = _close("vp", "98.66", False)
    o.outputs([moved._replace(fields=dict(moved.fields, service_id="other-api"))], partition=4)
    labels = {"service_id": "vp-api", "month": "2026-07"}
    assert _value(m, "slaproc_uptime_percent", labels) == 98.66
    o.partition_dropped(3)
    assert _value(m, "slaproc_uptime_percent", labels) is None
    assert _value(m, "slaproc_service_subscribers_not_met", labels) is None
    other = {"service_id": "other-api", "month": "2026-07"}  # partition 4's: kept
    assert _value(m, "slaproc_uptime_percent", other) == 98.66
    # a revision of the month, without the partition's processor to read the month's other closes
    # from: no series of that one close (tests/unit/test_gauges_restart.py: with it, the month's figures)
    o.outputs([_close("vp", "100.00", True, rev=2)], partition=3)
    assert _value(m, "slaproc_uptime_percent", labels) is None
    # the partition's new owner starts the month afresh: a later first close is not folded with
    # the old figure
    o.outputs([_close("vp", "100.00", True, rev=1)], partition=3)
    assert _value(m, "slaproc_uptime_percent", labels) == 100.0
