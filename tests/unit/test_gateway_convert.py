"""`slaproc convert` (SPEC §13): webhook bodies per line -> native events; replayed, the hand-computed outcome."""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from streams.cli import main
from streams.replay import replay_file

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "webhooks"
MAPPING = REPO / "samples" / "mapping.yaml"

# Delivery order as the tools would send them, with a re-sent firing notification and a
# duplicated Zendesk delivery (the same envelope).
ALERTMANAGER = ["alertmanager_firing.json", "alertmanager_firing.json", "alertmanager_resolved.json",
                "alertmanager_partial_resolved.json", "alertmanager_b_resolved_only.json"]
ZENDESK = ["zendesk_ticket_created.json", "zendesk_comment_customer.json", "zendesk_comment_private.json",
           "zendesk_comment_public.json", "zendesk_comment_public.json", "zendesk_status_solved.json"]


def jsonl(names: list[str]) -> bytes:
    return b"".join(json.dumps(json.loads((FIXTURES / n).read_bytes())).encode() + b"\n" for n in names)


def run_convert(capfd, source: str, payloads: Path, *extra: str) -> tuple[int, list[dict], str]:
    code = main(["convert", "--from", source, "--mapping", str(MAPPING), str(payloads), *extra])
    out, err = capfd.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_convert_writes_native_events_and_lists_what_it_ignored(tmp_path, capfd):
    path = tmp_path / "am.jsonl"
    path.write_bytes(jsonl(ALERTMANAGER))
    code, events, err = run_convert(capfd, "alertmanager", path)
    assert code == 0
    assert [e["type"] for e in events] == ["outage.started"] * 4 + ["outage.started", "outage.resolved"] + \
        ["outage.started", "outage.started", "outage.resolved"] + ["outage.started", "outage.resolved"]
    assert len({e["event_id"] for e in events}) == 6   # the re-sent notifications repeat ids, never invent new ones
    assert "line 1: ignored: alerts[2]: labels do not match alertmanager.match" in err
    _, _, quiet = run_convert(capfd, "alertmanager", path, "--quiet")
    assert quiet == ""


def test_rejected_lines_are_named_and_the_exit_status_says_so(tmp_path, capfd):
    path = tmp_path / "zd.jsonl"
    path.write_bytes(jsonl(["zendesk_ticket_created.json"]) + b"{not json\n\n" + jsonl(["zendesk_created_no_org.json"]))
    code, events, err = run_convert(capfd, "zendesk", path)
    assert code == 1
    assert [e["type"] for e in events] == ["ticket.opened"]
    assert "line 2: not valid JSON" in err
    assert "line 4: detail.organization_id: missing" in err
    assert "2 line(s) rejected" in err


def test_truncated_alerts_are_warned_about(tmp_path, capfd):
    path = tmp_path / "am.jsonl"
    path.write_bytes(jsonl(["alertmanager_truncated.json"]))
    code, _, err = run_convert(capfd, "alertmanager", path)
    assert code == 0 and "Alertmanager dropped 2 alert(s)" in err and "max_alerts: 0" in err


def test_a_bad_mapping_or_missing_section_stops_before_reading(tmp_path, capfd):
    bad = tmp_path / "m.yaml"
    bad.write_text("alertmanager: {service_lable: service}\n")
    assert main(["convert", "--from", "alertmanager", "--mapping", str(bad), str(tmp_path / "none.jsonl")]) == 2
    assert "did you mean 'service_label'" in capfd.readouterr().err
    only_am = tmp_path / "am.yaml"
    only_am.write_text("alertmanager: {service_label: service}\n")
    assert main(["convert", "--from", "jira", "--mapping", str(only_am), str(tmp_path / "none.jsonl")]) == 2
    assert "no jira section" in capfd.readouterr().err


def test_help_explains(capsys):
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    text = capsys.readouterr().out
    assert "--from {alertmanager,zendesk,jira}" in text and "sla.raw-webhooks" in text and "example:" in text


def test_converted_scenario_replayed_gives_the_hand_computed_outcome(tmp_path, capfd):
    """README.md of the fixtures: api-prod March 2026 = 44,640 min; A 180 + B 90 min all_users,
    P partial (not downtime), D filtered out -> 270 min. Ticket 5158 critical, opened 10:00Z,
    first public staff reply 13:00Z: first response (2 h calendar) breached at 12:00Z."""
    (tmp_path / "am.jsonl").write_bytes(jsonl(ALERTMANAGER))
    (tmp_path / "zd.jsonl").write_bytes(jsonl(ZENDESK))
    _, am, _ = run_convert(capfd, "alertmanager", tmp_path / "am.jsonl")
    _, zd, _ = run_convert(capfd, "zendesk", tmp_path / "zd.jsonl")
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in am + zd))
    buf = io.BytesIO()
    replay_file(events, FIXTURES / "contracts.yaml", datetime(2026, 4, 1, 2, tzinfo=timezone.utc), buf, progress=None)
    outputs = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [o for o in outputs if o["type"] == "dead_letter"] == []
    month = [o for o in outputs if o["type"] == "uptime.month_closed"]
    assert [(m["customer_id"], m["service_id"], m["month"], m["total_minutes"], m["downtime_minutes"],
             m["uptime_percent"], m["met"]) for m in month] == [("vp", "api-prod", "2026-03", 44640, 270, "99.40", False)]
    refund = [o for o in outputs if o["type"] == "refund.eligible"]
    # threshold 44,640 x 0.5 % = 223.2 min; excess 46.8 min; 46.8 / 44,640 x 1,000.00 = 1.0484 -> 1.05
    assert [(r["threshold_minutes"], r["excess_minutes"], r["refund_amount"]) for r in refund] == [(223.2, 46.8, "1.05")]
    breaches = [o for o in outputs if o["type"] == "sla.breached" and o["metric"] == "first_response"]
    assert [(b["ticket_id"], b["customer_id"], b["priority"], b["started_at"], b["due_at"]) for b in breaches] == [
        ("5158", "nx", "critical", "2026-03-03T10:00:00Z", "2026-03-03T12:00:00Z")]


def test_a_bad_alert_is_named_and_the_lines_other_alerts_are_converted(tmp_path, capfd):
    """Review ingest.md F2: convert maps alert by alert, as the gateway does."""
    payload = json.loads((FIXTURES / "alertmanager_firing.json").read_bytes())
    payload["alerts"][1]["labels"]["sla_scope"] = "degraded"
    path = tmp_path / "am.jsonl"
    path.write_text(json.dumps(payload) + "\n")
    code, events, err = run_convert(capfd, "alertmanager", path, "--quiet")
    assert code == 1 and [e["scope"] for e in events] == ["all_users"]
    assert "line 1: rejected: alerts[1].labels.sla_scope: 'degraded' is neither" in err
