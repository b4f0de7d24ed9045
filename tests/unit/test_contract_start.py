"""Where a customer's months start (docs/decisions.md, "Contract history"; review money.md F3, F4).

Undated terms sort first and apply from the start: the first instant the processor sees. So a
history with undated terms closes months from that instant whatever order its entries come in
(F3: undated Pro then Enterprise from 2026-06-15 closed only June, measured from the 15th, and
never April or May; the other order closed June but not April or May), and an undated
`contract.upserted` recorded after the events still applies to them (F4: a contract line
recorded 2026-05-10 started the months in May, so April's outage was never refunded).

Hand figures (SPEC §8), Vectorize Pro 99.5 %, fee 1,000.00 USD:
- April and June 2026 have 30 days: total 43,200 min. A 300 min outage: uptime
  100 - 300 / 43,200 x 100 = 99.3055... -> 99.31 < 99.50, not met; threshold 43,200 x 0.5 / 100
  = 216 min; excess 300 - 216 = 84 min; refund 84 / 43,200 x 1,000 = 1.9444... -> 1.94 USD.
- May 2026 has 31 days: total 44,640 min, no outage -> 100.00, met, no refund.
- June holds the switch to Enterprise (2026-06-15): the month is measured whole under the terms in
  force at its start (Pro, 99.5 %, 1,000 USD; decisions.md), so it is April's figures again.
  Enterprise (99.9 %, 2,000 USD) applies from July, which the runs here do not close.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from policies.contracts import load_contracts_yaml, parse_contracts
from policies.processor import Processor, Settings
from streams.replay import Replayer, replay_file
from tests.support import CATALOG, as_wire, at, contracts, decoded, wire

DATA = Path(__file__).parents[1] / "fixtures" / "contract_start"

APRIL = ("2026-04", 43200, 300, "99.31", "99.50", False)
MAY = ("2026-05", 44640, 0, "100.00", "99.50", True)
JUNE_WHOLE_UNDER_PRO = ("2026-06", 43200, 300, "99.31", "99.50", False)
REFUND = ("300", "216", "84", "1000.00", "1.94")  # downtime, threshold, excess, fee, refund


def months(outputs: list[dict], customer: str) -> dict[str, tuple]:
    return {o["month"]: (o["month"], o["total_minutes"], o["downtime_minutes"], o["uptime_percent"],
                         o["commitment_percent"], o["met"])
            for o in outputs if o["type"] == "uptime.month_closed" and o["customer_id"] == customer}


def refunds(outputs: list[dict], customer: str) -> dict[str, tuple]:
    return {o["month"]: tuple(str(o[k]) for k in ("downtime_minutes", "threshold_minutes", "excess_minutes",
                                                  "monthly_fee", "refund_amount"))
            for o in outputs if o["type"] == "refund.eligible" and o["customer_id"] == customer}


def replay(events: str, contracts: str, until: str) -> list[dict]:
    rep = Replayer(load_contracts_yaml(DATA / contracts, CATALOG), CATALOG, Settings(at_risk_thresholds=()))
    for i, raw in enumerate((DATA / events).read_bytes().splitlines(), 1):
        rep.feed_line(raw, f"{events}:{i}")
    return [json.loads(b) for b in rep.finish(at(until)).sorted_lines()]


# ---- F3: undated terms followed by dated terms --------------------------------------------------

@pytest.mark.parametrize("contracts", ["undated_then_dated.yaml", "dated_then_undated.yaml"])
def test_undated_then_dated_terms_close_every_month_from_the_first_instant(contracts):
    """Before the fix: undated-then-dated closed only June (23,040 min from Jun 15, downtime 0,
    met); dated-then-undated closed June right but neither April nor May."""
    out = replay("outages_april_june.jsonl", contracts, "2026-07-01T02:00:00Z")
    assert months(out, "c4") == {"2026-04": APRIL, "2026-05": MAY, "2026-06": JUNE_WHOLE_UNDER_PRO}
    assert refunds(out, "c4") == {"2026-04": REFUND, "2026-06": REFUND}


def terms(plan: str, since: str | None) -> dict:
    entry = {"customer_id": "c4", "policy": "vectorize", "plan": plan,
             "services": [{"service_id": "s4", "monthly_fee": "2000.00" if plan == "enterprise" else "1000.00",
                           "currency": "USD"}]}
    if plan == "enterprise":
        entry["overrides"] = {"uptime_commitment_percent": "99.9"}
    if since is not None:
        entry["effective_from"] = since
    return entry


PRO_UNDATED = terms("pro", None)
ENTERPRISE_JUNE = terms("enterprise", "2026-06-15T00:00:00Z")
OUTAGES = [wire("outage.started", "2026-04-10T10:00:00Z", "e1", service_id="s4", outage_id="O1"),
           wire("outage.resolved", "2026-04-10T15:00:00Z", "e2", service_id="s4", outage_id="O1"),
           wire("outage.started", "2026-06-02T10:00:00Z", "e3", service_id="s4", outage_id="O2"),
           wire("outage.resolved", "2026-06-02T15:00:00Z", "e4", service_id="s4", outage_id="O2")]


def run(proc: Processor, first: list[dict]) -> list[dict]:
    out = []
    for obj in first + OUTAGES:
        emitted, rejected = proc.apply(decoded(obj))
        assert rejected is None, rejected
        out += emitted
    out += proc.advance_to(at("2026-07-01T02:00:00Z"))
    return [as_wire(o) for o in out]


@pytest.mark.parametrize("order", [(PRO_UNDATED, ENTERPRISE_JUNE), (ENTERPRISE_JUNE, PRO_UNDATED)])
def test_the_history_starts_the_same_in_either_order_installed_or_as_events(order):
    installed = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for entry in order:
        installed.install(parse_contracts({"contracts": [entry]}, CATALOG)[0])
    assert (installed.contracts["c4"].start_month, installed.contracts["c4"].in_force_from) == (None, None)
    out = run(installed, [])
    assert installed.contracts["c4"].start_month == "2026-04"  # the first instant: 2026-04-10T10:00Z
    assert months(out, "c4") == {"2026-04": APRIL, "2026-05": MAY, "2026-06": JUNE_WHOLE_UNDER_PRO}
    assert refunds(out, "c4") == {"2026-04": REFUND, "2026-06": REFUND}

    # the same terms as contract.upserted events recorded on 2026-04-01, before the outages
    events = [wire("contract.upserted", "2026-04-01T00:00:00Z", f"k{i}", **entry) for i, entry in enumerate(order)]
    streamed = run(Processor(CATALOG, settings=Settings(at_risk_thresholds=())), events)
    assert months(streamed, "c4") == months(out, "c4") and refunds(streamed, "c4") == refunds(out, "c4")


def test_dated_terms_only_start_at_the_earliest_effective_from_in_either_order():
    """Without undated terms the history starts at its earliest effective_from (SPEC §11 proration)."""
    pro_may = terms("pro", "2026-05-10T00:00:00Z")
    for order in ((pro_may, ENTERPRISE_JUNE), (ENTERPRISE_JUNE, pro_may)):
        proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
        for entry in order:
            proc.install(parse_contracts({"contracts": [entry]}, CATALOG)[0])
        entry = proc.contracts["c4"]
        assert (entry.start_month, entry.in_force_from, entry.plan.plan) == ("2026-05", at("2026-05-10T00:00:00Z"),
                                                                             "enterprise")


# ---- F4: an undated contract.upserted recorded after the events it applies to -----------------

def test_a_contract_line_recorded_after_a_backfilled_month_still_closes_that_month():
    """Before the fix the line (recorded 2026-05-10) started c6's months in May: April, with its
    300 min outage, was never closed. The same terms from YAML always closed it."""
    from_line = replay("backfill_contract_line.jsonl", "other_customer.yaml", "2026-06-01T02:00:00Z")
    from_yaml = replay("outage_april.jsonl", "c6_undated.yaml", "2026-06-01T02:00:00Z")
    expected = {"2026-04": APRIL, "2026-05": MAY}
    assert months(from_line, "c6") == months(from_yaml, "c6") == expected
    assert refunds(from_line, "c6") == refunds(from_yaml, "c6") == {"2026-04": REFUND}


C6 = {"customer_id": "c6", "policy": "vectorize", "plan": "pro",
      "services": [{"service_id": "s6", "monthly_fee": "1000.00", "currency": "USD"}]}
C6_OUTAGE = [wire("outage.started", "2026-04-10T10:00:00Z", "e1", service_id="s6", outage_id="O1"),
             wire("outage.resolved", "2026-04-10T15:00:00Z", "e2", service_id="s6", outage_id="O1")]
OTHER = {"customer_id": "other", "policy": "vectorize", "plan": "pro",
         "services": [{"service_id": "other-svc", "monthly_fee": "10.00", "currency": "USD"}]}


def stream_backfill(proc: Processor) -> list[dict]:
    """The stream worker's order: the contracts agent installs c6's undated terms, recorded
    2026-05-10, when the partition's time is already 2026-04-01 (a backfill of April)."""
    proc.upsert_contract((parse_contracts({"contracts": [C6]}, CATALOG)[0], at("2026-05-10T00:00:00Z")))
    out = []
    for obj in C6_OUTAGE:
        emitted, rejected = proc.apply(decoded(obj))
        assert rejected is None, rejected
        out += emitted
    out += proc.advance_to(at("2026-06-01T02:00:00Z"))
    return [as_wire(o) for o in out]


