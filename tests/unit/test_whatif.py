"""`slaproc whatif` (SPEC §14): two replays of the same events, and the hand-checked difference."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from policies.catalog import default_catalog, load_catalog
from streams.cli import build_parser, main
from streams.whatif import Outcome, Side, compare, replay_both

ROOT = Path(__file__).parents[2]
SAMPLES = ROOT / "samples"
GOLDEN = ROOT / "tests" / "golden" / "nm_catalog_version_midmonth"
UNTIL = "2026-05-01T02:00:00Z"


def _samples_report() -> dict:
    catalog = default_catalog()
    a, b = replay_both(SAMPLES / "events.jsonl", Side(SAMPLES / "contracts.yaml", catalog),
                       Side(SAMPLES / "contracts-renegotiated.yaml", catalog),
                       datetime(2026, 5, 1, 2, tzinfo=timezone.utc), None, progress=None)
    return compare(a, b)


def test_renegotiated_samples_give_the_hand_checked_difference():
    """samples/contracts-renegotiated.yaml: aerofoil Low first response 1 -> 3 business days
    (24x5 UTC, 24 h days); globex uptime commitment 99.9 -> 99.8 %.

    - T0000001 (Low, opened Mon 16 Mar 11:31:03Z, first provider reply Wed 18 Mar 16:19:29Z) and
      T0000009 (opened Mon 30 Mar 23:48:07Z, reply Wed 1 Apr 04:22:05Z) breached 1 day; under
      3 days (due Thu 19 Mar 11:31:03Z, Thu 2 Apr 23:48:07Z) both are met: 2 breaches disappear.
    - aerofoil 2026-Q1 attainment: the same 3 tickets measured, met 0 -> 2: 2/3 = 66.67 %.
    - globex-rag March: uptime 99.87 >= 99.8 is met: its refund 1.72 USD goes.
      globex-ingest March: downtime 148 min 2 s, uptime 99.67 < 99.8, not met; threshold
      44,640 x 0.2 / 100 = 89.28 min; excess 148.0333 - 89.28 = 58.7533 min;
      refund 58.7533 / 44,640 x 2,000 USD = 2.632 -> 2.63 (was 4.63).
    - refunds USD: 1.94 (acme April) + 1.72 + 4.63 = 8.29 -> 1.94 + 2.63 = 4.57, change -3.72.
    """
    report = _samples_report()
    s = report["summary"]
    assert s["breaches"] == {"a": 11, "b": 9, "appear": 0, "disappear": 2, "move": 0}
    assert s["refunds"] == {"USD": {"a": "8.29", "b": "4.57", "change": "-3.72"}}
    assert s["attainment"]["a"]["met"] == 3 and s["attainment"]["b"]["met"] == 5
    assert s["attainment"]["changed"] == 1
    gone = [(c["ticket_id"], c["a"]["due_at"]) for c in report["changes"] if c["kind"] == "breach"]
    assert gone == [("T0000001", "2026-03-17T11:31:03Z"), ("T0000009", "2026-03-31T23:48:07Z")]
    attainment = [c for c in report["changes"] if c["kind"] == "attainment"]
    assert [(c["customer_id"], c["quarter"], c["a"], c["b"]) for c in attainment] == [
        ("aerofoil-dynamics", "2026-Q1", {"measured": 3, "met": 0, "attainment_percent": "0.00"},
         {"measured": 3, "met": 2, "attainment_percent": "66.67"})]
    months = {(c["service_id"], c["month"]): (c["a"]["met"], c["a"]["refund_amount"], c["b"]["met"], c["b"]["refund_amount"])
              for c in report["changes"] if c["kind"] == "month"}
    assert months == {("globex-ingest", "2026-03"): (False, "4.63", False, "2.63"),
                      ("globex-rag", "2026-03"): (False, "1.72", True, "0.00")}


def test_a_catalog_version_compared_with_the_packaged_catalog():
    """The golden scenario's events, packaged catalog (one version) vs the scenario's catalog
    (v2 halves High from Wed 21 Oct 00:00 New York): only the tickets opened from then on change
    (README of the scenario): NMV-5 and NMV-3 breach under v2; NMV-0, 1 and 2 keep v1, NMV-4 is met
    under both, NMV-6 (Medium, the same target in both versions) breaches under both."""
    until = datetime(2026, 10, 24, tzinfo=timezone.utc)
    a, b = replay_both(GOLDEN / "events.jsonl", Side(GOLDEN / "contracts.yaml", default_catalog()),
                       Side(GOLDEN / "contracts.yaml", load_catalog(GOLDEN / "catalog")), until, None, progress=None)
    report = compare(a, b)
    assert report["summary"]["breaches"] == {"a": 1, "b": 3, "appear": 2, "disappear": 0, "move": 0}
    # NMV-6's breach stands on both sides at the same deadline, measured under v2 on side B
    assert [(c["ticket_id"], c["change"], c["b"]["policy_version"], c["b"]["due_at"])
            for c in report["changes"]] == [("NMV-3", "appears", "2026.11.2", "2026-10-21T15:00:00Z"),
                                            ("NMV-5", "appears", "2026.11.2", "2026-10-21T13:00:00Z"),
                                            ("NMV-6", "changes", "2026.11.2", "2026-10-23T14:00:00Z")]


def test_a_retracted_breach_and_a_withdrawn_refund_do_not_stand():
    records = [
        {"type": "sla.breached", "event_id": "b1", "ticket_id": "T", "metric": "first_response", "binding": True,
         "cycle": 1, "customer_id": "c", "priority": "high", "policy_version": "1", "due_at": "x", "target": {}},
        {"type": "sla.breach_retracted", "breach_event_id": "b1"},
        {"type": "uptime.month_closed", "customer_id": "c", "service_id": "s", "month": "2026-03", "revision": 1,
         "uptime_percent": "99.00", "commitment_percent": "99.50", "met": False},
        {"type": "refund.eligible", "customer_id": "c", "service_id": "s", "month": "2026-03", "revision": 1,
         "refund_amount": "3.00", "currency": "EUR"},
        {"type": "uptime.month_closed", "customer_id": "c", "service_id": "s", "month": "2026-03", "revision": 2,
         "uptime_percent": "99.60", "commitment_percent": "99.50", "met": True},
        {"type": "refund.withdrawn", "customer_id": "c", "service_id": "s", "month": "2026-03", "revision": 2},
    ]
    outcome = Outcome.of(records)
    assert outcome.breaches == {}
    assert outcome.refund_totals() == {}
    assert outcome.month_figures(("c", "s", "2026-03"))["uptime_percent"] == "99.60"


def _cli(capsys, *extra: str) -> str:
    code = main(["whatif", str(SAMPLES / "events.jsonl"), "--contracts", str(SAMPLES / "contracts.yaml"),
                 "--versus", str(SAMPLES / "contracts-renegotiated.yaml"), "--until", UNTIL, "-q", *extra])
    assert code == 0
    return capsys.readouterr().out


def test_cli_json_has_summary_and_changes(capsys):
    data = json.loads(_cli(capsys, "--format", "json"))
    assert set(data) == {"summary", "changes"}
    assert data["summary"]["refunds"]["USD"]["change"] == "-3.72"


def test_cli_csv_has_one_row_per_changed_figure(capsys):
    rows = list(csv.DictReader(io.StringIO(_cli(capsys, "--format", "csv"))))
    refunds = {(r["subject"], r["a"], r["b"]) for r in rows if r["field"] == "refund_amount"}
    assert refunds == {("globex-ingest", "4.63", "2.63"), ("globex-rag", "1.72", "0.00")}
    assert {(r["subject"], r["a"], r["b"]) for r in rows if r["kind"] == "month" and r["field"] == "met"} == {
        ("globex-rag", "false", "true")}


def test_cli_text_starts_with_the_totals(capsys):
    text = _cli(capsys)
    assert text.splitlines()[0] == "breaches standing: 11 -> 9 (0 appear, 2 disappear, 0 move)"
    assert "refunds USD: 8.29 -> 4.57 (-3.72)" in text


def test_cli_same_sides_say_no_change(capsys):
    code = main(["whatif", str(SAMPLES / "events.jsonl"), "--contracts", str(SAMPLES / "contracts.yaml"),
                 "--until", UNTIL, "-q"])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no change"


def test_cli_a_bad_catalog_directory_is_one_line_and_exit_2(capsys, tmp_path):
    code = main(["whatif", str(SAMPLES / "events.jsonl"), "--contracts", str(SAMPLES / "contracts.yaml"),
                 "--versus-catalog", str(tmp_path), "--until", UNTIL, "-q"])
    assert code == 2
    assert "no catalog files" in capsys.readouterr().err


def test_help_explains_both_sides():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["whatif", "--help"])
    help_text = build_parser()._subparsers._group_actions[0].choices["whatif"].format_help()
    for flag in ("--contracts", "--versus", "--catalog", "--versus-catalog", "--until", "--format"):
        assert flag in help_text
