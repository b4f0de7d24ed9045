"""Deterministic synthetic workload: a contracts YAML and a JSON-lines event file (SPEC §3).

The mix: customers on every provider and plan (each with 1–5 services and valid
order-form values), ticket lifecycles (opened with realistic priorities and
environments, provider / customer replies, priority changes including Neural Magic
customers raising to critical, status changes, escalations, resolved, reopened, closed
— not all closed, so some stay open at the end), monitoring (outages started / reported
/ resolved / classified, maintenance windows with varied notice, some cancelled), and
about 0.1 % bad lines (garbage, unknown type, naive timestamp, unknown ticket).

Timestamps are written with varied UTC offsets; the file is in time order unless
`late_fraction` > 0, which delays that share of the events (not `ticket.opened`) by
1 min – 3 h in the file while keeping their `occurred_at` (late arrivals).

Everything comes from one seeded `random.Random`: the same arguments give the same bytes.

    python -m bench.generate --events 1000000 --tickets 100000 --out bench/out/full [--seed 1]
    python -m bench.generate --sample samples/events.jsonl   # the small sample over samples/contracts.yaml
"""
from __future__ import annotations

import argparse
import calendar
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

UTC = timezone.utc

PRIORITIES = {
    "neural-magic": ("critical", "high", "medium", "low"),
    "neptune": ("critical", "high", "medium", "low"),
    "rescale": ("urgent", "high", "normal", "low"),
    "vectorize": ("urgent", "high", "normal", "low"),
}
PLANS = {
    "neural-magic": ("enterprise",),
    "neptune": ("basic", "extended"),
    "rescale": ("basic", "production", "premium", "mission-critical"),
    "vectorize": ("starter", "pro", "enterprise"),
}
PLAN_WEIGHTS = {
    "neural-magic": (1,),
    "neptune": (3, 2),
    "rescale": (3, 3, 2, 1),
    "vectorize": (2, 4, 2),
}
# Share of tickets by priority rank (most urgent first).
PRIORITY_WEIGHTS = (6, 22, 44, 28)
# Median first provider response by priority rank, minutes (spread lognormally, so a
# realistic share of tickets breaches).
FIRST_RESPONSE_MEDIAN_MIN = (25, 150, 600, 1800)

# (IANA zone, holiday country, subdivision) of Neptune customers.
NEPTUNE_LOCALES = (
    ("Europe/Berlin", "DE", None), ("America/Chicago", "US", "IL"), ("America/New_York", "US", None),
    ("Europe/London", "GB", None), ("Asia/Tokyo", "JP", None), ("America/Toronto", "CA", "ON"),
    ("Europe/Paris", "FR", None),
)
# Rescale region -> (IANA zone, holiday country, subdivision) choices.
RESCALE_LOCALES = {
    "americas": (("America/Los_Angeles", "US", "CA"), ("America/New_York", "US", None), ("America/Toronto", "CA", None)),
    "emea": (("Europe/Paris", "FR", None), ("Europe/Berlin", "DE", None), ("Europe/London", "GB", None)),
    "apac": (("Asia/Tokyo", "JP", None), ("Asia/Seoul", "KR", None)),
}
CURRENCY = {"US": "USD", "CA": "CAD", "DE": "EUR", "FR": "EUR", "GB": "GBP", "JP": "JPY", "KR": "KRW"}
EXCLUDED_CATEGORIES = ("customer_misuse", "third_party", "force_majeure", "beta_feature", "legal_order",
                       "attack_with_protections", "suspension")
# UTC offsets (minutes) of the integrations that write the events; 0 is written as `Z` or `+00:00`.
OFFSETS = (0, 0, 0, 0, -300, -240, -420, 60, 120, 540, 330, -180)
SERVICE_COUNT_WEIGHTS = (40, 30, 15, 10, 5)  # 1..5 services


@dataclass(frozen=True)
class Customer:
    """A generated (or sample) customer: what the event generator needs of its contract."""

    customer_id: str
    policy: str
    plan: str
    services: tuple[str, ...]
    ticket_weight: float = 1.0


