"""Quarterly first-response attainment (Rescale, SPEC §4 / §7).

"Target First Response Time: the targeted response time across all support tickets
submitted from a customer in a quarterly period" (Rescale Technical Support and Package
Policy, 6. Definitions). A ticket counts in the quarter (UTC) in which it was submitted,
with the outcome of its binding first-response clock: met on time or breached. The outcome is read from the clock
outputs themselves, so a retracted breach stops counting and the late `sla.met` that
retracted it counts instead.

The report for a quarter is emitted once time has passed the quarter's end plus a delay
(`quarter_close_delay`, 1 h) AND every ticket submitted in the quarter has an outcome (or
its clock stopped without one: resolved or closed before any reply); its `occurred_at` is
the later of the two instants. A ticket submitted on the quarter's last evening is thus
counted in its own quarter. The wait is bounded: once time passes the quarter's end plus
`OUTCOME_WAIT` (7 days) the report is emitted, dated at that bound, and the tickets
still without an outcome are not measured (a clock paused for ever, an abandoned ticket).
An outcome dated after the bound never counts, whenever it is derived, and nothing is kept
for a reported quarter. Every instant is an event's or a deadline's, never the moment the
processor happened to look, so any arrival order reaches the sorted order's report. The
bound is shorter than a quarter: a later quarter never waits for an earlier one.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Mapping, Sequence

from policies.outputs import Output, output_event_id
from policies.tickets import breach_identity

UTC = timezone.utc
PARTIAL = "attainment.partial"  # internal (stream mode): one partition's counts, summed by `add_partial`
Key = tuple[str, str]  # (customer, quarter)


# How long after its end a quarter waits for its tickets' first-response outcomes (see above).
OUTCOME_WAIT = timedelta(days=7)


def quarter_of(t: datetime) -> str:
    """`2026-Q1` for an instant (quarters of the UTC calendar year)."""
    t = t.astimezone(UTC)
    return f"{t.year}-Q{(t.month - 1) // 3 + 1}"


@lru_cache(maxsize=256)
def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    year, q = int(quarter[:4]), int(quarter[-1])
    start = datetime(year, 3 * (q - 1) + 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if q == 4 else datetime(year, 3 * q + 1, 1, tzinfo=UTC)
    return start, end


def next_quarter(quarter: str) -> str:
    year, q = int(quarter[:4]), int(quarter[-1])
    return f"{year + 1}-Q1" if q == 4 else f"{year}-Q{q + 1}"


# Quarters in which a customer's terms have quarterly attainment: (first, last) inclusive, last None
# while the terms are the customer's latest; sorted and disjoint.
Spans = tuple[tuple[str, "str | None"], ...]


def attainment_spans(terms: Sequence[tuple[datetime | None, datetime | None, bool]]) -> Spans:
    """The quarters to report for one customer, from its terms in effective order: (in force from,
    in force until (exclusive, None: open), has quarterly attainment). A quarter is reported when
    such terms were in force at any instant of it: Rescale terms until 2026-05-15 report 2026-Q2
    (with the tickets opened under them), Rescale terms from 2026-08-01 start at 2026-Q3."""
    spans: list[tuple[str, str | None]] = []
    for start, until, quarterly in terms:
        if not quarterly or start is None or (until is not None and until <= start):
            continue
        first = quarter_of(start)
        last = None if until is None else quarter_of(until - timedelta(microseconds=1))
        previous_last = spans[-1][1] if spans else None
        if previous_last is not None and first <= next_quarter(previous_last):
            first = spans.pop()[0]  # adjacent or overlapping quarters: one span
        spans.append((first, last))
    return tuple(spans)


def _first_covered(spans: Spans, quarter: str) -> str | None:
    """The first quarter at or after `quarter` inside a span; None after the last span."""
    for first, last in spans:
        if last is not None and quarter > last:
            continue
        return quarter if quarter > first else first
    return None


# Bits of `TicketState.attainment`: the per-ticket half of the book.
WAITING = 1  # counted in `waiting` of its (customer, quarter): no first-response outcome yet
BREACH = 2  # its binding first-response breach is counted in `measured` (until retracted)
SNAPSHOT_VERSION = 2


def ticket_key(state: Any) -> Key:
    """The (customer, quarter) a ticket counts in: the quarter it was submitted in.

    Its binding first-response clock starts at the open, so this is also the quarter of
    the clock outputs' `started_at`."""
    return state.customer_id, quarter_of(state.opened_at)


