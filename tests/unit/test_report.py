"""`slaproc report` (SPEC §15): the hand-computed figures of golden `report_vz_pro_april` (see its
README) in the HTML page, the CSV and the JSON; a pruned month shows no figures."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from policies import downtime
from policies.report import service_month
from streams.cli import main
from streams.report.build import report_from_files
from streams.report.html import COLOUR, render_html
from streams.report.tabular import render_csv, render_json

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report_vz_pro_april"
UNTIL = datetime(2026, 5, 1, 2, tzinfo=timezone.utc)  # the scenario's options.yaml

# (priority, target kind, measured, met, breached, attainment) from the README
ROWS = [("urgent", "objective", 1, 0, 1, "0.00"), ("urgent", "commitment", 1, 1, 0, "100.00"),
        ("high", "objective", 1, 0, 1, "0.00"), ("high", "commitment", 1, 0, 1, "0.00"),
        ("normal", "objective", 1, 1, 0, "100.00"), ("normal", "commitment", 1, 1, 0, "100.00")]
# (ticket, target, started, deadline) of each breach
BREACHES = [("VR-1", "objective: 4 business hours", "2026-04-14T13:00:00Z", "2026-04-14T17:00:00Z"),
            ("VR-2", "objective: 12 business hours", "2026-04-16T21:00:00Z", "2026-04-17T21:00:00Z"),
            ("VR-2", "commitment: 12 business hours", "2026-04-16T21:00:00Z", "2026-04-17T21:00:00Z")]


@pytest.fixture(scope="module")
def report():
    return report_from_files(GOLDEN / "events.jsonl", GOLDEN / "contracts.yaml", "vz-report", "2026-04", UNTIL)


class _Cells(HTMLParser):
    """Table rows of a page as lists of cell texts (what a reader sees), and every tag."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: set[str] = set()
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _html_rows(page: str) -> list[list[str]]:
    parser = _Cells()
    parser.feed(page)
    return parser.rows


def _utc(wire: str) -> str:
    return wire.replace("T", " ")[:16] + " UTC"


def test_html_has_every_hand_computed_figure(report):
    page = render_html(report)
    rows = _html_rows(page)
    for priority, kind, measured, met, breached, pct in ROWS:
        assert [priority, "first response", kind, str(measured), str(met), str(breached), f"{pct} %"] in rows
    assert ["all", "all", "all", "6", "3", "3", "50.00 %"] in rows
    for ticket, target, started, due in BREACHES:
        assert [ticket, _priority(ticket), "first response (cycle 1)",
                target, _utc(started)[:-4], _utc(due)[:-4], _utc(due)[:-4]] in rows  # breached at its deadline
    assert ["43200", "300 min", "120 min", "90 min", "99.31 %", "99.50 %", "not met"] in rows
    assert ["eligible", "216 min", "84 min", "1000.00 USD", "1.94 USD", "2026-05-31 00:00 UTC"] in rows
    assert ["outage OA (customer report)", "2026-04-08 10:00 UTC", "2026-04-08 15:00 UTC", "300 min",
            "downtime 300 min"] in rows
    assert ["outage OB (internal alert)", "2026-04-22 02:00 UTC", "2026-04-22 03:30 UTC", "90 min",
            "excluded 90 min; cause: third_party"] in rows
    assert ["outage OC (internal alert)", "2026-04-28 01:00 UTC", "2026-04-28 03:00 UTC", "120 min",
            "maintenance 120 min"] in rows
    assert "Figures: final (closed, revision 1)." in page


def _priority(ticket: str) -> str:
    return {"VR-1": "urgent", "VR-2": "high"}[ticket]


def test_html_is_self_contained_with_pictures(report):
    page = render_html(report)
    parser = _Cells()
    parser.feed(page)
    assert parser.tags.isdisjoint({"script", "link", "img", "iframe"})
    assert not re.search(r"(?:src|href)\s*=|url\(|@import|https?://(?!www\.w3\.org/2000/svg)", page)
    # one clock picture per breached ticket (VR-1, VR-2; VR-3 met both), one uptime strip
    assert page.count('aria-label="clock of ticket') == 2
    assert page.count('aria-label="uptime of rep-api"') == 1
    assert "deadline Fri 17:00" in page and "provider reply Mon 08:00" in page  # local time (EDT)


