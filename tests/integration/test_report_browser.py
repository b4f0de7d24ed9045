"""The month report in a real browser: Debian's Chromium, headless, renders the golden month's page.

The page must load offline without errors (every host unresolvable: a CDN or a fetch would log a
failure), show the hand-computed figures in the DOM the browser built, and paint its pictures: the
screenshot is decoded and must hold the colours of met and breached clocks, downtime, maintenance
and excluded time. SLAPROC_NO_BROWSER=1 is the only way to skip (Chromium deliberately absent);
a missing Chromium is otherwise a failure.

`python -m tests.integration.test_report_browser docs/report-month.png` refreshes the README's
screenshot the same way.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from streams.report.build import report_from_files
from streams.report.html import COLOUR, render_html

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report_vz_pro_april"
WINDOW = (1100, 2050)

pytestmark = pytest.mark.skipif(os.environ.get("SLAPROC_NO_BROWSER") == "1",
                                reason="SLAPROC_NO_BROWSER=1: Chromium deliberately absent")


def _chromium() -> str:
    path = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if path is None:
        pytest.fail("Chromium is not installed (apt-get install -y chromium; .ci/run installs it); "
                    "set SLAPROC_NO_BROWSER=1 only where it is deliberately absent")
    return path


def _golden_page(directory: Path) -> Path:
    report = report_from_files(GOLDEN / "events.jsonl", GOLDEN / "contracts.yaml", "vz-report", "2026-04",
                               datetime(2026, 5, 1, 2, tzinfo=timezone.utc))
    page = directory / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    return page


def _run_chromium(page: Path, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Headless, offline (no host but loopback resolves), its own profile (other runs may share the machine)."""
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
           "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
           "--enable-logging=stderr", "--v=0",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", *flags, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def screenshot(page: Path, png: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    done = _run_chromium(page, profile, f"--screenshot={png}")
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    return done


def _page_errors(stderr: str) -> list[str]:
    """What the page logged: console messages, failed loads (not the browser's own dbus noise)."""
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line or "Failed to load" in line or "net::ERR" in line or "Uncaught" in line]


def test_chromium_renders_the_report_offline_with_its_figures_and_pictures(tmp_path):
    from PIL import Image

    page = _golden_page(tmp_path)
    dom = _run_chromium(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _page_errors(dom.stderr) == []
    text = " ".join(dom.stdout.split())
    for figure in ("SLA report — vz-report — April 2026", "50.00 %", "99.31 %", "1.94 USD", "216 min", "84 min",
                   "2026-05-31 00:00 UTC", "2026-04-17 21:00", "deadline Fri 17:00", "provider reply Mon 08:00",
                   "excluded 90 min; cause: third_party", "maintenance 120 min"):
        assert figure in text, figure
    assert text.count("<svg") == 3  # VR-1's and VR-2's clocks, rep-api's month

    png = tmp_path / "report.png"
    shot = screenshot(page, png, tmp_path / "profile-shot")
    assert _page_errors(shot.stderr) == []
    image = Image.open(png).convert("RGB")
    assert image.size == WINDOW
    colours = {rgb for _count, rgb in image.getcolors(maxcolors=1 << 20)}
    assert len(colours) > 200  # text, tables and pictures: far from a blank page
    for name in ("met", "breached", "running", "open", "downtime", "maintenance", "excluded", "up"):
        hex_ = COLOUR[name]
        assert tuple(int(hex_[i:i + 2], 16) for i in (1, 3, 5)) in colours, f"no {name} pixels ({hex_})"
    # the top of the page is the heading and cards (not blank), its foot the white after the footer
    top = image.crop((0, 0, WINDOW[0], 220)).getcolors(maxcolors=1 << 20)
    assert len(top) > 20


def test_the_error_check_sees_what_a_page_logs(tmp_path):
    """The check above can fail: a page that logs an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>console.error('boom')</script></body></html>")
    done = _run_chromium(page, tmp_path / "profile", "--dump-dom")
    assert any("boom" in line for line in _page_errors(done.stderr))


if __name__ == "__main__":  # refresh the README's screenshot
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        screenshot(_golden_page(Path(tmp)), Path(sys.argv[1]).resolve(), Path(tmp) / "profile")
    print(f"wrote {sys.argv[1]}")
