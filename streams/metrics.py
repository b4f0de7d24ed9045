"""Prometheus metrics of the worker (names fixed in docs/design.md, "Metrics").

No ticket or customer ids as labels: labels are bounded by the catalog (provider, plan,
priority, metric, binding), by reason codes and by contracted service ids.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

from prometheus_client import (CollectorRegistry, Counter, Gauge, GCCollector, Histogram, PlatformCollector,
                               ProcessCollector, disable_created_metrics)

from events.codec import Reason
from policies.catalog import Catalog, ResolvedPlan
from policies.outputs import Output

_FIRST_RESPONSE_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 57600, 86400, 172800, 432000, float("inf"))


class Metrics:
    """The processor's own series, in one registry (served on the worker's web port)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        disable_created_metrics()  # no *_created series: half the exposition, nothing a rule reads
        if registry is None:
            registry = CollectorRegistry(auto_describe=True)
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        r = self.registry
        self.events_in = Counter("slaproc_events_in", "Input events read, by type", ["type"], registry=r)
        self.dead_letters = Counter("slaproc_dead_letters", "Inputs sent to the dead letter, by reason",
                                    ["reason"], registry=r)
        # Input records not on their key's murmur2 partition, forwarded there (streams/app.py,
        # StreamWorker._forward_misrouted): a producer with another partitioner (docs/operations.md).
        self.misrouted = Counter("slaproc_misrouted_records", "Input records found on another partition than their "
                                 "key's murmur2 one and forwarded there, by topic", ["topic"], registry=r)
        # Forwarded copies of a record forwarded before (a re-read of the inputs from offset 0) that
        # the core refused as final: dropped, not dead letters (docs/stream.md "Misrouted records").
        self.copies_dropped = Counter("slaproc_forwarded_copies_dropped", "Forwarded copies of misrouted records "
                                      "dropped as repeats of an earlier forward, by the core's reason",
                                      ["reason"], registry=r)
        clock = ["provider", "plan", "priority", "metric", "binding"]
        self._currencies: set[str] = set()  # currencies whose refund series exist
        self._plans_zeroed: set[Any] = set()  # resolved plans whose clock series exist
        self._thresholds: tuple[float, ...] = ()  # the at-risk thresholds (zero_catalog)
        self._contracts_version: Any = None  # of the contracts zero_contracts last saw (refresh)
        self._clock_keys: set[tuple[str, ...]] = set()  # label sets whose four outcome series exist
        self._open_clock_providers: set[str] = set()  # providers whose open-clocks series refresh set
        self.breaches = Counter("slaproc_breaches", "SLA breaches emitted", clock, registry=r)
        self.met = Counter("slaproc_met", "SLA targets met on time", clock, registry=r)
        self.at_risk = Counter("slaproc_at_risk", "At-risk warnings emitted",
                               ["provider", "plan", "priority", "metric", "threshold"], registry=r)
        # Retractions carry the labels of the breach / met they retract (SPEC §10), so rules can
        # subtract them: what stands is breaches - breach_retractions, met - met_retractions.
        self.retractions = Counter("slaproc_breach_retractions", "Breaches retracted by late events, under the "
                                   "labels of the breach", clock, registry=r)
        self.first_response = Histogram("slaproc_first_response_seconds",
                                        "Time to first response (business or calendar seconds per the target's clock)",
                                        ["provider", "plan"], buckets=_FIRST_RESPONSE_BUCKETS, registry=r)
        # Kept with each partition's tables (streams/core_adapter.py, `open_clocks` meta: each ticket
        # write adds the change of its own count), so a worker that restarts or takes a partition
        # over reports the partition's figure at once (was: the tickets in memory only, review F3).
        self.open_clocks = Gauge("slaproc_open_clocks", "Clocks running in the tickets of the partitions this "
                                 "worker owns (stored ones included: right from a restart or rebalance), by the "
                                 "provider of the ticket's plan", ["provider"], registry=r)
        self.month_closes = Counter("slaproc_month_closes", "Service months closed (incl. revisions)",
                                    ["provider"], registry=r)
        self.refunds = Counter("slaproc_refunds", "refund.eligible events emitted (revisions included)",
                               ["currency"], registry=r)
        # A month's refund can be revised (up or down) or withdrawn (SPEC §10): what stands is
        # slaproc_refund_amount_total - slaproc_refund_amount_withdrawn_total (both per currency).
        self.refund_amount = Counter("slaproc_refund_amount",
                                     "Refund amounts granted: each refund.eligible adds its increase over the "
                                     "amount it supersedes", ["currency"], registry=r)
        self.refund_amount_withdrawn = Counter("slaproc_refund_amount_withdrawn",
                                               "Refund amounts taken back: a revision's decrease, or the whole "
                                               "amount of a refund.withdrawn", ["currency"], registry=r)
        self.refund_withdrawals = Counter("slaproc_refund_withdrawals", "refund.withdrawn events emitted",
                                          ["currency"], registry=r)
        self.met_retractions = Counter("slaproc_met_retractions", "sla.met retracted by late events (SPEC §10), "
                                       "under the labels of the met", clock, registry=r)
        self.parked = Gauge("slaproc_parked_events",
                            "Events waiting for their ticket, outage or maintenance window (SPEC §10), or for the "
                            "contract naming their customer or service (docs/decisions.md, \"Contract wait\"); "
                            "those that expire are slaproc_dead_letters_total{reason=\"orphan\"}, "
                            "{reason=\"unknown_customer\"} or {reason=\"unknown_service\"}", registry=r)
        self.uptime = Gauge("slaproc_uptime_percent", "Uptime of a closed month per service: the lowest among "
                            "the service's subscribers (SPEC §11: each has its own scope) in their last closes; "
                            "the newest 3 months rebuilt from the state when the partition's processor is built "
                            "(restart, rebalance); removed when the service's partition is revoked",
                            ["service_id", "month"], registry=r)
        self.subscribers_not_met = Gauge("slaproc_service_subscribers_not_met",
                                         "Subscribers of a service whose last close of the month missed the "
                                         "commitment (rebuilt from the state as slaproc_uptime_percent)",
                                         ["service_id", "month"], registry=r)
        # (service_id, month) -> customer_id -> (uptime, met) of its last close: the two gauges above
        # are aggregates over customers, who never become labels. Bounded: MONTHS_KEPT months a service.
        self._closes: dict[tuple[str, str], dict[str, tuple[float, bool]]] = {}
        self._seen_months: set[tuple[str, str]] = set()  # service-months given a first close out of `_closes`
        # partition -> the service-months whose closes it emitted: removed when it is revoked (its
        # new owner exports them; a stale copy here made min()/max() over workers pick it)
        self._partition_months: dict[int, set[tuple[str, str]]] = {}
        # Quarterly attainment (sla.attainment_reported, one per customer and quarter): counts summed
        # over customers and workers, so the provider's figure is sum(met) / sum(measured), and the
        # lowest customer's ratio (min over workers). Since the worker started: a restart drops them.
        quarter = ["provider", "quarter"]
        self.attainment_measured = Counter("slaproc_attainment_measured",
                                           "Binding first-response clocks measured in the quarterly attainment "
                                           "reports (sla.attainment_reported) this worker emitted", quarter,
                                           registry=r)
        self.attainment_met = Counter("slaproc_attainment_met", "Of those, the ones met", quarter, registry=r)
        self.attainment_min = Gauge("slaproc_attainment_min_ratio",
                                    "Lowest quarterly attainment (0..1) among the customers whose report this "
                                    "worker emitted since it started (a reported quarter's counts are not kept: "
                                    "empty after a restart until the next quarterly report)", quarter, registry=r)
        self._attainment: dict[tuple[str, str], dict[str, float]] = {}  # (provider, quarter) -> customer -> ratio
        self.ticks = Counter("slaproc_ticks", "Ticks applied by this worker's partitions", registry=r)
        self.last_tick = Gauge("slaproc_last_tick_timestamp_seconds", "Wall clock of the last tick applied",
                               registry=r)
        self.tick_delay = Gauge("slaproc_tick_delay_seconds", "Wall clock minus partition time at the last tick",
                                registry=r)
        # Event-time watermark of each partition this worker owns (bounded by the partition count).
        self.partition_time = Gauge("slaproc_partition_time_seconds",
                                    "Time of the partition's processor (Unix seconds) at its last tick",
                                    ["partition"], registry=r)
        self.consumer_lag = Gauge("slaproc_consumer_lag", "Messages not yet read", ["topic", "partition"], registry=r)
        self.broker_connected = Gauge("slaproc_broker_connected",
                                      "1 if the broker answered the last connectivity check, else 0", registry=r)
        self.contracts = Gauge("slaproc_contracts", "Contracts installed on this worker", registry=r)
        self.ready = Gauge("slaproc_ready", "1 if the worker is ready (/ready answers 200), else 0", registry=r)
        self.rebalances = Counter("slaproc_rebalances", "Partition assignments seen", registry=r)
        self.state_dir_failed = Gauge("slaproc_state_dir_failed",
                                      "1 if a write to SLAPROC_STATE_DIR failed (tables in memory only since; "
                                      "a restart reads more of the changelogs), else 0; absent without a state dir",
                                      registry=r)
        self.processing = Histogram("slaproc_processing_seconds", "Wall time to process one batch", registry=r)

    def refresh(self, worker: Any) -> None:
        refresh(self, worker)

    def zero_catalog(self, catalog: Catalog, at_risk_thresholds: Iterable[float] = ()) -> None:
        """Create the labelled series at 0 so that `increase()` sees the first increment (alert
        rules, recording rules, panels): a counter born holding its first increment is read as 0.
        The clock series of the plans actually contracted, with their retraction and at-risk
        series, come with the contracts (`zero_contracts`): every catalog combination of them
        made the exposition several times larger, and its rendering counts in the query API's
        CPU share (a 1 s scrape then timed out)."""
        self._thresholds = tuple(at_risk_thresholds)
        for policy in catalog.policies:
            pf = catalog.policy(policy)
            for plan in catalog.plans(policy):
                for priority in pf.priorities:
                    for metric in ("first_response", "update"):
                        for binding in ("true", "false"):
                            self.breaches.labels(policy, plan, priority, metric, binding)
                            self.met.labels(policy, plan, priority, metric, binding)
            self.month_closes.labels(policy)
        for reason in Reason:  # a closed set (streams.app.DEAD_LETTER_REASONS)
            self.dead_letters.labels(reason.value)

    def zero_contracts(self, contracts: dict[str, Any]) -> None:
        """Create at 0, for the worker's contracts (customer_id -> (Contract, ...)): the breach, met
        and retraction series of each target the contracted plan runs (metric, binding, per
        priority), its at-risk series, and the refund series of every contracted service's
        currency. A month's refunds come in one burst at the month-close tick, and a retraction
        often within the scrape of its breach: without the 0 sample scraped before, the burst is
        the series' first sample and `increase()` never sees it (review F2, F1)."""
        for value in list(contracts.values()):
            contract = value[0]
            plan = getattr(contract, "plan", None)  # policies.contracts.Contract: its ResolvedPlan
            if isinstance(plan, ResolvedPlan) and plan not in self._plans_zeroed:  # a resolved plan (overrides included)
                self._plans_zeroed.add(plan)
                for priority in plan.priorities:
                    for target in plan.targets(priority):
                        binding = "true" if target.binding else "false"
                        self._clock_series(plan.policy, plan.plan, priority, target.metric, binding)
                        for threshold in self._thresholds:
                            self.at_risk.labels(plan.policy, plan.plan, priority, target.metric, str(threshold))
            terms = getattr(contract, "terms", None)
            for service in getattr(terms, "services", ()) or ():
                if service.currency not in self._currencies:
                    self._refund_currency(service.currency)

    def _clock_series(self, policy: str, plan: str, priority: str, metric: str, binding: str) -> None:
        """An outcome's four series together, so `breaches - breach_retractions` has both sides."""
        key = (policy, plan, priority, metric, binding)
        if key in self._clock_keys:
            return
        self._clock_keys.add(key)
        self.breaches.labels(policy, plan, priority, metric, binding)
        self.met.labels(policy, plan, priority, metric, binding)
        self.retractions.labels(policy, plan, priority, metric, binding)
        self.met_retractions.labels(policy, plan, priority, metric, binding)

    def _refund_currency(self, currency: str) -> str:
        """Create a currency's refund series together, so `granted - withdrawn` has both sides."""
        self._currencies.add(currency)
        self.refunds.labels(currency)
        self.refund_amount.labels(currency)
        self.refund_amount_withdrawn.labels(currency)
        self.refund_withdrawals.labels(currency)
        return currency

    MONTHS_KEPT = 3  # months a service whose per-customer closes are kept (those a late event can revise)

    def drop_partition(self, partition: int) -> None:
        """Remove the service-month gauges of a partition this worker no longer owns."""
        for key in self._partition_months.pop(partition, ()):
            self._closes.pop(key, None)
            self._seen_months.discard(key)
            for gauge in (self.uptime, self.subscribers_not_met):
                try:
                    gauge.remove(*key)
                except KeyError:
                    pass

    def load_service(self, service_id: str, months: dict[str, dict[str, tuple[Any, bool]]],
                     partition: int | None = None) -> None:
        """Set a service's month gauges from its closes standing in the state
        (`policies.processor.Processor.standing_closes`: month -> customer -> (uptime, met)): after a
        restart or rebalance, when the partition's processor is built, and for a revision of a
        month this worker does not hold whole. Months not given are left as they are."""
        for month, closes in months.items():
            key = (service_id, month)
            if partition is not None:
                self._partition_months.setdefault(partition, set()).add(key)
            self._closes[key] = {c: (float(u), bool(m)) for c, (u, m) in closes.items()}
            self._seen_months.discard(key)
            self._set_month(key)
        kept = sorted(m for s, m in self._closes if s == service_id)
        for old in kept[:-self.MONTHS_KEPT]:
            self._closes.pop((service_id, old), None)
            self._seen_months.add((service_id, old))

    def _set_month(self, key: tuple[str, str]) -> None:
        closes = self._closes[key]
        self.uptime.labels(*key).set(min(u for u, _ in closes.values()))
        self.subscribers_not_met.labels(*key).set(sum(1 for _, m in closes.values() if not m))

    def _month_closed(self, service_id: str, month: str, customer_id: str, uptime: float, met: bool,
                      revision: int, partition: int | None = None,
                      standing: Callable[[str], dict[str, dict[str, tuple[Any, bool]]]] | None = None) -> None:
        """Fold one close into the service-month gauges. The per-customer closes of the newest
        MONTHS_KEPT months of a service are kept, so a revision replaces its customer's figure; an
        older month (a backfill of history, closed subscriber by subscriber) takes first closes
        monotonically (lowest uptime, one more below the commitment). Its gauges stay, as before."""
        key = (service_id, month)
        closes = self._closes.get(key)
        if closes is None and revision != 1:
            # A revision of a month this worker does not hold whole (it was closed before a restart
            # or by the partition's previous owner): its other subscribers' closes are in the
            # state, not here. The month's standing closes, from the state; never this one alone.
            if standing is not None:
                self.load_service(service_id, standing(service_id), partition)
            return
        if partition is not None:
            self._partition_months.setdefault(partition, set()).add(key)
        if closes is None:
            months = sorted({m for s, m in self._closes if s == service_id} | {month})
            if month in months[-self.MONTHS_KEPT:]:
                closes = self._closes[key] = {}
                for old in months[:-self.MONTHS_KEPT]:
                    if self._closes.pop((service_id, old), None) is not None:
                        self._seen_months.add((service_id, old))
        if closes is not None:
            closes[customer_id] = (uptime, met)
            self._set_month(key)
            return
        gauge, not_met = self.uptime.labels(service_id, month), self.subscribers_not_met.labels(service_id, month)
        first = (service_id, month) not in self._seen_months
        self._seen_months.add((service_id, month))
        gauge.set(uptime if first else min(gauge._value.get(), uptime))
        not_met.inc(0 if met else 1)

    @staticmethod
    def _outcome_labels(f: dict[str, Any], provider_of: dict[str, str] | None) -> tuple[str, str, str, str, str]:
        """The breach/met counter labels of a retraction (fields the core adds for metrics, not on
        the wire); an output without them (an older core) gets `unknown` for what it lacks."""
        policy = f.get("policy") or (provider_of or {}).get(f.get("customer_id", ""), "unknown")
        binding = f.get("binding")
        return (policy, f.get("plan") or "unknown", f.get("priority") or "unknown", f.get("metric") or "unknown",
                "unknown" if binding is None else ("true" if binding else "false"))

    def observe(self, outputs: Iterable[Output], provider_of: dict[str, str] | None = None,
                partition: int | None = None,
                standing: Callable[[str], dict[str, dict[str, tuple[Any, bool]]]] | None = None) -> None:
        """Count what the core emitted. `provider_of` maps customer_id -> policy for customer-keyed outputs;
        `partition`, when known, the partition whose processor emitted them (gauges removed with it);
        `standing`, when known, service_id -> its standing closes in that processor's state (`load_service`)."""
        for out in outputs:
            f = out.fields
            t = out.type
            if t in ("sla.breached", "sla.met", "sla.at_risk"):
                binding = "true" if f["binding"] else "false"
                if t != "sla.at_risk":
                    self._clock_series(f["policy"], f["plan"], f["priority"], f["metric"], binding)
                if t == "sla.breached":
                    self.breaches.labels(f["policy"], f["plan"], f["priority"], f["metric"], binding).inc()
                elif t == "sla.met":
                    self.met.labels(f["policy"], f["plan"], f["priority"], f["metric"], binding).inc()
                    if f["metric"] == "first_response" and f["binding"]:
                        self.first_response.labels(f["policy"], f["plan"]).observe(float(f["elapsed_minutes"]) * 60)
                else:
                    self.at_risk.labels(f["policy"], f["plan"], f["priority"], f["metric"], str(f["threshold"])).inc()
            elif t in ("sla.breach_retracted", "sla.met_retracted"):
                labels = self._outcome_labels(f, provider_of)
                self._clock_series(*labels)
                (self.retractions if t == "sla.breach_retracted" else self.met_retractions).labels(*labels).inc()
            elif t == "uptime.month_closed":
                self.month_closes.labels((provider_of or {}).get(f["customer_id"], "unknown")).inc()
                self._month_closed(f["service_id"], f["month"], f["customer_id"], float(f["uptime_percent"]),
                                   bool(f["met"]), int(f.get("revision", 1)), partition, standing)
            elif t == "refund.eligible":
                currency = self._refund_currency(f["currency"])
                self.refunds.labels(currency).inc()
                change = Decimal(str(f["refund_amount"])) - Decimal(str(f.get("superseded_amount", "0")))
                if change >= 0:
                    self.refund_amount.labels(currency).inc(float(change))
                else:
                    self.refund_amount_withdrawn.labels(currency).inc(float(-change))
            elif t == "refund.withdrawn":
                currency = self._refund_currency(f.get("currency", "unknown"))
                self.refund_withdrawals.labels(currency).inc()
                self.refund_amount_withdrawn.labels(currency).inc(float(Decimal(str(f.get("superseded_amount", "0")))))
            elif t == "sla.attainment_reported" and f.get("measured"):
                provider = (provider_of or {}).get(f["customer_id"], "unknown")
                self.attainment_measured.labels(provider, f["quarter"]).inc(int(f["measured"]))
                self.attainment_met.labels(provider, f["quarter"]).inc(int(f["met"]))
                ratios = self._attainment.setdefault((provider, f["quarter"]), {})
                ratios[f["customer_id"]] = int(f["met"]) / int(f["measured"])  # a report again replaces it
                self.attainment_min.labels(provider, f["quarter"]).set(min(ratios.values()))


