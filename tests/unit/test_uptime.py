"""Month close, refund arithmetic and revisions (SPEC §8), with hand-computed numbers."""
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from policies.downtime import apply_event, month_figures, new_state
from policies.explain import explain_month
from policies.uptime import (
    claim_deadline, close_and_record, close_instant, close_month, minutes_on_wire, month_bounds, month_of,
    months_overlapping, months_to_revise, round_half_up,
)

UTC = timezone.utc


def at(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def state_with_outages(*spans, service="svc"):
    s = new_state(service)
    for i, (a, b) in enumerate(spans):
        s = apply_event(s, "outage.started", {"event_id": f"s{i}", "occurred_at": a, "outage_id": f"o{i}"}).state
        s = apply_event(s, "outage.resolved", {"event_id": f"r{i}", "occurred_at": b, "outage_id": f"o{i}"}).state
    return s


def close(state, month, commitment="99.5", fee="1000", currency="USD"):
    f = month_figures(state, month, month_bounds(month)[1])
    return close_month(f, customer_id="acme", service_id=state.service_id, commitment_percent=Decimal(commitment),
                       fee_per_month=Decimal(fee), currency=currency)


def test_month_helpers():
    assert month_bounds("2026-02") == (at(2026, 2, 1), at(2026, 3, 1))
    assert month_bounds("2026-12") == (at(2026, 12, 1), at(2027, 1, 1))
    assert month_of(datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))) == "2026-02"
    assert months_overlapping(at(2026, 1, 31, 23), at(2026, 3, 1)) == ["2026-01", "2026-02"]
    assert months_overlapping(at(2026, 1, 31, 23), at(2026, 3, 1, 0, 1)) == ["2026-01", "2026-02", "2026-03"]
    assert months_overlapping(at(2026, 5, 1), at(2026, 5, 1)) == []
    assert close_instant("2026-04") == at(2026, 5, 1, 1)
    assert claim_deadline("2026-04") == at(2026, 5, 31)
    assert claim_deadline("2026-02") == at(2026, 3, 31)


def test_round_half_up_and_wire_minutes():
    assert round_half_up(Fraction(99305, 1000), 2) == Decimal("99.31")  # tie rounds up
    assert round_half_up(Fraction(7, 3), 2) == Decimal("2.33")
    assert str(minutes_on_wire(Fraction(150))) == "150"
    assert str(minutes_on_wire(Fraction(301, 2))) == "150.5"
    assert str(minutes_on_wire(Fraction(1, 60))) == "0.0167"
    assert str(minutes_on_wire(Fraction(43200))) == "43200"
    assert str(minutes_on_wire(Fraction(0))) == "0"


def test_spec_worked_example_met():
    closed, refund = close(state_with_outages((at(2026, 4, 3, 10), at(2026, 4, 3, 12, 30))), "2026-04")
    assert closed["total_minutes"] == 43200 and closed["downtime_minutes"] == 150
    assert closed["uptime_percent"] == Decimal("99.65")       # 100 - 150/43200*100 = 99.6527...
    assert closed["commitment_percent"] == Decimal("99.50")
    assert closed["met"] is True and closed["revision"] == 1 and refund is None


def test_spec_worked_example_not_met():
    closed, refund = close(state_with_outages((at(2026, 4, 3, 10), at(2026, 4, 3, 15))), "2026-04")
    assert closed["uptime_percent"] == Decimal("99.31") and closed["met"] is False
    assert refund["threshold_minutes"] == 216 and refund["excess_minutes"] == 84
    assert refund["refund_amount"] == Decimal("1.94")          # 84/43200*1000 = 1.9444
    assert refund["monthly_fee"] == Decimal("1000.00") and refund["currency"] == "USD"
    assert refund["claim_deadline"] == at(2026, 5, 31)
    assert refund["downtime_minutes"] == 300 and refund["revision"] == 1


