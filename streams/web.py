"""HTTP views on the worker's web port: /metrics and the query API (routed to the key's owner)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from policies import downtime, uptime
from policies.explain import service_month
from policies.tickets import describe_ticket
from streams.app import MONITORING_EVENTS, TICKET_EVENTS, partition_for_key
from streams.report.build import report_from_worker
from streams.report.html import render_html


#: A month in a URL: ASCII digits only (`int()` and `\d` also take other scripts' digits, so
#: `/months/２０２６-０３` used to answer 200 with the figures of 2026-03).
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}", re.ASCII)


def _now(proc: Any) -> datetime:
    return proc.now or datetime(1970, 1, 1, tzinfo=timezone.utc)


def register_views(app: faust.App, worker: Any, metrics: Any) -> None:
    """Attach the views to `app` (call before the app starts)."""
    # Routed by the input topics: their keys are the raw UTF-8 ids, hashed as producers do
    # (murmur2 = partition_for_key), and input partition p has the same owner as the state of p.
    # Not `table_route`: Faust gives a str-keyed table the JSON key serializer, so it hashes
    # '"T1"' (with the quotes) and sends the request to a worker that does not hold the key.
    tickets = worker.route_topics[TICKET_EVENTS]
    services = worker.route_topics[MONITORING_EVENTS]
    partitions = worker.settings.partitions

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        metrics.refresh(worker)
        return web.bytes(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    def _health(web: Any, ok: bool, reasons: list[str]) -> Any:
        return web.json({"status": "ok" if ok else "fail", "reasons": reasons}, status=200 if ok else 503)

    @app.page("/health")
    async def health_view(web: Any, request: Any) -> Any:
        """Liveness: 503 once an agent crashed (the worker is stopping with a non-zero exit)."""
        return _health(web, *worker.health.live())

    @app.page("/ready")
    async def ready_view(web: Any, request: Any) -> Any:
        """Readiness: 503 while starting, after an agent crashed, or while the broker is unreachable."""
        return _health(web, *worker.health.ready())

    @app.page("/tickets/{ticket_id}")
    @app.topic_route(topic=tickets, match_info="ticket_id")
    async def ticket_view(web: Any, request: Any, ticket_id: str) -> Any:
        proc = worker.processors.get(partition_for_key(ticket_id, partitions))
        state = proc.store.ticket(ticket_id) if proc is not None else None
        if state is None:
            closed = proc is not None and proc.store.closed_digests(ticket_id) is not None
            return web.json({"error": f"ticket {ticket_id!r} is {'closed' if closed else 'unknown'}"}, status=404)
        entry = proc.core.contracts.get(state.customer_id)
        if entry is None:
            return web.json({"error": f"customer {state.customer_id!r} has no contract"}, status=404)
        return web.json(describe_ticket(state, proc.core.ticket_plan(state), _now(proc.core),
                                        proc.core.settings.at_risk_thresholds))

    @app.page("/services/{service_id}/months/{month}")
    @app.topic_route(topic=services, match_info="service_id")
    async def month_view(web: Any, request: Any, service_id: str, month: str) -> Any:
        try:
            if not _MONTH.fullmatch(month):
                raise ValueError(month)
            start, end = uptime.month_bounds(month)
        except ValueError:
            return web.json({"error": f"{month!r} is not a month (YYYY-MM)"}, status=404)
        proc = worker.processors.get(partition_for_key(service_id, partitions))
        side = getattr(proc, "monitoring", None) or getattr(proc, "core", None)  # services' half, its own time
        subscribers = side.subscriber_terms(service_id, month) if side is not None else []
        if not subscribers:
            return web.json({"error": f"service {service_id!r} is unknown"}, status=404)
        oldest = side.service_oldest_month_held(service_id)
        if oldest is not None and month < oldest:
            # Pruned once its claim window passed (Processor._close_months): the figures that stand
            # are the uptime.month_closed already emitted, not what is left of the state.
            return web.json({"error": f"month {month} of service {service_id!r} is closed and no longer held; "
                                      "its figures are in the emitted uptime.month_closed"}, status=404)
        state = proc.store.service(service_id) or downtime.new_state(service_id)
        as_of = min(max(_now(side), start), end)
        # SPEC §11: the whole service's figures, then every subscriber's (its scope, commitment, close)
        return web.json(service_month(state, month, as_of, subscribers))

    @app.page("/customers/{customer_id}/months/{month}/report")
    async def report_view(web: Any, request: Any, customer_id: str, month: str) -> Any:
        """SPEC §15: the customer's month report (HTML) from this worker's state; the page says
        what it does not hold (other workers' partitions, pruned months, forgotten tickets)."""
        if not _MONTH.fullmatch(month) or not "01" <= month[5:] <= "12":
            return web.json({"error": f"{month!r} is not a month (YYYY-MM)"}, status=404)
        try:
            report = report_from_worker(worker.processors, partitions, customer_id, month,
                                        lambda key: partition_for_key(key, partitions))
        except LookupError as err:
            return web.json({"error": str(err)}, status=404)
        return web.html(render_html(report))
