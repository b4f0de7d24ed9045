"""Refund outputs say which amount they supersede (not on the wire), so the shell's refund
totals count a month once: a later revision adds its difference, a withdrawal takes the
standing amount back (SPEC §10, "every correction cancels what it corrects").

Vectorize Pro `vp` (99.5 %, 1000 USD a month), July 2026 (44,640 min; threshold 223.2 min):
- outage A 600 min -> uptime 98.66 %, excess 376.8 min, refund 376.8 / 44,640 x 1000 = 8.44 USD;
- a late outage B, 60 more min -> 660 min, excess 436.8 min, refund 9.78 USD (revision 2);
- then A classified excluded -> 60 min, 99.87 %: met, the refund is withdrawn (revision 3).
"""
from __future__ import annotations

from policies.processor import Processor, Settings
from streams.wire import to_bytes
from tests.support import CATALOG, at, contracts, decoded, wire


def apply(proc: Processor, obj: dict) -> list:
    outputs, rejected = proc.apply(decoded(obj))
    assert rejected is None, rejected
    return outputs


def refunds(outputs: list) -> list:
    return [o for o in outputs if o.type in ("refund.eligible", "refund.withdrawn")]


def refund_chain() -> list:
    """The refund outputs of the scenario above, in order."""
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("vp"):
        proc.install(c)
    chain = []
    chain += refunds(apply(proc, wire("outage.started", "2026-07-20T08:00:00Z", "a1", service_id="vp-api",
                                      outage_id="A")))
    chain += refunds(apply(proc, wire("outage.resolved", "2026-07-20T18:00:00Z", "a2", service_id="vp-api",
                                      outage_id="A")))
    chain += refunds(proc.advance_to(at("2026-08-01T01:00:01Z")))
    assert [(str(o.fields["refund_amount"]), o.fields["superseded_amount"]) for o in chain] == [("8.44", "0")]
    # late: B starts (open, it counts to the month's end: a revision of its own), then ends
    for obj in (wire("outage.started", "2026-07-21T08:00:00Z", "b1", service_id="vp-api", outage_id="B"),
                wire("outage.resolved", "2026-07-21T09:00:00Z", "b2", service_id="vp-api", outage_id="B"),
                wire("outage.classified", "2026-08-02T09:00:00Z", "a3", service_id="vp-api", outage_id="A",
                     cause="excluded", category="third_party")):
        chain += refunds(apply(proc, obj))
    return chain


def test_a_revision_supersedes_the_standing_amount_and_a_withdrawal_takes_it_back() -> None:
    chain = refund_chain()
    eligible = [o for o in chain if o.type == "refund.eligible"]
    assert [o.fields["revision"] for o in eligible] == [1, 2, 3]
    assert str(eligible[-1].fields["refund_amount"]) == "9.78"
    # each revision supersedes exactly the amount standing before it
    assert [o.fields["superseded_amount"] for o in eligible] == \
        ["0"] + [str(o.fields["refund_amount"]) for o in eligible[:-1]]
    withdrawn = chain[-1]
    assert withdrawn.type == "refund.withdrawn" and withdrawn.fields["revision"] == 4
    assert (withdrawn.fields["superseded_amount"], withdrawn.fields["currency"]) == ("9.78", "USD")
    # granted minus taken back: nothing stands once the month is met
    granted = sum(float(o.fields["refund_amount"]) - float(o.fields["superseded_amount"]) for o in eligible)
    assert round(granted - float(withdrawn.fields["superseded_amount"]), 2) == 0
    # the metric-only fields never reach the wire
    for out in chain:
        assert b"superseded_amount" not in to_bytes(out)


def test_the_metrics_leave_nothing_standing_once_the_refund_is_withdrawn() -> None:
    from streams.metrics import Metrics

    metrics = Metrics()
    chain = refund_chain()
    metrics.observe(chain[:-1])  # every revision: 9.78 stands
    value = lambda name: metrics.registry.get_sample_value(name, {"currency": "USD"})  # noqa: E731
    assert round(value("slaproc_refund_amount_total") - value("slaproc_refund_amount_withdrawn_total"), 2) == 9.78
    assert value("slaproc_refunds_total") == 3
    metrics.observe(chain[-1:])  # withdrawn
    assert round(value("slaproc_refund_amount_total") - value("slaproc_refund_amount_withdrawn_total"), 2) == 0
    assert value("slaproc_refund_withdrawals_total") == 1
