"""An `outage.resolved` that expired as an orphan still ends its outage when the start comes later.

A resolve read more than the parking horizon (7 days) before its outage's start expires to the
dead letter (`orphan`, SPEC §10). Forgotten then, the late start opened an outage that never
ended: every month since was down, 995.00 USD of refund a month on Vectorize Pro, until someone
re-sent the dead letter (review of 2026-12-06). The processor now remembers expired monitoring
orphans until their month's claim window closes and applies them when their entity appears.

Vectorize Pro on vp-api (tests/support.py: 99.5 %, 1,000.00 USD a month, terms from 2026-01-01).
Outage A: 2026-03-10 00:00 to 04:00 = 240 min of a 31-day month (44,640 min): uptime
100 - 240 / 44,640 x 100 = 99.46 %; threshold 0.5 % = 223.2 min; refund (240 - 223.2) / 44,640 x
1,000 = 0.376 -> 0.38 USD. April and May: no downtime, met, no refund.
"""
from __future__ import annotations

from policies.parking import REMEMBER_AT_MOST, outage_key
from policies.processor import Processor, Settings
from tests.net_outcome import net_outcome
from tests.support import CATALOG, at, contracts, decoded, feed_steps, wire

STARTED = wire("outage.started", "2026-03-10T00:00:00Z", "s1", service_id="vp-api", outage_id="A")
RESOLVED = wire("outage.resolved", "2026-03-10T04:00:00Z", "r1", service_id="vp-api", outage_id="A")
AFTER_THE_HORIZON = at("2026-03-18T00:00:00Z")  # the resolve's occurred_at + 7 days, passed
UNTIL = at("2026-06-01T02:00:00Z")
MONTHS = ("2026-03", "2026-04", "2026-05")


def _processor() -> Processor:
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("vp"):
        proc.install(c)
    return proc


def _feed(proc: Processor, steps: list, out: list, dead: list) -> None:
    more, rejected = feed_steps(proc, steps)
    out += more
    dead += rejected


def _months(out: list) -> dict:
    net = net_outcome(out)
    return {m: (net["months"][("vp", "vp-api", m)]["downtime_minutes"],
                net["months"][("vp", "vp-api", m)]["uptime_percent"],
                (net["refunds"].get(("vp", "vp-api", m)) or {}).get("refund_amount")) for m in MONTHS}


def _orphans(out: list) -> list[str]:
    return [o["source"] for o in out if o["type"] == "dead_letter" and o["reason"] == "orphan"]


EXPECTED = {"2026-03": (240, "99.46", "0.38"), "2026-04": (0, "100.00", None), "2026-05": (0, "100.00", None)}


def test_the_sorted_order_is_the_hand_figures():
    out: list = []
    _feed(_processor(), [STARTED, RESOLVED, UNTIL], out, [])
    assert _months(out) == EXPECTED


def test_a_resolve_that_expired_before_its_start_still_ends_the_outage():
    out, dead = [], []
    _feed(_processor(), [RESOLVED, AFTER_THE_HORIZON, STARTED, UNTIL], out, dead)
    assert _orphans(out) == ["parked:r1"]  # the dead letter stays: the resolve did wait in vain
    assert dead == []
    # before: March 31,680 min (down from the 10th to the month's end), April and May 0.00 % and
    # 995.00 USD each
    assert _months(out) == EXPECTED


def test_the_remembered_resolve_survives_a_restart():
    out, dead = [], []
    first = _processor()
    _feed(first, [RESOLVED, AFTER_THE_HORIZON], out, dead)
    assert first.parking.remembered == {outage_key("vp-api", "A"): [decoded(RESOLVED)]}
    again = _processor()
    again.restore(first.snapshot())
    assert again.parking.remembered == first.parking.remembered
    _feed(again, [STARTED, UNTIL], out, dead)
    assert dead == [] and _months(out) == EXPECTED


def test_a_snapshot_written_before_remembered_orphans_still_loads():
    proc = _processor()
    _feed(proc, [RESOLVED], [], [])  # parked, not expired: a two-element row, as before
    again = _processor()
    again.restore(proc.snapshot())
    assert again.parking.events == proc.parking.events and again.parking.remembered == {}


def test_a_re_sent_copy_of_the_expired_resolve_applies_once():
    out, dead = [], []
    _feed(_processor(), [RESOLVED, AFTER_THE_HORIZON, RESOLVED, STARTED, UNTIL], out, dead)
    assert dead == [] and _orphans(out) == ["parked:r1"] and _months(out) == EXPECTED


def test_remembered_orphans_are_forgotten_when_their_month_is_final():
    # March's claim window closes on April 30 (its end + 30 days); a start read after it is
    # month_final, so nothing is kept for it
    proc = _processor()
    _feed(proc, [RESOLVED, AFTER_THE_HORIZON], [], [])
    _feed(proc, [at("2026-04-30T00:00:00Z")], [], [])
    assert proc.parking.remembered  # still within March's claim window
    _feed(proc, [at("2026-05-01T00:00:01Z")], [], [])
    assert proc.parking.remembered == {}


def test_remembered_orphans_are_bounded_the_oldest_go_first():
    proc = _processor()
    steps = [wire("outage.resolved", f"2026-03-10T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z", f"r{n}",
                  service_id="vp-api", outage_id=f"X{n}") for n in range(REMEMBER_AT_MOST + 5)]
    _feed(proc, [*steps, AFTER_THE_HORIZON], [], [])
    kept = {ev.event_id for evs in proc.parking.remembered.values() for ev in evs}
    assert len(kept) == REMEMBER_AT_MOST and "r4" not in kept and "r5" in kept
