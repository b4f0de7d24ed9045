"""HTTP views on the worker's web port: /metrics, /health, /ready and the query API (a ticket and a
service month routed to the key's owner; the month report from this worker's state).

Served by `streams.api_server.ApiServer` in a thread of its own, from the snapshot the processing
loop publishes after each unit of work (`streams.snapshot`): a query never runs on the processing
loop and never sees half of a unit. The views are plain functions of a snapshot's read-only
processors, so they answer what the live processors held at that commit.
"""
from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable

from faust.utils import json as faust_json  # the encoder Faust's web views used: the same bytes
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from policies import downtime, uptime
from policies.explain import service_month
from policies.tickets import describe_ticket
from streams.api_server import ROUTED_HEADER, Answer, ApiServer, same_url
from streams.app import MONITORING_EVENTS, TICKET_EVENTS, partition_for_key
from streams.report.build import report_from_worker
from streams.report.html import render_html
from streams.snapshot import Replica, SnapshotPublisher


#: A month in a URL: ASCII digits only (`int()` and `\d` also take other scripts' digits, so
#: `/months/２０２６-０３` used to answer 200 with the figures of 2026-03).
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}", re.ASCII)
METRICS_REFRESH_EVERY = 1.0  # seconds: the scrape-time gauges are at most this old


def _now(proc: Any) -> datetime:
    return proc.now or datetime(1970, 1, 1, tzinfo=timezone.utc)


def json_answer(value: Any, status: int = 200) -> Answer:
    text = faust_json.dumps(value)
    return Answer(status, text if isinstance(text, bytes) else text.encode("utf-8"))


def _error(message: str, status: int = 404) -> Answer:
    return json_answer({"error": message}, status=status)


def ticket_answer(proc: Any, ticket_id: str, thresholds: Any) -> Answer:
    """GET /tickets/{id} on the partition's processor (None: not held here)."""
    state = proc.store.ticket(ticket_id) if proc is not None else None
    if state is None:
        closed = proc is not None and proc.store.closed_digests(ticket_id) is not None
        return _error(f"ticket {ticket_id!r} is {'closed' if closed else 'unknown'}")
    entry = proc.core.contracts.get(state.customer_id)
    if entry is None:
        return _error(f"customer {state.customer_id!r} has no contract")
    return json_answer(describe_ticket(state, proc.core.ticket_plan(state), _now(proc.core), thresholds))


def month_of(month: str) -> tuple[datetime, datetime] | None:
    """The month's bounds, None unless `month` is YYYY-MM in ASCII digits."""
    try:
        if not _MONTH.fullmatch(month):
            raise ValueError(month)
        return uptime.month_bounds(month)
    except ValueError:
        return None


def month_answer(proc: Any, service_id: str, month: str) -> Answer:
    """GET /services/{id}/months/{YYYY-MM} on the service's partition's processor (None: not held)."""
    bounds = month_of(month)
    if bounds is None:
        return _error(f"{month!r} is not a month (YYYY-MM)")
    start, end = bounds
    side = getattr(proc, "monitoring", None) or getattr(proc, "core", None)  # services' half, its own time
    subscribers = side.subscriber_terms(service_id, month) if side is not None else []
    if not subscribers:
        return _error(f"service {service_id!r} is unknown")
    oldest = side.service_oldest_month_held(service_id)
    if oldest is not None and month < oldest:
        # Pruned once its claim window passed (Processor._close_months): the figures that stand
        # are the uptime.month_closed already emitted, not what is left of the state.
        return _error(f"month {month} of service {service_id!r} is closed and no longer held; "
                      "its figures are in the emitted uptime.month_closed")
    state = proc.store.service(service_id) or downtime.new_state(service_id)
    as_of = min(max(_now(side), start), end)
    # SPEC §11: the whole service's figures, then every subscriber's (its scope, commitment, close)
    return json_answer(service_month(state, month, as_of, subscribers))


def report_answer(processors: dict[int, Any], partitions: int, customer_id: str, month: str) -> Answer:
    """SPEC §15: the customer's month report (HTML) from this worker's state; the page says
    what it does not hold (other workers' partitions, pruned months, forgotten tickets)."""
    if month_of(month) is None:
        return _error(f"{month!r} is not a month (YYYY-MM)")
    try:
        report = report_from_worker(processors, partitions, customer_id, month,
                                    lambda key: partition_for_key(key, partitions))
    except LookupError as err:
        return _error(str(err))
    return Answer(200, render_html(report).encode("utf-8"), content_type="text/html")


def health_answer(ok: bool, reasons: list[str]) -> Answer:
    return json_answer({"status": "ok" if ok else "fail", "reasons": reasons}, status=200 if ok else 503)


def _routes(app: Any, topics: list[str]) -> Callable[[], dict[str, dict[int, str]]]:
    """Which worker owns each partition of the routed input topics, from the group's assignment
    (Faust's public router metadata: URL -> topic -> partitions)."""
    def routes() -> dict[str, dict[int, str]]:
        metadata = app.router.external_topics_metadata()
        return {topic: {p: url for url, tps in metadata.items() for p in tps.get(topic, ())} for topic in topics}
    return routes


