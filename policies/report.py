"""One customer's month as figures for a person (SPEC §15): the data of `slaproc report`.

Pure. Nothing here computes a figure a second way: ticket outcomes are the clock outputs the
ticket's history derives (`policies.tickets.standing_outcomes`, the fold replay and stream run),
uptime and refunds are `policies.downtime.month_figures` + `policies.uptime.close_month` (what
`uptime.month_closed` / `refund.eligible` carry and `explain-month` explains). This module only
selects, groups and counts them, and lays out the pictures' intervals.

Which tickets a month holds: those submitted (opened) in it, UTC, as Rescale's attainment counts
a quarter (docs/decisions.md, "Reports"). A clock counts as measured once it has an outcome (met on
time or breached); attainment = met ÷ measured, rounded half-up to 2 places, None when nothing was
measured.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

from policies.downtime import MonthFigures, ServiceState, SubscriberScope, month_figures, new_state
from policies.tickets import METRICS, REPLY, TicketState, standing_outcomes
from policies.uptime import claim_deadline, close_month, last_revision, month_bounds, round_half_up

UTC = timezone.utc
MET, BREACHED = "met", "breached"
TIMELINE_CLOCKS = 6  # rows of a ticket's picture


def binding_name(binding: bool) -> str:
    """The seeds' words: a binding target is a commitment, a non-binding one an objective."""
    return "commitment" if binding else "objective"


def target_text(target: Mapping[str, Any]) -> str:
    amount, unit, clock = target["amount"], target["unit"], target["clock"]
    unit = unit[:-1] if amount == 1 else unit
    return f"{amount} {'business ' if clock == 'business' else ''}{unit}"


@dataclass(frozen=True)
class ClockOutcome:
    """One standing `sla.met` or `sla.breached` of a ticket submitted in the month."""

    ticket_id: str
    priority: str
    metric: str
    binding: bool
    target: str
    started_at: datetime
    due_at: datetime
    cycle: int
    outcome: str  # MET | BREACHED
    at: datetime  # met_at, or the instant of the breach
    elapsed_minutes: Fraction | None  # met only


@dataclass(frozen=True)
class AttainmentRow:
    """Clocks of one priority × metric × target kind: measured = met + breached."""

    priority: str
    metric: str
    binding: bool
    measured: int
    met: int
    breached: int

    @property
    def attainment_percent(self) -> Decimal | None:
        return round_half_up(Fraction(self.met * 100, self.measured), 2) if self.measured else None


@dataclass(frozen=True)
class TicketTimeline:
    """A breached ticket's clocks against its business hours: what the picture draws."""

    ticket_id: str
    priority: str
    calendar: str  # the calendar's own description
    calendar_timezone: str  # the picture's local time
    start: datetime  # the picture's span
    end: datetime
    open_hours: tuple[tuple[datetime, datetime], ...]  # open business time within the span
    paused: tuple[tuple[datetime, datetime], ...]  # a pause status stopped the clocks
    clocks: tuple[ClockOutcome, ...]
    replies: tuple[datetime, ...]  # the provider's public replies


@dataclass(frozen=True)
class ServiceMonth:
    """A service's month: the close's figures as of `figures.as_of`, or why there are none."""

    service_id: str
    not_held: str | None  # why the state holds no figures of the month (pruned, elsewhere); None: held
    figures: MonthFigures | None
    closed: Mapping[str, Any] | None  # SPEC §4 fields of uptime.month_closed (close_month)
    refund: Mapping[str, Any] | None  # SPEC §4 fields of refund.eligible, None when met
    final: bool  # the month is over: these are the figures a close uses
    revision: int  # of the last uptime.month_closed emitted for it (0: not closed yet)
    claim_deadline: datetime
    # why the month has no figures at all, wherever they are held: the contract is not in force in
    # it, or the events have not reached it (`no_figures_reason`); None: figures (or `not_held`)
    no_figures: str | None = None


