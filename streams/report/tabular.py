"""The month report as JSON and CSV: the same figures as the HTML page, in wire conventions.

Minutes are numbers (seconds / 60, 4 decimals), percentages and money decimal strings, instants
`YYYY-MM-DDTHH:MM:SSZ` (docs/design.md, "Time values"). The CSV is the JSON document flattened
to one figure per row (`section, subject, field, value`), so both carry exactly the same figures.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

from policies.report import AttainmentRow, ClockOutcome, MonthReport, ServiceMonth, binding_name
from policies.uptime import minutes_on_wire


def _wire(v: Any) -> Any:
    if isinstance(v, Fraction):
        m = minutes_on_wire(v)
        return int(m) if m == m.to_integral_value() else float(m)
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return v


def _row(r: AttainmentRow) -> dict[str, Any]:
    return {"priority": r.priority, "metric": r.metric, "target": binding_name(r.binding) if r.priority != "all"
            else "all", "measured": r.measured, "met": r.met, "breached": r.breached,
            "attainment_percent": _wire(r.attainment_percent)}


def _outcome(o: ClockOutcome) -> dict[str, Any]:
    return {"ticket_id": o.ticket_id, "priority": o.priority, "metric": o.metric, "binding": o.binding,
            "target": f"{binding_name(o.binding)}: {o.target}", "cycle": o.cycle, "started_at": _wire(o.started_at),
            "due_at": _wire(o.due_at), "outcome": o.outcome, "at": _wire(o.at),
            **({"elapsed_minutes": _wire(o.elapsed_minutes)} if o.elapsed_minutes is not None else {})}


def _service(s: ServiceMonth) -> dict[str, Any]:
    doc: dict[str, Any] = {"service_id": s.service_id, "held": s.not_held is None}
    if s.not_held is not None:
        doc["not_held"] = s.not_held
    if s.no_figures is not None:
        doc["no_figures"] = s.no_figures
    if s.figures is None or s.closed is None:
        return doc
    fig = s.figures
    doc.update({"final": s.final, "revision": s.revision, "as_of": _wire(fig.as_of),
                **{k: _wire(v) for k, v in s.closed.items() if k not in ("customer_id", "service_id", "month",
                                                                         "revision")}})
    doc["refund"] = None if s.refund is None else {k: _wire(v) for k, v in s.refund.items()
                                                   if k not in ("customer_id", "service_id", "month", "revision")}
    doc["timeline"] = [{"start": _wire(x.start), "end": _wire(x.end), "kind": x.kind,
                        "minutes": _wire(x.minutes), "outages": list(x.outage_ids),
                        "maintenance": list(x.maintenance_ids)} for x in fig.segments]
    doc["outages"] = [{"outage_id": v.outage.outage_id, "start": _wire(v.start), "end": _wire(v.end),
                       "resolved": not v.open, "in_month_minutes": _wire(v.in_month_minutes), "status": v.status,
                       "category": v.outage.category} for v in fig.outages]
    doc["maintenance"] = [{"maintenance_id": w.window.maintenance_id, "start": _wire(w.in_month_start),
                           "end": _wire(w.in_month_end), "scheduled_minutes": _wire(w.scheduled_minutes),
                           "reason": w.reason} for w in fig.windows]
    return doc


def report_document(r: MonthReport) -> dict[str, Any]:
    return {
        "customer_id": r.customer_id, "month": r.month, "contract": r.contract, "as_of": _wire(r.as_of),
        "notes": list(r.notes),
        "tickets": {"ticket_clocks": r.ticket_clocks, "submitted": r.tickets,
                    "by_priority_and_metric": [_row(x) for x in r.rows], "total": _row(r.total),
                    "breaches": [_outcome(o) for o in r.breaches],
                    "outcomes": [_outcome(o) for o in r.outcomes]},
        "services": [_service(s) for s in r.services],
    }


def render_json(r: MonthReport) -> str:
    return json.dumps(report_document(r), indent=2) + "\n"


def _flatten(section: str, subject: str, doc: dict[str, Any], out: list[list[str]]) -> None:
    for key, value in doc.items():
        if isinstance(value, dict):
            _flatten(section, f"{subject}/{key}" if subject else key, value, out)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for i, item in enumerate(value, 1):
                _flatten(section, f"{subject}/{key}[{i}]" if subject else f"{key}[{i}]", item, out)
        else:
            text = "" if value is None else json.dumps(value) if isinstance(value, (bool, list)) else str(value)
            out.append([section, subject, key, text])


def render_csv(r: MonthReport) -> str:
    doc = report_document(r)
    rows: list[list[str]] = []
    _flatten("report", "", {k: doc[k] for k in ("customer_id", "month", "contract", "as_of", "notes")}, rows)
    _flatten("tickets", "", doc["tickets"], rows)
    for s in doc["services"]:
        _flatten("service", s["service_id"], s, rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["section", "subject", "field", "value"])
    writer.writerows(rows)
    return buf.getvalue()
