"""`slaproc whatif`: the same events replayed under two sets of terms, and what changes (SPEC §14).

Side A is the contracts (and catalog) in force; side B the ones to compare with (a renegotiated
contract, a new catalog version). Both sides are `streams.replay.Replayer` runs over the same
lines with the same time bound, one after the other, so each side is exactly what `slaproc replay` would derive.
What is compared is each side's net outcome (SPEC §5, what a consumer holds once every
correction is applied):

- breaches standing (`sla.breached` not retracted), per ticket × metric × binding × cycle:
  a breach that appears, disappears, or moves (another deadline);
- the last `sla.attainment_reported` per customer × quarter × metric;
- per customer × service × month, the highest `uptime.month_closed` revision (uptime, met)
  and the refund standing for it (the highest `refund.eligible` revision, unless a
  `refund.withdrawn` of a later revision withdrew it);
- totals: breaches, attainment (met ÷ measured over every report), refunds per currency;
- the `dead_letter`s of each side (by source line): a breach missing on the side that
  rejected a line of its ticket is `rejected`, not gone (review F6);
- what each side still has open at the bound (running clocks, quarters not reported yet,
  from its processor's end state): a breach or quarter missing there is `pending` (F9).
"""
from __future__ import annotations

import csv
import io
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Iterable, Literal, TextIO

from policies.catalog import Catalog
from policies.contracts import contract_warnings, load_contracts_yaml
from policies.attainment import quarter_bounds
from policies.processor import Processor, Settings
from policies.report import target_text
from streams.replay import Replayer

Format = Literal["text", "json", "csv"]
_CENT = Decimal("0.01")
_PROGRESS_EVERY = 50_000

WHATIF_DESCRIPTION = """\
Replay the same events twice, under side A (--contracts, --catalog) and side B (--versus,
--versus-catalog), and print what changes for each ticket, quarter and month: the breaches
that appear or disappear, attainment per customer and quarter, and per customer x service x
month the uptime, met and refund, with totals (breaches, attainment, refunds per currency).
Each side is exactly what `slaproc replay` derives; a ticket keeps the catalog version in
force when it was opened, on both sides (SPEC §14)."""

WHATIF_EPILOG = """\
sides:
  --contracts A.yaml       side A's contracts (the terms in force)
  --versus B.yaml          side B's contracts (default: A's, to compare catalogs only)
  --catalog DIR            side A's catalog directory (default: the packaged catalog)
  --versus-catalog DIR2    side B's catalog directory (default: side A's)

changes (per ticket x metric x binding x cycle, customer x quarter, customer x service x month):
  appears, disappears   only one side has it
  moves                 a breach at another deadline
  changes               other figures (a breach's target, priority or catalog version; a
                        month's uptime, met or refund - amount and currency: 1.94 USD ->
                        1.94 EUR is a change)
  rejected              a breach missing on the side that dead-lettered a line of its
                        ticket (unknown customer, priority its policy lacks): not avoided,
                        not measured
  pending               missing on a side that still has it open at --until (its clock
                        runs, or the quarter's report waits: end + 1 h, outcomes up to
                        end + 7 days): not decided yet

output (--format):
  text   a summary (counts per change, dead letters per side, totals), then one line per change
  json   {"summary": {...}, "changes": [...]}; each change has kind (breach | attainment |
         month), change, its identity, and the figures of each side under "a" and "b"
         (null where that side has none); a breach also has "rejected" {"a", "b"} (reason,
         error, source of its ticket's line dead-lettered on that side only) and
         "pending" {"a", "b"} ({"due_at"}, null due_at while paused), an attainment change
         "pending" ({"waiting_until"} | {"reports_at"} | {"after_quarter"}), null if none;
         summary.breaches counts appear, disappear, move, change, rejected, pending;
         summary.dead_letters is {a, b, only_a, only_b}
  csv    one row per changed figure: kind, change, customer_id, subject, metric, period,
         field, a, b (a refund is one figure, field refund: "1.94 USD", "0.00" if none;
         fields rejected and pending give the reason); then each side's totals, rows of
         kind total: subject breaches (field standing), attainment (measured, met,
         attainment_percent), months (closed), refunds (field = currency), dead_letters
         (count, only_this_side)

example:
  slaproc whatif samples/events.jsonl --contracts samples/contracts.yaml \\
      --versus samples/contracts-renegotiated.yaml --until 2026-05-01T02:00:00Z
"""