def test_json_and_csv_carry_the_same_figures(report):
    doc = json.loads(render_json(report))
    tickets = doc["tickets"]
    got = [(r["priority"], r["target"], r["measured"], r["met"], r["breached"], r["attainment_percent"])
           for r in tickets["by_priority_and_metric"]]
    assert got == ROWS
    assert tickets["total"] == {"priority": "all", "metric": "all", "target": "all", "measured": 6, "met": 3,
                                     "breached": 3, "attainment_percent": "50.00"}
    assert [(b["ticket_id"], b["target"], b["started_at"], b["due_at"]) for b in tickets["breaches"]] == BREACHES
    (svc,) = doc["services"]
    assert (svc["total_minutes"], svc["downtime_minutes"], svc["maintenance_minutes"], svc["excluded_minutes"],
            svc["uptime_percent"], svc["commitment_percent"], svc["met"]) == (43200, 300, 120, 90, "99.31",
                                                                              "99.50", False)
    assert svc["refund"] == {"downtime_minutes": 300, "threshold_minutes": 216, "excess_minutes": 84,
                             "monthly_fee": "1000.00", "refund_amount": "1.94", "currency": "USD",
                             "claim_deadline": "2026-05-31T00:00:00Z"}
    assert [(x["kind"], x["start"], x["minutes"]) for x in svc["timeline"]] == [
        ("downtime", "2026-04-08T10:00:00Z", 300), ("excluded", "2026-04-22T02:00:00Z", 90),
        ("maintenance", "2026-04-28T01:00:00Z", 120)]

    # the CSV is the same document, one figure per row
    flat = {(s, subj, f): v for s, subj, f, v in csv.reader(io.StringIO(render_csv(report)))}
    for i, (priority, kind, measured, met, breached, pct) in enumerate(ROWS, 1):
        subject = f"by_priority_and_metric[{i}]"
        assert [flat["tickets", subject, k] for k in ("priority", "target", "measured", "met", "breached",
                                                      "attainment_percent")] == [priority, kind, str(measured),
                                                                                 str(met), str(breached), pct]
    assert flat["tickets", "total", "attainment_percent"] == "50.00"
    for i, (ticket, target, started, due) in enumerate(BREACHES, 1):
        assert [flat["tickets", f"breaches[{i}]", k] for k in ("ticket_id", "target", "started_at", "due_at")] == [
            ticket, target, started, due]
    assert [flat["service", "rep-api", k] for k in ("uptime_percent", "downtime_minutes", "met")] == [
        "99.31", "300", "false"]
    assert [flat["service", "rep-api/refund", k] for k in ("threshold_minutes", "excess_minutes", "refund_amount",
                                                          "claim_deadline")] == ["216", "84", "1.94",
                                                                                 "2026-05-31T00:00:00Z"]


def test_a_month_in_progress_says_so_and_counts_only_what_has_happened():
    """Without --until the figures stand as of the file's latest event (28 Apr 03:00 UTC)."""
    r = report_from_files(GOLDEN / "events.jsonl", GOLDEN / "contracts.yaml", "vz-report", "2026-04")
    (svc,) = r.services
    assert not svc.final and svc.revision == 0
    assert svc.figures.as_of == datetime(2026, 4, 28, 3, tzinfo=timezone.utc)
    # the core measures a month in progress against the whole month (as explain-month does)
    assert svc.closed["total_minutes"] == 43200 and svc.closed["downtime_minutes"] == 300
    assert "month in progress, as of 2026-04-28 03:00 UTC" in render_html(r)