def started_partition() -> Processor:
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    proc.install(parse_contracts({"contracts": [OTHER]}, CATALOG)[0])
    proc.advance_to(at("2026-04-01T00:00:00Z"))  # the partition's first instant
    return proc


def test_an_undated_contract_event_in_stream_starts_at_the_partitions_first_instant():
    """Before the fix: start_month 2026-05 (the record time), April never closed."""
    proc = started_partition()
    out = stream_backfill(proc)
    assert proc.contracts["c6"].start_month == "2026-04"
    assert months(out, "c6") == {"2026-04": APRIL, "2026-05": MAY}
    assert refunds(out, "c6") == {"2026-04": REFUND}


def test_a_restarted_partition_keeps_its_first_instant():
    """The first instant is in the processor's snapshot; a snapshot written before it was kept
    starts undated terms at the oldest month still to close (here April, the next for `other`)."""
    snapshot = started_partition().snapshot()
    assert json.loads(snapshot)["first"] == "2026-04-01T00:00:00+00:00"
    old = json.loads(snapshot)
    del old["first"]
    for text in (snapshot, json.dumps(old)):
        proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
        proc.restore(text)
        proc.install(parse_contracts({"contracts": [OTHER]}, CATALOG)[0])
        assert proc.first_instant == at("2026-04-01T00:00:00Z")
        out = stream_backfill(proc)
        assert months(out, "c6") == {"2026-04": APRIL, "2026-05": MAY}
        assert refunds(out, "c6") == {"2026-04": REFUND}


