"""`month_final` (SPEC §10) refuses only an event that would change nothing but final months.

A monitoring event about an outage or window the service still holds is applied whatever its
date: pruning keeps exactly the records that reach the oldest month held, so such an event changes
that month or a later one (review of 2026-12-06, F1 and F2: dated by its own occurred_at, it was
refused and the held and later months lost its effect). Final months keep their first closes.

Vectorize Pro on vp-api (tests/support.py: 99.5 %, 1,000.00 USD a month, terms from 2026-01-01).
Threshold of a 31-day month (44,640 min): 0.5 % = 223.2 min; of a 30-day month (43,200 min): 216.
Each stream-like run is held against the sorted order of the same events (the replay's order).
"""
from __future__ import annotations

from datetime import datetime, timezone

from policies.processor import Processor, Settings
from tests.net_outcome import net_outcome
from tests.support import CATALOG, at, contracts, feed_steps, wire

UTC = timezone.utc


def _run(steps: list) -> tuple[dict, list[str]]:
    """Feed `steps` (wire events, or instants to tick to) to one processor; its net outcome and
    dead-letter reasons."""
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("vp"):
        proc.install(c)
    out, dead = feed_steps(proc, steps)
    return net_outcome(out), dead


def _month(net: dict, month: str) -> tuple:
    m = net["months"][("vp", "vp-api", month)]
    refund = net["refunds"].get(("vp", "vp-api", month))
    return m["downtime_minutes"], m["uptime_percent"], m["met"], refund and refund["refund_amount"]


def _sorted_run(events: list[dict], until: datetime) -> dict:
    net, dead = _run([*sorted(events, key=lambda e: (e["occurred_at"], e["event_id"])), until])
    assert dead == []
    return net


def test_a_resolution_read_after_its_months_claim_window_ends_the_outage_for_the_months_held():
    # Outage A from March 10 00:00 to March 12 00:00; the resolution is read on July 1 02:00, after
    # ticks closed March to June (March and April are then final, May still held).
    started = wire("outage.started", "2026-03-10T00:00:00Z", "s1", service_id="vp-api", outage_id="A")
    resolved = wire("outage.resolved", "2026-03-12T00:00:00Z", "r1", service_id="vp-api", outage_id="A")
    until = at("2026-09-01T02:00:00Z")
    ticks = [at(t) for t in ("2026-04-01T02:00:00Z", "2026-05-01T02:00:00Z", "2026-06-01T02:00:00Z",
                             "2026-07-01T02:00:00Z")]
    net, dead = _run([started, *ticks, resolved, until])
    assert dead == []  # was month_final ("would change 2026-03")
    # May to August: no downtime, 100.00 %, met, no standing refund (May's and June's 995.00 USD,
    # refunded while the outage looked open, are withdrawn; July and August never get one)
    for month in ("2026-05", "2026-06", "2026-07", "2026-08"):
        assert _month(net, month) == (0, "100.00", True, None), month
    # March and April are final (SPEC §10): their first closes stand, made while A looked open.
    # March: down from March 10 00:00 to April 1 00:00 = 22 d = 31,680 min; 100 - 31,680 / 44,640 x 100
    # = 29.03 %; (31,680 - 223.2) / 44,640 x 1,000 = 704.68 USD. April: the whole month, 0.00 %,
    # (43,200 - 216) / 43,200 x 1,000 = 995.00 USD.
    assert _month(net, "2026-03") == (31680, "29.03", False, "704.68")
    assert _month(net, "2026-04") == (43200, "0.00", False, "995.00")
    reference = _sorted_run([started, resolved], until)
    for month in ("2026-05", "2026-06", "2026-07", "2026-08"):
        assert _month(net, month) == _month(reference, month), month
    # the sorted order: March 2,880 min, 100 - 2,880 / 44,640 x 100 = 93.55 %,
    # (2,880 - 223.2) / 44,640 x 1,000 = 59.52 USD
    assert _month(reference, "2026-03") == (2880, "93.55", False, "59.52")


