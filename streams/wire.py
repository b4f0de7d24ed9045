"""Core `Output` records to wire bytes, through the event models (one place, shared by replay and stream)."""
from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from events import models
from events.codec import encode
from policies.outputs import Output

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
}


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


def to_bytes(out: Output) -> bytes:
    """Canonical JSON of the output event (no newline)."""
    return encode(to_model(out))