# --- one side's net outcome ---------------------------------------------------------------

BreachKey = tuple[str, str, bool, int]  # ticket_id, metric, binding, cycle
QuarterKey = tuple[str, str, str]  # customer_id, quarter, metric
MonthKey = tuple[str, str, str]  # customer_id, service_id, month


@dataclass
class Outcome:
    """What a consumer of one side's outputs holds at the end (SPEC §5 net outcome)."""

    breaches: dict[BreachKey, dict[str, Any]] = field(default_factory=dict)
    attainment: dict[QuarterKey, dict[str, Any]] = field(default_factory=dict)
    months: dict[MonthKey, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[MonthKey, dict[str, Any]] = field(default_factory=dict)
    # `dead_letter` outputs by source (`events.jsonl:12`, the same line on both sides), and the
    # sources rejected per ticket (the rejected line's `ticket_id`, when it reads as JSON)
    dead_letters: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejected_tickets: dict[str, list[str]] = field(default_factory=dict)
    measured_tickets: set[str] = field(default_factory=set)  # tickets with an output, or open at the end
    # What is still open at the bound (review F9): clocks running (their deadline is after it, or
    # they are paused) and customer quarters not reported yet, from the processor's end state
    pending_clocks: dict[BreachKey, dict[str, Any]] = field(default_factory=dict)
    pending_quarters: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, records: Iterable[dict[str, Any]]) -> "Outcome":
        """From one side's derived events, in the order replay writes them."""
        out = cls()
        breaches: dict[str, dict[str, Any]] = {}
        retracted: set[str] = set()
        withdrawn: dict[MonthKey, int] = {}
        for o in records:
            kind = o["type"]
            if "ticket_id" in o:
                out.measured_tickets.add(o["ticket_id"])
            if kind == "sla.breached":
                breaches[o["event_id"]] = o
            elif kind == "dead_letter":
                out.dead_letters[o["source"]] = o
                ticket_id = _ticket_of(o["raw"])
                if ticket_id is not None:
                    out.rejected_tickets.setdefault(ticket_id, []).append(o["source"])
            elif kind == "sla.breach_retracted":
                retracted.add(o["breach_event_id"])
            elif kind == "sla.attainment_reported":
                out.attainment[(o["customer_id"], o["quarter"], o["metric"])] = o
            elif kind in ("uptime.month_closed", "refund.eligible", "refund.withdrawn"):
                key = (o["customer_id"], o["service_id"], o["month"])
                if kind == "refund.withdrawn":
                    withdrawn[key] = max(withdrawn.get(key, 0), o["revision"])
                    continue
                table = out.months if kind == "uptime.month_closed" else out.refunds
                if key not in table or o["revision"] > table[key]["revision"]:
                    table[key] = o
        for event_id, o in breaches.items():
            if event_id not in retracted:
                out.breaches[(o["ticket_id"], o["metric"], o["binding"], o["cycle"])] = o
        out.refunds = {k: r for k, r in out.refunds.items() if withdrawn.get(k, 0) < r["revision"]}
        return out

    def note_pending(self, processor: Processor) -> None:
        """Record what `processor` (a finished replay) still has open: each running clock
        (ticket x metric x binding x cycle: its deadline, None while paused) and, per
        customer with quarterly attainment, the first quarter not reported yet (its report
        is due at end + the close delay, or waits for outcomes until end + the outcome wait)."""
        tickets = getattr(processor.store, "tickets", {})  # replay's in-memory store
        for ticket_id, state in tickets.items():
            self.measured_tickets.add(ticket_id)
            for slot in state.slots:
                if not slot.done:
                    self.pending_clocks[(ticket_id, slot.metric, slot.binding, slot.cycle)] = {
                        "due_at": _z(slot.due) if slot.due is not None else None}
        book = processor.attainment
        for customer_id, quarter in book.next_report.items():
            end = quarter_bounds(quarter)[1]
            if (customer_id, quarter) in book.waiting:
                self.pending_quarters[customer_id] = (quarter, {"waiting_until": _z(end + book.wait)})
            else:
                self.pending_quarters[customer_id] = (quarter, {
                    "reports_at": _z(end + processor.settings.quarter_close_delay)})

    def quarter_pending(self, customer_id: str, quarter: str) -> dict[str, Any] | None:
        """Why `quarter` has no report yet on this side, if it is still to come: the first
        quarter not reported yet (its bound), or a later one (reported after that one)."""
        first = self.pending_quarters.get(customer_id)
        if first is None or quarter < first[0]:
            return None
        return first[1] if quarter == first[0] else {"after_quarter": first[0]}

    def refund_totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for r in self.refunds.values():
            totals[r["currency"]] = totals.get(r["currency"], Decimal(0)) + Decimal(r["refund_amount"])
        return totals

    def attainment_total(self) -> dict[str, Any]:
        measured = sum(r["measured"] for r in self.attainment.values())
        met = sum(r["met"] for r in self.attainment.values())
        return {"measured": measured, "met": met, "attainment_percent": _percent(met, measured)}

    def month_figures(self, key: MonthKey) -> dict[str, Any] | None:
        month = self.months.get(key)
        if month is None:
            return None
        refund = self.refunds.get(key)
        return {"uptime_percent": month["uptime_percent"], "commitment_percent": month["commitment_percent"],
                "met": month["met"], "refund_amount": refund["refund_amount"] if refund else "0.00",
                "currency": refund["currency"] if refund else None}


