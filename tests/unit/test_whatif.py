"""`slaproc whatif` (SPEC §14): two replays of the same events, and the hand-checked difference."""
from __future__ import annotations

import csv
import io
import json
import shutil
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
    assert s["breaches"] == {"a": 11, "b": 9, "appear": 0, "disappear": 2, "move": 0, "change": 0,
                                   "rejected": 0, "pending": 0}
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
    assert report["summary"]["breaches"] == {"a": 1, "b": 3, "appear": 2, "disappear": 0, "move": 0, "change": 1,
                                                 "rejected": 0, "pending": 0}
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
    # a refund is one figure, the amount with its currency ("0.00": no refund stands; review F3)
    refunds = {(r["subject"], r["a"], r["b"]) for r in rows if r["field"] == "refund"}
    assert refunds == {("globex-ingest", "4.63 USD", "2.63 USD"), ("globex-rag", "1.72 USD", "0.00")}
    assert {(r["subject"], r["a"], r["b"]) for r in rows if r["kind"] == "month" and r["field"] == "met"} == {
        ("globex-rag", "false", "true")}


def test_cli_text_starts_with_the_totals(capsys):
    text = _cli(capsys)
    assert text.splitlines()[0] == "breaches standing: 11 -> 9 (0 appear, 2 disappear, 0 move, 0 change, 0 rejected, 0 pending)"
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
    for change in ("appears", "disappears", "moves", "changes", "rejected", "pending", "kind total"):
        assert change in " ".join(help_text.split())


# --- review 2026-12-04 (F3, F5, F6, F9): inputs inline ---------------------------------------

_ACME = """contracts:
  - customer_id: acme
    policy: vectorize
    plan: pro
    services:
      - {{service_id: acme-api, monthly_fee: "1000.00", currency: {currency}}}
    effective_from: "2026-04-01T00:00:00Z"
"""
_OUTAGE_300 = (
    '{"event_id":"o1s","type":"outage.started","occurred_at":"2026-04-10T10:00:00Z","outage_id":"o1","service_id":"acme-api"}\n'
    '{"event_id":"o1r","type":"outage.resolved","occurred_at":"2026-04-10T15:00:00Z","outage_id":"o1","service_id":"acme-api"}\n')


def _whatif(tmp_path: Path, capsys, events: str, a: str, b: str, until: str, fmt: str) -> str:
    (tmp_path / "events.jsonl").write_text(events)
    (tmp_path / "a.yaml").write_text(a)
    (tmp_path / "b.yaml").write_text(b)
    code = main(["whatif", str(tmp_path / "events.jsonl"), "--contracts", str(tmp_path / "a.yaml"),
                 "--versus", str(tmp_path / "b.yaml"), "--until", until, "-q", "--format", fmt])
    assert code == 0
    return capsys.readouterr().out


def _all_formats(tmp_path: Path, capsys, events: str, a: str, b: str, until: str) -> tuple[dict, list[dict], str]:
    data = json.loads(_whatif(tmp_path, capsys, events, a, b, until, "json"))
    rows = list(csv.DictReader(io.StringIO(_whatif(tmp_path, capsys, events, a, b, until, "csv"))))
    return data, rows, _whatif(tmp_path, capsys, events, a, b, until, "text")


def test_f3_a_refund_that_changes_currency_is_a_change_and_the_csv_has_the_totals(tmp_path, capsys):
    """Review F3. acme-api down 2026-04-10 10:00-15:00Z = 300 min; April 30 x 1440 = 43,200 min;
    Pro 99.5 %: threshold 43,200 x 0.5 / 100 = 216 min, excess 300 - 216 = 84 min;
    uptime 100 - 300 / 43,200 x 100 = 99.3056 -> 99.31 %, not met on both sides;
    refund 84 / 43,200 x 1,000 = 1.944 -> 1.94: USD on side A, EUR on side B (same fee, other currency).
    Before: `changes: []`, "no change", CSV header only."""
    data, rows, text = _all_formats(tmp_path, capsys, _OUTAGE_300, _ACME.format(currency="USD"),
                                    _ACME.format(currency="EUR"), "2026-05-01T02:00:00Z")
    [change] = data["changes"]
    assert (change["kind"], change["change"], change["service_id"], change["month"]) == (
        "month", "changes", "acme-api", "2026-04")
    assert (change["a"]["refund_amount"], change["a"]["currency"]) == ("1.94", "USD")
    assert (change["b"]["refund_amount"], change["b"]["currency"]) == ("1.94", "EUR")
    assert data["summary"]["months"]["changed"] == 1
    month_rows = [(r["field"], r["a"], r["b"]) for r in rows if r["kind"] == "month"]
    assert month_rows == [("refund", "1.94 USD", "1.94 EUR")]
    totals = {(r["subject"], r["field"]): (r["a"], r["b"]) for r in rows if r["kind"] == "total"}
    assert totals[("refunds", "USD")] == ("1.94", "0.00")
    assert totals[("refunds", "EUR")] == ("0.00", "1.94")
    assert totals[("breaches", "standing")] == ("0", "0")
    assert totals[("months", "closed")] == ("1", "1")
    assert totals[("attainment", "measured")] == ("0", "0")
    assert "month changes: acme acme-api 2026-04: refund 1.94 USD -> 1.94 EUR" in text
    assert "no change" not in text