def test_a_cancellation_dated_in_a_final_month_cancels_a_window_of_the_current_month():
    # Window W of July 10 10:00-14:00, scheduled April 20 and cancelled April 25; the cancellation is
    # read on July 5 (April final: its claim window ended May 31, and June's close pruned it). An
    # outage covers the window's hours. Cancelled, the window is no maintenance: July 240 min down,
    # 100 - 240 / 44,640 x 100 = 99.46 % < 99.50, not met, (240 - 223.2) / 44,640 x 1,000 = 0.38 USD.
    scheduled = wire("maintenance.scheduled", "2026-04-20T00:00:00Z", "w1", service_id="vp-api",
                     maintenance_id="W", starts_at="2026-07-10T10:00:00Z", ends_at="2026-07-10T14:00:00Z")
    cancelled = wire("maintenance.cancelled", "2026-04-25T00:00:00Z", "w2", service_id="vp-api", maintenance_id="W")
    outage = [wire("outage.started", "2026-07-10T10:00:00Z", "o1", service_id="vp-api", outage_id="B"),
              wire("outage.resolved", "2026-07-10T14:00:00Z", "o2", service_id="vp-api", outage_id="B")]
    until = at("2026-08-01T02:00:00Z")
    net, dead = _run([scheduled, at("2026-07-05T12:00:00Z"), cancelled, *outage, until])
    assert dead == []  # was month_final ("would change 2026-04"), and July met with no refund
    assert _month(net, "2026-07") == (240, "99.46", False, "0.38")
    assert _month(_sorted_run([scheduled, cancelled, *outage], until), "2026-07") == _month(net, "2026-07")


def test_a_report_dated_in_a_final_month_moves_the_start_of_an_outage_of_the_month_held():
    # Outage C: reported by the customer April 20 00:00, alert May 5 00:00, resolved May 6 00:00; the
    # report is read on July 2 (June closed: April final, May held). It counts from the earlier of
    # report and alert (SPEC §8), so May is down from May 1 00:00 to May 6 00:00 = 7,200 min:
    # 100 - 7,200 / 44,640 x 100 = 83.87 %, (7,200 - 223.2) / 44,640 x 1,000 = 156.29 USD (refused, May
    # kept 1,440 min: 96.77 %, 27.26 USD). April keeps its first close (final): met, no downtime.
    reported = wire("outage.reported", "2026-04-20T00:00:00Z", "p1", service_id="vp-api", outage_id="C",
                    ticket_id="T9")
    started = wire("outage.started", "2026-05-05T00:00:00Z", "s1", service_id="vp-api", outage_id="C")
    resolved = wire("outage.resolved", "2026-05-06T00:00:00Z", "r1", service_id="vp-api", outage_id="C")
    until = at("2026-08-01T02:00:00Z")
    net, dead = _run([started, resolved, at("2026-07-02T00:00:00Z"), reported, until])
    assert dead == []
    assert _month(net, "2026-05") == (7200, "83.87", False, "156.29")
    assert _month(net, "2026-04") == (0, "100.00", True, None)
    assert _month(_sorted_run([reported, started, resolved], until), "2026-05") == _month(net, "2026-05")


def test_a_window_that_reaches_the_month_held_is_applied_and_one_wholly_final_is_month_final():
    # Read on July 2 (May held, April final): a new window from April 30 22:00 to May 1 02:00 reaches May
    # and is applied (no dead letter); one from April 20 to April 21, or a new outage started in
    # April, would change only final months: month_final naming April.
    def steps(*late: dict) -> list:
        return [wire("outage.started", "2026-05-05T00:00:00Z", "s1", service_id="vp-api", outage_id="D"),
                wire("outage.resolved", "2026-05-05T01:00:00Z", "r1", service_id="vp-api", outage_id="D"),
                at("2026-07-02T00:00:00Z"), *late]

    reaching = wire("maintenance.scheduled", "2026-04-01T00:00:00Z", "w1", service_id="vp-api",
                    maintenance_id="X", starts_at="2026-04-30T22:00:00Z", ends_at="2026-05-01T02:00:00Z")
    assert _run(steps(reaching))[1] == []
    within = wire("maintenance.scheduled", "2026-04-01T00:00:00Z", "w2", service_id="vp-api",
                  maintenance_id="Y", starts_at="2026-04-20T00:00:00Z", ends_at="2026-04-21T00:00:00Z")
    new_outage = wire("outage.started", "2026-04-10T00:00:00Z", "s2", service_id="vp-api", outage_id="E")
    assert _run(steps(within, new_outage))[1] == ["month_final", "month_final"]
