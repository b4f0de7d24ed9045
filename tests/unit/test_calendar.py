"""Hand-computed cases for policies.calendar.BusinessCalendar.

Every expected instant is worked out in the comment next to it; offsets used:
America/New_York EST = UTC-5, EDT = UTC-4 (2026: EDT from Sun 8 Mar 02:00 to
Sun 1 Nov 02:00); Asia/Tokyo JST = UTC+9, no DST; America/Los_Angeles PST = UTC-8.
"""

from __future__ import annotations

import copy
import pickle
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from policies.calendar import BusinessCalendar

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
H = timedelta(hours=1)
M = timedelta(minutes=1)
MON_FRI = range(5)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


def neural_magic() -> BusinessCalendar:
    # SPEC §7: 08:00-20:00 America/New_York Mon-Fri, US federal holidays, day 12 h.
    return BusinessCalendar(
        timezone="America/New_York",
        weekly=[(d, 8 * 60, 20 * 60) for d in MON_FRI],
        day_length=timedelta(hours=12),
        holiday_regions=[("US", None)],
    )


def vectorize_pro(categories: tuple[str, ...] = ("public",)) -> BusinessCalendar:
    # SPEC §7: 07:00-19:00 America/New_York Mon-Fri, US and Canadian holidays, day 12 h.
    return BusinessCalendar(
        timezone="America/New_York",
        weekly=[(d, 7 * 60, 19 * 60) for d in MON_FRI],
        day_length=timedelta(hours=12),
        holiday_regions=[("US", None), ("CA", None)],
        holiday_categories=categories,
    )


def utc_24x5(**kwargs) -> BusinessCalendar:
    # Rescale Enterprise: Mon 00:00 to Sat 00:00 UTC.
    return BusinessCalendar(
        timezone="UTC",
        weekly=[(d, 0, 1440) for d in MON_FRI],
        day_length=timedelta(hours=24),
        **kwargs,
    )


def assert_utc(t: datetime, expected: datetime) -> None:
    assert t == expected
    assert t.tzinfo is UTC


# --- Neural Magic ------------------------------------------------------------------


def test_friday_evening_plus_two_hours_lands_monday_nine():
    cal = neural_magic()
    # Fri 23 Jan 2026 19:00 EST: 1 h left on Friday (to 20:00), weekend closed,
    # Mon 26 Jan 08:00 EST + 1 h = 09:00 EST = 14:00 UTC.
    assert_utc(cal.add_business(ny(2026, 1, 23, 19), 2 * H), utc(2026, 1, 26, 14))


def test_martin_luther_king_day_is_closed():
    cal = neural_magic()
    # Fri 16 Jan 2026 19:00 EST + 2 h: 1 h Friday, Mon 19 Jan is MLK Day (federal),
    # Tue 20 Jan 08:00 + 1 h = 09:00 EST = 14:00 UTC.
    assert_utc(cal.add_business(ny(2026, 1, 16, 19), 2 * H), utc(2026, 1, 20, 14))
    assert not cal.is_open(ny(2026, 1, 19, 12))


def test_opened_on_saturday_counts_from_monday_opening():
    cal = neural_magic()
    saturday = ny(2026, 1, 24, 10)
    # Nothing counts before Mon 26 Jan 08:00 EST (13:00 UTC); + 2 h = 15:00 UTC.
    assert_utc(cal.add_business(saturday, 2 * H), utc(2026, 1, 26, 15))
    # d == 0 from a closed instant is the next opening.
    assert_utc(cal.add_business(saturday, timedelta(0)), utc(2026, 1, 26, 13))
    assert cal.business_between(saturday, ny(2026, 1, 26, 8)) == timedelta(0)


def test_zero_duration_from_open_instant_is_that_instant():
    cal = neural_magic()
    t = ny(2026, 1, 27, 11, 15)
    assert_utc(cal.add_business(t, timedelta(0)), utc(2026, 1, 27, 16, 15))


