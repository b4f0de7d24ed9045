"""Quarterly first-response attainment (Rescale, SPEC §4 / §7).

"Target First Response Time: the targeted response time across all support tickets
submitted from a customer in a quarterly period" (Rescale seed §6). A ticket counts in
the quarter (UTC) in which it was submitted, with the outcome of its binding
first-response clock: met on time or breached. The outcome is read from the clock
outputs themselves, so a retracted breach stops counting and the late `sla.met` that
retracted it counts instead.

The report for a quarter is emitted once time has passed the quarter's end plus a delay
AND every ticket submitted in the quarter has an outcome (or its clock stopped without
one: resolved or closed before any reply). Its `occurred_at` is the later of the two
instants, so it does not depend on when the processor happened to look. A ticket
submitted on the quarter's last evening is thus counted in its own quarter.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from decimal import ROUND_HALF_UP, Decimal

from policies.outputs import Output, output_event_id

UTC = timezone.utc
PARTIAL = "attainment.partial"  # internal (stream mode): one partition's counts, summed by `AttainmentAggregator`
Key = tuple[str, str]  # (customer, quarter)


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


class AttainmentBook:
    """Per (customer, quarter): tickets measured and met, and tickets still waiting for an outcome.

    Replay sees every ticket and reports directly. A stream partition sees only its own
    tickets: with `partition` set it emits its counts as an internal `attainment.partial`
    record instead, which `AttainmentAggregator` sums over all partitions.
    """

    def __init__(self, partition: int | None = None) -> None:
        self.partition = partition
        self.measured: dict[Key, int] = {}
        self.met: dict[Key, int] = {}
        self.last: dict[Key, datetime] = {}  # latest outcome instant
        self.breaches: dict[str, Key] = {}  # breach event id -> key (until retracted or reported)
        self.pending: dict[str, Key] = {}  # ticket id -> key, tickets without an outcome yet
        self.waiting: dict[Key, int] = {}  # key -> number of its tickets in `pending`
        self.next_report: dict[str, str] = {}  # customer -> next quarter to report
        self._next_due: datetime | None = None  # earliest instant a report may be due (cache)
        self.dirty = False  # changed since the owner last serialised it
        self._customers = 0

    def opened(self, ticket_id: str, customer_id: str, opened_at: datetime) -> None:
        key = (customer_id, quarter_of(opened_at))
        self.dirty = True
        self.pending[ticket_id] = key
        self.waiting[key] = self.waiting.get(key, 0) + 1

    def stopped(self, ticket_id: str) -> None:
        """The ticket's first-response clock ended (with or without an outcome): it no longer holds its quarter."""
        key = self.pending.pop(ticket_id, None)
        if key is not None:
            self.dirty = True
            self.waiting[key] -= 1
            if not self.waiting[key]:
                del self.waiting[key]

    def observe(self, out: Output) -> None:
        f = out.fields
        if out.type == "sla.breach_retracted":
            key = self.breaches.pop(f["breach_event_id"], None)
            if key is not None:
                self.measured[key] -= 1
                self.dirty = True
            return
        if out.type not in ("sla.met", "sla.breached") or f["metric"] != "first_response" or not f["binding"]:
            return
        key = (f["customer_id"], quarter_of(f["started_at"]))
        self.stopped(f["ticket_id"])
        self.dirty = True
        self.measured[key] = self.measured.get(key, 0) + 1
        if key not in self.last or out.occurred_at > self.last[key]:
            self.last[key] = out.occurred_at
        if out.type == "sla.met":
            self.met[key] = self.met.get(key, 0) + 1
        else:
            self.breaches[out.event_id] = key

    def close_due(self, t: datetime, delay: timedelta, start_months: dict[str, str]) -> list[Output]:
        """Reports for the quarters ended (+ `delay`) before `t` with no ticket still waiting."""
        if self._next_due is not None and t <= self._next_due and len(start_months) == self._customers:
            return []  # no quarter can be due yet: keep the per-event cost O(1)
        waiting = self.waiting
        out: list[Output] = []
        next_due: datetime | None = None
        for customer_id, start_month in sorted(start_months.items()):
            quarter = self.next_report.get(customer_id) or quarter_of(
                datetime(int(start_month[:4]), int(start_month[5:7]), 1, tzinfo=UTC))
            while quarter_bounds(quarter)[1] + delay < t and (customer_id, quarter) not in waiting:
                out.append(self._report(customer_id, quarter, quarter_bounds(quarter)[1] + delay))
                self.dirty = True
                quarter = next_quarter(quarter)
            if self.next_report.get(customer_id) != quarter:
                self.next_report[customer_id] = quarter
                self.dirty = True
            due = quarter_bounds(quarter)[1] + delay
            if due < t:
                due = t  # due but blocked by a waiting ticket: look again on the next event
            next_due = due if next_due is None or due < next_due else next_due
        self._next_due = next_due
        self._customers = len(start_months)
        return out

    def _report(self, customer_id: str, quarter: str, due: datetime) -> Output:
        key = (customer_id, quarter)
        measured = self.measured.pop(key, 0)
        met = self.met.pop(key, 0)
        last = self.last.pop(key, None)
        at = last if last is not None and last > due else due
        for breach_id in [b for b, k in self.breaches.items() if k == key]:
            del self.breaches[breach_id]
        if self.partition is not None:
            return Output(PARTIAL, at, customer_id, output_event_id(PARTIAL, customer_id, quarter, str(self.partition)),
                          {"customer_id": customer_id, "quarter": quarter, "partition": self.partition,
                           "measured": measured, "met": met})
        return report(customer_id, quarter, at, measured, met)

    def to_json(self) -> dict:
        return {
            "measured": sorted([c, q, n] for (c, q), n in self.measured.items()),
            "met": sorted([c, q, n] for (c, q), n in self.met.items()),
            "last": sorted([c, q, t.isoformat()] for (c, q), t in self.last.items()),
            "breaches": sorted([b, c, q] for b, (c, q) in self.breaches.items()),
            "pending": sorted([tk, c, q] for tk, (c, q) in self.pending.items()),
            "report": sorted([c, q] for c, q in self.next_report.items()),
        }

    def load(self, data: dict) -> None:
        self.measured = {(c, q): n for c, q, n in data["measured"]}
        self.met = {(c, q): n for c, q, n in data["met"]}
        self.last = {(c, q): datetime.fromisoformat(t) for c, q, t in data["last"]}
        self.breaches = {b: (c, q) for b, c, q in data["breaches"]}
        self.pending = {tk: (c, q) for tk, c, q in data["pending"]}
        self.waiting = {}
        for key in self.pending.values():
            self.waiting[key] = self.waiting.get(key, 0) + 1
        self.next_report = {c: q for c, q in data["report"]}
        self._next_due = None


