"""`slaproc demo`: an embedded broker, a worker and sample traffic, outputs shown live.

What it runs (all on 127.0.0.1, all stopped on Ctrl-C / SIGTERM / `--duration`):
- the broker: `SLAPROC_BROKER` if set, else an embedded Tansu broker (memory storage) on
  a free port; the topics are created with `SLAPROC_PARTITIONS` partitions;
- a worker: `python -m streams.worker` (ticks every second, 2 s allowed lateness),
  /metrics on a fixed port printed at start (6066 when free);
- traffic generated from the wall clock at start (`demo_traffic`): the sample contracts
  (samples/contracts.yaml), a backfill of last month's outages heavy enough for refunds,
  tickets of all four providers opened just long enough ago that at-risk warnings and
  breaches fire within the first minute, a provider reply (`sla.met`), a Neural Magic
  customer raising a ticket to critical (rejected), a Vectorize non-production urgent
  ticket (adjusted to normal), a few bad lines (dead letters); then a trickle of new
  tickets every few seconds.

The shell reads the clock here; the core only sees the timestamps in the events.

Month close and the backfill: ticks move every caught-up partition to the wall clock,
so a partition would pass last month's close before the backfill reaches it, and each
backfilled event would then revise the closed month. So the contracts go out twice:
first effective from this month (nothing to close), then, once the worker has read the
backfill, effective from last month, which closes it once with the backfill in it.

`--feed-only` (docker compose's demo profile): no broker, no worker; feed the traffic to
the broker of `SLAPROC_BROKER` (a running worker reads it) and exit, or keep trickling
for `--duration` seconds.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator, TextIO

import yaml

UTC = timezone.utc
REPO = Path(__file__).resolve().parents[2]
DEFAULT_WEB_PORT = 6066
TICK_INTERVAL_SECONDS = 1.0
ALLOWED_LATENESS_SECONDS = 2.0
# One partition unless SLAPROC_PARTITIONS says otherwise: measured on Tansu (2 cores), the
# worker applies only ~1.2 ticks a second, so with 1 s ticks and more partitions its time
# falls further and further behind the wall clock (deadlines fire late).
DEMO_PARTITIONS = 1
TRICKLE_EVERY_SECONDS = 4.0
# Seconds between a trickled ticket's arrival and its deadline: at-risk at once, the
# breach (or the provider's reply before it) a few seconds later.
TRICKLE_LEAD_SECONDS = 20

DEMO_DESCRIPTION = ("Embedded broker + worker + sample traffic of all four providers; outputs shown live, "
                    "/metrics served. Ctrl-C stops everything it started.")
DEMO_EPILOG = """\
what you see:
  one line per output event as the worker emits it: time, type, ticket or
  customer/service, then the details (priority, metric, threshold, due time,
  uptime, refund, dead-letter reason). Within the first minute: sla.at_risk,
  sla.breached, sla.met, notices, uptime.month_closed and refund.eligible for
  last month, and dead letters for the bad sample lines.

environment:
  SLAPROC_BROKER        use this broker instead of starting the embedded one
  SLAPROC_TOPIC_PREFIX  topic prefix (default none)
  SLAPROC_PARTITIONS    partitions of the topics (default 1; --feed-only: 4)

example:
  slaproc demo                      # Ctrl-C stops the worker and the broker
  SLAPROC_BROKER=kafka://kafka:9092 slaproc demo --feed-only
"""


# --- flags -----------------------------------------------------------------------------

def add_demo_flags(parser: argparse.ArgumentParser) -> None:
    """The demo's flags (also parsed from `args.extra` when the CLI did not declare them)."""
    parser.add_argument("--feed-only", action="store_true", default=None,
                        help="only feed the sample traffic to the broker of SLAPROC_BROKER "
                             "(default kafka://localhost:9092) and exit; no broker, no worker")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop by itself after SECONDS (default: run until Ctrl-C; "
                             "with --feed-only: keep trickling for SECONDS)")
    parser.add_argument("--web-port", type=int, default=None, metavar="PORT",
                        help=f"the worker's /metrics port (default SLAPROC_WEB_PORT, else {DEFAULT_WEB_PORT} "
                             "when free, else a free port)")
    parser.add_argument("--no-color", action="store_true", default=None,
                        help="plain output even on a terminal (colour is only used on a TTY anyway)")
    from streams.worker import add_kafka_flags

    add_kafka_flags(parser)  # --kafka-*: the worker's (for --feed-only against a managed cluster)


def demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slaproc demo", description=DEMO_DESCRIPTION,
        epilog=DEMO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_demo_flags(parser)
    return parser