def test_thanksgiving_2026():
    cal = neural_magic()
    # Wed 25 Nov 2026 19:00 EST + 2 business days (2 x 12 h = 24 h):
    # Wed 1 h; Thu 26 Nov Thanksgiving closed; Fri 27 Nov 12 h (13 h so far);
    # Mon 30 Nov 08:00 + 11 h = 19:00 EST = Tue 1 Dec 00:00 UTC.
    assert_utc(
        cal.add_business(ny(2026, 11, 25, 19), cal.business_days(2)), utc(2026, 12, 1, 0)
    )
    assert cal.business_between(ny(2026, 11, 26, 0), ny(2026, 11, 27, 0)) == timedelta(0)


def test_spring_forward_weekend_2026():
    cal = neural_magic()
    # Fri 6 Mar 2026 19:00 EST (Sat 00:00 UTC): 1 h Friday; clocks go forward Sun 8 Mar;
    # Mon 9 Mar 08:00 EDT (12:00 UTC) + 1 h = 13:00 UTC.
    assert_utc(cal.add_business(ny(2026, 3, 6, 19), 2 * H), utc(2026, 3, 9, 13))
    # Friday is open 13:00-01:00 UTC, Monday 12:00-00:00 UTC. From Fri 13:00 UTC to
    # Mon 13:00 UTC: Friday 12 h + Monday 12:00-13:00 UTC 1 h = 13 h.
    assert cal.business_between(utc(2026, 3, 6, 13), utc(2026, 3, 9, 13)) == 13 * H
    assert cal.is_open(utc(2026, 3, 9, 12))
    assert not cal.is_open(utc(2026, 3, 6, 12, 59))
    assert cal.is_open(utc(2026, 3, 7, 0, 59))


def test_fall_back_weekend_2026():
    cal = neural_magic()
    # Fri 30 Oct 2026 19:00 EDT (23:00 UTC): 1 h to 20:00 EDT (Sat 00:00 UTC);
    # clocks go back Sun 1 Nov; Mon 2 Nov 08:00 EST (13:00 UTC) + 1 h = 14:00 UTC.
    assert_utc(cal.add_business(ny(2026, 10, 30, 19), 2 * H), utc(2026, 11, 2, 14))
    assert not cal.is_open(utc(2026, 11, 2, 12, 30))


def test_deadline_exactly_at_closing_is_the_closing_instant():
    cal = neural_magic()
    # Mon 26 Jan 2026 18:00 EST + 2 h = 20:00 EST = Tue 27 Jan 01:00 UTC, not Tue 08:00.
    due = cal.add_business(ny(2026, 1, 26, 18), 2 * H)
    assert_utc(due, utc(2026, 1, 27, 1))
    assert not cal.is_open(due)  # the closing instant itself is closed
    assert cal.is_open(due - timedelta(microseconds=1))
    # Same on a Friday: Fri 30 Jan 18:00 + 2 h = Fri 20:00 EST = Sat 01:00 UTC.
    assert_utc(cal.add_business(ny(2026, 1, 30, 18), 2 * H), utc(2026, 1, 31, 1))


def test_opening_instant_is_open():
    cal = neural_magic()
    assert cal.is_open(ny(2026, 1, 26, 8))
    assert not cal.is_open(ny(2026, 1, 26, 7, 59, 59))
    assert not cal.is_open(ny(2026, 1, 26, 20))