def report(customer_id: str, quarter: str, at: datetime, measured: int, met: int) -> Output:
    """The `sla.attainment_reported` event for a customer's quarter."""
    percent = None
    if measured:
        percent = (Decimal(met) * 100 / Decimal(measured)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    fields = {"customer_id": customer_id, "quarter": quarter, "metric": "first_response",
              "measured": measured, "met": met, "attainment_percent": percent}
    return Output("sla.attainment_reported", at, customer_id,
                  output_event_id("sla.attainment_reported", customer_id, quarter), fields)


class AttainmentAggregator:
    """Sums the partitions' `attainment.partial` counts; reports once all partitions are in.

    State: (customer, quarter) -> {partition: (measured, met, at)}; a repeated partial
    (at-least-once delivery) overwrites its own entry, so the sum is idempotent.
    """

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.parts: dict[Key, dict[int, tuple[int, int, datetime]]] = {}
        self.reported: set[Key] = set()

    def add(self, partial: Output) -> Output | None:
        f = partial.fields
        key = (f["customer_id"], f["quarter"])
        if key in self.reported:
            return None
        parts = self.parts.setdefault(key, {})
        parts[int(f["partition"])] = (int(f["measured"]), int(f["met"]), partial.occurred_at)
        if len(parts) < self.partitions:
            return None
        self.reported.add(key)
        del self.parts[key]
        return report(key[0], key[1], max(at for _, _, at in parts.values()),
                      sum(m for m, _, _ in parts.values()), sum(n for _, n, _ in parts.values()))
