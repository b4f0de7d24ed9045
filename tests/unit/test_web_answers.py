"""streams/web.py's answers that need no worker: every view takes a month the same way."""
from __future__ import annotations

import json

import pytest

from streams.web import month_answer, month_of, report_answer


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "0000-01", "9999-12", "２０２６-０３", "2026-3", "x"])
def test_a_month_that_is_no_month_is_the_same_404_in_every_view(month):
    assert month_of(month) is None
    for answer in (month_answer(None, "svc", month), report_answer({}, 3, "cust", month)):
        assert answer.status == 404
        assert json.loads(answer.body) == {"error": f"{month!r} is not a month (YYYY-MM)"}


def test_a_key_is_forwarded_to_its_owner_and_one_assigned_here_but_not_taken_over_yet_is_a_503():
    """Between an assignment and the partition's first unit this worker has no processor for it:
    the answer is "try again" (503 + Retry-After), never "unknown ticket" (a 404 a client believes)."""
    from streams.snapshot import Replica, Snapshot
    from streams.web import route

    here, there, topic = "http://127.0.0.1:6066", "http://127.0.0.1:6067", "sla.ticket-events"
    replica = Replica(catalog=None, core_settings=None, partitions=4, owner_of=lambda key: 0)
    snapshot = Snapshot(version=3, routes={topic: {0: here, 1: there}}, partitions={})
    assert route(snapshot, replica, topic, 1, False, here) == ("forward", there)
    assert route(snapshot, replica, topic, 2, False, here)[0] == "unavailable"  # no owner: rebalancing
    where, why = route(snapshot, replica, topic, 0, False, here)
    assert where == "unavailable" and "being taken over" in why
    assert route(snapshot, replica, topic, 1, True, here)[0] == "unavailable"  # forwarded here: no loop back