def _z(t: datetime) -> str:
    """An instant as on the wire (`2026-07-01T23:00:00Z`)."""
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _ticket_of(raw: str) -> str | None:
    """The `ticket_id` of a rejected line, if it is a JSON object with one (a line cut at the
    dead letter's size limit, or not JSON, has none)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    ticket_id = data.get("ticket_id") if isinstance(data, dict) else None
    return ticket_id if isinstance(ticket_id, str) else None


def _percent(part: int, whole: int) -> str | None:
    if whole == 0:
        return None
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(_CENT, rounding=ROUND_HALF_UP))


# --- the comparison -----------------------------------------------------------------------

_BREACH_FIELDS = ("customer_id", "priority", "policy_version", "due_at", "target")
# SPEC §14: uptime, met and refund; a refund is an amount in a currency (review F3: 1.94 USD -> 1.94 EUR
# is a change, shown as one figure `refund` in text and CSV)
_MONTH_COMPARED = ("uptime_percent", "met", "refund_amount", "currency")


def _breach_side(o: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if o is None else {k: o[k] for k in _BREACH_FIELDS}


def _change(a: Any, b: Any, moved: bool = True) -> str:
    if a is None:
        return "appears"
    if b is None:
        return "disappears"
    return "moves" if moved else "changes"


def compare(a: Outcome, b: Outcome) -> dict[str, Any]:
    """`{"summary": {...}, "changes": [...]}` of side B against side A; changes in a stable order."""
    changes: list[dict[str, Any]] = []
    for key in sorted(a.breaches.keys() | b.breaches.keys()):
        ba, bb = _breach_side(a.breaches.get(key)), _breach_side(b.breaches.get(key))
        if ba == bb:
            continue
        ticket_id, metric, binding, cycle = key
        customer = (bb or ba or {})["customer_id"]
        moved = ba is not None and bb is not None and ba["due_at"] != bb["due_at"]
        change = _change(ba, bb, moved)
        rejected = {"a": _rejected(a, b, ticket_id), "b": _rejected(b, a, ticket_id)}
        pending = {"a": a.pending_clocks.get(key) if ba is None else None,
                   "b": b.pending_clocks.get(key) if bb is None else None}
        if ((ba is None and rejected["a"] and ticket_id not in a.measured_tickets)
                or (bb is None and rejected["b"] and ticket_id not in b.measured_tickets)):
            change = "rejected"  # that side could not measure the ticket (review F6), not a breach avoided
        elif pending["a"] or pending["b"]:
            change = "pending"  # that side's clock still runs at the bound (review F9): not decided yet
        changes.append({"kind": "breach", "change": change, "customer_id": customer,
                        "ticket_id": ticket_id, "metric": metric, "binding": binding, "cycle": cycle,
                        "a": ba, "b": bb, "rejected": rejected if rejected["a"] or rejected["b"] else None,
                        "pending": pending if pending["a"] or pending["b"] else None})
    for qkey in sorted(a.attainment.keys() | b.attainment.keys()):
        qa, qb = (_attainment_side(side.attainment.get(qkey)) for side in (a, b))
        if qa != qb:
            customer, quarter, metric = qkey
            qpending = {"a": a.quarter_pending(customer, quarter) if qa is None else None,
                        "b": b.quarter_pending(customer, quarter) if qb is None else None}
            change = "pending" if qpending["a"] or qpending["b"] else _change(qa, qb, moved=False)
            changes.append({"kind": "attainment", "change": change, "customer_id": customer,
                            "quarter": quarter, "metric": metric, "a": qa, "b": qb,
                            "pending": qpending if change == "pending" else None})
    for mkey in sorted(a.months.keys() | b.months.keys()):
        ma, mb = a.month_figures(mkey), b.month_figures(mkey)
        if ma is not None and mb is not None and all(ma[f] == mb[f] for f in _MONTH_COMPARED):
            continue
        customer, service, month = mkey
        changes.append({"kind": "month", "change": _change(ma, mb, moved=False), "customer_id": customer,
                        "service_id": service, "month": month, "a": ma, "b": mb})
    return {"summary": _summary(a, b, changes), "changes": changes}


def _rejected(side: Outcome, other: Outcome, ticket_id: str) -> dict[str, Any] | None:
    """The first of `ticket_id`'s lines that `side` dead-lettered and `other` did not:
    `{"reason", "error", "source"}`, or None."""
    for source in side.rejected_tickets.get(ticket_id, ()):
        if source not in other.dead_letters:
            o = side.dead_letters[source]
            return {"reason": o["reason"], "error": o["error"], "source": source}
    return None


def _attainment_side(o: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if o is None else {k: o[k] for k in ("measured", "met", "attainment_percent")}


def _summary(a: Outcome, b: Outcome, changes: list[dict[str, Any]]) -> dict[str, Any]:
    breach_changes = [c["change"] for c in changes if c["kind"] == "breach"]
    ra, rb = a.refund_totals(), b.refund_totals()
    refunds = {currency: {"a": str(ra.get(currency, Decimal(0)).quantize(_CENT)),
                          "b": str(rb.get(currency, Decimal(0)).quantize(_CENT)),
                          "change": str((rb.get(currency, Decimal(0)) - ra.get(currency, Decimal(0))).quantize(_CENT))}
               for currency in sorted(ra.keys() | rb.keys())}
    return {
        "breaches": {"a": len(a.breaches), "b": len(b.breaches), "appear": breach_changes.count("appears"),
                     "disappear": breach_changes.count("disappears"), "move": breach_changes.count("moves"),
                     "change": breach_changes.count("changes"), "rejected": breach_changes.count("rejected"),
                     "pending": breach_changes.count("pending")},
        "attainment": {"a": a.attainment_total(), "b": b.attainment_total(),
                       "changed": sum(1 for c in changes if c["kind"] == "attainment"),
                       "pending": sum(1 for c in changes if c["kind"] == "attainment" and c["change"] == "pending")},
        "months": {"a": len(a.months), "b": len(b.months),
                   "changed": sum(1 for c in changes if c["kind"] == "month")},
        "refunds": refunds,
        "dead_letters": {"a": len(a.dead_letters), "b": len(b.dead_letters),
                         "only_a": len(a.dead_letters.keys() - b.dead_letters.keys()),
                         "only_b": len(b.dead_letters.keys() - a.dead_letters.keys())},
    }


# --- running both sides -------------------------------------------------------------------

@dataclass(frozen=True)
class Side:
    contracts: Path
    catalog: Catalog


def replay_both(events: Path, a: Side, b: Side, until: datetime | None, bound: datetime | None,
                progress: TextIO | None = sys.stderr, settings: Settings = Settings()) -> tuple[Outcome, Outcome]:
    """Replay `events` under both sides, one after the other (one side's state in memory at a
    time), and return their net outcomes. A contracts file that does not load raises
    ContractError naming the file, before anything is replayed."""
    loaded = [load_contracts_yaml(side.contracts, side.catalog) for side in (a, b)]
    if progress is not None:
        for side, contracts in zip((a, b), loaded):
            if side is b and side.contracts == a.contracts:
                break  # the same file: warned once
            for warning in contract_warnings(c.terms for c in contracts):
                progress.write(f"slaproc whatif: warning: {side.contracts.name}: {warning}\n")
    outcomes = []
    for name, side, contracts in zip("AB", (a, b), loaded):
        outcomes.append(_replay_side(events, name, Replayer(contracts, side.catalog, settings), until, bound, progress))
    return outcomes[0], outcomes[1]


def _replay_side(events: Path, name: str, replayer: Replayer, until: datetime | None, bound: datetime | None,
                 progress: TextIO | None) -> Outcome:
    started = time.monotonic()

    def report(lines: int, percent: int) -> None:
        assert progress is not None
        progress.write(f"whatif: side {name}: read {lines:,} lines ({percent} %)\n")
        progress.flush()
    replayer.feed_file(events, report if progress is not None else None, _PROGRESS_EVERY)
    if progress is not None and replayer.result.lines >= _PROGRESS_EVERY:
        progress.write(f"whatif: side {name}: applying {replayer.result.lines:,} lines\n")
        progress.flush()
    result = replayer.finish(until, bound)
    outcome = Outcome.of(json.loads(line) for line in result.sorted_lines())
    outcome.note_pending(replayer.processor)
    if progress is not None and result.lines >= _PROGRESS_EVERY:
        progress.write(f"whatif: side {name}: {len(result.records):,} outputs in {time.monotonic() - started:.1f} s\n")
        progress.flush()
    return outcome


# --- formats ------------------------------------------------------------------------------

def render(report: dict[str, Any], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(report, indent=2, sort_keys=True) + "\n"
    if fmt == "csv":
        return _csv(report)
    return _text(report)


def _subject(c: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, metric, period) of a change, for the flat formats."""
    if c["kind"] == "breach":
        binding = "commitment" if c["binding"] else "objective"
        return c["ticket_id"], f"{c['metric']} {binding} cycle {c['cycle']}", ""
    if c["kind"] == "attainment":
        return c["customer_id"], c["metric"], c["quarter"]
    return c["service_id"], "", c["month"]


