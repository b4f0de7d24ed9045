"""`policies.tickets.utc_iso` writes exactly `t.astimezone(UTC).isoformat()` (the text breach / met ids
hash and the wire writes), whether its memo or its table formats it, for any instant in the accepted
range (1970 to 9000), with or without microseconds, in UTC or in another zone."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import tickets
from policies.tickets import utc_iso

UTC = timezone.utc
instants = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(8999, 12, 31, 23, 59, 59, 999999))
zones = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))])


@settings(max_examples=500, deadline=None)
@given(instants, zones, st.booleans())
def test_utc_iso_is_the_isoformat_of_the_utc_instant(naive, zone, whole_seconds):
    if whole_seconds:
        naive = naive.replace(microsecond=0)
    t = naive.replace(tzinfo=zone)
    expected = t.astimezone(UTC).isoformat()
    assert utc_iso(t) == expected
    assert utc_iso(t) == expected  # from the memo
    tickets._UTC_ISO.clear()
    assert utc_iso(t) == expected  # formatted again (the date's text memoised)


def test_the_ends_of_the_range_and_of_a_day():
    for t in (datetime(1970, 1, 1, tzinfo=UTC), datetime(8999, 12, 31, 23, 59, 59, tzinfo=UTC),
              datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC), datetime(2028, 2, 29, 0, 0, 1, tzinfo=UTC),
              datetime(2026, 3, 1, 3, 32, 18, 1, tzinfo=UTC)):
        tickets._UTC_ISO.clear()
        assert utc_iso(t) == t.isoformat()