def route(snapshot: Any, replica: Replica, topic: str, partition: int, routed: bool,
          own_url: str) -> tuple[str, Any]:
    """Where a query for `topic`'s `partition` is answered: ("forward", owner URL), ("unavailable",
    why: a 503 + Retry-After) or ("local", the partition's processor as of `snapshot`). A request
    another worker forwarded (`routed`) is answered here whatever the routes say: no request loops."""
    if not routed:
        owner = snapshot.routes.get(topic, {}).get(partition)
        if owner is None:  # no assignment yet (starting, rebalancing): what Faust's router answered
            return "unavailable", "Service unavailable. Try again later."
        if not same_url(owner, own_url):
            return "forward", owner
    proc = replica.processor(snapshot, partition)
    if proc is None:  # assigned here, not recovered yet (no processor before its first unit): not "unknown"
        return "unavailable", f"partition {partition} of {topic} is being taken over by this worker; try again later"
    return "local", proc


def register_views(app: Any, worker: Any, metrics: Any) -> ApiServer:
    """Publish snapshots from `worker`'s commits and serve the views from them in an `ApiServer`
    on the web port, started with the app (Faust's own web server is not used: `web_enabled`
    is off in the Faust app, see `streams.worker.build_worker_app`)."""
    settings = worker.settings
    partitions = settings.partitions
    tickets_topic = settings.topic(TICKET_EVENTS)
    services_topic = settings.topic(MONITORING_EVENTS)
    publisher = SnapshotPublisher(_routes(app, [tickets_topic, services_topic]))
    worker.on_commit = lambda committed: publisher.publish(worker, committed)
    core = worker.core
    replica = Replica(core.catalog, core.core_settings, partitions, partition_for_key)
    thresholds = core.core_settings.at_risk_thresholds
    # The URL the group learns for this worker (the partition assignor sends app.conf.canonical_url
    # with the assignment) and that other workers forward this worker's keys to: Faust makes it of
    # web_host, which in a container is 0.0.0.0, so queries routed here went to 0.0.0.0, i.e. to the
    # forwarding worker itself. Set before the app starts, so before the first group join.
    own_url = settings.advertised_url()
    app.conf.canonical_url = own_url
    server = ApiServer(settings.web_host, settings.web_port, max_connections=settings.api_max_connections,
                       cpu_share=settings.api_cpu_share)

    async def answer_routed(request: Any, topic: str, key: str, answer: Callable[[Any], Answer]) -> Any:
        """Answer from the key's partition here, or forward to the worker that owns it (a request
        another worker forwarded is answered here, whatever the routes say: no request loops)."""
        snapshot = publisher.current
        where, found = route(snapshot, replica, topic, partition_for_key(key, partitions),
                             ROUTED_HEADER in request.headers, own_url)
        if where == "forward":
            return await server.forward(request, found)  # not paced: it waits for the owner
        if where == "unavailable":
            return server.unavailable(found)
        return await server.paced(lambda: answer(found))

    def ticket_view(request: Any) -> Any:
        ticket_id = request.match_info["ticket_id"]
        return answer_routed(request, tickets_topic, ticket_id,
                             lambda proc: ticket_answer(proc, ticket_id, thresholds))

    def month_view(request: Any) -> Any:
        service_id, month = request.match_info["service_id"], request.match_info["month"]
        if month_of(month) is None:
            return _error(f"{month!r} is not a month (YYYY-MM)")
        return answer_routed(request, services_topic, service_id, lambda proc: month_answer(proc, service_id, month))

    async def report_view(request: Any) -> Answer:
        snapshot = publisher.current
        return await server.paced(lambda: report_answer(replica.processors(snapshot), partitions,
                                                        request.match_info["customer_id"], request.match_info["month"]))

    refreshed = {"at": float("-inf"), "pending": None}

    async def metrics_view(request: Any) -> Answer:
        # The scrape-time gauges read the live processors: computed on the processing loop, at
        # most once every METRICS_REFRESH_EVERY seconds; concurrent scrapes share one refresh.
        now = time.monotonic()
        pending = refreshed["pending"]
        if pending is None and now - refreshed["at"] >= METRICS_REFRESH_EVERY:
            refreshed["at"] = now
            pending = refreshed["pending"] = asyncio.ensure_future(
                server.call_on_processing_loop(lambda: metrics.refresh(worker)))
        if pending is not None:
            try:
                await asyncio.shield(pending)
            except Exception:  # noqa: BLE001 - the counters still render; the gauges are older
                pass
            finally:
                if refreshed["pending"] is pending and pending.done():
                    refreshed["pending"] = None
        return await server.paced(lambda: Answer(200, generate_latest(metrics.registry),
                                                 content_type=CONTENT_TYPE_LATEST.split(";")[0], charset=None))

    server.add("/metrics", metrics_view)
    server.add_probe("/health", lambda: health_answer(*worker.health.live()))  # 503 once an agent crashed
    # 503 while starting, after an agent crashed, or while the broker is unreachable
    server.add_probe("/ready", lambda: health_answer(*worker.health.ready()))
    server.add("/tickets/{ticket_id}", ticket_view)
    server.add("/services/{service_id}/months/{month}", month_view)
    server.add("/customers/{customer_id}/months/{month}/report", report_view)

    @app.task
    async def query_api() -> None:
        try:
            server.start()
        except Exception as exc:  # the port is taken, say: the worker stops, as when Faust's web failed
            await worker.fail("the query API could not start", exc)
            return
        publisher.publish(worker, {})
        try:
            await asyncio.Event().wait()  # until the app stops (its tasks are cancelled)
        finally:
            # joined from another thread: the processing loop goes on stopping meanwhile
            await asyncio.get_running_loop().run_in_executor(None, server.stop)

    worker.api = server
    worker.snapshots = publisher
    return server