_VZ = """contracts:
  - customer_id: vz
    policy: vectorize
    plan: pro
    services:
      - {service_id: vz-api, monthly_fee: "1000.00", currency: USD}
    effective_from: "2026-04-01T00:00:00Z"
"""
_VZ_1BD = _VZ.replace("    effective_from", """    overrides:
      targets:
        urgent: {first_response: [{amount: 4, unit: hours, clock: business, binding: false}, {amount: 1, unit: days, clock: business, binding: true}]}
    effective_from""")


def test_f5_a_breach_whose_target_changes_but_not_its_deadline_is_shown_and_counted(tmp_path, capsys):
    """Review F5. A1 urgent opened Tue 2026-04-14 12:00Z = 08:00 EDT (Vectorize: business hours
    07:00-19:00 New York, a business day = 12 h). Commitment: A 12 business hours = 11 h on Tue
    + 1 h from Wed 07:00; B 1 business day = 12 h: both due Wed 2026-04-15 08:00 EDT = 12:00Z,
    no reply -> breached on both sides at the same deadline, another target. Before: an empty text line, no CSV row, not counted in the summary."""
    data, rows, text = _all_formats(tmp_path, capsys, '{"event_id":"a1o","type":"ticket.opened",'
                                    '"occurred_at":"2026-04-14T12:00:00Z","ticket_id":"A1","customer_id":"vz",'
                                    '"priority":"urgent"}\n', _VZ, _VZ_1BD, "2026-04-20T00:00:00Z")
    [change] = data["changes"]
    assert change["change"] == "changes" and change["a"]["due_at"] == change["b"]["due_at"] == "2026-04-15T12:00:00Z"
    assert data["summary"]["breaches"]["change"] == 1
    breach_rows = [(r["change"], r["field"], r["a"], r["b"]) for r in rows if r["kind"] == "breach"]
    assert breach_rows == [("changes", "target", "12 business hours", "1 business day")]
    assert text.splitlines()[0].startswith("breaches standing: 2 -> 2 (0 appear, 0 disappear, 0 move, 1 change")
    line = next(x for x in text.splitlines() if "A1" in x)
    assert line == "  breach changes: vz A1 first_response commitment cycle 1: target 12 business hours -> 1 business day"


_SW_PRO = """contracts:
  - customer_id: sw
    policy: vectorize
    plan: pro
    services:
      - {service_id: sw-svc, monthly_fee: "100.00", currency: USD}
    effective_from: "2026-04-01T00:00:00Z"
  - customer_id: onlya
    policy: vectorize
    plan: pro
    services:
      - {service_id: onlya-api, monthly_fee: "500.00", currency: USD}
    effective_from: "2026-04-01T00:00:00Z"
"""
_SW_NEPTUNE = """contracts:
  - customer_id: sw
    policy: neptune
    plan: basic
    timezone: America/New_York
    holiday_country: US
    services:
      - {service_id: sw-svc, monthly_fee: "100.00", currency: USD}
    effective_from: "2026-04-01T00:00:00Z"
"""