def test_sixty_business_days_walks_days_not_minutes():
    cal = neural_magic()
    # 60 bd = 60 open days from Mon 5 Jan 2026 08:00 EST. January 5-30: 20 weekdays
    # - MLK (19 Jan) = 19; February 2-27: 20 - Presidents Day (16 Feb) = 19 (38);
    # March 2-31: 22 weekdays (60). The 60th ends Tue 31 Mar 20:00 EDT = 1 Apr 00:00 UTC.
    start = ny(2026, 1, 5, 8)
    assert_utc(cal.add_business(start, cal.business_days(60)), utc(2026, 4, 1, 0))
    assert cal.business_between(start, utc(2026, 4, 1, 0)) == 720 * H
    fresh = BusinessCalendar(  # own cache (extra date makes it a different calendar)
        timezone="America/New_York",
        weekly=[(d, 8 * 60, 20 * 60) for d in MON_FRI],
        day_length=timedelta(hours=12),
        holiday_regions=[("US", None)],
        extra_closed_dates=[date(2031, 1, 2)],
    )
    began = time.perf_counter()
    for k in range(200):
        fresh.add_business(start + k * 37 * M, fresh.business_days(60))
    assert time.perf_counter() - began < 2.0  # ~100 days of cached intervals per call


# --- 24x5 UTC (Rescale Enterprise) ------------------------------------------------


def test_24x5_friday_late_to_monday():
    cal = utc_24x5()
    # Fri 23 Jan 2026 23:00 UTC: 1 h to Sat 00:00; Mon 26 Jan 00:00 + 1 h = 01:00 UTC.
    assert_utc(cal.add_business(utc(2026, 1, 23, 23), 2 * H), utc(2026, 1, 26, 1))
    # Mon 00:00 .. Sat 00:00 is one stretch: 5 x 24 h, midnights are not closings.
    assert cal.business_between(utc(2026, 1, 26), utc(2026, 2, 2)) == 120 * H
    assert cal.is_open(utc(2026, 1, 27, 0))
    assert_utc(cal.add_business(utc(2026, 1, 26, 23), 2 * H), utc(2026, 1, 27, 1))
    assert not cal.is_open(utc(2026, 1, 31, 0))


def test_24x5_utc_hours_with_customer_local_holidays():
    cal = utc_24x5(holiday_regions=[("US", None)], holiday_timezone="America/Los_Angeles")
    # Thanksgiving Thu 26 Nov 2026 in Los Angeles (PST) = [26 Nov 08:00, 27 Nov 08:00) UTC.
    # Wed 25 Nov 23:00 UTC + 10 h: 1 h to Thu 00:00 UTC, Thu 00:00-08:00 UTC 8 h (9 h),
    # closed until Fri 27 Nov 08:00 UTC, + 1 h = 09:00 UTC.
    assert_utc(cal.add_business(utc(2026, 11, 25, 23), 10 * H), utc(2026, 11, 27, 9))
    assert cal.is_open(utc(2026, 11, 26, 7, 59))
    assert not cal.is_open(utc(2026, 11, 26, 8))
    assert cal.is_open(utc(2026, 11, 27, 8))
    assert cal.describe() == (
        "Mon-Fri 00:00-24:00 UTC, closed on holidays US (days in America/Los_Angeles)"
    )


def test_extra_closed_dates_close_local_days():
    cal = utc_24x5(extra_closed_dates=[date(2026, 2, 3)])
    # Mon 2 Feb 22:00 UTC + 4 h: 2 h to Tue 00:00, Tue 3 Feb closed, Wed 00:00 + 2 h.
    assert_utc(cal.add_business(utc(2026, 2, 2, 22), 4 * H), utc(2026, 2, 4, 2))


# --- Vectorize Pro (US + CA holidays) ---------------------------------------------


def test_canada_day_closes_vectorize_pro():
    cal = vectorize_pro()
    # Tue 30 Jun 2026 18:00 EDT + 2 h: 1 h Tuesday (to 19:00); Wed 1 Jul Canada Day
    # closed; Thu 2 Jul 07:00 EDT + 1 h = 08:00 EDT = 12:00 UTC.
    assert_utc(cal.add_business(ny(2026, 6, 30, 18), 2 * H), utc(2026, 7, 2, 12))
    # Thu 2 Jul 18:00 EDT + 2 h: 1 h Thursday; Fri 3 Jul is Independence Day observed
    # (US); weekend; Mon 6 Jul 07:00 EDT + 1 h = 12:00 UTC.
    assert_utc(cal.add_business(ny(2026, 7, 2, 18), 2 * H), utc(2026, 7, 6, 12))


