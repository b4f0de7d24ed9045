"""Generate the slaproc Grafana dashboards (deploy/grafana/dashboards/*.json).

    python deploy/grafana/build_dashboards.py          # rewrite the JSON files
    python deploy/grafana/build_dashboards.py --check  # exit 1 if they are out of date

The dashboards are code so that every panel names the provisioned datasource uid and
uses the same label filters; tests/deploy checks the committed JSON equals this output.
Standard library only.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
OUT_DIR = Path(__file__).resolve().parent / "dashboards"
PANEL_WIDTH = 24

# Label filters shared by the SLA panels (the variables defined below).
PP = 'provider=~"$provider", plan=~"$plan"'
P = 'provider=~"$provider"'


def query_variable(name: str, label: str, query: str, *, multi: bool = True) -> dict:
    """A templating variable filled by label_values(); "All" matches any value."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,  # on time range change: new providers/plans/months appear
        "includeAll": True,
        "allValue": ".*",
        "multi": multi,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
    }


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> dict:
    t = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend or "__auto",
         "range": not instant, "instant": instant}
    if table:
        t["format"] = "table"
    return t


def panel(kind: str, title: str, targets: list[dict], *, width: int = 12, height: int = 8,
          unit: str = "short", description: str = "", options: dict | None = None,
          thresholds: list[tuple[float | None, str]] | None = None,
          minimum: float | None = None, maximum: float | None = None) -> dict:
    steps = [{"color": color, "value": value} for value, color in
             (thresholds or [(None, "green")])]
    defaults: dict = {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    for ref, t in zip("ABCDEFGHIJ", targets):
        t["refId"] = ref
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
        "gridPos": {"w": width, "h": height},
    }


def row(title: str) -> dict:
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"w": PANEL_WIDTH, "h": 1}}


def layout(panels: list[dict]) -> list[dict]:
    """Place panels left to right, wrapping rows; assign ids."""
    x = y = line_height = 0
    for pid, p in enumerate(panels, start=1):
        w, h = p["gridPos"]["w"], p["gridPos"]["h"]
        if p["type"] == "row" or x + w > PANEL_WIDTH:
            x, y, line_height = 0, y + line_height, 0
        p["gridPos"].update(x=x, y=y)
        p["id"] = pid
        x += w
        line_height = max(line_height, h)
        if p["type"] == "row":
            x, y, line_height = 0, y + h, 0
    return panels


def dashboard(uid: str, title: str, description: str, variables: list[dict],
              panels: list[dict], *, time_from: str = "now-24h") -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["slaproc"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": [{
            "name": "slaproc alerts",
            "datasource": DATASOURCE,
            "enable": True,
            "iconColor": "red",
            "expr": 'ALERTS{component=~"slaproc|gateway", alertstate="firing"}',
            "titleFormat": "{{alertname}}",
            "textFormat": "{{provider}} {{severity}}",
            "step": "1m",
        }]},
        "links": [{"type": "dashboards", "tags": ["slaproc"], "asDropdown": True,
                   "title": "slaproc", "includeVars": False, "keepTime": True}],
        "panels": layout(panels),
    }


PROVIDER_VAR = query_variable("provider", "Provider", "label_values(slaproc_open_clocks, provider)")
PLAN_VAR = query_variable("plan", "Plan", 'label_values(slaproc_met_total{provider=~"$provider"}, plan)')

PERCENT_OF_ONE = dict(unit="percentunit", minimum=0, maximum=1,
                      thresholds=[(None, "red"), (0.9, "orange"), (0.95, "green")])


