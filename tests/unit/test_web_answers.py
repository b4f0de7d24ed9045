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
