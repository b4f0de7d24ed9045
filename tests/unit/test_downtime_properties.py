"""Properties of the downtime ledger, checked against a brute-force per-minute count."""
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from hypothesis import given, settings, strategies as st

from policies.downtime import apply_event, month_figures, new_state
from policies.uptime import month_bounds, months_overlapping

UTC = timezone.utc
# A 10-hour stretch around the April/May boundary: minutes 0..299 in April, 300..599 in May.
BASE = datetime(2026, 4, 30, 19, 0, tzinfo=UTC)
SPAN = 600
BOUNDARY = 300
AS_OF = BASE + timedelta(minutes=SPAN)


def at(minute: int) -> datetime:
    return BASE + timedelta(minutes=minute)


outage_st = st.builds(
    lambda alert, report, length, resolved, partial, excluded: dict(
        alert=alert, report=report, length=length, resolved=resolved, partial=partial, excluded=excluded),
    alert=st.one_of(st.none(), st.integers(0, SPAN - 1)),
    report=st.one_of(st.none(), st.integers(0, SPAN - 1)),
    length=st.integers(0, 200),
    resolved=st.booleans(),
    partial=st.booleans(),
    excluded=st.booleans(),
).filter(lambda o: o["alert"] is not None or o["report"] is not None)

window_st = st.builds(
    lambda start, length, notice_h, cancelled: dict(start=start, length=length, notice_h=notice_h, cancelled=cancelled),
    start=st.integers(0, SPAN - 1), length=st.integers(1, 300), notice_h=st.sampled_from([1, 47, 48, 72]),
    cancelled=st.booleans(),
)


def outage_bounds(o):
    start = min(x for x in (o["alert"], o["report"]) if x is not None)
    # unresolved outages count until AS_OF; resolved ones may end after it (still in May)
    return start, start + o["length"] if o["resolved"] else max(start, SPAN)


def events_for(outages, windows):
    evs = []
    for i, o in enumerate(outages):
        oid = f"o{i}"
        start, _ = outage_bounds(o)
        if o["alert"] is not None:
            evs.append(("outage.started", {"event_id": f"a{i}", "occurred_at": at(o["alert"]), "outage_id": oid,
                                           "scope": "partial" if o["partial"] else "all_users"}))
        if o["report"] is not None:
            evs.append(("outage.reported", {"event_id": f"p{i}", "occurred_at": at(o["report"]), "outage_id": oid,
                                            "ticket_id": f"T{i}"}))
        if o["resolved"]:
            evs.append(("outage.resolved", {"event_id": f"r{i}", "occurred_at": at(start + o["length"]),
                                            "outage_id": oid}))
        if o["excluded"]:
            evs.append(("outage.classified", {"event_id": f"c{i}", "occurred_at": at(SPAN), "outage_id": oid,
                                              "cause": "excluded", "category": "third_party"}))
    for j, w in enumerate(windows):
        mid = f"m{j}"
        evs.append(("maintenance.scheduled", {
            "event_id": f"w{j}", "occurred_at": at(w["start"]) - timedelta(hours=w["notice_h"]), "maintenance_id": mid,
            "starts_at": at(w["start"]), "ends_at": at(w["start"] + w["length"])}))
        if w["cancelled"]:
            # cancelled well before it starts: the window does not exist
            evs.append(("maintenance.cancelled", {"event_id": f"x{j}", "occurred_at": at(w["start"]) - timedelta(minutes=30),
                                                  "maintenance_id": mid}))
    return evs


def fold(evs, service="svc"):
    """Apply in the given order; an event rejected because its outage/window is not known yet is retried later."""
    state, pending = new_state(service), list(evs)
    while pending:
        retry = []
        for typ, fields in pending:
            res = apply_event(state, typ, fields)
            if res.error is not None:
                assert res.error[0] in ("unknown_outage", "unknown_maintenance"), res.error
                retry.append((typ, fields))
            else:
                state = res.state
        assert len(retry) < len(pending)
        pending = retry
    return state


