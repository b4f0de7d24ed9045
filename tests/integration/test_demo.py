"""`slaproc demo`: the generated traffic (replayed, no broker) and the live demo as a user runs it."""
from __future__ import annotations

import calendar
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from streams.demo import Trickle, backfill_month, demo_traffic, find_contracts_yaml
from streams.testing.harness import free_port
from streams.replay import Replayer

REPO = Path(__file__).resolve().parents[2]
UTC = timezone.utc
# A Sunday: business-hours clocks do not run, the demo's first minute must not need them.
SUNDAY = datetime(2026, 11, 22, 2, 41, 13, tzinfo=UTC)


def _replay(now: datetime, seconds: int) -> list[dict]:
    """The demo's lines in the order the demo sends them, then `seconds` of trickle."""
    traffic = demo_traffic(now, find_contracts_yaml(), tag="t")
    replayer = Replayer([])
    lines = traffic.contracts + traffic.backfill + traffic.contracts_from_backfill + traffic.opening
    for i, line in enumerate(lines):
        replayer.feed_line(line, f"line {i + 1}")
    trickle = Trickle("t")
    for step in range(1, seconds // 4 + 1):
        for line in trickle.lines(now + timedelta(seconds=4 * step)):
            replayer.feed_line(line, "trickle")
    return [json.loads(line) for line in replayer.finish(now + timedelta(seconds=seconds)).sorted_lines()]


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize("now", [SUNDAY, datetime(2026, 3, 2, 0, 30, tzinfo=UTC), datetime(2026, 7, 15, 14, 0, tzinfo=UTC)],
                         ids=["sunday", "first-hour-of-a-month", "weekday-afternoon"])
def test_demo_traffic_makes_everything_happen_in_the_first_minute(now):
    outputs = _replay(now, 60)
    first_minute = [o for o in outputs if _instant(o["occurred_at"]) <= now + timedelta(seconds=60)]
    by_type: dict[str, list[dict]] = {}
    for o in first_minute:
        by_type.setdefault(o["type"], []).append(o)

    # Breaches of all three 24x7 clocks, due within the first minute, none retracted.
    breached = {o["ticket_id"]: o for o in by_type["sla.breached"]}
    for ticket in ("NM-1-t", "NEP-1-t", "RS-1-t"):
        assert now < _instant(breached[ticket]["due_at"]) <= now + timedelta(seconds=60)
    assert {o["policy"] for o in by_type["sla.breached"]} >= {"neural-magic", "neptune", "rescale"}
    assert "sla.breach_retracted" not in by_type
    assert {o["threshold"] for o in by_type["sla.at_risk"] if o["ticket_id"] == "NM-1-t"} == {0.5, 0.75, 0.9}
    assert {o["ticket_id"] for o in by_type["sla.met"]} >= {"NM-2-t", "NEP-2-t"}
    [rejected] = by_type["ticket.priority_change_rejected"]
    assert (rejected["ticket_id"], rejected["requested"], rejected["kept"]) == ("NM-3-t", "critical", "high")
    adjusted = {o["ticket_id"]: o for o in by_type["ticket.priority_adjusted"]}
    assert (adjusted["VZ-1-t"]["requested"], adjusted["VZ-1-t"]["effective"]) == ("urgent", "normal")
    assert len(by_type["dead_letter"]) == 4

    # Last month closes once per service (the contracts-twice order: no revisions), with
    # the scenario's hand figures: acme-api 13:50-22:50 = 540 min down, 2 h excluded,
    # 1 h inside notified maintenance; globex-rag 2 h down (the partial hour is not downtime).
    month = backfill_month(now)
    assert month < now.replace(day=1, hour=0, minute=0, second=0) <= now - timedelta(hours=1)
    month_name = month.strftime("%Y-%m")
    total = calendar.monthrange(month.year, month.month)[1] * 1440
    closed = {o["service_id"]: o for o in by_type["uptime.month_closed"]}
    assert set(closed) == {"acme-api", "globex-rag", "globex-ingest", "tinkerbox-pipelines"}
    assert all(o["month"] == month_name and o["revision"] == 1 for o in closed.values())
    assert (closed["acme-api"]["downtime_minutes"], closed["acme-api"]["excluded_minutes"],
            closed["acme-api"]["maintenance_minutes"], closed["acme-api"]["met"]) == (540, 120, 60, False)
    assert (closed["globex-rag"]["downtime_minutes"], closed["globex-rag"]["met"]) == (120, False)
    assert (closed["tinkerbox-pipelines"]["downtime_minutes"], closed["tinkerbox-pipelines"]["met"]) == (30, True)
    refunds = {o["service_id"]: o for o in by_type["refund.eligible"]}
    assert set(refunds) == {"acme-api", "globex-rag"}
    for service, commitment, fee in (("acme-api", "99.5", 1000), ("globex-rag", "99.9", 5000)):
        excess = Decimal(closed[service]["downtime_minutes"]) - Decimal(total) * (100 - Decimal(commitment)) / 100
        expected = (excess / total * fee).quantize(Decimal("0.01"), ROUND_HALF_UP)
        assert Decimal(refunds[service]["refund_amount"]) == expected


def test_trickle_keeps_breaching_and_meeting():
    outputs = _replay(SUNDAY, 120)
    late = [o for o in outputs if _instant(o["occurred_at"]) > SUNDAY + timedelta(seconds=60)]
    kinds = {o["type"] for o in late}
    assert {"sla.breached", "sla.met", "ticket.priority_adjusted"} <= kinds
    # At-risk warnings are dated at their thresholds (before the ticket arrived): pick them by ticket.
    second_minute = {f"{p}-t-t{n}" for p in ("NM", "NEP", "RS") for n in range(16, 31)}
    assert {o["ticket_id"] for o in outputs if o["type"] == "sla.at_risk"} & second_minute
    # Trickled tickets are "<provider>-t-t<n>"; every other Neural Magic one is answered in time.
    met = {o["ticket_id"] for o in late if o["type"] == "sla.met"}
    breached = {o["ticket_id"] for o in late if o["type"] == "sla.breached"}
    assert any(t.startswith("NM-t-t") for t in met)
    assert any(t.startswith("NM-t-t") for t in breached)
    assert not met & breached


# --- the live demo ---------------------------------------------------------------------

WANTED = ("sla.breached", "sla.at_risk", "uptime.month_closed", "refund.eligible")


def _children(pid: int) -> dict[int, str]:
    """Direct children of `pid` (pid -> command line), from /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.broker
def test_live_demo_shows_everything_within_a_minute_and_leaves_nothing_behind():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAPROC_")}
    env["PYTHONUNBUFFERED"] = "1"
    port = free_port()
    started = time.monotonic()
    demo = subprocess.Popen([sys.executable, "-m", "streams.cli", "demo", "--duration", "75", "--web-port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for raw in demo.stdout:
            lines.put(raw.decode(errors="replace").rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: dict[str, float] = {}
    transcript: list[str] = []
    children: dict[int, str] = {}
    metrics_ok = False
    try:
        while time.monotonic() - started < 80:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                line = ""
            if line is None:
                break
            if line:
                transcript.append(line)
                parts = line.split()
                if len(parts) > 1 and parts[1] in WANTED:
                    seen.setdefault(parts[1], time.monotonic() - started)
            children.update(_children(demo.pid))
            if not metrics_ok and any(line.startswith("metrics:") for line in transcript):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                        body = response.read().decode()
                    metrics_ok = "slaproc_events_in_total" in body and "slaproc_ticks_total" in body
                except OSError:
                    pass
            if set(seen) == set(WANTED) and metrics_ok:
                break
        text = "\n".join(transcript)
        assert set(seen) == set(WANTED), f"missing {set(WANTED) - set(seen)} after {time.monotonic() - started:.0f} s:\n{text}"
        assert all(t < 60 for t in seen.values()), f"seen at {seen}\n{text}"
        assert metrics_ok, f"/metrics on port {port} never answered with slaproc_ series\n{text}"
        # the broker's boot is waited for quietly: aiokafka logged each refused connection at ERROR
        assert not [line for line in transcript if "Unable connect" in line], text
        # the worker's log is read by people: no terminal codes (Faust's spinner), no production
        # replication warning on the demo's own one-broker cluster
        log_path = next(line.rsplit(" log ", 1)[1] for line in transcript if line.startswith("worker:"))
        worker_log = Path(log_path).read_text(errors="replace")
        assert "\x1b[" not in worker_log and "REPLICATION_FACTOR" not in worker_log, worker_log[-2000:]
        assert any("tansu" in cmd for cmd in children.values()), children
        assert any("streams.worker" in cmd for cmd in children.values()), children

        demo.send_signal(signal.SIGINT)  # what Ctrl-C does
        assert demo.wait(timeout=30) == 0
        time.sleep(0.5)
        left = {pid: cmd for pid, cmd in children.items() if _alive(pid)}
        assert not left, f"still running after the demo exited: {left}"
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(10)
        for pid in children:
            if _alive(pid):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