def test_f6_a_ticket_rejected_on_one_side_is_rejected_not_a_breach_that_disappears(tmp_path, capsys):
    """Review F6. T5 urgent for `sw`: Vectorize Pro on A, Neptune Basic on B (no `urgent` priority:
    dead letter invalid_field); T4 for `onlya`, a customer only A has (B: dead letter
    unknown_customer). On A both open Tue 2026-04-14 12:00Z = 08:00 EDT (07:00-19:00) with no
    reply: urgent objective 4 bh -> 12:00 EDT = 16:00Z, commitment 12 bh -> Wed 08:00 EDT =
    12:00Z, 2 breaches each = 4 on A, 0 on B.
    Before: 4 breaches "disappear", no dead letter mentioned."""
    events = "".join(
        f'{{"event_id":"{t}o","type":"ticket.opened","occurred_at":"2026-04-14T12:00:00Z","ticket_id":"{t}",'
        f'"customer_id":"{c}","priority":"urgent"}}\n' for t, c in (("T4", "onlya"), ("T5", "sw")))
    data, rows, text = _all_formats(tmp_path, capsys, events, _SW_PRO, _SW_NEPTUNE, "2026-04-20T00:00:00Z")
    s = data["summary"]
    assert (s["breaches"]["a"], s["breaches"]["b"], s["breaches"]["disappear"], s["breaches"]["rejected"]) == (4, 0, 0, 4)
    assert s["dead_letters"] == {"a": 0, "b": 2, "only_a": 0, "only_b": 2}
    reasons = {(c["ticket_id"], c["binding"]): (c["change"], c["rejected"]["b"]["reason"])
               for c in data["changes"] if c["kind"] == "breach"}
    assert reasons == {("T4", False): ("rejected", "unknown_customer"), ("T4", True): ("rejected", "unknown_customer"),
                       ("T5", False): ("rejected", "invalid_field"), ("T5", True): ("rejected", "invalid_field")}
    rejected_rows = {(r["subject"], r["metric"]): r["b"] for r in rows if r["kind"] == "breach" and r["field"] == "rejected"}
    assert rejected_rows[("T5", "first_response objective cycle 1")].startswith("invalid_field: priority 'urgent'")
    totals = {(r["subject"], r["field"]): (r["a"], r["b"]) for r in rows if r["kind"] == "total"}
    assert totals[("dead_letters", "count")] == ("0", "2")
    assert "dead letters: 0 -> 2 (0 on A only, 2 on B only)" in text
    assert "breach rejected: sw T5 first_response objective cycle 1" in text
    assert "disappears" not in text.split("\n", 1)[1].replace("0 disappear", "")


_RS = """contracts:
  - customer_id: rs
    policy: rescale
    plan: basic
    region: americas
    holiday_country: US
    services:
      - {{service_id: rs-hpc, monthly_fee: "2000.00", currency: USD}}
    overrides:
      targets:
        urgent: {{first_response: {{amount: {hours}, unit: hours, clock: business}}}}
        high: {{first_response: {{amount: 2, unit: hours, clock: business}}}}
        normal: {{first_response: {{amount: 8, unit: hours, clock: business}}}}
        low: {{first_response: {{amount: 1, unit: days, clock: business}}}}
    effective_from: "2026-04-01T00:00:00Z"
"""


def test_f9_a_quarter_and_a_clock_still_open_at_until_are_pending_not_gone(tmp_path, capsys):
    """Review F9. R1 urgent for `rs` (Rescale americas, 06:00-18:00 Los Angeles) opened
    2026-06-30T23:00Z = 16:00 PDT; provider reply 2026-07-01T17:00Z = 10:00 PDT.
    A (1 bh): due 17:00 PDT = 2026-07-01T00:00Z, breached; Q2 reported at end + 1 h = 01:00Z: 0/1.
    B (12 bh): 2 bh on Jun 30 + 10 bh from Jul 1 06:00 PDT -> 16:00 PDT = 23:00Z: still running at
    --until 2026-07-01T02:00Z, so B's Q2 waits for its outcome (at most until end + 7 days):
    both are pending on B, not gone. Before: "breach disappears", "attainment disappears"."""
    events = ('{"event_id":"r1o","type":"ticket.opened","occurred_at":"2026-06-30T23:00:00Z","ticket_id":"R1",'
              '"customer_id":"rs","priority":"urgent"}\n'
              '{"event_id":"r1r","type":"ticket.replied","occurred_at":"2026-07-01T17:00:00Z","ticket_id":"R1",'
              '"author":"provider","public":true}\n')
    data, rows, text = _all_formats(tmp_path, capsys, events, _RS.format(hours=1), _RS.format(hours=12),
                                    "2026-07-01T02:00:00Z")
    changes = {c["kind"]: c for c in data["changes"]}
    assert changes["breach"]["change"] == "pending"
    assert changes["breach"]["pending"]["b"] == {"due_at": "2026-07-01T23:00:00Z"}
    assert changes["attainment"]["change"] == "pending"
    assert changes["attainment"]["pending"]["b"]["waiting_until"] == "2026-07-08T00:00:00Z"
    s = data["summary"]
    assert (s["breaches"]["disappear"], s["breaches"]["pending"], s["attainment"]["pending"]) == (0, 1, 1)
    pending_rows = {(r["kind"], r["b"]) for r in rows if r["field"] == "pending"}
    assert pending_rows == {("breach", "running, due 2026-07-01T23:00:00Z"),
                            ("attainment", "waiting for outcomes, at most until 2026-07-08T00:00:00Z")}
    assert "breach pending: rs R1 first_response commitment cycle 1" in text
    assert "attainment pending: rs first_response 2026-Q2" in text
    assert "disappears" not in text