def sla_overview() -> dict:
    per_hour = "per hour"
    panels = [
        row("Breaches and at-risk"),
        panel("stat", "Binding breaches (range)", [target(
            f'sum(increase(slaproc_breaches_total{{binding="true", {PP}}}[$__range]))'
            f' - (sum(increase(slaproc_breach_retractions_total{{binding="true", {PP}}}[$__range])) or vector(0))',
            instant=True)], width=6,
            description="Contractual (binding) targets breached in the selected time range, net of the "
                        "breaches retracted by late events.",
            thresholds=[(None, "green"), (1, "red")]),
        panel("stat", "Open clocks", [target(
            f"sum(provider:slaproc_open_clocks:sum{{{P}}})", instant=True)], width=6,
            description="Ticket clocks running in the open tickets of every partition, counted with the "
                        "partitions' state: right after a worker restart or rebalance too (slaproc_open_clocks)."),
        panel("stat", "Breach retractions (range)", [target(
            f"sum(increase(slaproc_breach_retractions_total{{{P}}}[$__range]))",
            instant=True)], width=6,
            description="Breaches withdrawn because a late event showed the target was met."),
        panel("stat", "At-risk warnings (range)", [target(
            f"sum(increase(slaproc_at_risk_total{{{PP}}}[$__range]))", instant=True)],
            width=6, thresholds=[(None, "green"), (1, "orange")]),
        panel("timeseries", "Breaches by provider / plan / priority / metric", [target(
            f"3600 * provider_plan_priority_metric:slaproc_breaches:rate5m{{{PP}}}",
            "{{provider}} {{plan}} {{priority}} {{metric}}")], unit="short",
            description=f"Breaches {per_hour} (5-minute rate)."),
        panel("timeseries", "Met retracted by late events", [target(
            f"sum by (provider) (increase(slaproc_met_retractions_total{{{P}}}[$__rate_interval]))", "{{provider}}")],
            description="sla.met withdrawn because a late event showed the reply came after the deadline "
                        "(a breach follows it)."),
        panel("timeseries", "Binding vs objective breaches", [target(
            f"sum by (provider, binding) (increase(slaproc_breaches_total{{{PP}}}[$__rate_interval]))",
            "{{provider}} binding={{binding}}")],
            description="binding=true: contractual commitment; false: objective."),
        panel("timeseries", "At-risk warnings by threshold", [target(
            "3600 * sum by (provider, metric, threshold) "
            f"(provider_plan_priority_metric_threshold:slaproc_at_risk:rate5m{{{PP}}})",
            "{{provider}} {{metric}} {{threshold}}")],
            description=f"sla.at_risk events {per_hour}, by fraction of the target elapsed."),
        panel("timeseries", "Open clocks by provider", [target(
            f"provider:slaproc_open_clocks:sum{{{P}}}", "{{provider}}")]),
        row("First-response attainment (binding targets)"),
        panel("timeseries", "Attainment by provider", [
            target(f"provider:slaproc_first_response_attainment:ratio_rate1d{{{P}}}",
                   "{{provider}} 1d"),
            target(f"provider:slaproc_first_response_attainment:ratio_rate30d{{{P}}}",
                   "{{provider}} 30d"),
            target(f"provider:slaproc_first_response_attainment:ratio_rate90d{{{P}}}",
                   "{{provider}} 90d (quarter-ish)"),
        ], description="met / (met + breached), binding first-response clocks.",
            **PERCENT_OF_ONE),
        panel("bargauge", "Attainment by plan and priority (1d)", [target(
            f"provider_plan_priority:slaproc_first_response_attainment:ratio_rate1d{{{PP}}}",
            "{{provider}} {{plan}} {{priority}}", instant=True)],
            options={"orientation": "horizontal", "displayMode": "gradient"},
            **PERCENT_OF_ONE),
        panel("table", "Quarterly attainment (reported, all customers)", [target(
            f"sum by (provider, quarter) (slaproc_attainment_met_total{{{P}}})"
            f" / sum by (provider, quarter) (slaproc_attainment_measured_total{{{P}}})", instant=True, table=True)],
            width=6, description="met / measured over every customer's sla.attainment_reported of the quarter "
                                 "(since the workers started: a restart drops the reports it emitted, until the next "
                                 "quarterly report).",
            **PERCENT_OF_ONE),
        panel("table", "Quarterly attainment (reported, lowest customer)", [target(
            f"min by (provider, quarter) (slaproc_attainment_min_ratio{{{P}}})", instant=True, table=True)],
            width=6, description="The lowest customer's sla.attainment_reported of the quarter (the per-customer "
                                 "figures are on the sla.attainment_reported topic).",
            **PERCENT_OF_ONE),
        panel("timeseries", "Met vs breached per hour", [
            target(f"provider:slaproc_first_response_met:increase1h{{{P}}}", "{{provider}} met"),
            target(f"provider:slaproc_first_response_breaches:increase1h{{{P}}}",
                   "{{provider}} breached"),
        ]),
        row("Time to first response"),
        panel("timeseries", "Time to first response (quantiles)", [
            target(f"histogram_quantile({q}, sum by (provider, plan, le) "
                   f"(rate(slaproc_first_response_seconds_bucket{{{PP}}}[$__rate_interval])))",
                   f"{{{{provider}}}} {{{{plan}}}} p{int(q * 100)}")
            for q in (0.5, 0.9, 0.99)
        ], width=16, unit="s",
            description="Seconds on each target's own clock (business or calendar)."),
        panel("stat", "Median time to first response (range)", [target(
            "histogram_quantile(0.5, sum by (le) "
            f"(increase(slaproc_first_response_seconds_bucket{{{PP}}}[$__range])))",
            instant=True)], width=8, unit="s"),
    ]
    return dashboard("slaproc-sla-overview", "slaproc / SLA overview",
                     "Breaches, at-risk warnings, attainment and first-response times.",
                     [PROVIDER_VAR, PLAN_VAR], panels, time_from="now-7d")


