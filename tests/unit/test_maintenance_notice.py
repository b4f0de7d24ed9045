"""Notice of a maintenance window re-sent or rescheduled (review money.md F6; SPEC §8, §10).

Vectorize seed: "“Scheduled Maintenance” means maintenance windows notified at least 48 hours in
advance and totaling no more than 4 hours per calendar month." A reminder (the same window re-sent
with a new event_id) is not a new notification: the notice stays the first one's. A reschedule
(other times or scope), or a reinstatement after a cancellation, restarts it from that event.

April 2026 = 30 days = 43,200 min; Vectorize Pro 99.5 % → threshold 43,200 × 0.5 % = 216 min.
Every case: window W1 10 Apr 10:00–14:00 (240 min, the whole 4 h allowance), outage O1
10 Apr 10:00–15:00 (300 min).
- W1 counts as Scheduled Maintenance: maintenance 240, downtime 300 − 240 = 60;
  uptime 100 − 60 ÷ 43,200 × 100 = 99.861… → 99.86 ≥ 99.50, met, no refund.
- W1 does not: downtime 300; uptime 100 − 300 ÷ 43,200 × 100 = 99.305… → 99.31 < 99.50;
  excess 300 − 216 = 84 min; refund 84 ÷ 43,200 × 1,000.00 = 1.944… → 1.94 USD.
"""
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import permutations

from hypothesis import given, settings, strategies as st

from policies.downtime import ServiceState, apply_event, month_figures, new_state
from policies.explain import explain_month
from policies.uptime import close_month

UTC = timezone.utc
W_START, W_END = datetime(2026, 4, 10, 10, tzinfo=UTC), datetime(2026, 4, 10, 14, tzinfo=UTC)
NOTIFIED = datetime(2026, 4, 7, 10, tzinfo=UTC)  # 72 h before W_START
REMINDER = datetime(2026, 4, 9, 10, tzinfo=UTC)  # 24 h before W_START (< 48 h)
OUTAGE = [
    ("outage.started", {"event_id": "e1", "occurred_at": W_START, "outage_id": "O1"}),
    ("outage.resolved", {"event_id": "e2", "occurred_at": datetime(2026, 4, 10, 15, tzinfo=UTC), "outage_id": "O1"}),
]


def sched(event_id: str, at: datetime, starts: datetime = W_START, ends: datetime = W_END, **scope):
    return ("maintenance.scheduled", {"event_id": event_id, "occurred_at": at, "maintenance_id": "W1",
                                      "starts_at": starts, "ends_at": ends, **scope})


def cancel(event_id: str, at: datetime):
    return ("maintenance.cancelled", {"event_id": event_id, "occurred_at": at, "maintenance_id": "W1"})


def fold(events) -> ServiceState:
    """Apply in the given order; an event whose outage / window is not known yet waits for it (the
    processor parks it, SPEC §10) and is applied right after."""
    state, waiting = new_state("s1"), []
    for typ, fields in events:
        res = apply_event(state, typ, fields)
        if res.error is not None and res.error[0] in ("unknown_outage", "unknown_maintenance"):
            waiting.append((typ, fields))
            continue
        assert res.error is None, res.error
        state = res.state
        for typ2, fields2 in list(waiting):
            res = apply_event(state, typ2, fields2)
            if res.error is None:
                state = res.state
                waiting.remove((typ2, fields2))
    assert not waiting
    return state


def every_order(events):
    """The states of every arrival order."""
    return [fold(order) for order in permutations(events)]


def april(state: ServiceState):
    f = month_figures(state, "2026-04", datetime(2026, 5, 1, tzinfo=UTC))
    return f.downtime_minutes, f.maintenance_minutes


def test_a_reminder_with_the_same_window_keeps_the_72_h_notice_in_either_order():
    # The review's case t7: failed before (notice 24 h from the reminder: downtime 300, maintenance 0).
    events = [sched("m1", NOTIFIED), sched("m2", REMINDER), *OUTAGE]
    states = every_order(events)
    assert all(s == states[0] for s in states)
    w = states[0].maintenance["W1"]
    assert (w.notified_at, w.notice) == (NOTIFIED, timedelta(hours=72))
    assert (w.scheduled_at, w.scheduled_by) == (REMINDER, "m2")  # the latest still gives times and scope
    assert april(states[0]) == (60, 240)