@pytest.mark.parametrize("events, contracts, until", [
    ("backfill_contract_line.jsonl", "other_customer.yaml", "2026-06-01T02:00:00Z"),
    ("outages_april_june.jsonl", "undated_then_dated.yaml", "2026-07-01T02:00:00Z"),
    ("outages_april_june.jsonl", "dated_then_undated.yaml", "2026-07-01T02:00:00Z")])
def test_replay_jobs_start_the_months_at_the_files_first_instant(events, contracts, until):
    """`--jobs 2` gives `--jobs 1`'s output: each job starts undated terms at the file's first
    instant (set before the job's own first event, and kept)."""
    outputs = []
    for jobs in (1, 2):
        out = io.BytesIO()
        replay_file(DATA / events, DATA / contracts, at(until), out, progress=None, jobs=jobs)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    customer = "c6" if "c6" in outputs[0].decode() else "c4"
    assert "2026-04" in months([json.loads(line) for line in outputs[0].splitlines()], customer)


def test_a_new_subscriber_closes_no_month_the_shared_service_already_forgot():
    """In the stream a new customer's undated terms start at the partition's first instant, which
    may be before the months a shared service's state still holds: after `a` closed January to
    May, the service keeps April on (a month's claim window is 30 days), February's outage is
    forgotten. `b`, added 2026-06-01, closes April and May, not January to March from what is left
    (February would have read 0 downtime, met: figures for a month whose data is gone)."""
    def sub(customer: str) -> dict:
        return {"customer_id": customer, "policy": "vectorize", "plan": "pro",
                "services": [{"service_id": "shared", "monthly_fee": "1000.00", "currency": "USD"}]}
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    proc.install(parse_contracts({"contracts": [sub("a")]}, CATALOG)[0])
    closed = proc.advance_to(at("2026-01-01T00:00:00Z"))
    for obj in (wire("outage.started", "2026-02-10T10:00:00Z", "f1", service_id="shared", outage_id="F"),
                wire("outage.resolved", "2026-02-10T15:00:00Z", "f2", service_id="shared", outage_id="F")):
        emitted, rejected = proc.apply(decoded(obj))
        assert rejected is None
        closed += emitted
    closed_a = [as_wire(o) for o in closed + proc.advance_to(at("2026-06-01T02:00:00Z"))]
    assert sorted(months(closed_a, "a")) == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
    # February: 28 days, 40,320 min; 300 min down: 99.2559... -> 99.26 < 99.50; threshold 201.6 min,
    # excess 98.4 min, refund 98.4 / 40,320 x 1,000 = 2.4404... -> 2.44
    assert {m: r[4] for m, r in refunds(closed_a, "a").items()} == {"2026-02": "2.44"}
    assert proc.service_oldest_month_held("shared") == "2026-04"
    out = proc.upsert_contract((parse_contracts({"contracts": [sub("b")]}, CATALOG)[0], at("2026-06-01T02:00:00Z")))
    assert sorted(months([as_wire(o) for o in out], "b")) == ["2026-04", "2026-05"]


