"""Review of 2026-12-04 (versions / report / explain-month), findings F1, F2, F4, F7: what
`slaproc report` and `slaproc explain-month` show must be what replay derives from the same
events under the same time bound (SPEC §10, §14, §15). Inputs are inline (the review's e1, e4,
e5, e12, e18 and c1a, c5); each test has its hand arithmetic.

Vectorize Pro (c1a): acme-api 1000.00 USD/month, commitment 99.5 %, effective 2026-04-01.
April 2026 = 30 x 1440 = 43200 min; threshold = 43200 x 0.5 / 100 = 216 min.
An outage 10:00-15:00Z on 10 April = 300 min: uptime = 100 - 300 / 43200 x 100 = 99.3055... -> 99.31
< 99.5, not met; excess = 300 - 216 = 84 min; refund = 84 / 43200 x 1000 = 1.944... -> 1.94 USD.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

from streams.cli import main
from streams.explain import explain_month_from_files
from streams.report.build import report_from_files
from streams.report.html import render_html
from streams.report.tabular import render_csv, render_json

UTC = timezone.utc

C1A = """contracts:
  - customer_id: acme
    policy: vectorize
    plan: pro
    services:
      - {service_id: acme-api, monthly_fee: "1000.00", currency: USD}
    effective_from: "2026-04-01T00:00:00Z"
"""
C5 = """contracts:
  - customer_id: up
    policy: vectorize
    plan: starter
    services:
      - {service_id: up-api, monthly_fee: "100.00", currency: USD}
    effective_from: "2026-04-01T00:00:00Z"
  - customer_id: up
    policy: vectorize
    plan: pro
    services:
      - {service_id: up-api, monthly_fee: "1000.00", currency: USD}
    effective_from: "2026-04-15T00:00:00Z"