def test_vectorize_enterprise_is_open_on_holidays():
    cal = BusinessCalendar(
        timezone="America/New_York",
        weekly=[(d, 7 * 60, 19 * 60) for d in MON_FRI],
        day_length=timedelta(hours=12),
    )
    # Tue 30 Jun 18:00 EDT + 2 h: 1 h Tuesday, Wed 1 Jul 07:00 + 1 h = 08:00 EDT = 12:00 UTC.
    assert_utc(cal.add_business(ny(2026, 6, 30, 18), 2 * H), utc(2026, 7, 1, 12))


def test_boxing_day_and_christmas_2026():
    # Christmas Fri 25 Dec 2026 is public in both. Boxing Day Sat 26 Dec 2026 is a
    # weekend; its observed Monday 28 Dec is, for Canada as a whole, in the `holidays`
    # package's "optional" category (Boxing Day is not a nationwide public holiday).
    public_only = vectorize_pro()
    # Thu 24 Dec 18:00 EST + 2 h: 1 h Thu, Fri 25 closed, Mon 28 Dec 07:00 + 1 h = 08:00 EST = 13:00 UTC.
    assert_utc(public_only.add_business(ny(2026, 12, 24, 18), 2 * H), utc(2026, 12, 28, 13))
    assert not public_only.is_open(ny(2026, 12, 26, 12))
    with_optional = vectorize_pro(("public", "optional"))
    # ... with "optional" Mon 28 Dec is closed too: Tue 29 Dec 08:00 EST = 13:00 UTC.
    assert_utc(with_optional.add_business(ny(2026, 12, 24, 18), 2 * H), utc(2026, 12, 29, 13))
    assert not with_optional.is_open(ny(2026, 12, 28, 12))


# --- Asia/Tokyo with JP holidays ---------------------------------------------------


def test_tokyo_golden_week_2026():
    cal = BusinessCalendar(
        timezone="Asia/Tokyo",
        weekly=[(d, 9 * 60, 17 * 60) for d in MON_FRI],
        day_length=timedelta(hours=8),
        holiday_regions=[("JP", None)],
    )
    # Fri 1 May 2026 16:00 JST + 2 h: 1 h Friday; Mon 4 (Greenery Day), Tue 5
    # (Children's Day), Wed 6 (substitute for Constitution Day on Sunday 3) closed;
    # Thu 7 May 09:00 JST + 1 h = 10:00 JST = 01:00 UTC.
    start = datetime(2026, 5, 1, 16, tzinfo=TOKYO)
    assert_utc(cal.add_business(start, 2 * H), utc(2026, 5, 7, 1))
    # Thu 30 Apr 09:00 JST (00:00 UTC) + 1 bd = 17:00 JST = 08:00 UTC (Showa Day was Wed 29).
    assert_utc(cal.add_business(utc(2026, 4, 30, 0), cal.business_days(1)), utc(2026, 4, 30, 8))


# --- DST days on full-day intervals ------------------------------------------------


def sundays_all_day_new_york() -> BusinessCalendar:
    return BusinessCalendar(
        timezone="America/New_York", weekly=[(6, 0, 1440)], day_length=timedelta(hours=24)
    )


def test_fall_back_sunday_holds_25_hours():
    cal = sundays_all_day_new_york()
    # Sun 1 Nov 2026 00:00 EDT = 04:00 UTC to Mon 2 Nov 00:00 EST = 05:00 UTC: 25 h.
    assert cal.business_between(utc(2026, 10, 31), utc(2026, 11, 3)) == 25 * H
    assert_utc(cal.add_business(utc(2026, 10, 31, 12), 25 * H), utc(2026, 11, 2, 5))
    # 24 h after opening is 23:00 EST on Sunday, still open.
    assert_utc(cal.add_business(utc(2026, 10, 31, 12), 24 * H), utc(2026, 11, 2, 4))
    # One second more than that Sunday's 25 h continues on Sun 8 Nov 00:00 EST = 05:00 UTC.
    assert_utc(
        cal.add_business(utc(2026, 10, 31, 12), 25 * H + timedelta(seconds=1)),
        utc(2026, 11, 8, 5, 0, 1),
    )


