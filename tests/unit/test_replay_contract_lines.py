"""`contract.upserted` lines in a replayed file are configuration: installed before the
events, whatever their timestamps and position, and they move no time (as the stream's
contracts agent installs them from their own topic). A contract recorded today for a
backfill of last month applies to last month."""
from __future__ import annotations

import json

from policies.processor import Settings
from streams.replay import Replayer
from tests.support import CATALOG, CONTRACTS, wire

#: An NM critical ticket Tue 2026-02-03 15:00Z (30 min 24x7: due 15:30Z), answered at 15:10Z.
TICKET = [wire("ticket.opened", "2026-02-03T15:00:00Z", "open-1", ticket_id="T1", customer_id="nm",
               priority="critical"),
          wire("ticket.replied", "2026-02-03T15:10:00Z", "reply-1", ticket_id="T1", author="provider")]
#: The contract, recorded a month after the ticket.
CONTRACT = dict(CONTRACTS["nm"], event_id="contract-nm", type="contract.upserted",
                occurred_at="2026-03-05T09:00:00Z")


def replay(lines: list[dict]) -> list[dict]:
    rep = Replayer([], CATALOG, Settings(at_risk_thresholds=()))
    for i, obj in enumerate(lines, 1):
        rep.feed_line(json.dumps(obj).encode(), f"events.jsonl:{i}")
    return [json.loads(b) for b in rep.finish(None).sorted_lines()]


def test_a_contract_recorded_after_the_events_still_applies_to_them() -> None:
    for lines in (TICKET + [CONTRACT], [CONTRACT] + TICKET, [TICKET[0], CONTRACT, TICKET[1]]):
        out = replay(lines)
        assert [(o["type"], o.get("ticket_id")) for o in out] == [("sla.met", "T1")], out
        assert out[0]["elapsed_minutes"] in ("10", "10.0", 10)


def test_a_contract_moves_no_time() -> None:
    """Had the contract moved time to 2026-03-05, the ticket opened in February would have been
    applied late; the met at 15:10Z would be the same, but time ends at the last event."""
    rep = Replayer([], CATALOG, Settings(at_risk_thresholds=()))
    for i, obj in enumerate(TICKET + [CONTRACT], 1):
        rep.feed_line(json.dumps(obj).encode(), f"events.jsonl:{i}")
    rep.finish(None)
    assert rep.processor.now.isoformat() == "2026-02-03T15:10:00+00:00"


def test_an_invalid_contract_line_is_a_dead_letter_and_the_rest_goes_on() -> None:
    bad = dict(CONTRACT, event_id="contract-bad", customer_id="bad", plan="platinum")
    out = replay([bad, CONTRACT] + TICKET)
    assert sorted(o["type"] for o in out) == ["dead_letter", "sla.met"]
    [dead] = [o for o in out if o["type"] == "dead_letter"]
    assert dead["reason"] == "invalid_contract" and "unknown plan 'platinum'" in dead["error"]
