"""Core `Output` records to wire bytes (one place, shared by replay and stream).

The clock outputs (breached / met / at-risk: nearly all the volume) are written by a
direct encoder; every other type goes through its pydantic model. A unit test holds
the direct encoder byte-identical to the model path.
"""
from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from typing import Any

from events import models
from events.codec import encode
from events.ids import minutes_text
from policies.outputs import Output
from policies.tickets import utc_iso

MODEL_BY_TYPE: dict[str, type] = {
    "sla.breached": models.SlaBreached,
    "sla.met": models.SlaMet,
    "sla.at_risk": models.SlaAtRisk,
    "sla.breach_retracted": models.SlaBreachRetracted,
    "ticket.priority_change_rejected": models.PriorityChangeRejected,
    "ticket.priority_adjusted": models.PriorityAdjusted,
    "sla.attainment_reported": models.AttainmentReported,
    "uptime.month_closed": models.UptimeMonthClosed,
    "refund.eligible": models.RefundEligible,
    "refund.withdrawn": models.RefundWithdrawn,
    "sla.met_retracted": models.SlaMetRetracted,
    "ticket.priority_notice_retracted": models.PriorityNoticeRetracted,
    "dead_letter": models.DeadLetter,
}
_QUANTUM = Decimal("0.0001")
_string = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# What `_string` does with a str, without its Python-level `encode` call (JSONEncoder.encode
# hands a str straight to this C function when ensure_ascii is off): the clock outputs' string
# fields are always str; anything else raises TypeError and `to_bytes` takes the `_string` way.
_str = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _plain(value: Any) -> Any:
    if isinstance(value, Fraction):
        with localcontext() as ctx:
            ctx.prec = 34
            return Decimal(value.numerator) / Decimal(value.denominator)
    return value


def to_model(out: Output) -> Any:
    """The validated output event model of a core `Output`."""
    data = {k: _plain(v) for k, v in out.fields.items()}
    data["event_id"] = out.event_id
    data["type"] = out.type
    data["occurred_at"] = out.occurred_at
    return MODEL_BY_TYPE[out.type].model_validate(data)


#: instant -> its JSON text. A ticket's at-risk warnings, breach and met repeat its started_at /
#: due_at (and a tick's outputs their instant): about half the instants written were written
#: just before. Bounded (cleared when full): equal datetimes give equal text, so it never shows.
_INSTANT_TEXT: dict[datetime, str] = {}
_INSTANT_TEXT_MAX = 8192
UTC = timezone.utc


def _instant(t: datetime) -> str:
    if t.tzinfo is not UTC:  # equal datetimes in other zones compare equal but read otherwise: not memoised
        return '"' + t.isoformat().replace("+00:00", "Z") + '"'
    text = _INSTANT_TEXT.get(t)
    if text is None:
        if len(_INSTANT_TEXT) >= _INSTANT_TEXT_MAX:
            _INSTANT_TEXT.clear()
        # the core's memo first: a breach / met id has just formatted most of its output's instants
        text = _INSTANT_TEXT[t] = '"' + utc_iso(t).replace("+00:00", "Z") + '"'
    return text


def _number(value: Decimal | float) -> str:
    if value == int(value):
        return str(int(value))
    return repr(float(value))


#: a target's amount or a threshold -> its `_number` text (~4,500 instructions for a Decimal): a few
#: values, written in every clock output. Equal values (1 and 1.0, 0.50 and 0.5) have the same text.
_number_text = functools.lru_cache(maxsize=1024)(_number)


def _minutes(value: Fraction) -> str:
    if type(value) is Fraction:
        return minutes_text(value)  # the same text as the met's event id hashes (integer arithmetic)
    return _number(Decimal(value).quantize(_QUANTUM, rounding=ROUND_HALF_UP))


def _clock_output(out: Output, string: Any = _str) -> bytes:
    f = out.fields
    target = f["target"]
    # `_instant`'s memo read inline (three or four instants an output): a UTC instant seen before
    # costs a dict lookup, not a call; the others (and the misses) take `_instant`.
    memo = _INSTANT_TEXT.get
    t = out.occurred_at
    occurred = (memo(t) if t.tzinfo is UTC else None) or _instant(t)
    t = f["started_at"]
    started = (memo(t) if t.tzinfo is UTC else None) or _instant(t)
    t = f["due_at"]
    due = (memo(t) if t.tzinfo is UTC else None) or _instant(t)
    parts = [
        '{"event_id":', string(out.event_id), ',"type":"', out.type, '","occurred_at":', occurred,
        ',"schema_version":1,"ticket_id":', string(f["ticket_id"]), ',"customer_id":', string(f["customer_id"]),
        ',"policy":"', f["policy"], '","plan":', string(f["plan"]), ',"policy_version":', string(f["policy_version"]),
        ',"priority":', string(f["priority"]), ',"metric":"', f["metric"], '","binding":',
        "true" if f["binding"] else "false",
        ',"target":{"amount":', _number_text(target["amount"]), ',"unit":"', target["unit"], '","clock":"', target["clock"],
        '"},"started_at":', started, ',"due_at":', due, ',"cycle":', str(f["cycle"]),
    ]
    if out.type == "sla.met":
        t = f["met_at"]
        parts += [',"met_at":', (memo(t) if t.tzinfo is UTC else None) or _instant(t),
                  ',"elapsed_minutes":', _minutes(f["elapsed_minutes"])]
    elif out.type == "sla.at_risk":
        parts += [',"threshold":', _number_text(f["threshold"])]
    parts.append("}")
    return "".join(parts).encode()


_DIRECT = {"sla.breached", "sla.met", "sla.at_risk"}


def to_bytes(out: Output) -> bytes:
    """Canonical JSON of the output event (no newline)."""
    if out.type in _DIRECT:
        try:
            return _clock_output(out)
        except TypeError:  # a string field that is not a str (never seen): JSONEncoder's way
            return _clock_output(out, _string)
    return encode(to_model(out))


def to_bytes_via_model(out: Output) -> bytes:
    """The reference encoding (validated model); `to_bytes` must equal it."""
    return encode(to_model(out))
