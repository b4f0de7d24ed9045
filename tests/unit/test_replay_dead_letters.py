"""Bad input through the replay runner: one case per dead-letter reason.

Each case replays a small file: a good `ticket.opened` (NM critical, Tue 2026-02-03 15:00Z, due
15:30Z), optional setup lines, the bad line, then a good provider reply at 15:10Z. It asserts the
reason code, that the error names the field / problem, the dead letter's envelope, and that the
good reply after the bad line is still processed (`sla.met`, 10 minutes).
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from events import ids
from events.codec import DeadLetterReason, decode
from policies.processor import Settings
from streams.replay import Replayer, replay_file
from tests.support import CATALOG, CONTRACTS, contracts, contracts_yaml, wire

OPEN = wire("ticket.opened", "2026-02-03T15:00:00Z", "open-1", ticket_id="T1", customer_id="nm", priority="critical")
GOOD_REPLY = wire("ticket.replied", "2026-02-03T15:10:00Z", "reply-1", ticket_id="T1", author="provider")


def line(obj) -> bytes:
    return obj if isinstance(obj, bytes) else json.dumps(obj).encode()


def replay(lines: list[bytes]) -> list[dict]:
    rep = Replayer(contracts("nm", "vp"), CATALOG, Settings(at_risk_thresholds=()))
    for i, raw in enumerate(lines, 1):
        rep.feed_line(raw, f"events.jsonl:{i}")
    return [json.loads(b) for b in rep.finish(None).sorted_lines()]


def _bad(type_, **fields):
    return wire(type_, "2026-02-03T15:05:00Z", **fields)


BIG = json.dumps({**_bad("ticket.escalated", ticket_id="T1", reason="x"), "pad": "x" * (1024 * 1024)}).encode()

# (id, setup lines, bad line, reason, fragments the error must contain)
CASES = [
    ("invalid_json", [], b'{"event_id": "e1", "type": "ticket.replied",', "invalid_json", ["JSON"]),
    ("not_an_object", [], b'[1, 2, 3]', "not_an_object", ["object", "array"]),
    ("unknown_type", [], line(_bad("ticket.exploded", ticket_id="T1")), "unknown_type",
     ["'type'", "ticket.exploded"]),
    ("output_type_as_input", [], line(_bad("sla.breached", ticket_id="T1")), "unknown_type", ["output"]),
    ("missing_field", [], line(_bad("ticket.replied", author="provider")), "missing_field", ["'ticket_id'", "missing"]),
    ("invalid_field_enum", [], line(_bad("ticket.status_changed", ticket_id="T1", status="sleeping")), "invalid_field",
     ["'status'", "sleeping"]),
    ("invalid_field_priority_at_open", [],
     line(_bad("ticket.opened", ticket_id="T2", customer_id="nm", priority="p1")), "invalid_field",
     ["priority", "'p1'", "neural-magic"]),
    ("invalid_field_priority_change", [],
     line(_bad("ticket.priority_changed", ticket_id="T1", priority="urgent", requested_by="provider")),
     "invalid_field", ["priority", "'urgent'"]),
    ("naive_timestamp", [], line({**_bad("ticket.escalated", ticket_id="T1", reason="x"),
                                  "occurred_at": "2026-02-03T15:05:00"}), "naive_timestamp",
     ["'occurred_at'", "offset"]),
    ("invalid_encoding", [], b'{"event_id": "e\xff\xfe", "type": "ticket.escalated"}', "invalid_encoding", ["UTF-8"]),
    ("too_large", [], BIG, "too_large", [str(len(BIG)), "limit"]),
    ("unsupported_schema_version", [], line({**_bad("ticket.escalated", ticket_id="T1", reason="x"),
                                             "schema_version": 99}), "unsupported_schema_version",
     ["schema_version", "99"]),
    # SPEC §10: an event whose entity does not exist is parked; the batch over, it is an orphan
    ("unknown_ticket", [], line(_bad("ticket.replied", ticket_id="T404", author="provider")), "orphan",
     ["T404", "never opened"]),
    ("ticket_closed",
     [line(wire("ticket.opened", "2026-02-03T15:01:00Z", ticket_id="T2", customer_id="nm", priority="low")),
      line(wire("ticket.closed", "2026-02-03T15:02:00Z", ticket_id="T2"))],
     line(_bad("ticket.replied", ticket_id="T2", author="provider")), "ticket_closed", ["T2", "closed"]),
    ("duplicate_ticket", [], line(_bad("ticket.opened", ticket_id="T1", customer_id="nm", priority="high")),
     "duplicate_ticket", ["T1", "already opened"]),
    ("unknown_customer", [], line(_bad("ticket.opened", ticket_id="T3", customer_id="nobody", priority="high")),
     "unknown_customer", ["nobody"]),
    ("unknown_service", [], line(_bad("outage.started", service_id="ghost-svc", outage_id="o1")), "unknown_service",
     ["ghost-svc"]),
    ("unknown_outage", [], line(_bad("outage.resolved", service_id="vp-api", outage_id="o-404")), "orphan",
     ["o-404"]),
    ("unknown_maintenance", [], line(_bad("maintenance.cancelled", service_id="vp-api", maintenance_id="m-404")),
     "orphan", ["m-404"]),
    ("invalid_contract_rescale_targets", [],
     line(_bad("contract.upserted", customer_id="rs2", policy="rescale", plan="production", edition="enterprise")),
     "invalid_contract", ["rs2", "overrides.targets", "first_response", "missing"]),
    ("invalid_contract_vectorize_uptime", [],
     line(_bad("contract.upserted", customer_id="ve2", policy="vectorize", plan="enterprise",
               services=[{"service_id": "ve2-api", "monthly_fee": "10.00", "currency": "USD"}])),
     "invalid_contract", ["ve2", "overrides.uptime_commitment_percent", "missing"]),
    # docs/decisions.md: an inverted window is rejected at decode as invalid_field (so the ledger's
    # own `invalid_window` code cannot be reached from the wire).
    ("invalid_window", [], line(_bad("maintenance.scheduled", service_id="vp-api", maintenance_id="m1",
                                     starts_at="2026-02-10T10:00:00Z", ends_at="2026-02-10T09:00:00Z")),
     "invalid_field", ["'ends_at'", "starts_at"]),
]


@pytest.mark.parametrize("setup, bad, reason, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_dead_letter_reason_and_later_good_events_still_processed(setup, bad, reason, fragments):
    lines = [line(OPEN), *setup, bad, line(GOOD_REPLY)]
    bad_no = len(setup) + 2
    out = replay(lines)
    dead = [o for o in out if o["type"] == "dead_letter"]
    assert len(dead) == 1, dead
    d = dead[0]
    assert d["reason"] == reason, d["error"]
    for fragment in fragments:
        assert fragment in d["error"], (fragment, d["error"])
    assert d["source"] == f"events.jsonl:{bad_no}"
    assert d["raw_bytes"] == len(bad)
    if len(bad) < 60_000:
        assert d["raw"] == bad.decode("utf-8", errors="backslashreplace")
    assert d["event_id"] == ids.dead_letter_event_id(f"events.jsonl:{bad_no}", bad)
    # SPEC §10 (docs/decisions.md): a rejected event is stamped with its own occurred_at (the same
    # whatever the arrival order; a rejected event moves no time); a line that did not decode has
    # no time of its own: it is stamped with the time the replay reached (the last event, 15:10)
    if not isinstance(decode(bad), DeadLetterReason):
        assert d["occurred_at"] == json.loads(bad)["occurred_at"]
    else:
        assert d["occurred_at"] == "2026-02-03T15:10:00Z"
    # the good reply after the bad line is processed
    met = [o for o in out if o["type"] == "sla.met" and o["ticket_id"] == "T1"]
    assert [(m["met_at"], m["elapsed_minutes"]) for m in met] == [("2026-02-03T15:10:00Z", 10)]
    assert [o for o in out if o["type"] == "sla.breached"] == []


def test_invalid_contract_leaves_the_customer_unknown():
    bad = line(_bad("contract.upserted", customer_id="rs2", policy="rescale", plan="production"))
    later = line(wire("ticket.opened", "2026-02-03T15:06:00Z", ticket_id="R1", customer_id="rs2", priority="urgent"))
    out = replay([line(OPEN), bad, later, line(GOOD_REPLY)])
    assert [o["reason"] for o in out if o["type"] == "dead_letter"] == ["invalid_contract", "unknown_customer"]


def test_undecodable_line_is_stamped_with_the_time_replay_reached():
    out = replay([b"not json", line(OPEN)])
    assert [(o["type"], o["occurred_at"]) for o in out if o["type"] == "dead_letter"] == [
        ("dead_letter", "2026-02-03T15:00:00Z")]


def test_undecodable_lines_only_are_stamped_with_the_epoch():
    out = replay([b"not json"])
    assert [(o["type"], o["occurred_at"]) for o in out] == [("dead_letter", "1970-01-01T00:00:00Z")]


def test_a_file_full_of_bad_lines_keeps_going(tmp_path: Path):
    # every bad line of CASES in one file between the open and the reply: one dead letter each,
    # the reply still meets the clock, and the output is sorted by occurred_at.
    events = tmp_path / "events.jsonl"
    body = [line(OPEN)]
    for _id, setup, bad, _reason, _f in CASES:
        body += [*setup, bad]
    body.append(line(GOOD_REPLY))
    events.write_bytes(b"\n".join(body) + b"\n\n")           # a trailing blank line is skipped
    (tmp_path / "c.yaml").write_text(contracts_yaml("nm", "vp"))
    buf = io.BytesIO()
    result = replay_file(events, tmp_path / "c.yaml", None, buf, progress=None, settings=Settings(at_risk_thresholds=()))
    out = [json.loads(b) for b in buf.getvalue().splitlines()]
    dead = [o for o in out if o["type"] == "dead_letter"]
    # the ticket_closed setup lines are good events; the second duplicate_ticket is T1 again
    assert sorted(d["reason"] for d in dead) == sorted(c[3] for c in CASES)
    assert result.dead_letters == len(CASES)
    assert [o["elapsed_minutes"] for o in out if o["type"] == "sla.met"] == [10]
    times = [o["occurred_at"] for o in out]
    assert times == sorted(times)


def test_contract_names_every_order_form_field_it_misses():
    raw = {"customer_id": "rs3", "policy": "rescale", "plan": "production", "edition": "enterprise",
           "overrides": {"targets": {"urgent": {"first_response": {"amount": 1, "unit": "hours"}}}}}
    out = replay([line(OPEN), line(_bad("contract.upserted", **raw)), line(GOOD_REPLY)])
    err = next(o for o in out if o["type"] == "dead_letter")["error"]
    for priority in ("high", "normal", "low"):
        assert f"overrides.targets.{priority}.first_response" in err
    assert "overrides.targets.urgent" not in err


def test_reference_contracts_are_valid():
    assert len(contracts(*CONTRACTS)) == len(CONTRACTS)
