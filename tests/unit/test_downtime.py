"""Downtime ledger rules (SPEC §8), each with hand-computed minutes."""
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest

from policies.downtime import (
    INVALID_FIELD, INVALID_WINDOW, UNKNOWN_MAINTENANCE, UNKNOWN_OUTAGE, ServiceState, apply_event,
    month_figures, new_state,
)

UTC = timezone.utc
APRIL = "2026-04"
APRIL_END = datetime(2026, 5, 1, tzinfo=UTC)


def t(day: int, hour: int, minute: int = 0, month: int = 4, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


class Ledger:
    """Feeds events with generated ids and keeps the last result."""

    def __init__(self) -> None:
        self.state = new_state("svc-1")
        self.n = 0
        self.last = None

    def ev(self, type_: str, at: datetime, **fields):
        self.n += 1
        self.last = apply_event(self.state, type_, {"event_id": f"e{self.n}", "occurred_at": at, **fields})
        self.state = self.last.state
        return self.last

    def ok(self, type_: str, at: datetime, **fields):
        res = self.ev(type_, at, **fields)
        assert res.error is None, res.error
        return res

    def outage(self, oid: str, start: datetime, end: datetime | None, **started):
        self.ok("outage.started", start, outage_id=oid, **started)
        if end is not None:
            self.ok("outage.resolved", end, outage_id=oid)

    def window(self, mid: str, notified: datetime, start: datetime, end: datetime):
        self.ok("maintenance.scheduled", notified, maintenance_id=mid, starts_at=start, ends_at=end)

    def figures(self, month: str = APRIL, as_of: datetime = APRIL_END):
        return month_figures(self.state, month, as_of)


def test_quiet_month_has_only_total_minutes():
    f = Ledger().figures()
    assert (f.total_minutes, f.downtime_minutes, f.excluded_minutes, f.maintenance_minutes) == (43200, 0, 0, 0)


def test_spec_worked_example():
    # A: reported 10:00, alert 10:10, resolved 12:30 -> 150; B: 90 min excluded; C: 120 min in a
    # window notified 72 h ahead -> maintenance.
    g = Ledger()
    g.ok("outage.reported", t(3, 10), outage_id="A", ticket_id="T-1")
    g.ok("outage.started", t(3, 10, 10), outage_id="A")
    g.ok("outage.resolved", t(3, 12, 30), outage_id="A")
    g.outage("B", t(10, 1), t(10, 2, 30))
    g.ok("outage.classified", t(10, 3), outage_id="B", cause="excluded", category="third_party")
    g.window("M", t(17, 2), t(20, 2), t(20, 5))
    g.outage("C", t(20, 2), t(20, 4))
    f = g.figures()
    assert (f.downtime_minutes, f.excluded_minutes, f.maintenance_minutes) == (150, 90, 120)


def test_customer_report_earlier_than_alert_starts_the_downtime():
    g = Ledger()
    g.ok("outage.started", t(5, 8, 30), outage_id="X")
    g.ok("outage.reported", t(5, 8, 5), outage_id="X", ticket_id="T-9")  # arrives later, happened earlier
    g.ok("outage.resolved", t(5, 9), outage_id="X")
    assert g.figures().downtime_minutes == 55
    assert g.figures().outages[0].outage.start_source == "customer report"


def test_only_the_first_report_counts():
    g = Ledger()
    g.ok("outage.reported", t(5, 8, 20), outage_id="X", ticket_id="T-2")
    g.ok("outage.reported", t(5, 8, 10), outage_id="X", ticket_id="T-1")
    g.ok("outage.reported", t(5, 8, 40), outage_id="X", ticket_id="T-3")
    g.ok("outage.resolved", t(5, 9), outage_id="X")
    assert g.figures().downtime_minutes == 50
    assert g.state.outages["X"].reported_ticket == "T-1"


def test_alert_earlier_than_report():
    g = Ledger()
    g.ok("outage.started", t(5, 8), outage_id="X")
    g.ok("outage.reported", t(5, 8, 45), outage_id="X")
    g.ok("outage.resolved", t(5, 9), outage_id="X")
    assert g.figures().downtime_minutes == 60


def test_overlapping_outages_are_counted_once():
    g = Ledger()
    g.outage("A", t(7, 10), t(7, 11))         # 10:00-11:00
    g.outage("B", t(7, 10, 30), t(7, 12))     # 10:30-12:00, overlaps A by 30
    g.outage("C", t(7, 10, 40), t(7, 10, 50))  # inside both
    g.outage("D", t(7, 12), t(7, 12, 15))     # touches B
    f = g.figures()
    assert f.downtime_minutes == 135          # 10:00-12:15
    assert sum(s.minutes for s in f.segments) == 135


def test_unresolved_outage_counts_until_as_of_or_month_end():
    g = Ledger()
    g.outage("A", t(30, 22), None)
    assert g.figures(as_of=t(30, 22, 45)).downtime_minutes == 45
    assert g.figures().downtime_minutes == 120
    assert g.figures(as_of=t(3, 1, month=5)).downtime_minutes == 120  # clipped at the month end


def test_outage_across_month_end_counts_in_each_month():
    g = Ledger()
    g.outage("A", t(30, 23, 15), t(1, 0, 40, month=5))
    assert g.figures().downtime_minutes == 45
    may = g.figures("2026-05", datetime(2026, 6, 1, tzinfo=UTC))
    assert may.downtime_minutes == 40
    assert may.total_minutes == 31 * 1440


def test_february_total():
    assert month_figures(new_state("s"), "2026-02", datetime(2026, 3, 1, tzinfo=UTC)).total_minutes == 40320
    assert month_figures(new_state("s"), "2028-02", datetime(2028, 3, 1, tzinfo=UTC)).total_minutes == 41760


def test_partial_scope_is_listed_not_counted():
    g = Ledger()
    g.outage("P", t(9, 10), t(9, 14), scope="partial")
    f = g.figures()
    assert f.downtime_minutes == 0 and f.excluded_minutes == 0
    assert [(v.outage.outage_id, v.status, v.in_month_minutes) for v in f.outages] == [("P", "partial", 240)]


def test_a_report_alone_counts_as_all_users():
    g = Ledger()
    g.ok("outage.reported", t(9, 10), outage_id="R", ticket_id="T-5")
    g.ok("outage.resolved", t(9, 10, 20), outage_id="R")
    assert g.figures().downtime_minutes == 20


def test_excluded_outage_is_removed_even_when_classified_late():
    g = Ledger()
    g.outage("A", t(12, 6), t(12, 8))
    assert g.figures().downtime_minutes == 120
    res = g.ok("outage.classified", t(3, 9, month=5), outage_id="A", cause="excluded", category="force_majeure")
    assert res.affected_from == t(12, 6)
    f = g.figures()
    assert (f.downtime_minutes, f.excluded_minutes) == (0, 120)


def test_excluded_overlap_with_provider_outage_stays_downtime():
    g = Ledger()
    g.outage("P", t(12, 6), t(12, 7))
    g.outage("X", t(12, 6, 30), t(12, 8))
    g.ok("outage.classified", t(12, 9), outage_id="X", cause="excluded", category="third_party")
    f = g.figures()
    # 06:00-07:00 provider downtime; 07:00-08:00 only the excluded outage.
    assert (f.downtime_minutes, f.excluded_minutes) == (60, 60)


def test_latest_classification_wins_whatever_the_order():
    g = Ledger()
    g.outage("A", t(12, 6), t(12, 8))
    g.ok("outage.classified", t(13, 9), outage_id="A", cause="provider")
    g.ok("outage.classified", t(12, 9), outage_id="A", cause="excluded", category="third_party")  # older, late
    assert g.figures().downtime_minutes == 120


def test_maintenance_needs_48_hours_notice():
    g = Ledger()
    start = t(14, 2)
    g.window("M47", start - timedelta(hours=47), start, t(14, 3))
    g.window("M48", t(14, 3) - timedelta(hours=48), t(14, 3), t(14, 4))
    g.outage("A", t(14, 2), t(14, 4))
    f = g.figures()
    assert (f.downtime_minutes, f.maintenance_minutes) == (60, 60)
    assert [v.scheduled_minutes for v in f.windows] == [0, 60]


def test_notice_one_second_short_is_not_enough():
    g = Ledger()
    g.window("M", t(14, 2) - timedelta(hours=48) + timedelta(seconds=1), t(14, 2), t(14, 3))
    g.outage("A", t(14, 2), t(14, 3))
    assert g.figures().downtime_minutes == 60


def test_four_hour_allowance_consumed_by_window_length_in_order_of_start():
    g = Ledger()
    notice = timedelta(days=7)
    g.window("W1", t(3, 0) - notice, t(3, 0), t(3, 3))   # 3 h, nothing goes down
    g.window("W2", t(20, 0) - notice, t(20, 0), t(20, 2))  # 2 h: only its first hour is left
    g.outage("A", t(20, 0), t(20, 2))
    f = g.figures()
    assert (f.maintenance_minutes, f.downtime_minutes) == (60, 60)
    assert [(v.window.maintenance_id, v.scheduled_minutes) for v in f.windows] == [("W1", 180), ("W2", 60)]


def test_fifth_hour_of_maintenance_is_downtime():
    g = Ledger()
    g.window("M", t(10, 0) - timedelta(days=3), t(10, 0), t(10, 5))
    g.outage("A", t(10, 0), t(10, 5))
    f = g.figures()
    assert (f.maintenance_minutes, f.downtime_minutes) == (240, 60)


def test_overlapping_windows_use_the_allowance_once():
    g = Ledger()
    n = timedelta(days=3)
    g.window("M1", t(10, 0) - n, t(10, 0), t(10, 3))
    g.window("M2", t(10, 1) - n, t(10, 1), t(10, 4))   # union 00:00-04:00 = exactly 4 h
    g.outage("A", t(10, 0), t(10, 4))
    f = g.figures()
    assert (f.maintenance_minutes, f.downtime_minutes) == (240, 0)


def test_allowance_is_per_month_for_a_window_across_the_boundary():
    g = Ledger()
    g.window("M", t(20, 0) - timedelta(days=3), t(30, 22), t(1, 3, month=5))  # 2 h in April, 3 h in May
    g.window("M2", t(20, 0), t(2, 0, month=5), t(2, 2, month=5))               # 2 more h in May
    g.outage("A", t(2, 0, month=5), t(2, 2, month=5))
    may = g.figures("2026-05", datetime(2026, 6, 1, tzinfo=UTC))
    assert (may.maintenance_minutes, may.downtime_minutes) == (60, 60)


def test_cancelled_window_is_not_maintenance_and_frees_the_allowance():
    g = Ledger()
    n = timedelta(days=3)
    g.window("M1", t(10, 0) - n, t(10, 0), t(10, 4))
    g.ok("maintenance.cancelled", t(9, 0), maintenance_id="M1")
    g.window("M2", t(20, 0) - n, t(20, 0), t(20, 4))
    g.outage("A", t(10, 0), t(10, 1))
    g.outage("B", t(20, 0), t(20, 1))
    f = g.figures()
    assert (f.downtime_minutes, f.maintenance_minutes) == (60, 60)


def test_window_cancelled_in_progress_ends_at_the_cancellation():
    g = Ledger()
    g.window("M", t(10, 0) - timedelta(days=3), t(10, 0), t(10, 4))
    g.ok("maintenance.cancelled", t(10, 1), maintenance_id="M")
    g.outage("A", t(10, 0), t(10, 2))
    f = g.figures()
    assert (f.maintenance_minutes, f.downtime_minutes) == (60, 60)


def test_rescheduling_measures_notice_from_the_latest_notification():
    g = Ledger()
    g.window("M", t(1, 0), t(10, 0), t(10, 1))
    g.window("M", t(11, 0), t(12, 0), t(12, 1))  # moved with 24 h notice
    g.outage("A", t(12, 0), t(12, 1))
    assert g.figures().downtime_minutes == 60


def test_seconds_are_exact():
    g = Ledger()
    g.outage("A", t(2, 10), t(2, 10, 0, second=1))
    assert g.figures().downtime_minutes == Fraction(1, 60)


def test_offsets_are_converted_to_utc():
    g = Ledger()
    paris = timezone(timedelta(hours=2))
    g.outage("A", datetime(2026, 5, 1, 1, 0, tzinfo=paris), datetime(2026, 5, 1, 3, 0, tzinfo=paris))
    assert g.figures().downtime_minutes == 60  # 2026-04-30 23:00Z - 05-01 00:00Z in April


# --- bad input -> reason codes, state unchanged ---------------------------------------------


def test_resolving_an_unknown_outage_is_rejected():
    g = Ledger()
    res = g.ev("outage.resolved", t(2, 3), outage_id="nope")
    assert res.error[0] == UNKNOWN_OUTAGE and "nope" in res.error[1]
    assert res.state == new_state("svc-1")


def test_classifying_an_unknown_outage_is_rejected():
    res = Ledger().ev("outage.classified", t(2, 3), outage_id="nope", cause="excluded")
    assert res.error[0] == UNKNOWN_OUTAGE


@pytest.mark.parametrize("minutes_long", [0, -30])
def test_window_ending_at_or_before_its_start_is_rejected(minutes_long):
    g = Ledger()
    res = g.ev("maintenance.scheduled", t(1, 0), maintenance_id="M", starts_at=t(5, 2),
               ends_at=t(5, 2) + timedelta(minutes=minutes_long))
    assert res.error[0] == INVALID_WINDOW
    assert "M" not in g.state.maintenance


def test_cancelling_an_unknown_window_is_rejected():
    assert Ledger().ev("maintenance.cancelled", t(1, 0), maintenance_id="M").error[0] == UNKNOWN_MAINTENANCE


def test_bad_enum_values_are_rejected():
    g = Ledger()
    assert g.ev("outage.started", t(1, 0), outage_id="A", scope="some").error[0] == INVALID_FIELD
    g.ok("outage.started", t(1, 0), outage_id="A")
    assert g.ev("outage.classified", t(1, 1), outage_id="A", cause="weather").error[0] == INVALID_FIELD


def test_same_event_twice_changes_nothing():
    g = Ledger()
    fields = {"event_id": "same", "occurred_at": t(4, 4), "outage_id": "A"}
    first = apply_event(g.state, "outage.started", fields)
    second = apply_event(first.state, "outage.started", fields)
    assert first.affected_from == t(4, 4)
    assert second.state == first.state and second.affected_from is None and second.error is None


def test_state_round_trips_through_json():
    g = Ledger()
    g.ok("outage.reported", t(3, 10), outage_id="A", ticket_id="T-1")
    g.ok("outage.started", t(3, 10, 10), outage_id="A", scope="partial")
    g.ok("outage.classified", t(3, 11), outage_id="A", cause="excluded", category="beta_feature")
    g.ok("outage.resolved", t(3, 12, 30), outage_id="A")
    g.window("M", t(1, 0), t(9, 0), t(9, 1))
    g.ok("maintenance.cancelled", t(2, 0), maintenance_id="M")
    text = g.state.to_json()
    assert " " not in text.replace("T-1", "")
    assert ServiceState.from_json(text) == g.state


def test_prune_keeps_what_later_months_need():
    from policies.downtime import prune
    g = Ledger()
    g.outage("old", t(2, 1, month=3), t(2, 2, month=3))                 # March only
    g.outage("edge", t(31, 23, month=3), t(1, 1))                      # crosses into April
    g.outage("open", t(20, 0, month=3), None)                          # unresolved
    g.window("Wold", t(1, 0, month=3), t(10, 0, month=3), t(10, 1, month=3))
    g.window("Wnew", t(1, 0, month=3), t(10, 0), t(10, 1))
    before = g.figures()
    pruned = prune(g.state, APRIL)
    assert set(pruned.outages) == {"edge", "open"} and set(pruned.maintenance) == {"Wnew"}
    after = month_figures(pruned, APRIL, APRIL_END)
    assert (after.downtime_minutes, after.maintenance_minutes) == (before.downtime_minutes, before.maintenance_minutes)