@dataclass
class Workload:
    """A generated workload: the contracts document, the event lines (in file order) and a summary."""

    contracts: dict[str, Any]
    lines: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- contracts


def _fee(rng: random.Random, annual: bool, free: bool = False) -> str:
    if free:
        return "0.00"
    monthly = rng.choice((250, 400, 800, 1000, 1500, 2500, 4000, 8000))
    return f"{monthly * 12 if annual else monthly}.00"


def _services(rng: random.Random, customer_id: str, currency: str, free: bool) -> list[dict[str, Any]]:
    count = rng.choices(range(1, 6), weights=SERVICE_COUNT_WEIGHTS)[0]
    out = []
    for j in range(count):
        annual = rng.random() < 0.3
        fee_key = "annual_fee" if annual else "monthly_fee"
        out.append({"service_id": f"{customer_id}-svc{j + 1}", fee_key: _fee(rng, annual, free), "currency": currency})
    return out


def _rescale_targets(rng: random.Random, plan: str) -> dict[str, Any]:
    urgent = {"amount": 30, "unit": "minutes"} if plan == "mission-critical" and rng.random() < 0.5 \
        else {"amount": rng.choice((1, 2)), "unit": "hours"}
    targets: dict[str, Any] = {
        "urgent": {"first_response": dict(urgent, clock="business")},
        "high": {"first_response": {"amount": rng.choice((2, 4)), "unit": "hours", "clock": "business"}},
        "normal": {"first_response": rng.choice(({"amount": 8, "unit": "hours", "clock": "business"},
                                                 {"amount": 1, "unit": "days", "clock": "business"}))},
        "low": {"first_response": {"amount": rng.choice((1, 2, 3)), "unit": "days", "clock": "business"}},
    }
    if rng.random() < 0.2:  # an order form with an objective next to the commitment
        commitment = targets["high"]["first_response"]
        objective = {"amount": commitment["amount"] / 2, "unit": "hours", "clock": "business", "binding": False}
        targets["high"]["first_response"] = [commitment, objective]
    return targets


def make_customers(rng: random.Random, count: int, effective_from: str) -> tuple[list[Customer], dict[str, Any]]:
    """`count` customers (at least one per plan) and their contracts document (`{"contracts": [...]}`)."""
    every_plan = [(p, plan) for p, plans in PLANS.items() for plan in plans]
    policies = list(PLANS)
    customers: list[Customer] = []
    entries: list[dict[str, Any]] = []
    for i in range(count):
        if i < len(every_plan):
            policy, plan = every_plan[i]
        else:
            policy = rng.choice(policies)
            plan = rng.choices(PLANS[policy], weights=PLAN_WEIGHTS[policy])[0]
        customer_id = f"c{i:05d}-{policy}"
        entry: dict[str, Any] = {"customer_id": customer_id, "policy": policy, "plan": plan}
        country = "US"
        overrides: dict[str, Any] = {}
        if policy == "neptune":
            zone, country, subdivision = rng.choice(NEPTUNE_LOCALES)
            entry.update(timezone=zone, holiday_country=country)
            if subdivision:
                entry["holiday_subdivision"] = subdivision
        elif policy == "rescale":
            edition = "government" if rng.random() < 0.2 else "enterprise"
            region = "americas" if edition == "government" else rng.choice(tuple(RESCALE_LOCALES))
            zone, country, subdivision = rng.choice(RESCALE_LOCALES[region])
            entry.update(edition=edition, region=region, timezone=zone, holiday_country=country)
            if subdivision:
                entry["holiday_subdivision"] = subdivision
            overrides["targets"] = _rescale_targets(rng, plan)
        elif policy == "vectorize" and plan == "enterprise":
            overrides["uptime_commitment_percent"] = rng.choice(("99.9", "99.95", "99.5", "99.99"))
        if policy in ("rescale", "neptune") and rng.random() < 0.1:
            overrides["pause"] = {"statuses": ["waiting_on_customer"], "metrics": ["first_response"]}
        free = policy == "vectorize" and plan == "starter"
        services = _services(rng, customer_id, CURRENCY.get(country, "USD"), free)
        entry["services"] = services
        if overrides:
            entry["overrides"] = overrides
        entry["effective_from"] = effective_from
        entries.append(entry)
        weight = rng.paretovariate(1.5) * (0.3 if free else 1.0)
        customers.append(Customer(customer_id, policy, plan, tuple(s["service_id"] for s in services), weight))
    return customers, {"contracts": entries}