def test_a_pruned_month_shows_no_figures():
    """Issue 11's rule: never figures from pruned state."""
    sm = service_month(downtime.new_state("s"), "s", customer_id="c", month="2026-01", commitment=Decimal("99.5"),
                       fee_per_month=Decimal(100), currency="USD", now=datetime(2026, 6, 1, tzinfo=timezone.utc),
                       not_held="the month was pruned after its claim window")
    assert sm.figures is None and sm.closed is None and sm.refund is None
    r = report_from_files(GOLDEN / "events.jsonl", GOLDEN / "contracts.yaml", "vz-report", "2026-04", UNTIL)
    from dataclasses import replace

    page = render_html(replace(r, services=(replace(sm, service_id="rep-api"),)))
    assert "No figures for 2026-04 here: the month was pruned" in page and "99.31" not in page and "1.94 USD" not in page


def test_other_months_and_customers(report):
    march = report_from_files(GOLDEN / "events.jsonl", GOLDEN / "contracts.yaml", "vz-report", "2026-03", UNTIL)
    assert march.tickets == 0 and march.rows == () and march.breaches == ()
    with pytest.raises(LookupError, match="nobody"):
        report_from_files(GOLDEN / "events.jsonl", GOLDEN / "contracts.yaml", "nobody", "2026-04", UNTIL)


def test_cli_writes_each_format(tmp_path, capsys):
    for fmt in ("html", "csv", "json"):
        out = tmp_path / f"r.{fmt}"
        assert main(["report", "vz-report", "2026-04", str(GOLDEN / "events.jsonl"), "--contracts",
                     str(GOLDEN / "contracts.yaml"), "--format", fmt, "--out", str(out),
                     "--until", "2026-05-01T02:00:00Z"]) == 0
        assert "1.94" in out.read_text()
    assert main(["report", "vz-report", "2026-4", str(GOLDEN / "events.jsonl"), "--contracts",
                 str(GOLDEN / "contracts.yaml")]) == 2
    assert "not a month" in capsys.readouterr().err
    assert main(["report", "vz-report", "2026-04", str(tmp_path / "missing.jsonl"), "--contracts",
                 str(GOLDEN / "contracts.yaml")]) == 2


def _worker_state(partitions: int):
    """The golden events through stream partition processors over shared tables (as a worker
    holds them), then processors rebuilt from the tables (a restart): the worker's state."""
    from events.codec import decode
    from policies.catalog import default_catalog
    from policies.contracts import load_contracts_yaml
    from streams.app import partition_for_key
    from streams.core_adapter import RealCore
    from streams.store import DictTableBackend, PartitionStore

    catalog = default_catalog()
    contracts = load_contracts_yaml(GOLDEN / "contracts.yaml", catalog)
    backend = DictTableBackend()
    core = RealCore(catalog=catalog)
    core.clock = lambda: UNTIL  # the wall clock bounds event time: pinned

    def processors():
        procs = {p: core.new_processor(PartitionStore(backend, p),
                                       lambda s, p=p: partition_for_key(s, partitions) == p)
                 for p in range(partitions)}
        for proc in procs.values():
            for c in contracts:
                proc.upsert_contract((c, None))
        return procs

    procs = processors()
    events = sorted((decode(raw) for raw in (GOLDEN / "events.jsonl").read_bytes().splitlines()),
                    key=lambda e: e.occurred_at)
    for ev in events:
        key = getattr(ev, "ticket_id", None) if ev.type.startswith("ticket.") else ev.service_id
        out, rejected = procs[partition_for_key(key, partitions)].apply(ev)
        assert rejected is None
    for proc in procs.values():
        proc.advance_to(UNTIL)
        proc.persist()
    return processors()


