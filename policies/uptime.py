"""Month close and refund eligibility (SPEC §8, Vectorize "Cloud Services Service Levels").

Pure: builds the SPEC §4 fields of `uptime.month_closed` and `refund.eligible` as plain
dicts without envelope fields (the caller adds event_id / type / occurred_at /
schema_version). Value types in those dicts:

- minutes: exact `fractions.Fraction` (use `minutes_on_wire` for the 4-decimal JSON number);
- percent and money: `Decimal` already rounded half-up to 2 places;
- `claim_deadline`: aware UTC `datetime`; `met`: bool; `revision`: int.

Rounding happens once, at the end: uptime, refund amount and the fee shown are rounded
from exact values; the refund uses the exact monthly fee (annual ÷ 12 is not pre-rounded
when passed as a Fraction or an exact Decimal).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

from policies.downtime import (EmittedClose, MonthFigures, ServiceState, SubscriberScope, _month_bounds, minutes,
                               month_figures)

UTC = timezone.utc
CLAIM_WINDOW = timedelta(days=30)
MONTH_CLOSED = "uptime.month_closed"
REFUND_ELIGIBLE = "refund.eligible"


# --------------------------------------------------------------------------- months


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a calendar month in UTC; `month` is 'YYYY-MM'."""
    return _month_bounds(month)


def month_of(t: datetime) -> str:
    """The UTC calendar month containing instant `t`."""
    u = t.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}"


def previous_month(month: str) -> str:
    year, m = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if m == 1 else f"{year}-{m - 1:02d}"


def next_month(month: str) -> str:
    return month_of(month_bounds(month)[1])


def months_overlapping(a: datetime, b: datetime) -> list[str]:
    """Months intersecting the half-open interval [a, b), in order; empty when b <= a."""
    if b <= a:
        return []
    out = [month_of(a)]
    while month_bounds(out[-1])[1] < b:
        out.append(next_month(out[-1]))
    return out


def close_instant(month: str, delay: timedelta = timedelta(hours=1)) -> datetime:
    """When a month closes: its end plus the close delay (SPEC §8, default 1 h)."""
    return month_bounds(month)[1] + delay


def claim_deadline(month: str) -> datetime:
    """The month's end + 30 days (an instant, UTC)."""
    return month_bounds(month)[1] + CLAIM_WINDOW


# --------------------------------------------------------------------------- rounding


def round_half_up(x: Fraction | Decimal | int, places: int) -> Decimal:
    """Round an exact value half-up (away from zero on ties) to `places` decimals."""
    q = Fraction(x) * 10**places
    n = math.floor(abs(q) + Fraction(1, 2))
    n = -n if q < 0 else n
    return Decimal(n).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def minutes_on_wire(m: Fraction | Decimal | int) -> Decimal:
    """Minutes as written on the wire: half-up to 4 decimals, no trailing zeros (150, 150.5, 0.0167)."""
    d = round_half_up(m, 4).normalize()
    # normalize() turns 1500 into 1.5E+3; keep a plain integer exponent.
    return d.quantize(Decimal(1)) if d == d.to_integral_value() else d


# --------------------------------------------------------------------------- close