@dataclass(frozen=True)
class MonthReport:
    customer_id: str
    month: str
    contract: str  # one line: policy, plan, catalog version, commitment, fees
    as_of: datetime
    ticket_clocks: bool  # False for plans without ticket clocks (Vectorize Starter)
    tickets: int  # submitted in the month
    rows: tuple[AttainmentRow, ...]
    outcomes: tuple[ClockOutcome, ...]
    timelines: tuple[TicketTimeline, ...]
    services: tuple[ServiceMonth, ...]
    notes: tuple[str, ...]  # what the figures do not cover, said plainly

    @property
    def breaches(self) -> tuple[ClockOutcome, ...]:
        return tuple(o for o in self.outcomes if o.outcome == BREACHED)

    @property
    def total(self) -> AttainmentRow:
        rows = self.rows
        return AttainmentRow("all", "all", True, sum(r.measured for r in rows), sum(r.met for r in rows),
                             sum(r.breached for r in rows))


# --------------------------------------------------------------------------- tickets


def _outcome(out_fields: Mapping[str, Any], type_: str, at: datetime) -> ClockOutcome:
    f = out_fields
    met = type_ == "sla.met"
    return ClockOutcome(f["ticket_id"], f["priority"], f["metric"], f["binding"], target_text(f["target"]),
                        f["started_at"], f["due_at"], f["cycle"], MET if met else BREACHED, at,
                        f["elapsed_minutes"] if met else None)


def _rows(outcomes: Iterable[ClockOutcome], priorities: tuple[str, ...]) -> tuple[AttainmentRow, ...]:
    counts: dict[tuple[str, str, bool], list[int]] = {}
    for o in outcomes:
        met_breached = counts.setdefault((o.priority, o.metric, o.binding), [0, 0])
        met_breached[o.outcome == BREACHED] += 1
    order = {p: i for i, p in enumerate(priorities)}
    keys = sorted(counts, key=lambda k: (order.get(k[0], len(order)), METRICS.index(k[1]), k[2]))
    return tuple(AttainmentRow(p, m, b, sum(counts[(p, m, b)]), *counts[(p, m, b)]) for p, m, b in keys)