def test_rounded_uptime_meets_although_downtime_exceeds_threshold():
    # 218 min: exact uptime 99.49537 -> 99.50 >= 99.5: met, no refund, despite 218 > 216.
    closed, refund = close(state_with_outages((at(2026, 4, 8, 0), at(2026, 4, 8, 3, 38))), "2026-04")
    assert closed["uptime_percent"] == Decimal("99.50") and closed["met"] and refund is None
    # 219 min: 99.49306 -> 99.49 < 99.5.
    closed, refund = close(state_with_outages((at(2026, 4, 8, 0), at(2026, 4, 8, 3, 39))), "2026-04")
    assert closed["uptime_percent"] == Decimal("99.49") and not closed["met"]
    assert refund["excess_minutes"] == 3 and refund["refund_amount"] == Decimal("0.07")  # 3/43200*1000=0.0694


def test_refund_reaches_the_monthly_fee_only_at_a_100_percent_commitment():
    # Since downtime <= total and threshold >= 0, excess / total <= 1: the seed's 100 % cap is reached,
    # never exceeded. Whole 30-day month down at 99.5 %: (43200 - 216) / 43200 * 1000 = 995.00.
    _, refund = close(state_with_outages((at(2026, 4, 1), at(2026, 5, 1))), "2026-04")
    assert refund["refund_amount"] == Decimal("995.00")
    # At 100 % the threshold is 0 and the refund is the whole fee.
    closed, refund = close(state_with_outages((at(2026, 4, 1), at(2026, 5, 1))), "2026-04", commitment="100")
    assert closed["uptime_percent"] == Decimal("0.00")
    assert refund["threshold_minutes"] == 0 and refund["refund_amount"] == Decimal("1000.00")


def test_cap_applies_to_the_exact_amount():
    f = month_figures(state_with_outages((at(2026, 4, 1), at(2026, 5, 1))), "2026-04", at(2026, 5, 1))
    closed, refund = close_month(f, customer_id="c", service_id="s", commitment_percent=Decimal("99"),
                                 fee_per_month=Decimal("0.01"), currency="EUR")
    # 42768/43200*0.01 = 0.0099 -> 0.01 (rounding) and never above the fee
    assert refund["refund_amount"] == Decimal("0.01")


def test_annual_fee_divided_by_twelve_exactly():
    # 10,000 a year: 833.333... a month; 300 min down in April at 99.5: 84/43200*10000/12 = 1.6203... -> 1.62
    s = state_with_outages((at(2026, 4, 3, 10), at(2026, 4, 3, 15)))
    f = month_figures(s, "2026-04", at(2026, 5, 1))
    _, refund = close_month(f, customer_id="c", service_id="s", commitment_percent=Decimal("99.5"),
                            fee_per_month=Fraction(10000, 12), currency="USD")
    assert refund["monthly_fee"] == Decimal("833.33") and refund["refund_amount"] == Decimal("1.62")


def test_february_threshold():
    # 40,320 min; 99.5 % -> threshold 201.6 min; 250 min down -> 99.38; excess 48.4 -> 48.4/40320*1000 = 1.2003
    closed, refund = close(state_with_outages((at(2026, 2, 10, 0), at(2026, 2, 10, 4, 10))), "2026-02")
    assert closed["total_minutes"] == 40320 and closed["uptime_percent"] == Decimal("99.38")
    assert refund["threshold_minutes"] == Fraction(2016, 10) and refund["excess_minutes"] == Fraction(484, 10)
    assert refund["refund_amount"] == Decimal("1.20") and refund["claim_deadline"] == at(2026, 3, 31)