class AttainmentBook:
    """Per (customer, quarter): tickets measured and met, and the number still waiting for an outcome.

    Which ticket is waiting, and which holds a counted breach, is kept on the ticket
    (`TicketState.attainment`, persisted with the ticket in the same batch), so the book's
    own state is O(customers x quarters), whatever the number of open tickets.

    Replay sees every ticket and reports directly. A stream partition sees only its own
    tickets: with `partition` set it emits its counts as an internal `attainment.partial`
    record instead, which `add_partial` sums over all partitions.
    """

    def __init__(self, partition: int | None = None, wait: timedelta = OUTCOME_WAIT) -> None:
        if not timedelta(0) <= wait < timedelta(days=85):
            raise ValueError(f"attainment outcome wait {wait} must be under a quarter (85 days)")
        self.partition = partition
        self.wait = wait  # a quarter waits for outcomes until its end + `wait` at most
        self.measured: dict[Key, int] = {}
        self.met: dict[Key, int] = {}
        self.last: dict[Key, datetime] = {}  # latest outcome instant
        self.waiting: dict[Key, int] = {}  # key -> number of its tickets without an outcome yet
        self.next_report: dict[str, str] = {}  # customer -> next quarter to report
        # Restored from a version-1 snapshot (see `_upcast_v1`): the per-ticket entries of the
        # old book, for tickets whose state does not carry its attainment bits yet. They drain
        # as those tickets stop waiting (or are saved again) and their quarters are reported.
        self.legacy_pending: dict[str, Key] = {}  # ticket id -> key
        self.legacy_breaches: dict[str, Key] = {}  # breach event id -> key
        self._next_due: datetime | None = None  # earliest instant a report may be due (cache)
        self.dirty = False  # changed since the owner last serialised it
        self._quarters: Mapping[str, Spans] | None = None  # the spans `_next_due` was computed for

    def opened(self, state: Any) -> None:
        """A ticket with a binding first-response clock was opened: its quarter waits for its outcome."""
        if state.attainment & WAITING:
            return
        key = ticket_key(state)
        if self._reported(key):
            return  # a late `ticket.opened`: its quarter was reported without it
        state.attainment |= WAITING
        self.dirty = True
        self.waiting[key] = self.waiting.get(key, 0) + 1

    def adopt(self, state: Any) -> None:
        """Move a ticket's legacy entry onto the ticket (call only when the state is saved after)."""
        key = self.legacy_pending.pop(state.ticket_id, None)
        if key is not None:
            state.attainment |= WAITING
            self.dirty = True

    def stopped(self, state: Any) -> None:
        """The ticket's first-response clock ended (with or without an outcome): it no longer holds its quarter.

        Idempotent: only a ticket still marked waiting is taken off the count."""
        if state.attainment & WAITING:
            state.attainment &= ~WAITING
            key = ticket_key(state)
        elif self.legacy_pending:
            pending = self.legacy_pending.pop(state.ticket_id, None)
            if pending is None:
                return
            key = pending
        else:
            return
        self.dirty = True
        left = self.waiting.get(key, 0) - 1  # absent: the quarter was reported at its bound
        if left > 0:
            self.waiting[key] = left
        else:
            self.waiting.pop(key, None)

    def observe(self, out: Output, state: Any) -> None:
        """Count a clock output of `state`'s ticket (met / breached / retracted)."""
        f = out.fields
        if out.type == "sla.breach_retracted":
            self._retracted(f["breach_event_id"], state)
            return
        if out.type == "sla.met_retracted":  # SPEC §10: a counted met that no longer holds stops counting
            if f["metric"] == "first_response" and f["binding"]:
                key = ticket_key(state)
                if not self._reported(key):
                    self.measured[key] = self.measured.get(key, 0) - 1
                    self.met[key] = self.met.get(key, 0) - 1
                    self.dirty = True
                    self._waits_again(state, key)
            return
        if out.type not in ("sla.met", "sla.breached") or f["metric"] != "first_response" or not f["binding"]:
            return
        key = (f["customer_id"], quarter_of(f["started_at"]))
        if self._reported(key):
            self.stopped(state)  # counts nothing: the quarter's report stands
            return
        if out.occurred_at > quarter_bounds(key[1])[1] + self.wait:
            # After the bound (a deadline fired in the same advance that closes the quarter): not
            # counted, and the ticket still holds the quarter, which is reported at its bound.
            return
        self.stopped(state)
        self.dirty = True
        self.measured[key] = self.measured.get(key, 0) + 1
        if key not in self.last or out.occurred_at > self.last[key]:
            self.last[key] = out.occurred_at
        if out.type == "sla.met":
            self.met[key] = self.met.get(key, 0) + 1
        else:
            state.attainment |= BREACH

    def _retracted(self, breach_id: str, state: Any) -> None:
        """A counted breach that did not happen stops counting, unless its quarter was reported already."""
        if state.attainment & BREACH:
            identity = breach_identity(state, breach_id)
            if identity is not None and identity[0] == "first_response" and identity[1]:
                # A ticket has one binding first-response clock (cycle 1), and a breach of it is
                # derived again only after its retraction: at most one counted breach is open.
                state.attainment &= ~BREACH
                key = ticket_key(state)
                if not self._reported(key):
                    self.measured[key] -= 1
                    self._waits_again(state, key)
                self.dirty = True
                return
        if self.legacy_breaches:
            counted = self.legacy_breaches.pop(breach_id, None)
            if counted is not None:
                self.measured[counted] -= 1
                self.dirty = True

    def _waits_again(self, state: Any, key: Key) -> None:
        """After a counted outcome was retracted: the ticket holds its quarter again while its binding
        first-response clock still runs (review F6: a breach retracted by a late pause left the
        quarter free, and it was reported without the ticket's later `sla.met`). `state` is the
        ticket after the whole event: if the retraction came with a new outcome, its clock is done."""
        if state.attainment & WAITING or state.first_response_done or state.closed_at is not None:
            return
        if any(s.metric == "first_response" and s.binding and not s.done for s in state.slots):
            state.attainment |= WAITING
            self.waiting[key] = self.waiting.get(key, 0) + 1
            self._next_due = None
            self.dirty = True

    def _reported(self, key: Key) -> bool:
        """Whether the quarter's report (or partial) was emitted: reports go in quarter order."""
        upcoming = self.next_report.get(key[0])
        return upcoming is not None and key[1] < upcoming

    def close_due(self, t: datetime, delay: timedelta, quarters: Mapping[str, Spans]) -> list[Output]:
        """Reports for the quarters ended (+ `delay`) before `t` with no ticket still waiting, and for
        those whose bound (end + `self.wait`) is before `t`, waiting tickets or not. `quarters`: per
        customer, the spans of quarters in which terms with quarterly attainment were in force
        (`attainment_spans`); a quarter outside them gets no report (SPEC §14: the earlier terms stay
        for what happened before a change, and only those)."""
        if self._next_due is not None and t <= self._next_due and quarters is self._quarters:
            return []  # no quarter can be due yet: keep the per-event cost O(1)
        waiting = self.waiting
        out: list[Output] = []
        next_due: datetime | None = None
        for customer_id, spans in sorted(quarters.items()):
            quarter = self.next_report.get(customer_id) or spans[0][0]
            while True:
                covered = _first_covered(spans, quarter)
                if covered is None:
                    break  # past the last span: nothing more to report for this customer
                quarter = covered  # skips the quarters between spans
                end = quarter_bounds(quarter)[1]
                if end + delay < t and (customer_id, quarter) not in waiting:
                    out.append(self._report(customer_id, quarter, end + delay))
                elif end + self.wait < t:
                    # Its bound passed: the tickets still waiting are not measured (they stay
                    # marked; `stopped` / `observe` then count nothing for a reported quarter).
                    waiting.pop((customer_id, quarter), None)
                    out.append(self._report(customer_id, quarter, end + self.wait))
                else:
                    break
                self.dirty = True
                quarter = next_quarter(quarter)
            if self.next_report.get(customer_id) != quarter:
                self.next_report[customer_id] = quarter
                self.dirty = True
            if covered is None:
                continue
            due = quarter_bounds(quarter)[1] + delay
            if due < t:
                due = t  # due but blocked by a waiting ticket: look again on the next event (until its bound)
            next_due = due if next_due is None or due < next_due else next_due
        self._next_due = next_due
        self._quarters = quarters
        return out

    def _report(self, customer_id: str, quarter: str, due: datetime) -> Output:
        key = (customer_id, quarter)
        measured = self.measured.pop(key, 0)
        met = self.met.pop(key, 0)
        last = self.last.pop(key, None)
        at = last if last is not None and last > due else due
        if self.legacy_breaches:
            for breach_id in [b for b, k in self.legacy_breaches.items() if k == key]:
                del self.legacy_breaches[breach_id]
        if self.partition is not None:
            return Output(PARTIAL, at, customer_id, output_event_id(PARTIAL, customer_id, quarter, str(self.partition)),
                          {"customer_id": customer_id, "quarter": quarter, "partition": self.partition,
                           "measured": measured, "met": met})
        return report(customer_id, quarter, at, measured, met)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "v": SNAPSHOT_VERSION,
            "measured": sorted([c, q, n] for (c, q), n in self.measured.items()),
            "met": sorted([c, q, n] for (c, q), n in self.met.items()),
            "last": sorted([c, q, t.isoformat()] for (c, q), t in self.last.items()),
            "waiting": sorted([c, q, n] for (c, q), n in self.waiting.items()),
            "report": sorted([c, q] for c, q in self.next_report.items()),
        }
        if self.legacy_pending:
            data["legacy_pending"] = sorted([tk, c, q] for tk, (c, q) in self.legacy_pending.items())
        if self.legacy_breaches:
            data["legacy_breaches"] = sorted([b, c, q] for b, (c, q) in self.legacy_breaches.items())
        return data

    def load(self, data: dict[str, Any]) -> None:
        if data.get("v", 1) == 1:
            data = _upcast_v1(data)
        self.measured = {(c, q): n for c, q, n in data["measured"]}
        self.met = {(c, q): n for c, q, n in data["met"]}
        self.last = {(c, q): datetime.fromisoformat(t) for c, q, t in data["last"]}
        self.waiting = {(c, q): n for c, q, n in data["waiting"]}
        self.next_report = {c: q for c, q in data["report"]}
        self.legacy_pending = {tk: (c, q) for tk, c, q in data.get("legacy_pending", ())}
        self.legacy_breaches = {b: (c, q) for b, c, q in data.get("legacy_breaches", ())}
        self._next_due = None


