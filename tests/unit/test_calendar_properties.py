"""Properties of BusinessCalendar over DST zones, holidays, 24x5 UTC and 24x7.

Instants are whole seconds in 2024-2028, drawn uniformly, on whole hours (to hit
openings and closings exactly) and within days of each zone's DST transitions.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.calendar import BusinessCalendar

UTC = timezone.utc
TICK = timedelta(microseconds=1)
MON_FRI = range(5)


def weekdays(start_h: int, end_h: int, days=MON_FRI) -> list[tuple[int, int, int]]:
    return [(d, start_h * 60, end_h * 60) for d in days]


# (calendar, oracle definition or None). The oracle is the plain-language rule
# "open iff the local wall time lies in a weekly interval and the local date (in
# the holiday zone) is not a holiday"; it is exact for calendars none of whose
# interval ends falls in a DST gap or repeated hour.
CASES: dict[str, tuple[BusinessCalendar, dict | None]] = {}


def add_case(name: str, oracle: bool = True, **kwargs) -> None:
    cal = BusinessCalendar(**kwargs)
    CASES[name] = (cal, kwargs if oracle else None)


add_case(
    "neural-magic-new-york",
    timezone="America/New_York",
    weekly=weekdays(8, 20),
    day_length=timedelta(hours=12),
    holiday_regions=[("US", None)],
)
add_case(
    "vectorize-pro-us-ca",
    timezone="America/New_York",
    weekly=weekdays(7, 19),
    day_length=timedelta(hours=12),
    holiday_regions=[("US", None), ("CA", None)],
)
add_case(
    "rescale-americas-los-angeles",
    timezone="America/Los_Angeles",
    weekly=weekdays(6, 18),
    day_length=timedelta(hours=12),
    holiday_regions=[("US", "CA")],
)
add_case(
    "paris",
    timezone="Europe/Paris",
    weekly=weekdays(9, 17),
    day_length=timedelta(hours=8),
    holiday_regions=[("FR", None)],
)
add_case(
    "sydney",
    timezone="Australia/Sydney",
    weekly=weekdays(9, 17),
    day_length=timedelta(hours=8),
    holiday_regions=[("AU", "NSW")],
)
add_case(
    "utc-24x5-la-holidays",
    timezone="UTC",
    weekly=weekdays(0, 24),
    day_length=timedelta(hours=24),
    holiday_regions=[("US", None)],
    holiday_timezone="America/Los_Angeles",
)
add_case(
    "utc-24x5",
    timezone="UTC",
    weekly=weekdays(0, 24),
    day_length=timedelta(hours=24),
)
add_case(
    "new-york-7x24-with-holidays",
    timezone="America/New_York",
    weekly=weekdays(0, 24, days=range(7)),
    day_length=timedelta(hours=24),
    holiday_regions=[("US", None)],
)
add_case(
    "paris-split-days-and-saturday",
    timezone="Europe/Paris",
    weekly=[(d, 540, 720) for d in MON_FRI] + [(d, 780, 1080) for d in MON_FRI] + [(5, 0, 1440)],
    day_length=timedelta(hours=8),
    holiday_regions=[("FR", None)],
    extra_closed_dates=[date(2026, 12, 24), date(2027, 8, 16)],
)
# Interval ends inside DST gaps and repeated hours (Paris 02:00-03:00 on the
# last Sundays of March/October; Sydney 02:00-03:00 on the first Sundays of
# October/April): only the general properties apply, not the wall-time oracle.
add_case(
    "paris-night-edges",
    oracle=False,
    timezone="Europe/Paris",
    weekly=[(6, 0, 150), (6, 135, 200), (6, 170, 1440), (0, 0, 150)],
    day_length=timedelta(hours=2),
)
add_case(
    "sydney-night-edges",
    oracle=False,
    timezone="Australia/Sydney",
    weekly=[(6, 150, 165), (6, 120, 180), (5, 1380, 1440), (6, 0, 30)],
    day_length=timedelta(hours=1),
)
CASES["always-open"] = (BusinessCalendar.always_open(), None)

CALENDARS = [cal for cal, _ in CASES.values()]
ORACLE_CASES = [(cal, kw) for cal, kw in CASES.values() if kw is not None]

LO = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
HI = int(datetime(2028, 12, 1, tzinfo=UTC).timestamp())


def _dst_transitions() -> list[int]:
    """Approximate (to the day) DST transition instants of the zones used, 2024-2028."""
    found = []
    for key in ("America/New_York", "America/Los_Angeles", "Europe/Paris", "Australia/Sydney"):
        zone = ZoneInfo(key)
        previous = None
        for t in range(LO, HI, 86400):
            offset = datetime.fromtimestamp(t, zone).utcoffset()
            if previous is not None and offset != previous:
                found.append(t)
            previous = offset
    return found


TRANSITIONS = _dst_transitions()


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


instants = st.one_of(
    st.integers(LO, HI),
    st.integers(LO // 3600, HI // 3600).map(lambda h: h * 3600),
    st.builds(
        lambda base, delta: base + delta,
        st.sampled_from(TRANSITIONS),
        st.integers(-4 * 86400, 4 * 86400),
    ),
).map(_at)

durations = st.one_of(
    st.just(0),
    st.integers(1, 120),
    st.integers(0, 300).map(lambda h: h * 1800),
    st.integers(0, 35 * 86400),
).map(lambda s: timedelta(seconds=s))

calendars = st.sampled_from(CALENDARS)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(calendars, instants, durations)
def test_business_between_inverts_add_business(cal, t, d):
    due = cal.add_business(t, d)
    assert due.tzinfo is UTC
    assert due >= t
    assert cal.business_between(t, due) == d


@FAST
@given(calendars, instants, durations, durations)
def test_add_business_composes(cal, t, d1, d2):
    # Precisely: add(add(t, d1), d2) == add(t, d1 + d2) for every d2 > 0 (a closing
    # instant reached after d1 waits for the next opening, as add(t, d1 + d2) does).
    # For d2 == 0 it holds exactly when add(t, d1) is open: a deadline on a closing
    # instant stays there, but restarting from it moves to the next opening.
    first = cal.add_business(t, d1)
    again = cal.add_business(first, d2)
    if d2 > timedelta(0) or cal.is_open(first):
        assert again == cal.add_business(t, d1 + d2)
    else:
        assert again > first
        assert cal.is_open(again)
        assert cal.business_between(first, again) == timedelta(0)


@FAST
@given(calendars, instants, durations, durations)
def test_add_business_is_monotonic_in_duration(cal, t, d1, d2):
    lo, hi = sorted((d1, d2))
    assert cal.add_business(t, lo) <= cal.add_business(t, hi)
    if lo < hi:
        assert cal.add_business(t, lo) < cal.add_business(t, hi)


@FAST
@given(calendars, instants, instants, durations)
def test_add_business_is_monotonic_in_start(cal, t1, t2, d):
    early, late = sorted((t1, t2))
    assert cal.add_business(early, d) <= cal.add_business(late, d)


@FAST
@given(calendars, instants, durations)
def test_deadline_lies_in_open_time_or_on_a_closing(cal, t, d):
    due = cal.add_business(t, d)
    if d > timedelta(0):
        # Either open, or exactly a closing instant: the instant just before is open.
        assert cal.is_open(due - TICK)
    else:
        assert cal.is_open(due)
        assert cal.business_between(t, due) == timedelta(0)


@FAST
@given(calendars, instants)
def test_zero_duration_is_identity_exactly_when_open(cal, t):
    assert (cal.add_business(t, timedelta(0)) == t) == cal.is_open(t)


@settings(max_examples=150, deadline=None)  # spans of up to 5 years: walked day by day
@given(calendars, instants, instants, instants)
def test_business_between_is_additive(cal, a, b, c):
    a, b, c = sorted((a, b, c))
    ab, bc, ac = cal.business_between(a, b), cal.business_between(b, c), cal.business_between(a, c)
    assert ab + bc == ac
    assert timedelta(0) <= ac <= c - a
    assert cal.business_between(c, a) == timedelta(0) or a == c


@FAST
@given(calendars, instants)
def test_is_open_agrees_with_business_between(cal, t):
    # Instants here and all openings/closings are whole seconds (wall minutes in
    # zones with whole-minute offsets), so the second from t is open throughout
    # exactly when t is open, and closed throughout otherwise.
    second = timedelta(seconds=1)
    assert cal.business_between(t, t + second) == (second if cal.is_open(t) else timedelta(0))


_HOLIDAY_TABLES: dict = {}


def _oracle_is_open(kwargs: dict, t: datetime) -> bool:
    zone = ZoneInfo(kwargs["timezone"])
    local = t.astimezone(zone)
    minute = local.hour * 60 + local.minute  # interval ends are whole minutes
    in_hours = any(
        wd == local.weekday() and start <= minute < end for wd, start, end in kwargs["weekly"]
    )
    if not in_hours:
        return False
    holiday_zone = ZoneInfo(kwargs.get("holiday_timezone") or kwargs["timezone"])
    day = t.astimezone(holiday_zone).date()
    if day in set(kwargs.get("extra_closed_dates", ())):
        return False
    for country, subdivision in kwargs.get("holiday_regions", ()):
        key = (country, subdivision)
        if key not in _HOLIDAY_TABLES:
            _HOLIDAY_TABLES[key] = holidays.country_holidays(country, subdiv=subdivision)
        if day in _HOLIDAY_TABLES[key]:
            return False
    return True


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(ORACLE_CASES), instants)
def test_is_open_matches_wall_time_rule(case, t):
    cal, kwargs = case
    assert cal.is_open(t) == _oracle_is_open(kwargs, t)


# The block table (`_add_by_table`, `_between_by_table`) against the day-by-day walk it replaced
# (`_add_by_walk`, `_between_by_walk`): equal results on every case above, on random weekly
# calendars in DST zones (with holidays in another zone), and on one closed for longer than a
# block (the walk decides there). Instants to the microsecond.
LONG_CLOSURE = BusinessCalendar(
    timezone="Europe/Paris",
    weekly=weekdays(9, 17),
    day_length=timedelta(hours=8),
    extra_closed_dates=[date(2026, 7, 1) + timedelta(days=i) for i in range(75)],
)
random_calendars = st.builds(
    lambda zone, spans, regions, holiday_zone: BusinessCalendar(
        timezone=zone,
        weekly=[(d, s, s + length) for d, s, length in spans],
        day_length=timedelta(hours=8),
        holiday_regions=regions,
        holiday_timezone=holiday_zone or zone,
    ),
    st.sampled_from(["America/New_York", "Europe/Paris", "Australia/Sydney", "Pacific/Kiritimati", "UTC"]),
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1380), st.integers(1, 720))
             .map(lambda x: (x[0], x[1], min(x[2], 1440 - x[1]))), min_size=1, max_size=6),
    st.sampled_from([[], [("US", None)], [("FR", None), ("AU", "NSW")]]),
    st.sampled_from([None, "America/Los_Angeles", "Asia/Tokyo"]),
)
table_calendars = st.one_of(calendars, st.just(LONG_CLOSURE), random_calendars)
micro_instants = st.builds(lambda t, us: t + timedelta(microseconds=us), instants, st.integers(0, 999_999))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_calendars, micro_instants, durations, st.integers(0, 999_999))
def test_add_business_by_table_equals_the_walk(cal, t, d, us):
    d += timedelta(microseconds=us)
    assert cal.add_business(t, d) == cal._add_by_walk(t, d)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_calendars, micro_instants, durations)
def test_business_between_by_table_equals_the_walk(cal, a, span):
    b = a + span
    expected = cal._between_by_walk(a, b) if b > a else timedelta(0)
    assert cal.business_between(a, b) == expected


def test_long_closure_is_walked_over():
    start = datetime(2026, 6, 30, 14, 0, tzinfo=UTC)
    # 16:00 in Paris: 1 h of 30 June left, then nothing until Monday 14 September (75 closed
    # days, more than two blocks), open from 09:00 Paris (07:00 UTC)
    assert LONG_CLOSURE.add_business(start, timedelta(hours=4)) == datetime(2026, 9, 14, 10, 0, tzinfo=UTC)
    assert LONG_CLOSURE.business_between(start, datetime(2026, 9, 14, 9, 0, tzinfo=UTC)) == timedelta(hours=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table_calendars, micro_instants, durations, st.integers(0, 7200))
def test_business_between_by_table_equals_the_walk_near_openings_and_closings(cal, a, d, back):
    b = cal.add_business(a, d) - timedelta(seconds=back)  # on or just before an opening / a closing
    expected = cal._between_by_walk(a, b) if b > a else timedelta(0)
    assert cal.business_between(a, b) == expected