def _figure_rows(c: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, a, b) per figure that differs (a breach: its deadline, or its presence)."""
    a, b = _flat(c["kind"], c["a"]), _flat(c["kind"], c["b"])
    if c["kind"] == "breach":  # its deadline; when both sides have the breach, what else differs (review F5)
        fields: tuple[str, ...] = ("due_at", "policy_version", "priority", "target") if a and b else ("due_at",)
    else:
        fields = tuple(sorted(a.keys() | b.keys()))
    rows = []
    for name in fields:
        va, vb = a.get(name), b.get(name)
        if va != vb:
            rows.append((name, _cell(va), _cell(vb)))
    rejected = c.get("rejected")
    if rejected:  # the line of this ticket one side dead-lettered (review F6)
        ra, rb = (f"{r['reason']}: {r['error']}" if r else "" for r in (rejected["a"], rejected["b"]))
        rows.append(("rejected", ra, rb))
    pending = c.get("pending")
    if pending:  # what that side still has open at the bound (review F9)
        rows.append(("pending", _pending_cell(pending["a"]), _pending_cell(pending["b"])))
    return rows


def _pending_cell(why: dict[str, Any] | None) -> str:
    if not why:
        return ""
    if "due_at" in why:
        return f"running, due {why['due_at']}" if why["due_at"] else "running, paused"
    if "waiting_until" in why:
        return f"waiting for outcomes, at most until {why['waiting_until']}"
    if "reports_at" in why:
        return f"not reported yet, due {why['reports_at']}"
    return f"not reported yet, after {why['after_quarter']}"


def _flat(kind: str, side: dict[str, Any] | None) -> dict[str, Any]:
    """One side's figures as the flat formats show them: a month's refund is one figure, the
    amount with its currency (`1.94 USD`; `0.00` when no refund stands)."""
    if not side:
        return {}
    if kind == "breach":  # the target in the report's words (`12 business hours`)
        return {**side, "target": target_text(side["target"])}
    if kind != "month":
        return side
    flat = {k: v for k, v in side.items() if k not in ("refund_amount", "currency")}
    flat["refund"] = f"{side['refund_amount']} {side['currency']}" if side["currency"] else side["refund_amount"]
    return flat


def _total_rows(summary: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(subject, field, a, b): each side's totals (SPEC §14: breaches, attainment, refunds per
    currency), for the CSV's `kind=total` rows."""
    at = summary["attainment"]
    rows = [("breaches", "standing", str(summary["breaches"]["a"]), str(summary["breaches"]["b"]))]
    rows += [("attainment", name, _cell(at["a"][name]), _cell(at["b"][name]))
             for name in ("measured", "met", "attainment_percent")]
    rows.append(("months", "closed", str(summary["months"]["a"]), str(summary["months"]["b"])))
    rows += [("refunds", currency, r["a"], r["b"]) for currency, r in summary["refunds"].items()]
    dl = summary["dead_letters"]
    rows += [("dead_letters", "count", str(dl["a"]), str(dl["b"])),
             ("dead_letters", "only_this_side", str(dl["only_a"]), str(dl["only_b"]))]
    return rows