def test_spring_forward_sunday_holds_23_hours():
    cal = sundays_all_day_new_york()
    # Sun 8 Mar 2026 00:00 EST = 05:00 UTC to Mon 9 Mar 00:00 EDT = 04:00 UTC: 23 h.
    assert cal.business_between(utc(2026, 3, 7), utc(2026, 3, 10)) == 23 * H


def test_week_of_full_days_across_dst_with_holidays():
    # 7 x 00:00-24:00 in New York with US holidays (not the 24x7 fast path).
    cal = BusinessCalendar(
        timezone="America/New_York",
        weekly=[(d, 0, 1440) for d in range(7)],
        day_length=timedelta(hours=24),
        holiday_regions=[("US", None)],
    )
    # Mon 2 Mar 00:00 EST to Mon 9 Mar 00:00 EDT: 7 x 24 h - 1 h (spring forward).
    assert cal.business_between(ny(2026, 3, 2), ny(2026, 3, 9)) == 167 * H
    # The local midnight between two open days is not a closing: Tue 23:00 + 2 h = Wed 01:00.
    assert_utc(cal.add_business(ny(2026, 3, 3, 23), 2 * H), utc(2026, 3, 4, 6))


def test_interval_starting_in_dst_gap_maps_forward():
    # Sun 8 Mar 2026 02:30 does not exist in New York; fold=0 reads it with the EST
    # offset: 07:30 UTC = 03:30 EDT. 04:00 EDT = 08:00 UTC. So 30 min open that day.
    cal = BusinessCalendar(
        timezone="America/New_York", weekly=[(6, 150, 240)], day_length=timedelta(hours=1)
    )
    assert cal.business_between(utc(2026, 3, 8), utc(2026, 3, 9)) == 30 * M
    assert_utc(cal.add_business(utc(2026, 3, 8), timedelta(0)), utc(2026, 3, 8, 7, 30))
    # A normal Sunday: 02:30-04:00 EST = 07:30-09:00 UTC, 90 min.
    assert cal.business_between(utc(2026, 3, 1), utc(2026, 3, 2)) == 90 * M


def test_ambiguous_start_uses_first_occurrence():
    # Sun 1 Nov 2026 01:30 happens twice; the first is 01:30 EDT = 05:30 UTC.
    # 03:00 EST = 08:00 UTC, so the interval 01:30-03:00 holds 2 h 30 min that day.
    cal = BusinessCalendar(
        timezone="America/New_York", weekly=[(6, 90, 180)], day_length=timedelta(hours=1)
    )
    assert cal.business_between(utc(2026, 11, 1), utc(2026, 11, 2)) == 150 * M
    assert_utc(cal.add_business(utc(2026, 11, 1), timedelta(0)), utc(2026, 11, 1, 5, 30))


# --- always_open, business_days, validation, identity --------------------------------


def test_always_open():
    cal = BusinessCalendar.always_open()
    t = ny(2026, 3, 8, 1, 30)
    assert_utc(cal.add_business(t, 30 * M), utc(2026, 3, 8, 7))
    assert cal.business_between(utc(2026, 3, 8), utc(2026, 3, 9)) == 24 * H
    assert cal.is_open(utc(2026, 12, 25, 12))
    assert cal.day_length == 24 * H
    assert cal.business_days(2) == 48 * H
    assert cal.describe() == "24x7"


def test_business_days_uses_day_length():
    cal = neural_magic()
    assert cal.business_days(5) == 60 * H
    assert cal.business_days(Decimal("0.5")) == 6 * H
    assert cal.business_days(0) == timedelta(0)
    with pytest.raises(ValueError):
        cal.business_days(-1)


