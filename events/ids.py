"""Deterministic output event ids (docs/design.md, "Output events and ids").

An output's id is a hash of what the event is about, so a consumer can de-duplicate
after a crash or a replay: `"sla-" + sha256("\\x1f".join(parts)).hexdigest()[:32]`.
"""
from __future__ import annotations

import hashlib
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in ids, so parts never run together


def output_event_id(*parts: str) -> str:
    """`"sla-"` + the first 32 hex digits of sha256 over the parts joined by U+001F."""
    return "sla-" + hashlib.sha256(_SEPARATOR.join(parts).encode("utf-8")).hexdigest()[:32]


def _flag(value: bool) -> str:
    return "true" if value else "false"


def number_text(value: float | int | Decimal) -> str:
    """A number as written on the wire: `0.5`, `0.75`, `1` (not `1.0`, not `0.50`)."""
    if value == int(value):
        return str(int(value))
    return repr(float(value))


def breach_event_id(ticket_id: str, metric: str, binding: bool, cycle: int, generation: int = 0) -> str:
    """A breach derived again after its retraction (generation >= 1) gets an id of its own."""
    parts = ["sla.breached", ticket_id, metric, _flag(binding), str(cycle)]
    if generation:
        parts.append(f"generation-{generation}")
    return output_event_id(*parts)


def clock_outcome_event_id(event_type: str, ticket_id: str, metric: str, binding: bool, cycle: int,
                           occurred_at: str, due_at: str, priority: str, started_at: str,
                           elapsed_minutes: str = "") -> str:
    """`sla.breached` / `sla.met` (SPEC §10): the clock and what a consumer sees of the outcome (its
    instant, deadline, priority, cycle start and, for a met, the elapsed minutes as on the wire), so
    the same outcome has the same id whatever the arrival order of the events that derived it, and
    a corrected outcome a new one. Instants as UTC ISO strings (`2026-02-03T15:30:00+00:00`)."""
    return output_event_id(event_type, ticket_id, metric, _flag(binding), str(cycle), occurred_at, due_at, priority,
                           started_at, elapsed_minutes)


def minutes_text(value: Fraction | Decimal | int) -> str:
    """Minutes as the wire writes them: half-up to 4 decimals, `150`, `150.5`, `0.0167`."""
    if type(value) is Fraction:  # every met (the clocks measure in Fractions): integer arithmetic, no Decimal context
        return _fraction_minutes_text(value.numerator, value.denominator)
    with localcontext() as ctx:
        ctx.prec = 34
        if isinstance(value, Fraction):
            exact = Decimal(value.numerator) / Decimal(value.denominator)
        else:
            exact = Decimal(value)
        return number_text(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def _fraction_minutes_text(numerator: int, denominator: int) -> str:
    """`numerator / denominator` (denominator > 0) as `minutes_text` writes it: the same digits as
    quantizing the exact Decimal half-up (away from zero) to 4 places, then `number_text`."""
    units, rest = divmod(abs(numerator) * 10_000, denominator)
    if 2 * rest >= denominator:
        units += 1
    if numerator < 0:
        units = -units
    if units % 10_000 == 0:
        return str(units // 10_000)
    return repr(units / 10_000)  # int / int is correctly rounded, as float(Decimal) is: the same float


def met_event_id(ticket_id: str, metric: str, binding: bool, cycle: int, generation: int = 0) -> str:
    """A met derived again after its retraction (generation >= 1) gets an id of its own."""
    parts = ["sla.met", ticket_id, metric, _flag(binding), str(cycle)]
    if generation:
        parts.append(f"generation-{generation}")
    return output_event_id(*parts)


def at_risk_event_id(ticket_id: str, metric: str, binding: bool, cycle: int, threshold: float | Decimal) -> str:
    # The threshold is written as on the wire so 0.5, 0.50 and Decimal("0.5") agree.
    return output_event_id("sla.at_risk", ticket_id, metric, _flag(binding), str(cycle), number_text(threshold))


def retraction_event_id(breach_event_id: str) -> str:
    return output_event_id("sla.breach_retracted", breach_event_id)


def met_retraction_event_id(met_event_id: str) -> str:
    return output_event_id("sla.met_retracted", met_event_id)


def refund_withdrawn_event_id(customer_id: str, service_id: str, month: str, revision: int) -> str:
    return output_event_id("refund.withdrawn", customer_id, service_id, month, str(revision))


def priority_notice_event_id(event_type: str, ticket_id: str, source_event_id: str) -> str:
    """`ticket.priority_change_rejected` / `ticket.priority_adjusted`: the ticket and the input that caused
    it (every output id names the entity it is about: the same input id on two tickets gives two ids)."""
    return output_event_id(event_type, ticket_id, source_event_id)


def notice_retraction_event_id(ticket_id: str, notice_event_id: str) -> str:
    """`ticket.priority_notice_retracted`: the ticket and the notice it cancels."""
    return output_event_id("ticket.priority_notice_retracted", ticket_id, notice_event_id)


def attainment_event_id(customer_id: str, quarter: str) -> str:
    return output_event_id("sla.attainment_reported", customer_id, quarter)


def month_event_id(event_type: str, customer_id: str, service_id: str, month: str, revision: int) -> str:
    """`uptime.month_closed` / `refund.eligible` for one customer, service, month and revision."""
    return output_event_id(event_type, customer_id, service_id, month, str(revision))


def dead_letter_event_id(source: str, raw: bytes) -> str:
    return output_event_id("dead_letter", source, hashlib.sha256(raw).hexdigest())