def customers_from_contracts(document: dict[str, Any]) -> list[Customer]:
    """Customers of an existing contracts document (e.g. samples/contracts.yaml)."""
    out = []
    for entry in document["contracts"]:
        free = entry["policy"] == "vectorize" and entry["plan"] == "starter"
        out.append(Customer(entry["customer_id"], entry["policy"], entry["plan"],
                            tuple(s["service_id"] for s in entry.get("services", ())), 0.3 if free else 1.0))
    return out


# --------------------------------------------------------------------------- events


class _Events:
    """Collects events as (file position key, seq, occurred_at seconds, type, fields)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.items: list[tuple[float, int, int, str, dict[str, Any] | str]] = []
        self.seq = 0

    def add(self, t: int, type_: str, fields: dict[str, Any], arrives: int | None = None) -> None:
        """An event that occurred at `t` (Unix seconds) and sits in the file at `arrives` (default `t`)."""
        self.seq += 1
        self.items.append((t if arrives is None else arrives, self.seq, t, type_, fields))

    def add_raw(self, t: int, line: str) -> None:
        self.seq += 1
        self.items.append((t, self.seq, t, "", line))


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _ticket_lengths(rng: random.Random, tickets: int, budget: int) -> list[int]:
    """Events per ticket (each >= 1) summing to exactly `budget`, spread like real threads."""
    if budget < tickets:
        raise ValueError(f"{budget} ticket events cannot cover {tickets} tickets (each needs at least one)")
    extra = budget - tickets
    weights = [rng.expovariate(1.0) + 0.05 for _ in range(tickets)]
    total = sum(weights)
    lengths = [1 + int(extra * w / total) for w in weights]
    short = budget - sum(lengths)
    for i in rng.sample(range(tickets), short):
        lengths[i] += 1
    return lengths


class _Timeline:
    """One ticket's events at offsets (seconds) from its opening, placed in time afterwards."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.items: list[tuple[int, str, dict[str, Any]]] = []

    def add(self, t: int, type_: str, fields: dict[str, Any]) -> None:
        self.items.append((t, type_, fields))