def _upcast_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 book (no "v") as version 2.

    Version 1 kept every waiting ticket ("pending": ticket id -> key) and every counted,
    unreported breach ("breaches": breach event id -> key) in the book itself, so the
    snapshot grew with the open tickets (8 MB at 200k) and was rewritten on every flush that
    changed it. Version 2 keeps only per-key counts and marks the tickets themselves; but
    the ticket states written next to a version-1 book carry no marks, and a worker (or a
    replay) restored from such a snapshot must count those tickets exactly as before. So the
    old entries are kept as `legacy_pending` / `legacy_breaches` (same meaning, same
    effect) until they drain, and the counts are derived from them.
    """
    waiting: dict[Key, int] = {}
    for _ticket, c, q in data["pending"]:
        waiting[(c, q)] = waiting.get((c, q), 0) + 1
    return {
        "v": SNAPSHOT_VERSION,
        "measured": data["measured"], "met": data["met"], "last": data["last"], "report": data["report"],
        "waiting": sorted([c, q, n] for (c, q), n in waiting.items()),
        "legacy_pending": data["pending"], "legacy_breaches": data["breaches"],
    }


def report(customer_id: str, quarter: str, at: datetime, measured: int, met: int) -> Output:
    """The `sla.attainment_reported` event for a customer's quarter."""
    percent = None
    if measured:
        percent = (Decimal(met) * 100 / Decimal(measured)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    fields = {"customer_id": customer_id, "quarter": quarter, "metric": "first_response",
              "measured": measured, "met": met, "attainment_percent": percent}
    return Output("sla.attainment_reported", at, customer_id,
                  output_event_id("sla.attainment_reported", customer_id, quarter), fields)


def add_partial(parts: dict[str, list[Any]], partial: Output, partitions: int) -> Output | None:
    """Fold one partition's `attainment.partial` into its customer's quarter; the report once all
    `partitions` are in, else None.

    `parts` (partition -> [measured, met, instant ISO]) is the quarter's stored state, JSON as it
    is kept in the stream's attainment table; it is updated in place. A repeated partial
    (at-least-once delivery) overwrites its own entry, so the sum is idempotent. The caller keeps
    a quarter that was reported from being reported again.
    """
    f = partial.fields
    parts[str(f["partition"])] = [int(f["measured"]), int(f["met"]), partial.occurred_at.isoformat()]
    if len(parts) < partitions:
        return None
    return report(f["customer_id"], f["quarter"], max(datetime.fromisoformat(at) for _, _, at in parts.values()),
                  sum(m for m, _, _ in parts.values()), sum(n for _, n, _ in parts.values()))