def uptime_refunds() -> dict:
    service = query_variable("service_id", "Service", "label_values(slaproc_uptime_percent, service_id)")
    month = query_variable("month", "Month",
                           'label_values(slaproc_uptime_percent{service_id=~"$service_id"}, month)')
    currency = query_variable("currency", "Currency", "label_values(slaproc_refunds_total, currency)")
    provider = query_variable("provider", "Provider",
                              "label_values(slaproc_month_closes_total, provider)")
    sm = 'service_id=~"$service_id", month=~"$month"'
    cur = 'currency=~"$currency"'
    uptime_thresholds = dict(unit="percent", thresholds=[(None, "red"), (99, "orange"), (99.5, "green")])
    panels = [
        row("Uptime"),
        panel("table", "Uptime % per service and month", [target(
            f"service_id_month:slaproc_uptime_percent:min{{{sm}}}", instant=True, table=True)],
            width=12, height=10, **uptime_thresholds),
        panel("timeseries", "Uptime % over time", [target(
            f"service_id_month:slaproc_uptime_percent:min{{{sm}}}", "{{service_id}} {{month}}")],
            width=12, height=10, **uptime_thresholds),
        panel("table", "Subscribers below their commitment per service and month", [target(
            f"max by (service_id, month) (slaproc_service_subscribers_not_met{{{sm}}})", instant=True, table=True)],
            width=12, height=8, thresholds=[(None, "green"), (1, "red")],
            description="Shared services (SPEC §11): how many customers of the service missed their own "
                        "commitment in the month (the uptime above is the lowest among them)."),
        panel("timeseries", "Month closes per day", [target(
            f"provider:slaproc_month_closes:increase1d{{{P}}}", "{{provider}}")],
            description="uptime.month_closed events (revisions included)."),
        row("Refunds"),
        panel("stat", "Refunds eligible (range)", [target(
            f"sum by (currency) (increase(slaproc_refunds_total{{{cur}}}[$__range]))",
            "{{currency}}", instant=True)], width=6),
        panel("stat", "Refund amount (range)", [target(
            f"sum by (currency) (increase(slaproc_refund_amount_total{{{cur}}}[$__range]))"
            f" - sum by (currency) (increase(slaproc_refund_amount_withdrawn_total{{{cur}}}[$__range]))",
            "{{currency}}", instant=True)], width=6, unit="none",
            description="Refund amounts granted minus those taken back by revisions and withdrawals."),
        panel("timeseries", "Refund amount per day", [target(
            f"currency:slaproc_refund_amount:increase1d{{{cur}}}", "{{currency}}")], width=12,
            unit="none", description="refund.eligible amounts net of revisions and refund.withdrawn, by currency."),
        panel("timeseries", "Refunds eligible per day", [target(
            f"currency:slaproc_refunds:increase1d{{{cur}}}", "{{currency}}")], width=12),
        panel("timeseries", "Refunds withdrawn per day", [target(
            f"sum by (currency) (increase(slaproc_refund_withdrawals_total{{{cur}}}[1d]))", "{{currency}}")],
            width=12, description="refund.withdrawn: a month revision met the commitment after all."),
    ]
    return dashboard("slaproc-uptime-refunds", "slaproc / Uptime and refunds",
                     "Monthly uptime per contracted service and refund eligibility.",
                     [provider, service, month, currency], panels, time_from="now-90d")