# ---- review of 2026-12-06, F3: the first instant is the earliest, not the first to arrive -------

def test_undated_terms_start_at_the_earliest_instant_whatever_arrives_first():
    """A fresh partition with c6's undated terms reads June's ticket-side traffic (another customer's
    ticket, 2026-06-01) or June's outage before April's: the first instant was the first event to
    arrive (June), so April was never closed and its 1.94 USD refund (300 min, hand figures above)
    never emitted; replay, sorted, starts at April 10. An earlier event lowers the first instant
    while no undated customer has closed a month: every order closes April, May and June as replay."""
    june_ticket = wire("ticket.opened", "2026-06-01T09:00:00Z", "t1", ticket_id="T1", customer_id="nm",
                       priority="low")
    june_outage = [wire("outage.started", "2026-06-02T10:00:00Z", "e3", service_id="s6", outage_id="O2"),
                   wire("outage.resolved", "2026-06-02T15:00:00Z", "e4", service_id="s6", outage_id="O2")]
    expected = {"2026-04": APRIL, "2026-05": MAY, "2026-06": JUNE_WHOLE_UNDER_PRO}
    for order in ([june_ticket, *C6_OUTAGE, *june_outage], [*june_outage, june_ticket, *C6_OUTAGE],
                  [*C6_OUTAGE, june_ticket, *june_outage]):
        proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
        proc.install(parse_contracts({"contracts": [C6]}, CATALOG)[0])
        proc.install(contracts("nm")[0])
        out = []
        for obj in order:
            emitted, rejected = proc.apply(decoded(obj))
            assert rejected is None, rejected
            out += emitted
        out = [as_wire(o) for o in out + proc.advance_to(at("2026-07-01T02:00:00Z"))]
        assert proc.first_instant == at("2026-04-10T10:00:00Z")
        assert months(out, "c6") == expected, order[0]["event_id"]
        assert refunds(out, "c6") == {"2026-04": REFUND, "2026-06": REFUND}, order[0]["event_id"]


def test_an_earlier_event_after_an_undated_customers_first_close_moves_no_start():
    """Once an undated customer's month has closed, the first instant stays (the months before it stay
    unmeasured, decisions.md): c6's June closed from June 2 on, a late April ticket changes no start."""
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    proc.install(parse_contracts({"contracts": [C6]}, CATALOG)[0])
    proc.install(contracts("nm")[0])
    proc.apply(decoded(wire("outage.started", "2026-06-02T10:00:00Z", "e3", service_id="s6", outage_id="O2")))
    closed = [as_wire(o) for o in proc.advance_to(at("2026-07-01T02:00:00Z"))]
    assert set(months(closed, "c6")) == {"2026-06"}
    late = wire("ticket.opened", "2026-04-10T09:00:00Z", "t1", ticket_id="T1", customer_id="nm", priority="low")
    assert proc.apply(decoded(late))[1] is None
    assert proc.first_instant == at("2026-06-02T10:00:00Z")
    later = [as_wire(o) for o in proc.advance_to(at("2026-08-01T02:00:00Z"))]
    assert set(months(later, "c6")) == {"2026-07"}