"""
O1_START = {"event_id": "o1s", "type": "outage.started", "occurred_at": "2026-04-10T10:00:00Z", "outage_id": "o1",
            "service_id": "acme-api"}
O1_END = {"event_id": "o1r", "type": "outage.resolved", "occurred_at": "2026-04-10T15:00:00Z", "outage_id": "o1",
          "service_id": "acme-api"}
T1 = {"event_id": "t1o", "type": "ticket.opened", "occurred_at": "2026-04-10T15:00:00Z", "ticket_id": "T1",
      "customer_id": "acme", "priority": "urgent"}


def _files(tmp_path: Path, contracts: str, *events: dict) -> tuple[Path, Path]:
    ev, c = tmp_path / "e.jsonl", tmp_path / "c.yaml"
    ev.write_text("".join(json.dumps(e) + "\n" for e in events))
    c.write_text(contracts)
    return ev, c


# ----------------------------------------------------------------------------- F1


def test_f1_explain_month_of_a_month_in_progress_counts_only_what_has_happened(tmp_path):
    """e4: outage o1 opened 2026-04-10T10:00Z and still open; T1 at 15:00Z is the latest event.
    Replay has not closed April. As of 15:00Z the outage has lasted 300 min -> 99.31 %, refund 1.94 USD
    (what `report` shows). Before the fix explain counted it to 2026-05-01: 29640 min, 31.39 %,
    681.11 USD."""
    ev, c = _files(tmp_path, C1A, O1_START, T1)
    text = explain_month_from_files(ev, c, "acme", "acme-api", "2026-04")
    assert "Figures as of 2026-04-10 15:00:00Z" in text, text
    assert "month in progress (not closed)" in text
    assert "downtime                   = 300 min" in text and "99.31" in text and "-> 1.94 USD" in text
    assert "681.11" not in text and "29640" not in text
    report = report_from_files(ev, c, "acme", "2026-04")
    assert str(report.services[0].refund["refund_amount"]) == "1.94"  # the two tools agree


# ----------------------------------------------------------------------------- F7

FUTURE_TICKET = {"event_id": "t9o", "type": "ticket.opened", "occurred_at": "2027-03-01T15:00:00Z",
                 "ticket_id": "T9", "customer_id": "acme", "priority": "urgent"}
FUTURE_CLASSIFIED = {"event_id": "o1c", "type": "outage.classified", "occurred_at": "2027-05-05T10:00:00Z",
                     "outage_id": "o1", "service_id": "acme-api", "cause": "excluded", "category": "third_party"}
BOUND = datetime(2026, 12, 4, tzinfo=UTC)  # a wall clock + max_future, as the CLI computes it


def test_f7_report_applies_the_time_bound(tmp_path):
    """e12 = e4 + a ticket typo'd to 2027-03-01. Bound 2026-12-04 (SPEC §10): the line is a dead
    letter, time stays at 2026-04-10T15:00Z. April is in progress: 300 min, refund 1.94 USD; T1
    (urgent, opened Fri 11:00 EDT, objective 4 bh due 15:00 EDT = 19:00Z) has no outcome yet: 0
    measured. Before the fix: as_of 2027-03-01, April final, 29640 min, 681.11 USD, 2 breaches."""
    ev, c = _files(tmp_path, C1A, O1_START, T1, FUTURE_TICKET)
    r = report_from_files(ev, c, "acme", "2026-04", bound=BOUND)
    doc = json.loads(render_json(r))
    assert doc["as_of"] == "2026-04-10T15:00:00Z"
    (svc,) = doc["services"]
    assert (svc["final"], svc["downtime_minutes"], svc["uptime_percent"]) == (False, 300, "99.31")
    assert svc["refund"]["refund_amount"] == "1.94"
    assert doc["tickets"]["submitted"] == 1 and doc["tickets"]["total"]["measured"] == 0
    assert doc["tickets"]["breaches"] == []


def test_f7_explain_month_applies_the_time_bound(tmp_path):
    """e18 = e1 (o1 10:00-15:00Z, resolved) + a classification typo'd to 2027-05-05 (excluded,
    third_party). Beyond the bound it is a dead letter: April stands at 300 min, 99.31 %, 1.94 USD.
    Before the fix explain applied it: "EXCLUDED", downtime 0, 100.00 %, no refund."""
    ev, c = _files(tmp_path, C1A, O1_START, O1_END, FUTURE_CLASSIFIED)
    text = explain_month_from_files(ev, c, "acme", "acme-api", "2026-04", bound=BOUND)
    assert "EXCLUDED" not in text and "-> 1.94 USD" in text, text


def test_f7_cli_bounds_report_and_explain_by_the_wall_clock(tmp_path, capsys):
    """Without --until the bound is the wall clock + --max-future (as replay); a line in 8999 is
    beyond any wall clock of this test's life: a dead letter, named on stderr."""
    far_ticket = {**FUTURE_TICKET, "occurred_at": "8999-03-01T15:00:00Z"}
    far_classified = {**FUTURE_CLASSIFIED, "occurred_at": "8999-05-05T10:00:00Z"}
    ev, c = _files(tmp_path, C1A, O1_START, O1_END, T1, far_ticket, far_classified)
    assert main(["report", "acme", "2026-04", str(ev), "--contracts", str(c), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["as_of"] == "2026-04-10T15:00:00Z" and doc["services"][0]["refund"]["refund_amount"] == "1.94"
    assert "future_timestamp" in err and "e.jsonl:4" in err and "e.jsonl:5" in err, err
    assert main(["explain-month", "acme", "acme-api", "2026-04", str(ev), "--contracts", str(c),
                 "--max-future", "60"]) == 0
    out, err = capsys.readouterr()
    assert "EXCLUDED" not in out and "-> 1.94 USD" in out and "future_timestamp" in err
    # with --until, the bound is --until (deterministic): May 1 02:00Z closes April, final
    assert main(["report", "acme", "2026-04", str(ev), "--contracts", str(c), "--format", "json",
                 "--until", "2026-05-01T02:00:00Z"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["services"][0]["final"] is True and doc["services"][0]["refund"]["refund_amount"] == "1.94"


# ----------------------------------------------------------------------------- F2


def test_f2_months_outside_the_contract_or_the_data_show_no_figures(tmp_path):
    """e1 (o1 on 10 April, latest event 2026-04-10T15:00Z), contract in force from 2026-04-01.
    March: the contract is not in force (replay never closes it). June: no events (time stops
    at 10 April). Before the fix both showed 100.00 % met, March "final"."""
    ev, c = _files(tmp_path, C1A, O1_START, O1_END)
    for month, why in (("2026-03", "contract not in force in 2026-03"),
                       ("2026-06", "no events in 2026-06 (the events end at 2026-04-10T15:00:00Z)")):
        r = report_from_files(ev, c, "acme", month)
        (svc,) = r.services
        assert svc.figures is None and svc.closed is None and svc.refund is None and not svc.final
        doc = json.loads(render_json(r))
        assert why in doc["services"][0]["no_figures"], doc
        assert "uptime_percent" not in doc["services"][0] and "final" not in doc["services"][0]
        page = render_html(r)
        assert why in page and "100.00 %" not in page and "final" not in page
        rows = list(csv.reader(io.StringIO(render_csv(r))))
        assert ["service", "acme-api", "no_figures", doc["services"][0]["no_figures"]] in rows
        assert not any(row[0] == "service" and row[2] in ("uptime_percent", "met", "final") for row in rows)
        text = explain_month_from_files(ev, c, "acme", "acme-api", month)
        assert why in text and "MET" not in text and "100.00" not in text, text
    # April itself still has its figures
    text = explain_month_from_files(ev, c, "acme", "acme-api", "2026-04")
    assert "-> 1.94 USD" in text


# ----------------------------------------------------------------------------- F4


def test_f4_a_month_that_starts_without_ticket_clocks_reports_its_tickets(tmp_path):
    """c5: up on Vectorize Starter (no ticket clocks) from 2026-04-01, Pro from 2026-04-15. e5's U1
    (urgent) opened 2026-04-20T12:00Z = Mon 08:00 EDT is measured under Pro (terms at its opening);
    business hours 07:00-19:00 New York.
    Objective 4 bh: 08:00 + 4 h = 12:00 EDT = 16:00Z; the reply comes Tue 12:00Z: breached.
    Commitment 12 bh: Mon 08:00-19:00 = 11 h + Tue 07:00-08:00 = 1 h -> due Tue 08:00 EDT = 12:00Z;
    the reply at exactly 12:00Z is on time: met, 720 min.
    U0 opened 2026-04-10 under Starter: submitted, no clock. Before the fix the April report said
    "no ticket clocks", submitted 0, no breach (the month's start terms are Starter's)."""
    up = [{"event_id": "u1o", "type": "ticket.opened", "occurred_at": "2026-04-20T12:00:00Z", "ticket_id": "U1",
           "customer_id": "up", "priority": "urgent"},
          {"event_id": "u1r", "type": "ticket.replied", "occurred_at": "2026-04-21T12:00:00Z", "ticket_id": "U1",
           "author": "provider", "public": True},
          {"event_id": "u0o", "type": "ticket.opened", "occurred_at": "2026-04-10T12:00:00Z", "ticket_id": "U0",
           "customer_id": "up", "priority": "urgent"}]
    ev, c = _files(tmp_path, C5, *up)
    r = report_from_files(ev, c, "up", "2026-04", datetime(2026, 6, 1, 2, tzinfo=UTC))
    doc = json.loads(render_json(r))
    t = doc["tickets"]
    assert t["ticket_clocks"] is True and t["submitted"] == 2
    assert [(x["priority"], x["target"], x["measured"], x["met"], x["breached"]) for x in t["by_priority_and_metric"]] \
        == [("urgent", "objective", 1, 0, 1), ("urgent", "commitment", 1, 1, 0)]
    (breach,) = t["breaches"]
    assert (breach["ticket_id"], breach["due_at"]) == ("U1", "2026-04-20T16:00:00Z")
    met = next(o for o in t["outcomes"] if o["outcome"] == "met")
    assert (met["due_at"], met["elapsed_minutes"]) == ("2026-04-21T12:00:00Z", 720)
    assert any("contract terms in force when it was opened" in n for n in doc["notes"]), doc["notes"]
    page = render_html(r)
    assert "no ticket clocks" not in page and "2026-04-20 16:00" in page
    # March: before the contract, Starter's terms, no ticket: still "no ticket clocks"
    assert report_from_files(ev, c, "up", "2026-03", datetime(2026, 6, 1, 2, tzinfo=UTC)).ticket_clocks is False