class MetricsObserver:
    """The shell's observer hooks (streams.app.Observer) feeding `Metrics`."""

    def __init__(self, metrics: Metrics, worker: Any = None) -> None:
        self.metrics = metrics
        self.worker = worker  # set after the app is built (provider of customer-keyed outputs)
        self._provider_of: dict[str, str] = {}
        self._provider_version: Any = None
        self._events_in: dict[str, Any] = {}  # event type -> its counter child (labels() per event costs)

    def _providers(self) -> dict[str, str]:
        """customer_id -> policy, rebuilt only when the worker's contracts changed (not per output)."""
        version = getattr(self.worker, "contracts_version", None)
        if version is None or version != self._provider_version:
            contracts = getattr(self.worker, "contracts", {}) or {}
            self._provider_of = {cid: value[0].policy for cid, value in contracts.items()}
            self._provider_version = version
        return self._provider_of

    def event_in(self, event_type: str) -> None:
        child = self._events_in.get(event_type)
        if child is None:
            child = self._events_in[event_type] = self.metrics.events_in.labels(event_type)
        child.inc()

    def dead_letter(self, reason: str) -> None:
        self.metrics.dead_letters.labels(reason).inc()

    def misrouted(self, topic: str) -> None:
        self.metrics.misrouted.labels(topic).inc()

    def copy_dropped(self, reason: str) -> None:
        self.metrics.copies_dropped.labels(reason).inc()

    def outputs(self, outputs: Sequence[Any], partition: int | None = None) -> None:
        for o in outputs:  # dead letters the core emits itself (SPEC §10: parked events expired as orphan)
            if isinstance(o, Output) and o.type == "dead_letter":
                self.dead_letter(o.fields["reason"])
        self.metrics.observe([o for o in outputs if isinstance(o, Output)], self._providers(), partition,
                             self._standing(partition))

    def _standing(self, partition: int | None) -> Callable[[str], dict[str, dict[str, tuple[Any, bool]]]] | None:
        """service_id -> its standing closes in `partition`'s processor (the core's `standing_closes`)."""
        proc = (getattr(self.worker, "processors", None) or {}).get(partition) if partition is not None else None
        standing = getattr(getattr(proc, "core", None), "standing_closes", None)
        if standing is None:
            return None
        return lambda service_id: standing(service_id, Metrics.MONTHS_KEPT)

    def processor_created(self, partition: int, processor: Any) -> None:
        """A partition's processor built from its stored state (streams.app.Observer): its open
        clocks counted if the state has no count yet, and the month gauges of the services it
        closes set from the closes standing in the state (the newest MONTHS_KEPT months of each),
        not left empty until the next month close."""
        count = getattr(processor, "count_open_clocks", None)
        if count is not None:
            count()
        core = getattr(processor, "core", None)
        standing = getattr(core, "standing_closes", None)
        if standing is None:
            return
        for service_id in core.owned_services():
            months = standing(service_id, Metrics.MONTHS_KEPT)
            if months:
                self.metrics.load_service(service_id, months, partition)

    def tick(self, partition: int, advanced: bool, target: datetime, now: datetime | None) -> None:
        m = self.metrics
        m.ticks.inc()
        m.last_tick.set(time.time())
        if now is not None:
            m.tick_delay.set(max(0.0, (datetime.now(timezone.utc) - now).total_seconds()))
            m.partition_time.labels(str(partition)).set(now.timestamp())

    def partition_dropped(self, partition: int) -> None:
        """The partition moved to another worker: its series leave this worker's exposition."""
        try:
            self.metrics.partition_time.remove(str(partition))
        except KeyError:
            pass
        self.metrics.drop_partition(partition)

    def batch(self, seconds: float) -> None:
        self.metrics.processing.observe(seconds)

    def rebalance(self) -> None:
        self.metrics.rebalances.inc()


