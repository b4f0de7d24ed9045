"""Worker health: broker connectivity, liveness/readiness, and a quiet log during broker outages.

- `broker_reachable(servers)`: one Kafka ApiVersions round trip (the first request any client
  sends) to each bootstrap server, with a deadline; True as soon as one answers. A refused
  port fails at once, a blackholed one at the deadline. No client-library internals: a raw
  socket and the documented wire format (request header v1, ApiVersions v0).
- `RateLimitedLog`: a logging filter for the Kafka client's loggers. aiokafka logs every failed
  connection attempt (~115 lines/s against a refused port); the filter lets one line per message
  template through per `every` seconds and says how many it held back.
- `Health`: what `/health` (liveness) and `/ready` (readiness) answer, fed by the worker.
"""
from __future__ import annotations

import asyncio
import ssl
import logging
import struct
import time
from dataclasses import dataclass, field
from typing import Iterable

__all__ = ["broker_reachable", "RateLimitedLog", "quiet_kafka_client_logs", "Health"]

log = logging.getLogger(__name__)

_API_VERSIONS = 18


async def _api_versions(host: str, port: int, timeout: float, ssl_context: ssl.SSLContext | None = None) -> bool:
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        if ssl_context is not None:  # the way the clients connect (SLAPROC_KAFKA_*: streams/kafka_config.py)
            await asyncio.wait_for(writer.start_tls(ssl_context, server_hostname=host), timeout)
        client_id = b"slaproc-health"
        correlation = 0x51A
        body = struct.pack(">hhih", _API_VERSIONS, 0, correlation, len(client_id)) + client_id
        writer.write(struct.pack(">i", len(body)) + body)
        await asyncio.wait_for(writer.drain(), timeout)
        head = await asyncio.wait_for(reader.readexactly(8), timeout)
        size, got = struct.unpack(">ii", head)
        return got == correlation and size >= 4
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):  # ssl.SSLError is an OSError
        return False
    finally:
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 0.5)
            except (OSError, asyncio.TimeoutError):
                pass


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    return (host.strip("[]") or "localhost", int(port or 9092)) if host else (server.strip(), 9092)


async def broker_reachable(servers: str | Iterable[str], timeout: float = 2.0,
                           ssl_context: ssl.SSLContext | None = None) -> bool:
    """True if at least one bootstrap server answers a Kafka ApiVersions request within `timeout`
    (over TLS when `ssl_context` is given: a TLS listener never answers a plaintext request)."""
    if isinstance(servers, str):
        servers = [s for s in servers.replace(";", ",").split(",") if s.strip()]
    checks = [asyncio.ensure_future(_api_versions(*_host_port(s), timeout, ssl_context)) for s in servers]
    try:
        for done in asyncio.as_completed(checks):
            if await done:
                return True
        return False
    finally:
        for check in checks:
            check.cancel()


class RateLimitedLog(logging.Filter):
    """Let through one record per (logger, message template) every `every` seconds; the next one
    let through says how many were held back. Records below WARNING pass untouched."""

    def __init__(self, every: float = 30.0, clock=time.monotonic) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            self._held[key] = self._held.get(key, 0) + 1
            return False
        self._last[key] = now
        held = self._held.pop(key, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {self.every:.0f} s not logged]"
        return True


def quiet_kafka_client_logs(every: float = 30.0) -> RateLimitedLog:
    """Install one `RateLimitedLog` on every aiokafka logger (a logger's filters do not apply to
    its children's records, so each is filtered). Idempotent; returns the filter."""
    import aiokafka  # noqa: F401  (its modules create their loggers on import)
    import aiokafka.conn, aiokafka.client  # noqa: E401,F401

    manager = logging.Logger.manager
    names = sorted(n for n in manager.loggerDict if n == "aiokafka" or n.startswith("aiokafka."))
    existing = next((f for f in logging.getLogger("aiokafka").filters if isinstance(f, RateLimitedLog)), None)
    flt = existing or RateLimitedLog(every)
    for name in names:
        logger = logging.getLogger(name)
        if flt not in logger.filters:
            logger.addFilter(flt)
    return flt


@dataclass
class Health:
    """Liveness and readiness of one worker.

    Live (`/health` 200) unless an agent crashed (the worker is then on its way out with a
    non-zero exit). Ready (`/ready` 200) when live, started (partitions assigned at least once)
    and the broker answered the last connectivity check; otherwise 503 with the reasons.
    """

    started: bool = False
    fatal: str | None = None
    broker_connected: bool | None = None  # None: not checked yet
    broker_down_since: float | None = None  # monotonic
    reasons_extra: list[str] = field(default_factory=list)

    def live(self) -> tuple[bool, list[str]]:
        return (self.fatal is None, [] if self.fatal is None else [self.fatal])

    def ready(self) -> tuple[bool, list[str]]:
        reasons = []
        if self.fatal is not None:
            reasons.append(self.fatal)
        if not self.started:
            reasons.append("starting: no partition assignment yet")
        if self.broker_connected is None:
            reasons.append("broker connectivity not checked yet")
        elif not self.broker_connected:
            since = time.monotonic() - (self.broker_down_since or time.monotonic())
            reasons.append(f"broker unreachable for {since:.0f} s")
        return (not reasons, reasons)