def test_f6_a_catalog_version_without_a_priority_rejects_tickets_on_side_b(tmp_path):
    """Review F6 with catalogs. Side B's catalog adds vectorize 2026.11.2 from 2026-04-15 without
    `low`. Vectorize Pro: 07:00-19:00 New York, business day = 12 h; low 2 bd / 2 bd, high 12 bh.
    - L1 low opened Tue 2026-04-14 (before the version): 2026.11.1 on both sides, same outcome.
    - L2 low opened Thu 2026-04-16 12:00Z = 08:00 EDT: A due 2 bd = 11 h Thu + 12 h Fri + 1 h Mon
      = Mon 2026-04-20 08:00 EDT = 12:00Z (objective and commitment); B: `low` is no priority of
      2026.11.2 -> the opening is a dead letter, the ticket is not measured: `rejected`, 2.
    - L3 high opened Thu 08:00 EDT, provider lowers it to low at 13:00Z: A measures it as low,
      due Mon 12:00Z; B rejects the priority change and keeps high: 12 bh -> Fri 2026-04-17
      08:00 EDT = 12:00Z. Measured on both sides: the 2 breaches move, the rejection shown.
    Before: L2's breaches "disappear", no dead letter anywhere."""
    import yaml
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(ROOT / "policies" / "catalog", catalog_dir)
    policy = yaml.safe_load((catalog_dir / "vectorize.yaml").read_text())
    policy.update(catalog_version="2026.11.2", effective_from="2026-04-15T00:00:00Z",
                  priorities=[p for p in policy["priorities"] if p != "low"])
    for plan in policy["plans"].values():
        plan["targets"].pop("low", None)
    (catalog_dir / "vectorize@2026.11.2.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    (tmp_path / "vz.yaml").write_text(_VZ)
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in [
        {"event_id": "l1", "type": "ticket.opened", "occurred_at": "2026-04-14T12:00:00Z", "ticket_id": "L1",
         "customer_id": "vz", "priority": "low"},
        {"event_id": "l2", "type": "ticket.opened", "occurred_at": "2026-04-16T12:00:00Z", "ticket_id": "L2",
         "customer_id": "vz", "priority": "low"},
        {"event_id": "l3", "type": "ticket.opened", "occurred_at": "2026-04-16T12:00:00Z", "ticket_id": "L3",
         "customer_id": "vz", "priority": "high"},
        {"event_id": "l3p", "type": "ticket.priority_changed", "occurred_at": "2026-04-16T13:00:00Z",
         "ticket_id": "L3", "priority": "low", "requested_by": "provider"}]))
    a, b = replay_both(tmp_path / "events.jsonl", Side(tmp_path / "vz.yaml", default_catalog()),
                       Side(tmp_path / "vz.yaml", load_catalog(catalog_dir)),
                       datetime(2026, 4, 30, tzinfo=timezone.utc), None, progress=None)
    report = compare(a, b)
    s = report["summary"]
    assert (s["breaches"]["rejected"], s["breaches"]["move"], s["breaches"]["disappear"]) == (2, 2, 0)
    assert s["dead_letters"] == {"a": 0, "b": 2, "only_a": 0, "only_b": 2}
    got = [(c["ticket_id"], c["binding"], c["change"], (c["a"] or {}).get("due_at"), (c["b"] or {}).get("due_at"),
            c["rejected"]["b"]["reason"]) for c in report["changes"]]
    assert got == [("L2", False, "rejected", "2026-04-20T12:00:00Z", None, "invalid_field"),
                   ("L2", True, "rejected", "2026-04-20T12:00:00Z", None, "invalid_field"),
                   ("L3", False, "moves", "2026-04-20T12:00:00Z", "2026-04-17T12:00:00Z", "invalid_field"),
                   ("L3", True, "moves", "2026-04-20T12:00:00Z", "2026-04-17T12:00:00Z", "invalid_field")]