def refresh(metrics: Metrics, worker: Any) -> None:
    """Gauges computed at scrape time: open clocks per provider on this worker."""
    counts: dict[str, int] = {}
    version = getattr(worker, "contracts_version", None)
    if version is None or version != metrics._contracts_version:
        metrics.zero_contracts(worker.contracts or {})
        metrics._contracts_version = version
    providers = {cid: value[0].policy for cid, value in (worker.contracts or {}).items()}
    for proc in list(worker.processors.values()):
        # each partition's count, kept with its tables (None: not counted yet, see
        # PartitionProcessor.count_open_clocks); a revoked partition's processor is gone, and its count with it
        for provider, n in list((getattr(proc, "open_clock_counts", None) or {}).items()):
            counts[provider] = counts.get(provider, 0) + n
    for provider in set(providers.values()) | set(counts) | metrics._open_clock_providers:
        metrics.open_clocks.labels(provider).set(counts.get(provider, 0))
    metrics._open_clock_providers = set(providers.values()) | set(counts)
    metrics.parked.set(sum(len(getattr(getattr(proc, "core", None), "parking", ())) for proc in
                           list(worker.processors.values())))
    state_dir = getattr(getattr(worker, "app", None), "slaproc_state_dir", None)
    if state_dir is not None:
        metrics.state_dir_failed.set(0.0 if state_dir.failed is None else 1.0)
    _set_consumer_lag(metrics, worker)


def _set_consumer_lag(metrics: Metrics, worker: Any) -> None:
    """Messages not yet processed per input topic-partition this worker owns, from the worker's
    last connectivity check (end offsets asked of the broker minus the next offset to process).
    When that is unknown (broker unreachable, check failed) the series are removed, never 0:
    a lag of 0 during an outage with records unread would say "caught up"."""
    health = getattr(worker, "health", None)
    if health is not None:
        connected = health.broker_connected
        metrics.broker_connected.set(1.0 if connected else 0.0)
        metrics.ready.set(1.0 if health.ready()[0] else 0.0)
    metrics.contracts.set(len(getattr(worker, "contracts", None) or {}))
    lag = getattr(worker, "lag", None)
    seen = set()
    for tp, n in list((lag or {}).items()):
        labels = (tp.topic, str(tp.partition))
        seen.add(labels)
        metrics.consumer_lag.labels(*labels).set(n)
    for labels in list(getattr(metrics, "_lag_labels", set()) - seen):
        try:
            metrics.consumer_lag.remove(*labels)
        except KeyError:
            pass
    metrics._lag_labels = seen  # type: ignore[attr-defined]