def _ticket_events(rng: random.Random, ticket_id: str, customer: Customer, length: int,
                   ending_kind: str) -> list[tuple[int, str, dict[str, Any]]]:
    """One ticket's lifecycle of exactly `length` events, at offsets from its opening (0).

    `ending_kind`: `closed` (resolved then closed), `resolved` (resolved, not yet closed) or
    `open` (still being worked on); a short ticket ends as far along as its length allows.
    """
    ev = _Timeline(rng)
    opened = 0
    priorities = PRIORITIES[customer.policy]
    rank = rng.choices(range(4), weights=PRIORITY_WEIGHTS)[0]
    priority = priorities[rank]
    environment = "non_production" if rng.random() < (0.15 if customer.policy == "vectorize" else 0.03) else "production"
    opened_fields: dict[str, Any] = {"ticket_id": ticket_id, "customer_id": customer.customer_id, "priority": priority}
    if environment == "non_production" or rng.random() < 0.3:
        opened_fields["environment"] = environment
    ev.add(opened, "ticket.opened", opened_fields)

    ending: list[str] = []
    if length >= 3 and ending_kind == "closed":
        ending = ["ticket.resolved", "ticket.closed"]
    elif length >= 2 and ending_kind in ("closed", "resolved"):
        ending = ["ticket.resolved"]
    middle = length - 1 - len(ending)

    t = opened
    status = "open"
    changes = 0
    first = True
    while middle > 0:
        if first:
            first = False
            delay = FIRST_RESPONSE_MEDIAN_MIN[rank] * 60 * rng.lognormvariate(0, 0.9)
            t += max(30, int(delay))
            if rng.random() < 0.88:
                ev.add(t, "ticket.replied", {"ticket_id": ticket_id, "author": "provider", "public": True})
            else:
                ev.add(t, "ticket.replied", {"ticket_id": ticket_id, "author": "customer"})
            middle -= 1
            continue
        t += max(30, int(rng.lognormvariate(math.log(4 * 3600), 1.0)))
        roll = rng.random()
        if roll < 0.42:
            ev.add(t, "ticket.replied", {"ticket_id": ticket_id, "author": "provider", "public": True})
        elif roll < 0.47:
            ev.add(t, "ticket.replied", {"ticket_id": ticket_id, "author": "provider", "public": False})
        elif roll < 0.57:
            status = rng.choice(("waiting_on_customer", "on_hold")) if status == "open" else "open"
            ev.add(t, "ticket.status_changed", {"ticket_id": ticket_id, "status": status})
        elif roll < 0.61 and changes < 2:
            changes += 1
            if customer.policy == "neural-magic" and priority != "critical" and rng.random() < 0.35:
                ev.add(t, "ticket.priority_changed", {"ticket_id": ticket_id, "priority": "critical", "requested_by": "customer"})
            else:
                new = rng.choice([p for p in priorities if p != priority])
                by = "customer" if rng.random() < 0.5 else "provider"
                ev.add(t, "ticket.priority_changed", {"ticket_id": ticket_id, "priority": new, "requested_by": by})
                priority = new
        elif roll < 0.63:
            ev.add(t, "ticket.escalated", {"ticket_id": ticket_id, "reason": rng.choice(("customer_request", "executive", "stale"))})
        elif roll < 0.65 and middle >= 2:
            ev.add(t, "ticket.resolved", {"ticket_id": ticket_id})
            t += rng.randint(3600, 3 * 86400)
            ev.add(t, "ticket.reopened", {"ticket_id": ticket_id})
            middle -= 1
        else:
            ev.add(t, "ticket.replied", {"ticket_id": ticket_id, "author": "customer", "public": True})
        middle -= 1
    for type_ in ending:
        t += rng.randint(600, 86400) if type_ == "ticket.resolved" else rng.randint(86400, 5 * 86400)
        ev.add(t, type_, {"ticket_id": ticket_id})
    return ev.items