def test_the_worker_page_has_the_figures_of_the_file(report):
    """GET /customers/{id}/months/{YYYY-MM}/report renders `report_from_worker`: from a worker's
    tables it carries the same figures as `slaproc report` over the file."""
    from streams.app import partition_for_key
    from streams.report.build import report_from_worker

    partitions = 4
    procs = _worker_state(partitions)
    from_worker = report_from_worker(procs, partitions, "vz-report", "2026-04",
                                     lambda key: partition_for_key(key, partitions))
    worker_doc, file_doc = json.loads(render_json(from_worker)), json.loads(render_json(report))
    assert worker_doc["as_of"] == file_doc["as_of"] == "2026-05-01T02:00:00Z"
    assert worker_doc["tickets"] == file_doc["tickets"]
    assert worker_doc["services"] == file_doc["services"]
    assert any("forgotten 7 days after ticket.closed" in n for n in worker_doc["notes"])

    # a worker holding only some partitions says so, and shows no figures for a service it does not hold
    service_partition = partition_for_key("rep-api", partitions)
    others = {p: proc for p, proc in procs.items() if p != service_partition}
    partial = report_from_worker(others, partitions, "vz-report", "2026-04",
                                 lambda key: partition_for_key(key, partitions))
    (svc,) = partial.services
    assert svc.figures is None and svc.not_held == "its partition is held by another worker"
    # the table also holds the other partitions' tickets (a standby replica): not this worker's figures
    opened = [json.loads(line) for line in (GOLDEN / "events.jsonl").read_text().splitlines()]
    tickets = {e["ticket_id"] for e in opened if e["type"] == "ticket.opened" and e["customer_id"] == "vz-report"}
    dropped = partition_for_key(min(tickets), partitions)
    held = {t for t in tickets if partition_for_key(t, partitions) != dropped}
    without = report_from_worker({p: proc for p, proc in procs.items() if p != dropped}, partitions, "vz-report",
                                 "2026-04", lambda key: partition_for_key(key, partitions))
    assert worker_doc["tickets"]["submitted"] == len(tickets) > len(held)
    assert json.loads(render_json(without))["tickets"]["submitted"] == len(held)
    assert any(f"holds {partitions - 1} of {partitions} partitions" in n for n in partial.notes)
    with pytest.raises(LookupError):
        report_from_worker(procs, partitions, "nobody", "2026-04", lambda key: partition_for_key(key, partitions))


def test_open_intervals_are_the_open_time_business_between_counts():
    """The business-hours bands of the clock pictures (calendar.open_intervals): Vectorize Pro's
    07:00-19:00 New York over a week with a weekend and the EDT switch (8 Mar 2026)."""
    from policies.calendar import BusinessCalendar

    cal = BusinessCalendar(timezone="America/New_York", weekly=[(d, 420, 1140) for d in range(5)],
                           day_length=timedelta(hours=12))
    a, b = datetime(2026, 3, 5, 15, tzinfo=timezone.utc), datetime(2026, 3, 10, 14, tzinfo=timezone.utc)
    bands = cal.open_intervals(a, b)
    assert bands == [(a, datetime(2026, 3, 6, 0, tzinfo=timezone.utc)),  # Thu 10:00-19:00 EST
                     (datetime(2026, 3, 6, 12, tzinfo=timezone.utc), datetime(2026, 3, 7, 0, tzinfo=timezone.utc)),
                     (datetime(2026, 3, 9, 11, tzinfo=timezone.utc), datetime(2026, 3, 9, 23, tzinfo=timezone.utc)),
                     (datetime(2026, 3, 10, 11, tzinfo=timezone.utc), b)]  # Mon, Tue in EDT
    assert sum((hi - lo for lo, hi in bands), timedelta()) == cal.business_between(a, b)
    assert cal.open_intervals(b, a) == [] and BusinessCalendar.always_open().open_intervals(a, b) == [(a, b)]