def operations() -> dict:
    instance = query_variable("instance", "Worker", 'label_values(up{job="slaproc"}, instance)')
    inst = 'instance=~"$instance"'
    panels = [
        row("Workers"),
        panel("stat", "Workers up", [target(f'sum(up{{job="slaproc", {inst}}})', instant=True)],
              width=6, thresholds=[(None, "red"), (1, "orange"), (2, "green")]),
        panel("stat", "Consumer lag (total)", [target(
            f"sum(slaproc_consumer_lag{{{inst}}})", instant=True)], width=6,
            thresholds=[(None, "green"), (1000, "orange"), (10000, "red")]),
        panel("stat", "Dead letters (range)", [target(
            f"sum(increase(slaproc_dead_letters_total{{{inst}}}[$__range]))", instant=True)],
            width=6, thresholds=[(None, "green"), (1, "orange")]),
        panel("stat", "Oldest tick", [target(
            f"max(instance:slaproc_last_tick:age_seconds{{{inst}}})", instant=True)], width=6,
            unit="s", thresholds=[(None, "green"), (30, "orange"), (120, "red")]),
        row("Throughput and lag"),
        panel("timeseries", "Events in by type", [target(
            f"sum by (type) (rate(slaproc_events_in_total{{{inst}}}[$__rate_interval]))",
            "{{type}}")], unit="ops"),
        panel("timeseries", "Consumer lag by topic", [target(
            f"sum by (topic) (slaproc_consumer_lag{{{inst}}})", "{{topic}}")]),
        panel("timeseries", "Consumer lag by partition", [target(
            f"slaproc_consumer_lag{{{inst}}}", "{{topic}}[{{partition}}] {{instance}}")]),
        panel("timeseries", "Dead letters by reason", [
            target(f"sum by (reason) (increase(slaproc_dead_letters_total{{{inst}}}[$__rate_interval]))",
                   "{{reason}}"),
            target(f"sum by (reason) (increase(slaproc_forwarded_copies_dropped_total{{{inst}}}"
                   f"[$__rate_interval]))", "forwarded copy dropped: {{reason}}")],
            description="Repeated copies of misrouted records (a re-read from offset 0) dropped, not "
                        "dead-lettered, are shown apart (docs/stream.md, Misrouted records)."),
        panel("timeseries", "Broker connected and ready", [
            target(f"slaproc_broker_connected{{{inst}}}", "connected {{instance}}"),
            target(f"slaproc_ready{{{inst}}}", "ready {{instance}}")],
            description="1 = the broker answered the last connectivity check / /ready answers 200 "
                        "(docs/operations.md, health and readiness)."),
        panel("timeseries", "Contracts installed", [target(
            f"slaproc_contracts{{{inst}}}", "{{instance}}")],
            description="Contracts every worker holds (a global table): workers should agree."),
        panel("timeseries", "Parked events", [target(
            f"slaproc_parked_events{{{inst}}}", "{{instance}}")],
            description="Events that arrived before their ticket, outage or maintenance window, waiting for "
                        "it; after the parking horizon they become dead letters (reason orphan)."),
        row("Time"),
        panel("timeseries", "Tick delay (wall clock - partition time)", [target(
            f"slaproc_tick_delay_seconds{{{inst}}}", "{{instance}}")], unit="s",
            description="Large while a partition works through a backlog: it is judged by "
                        "event time, and ticks only advance caught-up partitions. One value per "
                        "worker (its last ticked partition): per partition, see the next panel."),
        panel("timeseries", "Partition time behind wall clock", [target(
            f"time() - slaproc_partition_time_seconds{{{inst}}}", "{{instance}} partition {{partition}}")],
            unit="s", thresholds=[(None, "green"), (600, "red")],
            description="Per partition: wall clock minus the partition's time at its last tick "
                        "(about SLAPROC_ALLOWED_LATENESS when caught up). PartitionTimeBehind pages "
                        "above 10 minutes for 5 minutes."),
        panel("timeseries", "Ticks and last-tick age", [
            target(f"rate(slaproc_ticks_total{{{inst}}}[$__rate_interval])", "{{instance}} ticks/s"),
            target(f"instance:slaproc_last_tick:age_seconds{{{inst}}}", "{{instance}} age s"),
        ]),
        row("Processing"),
        panel("timeseries", "Batch processing time", [
            target(f"histogram_quantile({q}, sum by (le) "
                   f"(rate(slaproc_processing_seconds_bucket{{{inst}}}[$__rate_interval])))",
                   f"p{int(q * 100)}") for q in (0.5, 0.99)
        ], unit="s"),
        panel("timeseries", "Rebalances", [target(
            f"increase(slaproc_rebalances_total{{{inst}}}[$__rate_interval])", "{{instance}}")]),
        panel("timeseries", "Worker CPU", [target(
            f'rate(process_cpu_seconds_total{{job="slaproc", {inst}}}[$__rate_interval])',
            "{{instance}}")], unit="percentunit"),
        panel("timeseries", "Worker memory (RSS)", [target(
            f'process_resident_memory_bytes{{job="slaproc", {inst}}}', "{{instance}}")],
            unit="bytes"),
        panel("table", "Firing slaproc alerts", [target(
            'ALERTS{component=~"slaproc|gateway", alertstate="firing"}', instant=True, table=True)],
            width=24, height=6),
    ]
    return dashboard("slaproc-operations", "slaproc / Operations",
                     "Worker health: throughput, lag, ticks, dead letters, rebalances.",
                     [instance], panels, time_from="now-6h")


DASHBOARDS = {
    "sla-overview.json": sla_overview,
    "uptime-refunds.json": uptime_refunds,
    "operations.json": operations,
}


def render() -> dict[str, str]:
    """File name -> JSON text, deterministic."""
    return {name: json.dumps(build(), indent=2, sort_keys=False) + "\n"
            for name, build in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, text in render().items():
        path = OUT_DIR / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print("out of date: " + ", ".join(stale) + " (run deploy/grafana/build_dashboards.py)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
