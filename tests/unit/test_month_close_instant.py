"""A month closes once time passes its close instant, whatever instant time first lands on.

Review of 2026-12-04 (wrong money): when time first reached *exactly* a month's close instant
(an outage resolved at 2026-05-01T01:00:00Z, April's close with the default 1 h delay; a tick,
a replay's first event, a restart), the processor marked its month closes as checked up to
May's close, so April was skipped then and until June 1 01:00 had passed: a refund a month late,
or never when the run ended before.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from policies import uptime
from policies.processor import Processor, Settings
from tests.support import CATALOG, contracts, decoded, wire

APRIL_CLOSE = datetime(2026, 5, 1, 1, tzinfo=timezone.utc)


def processor() -> Processor:
    proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=()))
    for c in contracts("vp"):
        proc.install(c)
    return proc


def closed_months(outputs) -> set[str]:
    return {o.fields["month"] for o in outputs if o.type == "uptime.month_closed"}


def test_the_close_instant_is_april_s():
    assert uptime.close_instant("2026-04") == APRIL_CLOSE


@pytest.mark.parametrize("first", [APRIL_CLOSE, APRIL_CLOSE - timedelta(microseconds=1),
                                   APRIL_CLOSE + timedelta(microseconds=1)])
def test_april_closes_once_time_passes_its_close_instant_whatever_instant_time_lands_on(first):
    # the last event is dated March 31 (month closes checked up to March's): the next instant is `first`
    proc = processor()
    out = proc.apply(decoded(wire("outage.started", "2026-03-20T10:00:00Z", service_id="vp-api", outage_id="o1")))[0]
    out += proc.apply(decoded(wire("outage.resolved", "2026-03-31T23:00:00Z", service_id="vp-api",
                                   outage_id="o1")))[0]
    out += proc.advance_to(first)
    assert "2026-03" in closed_months(out)
    assert ("2026-04" in closed_months(out)) == (first > APRIL_CLOSE)  # not at the instant itself
    out += proc.advance_to(APRIL_CLOSE + timedelta(seconds=1))
    assert "2026-04" in closed_months(out)


def test_an_event_exactly_at_the_close_instant_then_a_tick_a_minute_later_closes_april():
    # the review's case: the outage is resolved at April's close instant (it ran all April)
    proc = processor()
    out = proc.apply(decoded(wire("outage.started", "2026-03-31T20:00:00Z", service_id="vp-api", outage_id="o1")))[0]
    out += proc.apply(decoded(wire("outage.resolved", "2026-05-01T01:00:00Z", service_id="vp-api",
                                   outage_id="o1")))[0]
    assert "2026-04" not in closed_months(out)
    out += proc.advance_to(APRIL_CLOSE + timedelta(minutes=1))
    april = [o for o in out if o.type == "uptime.month_closed" and o.fields["month"] == "2026-04"]
    assert len(april) == 1
    assert april[0].fields["downtime_minutes"] == 43_200  # all of April (30 days x 1440)