def _spans(status_history: list[tuple[datetime, str, bool]], pausing: frozenset[str],
           end: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """The intervals in a status that pauses a clock (not a resolution: it stops them)."""
    spans = []
    for i, (since, status, resolved) in enumerate(status_history):
        until = status_history[i + 1][0] if i + 1 < len(status_history) else end
        if status in pausing and not resolved and until > since:
            spans.append((since, min(until, end)))
    return tuple(spans)


def _whole_local_days(first: datetime, last: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """From the local midnight before `first` to the one after `last`: a picture's days align."""
    day = first.astimezone(zone).date()
    end_day = last.astimezone(zone).date() + timedelta(days=1)
    return (datetime.combine(day, time(), zone).astimezone(UTC), datetime.combine(end_day, time(), zone).astimezone(UTC))


def _timeline(state: TicketState, plan: Any, outcomes: tuple[ClockOutcome, ...],
              status_history: list[tuple[datetime, str, bool]], now: datetime) -> TicketTimeline:
    """The picture of a breached ticket: its first clocks up to the first breach's cycle, at most
    `TIMELINE_CLOCKS` (a long-open ticket's update cycles are in the tables, not all drawn)."""
    breach = min((c for c in outcomes if c.outcome == BREACHED), key=lambda c: c.at)
    clocks = tuple(c for c in outcomes if c.started_at <= breach.started_at)[:TIMELINE_CLOCKS]
    replies = tuple(ts for ts, _seq, kind, _v in sorted(state.history) if kind == REPLY)
    after_breach = [r for r in replies if r > breach.at][:1]
    instants = [state.opened_at, *(c.due_at for c in clocks), *(c.at for c in clocks), *after_breach]
    calendar = plan.business_calendar(breach.priority)  # the hours its (first) breached clock ran on
    start, end = _whole_local_days(min(instants), max(instants), ZoneInfo(calendar.timezone))
    pausing = frozenset().union(*plan.pause_statuses.values()) if plan.pause_statuses else frozenset()
    return TicketTimeline(state.ticket_id, breach.priority, calendar.describe(), calendar.timezone, start, end,
                          tuple(calendar.open_intervals(start, end)), _spans(status_history, pausing, max(now, end)),
                          clocks, replies)


def ticket_section(tickets: Iterable[TicketState], plan_of: Callable[[TicketState], Any], priorities: tuple[str, ...],
                   month: str, now: datetime
                   ) -> tuple[int, tuple[AttainmentRow, ...], tuple[ClockOutcome, ...], tuple[TicketTimeline, ...]]:
    """(tickets submitted in `month`, rows, outcomes, timelines of the breached ones) as of `now`.
    `plan_of(ticket)` is the plan the ticket is measured under: the catalog version it was opened
    under (SPEC §14), which need not be the month's; `priorities` orders the rows."""
    start, end = month_bounds(month)
    chosen = sorted((s for s in tickets if start <= s.opened_at < end), key=lambda s: (s.opened_at, s.ticket_id))
    outcomes: list[ClockOutcome] = []
    timelines: list[TicketTimeline] = []
    for state in chosen:
        plan = plan_of(state)
        derived, status_history = standing_outcomes(state, plan, now)
        mine = tuple(sorted((_outcome(o.fields, o.type, o.occurred_at) for o in derived),
                            key=lambda c: (c.at, METRICS.index(c.metric), c.binding, c.cycle)))
        outcomes.extend(mine)
        if any(c.outcome == BREACHED for c in mine):
            timelines.append(_timeline(state, plan, mine, status_history, now))
    return len(chosen), _rows(outcomes, priorities), tuple(outcomes), tuple(timelines)


# --------------------------------------------------------------------------- services


def _wire_instant(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def no_figures_reason(month: str, now: datetime | None, in_force_from: datetime | None,
                      start_month: str | None) -> str | None:
    """Why a customer's service `month` has no uptime figures, as of `now` (the time the events
    reached): the contract is not in force in it (it ends at or before the first terms'
    `effective_from`), the customer's months start later (undated terms: at the first instant of
    the events, `start_month`), or the events have not reached it. The month close never measures
    such a month (review of 2026-12-04, F2: they were shown as 100.00 % met, "final"). None: figures."""
    start, end = month_bounds(month)
    if in_force_from is not None and end <= in_force_from:
        return f"contract not in force in {month} (in force from {_wire_instant(in_force_from)})"
    if start_month is not None and month < start_month:
        return f"no events in {month} (the customer's months start in {start_month}, with the events)"
    if now is None:
        return f"no events in {month} (there are none)"
    if now < start:
        return f"no events in {month} (the events end at {_wire_instant(now)})"
    return None


def service_month(state: ServiceState | None, service_id: str, *, customer_id: str, month: str,
                  commitment: Decimal, fee_per_month: Decimal | Fraction, currency: str, now: datetime,
                  not_held: str | None = None, scope: SubscriberScope | None = None,
                  in_force: tuple[datetime | None, datetime | None] | None = None,
                  start_month: str | None = None) -> ServiceMonth:
    """The month's uptime and refund of one service, from the same functions as the month close.

    `not_held`: why the state cannot give the month's figures (pruned after its claim window, held
    by another worker); the report then shows none rather than figures of an empty state.
    `start_month`: the customer's first month (`ContractEntry.start_month`): with `in_force`'s
    start, a month before the contract or after `now` has no figures (`no_figures_reason`)."""
    start, end = month_bounds(month)
    absent = no_figures_reason(month, now, in_force[0] if in_force else None, start_month)
    if absent is not None:
        return ServiceMonth(service_id, None, None, None, None, False, 0, claim_deadline(month), absent)
    if not_held is not None:
        return ServiceMonth(service_id, not_held, None, None, None, True, 0, claim_deadline(month))
    state = state or new_state(service_id)
    as_of = min(max(now, start), end)
    figures = month_figures(state, month, as_of, scope, in_force)  # the customer's scope and span (SPEC §11)
    closed, refund = close_month(figures, customer_id=customer_id, service_id=service_id,
                                 commitment_percent=commitment, fee_per_month=fee_per_month, currency=currency)
    return ServiceMonth(service_id, None, figures, closed, refund, as_of >= end,
                        last_revision(state, customer_id, month), claim_deadline(month))