def test_close_and_record_revisions():
    s = state_with_outages((at(2026, 4, 3, 10), at(2026, 4, 3, 15)))
    s, closed, refund = close_and_record(s, customer_id="acme", month="2026-04", commitment_percent=Decimal("99.5"),
                                         fee_per_month=Decimal(1000), currency="USD")
    assert closed["revision"] == 1 and refund["revision"] == 1
    # Recomputing without news emits nothing.
    s2, c2, r2 = close_and_record(s, customer_id="acme", month="2026-04", commitment_percent=Decimal("99.5"),
                                  fee_per_month=Decimal(1000), currency="USD")
    assert (c2, r2) == (None, None) and s2 == s
    # A late exclusion of o0 changes April: revision 2, met, no refund event.
    res = apply_event(s, "outage.classified", {"event_id": "c", "occurred_at": at(2026, 5, 6), "outage_id": "o0",
                                                "cause": "excluded", "category": "third_party"})
    assert months_to_revise(res.state, "acme", res.affected_from) == ["2026-04"]
    assert months_to_revise(res.state, "other", res.affected_from) == []
    s3, c3, r3 = close_and_record(res.state, customer_id="acme", month="2026-04",
                                  commitment_percent=Decimal("99.5"), fee_per_month=Decimal(1000), currency="USD")
    assert c3["revision"] == 2 and c3["met"] and c3["excluded_minutes"] == 300 and r3 is None


def test_months_to_revise_skips_months_before_the_change():
    s = new_state("svc")
    for m in ("2026-02", "2026-03", "2026-04"):
        s, _, _ = close_and_record(s, customer_id="acme", month=m, commitment_percent=Decimal("99"),
                                   fee_per_month=Decimal(10), currency="USD")
    assert months_to_revise(s, "acme", at(2026, 3, 31, 23)) == ["2026-03", "2026-04"]
    assert months_to_revise(s, "acme", at(2026, 4, 1)) == ["2026-04"]
    assert months_to_revise(s, "acme", None) == []


def test_explain_shows_the_arithmetic():
    s = state_with_outages((at(2026, 4, 3, 10), at(2026, 4, 3, 15)))
    text = explain_month(s, "2026-04", Decimal("99.5"), Decimal(1000), "USD", "acme vectorize pro")
    for needle in ("outage o0", "2026-04-03 10:00:00Z", "300 min", "43200", "99.31", "NOT MET",
                   "= 216 min", "84 min", "1.94 USD", "2026-05-31 00:00:00Z"):
        assert needle in text, needle


def test_explain_met_month_has_no_refund_lines():
    text = explain_month(state_with_outages(), "2026-02", Decimal("99"), Decimal(5), "EUR", "x")
    assert "MET" in text and "refund =" not in text and "40320" in text


@pytest.mark.parametrize("commitment,expected", [("99", "99.00"), ("99.95", "99.95")])
def test_commitment_is_shown_with_two_decimals(commitment, expected):
    closed, _ = close(new_state("s"), "2026-04", commitment=commitment)
    assert closed["commitment_percent"] == Decimal(expected) and closed["uptime_percent"] == Decimal("100.00")


def test_an_annual_fee_is_a_twelfth_exactly_so_a_half_cent_rounds_up():
    # Review of 2026-12-04: ContractService.fee_per_month was annual_fee / 12 in Decimal (28 digits,
    # 83.33333333333333333333333333), so a refund of exactly half a cent was rounded down.
    # June 2026: 43,200 min; 280.8 min down (10:00:00-14:40:48) at 99.5 %: uptime 99.35 (not met),
    # threshold 216, excess 64.8; refund = 64.8 / 43,200 x 1000 / 12 = 0.125 exactly -> 0.13 half-up.
    from events.contract import ContractService

    service = ContractService(service_id="s", annual_fee=Decimal("1000.00"), currency="USD")
    assert service.fee_per_month == Fraction(1000, 12)
    s = state_with_outages((at(2026, 6, 3, 10), datetime(2026, 6, 3, 14, 40, 48, tzinfo=UTC)))
    f = month_figures(s, "2026-06", at(2026, 7, 1))
    closed, refund = close_month(f, customer_id="c", service_id="s", commitment_percent=Decimal("99.5"),
                                 fee_per_month=service.fee_per_month, currency="USD")
    assert closed["uptime_percent"] == Decimal("99.35") and refund["excess_minutes"] == Fraction(324, 5)
    assert refund["monthly_fee"] == Decimal("83.33") and refund["refund_amount"] == Decimal("0.13")
