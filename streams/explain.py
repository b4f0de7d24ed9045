"""`slaproc explain-month`: replay the events, then explain one service month for a person.

The figures are recomputed from the events (SPEC §10): the replay here keeps every month
(no pruning after the claim window), so a month far behind the end of the file is explained
from its outages, never from a pruned state."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Callable

from policies import downtime, uptime
from policies.catalog import Catalog, default_catalog
from policies.contracts import load_contracts_yaml
from policies.explain import explain_month
from policies.processor import Settings
from policies.report import no_figures_reason
from streams.replay import Replayer, future_summary


def explain_month_from_files(events: Path, contracts: Path, customer_id: str, service_id: str, month: str,
                             catalog: Catalog | None = None, *, until: datetime | None = None,
                             bound: datetime | None = None, warn: Callable[[str], None] | None = None) -> str:
    """`until`, `bound` (SPEC §10) as replay's: time advances to `until` at the end (default: the
    latest event applied); lines after `bound` (default `until`) are `future_timestamp` dead
    letters and move nothing; `warn(line)` is told about them."""
    catalog = catalog or default_catalog()
    replayer = Replayer(load_contracts_yaml(contracts, catalog), catalog, Settings(prune=False))
    replayer.feed_file(events)
    result = replayer.finish(until, bound)
    dropped = future_summary(result, bound if bound is not None else until)
    if dropped is not None and warn is not None:
        warn(dropped)
    proc = replayer.processor
    if customer_id not in proc.contracts:
        raise LookupError(f"customer {customer_id!r} is not in {contracts}")
    start, end = uptime.month_bounds(month)  # validates YYYY-MM
    # SPEC §14: the terms in force at the month's start, under the catalog version in force then; the
    # first terms listing the service when it is added during the month (SPEC §11), as the close does
    terms = proc.month_service_terms(customer_id, service_id, month)
    if terms is None:
        raise LookupError(f"service {service_id!r} is not contracted by {customer_id!r} in {month}")
    entry, service, plan = terms
    commitment = plan.uptime_commitment_percent
    if commitment is None:
        raise LookupError(f"{customer_id!r} ({plan.policy}/{plan.plan}, catalog {plan.policy_version}) "
                          f"has no uptime commitment in {month}")
    state = proc.store.service(service_id) or downtime.new_state(service_id)
    fee = service.fee_per_month
    billing = (f"{service.monthly_fee} {service.currency}/month" if service.monthly_fee is not None
               else f"{service.annual_fee} {service.currency}/year = {uptime.round_half_up(fee, 2)} {service.currency}/month")
    describe = (f"{customer_id}: {plan.policy} {plan.plan} (catalog {plan.policy_version}), "
                f"uptime commitment {commitment} %, fee {billing}")
    others = len(proc.subscribers.get(service_id, ())) - 1
    if others:
        describe += f"; service shared with {others} other customer{'s' if others > 1 else ''}"
    # figures as of the time the replay reached, clamped to the month (review F1: without it a month
    # in progress was measured to its end, an open outage counted as down until then)
    now = proc.now or start
    absent = no_figures_reason(month, proc.now, entry.in_force_from, entry.start_month)
    if absent is not None:  # review F2: a month the close never measures is not "100.00 % MET"
        return (f"Uptime report for service {service_id}, month {month}\nContract: {describe}\n"
                f"No figures: {absent}.\n")
    return explain_month(state, month, commitment, fee, service.currency, describe, customer_id=customer_id,
                         as_of=min(max(now, start), end),
                         scope=entry.scope(service_id), in_force=(entry.in_force_from, None))
