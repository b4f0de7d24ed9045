"""Business calendar: weekly open hours in an IANA time zone, minus holidays.

All instants going in must be timezone-aware; all instants coming out are UTC
(``datetime.timezone.utc``). Durations are ``timedelta`` of real elapsed time.

Semantics (SPEC §5, docs/design.md "Calendar"):

* Weekly intervals ``(weekday, start_minute, end_minute)`` are local wall time
  in ``timezone`` (0 = Monday, minutes 0..1440). They are converted to UTC per
  local date, so DST moves them in UTC.
* Wall times are converted with zoneinfo's ``fold=0``: a time that does not
  exist (spring-forward gap) maps forward by the gap (02:30 on a New York
  spring-forward day is 03:30 EDT); an ambiguous time (fall-back) is its first
  occurrence.
* An interval that contains a DST transition is as long as the real time
  between its two (converted) ends: ``00:00-24:00`` on a spring-forward day
  holds 23 h of open time, on a fall-back day 25 h.
* Everything an interval of local date D yields is clipped to that date's own
  span ``[D 00:00, D+1 00:00)`` (both converted as above), so the open time of
  consecutive dates never overlaps, even in zones whose DST gap sits at
  midnight. Intervals of one date that overlap after conversion are merged.
* A holiday (union of all ``holiday_regions``) or an extra closed date closes
  the whole local calendar day in ``holiday_timezone`` (default: ``timezone``),
  i.e. the real span ``[H 00:00, H+1 00:00)`` of that zone.
* ``is_open(t)``: the start of an interval is open, its end is closed.
"""

from __future__ import annotations

import functools
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta, timezone as _tz
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as _holidays

__all__ = ["BusinessCalendar"]

UTC = _tz.utc
MINUTES_PER_DAY = 1440
ONE_DAY = timedelta(days=1)
# add_business gives up when this many consecutive local days hold no open
# time: such a calendar would otherwise be searched forever.
MAX_CLOSED_DAYS = 3 * 366
# The per-date interval cache is shared by equal calendars; it is cleared when
# it grows past this many dates (about 50 years of one calendar) to bound memory.
MAX_CACHED_DAYS = 20_000
# `add_business` / `business_between` read a table of the open intervals of BLOCK_DAYS local
# dates at a time (bisect and prefix sums instead of a walk day by day in Python), at most
# MAX_CACHED_BLOCKS blocks per shared cache (cleared when full, like the days).
BLOCK_DAYS = 32
MAX_CACHED_BLOCKS = MAX_CACHED_DAYS // BLOCK_DAYS

_ZERO = timedelta(0)
_LAST_ORDINAL = date.max.toordinal()

_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Interval = tuple[datetime, datetime]


def _zone(key: str, what: str) -> ZoneInfo:
    if not isinstance(key, str) or not key:
        raise ValueError(f"{what} must be an IANA time zone name, got {key!r}")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{what}: unknown IANA time zone {key!r}") from exc


def _require_aware(t: datetime, name: str) -> datetime:
    # The core's instants are UTC datetimes: returned as they are (what `astimezone(UTC)` returns
    # for one already in UTC), without the type, offset and conversion calls, once per calendar call.
    if type(t) is datetime and t.tzinfo is UTC:
        return t
    if not isinstance(t, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(t).__name__}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {t.isoformat()}")
    return t.astimezone(UTC)


