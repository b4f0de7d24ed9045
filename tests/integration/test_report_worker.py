"""The worker serves the month report (SPEC §15) at GET /customers/{id}/months/{YYYY-MM}/report, from
its state: the golden month through a real worker on the embedded broker, then the page over HTTP,
rendered by Chromium from the worker's URL (the browser test's checks, the page served live).

Time is the golden's own: the partitions are ticked to its `--until`, never to the wall clock."""
from __future__ import annotations

import asyncio
import os
import urllib.error
import urllib.request
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest

from streams.testing.harness import produce, wait_until
from tests.golden_support import Scenario
from tests.integration.test_stream_equals_replay import LATENESS, events_in, load_contracts, new_app, run_until_final

pytestmark = pytest.mark.broker

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report_vz_pro_april"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_worker_serves_the_month_report_from_its_state(broker_url, tmp_path):
    scenario = Scenario.load(GOLDEN)
    lines = [x for x in (GOLDEN / "events.jsonl").read_bytes().splitlines() if x.strip()]
    app = new_app(tmp_path, broker_url)
    try:
        worker = app.start()
        asyncio.run(load_contracts(app, GOLDEN / "contracts.yaml", [worker.url]))
        before = events_in([worker.url])
        asyncio.run(produce(broker_url, app.prefix, lines))
        wait_until(lambda: events_in([worker.url]) >= before + len(lines), 60, every=0.2, what="events counted")
        run_until_final(app, [worker], scenario.until + timedelta(seconds=LATENESS))
        url = f"{worker.url}/customers/vz-report/months/2026-04/report"
        status, page = _get(url)
        unknown = _get(f"{worker.url}/customers/nobody/months/2026-04/report")
        bad_month = _get(f"{worker.url}/customers/vz-report/months/2026-13/report")
        shot = None
        if os.environ.get("SLAPROC_NO_BROWSER") != "1":
            from tests.integration.test_report_browser import _page_errors, _run_chromium

            shot = _run_chromium_url(url, tmp_path, _run_chromium, _page_errors)
    finally:
        app.stop_all()
    assert status == 200, page
    text = " ".join(unescape(page).split())
    for figure in ("SLA report — vz-report — April 2026", "50.00 %", "99.31 %", "1.94 USD", "216 min", "84 min",
                   "2026-05-31 00:00 UTC", "Figures: final (closed, revision 1).", "deadline Fri 17:00"):
        assert figure in text, figure
    assert text.count("<svg") == 3
    assert unknown[0] == 404 and "nobody" in unknown[1]
    assert bad_month[0] == 404
    if shot is not None:
        errors, dom = shot
        assert errors == [] and "1.94 USD" in dom and "99.31 %" in dom


def _run_chromium_url(url: str, tmp_path: Path, run, page_errors) -> tuple[list[str], str]:
    """Chromium loads the page from the worker (loopback): its DOM and what it logged."""

    class _Url:  # `_run_chromium` takes a page path; here the page is the worker's URL
        def as_uri(self) -> str:
            return url

    done = run(_Url(), tmp_path / "profile-worker", "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    return page_errors(done.stderr), " ".join(unescape(done.stdout).split())