@dataclass(frozen=True)
class DemoOptions:
    feed_only: bool = False
    duration: float | None = None  # seconds; None = until a signal
    web_port: int | None = None
    color: bool = True
    kafka_flags: tuple[tuple[str, str], ...] = ()  # the --kafka-* flags given: (dest, value)


def options_from(args: argparse.Namespace) -> DemoOptions:
    """Flags declared on the CLI's subparser win; the rest are parsed from `args.extra`."""
    parsed = demo_parser().parse_args(list(getattr(args, "extra", None) or []))
    def pick(name: str) -> Any:
        value = getattr(args, name, None)
        return value if value is not None else getattr(parsed, name)
    duration = pick("duration")
    if duration is not None and duration <= 0:
        demo_parser().error("--duration must be > 0 seconds")
    kafka_flags = tuple((name, str(pick(name))) for name in vars(parsed)
                        if name.startswith("kafka_") and pick(name) is not None)
    return DemoOptions(feed_only=bool(pick("feed_only")), duration=duration,
                       web_port=pick("web_port"), color=not pick("no_color"), kafka_flags=kafka_flags)


# --- traffic (pure: the time comes in as an argument) ----------------------------------

def _ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_start(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def backfill_month(now: datetime, close_delay: timedelta = timedelta(hours=1)) -> datetime:
    """Start (UTC) of the latest month already closed at `now` (its end + the close delay
    passed, with a few minutes to spare): normally last month."""
    return _month_start(_month_start(now - close_delay - timedelta(minutes=5)) - timedelta(days=1))


def find_contracts_yaml() -> Path:
    """samples/contracts.yaml of the source tree, else of the working directory (the image)."""
    for candidate in (REPO / "samples" / "contracts.yaml", Path.cwd() / "samples" / "contracts.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("samples/contracts.yaml not found (run the demo from the slaproc source tree)")


@dataclass
class Traffic:
    """Input lines (raw bytes, as a producer would send them) in the order to send them."""

    contracts: list[bytes]  # effective from the month after the backfill: nothing to close yet
    backfill: list[bytes]   # last month's monitoring events
    contracts_from_backfill: list[bytes]  # the same, effective from last month: closes it
    opening: list[bytes]    # tickets of the first minute and the bad lines
    tag: str                # makes ids unique per run (an external broker keeps old runs)


def _line(event: dict[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()


class _Ids:
    def __init__(self, tag: str) -> None:
        self.tag = tag
        self._n = itertools.count(1)

    def event(self) -> str:
        return f"demo-{self.tag}-{next(self._n):05d}"


def demo_traffic(now: datetime, contracts_yaml: Path, tag: str | None = None) -> Traffic:
    """The demo's traffic for a demo started at `now` (UTC-aware).

    Targets used for the first minute are the calendar (24x7) ones, so the show does not
    depend on the weekday: Neural Magic critical 30 min, Neptune Extended critical 2 h,
    Rescale Mission Critical urgent 1 h and high 2 h (order form, on the 24x7 calendar). Vectorize's clocks run in New York business hours; its part is the
    non-production adjustment and last month's uptime (refunds for acme-api and globex-rag).
    """
    tag = tag or now.strftime("%H%M%S")
    ids = _Ids(tag)
    month = backfill_month(now)

    entries = yaml.safe_load(contracts_yaml.read_text())["contracts"]

    def contract_lines(effective_from: datetime) -> list[bytes]:
        lines = []
        for entry in entries:
            entry = {**json.loads(json.dumps(entry, default=str)), "effective_from": _ts(effective_from)}
            lines.append(_line({"event_id": ids.event(), "type": "contract.upserted", "occurred_at": _ts(now),
                                **entry}))
        return lines

    after_backfill = _month_start(month + timedelta(days=32))
    def day(d: int, h: int, m: int = 0) -> datetime:
        return month + timedelta(days=d - 1, hours=h, minutes=m)

    def mon(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
        return {"event_id": ids.event(), "type": kind, "occurred_at": _ts(at), **fields}

    out_a, out_b, out_c = (f"out-{tag}-{i}" for i in "abc")
    out_d, out_e, out_f = (f"out-{tag}-{i}" for i in "def")
    maint = f"mnt-{tag}-1"
    backfill = [
        # acme-api (Vectorize Pro, 99.5 %, 1,000 USD a month): a customer report 10 min
        # before the internal alert, 9 h down in all -> refund.
        mon("outage.reported", day(10, 13, 50), outage_id=out_a, service_id="acme-api", ticket_id=f"R-{tag}-1"),
        mon("outage.started", day(10, 14), outage_id=out_a, service_id="acme-api", scope="all_users"),
        mon("outage.classified", day(10, 15), outage_id=out_a, service_id="acme-api", cause="provider"),
        mon("outage.resolved", day(10, 22, 50), outage_id=out_a, service_id="acme-api"),
        # ... an outage the customer caused (excluded) ...
        mon("outage.started", day(18, 3), outage_id=out_b, service_id="acme-api", scope="all_users"),
        mon("outage.resolved", day(18, 5), outage_id=out_b, service_id="acme-api"),
        mon("outage.classified", day(18, 9), outage_id=out_b, service_id="acme-api",
            cause="excluded", category="customer_misuse"),
        # ... and downtime inside a maintenance window notified 4 days ahead (not downtime).
        mon("maintenance.scheduled", day(20, 12), maintenance_id=maint, service_id="acme-api",
            starts_at=_ts(day(24, 2)), ends_at=_ts(day(24, 4))),
        mon("outage.started", day(24, 2, 30), outage_id=out_c, service_id="acme-api", scope="all_users"),
        mon("outage.resolved", day(24, 3, 30), outage_id=out_c, service_id="acme-api"),
        # globex-rag (Vectorize Enterprise, 99.9 % from the order form, 60,000 USD a year):
        # a partial outage (not downtime), then 2 h down -> refund.
        mon("outage.started", day(5, 8), outage_id=out_d, service_id="globex-rag", scope="partial"),
        mon("outage.resolved", day(5, 9), outage_id=out_d, service_id="globex-rag"),
        mon("outage.started", day(12, 16), outage_id=out_e, service_id="globex-rag", scope="all_users"),
        mon("outage.resolved", day(12, 18), outage_id=out_e, service_id="globex-rag"),
        # tinkerbox (Vectorize Starter, 99 %): 30 min down, commitment met.
        mon("outage.started", day(21, 7), outage_id=out_f, service_id="tinkerbox-pipelines", scope="all_users"),
        mon("outage.resolved", day(21, 7, 30), outage_id=out_f, service_id="tinkerbox-pipelines"),
    ]

    def ago(**delta: float) -> datetime:
        return now - timedelta(**delta)

    def tk(kind: str, at: datetime, ticket_id: str, **fields: Any) -> dict[str, Any]:
        return {"event_id": ids.event(), "type": kind, "occurred_at": _ts(at), "ticket_id": ticket_id, **fields}

    t = lambda name: f"{name}-{tag}"  # noqa: E731 - ticket ids of this run
    opening = [
        # Neural Magic critical, 30 min 24x7: opened 29 min 45 s ago -> at-risk now, breach in 15 s.
        tk("ticket.opened", ago(minutes=29, seconds=45), t("NM-1"), customer_id="orbital-labs", priority="critical"),
        # Neptune Extended critical, 2 h 24x7: breach in 30 s.
        tk("ticket.opened", ago(hours=1, minutes=59, seconds=30), t("NEP-1"), customer_id="kranich-analytics",
           priority="critical"),
        # Rescale Mission Critical urgent, 1 h (order form) on the 24x7 calendar: breach in 45 s.
        tk("ticket.opened", ago(minutes=59, seconds=15), t("RS-1"), customer_id="aerofoil-dynamics",
           priority="urgent"),
        # Neptune Extended critical answered after 21 min: first response met (the next
        # update is due every 2 h, 24x7).
        tk("ticket.opened", ago(minutes=25), t("NEP-2"), customer_id="kranich-analytics", priority="critical"),
        tk("ticket.replied", ago(minutes=4), t("NEP-2"), author="provider", public=True),
        # Neural Magic critical answered after 10 min: sla.met.
        tk("ticket.opened", ago(minutes=12), t("NM-2"), customer_id="orbital-labs", priority="critical"),
        tk("ticket.replied", ago(minutes=2), t("NM-2"), author="provider", public=True),
        # A Neural Magic customer cannot raise a ticket to critical: rejected.
        tk("ticket.opened", ago(minutes=20), t("NM-3"), customer_id="orbital-labs", priority="high"),
        tk("ticket.priority_changed", ago(minutes=1), t("NM-3"), priority="critical", requested_by="customer"),
        # Vectorize: urgent is not available for non-production systems -> normal.
        tk("ticket.opened", ago(minutes=5), t("VZ-1"), customer_id="acme", priority="urgent",
           environment="non_production"),
    ]
    bad = [
        b"this line is not JSON",
        _line(tk("ticket.replied", ago(minutes=1), t("NEVER-OPENED"), author="provider", public=True)),
        _line({"event_id": ids.event(), "type": "ticket.opened", "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%S"),
               "ticket_id": t("NAIVE"), "customer_id": "acme", "priority": "low"}),
        _line({"event_id": ids.event(), "type": "ticket.teleported", "occurred_at": _ts(now), "ticket_id": t("NM-1")}),
    ]
    return Traffic(contracts=contract_lines(after_backfill), backfill=[_line(e) for e in backfill],
                   contracts_from_backfill=contract_lines(month),
                   opening=[_line(e) for e in opening] + bad, tag=tag)


@dataclass
class Trickle:
    """New tickets every few seconds so the screen stays alive; each arrives
    `TRICKLE_LEAD_SECONDS` before its deadline. Every other Neural Magic ticket gets a
    provider reply in time (sla.met), the others breach."""

    tag: str
    _n: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _replies: list[tuple[datetime, str]] = field(default_factory=list)  # (due wall time, ticket_id)

    def lines(self, now: datetime) -> list[bytes]:
        """Lines to send at wall time `now`: due replies and one new ticket."""
        n = next(self._n)
        out: list[dict[str, Any]] = []
        ready = [r for r in self._replies if r[0] <= now]
        self._replies = [r for r in self._replies if r[0] > now]
        for _, ticket_id in ready:
            out.append({"event_id": f"demo-{self.tag}-r{n}-{ticket_id}", "type": "ticket.replied",
                        "occurred_at": _ts(now), "ticket_id": ticket_id, "author": "provider", "public": True})
        lead = timedelta(seconds=TRICKLE_LEAD_SECONDS)
        kind = n % 4
        ticket_id = f"{('NM', 'NEP', 'RS', 'VZ')[kind]}-{self.tag}-t{n}"
        opened = {"event_id": f"demo-{self.tag}-t{n}", "type": "ticket.opened", "ticket_id": ticket_id}
        if kind == 0:
            opened.update(occurred_at=_ts(now - timedelta(minutes=30) + lead), customer_id="orbital-labs",
                          priority="critical")
            if n % 8 == 0:
                self._replies.append((now + lead / 2, ticket_id))
        elif kind == 1:
            opened.update(occurred_at=_ts(now - timedelta(hours=2) + lead), customer_id="kranich-analytics",
                          priority="critical")
        elif kind == 2:
            opened.update(occurred_at=_ts(now - timedelta(hours=2) + lead), customer_id="aerofoil-dynamics",
                          priority="high")  # 2 h on the order form, 24x7 for high
        else:
            opened.update(occurred_at=_ts(now), customer_id="acme", priority="high", environment="non_production")
        out.append(opened)
        return [_line(e) for e in out]


# --- display -----------------------------------------------------------------------------

_COLORS = {
    "sla.breached": "31;1", "sla.at_risk": "33", "sla.met": "32", "sla.breach_retracted": "32;2",
    "ticket.priority_change_rejected": "34", "ticket.priority_adjusted": "34", "sla.attainment_reported": "36",
    "uptime.month_closed": "36", "refund.eligible": "35;1", "dead_letter": "2",
}


def _hm(instant: str | None) -> str:
    """`2026-11-22T02:41:28Z` -> `11-22 02:41:28Z` (compact; the date matters for old months)."""
    if not instant:
        return "?"
    return instant[5:10] + " " + instant[11:]


def _clock(o: dict[str, Any]) -> str:
    target = o.get("target") or {}
    objective = "" if o.get("binding", True) else " (objective)"
    return (f"{o.get('policy')}/{o.get('plan')} {o.get('priority')} {o.get('metric')}{objective}"
            f" {target.get('amount')} {target.get('unit')} {target.get('clock')}")


def describe(o: dict[str, Any]) -> tuple[str, str]:
    """(subject, details) of one output event, for one terminal line."""
    kind = o.get("type")
    rev = f" (revision {o['revision']})" if (o.get("revision") or 1) > 1 else ""
    if kind == "sla.breached":
        cycle = f" cycle {o['cycle']}" if o.get("metric") == "update" else ""
        return o.get("ticket_id", "?"), f"{_clock(o)}{cycle}  due {_hm(o.get('due_at'))}"
    if kind == "sla.at_risk":
        pct = round(float(o.get("threshold", 0)) * 100)
        return o.get("ticket_id", "?"), f"{_clock(o)}  {pct}% elapsed, due {_hm(o.get('due_at'))}"
    if kind == "sla.met":
        return o.get("ticket_id", "?"), f"{_clock(o)}  met after {o.get('elapsed_minutes')} min"
    if kind == "sla.breach_retracted":
        return o.get("ticket_id", "?"), f"{o.get('reason')}"
    if kind == "ticket.priority_change_rejected":
        return o.get("ticket_id", "?"), f"requested {o.get('requested')}, kept {o.get('kept')}: {o.get('reason')}"
    if kind == "ticket.priority_adjusted":
        return o.get("ticket_id", "?"), (f"requested {o.get('requested')}, effective {o.get('effective')}: "
                                         f"{o.get('reason')}")
    if kind == "sla.attainment_reported":
        return o.get("customer_id", "?"), (f"{o.get('quarter')} {o.get('metric')} {o.get('met')}/"
                                           f"{o.get('measured')} = {o.get('attainment_percent')}%")
    if kind == "uptime.month_closed":
        verdict = "met" if o.get("met") else "NOT MET"
        return f"{o.get('customer_id')}/{o.get('service_id')}", (
            f"{o.get('month')} uptime {o.get('uptime_percent')}% vs {o.get('commitment_percent')}% {verdict}; "
            f"down {o.get('downtime_minutes')} min, excluded {o.get('excluded_minutes')}, "
            f"maintenance {o.get('maintenance_minutes')}{rev}")
    if kind == "refund.eligible":
        return f"{o.get('customer_id')}/{o.get('service_id')}", (
            f"{o.get('month')} refund {o.get('refund_amount')} {o.get('currency')} "
            f"(excess {o.get('excess_minutes')} of {o.get('downtime_minutes')} min), "
            f"claim by {_hm(o.get('claim_deadline'))}{rev}")
    if kind == "dead_letter":
        src = o.get("source")
        where = (f"{src.get('topic')}[{src.get('partition')}]@{src.get('offset')}" if isinstance(src, dict)
                 else str(src))
        return where, str(o.get("error", ""))[:100]
    return "", json.dumps(o, separators=(",", ":"))[:120]


class Display:
    """Prints one line per output; colour only on a TTY."""

    def __init__(self, stream: TextIO, color: bool) -> None:
        self.stream = stream
        self.color = color and stream.isatty() and os.environ.get("NO_COLOR") is None
        self.seen: dict[str, int] = {}

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and code else text

    def info(self, text: str) -> None:
        print(self._paint("1", text), file=self.stream, flush=True)

    def output(self, o: dict[str, Any]) -> None:
        kind = str(o.get("type", "?"))
        self.seen[kind] = self.seen.get(kind, 0) + 1
        subject, details = describe(o)
        stamp = datetime.now().strftime("%H:%M:%S")  # noqa: DTZ005 - the watcher's local wall clock, for display
        label = self._paint(_COLORS.get(kind, ""), f"{kind:<31}")
        print(f"{stamp}  {label} {subject:<22} {details}", file=self.stream, flush=True)

    def summary(self) -> str:
        return ", ".join(f"{n} {k}" for k, n in sorted(self.seen.items())) or "no outputs"


# --- the shell -------------------------------------------------------------------------

def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose_web_port(requested: int | None, environ: dict[str, str]) -> int:
    from streams.testing.harness import free_port

    if requested is not None:
        return requested
    if environ.get("SLAPROC_WEB_PORT", "").strip():
        return int(environ["SLAPROC_WEB_PORT"])
    return DEFAULT_WEB_PORT if _port_free(DEFAULT_WEB_PORT) else free_port()


def _metrics_text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode("utf-8", "replace")
    except OSError:
        return None


def _events_in(text: str, types: set[str]) -> float:
    """Sum of `slaproc_events_in_total{type="..."}` over the types starting with one of `types`."""
    total = 0.0
    prefix = 'slaproc_events_in_total{type="'
    for line in text.splitlines():
        if line.startswith(prefix):
            kind, _, value = line[len(prefix):].partition('"} ')
            if any(kind.startswith(t) for t in types):
                total += float(value)
    return total


async def _create_topics(settings: Any) -> None:
    from streams import kafka_config
    from streams.app import CONTRACTS, INPUT_TOPICS, OUTPUT_TOPICS
    from streams.kafka_admin import create_topics

    # The layout the worker declares itself (streams.app.StreamWorker.declare_topics), with the
    # same connection check and replication factor (capped at the broker count; SPEC §12).
    info = await kafka_config.preflight(settings.broker, settings.kafka)
    factor, _warning = kafka_config.effective_replication_factor(settings.replication_factor, info.brokers)
    kw = dict(replication_factor=factor, kafka=settings.kafka)
    await create_topics(settings.broker, [settings.topic(CONTRACTS)], settings.partitions,
                        {"cleanup.policy": "compact"}, **kw)
    await create_topics(settings.broker, [settings.topic(n) for n in INPUT_TOPICS[1:] + OUTPUT_TOPICS],
                        settings.partitions, **kw)


class _Producer:
    """Routes raw lines to their input topics and keys (streams.testing.harness.route)."""

    def __init__(self, broker_url: str, prefix: str, kafka: Any = None) -> None:
        from aiokafka import AIOKafkaProducer

        from streams.kafka_config import KafkaSettings, producer_kwargs

        self.prefix = prefix
        self.producer = AIOKafkaProducer(**producer_kwargs(broker_url, kafka or KafkaSettings(), linger_ms=5))

    async def start(self) -> None:
        await self.producer.start()

    async def send(self, lines: list[bytes]) -> None:
        from streams.testing.harness import route

        futures = []
        for line in lines:
            topic, key = route(line)
            futures.append(await self.producer.send(self.prefix + topic, line, key=key))
        await asyncio.gather(*futures)

    async def stop(self) -> None:
        await self.producer.stop()


class _OutputTail:
    """Reads every output topic from its current end (so an external broker's old runs
    are not shown) and hands each event to the display."""

    def __init__(self, broker_url: str, prefix: str, display: Display, kafka: Any = None) -> None:
        from aiokafka import AIOKafkaConsumer

        from streams.kafka_config import KafkaSettings, consumer_kwargs

        self.prefix = prefix
        self.display = display
        self.consumer = AIOKafkaConsumer(**consumer_kwargs(broker_url, kafka or KafkaSettings(), group_id=None,
                                                           enable_auto_commit=False, auto_offset_reset="earliest"))

    async def start(self) -> None:
        from aiokafka import TopicPartition

        from streams.app import OUTPUT_TOPICS

        await self.consumer.start()
        await self.consumer.topics()  # refresh metadata: partition counts of existing topics
        tps = [TopicPartition(self.prefix + t, p) for t in OUTPUT_TOPICS
               for p in sorted(self.consumer.partitions_for_topic(self.prefix + t) or ())]
        self.consumer.assign(tps)
        for tp, offset in (await self.consumer.end_offsets(tps)).items():
            self.consumer.seek(tp, offset)

    async def run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=500)
            events = []
            for messages in batch.values():
                for m in messages:
                    try:
                        events.append(json.loads(m.value))
                    except ValueError:
                        events.append({"type": "?", "raw": m.value[:80].decode("utf-8", "replace")})
            for event in sorted(events, key=lambda e: str(e.get("occurred_at", ""))):
                self.display.output(event)

    async def stop(self) -> None:
        await self.consumer.stop()


def _start_worker(worker: Any) -> None:
    """Start the worker process like WorkerProcess.start, plus: it dies with the demo
    (PR_SET_PDEATHSIG), so even a kill -9 of the demo leaves no worker behind.
    Called from the main thread: the death signal follows the thread that spawned it."""
    from streams.testing.broker import _die_with_parent

    log = open(worker.log_path, "ab")
    try:
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "streams.worker"], env=worker.env(), cwd=REPO,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    finally:
        log.close()


async def _stop_worker(worker: Any, grace: float, hurry: asyncio.Event) -> None:
    """SIGTERM (Faust commits and stops), then SIGKILL after `grace` s or a second Ctrl-C."""
    proc = worker.process
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while proc.poll() is None and time.monotonic() < deadline and not hurry.is_set():
        await asyncio.sleep(0.1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the leader or any straggler of its group
    except ProcessLookupError:
        pass
    await asyncio.to_thread(proc.wait)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Demo:
    def __init__(self, options: DemoOptions, out: TextIO | None = None) -> None:
        self.options = options
        # sys.stdout when called, not when this module was imported (a default argument would keep
        # whatever stdout was then: under pytest, a capture closed since)
        self.display = Display(out if out is not None else sys.stdout, options.color)
        self.stop = asyncio.Event()
        self.hurry = asyncio.Event()  # a second signal: kill, do not wait
        self.broker: Any = None
        self.worker: Any = None
        self.workdir: Path | None = None
        self.failed: str | None = None

    def _on_signal(self) -> None:
        if self.stop.is_set():
            self.hurry.set()
        self.stop.set()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True if the demo should stop."""
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass
        return self.stop.is_set()

    async def _watch_duration(self) -> None:
        if self.options.duration is not None:
            await self._sleep(self.options.duration)
            self.stop.set()

    async def _watch_worker(self) -> None:
        while not self.stop.is_set():
            if self.worker.process.poll() is not None:
                self.failed = f"the worker exited with {self.worker.process.returncode}"
                self.stop.set()
                return
            await self._sleep(0.5)

    async def _wait_events(self, metrics_url: str, types: set[str], count: int, timeout: float) -> bool:
        """Until the worker has read `count` input events whose type starts with one of
        `types` (its slaproc_events_in_total counter); False on timeout or stop."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = await asyncio.to_thread(_metrics_text, metrics_url)
            if text and _events_in(text, types) >= count:
                return True
            if await self._sleep(0.2):
                return False
        return False

    async def _trickle(self, producer: _Producer, tag: str) -> None:
        trickle = Trickle(tag)
        while not await self._sleep(TRICKLE_EVERY_SECONDS):
            await producer.send(trickle.lines(datetime.now(UTC)))

    async def run(self) -> int:
        from streams.settings import SettingsError, WorkerSettings

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        try:
            from streams.worker import kafka_env

            # the --kafka-* flags over their variables, for the demo's clients and its worker
            env = kafka_env(argparse.Namespace(**dict(self.options.kafka_flags)), dict(os.environ))
            kafka_overrides = {var: env.get(var, "") for var in {*env, *os.environ}
                               if var.startswith("SLAPROC_KAFKA_") and env.get(var) != os.environ.get(var)}
            settings = WorkerSettings.from_env(env)
            contracts_yaml = find_contracts_yaml()
        except (SettingsError, FileNotFoundError) as err:
            print(f"slaproc demo: {err}", file=sys.stderr)
            return 2
        # --feed-only: the duration is the trickle's, after the fixed feed (see _feed_only).
        tasks: list[asyncio.Task[Any]] = [] if self.options.feed_only else [
            asyncio.create_task(self._watch_duration())]
        producer: _Producer | None = None
        tail: _OutputTail | None = None
        try:
            external = bool(os.environ.get("SLAPROC_BROKER", "").strip()) or self.options.feed_only
            if not self.options.feed_only and not os.environ.get("SLAPROC_PARTITIONS", "").strip():
                settings = settings.replace(partitions=DEMO_PARTITIONS)
            if not external:
                from streams.testing.broker import EmbeddedBroker

                self.workdir = Path(tempfile.mkdtemp(prefix="slaproc-demo-"))
                self.broker = EmbeddedBroker(log_path=self.workdir / "broker.log")
                await self.broker.astart()
                settings = settings.replace(broker=self.broker.url)
                self.display.info(f"broker:  {self.broker.url} (embedded Tansu, memory storage, "
                                  f"pid {self.broker.pid})")
            else:
                self.display.info(f"broker:  {settings.broker}")
            if self.stop.is_set():
                return 0
            try:
                await _create_topics(settings)
            except Exception as err:  # kafka_config.KafkaConfigError: one line per problem
                for problem in getattr(err, "problems", None) or [str(err)]:
                    print(f"slaproc demo: {problem}", file=sys.stderr)
                return 2
            producer = _Producer(settings.broker, settings.topic_prefix, settings.kafka)
            await producer.start()
            traffic = demo_traffic(datetime.now(UTC), contracts_yaml)

            if self.options.feed_only:
                return await self._feed_only(producer, traffic)

            from streams.testing.harness import WorkerProcess

            if self.workdir is None:
                self.workdir = Path(tempfile.mkdtemp(prefix="slaproc-demo-"))
            web_port = choose_web_port(self.options.web_port, dict(os.environ))
            self.worker = WorkerProcess(
                broker_url=settings.broker, prefix=settings.topic_prefix, partitions=settings.partitions,
                app_id=os.environ.get("SLAPROC_APP_ID") or "slaproc-demo", data_dir=self.workdir / "data",
                web_port=web_port, tick_interval=TICK_INTERVAL_SECONDS, log_path=self.workdir / "worker.log",
                extra_env={"SLAPROC_ALLOWED_LATENESS": str(ALLOWED_LATENESS_SECONDS), "SLAPROC_WEB_ENABLED": "1",
                           "SLAPROC_CREATE_TOPICS": "1", "SLAPROC_LOG_LEVEL": "warning",
                           # its own one-broker cluster: replication factor 1, not the production 3 (and a warning)
                           **({} if external else {"SLAPROC_REPLICATION_FACTOR": "1"}), **kafka_overrides})
            _start_worker(self.worker)
            metrics_url = f"{self.worker.url}/metrics"
            self.display.info(f"worker:  pid {self.worker.process.pid}, log {self.worker.log_path}")
            self.display.info(f"metrics: {metrics_url}")
            self.display.info("Ctrl-C stops the feed, the worker and the broker.")
            tasks.append(asyncio.create_task(self._watch_worker()))

            tail = _OutputTail(settings.broker, settings.topic_prefix, self.display, settings.kafka)
            await tail.start()
            tasks.append(asyncio.create_task(tail.run()))

            n = len(traffic.contracts)
            await producer.send(traffic.contracts)
            self.display.info(f"sent {n} contracts (all four providers); waiting for the worker to read them ...")
            if not await self._wait_events(metrics_url, {"contract.upserted"}, n, timeout=90):
                return self._finish("the worker did not read the contracts within 90 s")
            month = backfill_month(datetime.now(UTC)).strftime("%Y-%m")
            await producer.send(traffic.backfill)
            if not await self._wait_events(metrics_url, {"outage.", "maintenance."}, len(traffic.backfill), 30):
                return self._finish("the worker did not read the monitoring backfill within 30 s")
            await producer.send(traffic.contracts_from_backfill)
            self.display.info(f"sent {len(traffic.backfill)} monitoring events of {month} (backfill), then the "
                              f"contracts again, effective from {month}: that month closes")
            # Ticket times are taken now, not at the start: the clocks count from here.
            opening = demo_traffic(datetime.now(UTC), contracts_yaml, tag=traffic.tag).opening
            await producer.send(opening)
            self.display.info(f"sent {len(opening)} ticket events and bad lines; a new ticket every "
                              f"{TRICKLE_EVERY_SECONDS:g} s from now on")
            tasks.append(asyncio.create_task(self._trickle(producer, traffic.tag)))
            await self.stop.wait()
            return self._finish()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if tail is not None:
                await _quietly(tail.stop())
            if producer is not None:
                await _quietly(producer.stop())
            if self.worker is not None:
                await _stop_worker(self.worker, grace=15.0, hurry=self.hurry)
                if self.failed:
                    print(f"--- worker log ({self.worker.log_path}) ---\n{_tail(self.worker.log_path)}",
                          file=sys.stderr)
            if self.broker is not None:
                await asyncio.to_thread(self.broker.stop)
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
            if self.worker is not None or self.broker is not None:
                self.display.info("stopped: " + " and ".join(
                    name for name, part in (("worker", self.worker), ("broker", self.broker)) if part is not None))

    def _finish(self, failure: str | None = None) -> int:
        if failure and not self.stop.is_set():
            self.failed = failure
        if self.failed:
            print(f"slaproc demo: {self.failed}", file=sys.stderr)
            return 1
        self.display.info(f"stopping; seen: {self.display.summary()}")
        return 0

    async def _feed_only(self, producer: _Producer, traffic: Traffic) -> int:
        await producer.send(traffic.contracts)
        self.display.info(f"sent {len(traffic.contracts)} contracts")
        # No worker of ours to ask: give the running workers a moment to read the contracts
        # before the backfill names their services.
        if await self._sleep(5.0):
            return 0
        await producer.send(traffic.backfill)
        self.display.info(f"sent {len(traffic.backfill)} monitoring events of last month")
        if await self._sleep(5.0):
            return 0
        await producer.send(traffic.contracts_from_backfill)
        opening = demo_traffic(datetime.now(UTC), find_contracts_yaml(), tag=traffic.tag).opening
        await producer.send(opening)
        self.display.info(f"sent the contracts again (effective from last month) and {len(opening)} ticket lines")
        if self.options.duration is not None:
            trickle = Trickle(traffic.tag)
            sent = 0
            end = time.monotonic() + self.options.duration
            while time.monotonic() + TRICKLE_EVERY_SECONDS <= end and not await self._sleep(TRICKLE_EVERY_SECONDS):
                lines = trickle.lines(datetime.now(UTC))
                await producer.send(lines)
                sent += len(lines)
            self.display.info(f"trickled {sent} ticket lines")
        return 0


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        pass


def run_demo(args: argparse.Namespace) -> int:
    """Entry point of `slaproc demo`. Returns the exit code (0 after Ctrl-C / SIGTERM)."""
    options = options_from(args)
    return asyncio.run(Demo(options).run())


if __name__ == "__main__":
    sys.exit(run_demo(argparse.Namespace(extra=sys.argv[1:])))