def _cell(value: Any) -> str:
    """A figure as text: strings as they are on the wire, others (true, 2, 148.0333) as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["kind", "change", "customer_id", "subject", "metric", "period", "field", "a", "b"])
    for c in report["changes"]:
        subject, metric, period = _subject(c)
        for name, va, vb in _figure_rows(c):
            writer.writerow([c["kind"], c["change"], c["customer_id"], subject, metric, period, name, va, vb])
    for subject, name, va, vb in _total_rows(report["summary"]):
        writer.writerow(["total", "", "", subject, "", "", name, va, vb])
    return buf.getvalue()


def _text(report: dict[str, Any]) -> str:
    s = report["summary"]
    br, at = s["breaches"], s["attainment"]
    lines = [f"breaches standing: {br['a']} -> {br['b']} ({br['appear']} appear, {br['disappear']} disappear, "
             f"{br['move']} move, {br['change']} change, {br['rejected']} rejected, {br['pending']} pending)",
             f"attainment: {at['a']['met']}/{at['a']['measured']} ({at['a']['attainment_percent'] or '-'} %) -> "
             f"{at['b']['met']}/{at['b']['measured']} ({at['b']['attainment_percent'] or '-'} %), "
             f"customer quarters changed: {at['changed']} ({at['pending']} pending)",
             f"months closed: {s['months']['a']} -> {s['months']['b']}, changed: {s['months']['changed']}",
             f"dead letters: {s['dead_letters']['a']} -> {s['dead_letters']['b']} "
             f"({s['dead_letters']['only_a']} on A only, {s['dead_letters']['only_b']} on B only)"]
    for currency, r in s["refunds"].items():
        lines.append(f"refunds {currency}: {r['a']} -> {r['b']} ({r['change']})")
    if not report["changes"]:
        lines.append("no change")
    for c in report["changes"]:
        subject, metric, period = _subject(c)
        where = " ".join(p for p in (c["customer_id"], subject if subject != c["customer_id"] else "", metric, period) if p)
        figures = "; ".join(f"{name} {va or '-'} -> {vb or '-'}" for name, va, vb in _figure_rows(c))
        lines.append(f"  {c['kind']} {c['change']}: {where}: {figures}")
    return "\n".join(lines) + "\n"
