"""A readable account of one month's uptime figures, for a support engineer answering a refund request.

Pure: the text is derived from the service state; all times are shown in UTC (the seed
asks customers for "UTC time ranges").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any, Iterable

from policies.downtime import MonthFigures, ServiceState, SubscriberScope, minutes, month_figures
from policies.uptime import (FiguresCache, claim_deadline, close_month, is_closed, last_revision, minutes_on_wire,
                             month_bounds, prorated_fee, round_half_up)

UTC = timezone.utc


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One customer's terms for a shared service (SPEC §11), as a month's figures need them."""

    customer_id: str
    commitment: Decimal | None  # None: the customer's plan has no uptime commitment
    fee_per_month: Decimal | Fraction
    currency: str
    scope: SubscriberScope | None = None
    in_force: tuple[datetime | None, datetime | None] | None = None


def _t(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _m(x: Fraction) -> str:
    return f"{minutes_on_wire(x)} min"


def _scope_text(components: tuple[str, ...] | None, regions: tuple[str, ...] | None) -> str:
    parts = ([f"components {', '.join(components)}"] if components is not None else []) + \
            ([f"regions {', '.join(regions)}"] if regions is not None else [])
    return f" ({'; '.join(parts)})" if parts else ""


def _outage_lines(fig: MonthFigures) -> list[str]:
    lines = []
    for v in fig.outages:
        o = v.outage
        origin = f"from the {v.outage.start_source}"
        if o.start_source == "customer report" and o.reported_ticket:
            origin += f" (ticket {o.reported_ticket})"
        if o.started_at is not None and o.reported_at is not None:
            origin += f"; alert {_t(o.started_at)}, first report {_t(o.reported_at)}"
        end = f"{_t(v.end)}" + (" (unresolved, counted to this instant)" if v.open else "")
        if v.ended_by is not None:
            end += f" (no resolution: ended where {v.ended_by}, the next alert of its key, started)"
        clip = ""
        if (v.in_month_start, v.in_month_end) != (v.start, v.end):
            clip = f"; in this month {_t(v.in_month_start)} - {_t(v.in_month_end)}"
        if v.status == "partial":
            verdict = "PARTIAL scope: recorded, not counted (downtime must affect all users)"
        elif v.status == "out_of_scope":
            verdict = "OUTSIDE this customer's components / region: not counted for it"
        elif v.status == "excluded":
            verdict = f"EXCLUDED cause ({o.category or 'no category'}): removed entirely"
        else:
            verdict = "provider outage: counts (less any part inside scheduled maintenance)"
        reach = " or".join(_scope_text(c, r) for c, r in o.reach)
        lines.append(f"  - outage {o.outage_id}{reach}: {_t(v.start)} - {end}, "
                     f"{_m(v.in_month_minutes)} in month "
                     f"[{origin}{clip}] -> {verdict}")
    return lines or ["  (no outage in this month)"]


def _window_lines(fig: MonthFigures) -> list[str]:
    lines = []
    for v in fig.windows:
        w = v.window
        notice = Fraction(minutes(w.notice)) / 60
        notice_s = f"{notice.numerator}" if notice.denominator == 1 else f"{float(notice):.2f}"
        parts = ", ".join(f"{_t(s)} - {_t(e)}" for s, e in v.scheduled) or "none"
        cancelled = f", cancelled {_t(w.cancelled_at)}" if w.cancelled and w.cancelled_at is not None else ""
        if len(w.run) > 1:  # reminders keep the first notice (decisions.md "Uptime")
            cancelled = f", re-sent unchanged {len(w.run) - 1}x, last {_t(w.scheduled_at)}{cancelled}"
        lines.append(f"  - maintenance {w.maintenance_id}{_scope_text(w.components, w.regions)}: "
                     f"{_t(v.in_month_start)} - {_t(v.in_month_end)}, "
                     f"notified {_t(w.notified_at)} ({notice_s} h notice{cancelled}); scheduled part: {parts} "
                     f"({_m(v.scheduled_minutes)}) -> {v.reason}")
    return lines or ["  (no maintenance window in this month)"]


def _segment_lines(fig: MonthFigures) -> list[str]:
    lines = []
    for s in fig.segments:
        ids = "+".join(s.outage_ids)
        extra = f" inside maintenance {'+'.join(s.maintenance_ids)}" if s.maintenance_ids else ""
        lines.append(f"  - {_t(s.start)} - {_t(s.end)}  {_m(s.minutes):>14}  {s.kind.upper():<11} "
                     f"outage {ids}{extra}")
    return lines or ["  (nothing counted)"]


def explain_month(state: ServiceState, month: str, commitment: Decimal, fee: Decimal | Fraction, currency: str,
                  describe_contract: str, *, customer_id: str = "?", as_of: datetime | None = None,
                  scope: SubscriberScope | None = None,
                  in_force: tuple[datetime | None, datetime | None] | None = None) -> str:
    """Report of `month` for one customer's service: intervals, classification and the refund arithmetic.

    `as_of` defaults to the month's end (the figures a month close uses); pass `now` (clamped to
    the month) for a month in progress: the text then says the month is in progress (not closed),
    and an open outage counts only to `as_of`. `describe_contract` is a one-line description shown
    in the header. `scope` / `in_force`: the customer's on a shared service (SPEC §11, see `month_figures`).
    """
    start, end = month_bounds(month)
    fig = month_figures(state, month, as_of or end, scope, in_force)
    revision = last_revision(state, customer_id, month)
    if fig.as_of < end:
        status = (f"month in progress (not closed): figures as of {_t(fig.as_of)}, the time the events reached; "
                  "an outage still open counts to this instant only")
    elif revision:
        status = f"month over, closed (revision {revision})"
    else:
        status = "month over, not yet closed: these are the figures its close uses"
    closed, refund = close_month(fig, customer_id=customer_id, service_id=state.service_id,
                                 commitment_percent=commitment, fee_per_month=fee, currency=currency)
    total, down = fig.total_minutes, fig.downtime_minutes
    exact_uptime = 100 - down / total * 100 if total else Fraction(100)
    out = [
        f"Uptime report for service {state.service_id}, month {month} (UTC {_t(start)} - {_t(end)})",
        f"Contract: {describe_contract}",
        f"Figures as of {_t(fig.as_of)}",
        f"Status: {status}",
        *([f"Customer scope: {_scope_text(scope.components, (scope.region,) if scope.region else None).strip(' ()')}"
           " (outages and windows outside it do not count)"] if scope is not None and not scope.whole else []),
        *([f"In force from {_t(fig.in_force_start)}: only the minutes from then count, and the fee is "
           f"prorated alike (SPEC §11)"] if fig.prorated and fig.in_force_start else []),
        "",
        "Outages:",
        *_outage_lines(fig),
        "",
        "Maintenance windows (Scheduled Maintenance = notified >= 48 h ahead, first 4 h of the month by start):",
        *_window_lines(fig),
        "",
        "Timeline (each instant counted once):",
        *_segment_lines(fig),
        "",
        "Arithmetic:",
        f"  total minutes {'in force   ' if fig.prorated else 'in month   '} = {_m(total)}",
        f"  downtime                   = {_m(down)}",
        f"  excluded (not downtime)    = {_m(fig.excluded_minutes)}",
        f"  maintenance (not downtime) = {_m(fig.maintenance_minutes)}",
        f"  uptime = 100 - {minutes_on_wire(down)} / {minutes_on_wire(total)} x 100 = "
        f"{round_half_up(exact_uptime, 6)}... -> rounded half-up {closed['uptime_percent']} %",
        f"  commitment {closed['commitment_percent']} %: "
        + ("MET (rounded uptime >= commitment), no refund" if closed["met"] else "NOT MET"),
    ]
    if refund is not None:
        fee_f = prorated_fee(fig, fee)
        raw = refund["excess_minutes"] / total * fee_f
        capped = raw > fee_f
        out += [
            f"  threshold = {minutes_on_wire(total)} x (100 - {commitment}) / 100 = {_m(refund['threshold_minutes'])}",
            f"  excess = {minutes_on_wire(down)} - {minutes_on_wire(refund['threshold_minutes'])} = "
            f"{_m(refund['excess_minutes'])}",
            f"  refund = {minutes_on_wire(refund['excess_minutes'])} / {minutes_on_wire(total)} x "
            f"{refund['monthly_fee']} {currency}"
            + (f" (= {fee if isinstance(fee, Decimal) else round_half_up(fee, 6)} x {minutes_on_wire(total)} / {minutes_on_wire(minutes(end - start))} in force)"
               if fig.prorated else "")
            + f" = {round_half_up(raw, 6)}"
            + (f" -> capped at the monthly fee {refund['monthly_fee']}" if capped else "")
            + f" -> {refund['refund_amount']} {currency}",
            f"  claim deadline: {_t(claim_deadline(month))} (month end + 30 days)",
        ]
    return "\n".join(out) + "\n"


def service_month(state: ServiceState, month: str, as_of: datetime, subscribers: Iterable[Subscriber]) -> dict[str, Any]:
    """The figures of a (shared) service's month for every subscriber (SPEC §11; the query API's
    `/services/{id}/months/{m}`): the whole service's, then per customer with its own scope,
    commitment and whether (and at which revision) the month was closed for it. Figures are
    computed once per distinct scope."""
    whole = month_figures(state, month, as_of)
    cache = FiguresCache()
    customers = []
    for sub in subscribers:
        fig = cache.get(state, month, as_of, sub.scope, sub.in_force)
        row: dict[str, Any] = {
            "customer_id": sub.customer_id,
            "total_minutes": float(fig.total_minutes), "downtime_minutes": float(fig.downtime_minutes),
            "excluded_minutes": float(fig.excluded_minutes), "maintenance_minutes": float(fig.maintenance_minutes),
            "closed": is_closed(state, sub.customer_id, month),
            "revision": last_revision(state, sub.customer_id, month),
        }
        if sub.commitment is not None and fig.total_minutes:
            closed, refund = close_month(fig, customer_id=sub.customer_id, service_id=state.service_id,
                                         commitment_percent=sub.commitment, fee_per_month=sub.fee_per_month,
                                         currency=sub.currency)
            row.update(uptime_percent=str(closed["uptime_percent"]), commitment_percent=str(closed["commitment_percent"]),
                       met=closed["met"], refund_amount=str(refund["refund_amount"]) if refund else "0.00",
                       currency=sub.currency)
        customers.append(row)
    return {
        "service_id": state.service_id, "month": month, "as_of": as_of.isoformat(),
        "total_minutes": float(whole.total_minutes), "downtime_minutes": float(whole.downtime_minutes),
        "excluded_minutes": float(whole.excluded_minutes), "maintenance_minutes": float(whole.maintenance_minutes),
        "customers": customers,
    }