def test_a_paused_clock_shows_its_pause_and_moved_deadline(tmp_path):
    """A contract's pause (SPEC §6): Vectorize Pro urgent opened Tue 14 Apr 2026 09:00 EDT, waiting on
    the customer 10:00-14:00 EDT. Objective 4 bh: 1 h + 3 h from 14:00 -> 17:00 EDT = 21:00Z,
    breached (no reply that day). Commitment 12 bh: 1 h + 5 h (14:00-19:00) + 6 h Wed -> 13:00 EDT;
    the reply Wed 12:00 EDT meets it after 1 + 5 + 5 = 11 h = 660 min."""
    (tmp_path / "c.yaml").write_text(
        "contracts:\n  - customer_id: p\n    policy: vectorize\n    plan: pro\n"
        "    overrides: {pause: {statuses: [waiting_on_customer], metrics: [first_response]}}\n"
        "    effective_from: '2026-04-01T00:00:00Z'\n")
    events = [("ticket.opened", "2026-04-14T09:00:00-04:00", {"priority": "urgent", "customer_id": "p"}),
              ("ticket.status_changed", "2026-04-14T10:00:00-04:00", {"status": "waiting_on_customer"}),
              ("ticket.status_changed", "2026-04-14T14:00:00-04:00", {"status": "open"}),
              ("ticket.replied", "2026-04-15T12:00:00-04:00", {"author": "provider", "public": True})]
    (tmp_path / "e.jsonl").write_text("".join(
        json.dumps({"event_id": f"p{i}", "type": t, "occurred_at": at, "ticket_id": "P-1", **f}) + "\n"
        for i, (t, at, f) in enumerate(events)))
    r = report_from_files(tmp_path / "e.jsonl", tmp_path / "c.yaml", "p", "2026-04",
                          datetime(2026, 4, 16, tzinfo=timezone.utc))
    utc = timezone.utc
    (tl,) = r.timelines
    assert tl.paused == ((datetime(2026, 4, 14, 14, tzinfo=utc), datetime(2026, 4, 14, 18, tzinfo=utc)),)
    objective, commitment = sorted(tl.clocks, key=lambda c: c.binding)
    assert (objective.outcome, objective.due_at) == ("breached", datetime(2026, 4, 14, 21, tzinfo=utc))
    assert (commitment.outcome, commitment.due_at, commitment.elapsed_minutes) == (
        "met", datetime(2026, 4, 15, 17, tzinfo=utc), 660)
    page = render_html(r)
    assert f'fill="{COLOUR["paused"]}"' in page and "deadline Tue 17:00" in page and "deadline Wed 13:00" in page



def test_each_ticket_is_reported_under_the_catalog_version_it_was_opened_under():
    """SPEC §14 in the report: golden nm_catalog_version_midmonth has two versions of a policy (v2
    halves High from 21 Oct). The report's standing outcomes are the golden's hand-computed ones:
    NMV-0/1/2 keep v1 and are met, NMV-3/5 breach under v2 (measured under the latest version,
    NMV-0/1/2 would breach too)."""
    from policies.catalog import load_catalog

    scenario = GOLDEN.parent / "nm_catalog_version_midmonth"
    until = datetime(2026, 10, 24, tzinfo=timezone.utc)
    got = report_from_files(scenario / "events.jsonl", scenario / "contracts.yaml", "nm-ver", "2026-10", until,
                            catalog=load_catalog(scenario / "catalog"))
    expected = [json.loads(line) for line in (scenario / "expected.jsonl").read_text().splitlines() if line.strip()]
    retracted = {(e["ticket_id"], e["metric"], e["binding"], e["cycle"]) for e in expected
                 if e["type"] == "sla.breach_retracted"}
    want = sorted((e["ticket_id"], e["metric"], e["binding"], e["cycle"], e["due_at"],
                   "met" if e["type"] == "sla.met" else "breached") for e in expected
                  if e["type"] in ("sla.met", "sla.breached")
                  and (e["ticket_id"], e["metric"], e["binding"], e["cycle"]) not in retracted)
    have = sorted((o.ticket_id, o.metric, o.binding, o.cycle, o.due_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "met" if o.outcome != "breached" else "breached") for o in got.outcomes)
    assert have == want
    assert {o.ticket_id for o in got.breaches} == {"NMV-3", "NMV-5", "NMV-6"}
    # the page says which versions its tickets ran under (3 opened before v2's instant, 4 from it)
    assert any("2026.11.1 (3 tickets), 2026.11.2 (4 tickets)" in note for note in got.notes)