def close_month(figures: MonthFigures, *, customer_id: str, service_id: str, commitment_percent: Decimal,
                fee_per_month: Decimal | Fraction, currency: str,
                revision: int = 1) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """SPEC §4 fields of `uptime.month_closed` and, when the commitment is not met, of `refund.eligible`.

    A month the contract is in force for only part of (SPEC §11, figures with `in_force`) has
    `total_minutes` = the minutes in force, and its fee is prorated by the same fraction: the
    `monthly_fee` shown and refunded from is that part of the month's fee."""
    total = figures.total_minutes
    downtime = figures.downtime_minutes
    commitment = Fraction(commitment_percent)
    # A month before the contract came in force (a report asked for it) has no minutes: nothing was
    # down for this customer and no fee is due, so 100 % and met, never a division by zero.
    uptime = round_half_up(100 - downtime / total * 100, 2) if total else round_half_up(100, 2)
    met = uptime >= commitment_percent
    closed = {
        "customer_id": customer_id,
        "service_id": service_id,
        "month": figures.month,
        "total_minutes": total,
        "downtime_minutes": downtime,
        "excluded_minutes": figures.excluded_minutes,
        "maintenance_minutes": figures.maintenance_minutes,
        "uptime_percent": uptime,
        "commitment_percent": round_half_up(commitment, 2),
        "met": met,
        "revision": revision,
    }
    if met:
        return closed, None
    fee = prorated_fee(figures, fee_per_month)
    threshold = total * (100 - commitment) / 100
    # With a commitment of more than 2 decimals the rounded uptime can miss it while the exact
    # downtime is still under the threshold; the excess (and refund) is then 0, never negative.
    excess = max(downtime - threshold, Fraction(0))
    refund = min(excess / total * fee, fee)
    refund_fields = {
        "customer_id": customer_id,
        "service_id": service_id,
        "month": figures.month,
        "downtime_minutes": downtime,
        "threshold_minutes": threshold,
        "excess_minutes": excess,
        "monthly_fee": round_half_up(fee, 2),
        "refund_amount": round_half_up(refund, 2),
        "currency": currency,
        "claim_deadline": claim_deadline(figures.month),
        "revision": revision,
    }
    return closed, refund_fields


def prorated_fee(figures: MonthFigures, fee_per_month: Decimal | Fraction) -> Fraction:
    """The month's fee for the minutes the contract is in force (SPEC §11): exact, rounded only on the wire."""
    month_minutes = minutes(figures.end - figures.start)
    return Fraction(fee_per_month) * figures.total_minutes / month_minutes


class FiguresCache:
    """A service-month's figures computed once per distinct subscriber scope and in-force span
    (SPEC §11: the cost of a month close grows with services + customers, not customers x
    outages). Valid while the service's outages and windows are the same objects: the fold
    copies them on every change (`ServiceState` is never mutated), so a changed ledger misses."""

    def __init__(self) -> None:
        self._ledger: tuple[object, object] | None = None
        self._figures: dict[tuple[str, str, datetime, SubscriberScope | None,
                                  tuple[datetime | None, datetime | None] | None], MonthFigures] = {}
        self.computed = 0  # month_figures calls: a work counter for tests and the benchmark

    def get(self, state: ServiceState, month: str, as_of: datetime, scope: SubscriberScope | None = None,
            in_force: tuple[datetime | None, datetime | None] | None = None) -> MonthFigures:
        ledger = self._ledger
        if ledger is None or ledger[0] is not state.outages or ledger[1] is not state.maintenance:
            self._ledger = (state.outages, state.maintenance)
            self._figures = {}
        key = (state.service_id, month, as_of, scope, in_force)
        figures = self._figures.get(key)
        if figures is None:
            figures = self._figures[key] = month_figures(state, month, as_of, scope, in_force)
            self.computed += 1
        return figures


def _wire(v: object) -> object:
    if isinstance(v, Fraction):
        return str(minutes_on_wire(v))
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat()
    return v


def fingerprint(closed: dict[str, Any], refund: dict[str, Any] | None) -> str:
    """Hash of what a consumer can see of a close (wire-rounded values), revision excluded."""
    doc = [{k: _wire(v) for k, v in sorted(d.items()) if k != "revision"} if d is not None else None
           for d in (closed, refund)]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def last_revision(state: ServiceState, customer_id: str, month: str) -> int:
    """Revision of the last close emitted for (customer, month); 0 if none."""
    rec = state.emitted.get((customer_id, month))
    return rec.revision if rec else 0


def owning_emitted(state: ServiceState) -> ServiceState:
    """A copy of `state` with an `emitted` dict of its own, for a batch of closes that records them
    in place (`close_and_record(..., in_place=True)`): copying the map at every one of a shared
    service's N subscribers' closes would cost N² (SPEC §11). Nothing else holds the copy, so the
    states the store and earlier callers hold stay unchanged."""
    return replace(state, emitted=dict(state.emitted))


