"""The month report as one self-contained HTML page: inline CSS and SVG, no script, no fetch.

Pictures where people would rather look: each breached ticket's clocks against its business
hours, and each service's month as an uptime strip. Tables carry every figure in text too.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from html import escape
from typing import Iterable
from zoneinfo import ZoneInfo

from policies.downtime import MonthFigures, OutageView
from policies.report import BREACHED, MonthReport, ServiceMonth, TicketTimeline, binding_name
from policies.uptime import minutes_on_wire, month_bounds

UTC = timezone.utc

#: Colours that separate outcomes and kinds of time (also readable when printed in grey: the
#: legend names every colour and the tables repeat every figure).
COLOUR = {
    "met": "#2e7d32", "breached": "#c62828", "running": "#90a4ae",
    "open": "#cdebc9", "closed": "#e4e8eb", "paused": "#ffd54f",
    "downtime": "#d32f2f", "maintenance": "#1e88e5", "excluded": "#9e9e9e", "window": "#bbdefb",
    "partial": "#ffb74d", "up": "#c8e6c9",
}

CSS = """
body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;color:#1c2833;margin:32px auto;max-width:1000px;
     padding:0 24px;line-height:1.4}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;border-bottom:2px solid #1c2833;padding-bottom:4px;
margin-top:36px}h3{font-size:16px;margin:22px 0 6px}
.sub{color:#4d5b66;margin:2px 0}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:18px 0}
.card{border:1px solid #cfd8dc;border-radius:6px;padding:10px 14px;min-width:150px}
.card b{display:block;font-size:22px}.card span{color:#4d5b66;font-size:13px}
.bad b{color:#c62828}.good b{color:#2e7d32}
table{border-collapse:collapse;width:100%;margin:6px 0 12px;font-size:14px}
th,td{border-bottom:1px solid #dde3e6;padding:5px 8px;text-align:left}
th{background:#f3f6f7}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:bold;border-top:2px solid #1c2833}table.breaches td{white-space:nowrap}
.tag{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}
.note{background:#fff8e1;border-left:4px solid #ffb300;padding:8px 12px;margin:12px 0}
svg{display:block;margin:6px 0 14px}
footer{margin-top:40px;color:#4d5b66;font-size:12px}
"""


def _t(t: datetime) -> str:
    return _hm(t) + " UTC"


def _hm(t: datetime) -> str:
    """An instant in a column headed "(UTC)"."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _pct(p: Decimal | None) -> str:
    return "—" if p is None else f"{p} %"


def _tag(outcome: str, label: str | None = None) -> str:
    return f'<span class="tag" style="background:{COLOUR[outcome]}">{escape(label or outcome)}</span>'


def _month_name(month: str) -> str:
    return month_bounds(month)[0].strftime("%B %Y")


# --------------------------------------------------------------------------- SVG helpers


class _Axis:
    """Maps instants in [start, end) onto x pixels [left, left + width)."""

    def __init__(self, start: datetime, end: datetime, left: float, width: float):
        self.start, self.end, self.left, self.width = start, end, left, width
        self.span = (end - start).total_seconds()

    def x(self, t: datetime) -> float:
        t = min(max(t, self.start), self.end)
        return round(self.left + (t - self.start).total_seconds() / self.span * self.width, 2)


def _rect(x0: float, x1: float, y: float, h: float, fill: str, extra: str = "", least: float = 0.8) -> str:
    """A bar from x0 to x1; at least `least` px wide, so a short outage stays visible."""
    return f'<rect x="{x0}" y="{y}" width="{max(x1 - x0, least):.2f}" height="{h}" fill="{fill}"{extra}/>'


def _text(x: float, y: float, s: str, size: int = 12, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}"{extra}>{escape(s)}</text>'


def _legend(items: Iterable[tuple[str, str]], x: float, y: float) -> list[str]:
    out = []
    for label, fill in items:
        out.append(_rect(x, x + 14, y - 11, 14, fill, ' stroke="#546e7a" stroke-width="0.5"'))
        out.append(_text(x + 19, y, label))
        x += 30 + 7.2 * len(label)
    return out


# --------------------------------------------------------------------------- ticket timeline


def ticket_svg(tl: TicketTimeline) -> str:
    """The breached ticket's clocks over its business hours, in the calendar's local time."""
    zone = ZoneInfo(tl.calendar_timezone)
    width, left, right = 950, 190, 20
    row_h, top = 34, 42
    axis = _Axis(tl.start, tl.end, left, width - left - right)
    rows = len(tl.clocks)
    bottom = top + rows * row_h
    height = bottom + 78
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="clock of ticket {escape(tl.ticket_id)}" font-family="DejaVu Sans, Arial, sans-serif">',
           _rect(left, width - right, top, bottom - top, COLOUR["closed"])]
    out += [_rect(axis.x(a), axis.x(b), top, bottom - top, COLOUR["open"]) for a, b in tl.open_hours]
    out += [_rect(axis.x(a), axis.x(b), top, bottom - top, COLOUR["paused"], ' opacity="0.8"') for a, b in tl.paused]
    # days and 6-hour ticks in local time
    day = tl.start.astimezone(zone)
    while day.astimezone(UTC) < tl.end:
        x = axis.x(day.astimezone(UTC))
        out.append(f'<line x1="{x}" y1="{top - 18}" x2="{x}" y2="{bottom}" stroke="#37474f" stroke-width="1"/>')
        out.append(_text(x + 4, top - 22, day.strftime("%a %d %b"), 12, extra=' font-weight="bold"'))
        for h in (6, 12, 18):
            hx = axis.x((day + timedelta(hours=h)).astimezone(UTC))
            if hx < width - right - 1:
                out.append(f'<line x1="{hx}" y1="{top - 6}" x2="{hx}" y2="{bottom}" stroke="#b0bec5" '
                           'stroke-width="0.6" stroke-dasharray="2,3"/>')
                out.append(_text(hx, top - 8, f"{h:02d}:00", 10, "middle", ' fill="#546e7a"'))
        day = datetime.combine(day.date() + timedelta(days=1), day.time().min, zone)
    for i, c in enumerate(tl.clocks):
        y = top + i * row_h
        label = f"{c.metric.replace('_', ' ')} {binding_name(c.binding)}"
        out.append(_text(left - 8, y + 15, label, 12, "end"))
        out.append(_text(left - 8, y + 28, c.target, 10, "end", ' fill="#546e7a"'))
        x0, xdue = axis.x(c.started_at), axis.x(c.due_at)
        if c.outcome == BREACHED:
            out.append(_rect(x0, xdue, y + 9, 16, COLOUR["running"]))
            reply = next((r for r in tl.replies if r > c.due_at), None)
            out.append(_rect(xdue, axis.x(reply or tl.end), y + 9, 16, COLOUR["breached"]))
        else:
            out.append(_rect(x0, axis.x(c.at), y + 9, 16, COLOUR["met"]))
        out.append(f'<line x1="{xdue}" y1="{y + 3}" x2="{xdue}" y2="{y + 31}" stroke="#000" stroke-width="2.5"/>')
        out.append(_text(xdue + 3, y + 6, "deadline " + c.due_at.astimezone(zone).strftime("%a %H:%M"), 10,
                         extra=' font-weight="bold"'))
    for r in tl.replies:
        x = axis.x(r)
        out.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom + 6}" stroke="#6a1b9a" stroke-width="2.5" '
                   'stroke-dasharray="5,3"/>')
        out.append(_text(x, bottom + 18, "provider reply " + r.astimezone(zone).strftime("%a %H:%M"), 11, "middle",
                         ' fill="#6a1b9a" font-weight="bold"'))
    legend = [("business hours", COLOUR["open"]), ("closed", COLOUR["closed"]), ("paused", COLOUR["paused"]),
              ("before the deadline", COLOUR["running"]), ("met", COLOUR["met"]),
              ("breached (overdue)", COLOUR["breached"])]
    out += _legend(legend, left, height - 22)
    out.append(_text(left, height - 4, f"Local time {tl.calendar_timezone}; business hours {tl.calendar}", 10,
                     extra=' fill="#546e7a"'))
    out.append("</svg>")
    return "\n".join(out)


# --------------------------------------------------------------------------- uptime strip


def uptime_svg(sm: ServiceMonth) -> str:
    """The service's month, day by day (UTC): downtime, maintenance, excluded, partial outages."""
    assert sm.figures is not None
    fig = sm.figures
    width, left, right, top, h = 950, 20, 20, 30, 44
    axis = _Axis(fig.start, fig.end, left, width - left - right)
    height = top + h + 64
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'aria-label="uptime of {escape(sm.service_id)}" font-family="DejaVu Sans, Arial, sans-serif">',
           _rect(left, width - right, top, h, COLOUR["up"])]
    if fig.as_of < fig.end:  # the part of the month not yet lived
        out.append(_rect(axis.x(fig.as_of), width - right, top, h, "#ffffff", ' stroke="#b0bec5"'))
    for w in fig.windows:
        out += [_rect(axis.x(a), axis.x(b), top - 8, h + 16, COLOUR["window"]) for a, b in w.scheduled]
    for v in fig.outages:
        if v.status == "partial":
            out.append(_rect(axis.x(v.in_month_start), axis.x(v.in_month_end), top + h - 12, 12, COLOUR["partial"]))
    for s in fig.segments:
        out.append(_rect(axis.x(s.start), axis.x(s.end), top, h, COLOUR[s.kind], least=3))
    day = fig.start
    while day < fig.end:
        x = axis.x(day)
        out.append(f'<line x1="{x}" y1="{top + h}" x2="{x}" y2="{top + h + (8 if day.day % 5 == 1 else 4)}" '
                   'stroke="#37474f" stroke-width="1"/>')
        if day.day == 1 or day.day % 5 == 0:
            out.append(_text(x + 1, top + h + 20, day.strftime("%d %b"), 11, "middle"))
        day += timedelta(days=1)
    for s in fig.segments:  # label what went down, above the strip
        out.append(_text(axis.x(s.start), top - 12, "+".join(s.outage_ids), 11, "middle", ' font-weight="bold"'))
    out.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{h}" fill="none" '
               'stroke="#37474f"/>')
    legend = [("up", COLOUR["up"]), ("downtime", COLOUR["downtime"]), ("maintenance (not downtime)",
              COLOUR["maintenance"]), ("excluded cause", COLOUR["excluded"]), ("scheduled window",
              COLOUR["window"]), ("partial outage (not counted)", COLOUR["partial"])]
    out += _legend(legend, left, height - 8)
    out.append("</svg>")
    return "\n".join(out)


# --------------------------------------------------------------------------- page


def _cards(r: MonthReport) -> str:
    total = r.total
    cards = []
    if r.ticket_clocks:
        cards.append(("", str(r.tickets), "tickets submitted"))
        cards.append(("good" if total.attainment_percent == Decimal(100) else "bad" if total.breached else "",
                      _pct(total.attainment_percent), "of response targets met"))
        cards.append(("bad" if r.breaches else "good", str(len(r.breaches)), "breaches"))
    for s in r.services:
        if s.closed is not None:
            cards.append(("good" if s.closed["met"] else "bad", f"{s.closed['uptime_percent']} %",
                          f"uptime {s.service_id}"))
        if s.refund is not None:
            cards.append(("bad", f"{s.refund['refund_amount']} {s.refund['currency']}", f"refund {s.service_id}"))
    return '<div class="cards">' + "".join(
        f'<div class="card {cls}"><b>{escape(v)}</b><span>{escape(k)}</span></div>' for cls, v, k in cards) + "</div>"


def _ticket_tables(r: MonthReport) -> list[str]:
    if not r.ticket_clocks:
        return ["<h2>Support tickets</h2>", "<p>This plan has no ticket clocks (no response targets).</p>"]
    out = ["<h2>Support tickets</h2>",
           f"<p>{r.tickets} ticket(s) submitted in {escape(_month_name(r.month))}; each response target counts "
           "once it is met or breached.</p>",
           "<table><tr><th>priority</th><th>metric</th><th>target</th><th class=n>measured</th><th class=n>met</th>"
           "<th class=n>breached</th><th class=n>attainment</th></tr>"]
    for row in (*r.rows, r.total):
        cls = ' class="total"' if row.priority == "all" else ""
        kind = "all" if row.priority == "all" else binding_name(row.binding)
        out.append(f"<tr{cls}><td>{escape(row.priority)}</td><td>{escape(row.metric.replace('_', ' '))}</td>"
                   f"<td>{kind}</td><td class=n>{row.measured}</td><td class=n>{row.met}</td>"
                   f"<td class=n>{row.breached}</td><td class=n>{_pct(row.attainment_percent)}</td></tr>")
    out.append("</table>")
    out.append("<h3>Breaches</h3>")
    if not r.breaches:
        out.append("<p>No response target was breached.</p>")
        return out
    out.append('<table class="breaches"><tr><th>ticket</th><th>priority</th><th>metric</th><th>target</th>'
               "<th>started (UTC)</th><th>deadline (UTC)</th><th>breached at (UTC)</th></tr>")
    for b in r.breaches:
        out.append(f"<tr><td>{escape(b.ticket_id)}</td><td>{escape(b.priority)}</td>"
                   f"<td>{escape(b.metric.replace('_', ' '))} (cycle {b.cycle})</td>"
                   f"<td>{binding_name(b.binding)}: {escape(b.target)}</td><td>{_hm(b.started_at)}</td>"
                   f"<td>{_hm(b.due_at)}</td><td>{_hm(b.at)}</td></tr>")
    out.append("</table>")
    for tl in r.timelines:
        out.append(f"<h3>Ticket {escape(tl.ticket_id)} ({escape(tl.priority)}): its clocks against business hours</h3>")
        out.append(ticket_svg(tl))
    return out


def _counted_as(fig: MonthFigures, v: OutageView) -> str:
    """How an outage's minutes were counted: the timeline's segments it is part of, by kind."""
    if v.status == "partial":
        return "partial scope: recorded, not counted"
    by_kind: dict[str, Fraction] = {}
    for seg in fig.segments:
        if v.outage.outage_id in seg.outage_ids:
            by_kind[seg.kind] = by_kind.get(seg.kind, Fraction(0)) + seg.minutes
    parts = [f"{kind} {minutes_on_wire(m)} min" for kind, m in sorted(by_kind.items())]
    if v.status == "excluded":
        parts.append(f"cause: {v.outage.category or 'no category'}")
    return "; ".join(parts) or "nothing counted (overlaps another outage)"


def _service_section(s: ServiceMonth, month: str) -> list[str]:
    out = [f"<h3>Service {escape(s.service_id)}</h3>"]
    if s.no_figures is not None:
        return out + [f'<p class="note">No figures for {escape(month)}: {escape(s.no_figures)}.</p>']
    if s.not_held is not None or s.figures is None or s.closed is None:
        return out + [f'<p class="note">No figures for {escape(month)} here: {escape(s.not_held or "")}. Run '
                      "<code>slaproc report</code> over the event archive for them.</p>"]
    fig, c = s.figures, s.closed
    state = (f"final (closed, revision {s.revision})" if s.final and s.revision else
             "final (month over, not yet closed)" if s.final else f"month in progress, as of {_t(fig.as_of)}")
    out.append(f"<p class=sub>Figures: {escape(state)}.</p>")
    out.append(uptime_svg(s))
    m = minutes_on_wire
    out.append("<table><tr><th>total minutes</th><th class=n>downtime</th><th class=n>maintenance</th>"
               "<th class=n>excluded</th><th class=n>uptime</th><th class=n>commitment</th><th>met</th></tr>"
               f"<tr><td>{m(c['total_minutes'])}</td><td class=n>{m(c['downtime_minutes'])} min</td>"
               f"<td class=n>{m(c['maintenance_minutes'])} min</td><td class=n>{m(c['excluded_minutes'])} min</td>"
               f"<td class=n>{c['uptime_percent']} %</td><td class=n>{c['commitment_percent']} %</td>"
               f"<td>{_tag('met') if c['met'] else _tag('breached', 'not met')}</td></tr></table>")
    if s.refund is not None:
        f = s.refund
        out.append("<table><tr><th>refund</th><th class=n>threshold</th><th class=n>excess</th><th class=n>monthly fee"
                   "</th><th class=n>amount</th><th>claim deadline</th></tr>"
                   f"<tr><td>eligible</td><td class=n>{m(f['threshold_minutes'])} min</td>"
                   f"<td class=n>{m(f['excess_minutes'])} min</td><td class=n>{f['monthly_fee']} {escape(f['currency'])}"
                   f"</td><td class=n><b>{f['refund_amount']} {escape(f['currency'])}</b></td>"
                   f"<td><b>{_t(f['claim_deadline'])}</b></td></tr></table>")
    else:
        out.append("<p>Commitment met: no refund.</p>")
    out.append("<table><tr><th>outage timeline</th><th>from</th><th>to</th><th class=n>in month</th><th>counted as"
               "</th></tr>")
    for v in fig.outages:
        how = _counted_as(fig, v)
        end = _t(v.end) + (" (unresolved)" if v.open else "")
        out.append(f"<tr><td>outage {escape(v.outage.outage_id)} ({escape(v.outage.start_source)})</td>"
                   f"<td>{_t(v.start)}</td><td>{end}</td><td class=n>{m(v.in_month_minutes)} min</td>"
                   f"<td>{escape(how)}</td></tr>")
    for w in fig.windows:
        out.append(f"<tr><td>maintenance {escape(w.window.maintenance_id)}</td><td>{_t(w.in_month_start)}</td>"
                   f"<td>{_t(w.in_month_end)}</td><td class=n>{m(w.scheduled_minutes)} min scheduled</td>"
                   f"<td>{escape(w.reason)}</td></tr>")
    if not fig.outages and not fig.windows:
        out.append("<tr><td colspan=5>No outage and no maintenance window this month.</td></tr>")
    out.append("</table>")
    return out


def render_html(r: MonthReport) -> str:
    """The page: summary cards, tickets (table, breaches, clock pictures), uptime per service."""
    title = f"SLA report — {r.customer_id} — {_month_name(r.month)}"
    body = [f"<h1>{escape(title)}</h1>", f"<p class=sub>{escape(r.contract)}</p>",
            f"<p class=sub>Figures as of {_t(r.as_of)}. All times UTC unless a picture says otherwise.</p>",
            *(f'<p class="note">{escape(n)}</p>' for n in r.notes), _cards(r), *_ticket_tables(r)]
    if r.services:
        body.append("<h2>Uptime and refunds</h2>")
        for s in r.services:
            body += _service_section(s, r.month)
    body.append("<footer>Computed by slaproc from the recorded events under the provider's published policy. "
                "A refund must be claimed by its claim deadline.</footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escape(title)
            + "</title><style>" + CSS + "</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