def brute_force(outages, windows):
    """Per-minute classification straight from SPEC §8: {month: (downtime, excluded, maintenance)}."""
    qualifying = [w for w in windows if w["notice_h"] >= 48 and not w["cancelled"]]
    used = {"2026-04": 0, "2026-05": 0}
    result = {"2026-04": [0, 0, 0], "2026-05": [0, 0, 0]}
    for m in range(SPAN + 300):  # everything generated ends by then, all of it in May
        month = "2026-04" if m < BOUNDARY else "2026-05"
        in_window = any(w["start"] <= m < w["start"] + w["length"] for w in qualifying)
        scheduled = in_window and used[month] < 240
        if in_window:
            used[month] += 1
        # An outage known only from a customer report has no stated scope: it counts as all_users.
        covering = [o for o in outages if not (o["partial"] and o["alert"] is not None)
                    and outage_bounds(o)[0] <= m < outage_bounds(o)[1]]
        if any(not o["excluded"] for o in covering):
            result[month][2 if scheduled else 0] += 1
        elif covering:
            result[month][1] += 1
    return {k: tuple(v) for k, v in result.items()}


def figures(state):
    out = {}
    for month in ("2026-04", "2026-05"):
        f = month_figures(state, month, AS_OF)
        out[month] = (f.downtime_minutes, f.excluded_minutes, f.maintenance_minutes)
    return out


@settings(max_examples=80, deadline=None)
@given(st.lists(outage_st, max_size=6), st.lists(window_st, max_size=4))
def test_figures_match_a_per_minute_count(outages, windows):
    assert figures(fold(events_for(outages, windows))) == brute_force(outages, windows)


@settings(max_examples=60, deadline=None)
@given(st.lists(outage_st, max_size=6), st.lists(window_st, max_size=3), st.randoms(use_true_random=False))
def test_figures_do_not_depend_on_event_order(outages, windows, rnd):
    evs = events_for(outages, windows)
    shuffled = list(evs)
    rnd.shuffle(shuffled)
    assert figures(fold(shuffled)) == figures(fold(evs))
    assert fold(shuffled + shuffled[: len(shuffled) // 2]) == fold(evs)  # duplicates change nothing


@settings(max_examples=60, deadline=None)
@given(st.lists(outage_st, max_size=6), st.lists(window_st, max_size=3))
def test_month_totals_never_exceed_the_month(outages, windows):
    state = fold(events_for(outages, windows))
    for month in ("2026-04", "2026-05"):
        f = month_figures(state, month, AS_OF)
        assert 0 <= f.downtime_minutes + f.excluded_minutes + f.maintenance_minutes <= f.total_minutes
        assert f.maintenance_minutes <= 240


def merged_length(spans):
    """Length of the union of [a, b) spans by a sort-and-sweep, independent of the ledger's code."""
    total, cur_a, cur_b = timedelta(0), None, None
    for a, b in sorted(s for s in spans if s[0] < s[1]):
        if cur_b is None or a > cur_b:
            if cur_b is not None:
                total += cur_b - cur_a
            cur_a, cur_b = a, b
        else:
            cur_b = max(cur_b, b)
    if cur_b is not None:
        total += cur_b - cur_a
    return total


LONG_BASE = datetime(2026, 1, 20, tzinfo=UTC)
LONG_END = datetime(2026, 4, 1, tzinfo=UTC)  # Jan 20 .. Mar 31: three months


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 70 * 86400), st.integers(0, 20 * 86400)), max_size=8))
def test_splitting_at_month_boundaries_conserves_the_total(spans_s):
    spans = [(LONG_BASE + timedelta(seconds=a), min(LONG_BASE + timedelta(seconds=a + n), LONG_END))
             for a, n in spans_s]
    state = new_state("svc")
    for i, (a, b) in enumerate(spans):
        state = apply_event(state, "outage.started", {"event_id": f"s{i}", "occurred_at": a, "outage_id": f"o{i}"}).state
        state = apply_event(state, "outage.resolved", {"event_id": f"r{i}", "occurred_at": b, "outage_id": f"o{i}"}).state
    months = months_overlapping(LONG_BASE, LONG_END)
    assert months == ["2026-01", "2026-02", "2026-03"]
    per_month = [month_figures(state, m, month_bounds(m)[1]).downtime_minutes for m in months]
    expected = merged_length(spans)
    assert sum(per_month, Fraction(0)) == Fraction(expected.total_seconds()) / 60
