"""Bounded time (SPEC §10, issue 11; issue 18 items 3 and 5): one bad timestamp must not move
time, loop over years of empty months, overflow, or end a replay.

The poison runs replay the shipped sample (280 events, March-April 2026) with `--until`
pinned, once clean and once with one poison line added; the outputs must be the clean run's
plus one dead letter. Work is counted (month closes computed), never timed.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from events.codec import ALL_REASONS, DeadLetterReason, Reason, decode
from policies.processor import Processor, Settings
from streams.replay import Replayer
from tests.support import CATALOG, Run, contracts, decoded, opened, wire

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
UNTIL = datetime(2026, 5, 15, tzinfo=timezone.utc)


def _replay(extra: list[bytes], until: datetime | None = UNTIL, bound: datetime | None = None,
            settings: Settings = Settings()) -> tuple[list[dict], Replayer]:
    from policies.contracts import load_contracts_yaml

    rep = Replayer(load_contracts_yaml(SAMPLES / "contracts.yaml", CATALOG), CATALOG, settings)
    lines = (SAMPLES / "events.jsonl").read_bytes().splitlines() + extra
    for n, raw in enumerate(lines, 1):
        if raw.strip():
            rep.feed_line(raw, f"events.jsonl:{n}")
    out = [json.loads(b) for b in rep.finish(until, bound).sorted_lines()]
    return out, rep


@pytest.fixture(scope="module")
def clean():
    out, rep = _replay([])
    return out, rep.processor.month_closes


def _poison(occurred_at: str, type_: str = "outage.started", **fields) -> bytes:
    base = {"service_id": "lakeshore-experiments", "outage_id": "poison"} if type_.startswith("outage") else {}
    return json.dumps(wire(type_, occurred_at, "poison-1", **{**base, **fields})).encode()


@pytest.mark.parametrize("when, reason", [
    ("2027-05-01T00:00:00Z", "future_timestamp"),   # a year ahead of --until
    ("3000-01-01T00:00:00Z", "future_timestamp"),
    ("8999-12-31T23:59:59Z", "future_timestamp"),
    ("9999-12-31T23:59:59Z", "invalid_field"),
    ("9999-12-31T23:00:00-05:00", "invalid_field"),  # overflows on UTC normalisation
    ("0001-01-01T00:00:00Z", "invalid_field"),
    ("0001-01-01T00:00:00+05:00", "invalid_field"),  # underflows on UTC normalisation
    ("1969-12-31T23:59:59Z", "invalid_field"),
])
@pytest.mark.parametrize("type_", ["outage.started", "ticket.opened"])
def test_one_poison_event_is_one_dead_letter_and_changes_nothing_else(clean, when, reason, type_):
    fields = {"ticket_id": "POISON", "customer_id": "orbital-labs", "priority": "high"} if type_ == "ticket.opened" else {}
    out, rep = _replay([_poison(when, type_, **fields)])
    clean_out, clean_closes = clean
    poison = [o for o in out if o["type"] == "dead_letter" and o["raw"].count("poison-1")]
    assert [d["reason"] for d in poison] == [reason], poison
    assert [o for o in out if o not in poison] == clean_out
    assert rep.processor.month_closes == clean_closes  # no extra work
    assert rep.processor.now == UNTIL  # time did not move past the bound


def test_without_until_the_bound_is_given_by_the_caller(clean):
    # the CLI passes wall clock + max_future; here a pinned instant stands for it
    bound = datetime(2026, 6, 1, tzinfo=timezone.utc)
    out, rep = _replay([_poison("3000-01-01T00:00:00Z")], until=None, bound=bound)
    assert [o["reason"] for o in out if o["type"] == "dead_letter" and "poison-1" in o["raw"]] == ["future_timestamp"]
    assert rep.processor.now < bound


def test_far_future_tick_is_bounded_work():
    # An explicit tick to 8999 (the largest accepted instant's year): months with data still close,
    # empty months whose claim window ended over a year before are skipped, not emitted one by one.
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("vp", "ve"):
        proc.install(c)
    proc.apply(decoded(wire("outage.started", "2026-02-10T10:00:00Z", service_id="vp-api", outage_id="o1")))
    proc.apply(decoded(wire("outage.resolved", "2026-02-10T14:00:00Z", service_id="vp-api", outage_id="o1")))
    out = proc.advance_to(datetime(8999, 12, 31, tzinfo=timezone.utc))
    closes = [o for o in out if o.type == "uptime.month_closed"]
    assert len(closes) <= proc.month_closes < 2 * 20  # per service: Jan, Feb (data) + ~13 months of the last year
    assert {o.fields["month"] for o in closes if o.fields["service_id"] == "vp-api"} >= {"2026-02"}
    # and time can keep moving afterwards
    assert proc.advance_to(datetime(8999, 12, 31, 1, tzinfo=timezone.utc)) == []


def test_gap_of_years_between_events_is_bounded_work():
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("vp"):
        proc.install(c)
    proc.apply(decoded(wire("outage.started", "2026-02-10T10:00:00Z", service_id="vp-api", outage_id="o1")))
    proc.apply(decoded(wire("outage.resolved", "2026-02-10T14:00:00Z", service_id="vp-api", outage_id="o1")))
    proc.apply(decoded(wire("outage.started", "2526-02-10T10:00:00Z", service_id="vp-api", outage_id="o2")))
    assert proc.month_closes < 20


def test_a_rejected_event_moves_no_time():
    run = Run("nm", "vp")
    run.feed(opened("T1", "nm", "critical", "2026-02-03T15:00:00Z"))
    before = run.proc.now
    run.feed(opened("T2", "nobody", "high", "2026-06-03T15:00:00Z"),      # unknown customer: waits for its contract
             opened("T1", "nm", "high", "2026-06-03T15:00:00Z"))          # duplicate ticket
    run.feed(wire_change_bad := decoded(wire("ticket.priority_changed", "2026-06-03T15:00:00Z", ticket_id="T1",
                                             priority="p0", requested_by="provider")))
    run.feed(decoded(wire("contract.upserted", "2026-06-03T15:00:00Z", customer_id="rs2", policy="rescale",
                          plan="production", edition="enterprise")))  # order-form targets missing
    run.feed(decoded(wire("contract.upserted", "2026-06-03T15:00:00Z", customer_id="other", policy="vectorize",
                          plan="pro", services=[{"service_id": "vp-api", "monthly_fee": "1", "currency": "USD"}] * 2)))
    assert [r.reason for r in run.rejected] == ["duplicate_ticket", "invalid_field",
                                                "invalid_contract", "invalid_contract"]
    assert len(run.proc.parking) == 1  # T2 waits for a contract (docs/decisions.md, "Contract wait")
    assert run.proc.now == before
    assert wire_change_bad is not None


def test_stream_bound_future_timestamp_moves_nothing():
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("nm"):
        proc.install(c)
    wall = datetime(2026, 2, 3, 16, tzinfo=timezone.utc)
    out, rejected = proc.apply(decoded(wire("ticket.opened", "2026-02-03T17:00:01Z", ticket_id="T1",
                                            customer_id="nm", priority="critical")), not_after=wall + timedelta(hours=1))
    assert (out, rejected.reason) == ([], "future_timestamp")
    assert proc.now is None


def test_replay_turns_an_exception_into_a_dead_letter(monkeypatch):
    rep = Replayer(contracts("nm"), CATALOG, Settings(at_risk_thresholds=()))

    class Exploding:
        """The processor with a bug in `apply` (a wrapper: the compiled build's methods cannot be patched)."""

        def __init__(self, inner):
            self._inner = inner

        def apply(self, ev, not_after=None):
            raise OverflowError("date value out of range")

        def __getattr__(self, name):
            return getattr(self._inner, name)

    rep.feed_line(json.dumps(wire("ticket.opened", "2026-02-03T15:00:00Z", ticket_id="T1", customer_id="nm",
                                  priority="critical")).encode(), "f:1")
    monkeypatch.setattr(rep, "processor", Exploding(rep.processor))
    out = [json.loads(b) for b in rep.finish(None).sorted_lines()]
    assert [(o["type"], o["reason"]) for o in out] == [("dead_letter", "rejected")]


def test_every_reason_is_in_the_closed_set():
    assert {r.value for r in Reason} == ALL_REASONS
    assert "orphan" in ALL_REASONS and "future_timestamp" in ALL_REASONS and "month_final" in ALL_REASONS
    bad = decode(json.dumps(wire("ticket.replied", "0001-01-01T00:00:00Z", ticket_id="T", author="provider")))
    assert isinstance(bad, DeadLetterReason) and bad.code == "invalid_field" and "1970" in bad.message


def test_cli_replay_without_until_says_its_bound(tmp_path, capsys):
    from streams.cli import main

    (tmp_path / "e.jsonl").write_bytes(_poison("8999-01-01T00:00:00Z") + b"\n")
    (tmp_path / "c.yaml").write_text((SAMPLES / "contracts.yaml").read_text())
    assert main(["replay", str(tmp_path / "e.jsonl"), "--contracts", str(tmp_path / "c.yaml"), "-q"]) == 0
    captured = capsys.readouterr()
    assert "no --until" in captured.err and "future_timestamp" in captured.err
    assert json.loads(captured.out.splitlines()[0])["reason"] == "future_timestamp"
