"""`slaproc gateway`: webhooks in, native events on the input topics (SPEC §13).

Per request: token, or a signature's headers (401) -> bounded body (413, 408) -> the
signature over the body (401) -> mapping (400 not JSON, 422
unmappable) -> the raw body on `<prefix>sla.raw-webhooks` (key = source) and the events on
their input topics (keys as SPEC §1) -> 200 only once the broker acknowledged every record;
503 if it did not within the send timeout (the sender retries; event ids dedupe). An
unmappable body is kept on the raw topic too (header `slaproc-outcome: unmappable`), so
nothing that was authenticated is lost: fix the mapping and `slaproc convert` it.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from aiohttp import web
from aiokafka.errors import MessageSizeTooLargeError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from events.models import INPUT_MODELS
from streams.gateway.config import Mapping
from streams.gateway.mapping import RAW_WEBHOOKS, Conversion, Unmappable, convert, convert_native
from streams.gateway.settings import GATEWAY_ENV_VARS, GatewaySettings

__all__ = ["Record", "Sink", "KafkaSink", "GatewayMetrics", "build_app", "ENDPOINT_SOURCES", "OUTCOMES"]

log = logging.getLogger("slaproc.gateway")

ENDPOINT_SOURCES = ("events", "alertmanager", "zendesk", "jira")
OUTCOMES = ("accepted", "bad_request", "unmappable", "unauthorized", "too_large", "disabled", "unavailable", "error")
_SECRET_OF = {"events": "events_token", "alertmanager": "alertmanager_token", "zendesk": "zendesk_secret",
              "jira": "jira_token"}


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class Sink(Protocol):
    async def send_all(self, records: Sequence[Record]) -> None:
        """Send in order; return once the broker acknowledged every record, raise otherwise."""


class KafkaSink:
    """An aiokafka producer (acks=all)."""

    def __init__(self, connection: dict[str, Any], max_request_size: int) -> None:
        """`connection`: the producer's connection kwargs (streams/kafka_config.producer_kwargs:
        bootstrap servers, TLS, SASL)."""
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(**connection, acks="all", linger_ms=1,
                                         max_request_size=max_request_size, request_timeout_ms=15000)
        self.started = False

    async def start(self) -> None:
        await self.producer.start()
        self.started = True

    async def stop(self) -> None:
        self.started = False
        await self.producer.stop()

    async def send_all(self, records: Sequence[Record]) -> None:
        futures = [await self.producer.send(r.topic, r.value, key=r.key, headers=list(r.headers) or None)
                   for r in records]
        await asyncio.gather(*futures)


class GatewayMetrics:
    """Bounded labels only: source (4 values), outcome (8), event type (the input types)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("slaproc_gateway_requests", "Webhook requests, by source and outcome",
                                ["source", "outcome"], registry=r)
        self.latency = Histogram("slaproc_gateway_request_seconds", "Time to answer a request (incl. broker acks)",
                                 ["source"], registry=r,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.events = Counter("slaproc_gateway_events", "Native events produced, by source and type",
                              ["source", "type"], registry=r)
        self.ignored = Counter("slaproc_gateway_ignored", "Parts of accepted bodies that map to no event",
                               ["source"], registry=r)
        self.truncated = Counter("slaproc_gateway_truncated_alerts",
                                 "Alerts Alertmanager dropped from a notification (truncatedAlerts > 0)", registry=r)
        self.rejected = Counter("slaproc_gateway_rejected_parts",
                                "Parts (alerts) of partially accepted bodies that could not be mapped", ["source"],
                                registry=r)
        for source in ENDPOINT_SOURCES:
            self.latency.labels(source)
            self.ignored.labels(source)
            self.rejected.labels(source)
            for outcome in OUTCOMES:
                self.requests.labels(source, outcome)


#: Seconds a request's body may take to arrive (a slow sender holds a connection and a buffer).
BODY_READ_TIMEOUT = 30

#: Seconds a sender is asked to wait before retrying a 503. Under 60: Zendesk retries a 503 only
#: with a Retry-After below a minute (its webhook retry rules); Jira and Alertmanager retry 5xx anyway.
RETRY_AFTER_SECONDS = 10


def _answer(status: int, outcome: str, headers: dict[str, str] | None = None, **body: Any) -> web.Response:
    return web.json_response({"outcome": outcome, **body}, status=status, headers=headers)


class _Refused(Exception):
    def __init__(self, status: int, outcome: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status, self.outcome, self.reason, self.headers = status, outcome, reason, headers


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _same(a: str | None, b: str) -> bool:
    # surrogateescape: a header that is not UTF-8 (aiohttp decodes headers as such) is a mismatch, not a 500
    return a is not None and hmac.compare_digest(a.encode("utf-8", "surrogateescape"), b.encode())


def _zendesk_timestamp(text: str) -> float | None:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.timestamp() if t.tzinfo else None


class Gateway:
    def __init__(self, settings: GatewaySettings, mapping: Mapping | None, sink: Sink,
                 metrics: GatewayMetrics | None = None, clock: Callable[[], float] = time.time,
                 ready: Callable[[], bool] = lambda: True) -> None:
        self.settings, self.mapping, self.sink = settings, mapping, sink
        self.metrics = metrics or GatewayMetrics()
        self.clock, self.ready = clock, ready

    # ------------------------------------------------------------------ checks

    def _disabled_reason(self, source: str) -> str | None:
        secret = _SECRET_OF[source]
        if getattr(self.settings, secret) is None:
            return f"endpoint not configured: set {GATEWAY_ENV_VARS[secret]}"
        if source != "events" and (self.mapping is None or self.mapping.section(source) is None):
            return f"endpoint not configured: the mapping file (SLAPROC_GATEWAY_MAPPING) has no {source} section"
        return None

    def _check_credentials(self, source: str, request: web.Request) -> bool:
        """What the headers alone can tell, before the body is read (an unauthenticated sender must
        not make the gateway take in a body of up to max_body_bytes): a token is checked here, a
        signature's headers and timestamp too. True when a signature over the body is still to be
        checked (`_check_signature`)."""
        s = self.settings
        if source == "zendesk":
            signature = request.headers.get("X-Zendesk-Webhook-Signature")
            stamp = request.headers.get("X-Zendesk-Webhook-Signature-Timestamp")
            if not signature or not stamp:
                raise _Refused(401, "unauthorized", "missing X-Zendesk-Webhook-Signature or -Timestamp header")
            if s.zendesk_max_skew:
                when = _zendesk_timestamp(stamp)
                if when is None or abs(self.clock() - when) > s.zendesk_max_skew:
                    raise _Refused(401, "unauthorized",
                                   f"signature timestamp {stamp!r} is more than {s.zendesk_max_skew:g} s from now")
            return True
        token = getattr(s, _SECRET_OF[source])
        if source == "jira":
            if request.headers.get("X-Hub-Signature"):  # Jira Cloud webhooks registered with a secret sign the body
                return True
            if _same(request.query.get("token"), token) or _same(_bearer(request), token):
                return False
            raise _Refused(401, "unauthorized", "missing or wrong token (Authorization: Bearer, ?token= or X-Hub-Signature)")
        if not _same(_bearer(request), token):
            raise _Refused(401, "unauthorized", "missing or wrong bearer token")
        return False

    def _check_signature(self, source: str, request: web.Request, body: bytes) -> None:
        """The signature over the body, for the senders `_check_credentials` says sign it."""
        s = self.settings
        if source == "zendesk":
            stamp = request.headers["X-Zendesk-Webhook-Signature-Timestamp"]
            expected = base64.b64encode(hmac.new(s.zendesk_secret.encode(), stamp.encode() + body,
                                                 hashlib.sha256).digest()).decode()
            if not _same(request.headers["X-Zendesk-Webhook-Signature"].strip(), expected):
                raise _Refused(401, "unauthorized", "bad signature")
            return
        expected = "sha256=" + hmac.new(s.jira_token.encode(), body, hashlib.sha256).hexdigest()
        if not _same(request.headers["X-Hub-Signature"].strip(), expected):
            raise _Refused(401, "unauthorized", "bad X-Hub-Signature")

    async def _body(self, request: web.Request) -> bytes:
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise _Refused(413, "too_large", f"body of {request.content_length} bytes is over the limit of {limit}")
        try:
            # a body trickled in slowly holds a connection and up to `limit` bytes: bounded in time
            return await asyncio.wait_for(request.read(), BODY_READ_TIMEOUT)
        except web.HTTPRequestEntityTooLarge:
            raise _Refused(413, "too_large", f"body is over the limit of {limit} bytes") from None
        except asyncio.TimeoutError:
            raise _Refused(408, "bad_request", f"the body did not arrive within {BODY_READ_TIMEOUT} s") from None

    # ------------------------------------------------------------------ requests

    def handler(self, source: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            started = time.perf_counter()
            outcome = "error"  # until an answer says otherwise (an unexpected exception is no acceptance)
            try:
                outcome, response = await self._handle(source, request)
                return response
            except _Refused as refused:
                outcome = refused.outcome
                if refused.status in (401, 413):  # the sender never sees our side: say it here
                    log.info("%s: %d from %s: %s", source, refused.status, request.remote, refused.reason)
                return _answer(refused.status, refused.outcome, refused.headers, reason=refused.reason)
            finally:
                self.metrics.requests.labels(source, outcome).inc()
                self.metrics.latency.labels(source).observe(time.perf_counter() - started)
        return handle

    async def _handle(self, source: str, request: web.Request) -> tuple[str, web.Response]:
        disabled = self._disabled_reason(source)
        if disabled:
            raise _Refused(404, "disabled", disabled)
        signed = self._check_credentials(source, request)
        body = await self._body(request)
        if signed:
            self._check_signature(source, request, body)
        received = datetime.fromtimestamp(self.clock(), timezone.utc).isoformat().replace("+00:00", "Z")
        try:
            try:
                conversion = convert_native(body) if source == "events" else convert(source, body, self.mapping)
            except Unmappable:
                raise
            except Exception as exc:  # a mapping bug must not lose the body: keep it as unmappable
                log.exception("%s: mapping failed", source)
                raise Unmappable(f"could not map the body: {type(exc).__name__}: {exc}") from exc
        except Unmappable as exc:
            reason = str(exc)
            status, outcome = (400, "bad_request") if reason.startswith("not valid JSON") else (422, "unmappable")
            await self._send(source, body, received, outcome, reason, Conversion())
            log.info("%s: %s body kept on %s: %s", source, outcome, RAW_WEBHOOKS, reason)
            return outcome, _answer(status, outcome, reason=reason, kept_on=self.settings.topic(RAW_WEBHOOKS))
        if conversion.rejected:  # some alerts of the body were bad: the rest is sent, the body kept as partial
            reason = "; ".join(conversion.rejected)
            await self._send(source, body, received, "partial", reason, conversion)
            self.metrics.rejected.labels(source).inc(len(conversion.rejected))
            log.warning("%s: %d part(s) of the body rejected, body kept on %s as partial: %s", source,
                        len(conversion.rejected), RAW_WEBHOOKS, reason)
        else:
            await self._send(source, body, received, "accepted", "", conversion)
        for event in conversion.events:
            self.metrics.events.labels(source, event.type if event.type in INPUT_MODELS else "other").inc()
        if conversion.ignored:
            self.metrics.ignored.labels(source).inc(len(conversion.ignored))
        if conversion.truncated_alerts:
            self.metrics.truncated.inc(conversion.truncated_alerts)
            log.warning("alertmanager: %d alert(s) were dropped upstream (truncatedAlerts); set max_alerts: 0 "
                        "on the slaproc receiver", conversion.truncated_alerts)
        if conversion.rejected:
            return "partial", _answer(200, "partial", events=[e.event_id for e in conversion.events],
                                      ignored=conversion.ignored, rejected=conversion.rejected,
                                      truncated_alerts=conversion.truncated_alerts,
                                      kept_on=self.settings.topic(RAW_WEBHOOKS))
        return "accepted", _answer(200, "accepted", events=[e.event_id for e in conversion.events],
                                   ignored=conversion.ignored, truncated_alerts=conversion.truncated_alerts)

    async def _send(self, source: str, body: bytes, received: str, outcome: str, reason: str,
                    conversion: Conversion) -> None:
        headers = [("slaproc-outcome", outcome.encode()), ("slaproc-received-at", received.encode())]
        if reason:
            headers.append(("slaproc-reason", reason[:1000].encode()))
        records = [Record(self.settings.topic(RAW_WEBHOOKS), source.encode(), body, tuple(headers))]
        records += [Record(self.settings.topic(e.topic), e.key.encode(), e.value) for e in conversion.events]
        try:
            await asyncio.wait_for(self.sink.send_all(records), self.settings.send_timeout)
        except MessageSizeTooLargeError:  # no retry will fit it: a 503 would make the sender retry for ever
            log.error("%s: the broker refuses a record of this body as too large (its message.max.bytes): 413",
                      source)
            raise _Refused(413, "too_large", "the broker refuses a body this large (its message.max.bytes); "
                                             "split it or raise the topic's max.message.bytes") from None
        except Exception as exc:  # any broker failure: the sender must retry
            log.error("%s: broker did not acknowledge %d record(s): %s", source, len(records), exc)
            raise _Refused(503, "unavailable", "the broker did not acknowledge the events; retry",
                           {"Retry-After": str(RETRY_AFTER_SECONDS)}) from None

    # ------------------------------------------------------------------ other views

    async def metrics_view(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(self, request: web.Request) -> web.Response:
        endpoints = {s: ("disabled: " + r) if (r := self._disabled_reason(s)) else "enabled" for s in ENDPOINT_SOURCES}
        ok = self.ready()
        return web.json_response({"status": "ok" if ok else "starting", "endpoints": endpoints},
                                 status=200 if ok else 503)


def build_app(gateway: Gateway) -> web.Application:
    # aiohttp enforces client_max_size while reading a body without Content-Length too.
    app = web.Application(client_max_size=gateway.settings.max_body_bytes)
    for source in ENDPOINT_SOURCES:
        app.router.add_post(f"/v1/{source}", gateway.handler(source))
    app.router.add_get("/metrics", gateway.metrics_view)
    app.router.add_get("/health", gateway.health)
    return app
