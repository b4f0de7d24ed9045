"""The `slaproc` command line: replay and explain-month (SPEC §9).

Most cases call `streams.cli.main` in-process (fast); a few run the installed console script
to check what a user really gets (exit codes, stdout / stderr, no traceback).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streams import cli
from tests.support import contracts_yaml, wire

REPO = Path(__file__).resolve().parents[2]
SLAPROC = Path(sys.executable).parent / "slaproc"


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    cmd = [str(SLAPROC)] if SLAPROC.exists() else [sys.executable, "-m", "streams.cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, timeout=60)


@pytest.fixture
def files(tmp_path: Path):
    """An NM critical ticket opened Tue 2026-02-03 15:00Z (due 15:30Z), a Vectorize Pro outage
    10:00-14:00Z on 2026-02-10, and one bad line."""
    events = [
        wire("ticket.opened", "2026-02-03T10:00:00-05:00", "e1", ticket_id="T1", customer_id="nm", priority="critical"),
        wire("outage.started", "2026-02-10T10:00:00Z", "e2", service_id="vp-api", outage_id="o1"),
        wire("outage.resolved", "2026-02-10T14:00:00Z", "e3", service_id="vp-api", outage_id="o1"),
    ]
    ev = tmp_path / "events.jsonl"
    ev.write_text("\n".join(json.dumps(e) for e in events) + "\n{broken\n")
    c = tmp_path / "contracts.yaml"
    c.write_text(contracts_yaml("nm", "vp"))
    return ev, c


def replay_in_process(capsysbinary, *args: str) -> tuple[int, bytes, bytes]:
    code = cli.main(["replay", *args, "-q"])
    out, err = capsysbinary.readouterr()
    return code, out, err


# =========================================================================== replay


def test_replay_help_explains_inputs_with_an_example():
    p = run_cli("replay", "--help")
    assert p.returncode == 0
    text = p.stdout.decode()
    for fragment in ("EVENTS.jsonl", "--contracts", "CONTRACTS.yaml", "--until", "example", "slaproc replay",
                     "occurred_at", "dead_letter"):
        assert fragment in text, fragment


def test_the_help_example_runs(tmp_path: Path):
    p = run_cli("replay", "samples/events.jsonl", "--contracts", "samples/contracts.yaml",
                "--until", "2026-05-01T02:00:00Z")
    assert p.returncode == 0, p.stderr.decode()
    lines = p.stdout.decode().splitlines()
    assert lines and all(json.loads(x)["type"] for x in lines)


def test_replay_writes_sorted_json_lines_and_until_fires_deadlines(files, capsysbinary):
    ev, c = files
    code, out, _ = replay_in_process(capsysbinary, str(ev), "--contracts", str(c))
    assert code == 0
    rows = [json.loads(x) for x in out.splitlines()]
    # without --until, time stops at the last event (2026-02-10T14:00Z): the 15:30Z deadline of
    # 2026-02-03 has passed, so the breach is there; the month of February is not closed yet
    assert [(r["type"], r["occurred_at"]) for r in rows if r["type"] == "sla.breached"] == [
        ("sla.breached", "2026-02-03T15:30:00Z")]
    assert [r["reason"] for r in rows if r["type"] == "dead_letter"] == ["invalid_json"]
    assert [r["month"] for r in rows if r["type"] == "uptime.month_closed"] == ["2026-01"]
    assert [r["occurred_at"] for r in rows] == sorted(r["occurred_at"] for r in rows)
    # with --until after March 1st 01:00Z, February closes: 240 min down > 201.6 min threshold
    code, out, _ = replay_in_process(capsysbinary, str(ev), "--contracts", str(c), "--until", "2026-03-01T02:00:00Z")
    rows = [json.loads(x) for x in out.splitlines()]
    feb = [r for r in rows if r.get("month") == "2026-02"]
    assert [(r["type"], r["occurred_at"]) for r in feb] == [
        ("uptime.month_closed", "2026-03-01T01:00:00Z"), ("refund.eligible", "2026-03-01T01:00:00Z")]
    assert (feb[0]["downtime_minutes"], feb[0]["uptime_percent"], feb[1]["refund_amount"]) == (240, "99.40", "0.95")


def test_replay_output_is_identical_across_runs(files, capsysbinary):
    ev, c = files
    first = replay_in_process(capsysbinary, str(ev), "--contracts", str(c), "--until", "2026-03-02T00:00:00Z")
    second = replay_in_process(capsysbinary, str(ev), "--contracts", str(c), "--until", "2026-03-02T00:00:00Z")
    assert first[0] == second[0] == 0
    assert first[1] == second[1] and first[1]
    p = run_cli("replay", str(ev), "--contracts", str(c), "--until", "2026-03-02T00:00:00Z", "-q")
    assert p.returncode == 0 and p.stdout == first[1]


@pytest.mark.parametrize("until, fragment", [
    ("yesterday", "RFC 3339"),
    ("2026-02-01T00:00:00", "offset"),
    ("2026-02-30T00:00:00Z", "RFC 3339"),
])
def test_bad_until_is_a_usage_error(files, capsysbinary, until, fragment):
    ev, c = files
    with pytest.raises(SystemExit) as exc:
        cli.main(["replay", str(ev), "--contracts", str(c), "--until", until])
    assert exc.value.code == 2
    err = capsysbinary.readouterr().err.decode()
    assert "--until" in err and fragment in err and until in err


def test_missing_contracts_file_exits_2_with_a_clear_message(files, tmp_path: Path):
    ev, _ = files
    missing = tmp_path / "nope.yaml"
    p = run_cli("replay", str(ev), "--contracts", str(missing))
    assert p.returncode == 2
    err = p.stderr.decode()
    assert "slaproc replay" in err and str(missing) in err
    assert "Traceback" not in err
    assert p.stdout == b""


def test_missing_events_file_exits_2(files, capsysbinary, tmp_path: Path):
    _, c = files
    code, out, err = replay_in_process(capsysbinary, str(tmp_path / "none.jsonl"), "--contracts", str(c))
    assert code == 2 and out == b""
    assert b"none.jsonl" in err


def test_invalid_contracts_file_names_the_field(files, capsysbinary, tmp_path: Path):
    ev, _ = files
    bad = tmp_path / "bad.yaml"
    bad.write_text("contracts:\n  - {customer_id: rs, policy: rescale, plan: production}\n")
    code, out, err = replay_in_process(capsysbinary, str(ev), "--contracts", str(bad))
    assert code == 2 and out == b""
    text = err.decode()
    assert "bad.yaml" in text and "overrides.targets" in text and "missing" in text


def test_missing_contracts_option_is_a_usage_error(files, capsysbinary):
    ev, _ = files
    with pytest.raises(SystemExit) as exc:
        cli.main(["replay", str(ev)])
    assert exc.value.code == 2
    assert b"--contracts" in capsysbinary.readouterr().err


def test_unknown_argument_is_a_usage_error(files, capsysbinary):
    ev, c = files
    with pytest.raises(SystemExit) as exc:
        cli.main(["replay", str(ev), "--contracts", str(c), "--frobnicate"])
    assert exc.value.code == 2
    assert b"--frobnicate" in capsysbinary.readouterr().err


# =========================================================================== explain-month


def test_explain_month_prints_intervals_and_arithmetic(files, capsysbinary):
    # Vectorize Pro 99.5 %, 1,000 USD a month; February 2026 = 28 x 1,440 = 40,320 min.
    # Outage 10:00-14:00Z on 10 Feb = 240 min. threshold = 40,320 x 0.5 / 100 = 201.6 min;
    # uptime = 100 - 240 / 40,320 x 100 = 99.4047... -> 99.40 < 99.5: not met;
    # excess = 240 - 201.6 = 38.4 min; refund = 38.4 / 40,320 x 1,000 = 0.952... -> 0.95 USD;
    # claim deadline = 1 March + 30 days = 2026-03-31T00:00Z.
    ev, c = files
    code = cli.main(["explain-month", "vp", "vp-api", "2026-02", str(ev), "--contracts", str(c)])
    text = capsysbinary.readouterr().out.decode()
    assert code == 0
    for fragment in ("2026-02-10 10:00:00Z - 2026-02-10 14:00:00Z", "240 min", "40320 min", "201.6 min",
                     "38.4 min", "99.40", "NOT MET", "0.95 USD", "2026-03-31 00:00:00Z", "1000.00"):
        assert fragment in text, fragment


def test_explain_month_of_a_clean_month_says_met(files, capsysbinary):
    ev, c = files
    code = cli.main(["explain-month", "vp", "vp-api", "2026-01", str(ev), "--contracts", str(c)])
    text = capsysbinary.readouterr().out.decode()
    assert code == 0
    assert "100.00" in text and "MET" in text and "NOT MET" not in text and "44640 min" in text


@pytest.mark.parametrize("args, fragment", [
    (["nobody", "vp-api", "2026-02"], "nobody"),
    (["vp", "other-svc", "2026-02"], "other-svc"),
    (["nm", "x", "2026-02"], "x"),
])
def test_explain_month_unknown_customer_or_service_exits_2(files, capsysbinary, args, fragment):
    ev, c = files
    code = cli.main(["explain-month", *args, str(ev), "--contracts", str(c)])
    out, err = capsysbinary.readouterr()
    assert code == 2 and out == b""
    assert fragment in err.decode() and "slaproc explain-month" in err.decode()


@pytest.mark.parametrize("month", ["2026-13", "Feb", "2026-2"])
def test_explain_month_malformed_month_exits_2(files, capsysbinary, month):
    ev, c = files
    code = cli.main(["explain-month", "vp", "vp-api", month, str(ev), "--contracts", str(c)])
    out, err = capsysbinary.readouterr()
    assert code == 2 and out == b""
    assert month in err.decode() and "YYYY-MM" in err.decode()


def test_replay_of_a_directory_exits_2(files, capsysbinary, tmp_path: Path):
    _, c = files
    code, out, err = replay_in_process(capsysbinary, str(tmp_path), "--contracts", str(c))
    assert code == 2 and out == b""
    assert str(tmp_path) in err.decode()


def test_explain_month_of_a_month_past_its_claim_window_recomputes_it(files, capsysbinary):
    # issue 11 / SPEC §10: with events running months past February's claim window the
    # processor prunes February's outages; explain-month must still show its real figures
    ev, c = files
    later = wire("outage.started", "2026-06-10T10:00:00Z", "e9", service_id="vp-api", outage_id="o9")
    ev.write_text(ev.read_text() + json.dumps(later) + "\n")
    code = cli.main(["explain-month", "vp", "vp-api", "2026-02", str(ev), "--contracts", str(c)])
    text = capsysbinary.readouterr().out.decode()
    assert code == 0
    for fragment in ("240 min", "99.40", "NOT MET", "0.95 USD"):
        assert fragment in text, fragment