def _wall_to_utc(zone: ZoneInfo, day: date, minute: int) -> datetime:
    """UTC instant of local wall time ``minute`` (0..1440) on ``day``; fold=0."""
    if minute == MINUTES_PER_DAY:
        day, minute = day + ONE_DAY, 0
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(UTC)


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Union of half-open intervals, sorted; touching intervals are joined."""
    merged: list[list[datetime]] = []
    for start, end in sorted(intervals):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _subtract(intervals: list[Interval], closed: list[Interval]) -> list[Interval]:
    result = intervals
    for c_start, c_end in closed:
        kept: list[Interval] = []
        for start, end in result:
            if end <= c_start or start >= c_end:
                kept.append((start, end))
                continue
            if start < c_start:
                kept.append((start, c_start))
            if end > c_end:
                kept.append((c_end, end))
        result = kept
    return result


@functools.lru_cache(maxsize=None)
def _region_categories(
    country: str, subdivision: str | None, categories: tuple[str, ...]
) -> tuple[str, ...]:
    """The requested categories this region supports (one list serves several
    regions, e.g. 'optional' exists for CA but not for US)."""
    try:
        table = _holidays.country_holidays(country, subdiv=subdivision)
    except (NotImplementedError, ValueError, KeyError) as exc:
        raise ValueError(f"holiday region ({country!r}, {subdivision!r}): {exc}") from exc
    supported = set(table.supported_categories)
    effective = tuple(c for c in categories if c in supported)
    if not effective:
        raise ValueError(
            f"holiday region ({country!r}, {subdivision!r}) supports none of the categories "
            f"{list(categories)} (it has {sorted(supported)})"
        )
    return effective


@functools.lru_cache(maxsize=4096)
def _region_holidays(
    country: str, subdivision: str | None, categories: tuple[str, ...], year: int
) -> frozenset[date]:
    """Holiday dates (observed days included) of one region falling in ``year``."""
    # Generating the next year too catches a holiday observed early, e.g.
    # New Year's Day on a Saturday observed on Friday 31 December.
    table = _holidays.country_holidays(
        country, subdiv=subdivision, categories=categories, years=(year, year + 1)
    )
    return frozenset(d for d in table if d.year == year)


class _SharedCache:
    """Mutable caches behind an immutable calendar; shared by equal calendars."""

    __slots__ = ("days", "closed_years", "blocks")

    def __init__(self) -> None:
        self.days: dict[date, tuple[Interval, ...]] = {}
        self.closed_years: dict[int, frozenset[date]] = {}
        self.blocks: dict[int, _Block | None] = {}


class _Block:
    """The open intervals of BLOCK_DAYS consecutive local dates, in the order `_intervals_after`
    yields them: `starts`, `ends`, and `cum[k]` the open time of the first k intervals."""

    __slots__ = ("starts", "ends", "cum")

    def __init__(self, starts: list[datetime], ends: list[datetime], cum: list[timedelta]) -> None:
        self.starts = starts
        self.ends = ends
        self.cum = cum


@functools.lru_cache(maxsize=1024)
def _shared_cache(key: tuple[object, ...]) -> _SharedCache:
    return _SharedCache()


class BusinessCalendar:
    """Immutable, hashable business calendar; safe to share between tickets.

    ``weekly``: ``(weekday 0=Mon..6=Sun, start_minute, end_minute)`` local wall
    time in ``timezone``, ``0 <= start < end <= 1440``. ``day_length`` is what
    one "business day" means (e.g. 12 h for 08:00-20:00).
    ``holiday_regions``: ``(country, subdivision or None)`` pairs of the
    ``holidays`` package; the union of their holidays (of
    ``holiday_categories``) and ``extra_closed_dates`` close whole local days in
    ``holiday_timezone`` (default ``timezone``). A region uses the listed
    categories it supports (``optional`` exists for CA, not for US); a category
    that no region supports, or a region supporting none, is a ValueError.
    """

    __slots__ = (
        "_timezone",
        "_zone",
        "_weekly",
        "_by_weekday",
        "_day_length",
        "_regions",
        "_holiday_timezone",
        "_holiday_zone",
        "_categories",
        "_region_categories",
        "_extra_closed",
        "_always_open",
        "_key",
        "_hash",
        "_cache",
    )
    # The slots' types (annotations only: the values are set once, in __init__).
    _timezone: str
    _zone: ZoneInfo
    _weekly: tuple[tuple[int, int, int], ...]
    _by_weekday: tuple[tuple[tuple[int, int], ...], ...]
    _day_length: timedelta
    _regions: tuple[tuple[str, str | None], ...]
    _holiday_timezone: str
    _holiday_zone: ZoneInfo
    _categories: tuple[str, ...]
    _region_categories: tuple[tuple[str, ...], ...]
    _extra_closed: frozenset[date]
    _always_open: bool
    _key: tuple[object, ...]
    _hash: int
    _cache: _SharedCache

    def __init__(
        self,
        *,
        timezone: str,
        weekly: Iterable[tuple[int, int, int]],
        day_length: timedelta,
        holiday_regions: Iterable[tuple[str, str | None]] = (),
        holiday_timezone: str | None = None,
        holiday_categories: tuple[str, ...] = ("public",),
        extra_closed_dates: Iterable[date] = (),
    ) -> None:
        zone = _zone(timezone, "timezone")
        holiday_tz_key = timezone if holiday_timezone is None else holiday_timezone
        holiday_zone = _zone(holiday_tz_key, "holiday_timezone")

        by_weekday = self._normalise_weekly(weekly)
        if not any(by_weekday):
            raise ValueError("weekly has no open interval: the calendar would never be open")

        if not isinstance(day_length, timedelta) or day_length <= timedelta(0):
            raise ValueError(f"day_length must be a positive timedelta, got {day_length!r}")

        if isinstance(holiday_categories, str):
            holiday_categories = (holiday_categories,)
        categories = tuple(sorted({str(c).strip().lower() for c in holiday_categories}))
        if not categories:
            raise ValueError("holiday_categories must not be empty")

        regions: list[tuple[str, str | None]] = []
        # The loops below take each item as Any: a malformed one is the ValueError / TypeError
        # written here, also in the compiled build (which would check a typed loop variable first).
        regions_given: Iterable[Any] = holiday_regions
        for region in regions_given:
            try:
                country, subdivision = region
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"holiday region must be (country, subdivision or None), got {region!r}"
                ) from exc
            if not isinstance(country, str) or not country.strip():
                raise ValueError(f"holiday region country must be a code like 'US', got {country!r}")
            country = country.strip().upper()
            if subdivision is not None:
                subdivision = str(subdivision).strip() or None
            if (country, subdivision) not in regions:
                regions.append((country, subdivision))
        region_categories = tuple(_region_categories(c, s, categories) for c, s in regions)
        if regions:
            unknown = set(categories).difference(*region_categories)
            if unknown:
                raise ValueError(
                    f"holiday categories {sorted(unknown)} are supported by none of {regions}"
                )

        extra: set[date] = set()
        dates_given: Iterable[Any] = extra_closed_dates
        for d in dates_given:
            # datetime is a subclass of date; a datetime here is almost surely a mistake.
            if isinstance(d, datetime) or not isinstance(d, date):
                raise TypeError(f"extra_closed_dates must hold dates, got {d!r}")
            extra.add(d)

        # `object.__setattr__` spelled out at each call (not a local alias): the compiled build
        # (mypyc) turns exactly this form into a direct slot write past the immutability guard.
        object.__setattr__(self, "_timezone", timezone)
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_by_weekday", by_weekday)
        object.__setattr__(
            self,
            "_weekly",
            tuple((wd, s, e) for wd, spans in enumerate(by_weekday) for s, e in spans),
        )
        object.__setattr__(self, "_day_length", day_length)
        object.__setattr__(self, "_regions", tuple(regions))
        object.__setattr__(self, "_holiday_timezone", holiday_tz_key)
        object.__setattr__(self, "_holiday_zone", holiday_zone)
        object.__setattr__(self, "_categories", categories)
        object.__setattr__(self, "_region_categories", region_categories)
        object.__setattr__(self, "_extra_closed", frozenset(extra))
        full_week = all(spans == ((0, MINUTES_PER_DAY),) for spans in by_weekday)
        object.__setattr__(self, "_always_open", full_week and not regions and not extra)
        key = (
            timezone,
            self._weekly,
            day_length,
            frozenset(regions),
            holiday_tz_key if regions or extra else None,
            categories if regions else None,
            frozenset(extra),
        )
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash(key))
        object.__setattr__(self, "_cache", _shared_cache(key))

    @staticmethod
    def _normalise_weekly(
        weekly: Iterable[tuple[int, int, int]],
    ) -> tuple[tuple[tuple[int, int], ...], ...]:
        per_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        items: Iterable[Any] = weekly
        for item in items:
            try:
                weekday, start, end = item
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"weekly interval must be (weekday, start_minute, end_minute), got {item!r}"
                ) from exc
            for value in (weekday, start, end):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"weekly interval {item!r} must hold integers")
            if not 0 <= weekday <= 6:
                raise ValueError(f"weekly interval {item!r}: weekday must be 0 (Mon) .. 6 (Sun)")
            if not 0 <= start < end <= MINUTES_PER_DAY:
                raise ValueError(
                    f"weekly interval {item!r}: need 0 <= start_minute < end_minute <= 1440"
                )
            per_day[weekday].append((start, end))
        normalised = []
        for spans in per_day:
            merged: list[list[int]] = []
            for start, end in sorted(spans):
                if merged and start <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            normalised.append(tuple((s, e) for s, e in merged))
        return tuple(normalised)

    @classmethod
    def always_open(cls) -> BusinessCalendar:
        """24x7 calendar in UTC, no holidays, day_length 24 h."""
        return _ALWAYS_OPEN

    # --- immutability, equality, pickling -------------------------------------------

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("BusinessCalendar is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("BusinessCalendar is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BusinessCalendar):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Callable[[dict[str, Any]], BusinessCalendar], tuple[dict[str, Any]]]:
        return (_rebuild, (self._constructor_kwargs(),))

    def __copy__(self) -> BusinessCalendar:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> BusinessCalendar:
        return self

    def _constructor_kwargs(self) -> dict[str, Any]:
        return {
            "timezone": self._timezone,
            "weekly": self._weekly,
            "day_length": self._day_length,
            "holiday_regions": self._regions,
            "holiday_timezone": self._holiday_timezone,
            "holiday_categories": self._categories,
            "extra_closed_dates": tuple(sorted(self._extra_closed)),
        }

    def __repr__(self) -> str:
        kwargs = ", ".join(f"{k}={v!r}" for k, v in self._constructor_kwargs().items())
        return f"BusinessCalendar({kwargs})"

    # --- read-only definition ---------------------------------------------------------

    @property
    def timezone(self) -> str:
        return self._timezone

    @property
    def weekly(self) -> tuple[tuple[int, int, int], ...]:
        """Normalised weekly intervals (same-day overlaps merged), sorted."""
        return self._weekly

    @property
    def day_length(self) -> timedelta:
        return self._day_length

    @property
    def holiday_regions(self) -> tuple[tuple[str, str | None], ...]:
        return self._regions

    @property
    def holiday_timezone(self) -> str:
        return self._holiday_timezone

    @property
    def holiday_categories(self) -> tuple[str, ...]:
        return self._categories

    @property
    def extra_closed_dates(self) -> frozenset[date]:
        return self._extra_closed

    @property
    def is_always_open(self) -> bool:
        """True when every instant is open (24x7, no holidays)."""
        return self._always_open

    def describe(self) -> str:
        """Short human description, e.g.
        ``Mon-Fri 08:00-20:00 America/New_York, closed on holidays US``."""
        if self._always_open:
            return "24x7"
        groups: list[tuple[tuple[tuple[int, int], ...], list[int]]] = []
        for weekday, spans in enumerate(self._by_weekday):
            if not spans:
                continue
            for group_spans, days in groups:
                if group_spans == spans:
                    days.append(weekday)
                    break
            else:
                groups.append((spans, [weekday]))
        parts = []
        for spans, days in groups:
            hours = ", ".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in spans)
            parts.append(f"{_day_ranges(days)} {hours}")
        text = "; ".join(parts) + f" {self._timezone}"
        if self._regions:
            names = ", ".join(c if s is None else f"{c}-{s}" for c, s in self._regions)
            text += f", closed on holidays {names}"
            if self._categories != ("public",):
                text += f" ({'+'.join(self._categories)})"
        if self._extra_closed:
            n = len(self._extra_closed)
            text += f", {n} extra closed date{'s' if n != 1 else ''}"
        if (self._regions or self._extra_closed) and self._holiday_timezone != self._timezone:
            text += f" (days in {self._holiday_timezone})"
        return text

    # --- open intervals ---------------------------------------------------------------

    def _closed_dates(self, year: int) -> frozenset[date]:
        cache = self._cache.closed_years
        closed = cache.get(year)
        if closed is None:
            found: set[date] = {d for d in self._extra_closed if d.year == year}
            for (country, subdivision), categories in zip(self._regions, self._region_categories):
                found |= _region_holidays(country, subdivision, categories, year)
            closed = frozenset(found)
            cache[year] = closed
        return closed

    def _is_closed_date(self, day: date) -> bool:
        return day in self._closed_dates(day.year)

    def _day(self, day: date) -> tuple[Interval, ...]:
        """UTC open intervals of local date ``day`` (sorted, disjoint, cached)."""
        days = self._cache.days
        intervals = days.get(day)
        if intervals is None:
            intervals = self._compute_day(day)
            if len(days) >= MAX_CACHED_DAYS:
                days.clear()
            days[day] = intervals
        return intervals

    def _compute_day(self, day: date) -> tuple[Interval, ...]:
        spans = self._by_weekday[day.weekday()]
        if not spans:
            return ()
        zone = self._zone
        same_zone = self._holiday_timezone == self._timezone
        if same_zone and (self._regions or self._extra_closed) and self._is_closed_date(day):
            return ()
        day_start = _wall_to_utc(zone, day, 0)
        day_end = _wall_to_utc(zone, day, MINUTES_PER_DAY)
        intervals = _merge(
            (max(_wall_to_utc(zone, day, s), day_start), min(_wall_to_utc(zone, day, e), day_end))
            for s, e in spans
        )
        if intervals and not same_zone and (self._regions or self._extra_closed):
            hzone = self._holiday_zone
            first = intervals[0][0].astimezone(hzone).date()
            last = (intervals[-1][1] - timedelta(microseconds=1)).astimezone(hzone).date()
            closed = []
            h = first
            while h <= last:
                if self._is_closed_date(h):
                    closed.append((_wall_to_utc(hzone, h, 0), _wall_to_utc(hzone, h, MINUTES_PER_DAY)))
                h += ONE_DAY
            if closed:
                intervals = _subtract(intervals, closed)
        return tuple(intervals)

    def _local_date(self, t: datetime) -> date:
        return t.astimezone(self._zone).date()

    def _intervals_after(self, t: datetime) -> Iterator[Interval]:
        """Open intervals ending after ``t`` in time order, the first clipped to
        start no earlier than ``t``. Touching intervals (across midnight) are
        yielded separately; callers treat them as one stretch. Raises ValueError
        after MAX_CLOSED_DAYS consecutive days without open time."""
        # Start a day early: clipping at local midnight can leave a little of the
        # previous local date's open time after t only in odd zones, but it is cheap.
        day = self._local_date(t) - ONE_DAY
        closed_run = 0
        while True:
            intervals = self._day(day)
            found = False
            for start, end in intervals:
                if end <= t:
                    continue
                found = True
                yield (start if start > t else t, end)
            if found:
                closed_run = 0
            else:
                closed_run += 1
                if closed_run > MAX_CLOSED_DAYS:
                    raise ValueError(
                        f"calendar {self.describe()!r} has no open time for "
                        f"{MAX_CLOSED_DAYS} days from local date {day - timedelta(days=closed_run)}"
                    )
            day += ONE_DAY

    # --- the block table -----------------------------------------------------------------
    #
    # The intervals of every local date in order are what `_intervals_after` walks (and what
    # `business_between` sums): consecutive dates' intervals lie in consecutive stretches of UTC
    # (each clipped to its local day), so they are sorted and disjoint, their ends increase, and
    # the dates before the walk's first one end at or before its instant. A block holds them
    # flat with prefix sums, so both operations are two bisections and a subtraction per block
    # instead of a Python loop over days and intervals. Where a block cannot be used (no open
    # time in it, intervals out of order, dates at the ends of the calendar) the walk decides,
    # errors included.

    def _block(self, index: int) -> _Block | None:
        """The table of local dates with ordinals ``index * BLOCK_DAYS + 1`` onwards (cached)."""
        blocks = self._cache.blocks
        if index in blocks:
            return blocks[index]
        first = index * BLOCK_DAYS + 1
        if first < 3 or first + BLOCK_DAYS + 3 > _LAST_ORDINAL:
            return None
        starts: list[datetime] = []
        ends: list[datetime] = []
        cum: list[timedelta] = [timedelta(0)]
        total = timedelta(0)
        previous_end: datetime | None = None
        usable = True
        day = date.fromordinal(first)
        for _ in range(BLOCK_DAYS):
            for start, end in self._day(day):
                if not start < end or (previous_end is not None and start < previous_end):
                    usable = False
                previous_end = end
                starts.append(start)
                ends.append(end)
                total += end - start
                cum.append(total)
            day += ONE_DAY
        block = _Block(starts, ends, cum) if usable and starts else None
        if len(blocks) >= MAX_CACHED_BLOCKS:
            blocks.clear()
        blocks[index] = block
        return block

    def _add_by_table(self, t: datetime, remaining: timedelta) -> datetime | None:
        """`add_business(t, remaining)` read from the blocks; None where the walk must decide."""
        # The block of the walk's first date (t's local date - 1) or the one before: a local date is
        # within a day of the UTC date (offsets are under 24 h), and the walk's first date is found
        # from the UTC date without a conversion; earlier dates' intervals end before t (skipped).
        index = (t.toordinal() - 3) // BLOCK_DAYS
        while True:
            block = self._block(index)
            if block is None:
                return None
            ends = block.ends
            i = bisect_right(ends, t)  # the first interval ending after t
            if i < len(ends):
                starts = block.starts
                cum = block.cum
                start = starts[i]
                clip = t - start if t > start else _ZERO  # the first interval counts from t
                k = bisect_left(cum, remaining + cum[i] + clip, i + 1)
                if k < len(cum):  # `remaining` runs out in interval k - 1
                    j = k - 1
                    return starts[j] + (remaining - (cum[j] - cum[i] - clip))
                remaining -= cum[-1] - cum[i] - clip
                t = ends[-1]
            index += 1

    def _between_by_table(self, a: datetime, b: datetime) -> timedelta | None:
        """`business_between(a, b)` (a < b) read from the blocks; None where the walk must decide."""
        # From the walk's first date (a's local date - 1) to its last (b's + 1), from the UTC dates
        # as in `_add_by_table`: dates outside [a, b) add nothing.
        index = (a.toordinal() - 3) // BLOCK_DAYS
        last = (b.toordinal() + 1) // BLOCK_DAYS
        total = _ZERO
        while index <= last:
            block = self._block(index)
            if block is None:
                return None
            starts = block.starts
            ends = block.ends
            i = bisect_right(ends, a)  # intervals i .. j - 1 overlap [a, b)
            j = bisect_left(starts, b)
            if j > i:
                cum = block.cum
                total += cum[j] - cum[i]
                if starts[i] < a:
                    total -= a - starts[i]
                if ends[j - 1] > b:
                    total -= ends[j - 1] - b
            index += 1
        return total

    # --- public operations ------------------------------------------------------------

    def is_open(self, t: datetime) -> bool:
        """True when ``t`` lies in open time (interval start open, end closed)."""
        t = _require_aware(t, "t")
        if self._always_open:
            return True
        local = self._local_date(t)
        for day in (local - ONE_DAY, local, local + ONE_DAY):
            for start, end in self._day(day):
                if start <= t < end:
                    return True
        return False

    def add_business(self, start: datetime, d: timedelta) -> datetime:
        """UTC instant at which ``d`` of open time has elapsed since ``start``.

        Counting starts at the next opening when ``start`` is closed; ``d == 0``
        gives ``start`` if open, else the next opening. A deadline landing exactly
        on a closing instant is that closing instant.
        """
        start = _require_aware(start, "start")
        if not isinstance(d, timedelta):
            raise TypeError(f"d must be a timedelta, got {type(d).__name__}")
        if d < _ZERO:
            raise ValueError(f"d must not be negative, got {d}")
        if self._always_open:
            return start + d
        found = self._add_by_table(start, d)
        return found if found is not None else self._add_by_walk(start, d)

    def _add_by_walk(self, start: datetime, d: timedelta) -> datetime:
        """`add_business` day by day (the definition the block table is checked against)."""
        remaining = d
        for open_from, open_until in self._intervals_after(start):
            available = open_until - open_from
            if remaining <= available:
                return open_from + remaining
            remaining -= available
        raise AssertionError("unreachable: _intervals_after is endless or raises")

    def business_between(self, a: datetime, b: datetime) -> timedelta:
        """Open time in ``[a, b)``; zero when ``b <= a``."""
        a = _require_aware(a, "a")
        b = _require_aware(b, "b")
        if b <= a:
            return _ZERO
        if self._always_open:
            return b - a
        by_table = self._between_by_table(a, b)
        return by_table if by_table is not None else self._between_by_walk(a, b)

    def _between_by_walk(self, a: datetime, b: datetime) -> timedelta:
        """`business_between` (a < b) day by day (the definition the block table is checked against)."""
        total = timedelta(0)
        day = self._local_date(a) - ONE_DAY
        last = self._local_date(b) + ONE_DAY
        while day <= last:
            for start, end in self._day(day):
                lo = start if start > a else a
                hi = end if end < b else b
                if hi > lo:
                    total += hi - lo
            day += ONE_DAY
        return total

    def open_intervals(self, a: datetime, b: datetime) -> list[Interval]:
        """The open stretches of ``[a, b)`` in UTC, in order, touching intervals merged
        (what a picture of business hours draws)."""
        a = _require_aware(a, "a")
        b = _require_aware(b, "b")
        if b <= a:
            return []
        if self._always_open:
            return [(a, b)]
        clipped: list[Interval] = []
        for start, end in self._intervals_after(a):  # already clipped to start at a or later
            if start >= b:
                break
            clipped.append((start, min(end, b)))
        return _merge(clipped)

    def business_days(self, n: Decimal | int) -> timedelta:
        """``n`` business days as open time: ``n * day_length`` (to the microsecond,
        rounded half-up)."""
        if isinstance(n, bool) or not isinstance(n, (int, Decimal)):
            raise TypeError(f"n must be an int or Decimal, got {type(n).__name__}")
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        micros = Decimal(self._day_length // timedelta(microseconds=1)) * Decimal(n)
        return timedelta(microseconds=int(micros.to_integral_value(rounding=ROUND_HALF_UP)))


def _rebuild(kwargs: dict[str, Any]) -> BusinessCalendar:
    return BusinessCalendar(**kwargs)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _day_ranges(days: list[int]) -> str:
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(
        _WEEKDAY_NAMES[r[0]] if len(r) == 1 else f"{_WEEKDAY_NAMES[r[0]]}-{_WEEKDAY_NAMES[r[-1]]}"
        for r in runs
    )


_ALWAYS_OPEN = BusinessCalendar(
    timezone="UTC",
    weekly=tuple((wd, 0, MINUTES_PER_DAY) for wd in range(7)),
    day_length=timedelta(hours=24),
)
