"""schemas/*.json are generated from the models and must be kept up to date (`make schemas`)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from events import schema
from events.codec import encode
from events.models import INPUT_MODELS, OUTPUT_MODELS, SlaBreached


def test_committed_schemas_match_the_models():
    problems = schema.stale_files()
    assert problems == [], "schemas/ is out of date; run `make schemas`: " + ", ".join(problems)


def test_check_reports_stale_missing_and_orphaned_files(tmp_path: Path, capsys):
    assert schema.main(["--write", "--dir", str(tmp_path)]) == 0
    assert schema.main(["--check", "--dir", str(tmp_path)]) == 0

    (tmp_path / "sla.met.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "ticket.closed.json").unlink()
    (tmp_path / "ticket.deleted.json").write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert schema.main(["--check", "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "sla.met.json (stale)" in err
    assert "ticket.closed.json (missing)" in err
    assert "ticket.deleted.json (no such event type)" in err

    schema.main(["--write", "--dir", str(tmp_path)])
    assert schema.stale_files(tmp_path) == []
    assert not (tmp_path / "ticket.deleted.json").exists()


def test_one_file_per_event_type_with_sorted_keys_and_newline():
    files = schema.expected_files()
    assert set(files) == {f"{t}.json" for t in (*INPUT_MODELS, *OUTPUT_MODELS)}
    text = files["ticket.opened.json"]
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_input_schemas_require_type_but_not_defaulted_fields():
    opened = schema.schema_for("ticket.opened")
    assert opened["required"] == ["event_id", "type", "occurred_at", "ticket_id", "customer_id", "priority"]
    assert opened["properties"]["type"]["const"] == "ticket.opened"
    assert opened["properties"]["occurred_at"] == {"format": "date-time", "title": "Occurred At", "type": "string"}


def test_output_schemas_describe_what_is_written():
    breached = schema.schema_for("sla.breached")
    assert set(breached["required"]) == set(breached["properties"])
    event = SlaBreached.create(
        occurred_at=datetime(2026, 4, 1, 4, tzinfo=timezone.utc), ticket_id="T", customer_id="c", policy="vectorize",
        plan="pro", policy_version="1", priority="urgent", metric="first_response", binding=True,
        target={"amount": 4, "unit": "hours", "clock": "business"},
        started_at=datetime(2026, 4, 1, tzinfo=timezone.utc), due_at=datetime(2026, 4, 1, 4, tzinfo=timezone.utc),
    )
    assert set(json.loads(encode(event))) == set(breached["properties"])
    month = schema.schema_for("uptime.month_closed")["properties"]
    assert month["downtime_minutes"]["type"] == "number"
    assert month["uptime_percent"]["type"] == "string"