def close(state: ServiceState):
    figures = month_figures(state, "2026-04", datetime(2026, 5, 1, tzinfo=UTC))
    return close_month(figures, customer_id="c1", service_id="s1", commitment_percent=Decimal("99.5"),
                       fee_per_month=Decimal("1000.00"), currency="USD")


def test_the_reminder_month_is_met_without_refund():
    # Failed before: uptime 99.31, not met, refund.eligible 1.94 USD (84 excess minutes).
    closed, refund = close(fold([sched("m2", REMINDER), sched("m1", NOTIFIED), *OUTAGE]))
    assert (closed["downtime_minutes"], closed["maintenance_minutes"]) == (60, 240)
    assert (closed["uptime_percent"], closed["met"], refund) == (Decimal("99.86"), True, None)


def test_a_moved_window_still_gets_the_refund():
    # The same two notifications, the second moving W1 by an hour: the refund the review measured stands.
    closed, refund = close(fold([sched("m1", NOTIFIED), sched("m2", REMINDER, W_START + timedelta(hours=1),
                                                                W_END + timedelta(hours=1)), *OUTAGE]))
    assert (closed["downtime_minutes"], closed["uptime_percent"], closed["met"]) == (300, Decimal("99.31"), False)
    assert refund is not None
    assert (refund["excess_minutes"], refund["refund_amount"]) == (84, Decimal("1.94"))


def test_a_reschedule_restarts_the_notice_from_the_event_that_moved_the_window():
    # 04-09 10:00 moves W1 to 11:00-15:00: notice 25 h (< 48 h), not Scheduled Maintenance:
    # downtime 300 (refund 1.94 as above), whichever arrives first.
    moved = sched("m2", REMINDER, W_START + timedelta(hours=1), W_END + timedelta(hours=1))
    for state in every_order([sched("m1", NOTIFIED), moved, *OUTAGE]):
        w = state.maintenance["W1"]
        assert (w.notified_at, w.notice) == (REMINDER, timedelta(hours=25))
        assert april(state) == (300, 0)


def test_moved_and_moved_back_restarts_the_notice_at_the_move_back():
    # 04-07 W1 10-14; 04-08 09:00 moved to 11-15; 04-09 10:00 back to 10-14. The customer was last
    # told of 10-14 on 04-09 (24 h): downtime 300. 04-07's notice does not come back.
    events = [sched("m1", NOTIFIED),
              sched("m2", datetime(2026, 4, 8, 9, tzinfo=UTC), W_START + timedelta(hours=1), W_END + timedelta(hours=1)),
              sched("m3", REMINDER), *OUTAGE]
    states = every_order(events)
    assert all(s == states[0] for s in states)
    assert states[0].maintenance["W1"].notified_at == REMINDER
    assert april(states[0]) == (300, 0)


def test_a_reinstatement_after_a_cancellation_restarts_the_notice():
    # 04-07 W1 notified, 04-08 cancelled, 04-09 re-sent unchanged: for a day the customer knew there
    # would be no window. Notice 24 h: downtime 300.
    events = [sched("m1", NOTIFIED), cancel("c1", datetime(2026, 4, 8, tzinfo=UTC)), sched("m2", REMINDER), *OUTAGE]
    states = every_order(events)
    assert all(s == states[0] for s in states)
    assert states[0].maintenance["W1"].notified_at == REMINDER
    assert april(states[0]) == (300, 0)


def test_a_reminder_keeps_the_notice_of_a_window_cancelled_while_in_progress():
    # Notified 72 h ahead, reminded 24 h ahead, cancelled at 12:00 (the work ended early): the window
    # is 10:00-12:00 with the 72 h notice. Maintenance 120, downtime 300 - 120 = 180.
    events = [sched("m1", NOTIFIED), sched("m2", REMINDER), cancel("c1", W_START + timedelta(hours=2)), *OUTAGE]
    states = every_order(events)
    assert all(s == states[0] for s in states)
    assert states[0].maintenance["W1"].notified_at == NOTIFIED
    assert april(states[0]) == (180, 120)