def record_close(state: ServiceState, closed: dict[str, Any], refund: dict[str, Any] | None,
                 in_place: bool = False) -> tuple[ServiceState, int | None]:
    """Decide whether a (re)computed close must be emitted.

    Returns the new state and the revision to emit (1 at the first close, last + 1 when the
    wire-visible figures differ from the last emitted ones), or None when nothing changed.
    The caller stamps the returned revision into both dicts (see `close_and_record`).
    `in_place`: `state` comes from `owning_emitted`; its map is written, not copied.
    """
    key = (closed["customer_id"], closed["month"])
    fp = fingerprint(closed, refund)
    rec = state.emitted.get(key)
    if rec is not None and rec.fingerprint == fp:
        return state, None
    revision = rec.revision + 1 if rec else 1
    emitted = state.emitted if in_place else dict(state.emitted)
    emitted[key] = EmittedClose(key[0], key[1], revision, fp,  # type: ignore[index]
                                revision if refund is not None else 0,
                                str(refund["refund_amount"]) if refund is not None else "0")
    return (state if in_place else replace(state, emitted=emitted)), revision


def is_closed(state: ServiceState, customer_id: str, month: str) -> bool:
    return (customer_id, month) in state.emitted


def closed_months_after(state: ServiceState, affected_from: datetime | None) -> dict[str, list[str]]:
    """customer_id -> its closed months (sorted) whose figures an event affecting instants >=
    `affected_from` may change: `months_to_revise` for every subscriber of a shared service in
    one pass over the emitted closes (not one pass per subscriber)."""
    if affected_from is None:
        return {}
    ends: dict[str, bool] = {}
    found: dict[str, list[str]] = {}
    for c, m in state.emitted:
        after = ends.get(m)
        if after is None:
            after = ends[m] = month_bounds(m)[1] > affected_from
        if after:
            found.setdefault(c, []).append(m)
    for months in found.values():
        months.sort()
    return found


def months_to_revise(state: ServiceState, customer_id: str, affected_from: datetime | None) -> list[str]:
    """Closed months of `customer_id` whose figures an event affecting instants >= `affected_from` may change."""
    if affected_from is None:
        return []
    return sorted(m for (c, m) in state.emitted if c == customer_id and month_bounds(m)[1] > affected_from)


def close_and_record(state: ServiceState, *, customer_id: str, month: str, commitment_percent: Decimal,
                     fee_per_month: Decimal | Fraction, currency: str, scope: SubscriberScope | None = None,
                     in_force: tuple[datetime | None, datetime | None] | None = None,
                     cache: FiguresCache | None = None,
                     in_place: bool = False) -> tuple[ServiceState, dict[str, Any] | None, dict[str, Any] | None]:
    """Compute `month`'s close as of its end and return what to emit.

    Use it both at the first close (when time passes the close instant) and after a late
    event for each month of `months_to_revise`. Returns `(state, month_closed_fields or None,
    refund_fields or None)`; both None when the figures are unchanged since the last emission.
    `scope` / `in_force`: the subscriber's (see `month_figures`); `cache` shares one figures
    computation between the subscribers of a shared service.
    """
    as_of = month_bounds(month)[1]
    if cache is not None:
        figures = cache.get(state, month, as_of, scope, in_force)
    else:
        figures = month_figures(state, month, as_of, scope, in_force)
    closed, refund = close_month(figures, customer_id=customer_id, service_id=state.service_id,
                                 commitment_percent=commitment_percent, fee_per_month=fee_per_month,
                                 currency=currency)
    state, revision = record_close(state, closed, refund, in_place)
    if revision is None:
        return state, None, None
    closed["revision"] = revision
    if refund is not None:
        refund["revision"] = revision
    return state, closed, refund
