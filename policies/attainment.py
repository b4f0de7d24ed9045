"""Quarterly first-response attainment (Rescale, SPEC §4 / §7).

"Target First Response Time: the targeted response time across all support tickets
submitted from a customer in a quarterly period" (Rescale seed §6). A ticket counts in
the quarter (UTC) in which it was submitted, once its binding first-response clock has
an outcome: met on time or breached. Counted from the clock outputs themselves, so a
retracted breach stops counting and the late `sla.met` that retracted it counts instead.
The report for a quarter is emitted once time passes the quarter's end plus a delay;
tickets still without an outcome then are not measured (decision: the report is final).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from policies.outputs import Output, output_event_id

UTC = timezone.utc


def quarter_of(t: datetime) -> str:
    """`2026-Q1` for an instant (quarters of the UTC calendar year)."""
    t = t.astimezone(UTC)
    return f"{t.year}-Q{(t.month - 1) // 3 + 1}"


def quarter_bounds(quarter: str) -> tuple[datetime, datetime]:
    year, q = int(quarter[:4]), int(quarter[-1])
    start = datetime(year, 3 * (q - 1) + 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC) if q == 4 else datetime(year, 3 * q + 1, 1, tzinfo=UTC)
    return start, end


def next_quarter(quarter: str) -> str:
    year, q = int(quarter[:4]), int(quarter[-1])
    return f"{year + 1}-Q1" if q == 4 else f"{year}-Q{q + 1}"


PARTIAL = "attainment.partial"  # internal (stream mode): one partition's counts, summed by `AttainmentAggregator`


class AttainmentBook:
    """Counters per (customer, quarter): tickets measured and met, fed by the clock outputs.

    Replay sees every ticket and reports directly. A stream partition sees only its own
    tickets: with `partition` set it emits its counts as an internal `attainment.partial`
    record instead, which the aggregator sums over all partitions.
    """

    def __init__(self, partition: int | None = None) -> None:
        self.partition = partition
        self.measured: dict[tuple[str, str], int] = {}
        self.met: dict[tuple[str, str], int] = {}
        self.breaches: dict[str, tuple[str, str]] = {}  # breach event id -> (customer, quarter)
        self.next_report: dict[str, str] = {}  # customer -> next quarter to report

    def observe(self, out: Output) -> None:
        f = out.fields
        if out.type == "sla.breach_retracted":
            key = self.breaches.pop(f["breach_event_id"], None)
            if key is not None:
                self.measured[key] -= 1
            return
        if out.type not in ("sla.met", "sla.breached") or f["metric"] != "first_response" or not f["binding"]:
            return
        key = (f["customer_id"], quarter_of(f["started_at"]))
        self.measured[key] = self.measured.get(key, 0) + 1
        if out.type == "sla.met":
            self.met[key] = self.met.get(key, 0) + 1
        else:
            self.breaches[out.event_id] = key

    def close_due(self, t: datetime, delay: timedelta, start_months: dict[str, str]) -> list[Output]:
        """Reports for every quarter whose end + `delay` is before `t`, from each customer's start month."""
        out: list[Output] = []
        for customer_id, start_month in sorted(start_months.items()):
            quarter = self.next_report.get(customer_id) or quarter_of(
                datetime(int(start_month[:4]), int(start_month[5:7]), 1, tzinfo=UTC))
            while quarter_bounds(quarter)[1] + delay < t:
                out.append(self._report(customer_id, quarter, quarter_bounds(quarter)[1] + delay))
                quarter = next_quarter(quarter)
            self.next_report[customer_id] = quarter
        return out

    def _report(self, customer_id: str, quarter: str, at: datetime) -> Output:
        measured = self.measured.get((customer_id, quarter), 0)
        met = self.met.get((customer_id, quarter), 0)
        if self.partition is not None:
            return Output(PARTIAL, at, customer_id,
                          output_event_id(PARTIAL, customer_id, quarter, str(self.partition)),
                          {"customer_id": customer_id, "quarter": quarter, "partition": self.partition,
                           "measured": measured, "met": met})
        return report(customer_id, quarter, at, measured, met)


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

    State: (customer, quarter) -> {partition: (measured, met)}; a repeated partial (at-least-once
    delivery) overwrites its own entry, so the sum is idempotent.
    """

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.parts: dict[tuple[str, str], dict[int, tuple[int, int]]] = {}
        self.reported: set[tuple[str, str]] = set()

    def add(self, partial: dict, at: datetime) -> Output | None:
        key = (partial["customer_id"], partial["quarter"])
        if key in self.reported:
            return None
        parts = self.parts.setdefault(key, {})
        parts[int(partial["partition"])] = (int(partial["measured"]), int(partial["met"]))
        if len(parts) < self.partitions:
            return None
        self.reported.add(key)
        del self.parts[key]
        measured = sum(m for m, _ in parts.values())
        met = sum(n for _, n in parts.values())
        return report(key[0], key[1], at, measured, met)