def test_business_between_empty_or_reversed_range_is_zero():
    cal = neural_magic()
    t = ny(2026, 1, 27, 12)
    assert cal.business_between(t, t) == timedelta(0)
    assert cal.business_between(t, t - H) == timedelta(0)
    # Tue 27 Jan 10:00-14:00 EST is all open.
    assert cal.business_between(ny(2026, 1, 27, 10), ny(2026, 1, 27, 14)) == 4 * H


def test_naive_datetimes_are_rejected():
    cal = neural_magic()
    naive = datetime(2026, 1, 27, 12)
    with pytest.raises(ValueError):
        cal.add_business(naive, H)
    with pytest.raises(ValueError):
        cal.is_open(naive)
    with pytest.raises(ValueError):
        cal.business_between(naive, ny(2026, 1, 28))
    with pytest.raises(ValueError):
        BusinessCalendar.always_open().add_business(naive, H)


def test_negative_duration_is_rejected():
    with pytest.raises(ValueError):
        neural_magic().add_business(ny(2026, 1, 27, 12), -H)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weekly": []},
        {"weekly": [(7, 0, 60)]},
        {"weekly": [(0, 60, 60)]},
        {"weekly": [(0, 0, 1441)]},
        {"weekly": [(0, 0)]},
        {"timezone": "Mars/Olympus_Mons"},
        {"day_length": timedelta(0)},
        {"holiday_regions": [("XX", None)]},
        {"holiday_regions": [("US", "ZZ")]},
        {"holiday_regions": [("US", None)], "holiday_categories": ("bogus",)},
    ],
)
def test_invalid_definitions_raise(kwargs):
    base = {"timezone": "UTC", "weekly": [(0, 0, 60)], "day_length": H}
    with pytest.raises(ValueError):
        BusinessCalendar(**(base | kwargs))


def test_calendar_closed_for_years_raises_instead_of_looping():
    # Only Mondays open, and every Monday of 2026-2029 listed as closed.
    mondays = [date(2026, 1, 5) + timedelta(weeks=k) for k in range(4 * 53)]
    cal = BusinessCalendar(
        timezone="UTC", weekly=[(0, 0, 60)], day_length=H, extra_closed_dates=mondays
    )
    with pytest.raises(ValueError, match="no open time"):
        cal.add_business(utc(2026, 1, 1), H)


def test_equal_definitions_are_equal_hashable_and_immutable():
    a, b = neural_magic(), neural_magic()
    assert a == b and hash(a) == hash(b)
    assert len({a, b, vectorize_pro()}) == 2
    with pytest.raises(AttributeError):
        a._day_length = H  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(a)) == a
    assert copy.deepcopy(a) is a
    # Same-day overlapping intervals are normalised, so these are the same calendar.
    c = BusinessCalendar(
        timezone="UTC", weekly=[(0, 0, 300), (0, 200, 600)], day_length=10 * H
    )
    d = BusinessCalendar(timezone="UTC", weekly=[(0, 0, 600)], day_length=10 * H)
    assert c == d and c.weekly == ((0, 0, 600),)


def test_describe():
    assert neural_magic().describe() == (
        "Mon-Fri 08:00-20:00 America/New_York, closed on holidays US"
    )
    assert vectorize_pro().describe() == (
        "Mon-Fri 07:00-19:00 America/New_York, closed on holidays US, CA"
    )
    odd = BusinessCalendar(
        timezone="Europe/Paris",
        weekly=[(0, 540, 720), (0, 780, 1080), (1, 540, 720), (1, 780, 1080), (5, 600, 660)],
        day_length=timedelta(hours=8),
        holiday_regions=[("FR", None)],
        extra_closed_dates=[date(2026, 12, 24)],
    )
    assert odd.describe() == (
        "Mon-Tue 09:00-12:00, 13:00-18:00; Sat 10:00-11:00 Europe/Paris,"
        " closed on holidays FR, 1 extra closed date"
    )
