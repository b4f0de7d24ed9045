"""A readable account of one month's uptime figures, for a support engineer answering a refund request.

Pure: the text is derived from the service state; all times are shown in UTC (the seed
asks customers for "UTC time ranges").
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction

from policies.downtime import MonthFigures, ServiceState, minutes, month_figures
from policies.uptime import claim_deadline, close_month, minutes_on_wire, month_bounds, round_half_up

UTC = timezone.utc


def _t(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def _m(x: Fraction) -> str:
    return f"{minutes_on_wire(x)} min"


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
        clip = ""
        if (v.in_month_start, v.in_month_end) != (v.start, v.end):
            clip = f"; in this month {_t(v.in_month_start)} - {_t(v.in_month_end)}"
        if v.status == "partial":
            verdict = "PARTIAL scope: recorded, not counted (downtime must affect all users)"
        elif v.status == "excluded":
            verdict = f"EXCLUDED cause ({o.category or 'no category'}): removed entirely"
        else:
            verdict = "provider outage: counts (less any part inside scheduled maintenance)"
        lines.append(f"  - outage {o.outage_id}: {_t(v.start)} - {end}, {_m(v.in_month_minutes)} in month "
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
        lines.append(f"  - maintenance {w.maintenance_id}: {_t(v.in_month_start)} - {_t(v.in_month_end)}, "
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
                  describe_contract: str, *, customer_id: str = "?", as_of: datetime | None = None) -> str:
    """Report of `month` for one service: intervals, classification and the refund arithmetic.

    `as_of` defaults to the month's end (the figures a month close uses); pass `now` for a
    month in progress. `describe_contract` is a one-line description shown in the header.
    """
    start, end = month_bounds(month)
    fig = month_figures(state, month, as_of or end)
    closed, refund = close_month(fig, customer_id=customer_id, service_id=state.service_id,
                                 commitment_percent=commitment, fee_per_month=fee, currency=currency)
    total, down = fig.total_minutes, fig.downtime_minutes
    exact_uptime = 100 - down / total * 100
    out = [
        f"Uptime report for service {state.service_id}, month {month} (UTC {_t(start)} - {_t(end)})",
        f"Contract: {describe_contract}",
        f"Figures as of {_t(fig.as_of)}",
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
        f"  total minutes in month     = {_m(total)}",
        f"  downtime                   = {_m(down)}",
        f"  excluded (not downtime)    = {_m(fig.excluded_minutes)}",
        f"  maintenance (not downtime) = {_m(fig.maintenance_minutes)}",
        f"  uptime = 100 - {minutes_on_wire(down)} / {minutes_on_wire(total)} x 100 = "
        f"{round_half_up(exact_uptime, 6)}... -> rounded half-up {closed['uptime_percent']} %",
        f"  commitment {closed['commitment_percent']} %: "
        + ("MET (rounded uptime >= commitment), no refund" if closed["met"] else "NOT MET"),
    ]
    if refund is not None:
        fee_f = Fraction(fee)
        raw = refund["excess_minutes"] / total * fee_f
        capped = raw > fee_f
        out += [
            f"  threshold = {minutes_on_wire(total)} x (100 - {commitment}) / 100 = {_m(refund['threshold_minutes'])}",
            f"  excess = {minutes_on_wire(down)} - {minutes_on_wire(refund['threshold_minutes'])} = "
            f"{_m(refund['excess_minutes'])}",
            f"  refund = {minutes_on_wire(refund['excess_minutes'])} / {minutes_on_wire(total)} x "
            f"{refund['monthly_fee']} {currency} = {round_half_up(raw, 6)}"
            + (f" -> capped at the monthly fee {refund['monthly_fee']}" if capped else "")
            + f" -> {refund['refund_amount']} {currency}",
            f"  claim deadline: {_t(claim_deadline(month))} (month end + 30 days)",
        ]
    return "\n".join(out) + "\n"