def _outage_group(rng: random.Random, service_id: str, outage_id: str, start: int,
                  duration: int | None = None) -> list[tuple[int, str, dict[str, Any]]]:
    """Events of one outage: started and/or reported, resolved, maybe classified."""
    if duration is None:
        duration = int(min(12 * 3600, max(120, 60 * 35 * rng.lognormvariate(0, 1.1))))
    out: list[tuple[int, str, dict[str, Any]]] = []
    base = {"outage_id": outage_id, "service_id": service_id}
    started = rng.random() < 0.85
    reported = not started or rng.random() < 0.45
    if started:
        fields = dict(base)
        if rng.random() < 0.12:
            fields["scope"] = "partial"
        elif rng.random() < 0.5:
            fields["scope"] = "all_users"
        out.append((start, "outage.started", fields))
    if reported:
        at = start + rng.randint(-20 * 60, 40 * 60) if started else start
        at = min(at, start + duration - 60)
        out.append((at, "outage.reported", dict(base, ticket_id=f"R-{outage_id}")))
    if rng.random() < 0.98:
        end = start + duration
        out.append((end, "outage.resolved", dict(base)))
        if rng.random() < 0.35:
            at = end + rng.randint(600, 3 * 86400)
            if rng.random() < 0.4:
                out.append((at, "outage.classified", dict(base, cause="excluded", category=rng.choice(EXCLUDED_CATEGORIES))))
            else:
                out.append((at, "outage.classified", dict(base, cause="provider")))
    return out


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _monitoring_groups(rng: random.Random, services: list[str], start: int, end: int) -> list[list[tuple[int, str, dict[str, Any]]]]:
    """Outages and maintenance windows per service over [start, end), each a list of events."""
    months = max(1.0, (end - start) / (30 * 86400))
    groups: list[list[tuple[int, str, dict[str, Any]]]] = []
    n_out = n_mnt = 0
    for service_id in services:
        for _ in range(_poisson(rng, 1.2 * months)):
            n_out += 1
            groups.append(_outage_group(rng, service_id, f"out-{n_out:06d}", rng.randint(start, end - 13 * 3600)))
        for _ in range(_poisson(rng, 0.7 * months)):
            n_mnt += 1
            mid = f"mnt-{n_mnt:06d}"
            notice = rng.choices((168, 72, 50, 48, 47, 24, 2), weights=(2, 4, 1, 2, 1, 2, 1))[0] * 3600
            length = rng.choice((30, 60, 90, 120, 180, 240)) * 60
            begins = rng.randint(start + notice, end - length) // 900 * 900
            if begins - notice < start:
                begins += 900
            notified = begins - notice
            base = {"maintenance_id": mid, "service_id": service_id}
            group = [(notified, "maintenance.scheduled", dict(base, starts_at=_iso(begins), ends_at=_iso(begins + length)))]
            if rng.random() < 0.1:
                group.append((rng.randint(notified + 60, begins), "maintenance.cancelled", dict(base)))
            elif rng.random() < 0.3:  # something goes down inside the window
                n_out += 1
                at = begins + rng.randint(0, length // 2)
                group += _outage_group(rng, service_id, f"out-{n_out:06d}", at, rng.randint(300, begins + length - at))
            groups.append(group)
    return groups


def _bad_line(rng: random.Random, kind: int, n: int, t: int) -> str:
    stamp = _iso(t)
    if kind == 0:
        return rng.choice(("{not json", "\u00ff\u00fegarbage", "[1, 2, 3]", '{"event_id": "x", "type":', "null", "ticket.opened"))
    if kind == 1:
        return json.dumps({"event_id": f"bad-{n}", "type": "ticket.merged", "occurred_at": stamp, "ticket_id": "T0000001"})
    if kind == 2:
        return json.dumps({"event_id": f"bad-{n}", "type": "ticket.replied", "occurred_at": stamp[:-1],
                           "ticket_id": "T0000001", "author": "provider"})
    return json.dumps({"event_id": f"bad-{n}", "type": "ticket.replied", "occurred_at": stamp,
                       "ticket_id": f"NOPE-{n}", "author": "provider", "public": True})


def _format_instant(rng: random.Random, t: int) -> str:
    offset = rng.choice(OFFSETS)
    if offset == 0:
        return _iso(t) if rng.random() < 0.8 else _iso(t)[:-1] + "+00:00"
    local = datetime.fromtimestamp(t + offset * 60, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    sign = "+" if offset > 0 else "-"
    return f"{local}{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"


def _month_start(t: int) -> int:
    d = datetime.fromtimestamp(t, UTC)
    return calendar.timegm((d.year, d.month, 1, 0, 0, 0))


def _next_month(t: int) -> int:
    d = datetime.fromtimestamp(_month_start(t), UTC)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return calendar.timegm((year, month, 1, 0, 0, 0))


def generate_events(rng: random.Random, customers: list[Customer], *, events: int, tickets: int,
                    start: int, end: int, late_fraction: float = 0.0, bad_fraction: float = 0.001,
                    long_open: float = 0.0, ticket_prefix: str = "T",
                    scripted: list[tuple[int, str, dict[str, Any], int | None]] = ()) -> Workload:
    """The event lines for `customers` over [start, end) (Unix seconds, UTC): exactly `events` lines,
    plus the `scripted` events `(occurred_at, type, fields, arrives_at or None)`."""
    ev = _Events(rng)
    bad = round(events * bad_fraction)
    services = [s for c in customers for s in c.services]
    groups = _monitoring_groups(rng, services, start, end)
    budget = max(0, events - tickets - bad)
    while groups and sum(len(g) for g in groups) > min(budget, int(events * 0.2)):
        groups.pop(rng.randrange(len(groups)))  # small runs: fewer outages, never half an outage
    for group in groups:
        for t, type_, fields in group:
            ev.add(min(t, end - 60), type_, fields)  # a late classification still lands before the end
    monitoring = ev.seq
    lengths = _ticket_lengths(rng, tickets, events - monitoring - bad)
    cum = []
    acc = 0.0
    for c in customers:
        acc += c.ticket_weight
        cum.append(acc)
    owners = rng.choices(customers, cum_weights=cum, k=tickets)
    recent = end - 10 * 86400
    closed = 0
    for i, (owner, length) in enumerate(zip(owners, lengths)):
        opened = rng.randint(start, end - 86400)
        if rng.random() < 0.6:  # most tickets arrive in working hours somewhere in the Americas / Europe
            opened = min(_day_start(opened) + rng.randint(7 * 3600, 22 * 3600), end - 86400)
        # Tickets of the last days are often still being worked on; older ones are mostly
        # closed, with a few resolved-but-not-closed and a few forgotten open ones.
        if opened >= recent:
            kind = rng.choices(("open", "resolved", "closed"), weights=(40, 20, 40))[0]
        else:
            kind = rng.choices(("open", "resolved", "closed"), weights=(1, 6, 93))[0]
        stretched = long_open > 0 and rng.random() < long_open  # (no draw by default: the same bytes as before)
        if stretched:  # opened in the first week, never resolved, its thread spread over the whole period
            opened, kind = start + rng.randint(0, 7 * 86400), "open"
        timeline = _ticket_events(rng, f"{ticket_prefix}{i + 1:07d}", owner, length, kind)
        span = timeline[-1][0]
        room = end - 3600 - opened
        if span > room or (stretched and span > 0):  # a long thread near the end: the same events, closer together
            timeline = [(offset * room // span, type_, fields) for offset, type_, fields in timeline]
        for offset, type_, fields in timeline:
            ev.add(opened + offset, type_, fields)
        closed += timeline[-1][1] == "ticket.closed"
    for t, type_, fields, arrives in scripted:
        ev.add(t, type_, fields, arrives)
    for n in range(bad):
        at = rng.randint(start, end - 1)
        ev.add_raw(at, _bad_line(rng, n % 4, n + 1, at))  # in time order like the rest
    items = ev.items
    late = 0
    if late_fraction > 0:
        for k, item in enumerate(items):
            if item[3] not in ("ticket.opened", "") and rng.random() < late_fraction:
                items[k] = (item[0] + rng.randint(60, 3 * 3600),) + item[1:]
                late += 1
    items.sort(key=lambda it: (it[0], it[1]))
    lines: list[str] = []
    counts: dict[str, int] = {}
    for _key, seq, t, type_, fields in items:
        if type_ == "":
            lines.append(fields)  # type: ignore[arg-type]
            counts["(bad line)"] = counts.get("(bad line)", 0) + 1
            continue
        record = {"event_id": f"ev-{seq:08d}", "type": type_, "occurred_at": _format_instant(rng, t)}
        record.update(fields)  # type: ignore[arg-type]
        lines.append(json.dumps(record))
        counts[type_] = counts.get(type_, 0) + 1
    last = max((it[2] for it in items), default=end)
    until = _next_month(max(last, end - 1)) + 2 * 3600  # every month with activity closes
    meta = {
        "events": len(lines), "tickets": tickets, "customers": len(customers), "services": len(services),
        "tickets_closed": closed, "tickets_not_closed": tickets - closed, "bad_lines": bad,
        "late_events": late, "start": _iso(start), "end": _iso(end), "last_event": _iso(last),
        "until": _iso(until), "counts": dict(sorted(counts.items())),
    }
    return Workload({}, lines, meta)


def _day_start(t: int) -> int:
    return t - t % 86400


def generate(*, events: int, tickets: int, seed: int = 1, customers: int | None = None,
             start: str = "2026-03-01T00:00:00Z", months: int = 3, late_fraction: float = 0.0,
             long_open: float = 0.0,
             bad_fraction: float = 0.001) -> Workload:
    """A full synthetic workload: contracts for `customers` (default tickets/200, 10..2000) and `events` lines."""
    rng = random.Random(seed)
    begin = int(datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp())
    end = begin
    for _ in range(months):
        end = _next_month(end)
    count = customers if customers is not None else min(2000, max(10, tickets // 200))
    custs, document = make_customers(rng, count, _iso(begin))
    work = generate_events(rng, custs, events=events, tickets=tickets, start=begin, end=end,
                           late_fraction=late_fraction, bad_fraction=bad_fraction, long_open=long_open)
    work.contracts = document
    work.meta = {"seed": seed, "late_fraction": late_fraction, **({"long_open": long_open} if long_open else {}),
                 **work.meta}
    return work


def write_workload(work: Workload, out_dir: Path) -> dict[str, Path]:
    """Write `contracts.yaml`, `events.jsonl` and `meta.json` into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"contracts": out_dir / "contracts.yaml", "events": out_dir / "events.jsonl", "meta": out_dir / "meta.json"}
    header = "# Generated by bench.generate (synthetic benchmark customers).\n"
    paths["contracts"].write_text(header + yaml.safe_dump(work.contracts, sort_keys=False, width=120), encoding="utf-8")
    with paths["events"].open("w", encoding="utf-8") as fh:
        for line in work.lines:
            fh.write(line)
            fh.write("\n")
    paths["meta"].write_text(json.dumps(work.meta, indent=2) + "\n", encoding="utf-8")
    return paths



# --------------------------------------------------------------------------- the sample

SAMPLE_CONTRACTS = Path(__file__).resolve().parents[1] / "samples" / "contracts.yaml"


def _at(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _sample_script() -> list[tuple[int, str, dict[str, Any], int | None]]:
    """Hand-placed events over samples/contracts.yaml, so the sample shows every kind of output."""
    s: list[tuple[int, str, dict[str, Any], int | None]] = []

    def add(at: str, type_: str, arrives: str | None = None, **fields: Any) -> None:
        s.append((_at(at), type_, fields, _at(arrives) if arrives else None))

    # Neural Magic: a critical ticket (30 min, 24x7) answered at +20 min, but the reply reaches
    # the file only after another event moved time past the deadline: breach, then retraction.
    add("2026-03-10T14:00:00Z", "ticket.opened", ticket_id="S-NM-1", customer_id="orbital-labs", priority="critical")
    add("2026-03-10T14:45:00Z", "ticket.opened", ticket_id="S-NM-2", customer_id="orbital-labs", priority="medium")
    add("2026-03-10T14:20:00Z", "ticket.replied", "2026-03-10T14:50:00Z", ticket_id="S-NM-1", author="provider", public=True)
    # A customer raising to critical is refused (the seed: only the provider may); the provider may.
    add("2026-03-10T16:00:00Z", "ticket.priority_changed", ticket_id="S-NM-2", priority="critical", requested_by="customer")
    add("2026-03-11T13:30:00Z", "ticket.replied", ticket_id="S-NM-2", author="provider", public=True)
    add("2026-03-12T15:00:00Z", "ticket.resolved", ticket_id="S-NM-2")
    add("2026-03-13T15:00:00Z", "ticket.closed", ticket_id="S-NM-2")
    # Vectorize: urgent is not available for a non-production system -> effective normal.
    add("2026-03-17T13:00:00Z", "ticket.opened", ticket_id="S-VZ-1", customer_id="acme", priority="urgent",
        environment="non_production")
    add("2026-03-18T15:00:00Z", "ticket.replied", ticket_id="S-VZ-1", author="provider", public=True)
    # Vectorize Enterprise (globex-rag, 99.9 %): 60 min down in March (threshold 44.64 min) -> refund.
    add("2026-03-20T09:00:00Z", "outage.started", outage_id="S-OUT-1", service_id="globex-rag", scope="all_users")
    add("2026-03-20T10:00:00Z", "outage.resolved", outage_id="S-OUT-1", service_id="globex-rag")
    # Vectorize Pro (acme-api, 99.5 %): the SPEC §8 worked example with a 300 min outage A in April.
    add("2026-04-07T10:00:00Z", "outage.reported", outage_id="S-OUT-A", service_id="acme-api", ticket_id="S-VZ-2")
    add("2026-04-07T10:10:00Z", "outage.started", outage_id="S-OUT-A", service_id="acme-api")
    add("2026-04-07T15:00:00Z", "outage.resolved", outage_id="S-OUT-A", service_id="acme-api")
    add("2026-04-13T12:00:00Z", "outage.started", outage_id="S-OUT-B", service_id="acme-api")
    add("2026-04-13T13:30:00Z", "outage.resolved", outage_id="S-OUT-B", service_id="acme-api")
    add("2026-04-14T09:00:00Z", "outage.classified", outage_id="S-OUT-B", service_id="acme-api",
        cause="excluded", category="third_party")
    add("2026-04-18T02:00:00Z", "maintenance.scheduled", outage_id=None, maintenance_id="S-MNT-C",
        service_id="acme-api", starts_at="2026-04-21T02:00:00Z", ends_at="2026-04-21T04:00:00Z")
    add("2026-04-21T02:00:00Z", "outage.started", outage_id="S-OUT-C", service_id="acme-api")
    add("2026-04-21T04:00:00Z", "outage.resolved", outage_id="S-OUT-C", service_id="acme-api")
    for _t, _type, fields, _a in s:
        if fields.get("outage_id", "") is None:
            del fields["outage_id"]
    return s


def sample_workload(seed: int = 2026) -> Workload:
    """The small sample over samples/contracts.yaml: March and April 2026, all four providers."""
    document = yaml.safe_load(SAMPLE_CONTRACTS.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    customers = customers_from_contracts(document)
    work = generate_events(rng, customers, events=260, tickets=40, start=_at("2026-03-02T00:00:00Z"),
                           end=_at("2026-04-22T00:00:00Z"), bad_fraction=0.01, ticket_prefix="T",
                           scripted=_sample_script())
    work.contracts = document
    return work


def write_sample(path: Path, seed: int = 2026) -> dict[str, Any]:
    """Write the sample's event lines to `path`; returns its summary (with the `until` to replay to)."""
    work = sample_workload(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in work.lines), encoding="utf-8")
    return work.meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="exact number of lines to write")
    parser.add_argument("--tickets", type=int, default=10_000, help="number of distinct tickets")
    parser.add_argument("--customers", type=int, default=None, help="default: tickets / 200, within 10..2000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", default="2026-03-01T00:00:00Z", help="first instant (UTC)")
    parser.add_argument("--months", type=int, default=3, help="months of activity")
    parser.add_argument("--late-fraction", type=float, default=0.0,
                        help="share of events (not ticket.opened) delayed by 1 min - 3 h in the file")
    parser.add_argument("--long-open", type=float, default=0.0,
                        help="share of tickets opened in the first week and still open at the end, their "
                             "threads spread over the whole period (many cadence outputs per line)")
    parser.add_argument("--out", type=Path, help="output directory (contracts.yaml, events.jsonl, meta.json)")
    parser.add_argument("--sample", type=Path, metavar="EVENTS.jsonl",
                        help="instead: write the small sample over samples/contracts.yaml to this file")
    args = parser.parse_args(argv)
    if args.sample is not None:
        meta = write_sample(args.sample)
        print(f"wrote {args.sample} ({meta['events']} lines, {meta['last_event']} last); "
              f"replay with --contracts samples/contracts.yaml --until {meta['until']}", file=sys.stderr)
        return 0
    if args.out is None:
        parser.error("--out is required (or --sample)")
    started = time.monotonic()
    work = generate(events=args.events, tickets=args.tickets, seed=args.seed, customers=args.customers,
                    start=args.start, months=args.months, late_fraction=args.late_fraction,
                    long_open=args.long_open)
    paths = write_workload(work, args.out)
    print(f"wrote {paths['events']} ({work.meta['events']:,} events, {work.meta['tickets']:,} tickets, "
          f"{work.meta['customers']:,} customers) in {time.monotonic() - started:.1f} s; "
          f"replay with --until {work.meta['until']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
