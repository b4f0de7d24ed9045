"""The net outcome of a run (SPEC §5, §10): what a consumer holds once every correction is applied.

- standing breaches: `sla.breached` not retracted by a `sla.breach_retracted`;
- `sla.met` not retracted by a `sla.met_retracted`;
- notices (`ticket.priority_change_rejected`, `ticket.priority_adjusted`,
  `sla.attainment_reported`) not retracted by a `ticket.priority_notice_retracted`;
- per customer x service x month, the figures of the highest `uptime.month_closed` revision;
- per customer x service x month, the standing refund: the `refund.eligible` of the highest
  revision, unless a `refund.withdrawn` of a higher revision withdrew it.

Events are compared by id and content; month figures and refunds without `event_id`,
`occurred_at` and `revision` (SPEC §5: their revision numbers may differ).
"""
from __future__ import annotations

import json
from typing import Any, Iterable

NOTICES = ("ticket.priority_change_rejected", "ticket.priority_adjusted", "sla.attainment_reported")
_MONTH_VOLATILE = ("event_id", "occurred_at", "revision")


def _load(outputs: Iterable[Any]) -> list[dict]:
    rows = []
    for o in outputs:
        if isinstance(o, (bytes, str)):
            o = json.loads(o)
        rows.append(o)
    return rows


def net_outcome(outputs: Iterable[Any]) -> dict[str, Any]:
    rows = _load(outputs)
    retracted = {o["breach_event_id"] for o in rows if o["type"] == "sla.breach_retracted"}
    met_retracted = {o["met_event_id"] for o in rows if o["type"] == "sla.met_retracted"}
    notices_retracted = {o["notice_event_id"] for o in rows if o["type"] == "ticket.priority_notice_retracted"}
    breaches = {o["event_id"]: o for o in rows if o["type"] == "sla.breached" and o["event_id"] not in retracted}
    met = {o["event_id"]: o for o in rows if o["type"] == "sla.met" and o["event_id"] not in met_retracted}
    notices = {o["event_id"]: o for o in rows if o["type"] in NOTICES and o["event_id"] not in notices_retracted}
    months: dict[tuple, dict] = {}
    refunds: dict[tuple, dict] = {}
    withdrawn: dict[tuple, int] = {}
    for o in rows:
        key = (o.get("customer_id"), o.get("service_id"), o.get("month"))
        if o["type"] == "uptime.month_closed":
            if key not in months or o["revision"] > months[key]["revision"]:
                months[key] = o
        elif o["type"] == "refund.eligible":
            if key not in refunds or o["revision"] > refunds[key]["revision"]:
                refunds[key] = o
        elif o["type"] == "refund.withdrawn":
            withdrawn[key] = max(withdrawn.get(key, 0), o["revision"])
    standing = {k: r for k, r in refunds.items() if withdrawn.get(k, 0) < r["revision"]}

    def strip(o: dict) -> dict:
        return {k: v for k, v in o.items() if k not in _MONTH_VOLATILE}

    return {
        "breaches": breaches, "met": met, "notices": notices,
        "months": {k: strip(v) for k, v in months.items()},
        "refunds": {k: strip(v) for k, v in standing.items()},
    }


def notice_diff(stream: Iterable[Any], replay: Iterable[Any], inputs: Iterable[Any] = (), limit: int = 10) -> str:
    """For a net outcome whose notices differ: per ticket with a standing notice on one side only, its
    notices and retractions on each side (S stream, R replay) and, given the input lines, its input
    events (I), so a failure names the ticket and shows where the two sides part."""
    s_rows, r_rows = _load(stream), _load(replay)
    s_notices, r_notices = net_outcome(s_rows)["notices"], net_outcome(r_rows)["notices"]
    differing = {k for k in s_notices.keys() ^ r_notices.keys()}
    differing |= {k for k in s_notices.keys() & r_notices.keys() if s_notices[k] != r_notices[k]}
    def owner(o: dict) -> Any:  # an attainment report is a customer's, not a ticket's
        return o.get("ticket_id", o.get("customer_id"))

    tickets = sorted({owner(s_notices.get(k) or r_notices[k]) for k in differing}, key=str)
    kinds = NOTICES + ("ticket.priority_notice_retracted",)
    in_rows = []
    for line in inputs:  # the mix has malformed lines too (dead letters)
        try:
            row = json.loads(line) if isinstance(line, (bytes, str)) else line
        except ValueError:
            continue
        if isinstance(row, dict):
            in_rows.append(row)
    lines = [f"{len(differing)} notice(s) differ, on {len(tickets)} ticket(s)"]
    for ticket in tickets[:limit]:
        lines.append(f"ticket {ticket}: notices only in stream {sorted(k for k in differing if k in s_notices and owner(s_notices[k]) == ticket)}, "
                     f"only in replay {sorted(k for k in differing if k in r_notices and owner(r_notices[k]) == ticket)}")
        for tag, rows in (("S", s_rows), ("R", r_rows)):
            lines += [f"  {tag} " + json.dumps(o, sort_keys=True) for o in rows
                      if o["type"] in kinds and owner(o) == ticket]
        lines += ["  I " + json.dumps(o, sort_keys=True) for o in in_rows if owner(o) == ticket]
    return "\n".join(lines)