def test_a_change_of_scope_is_a_reschedule():
    # Re-sent 04-09 with regions [eu] added: the customers in eu (the whole service before) were told
    # 24 h ahead of this window's scope. Notice 24 h. For the whole service (no subscriber scope) the
    # window no longer covers it either: downtime 300.
    state = fold([sched("m1", NOTIFIED), sched("m2", REMINDER, regions=["eu"]), *OUTAGE])
    assert state.maintenance["W1"].notified_at == REMINDER
    assert april(state) == (300, 0)


def test_the_notice_survives_the_state_row():
    state = fold([sched("m1", NOTIFIED), cancel("c0", datetime(2026, 4, 6, tzinfo=UTC)), sched("m2", REMINDER),
                  sched("m3", datetime(2026, 4, 9, 12, tzinfo=UTC), components=["api"]), sched("m4", REMINDER
                  + timedelta(hours=3), components=["api"]), cancel("c1", W_START + timedelta(hours=1)), *OUTAGE])
    assert ServiceState.from_json(state.to_json()) == state
    # A window scheduled once keeps the row it had before notices were tracked (stored states read the same).
    plain = fold([sched("m1", NOTIFIED), cancel("c1", W_START)])
    assert plain.to_json().count("m1") == 1 and ServiceState.from_json(plain.to_json()) == plain
    old_row = ('{"s":"s1","o":[],"m":[["W1","2026-04-07T10:00:00Z","2026-04-10T10:00:00Z",'
               '"2026-04-10T14:00:00Z","m1",null]],"e":[]}')
    assert ServiceState.from_json(old_row) == fold([sched("m1", NOTIFIED)])


# --- every arrival order, against the rule stated over the set of events ---------------------------

CONTENTS = [(W_START, W_END), (W_START + timedelta(hours=1), W_END + timedelta(hours=1))]
event_st = st.one_of(
    st.tuples(st.just("s"), st.integers(0, 12), st.sampled_from("abc"), st.integers(0, 1)),
    st.tuples(st.just("c"), st.integers(0, 12), st.just(""), st.just(0)),
)


def expected_notice(events):
    """SPEC §8 notice, read from the whole set: the winner is the latest schedule by (occurred_at,
    event_id); the run is its schedules with the same window after the latest schedule with another
    window or cancellation before it (a cancellation comes after the schedules of its instant)."""
    schedules = sorted((h, e, c) for kind, h, e, c in events if kind == "s")
    winner = schedules[-1]
    breaks = [(h, 0, e) for h, e, c in schedules if c != winner[2]]
    breaks += [(h, 1, "") for kind, h, _, _ in events if kind == "c" and h < winner[0]]
    last = max(breaks, default=None)
    run = [(h, 0, e) for h, e, c in schedules if c == winner[2] and (last is None or (h, 0, e) > last)]
    return run[0][0]


@settings(max_examples=150, deadline=None)
@given(st.lists(event_st, min_size=1, max_size=7, unique_by=lambda x: (x[0], x[1], x[2])), st.randoms(use_true_random=False))
def test_the_notice_is_the_same_in_every_arrival_order(events, rnd):
    if not any(kind == "s" for kind, *_ in events):
        return
    base = datetime(2026, 4, 7, tzinfo=UTC)

    def wire(kind, h, e, c):
        at = base + timedelta(hours=h)
        if kind == "c":
            return cancel(f"c{h}", at)
        return sched(f"{e}{h}", at, *CONTENTS[c])

    ordered = sorted(events, key=lambda x: (x[1], x[0] == "c", x[2]))
    shuffled = list(events)
    rnd.shuffle(shuffled)
    a = fold([wire(*x) for x in ordered])
    b = fold([wire(*x) for x in shuffled + shuffled[: len(shuffled) // 2]])  # re-sent events change nothing
    assert a == b
    assert ServiceState.from_json(a.to_json()) == a
    assert a.maintenance["W1"].notified_at == base + timedelta(hours=expected_notice(events))


def test_explain_month_shows_the_first_notice_and_the_reminder():
    text = explain_month(fold([sched("m1", NOTIFIED), sched("m2", REMINDER), *OUTAGE]), "2026-04",
                         Decimal("99.5"), Decimal("1000.00"), "USD", "c1")
    assert ("notified 2026-04-07 10:00:00Z (72 h notice, re-sent unchanged 1x, last 2026-04-09 10:00:00Z)"
            in text)
    assert "MET" in text
