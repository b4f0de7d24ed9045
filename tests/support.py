"""Shared builders for the ticket-clock, processor and replay tests.

Events are built as wire JSON and go through `events.codec.decode`, so every test also
exercises the real input path. Outputs are turned into their wire form through the
validating pydantic models (`streams.wire.to_bytes_via_model`), so every output a test
looks at is also checked against SPEC §4's shapes.

Reference contracts (hand arithmetic in the tests relies on these facts):
- `nm`  Neural Magic Enterprise: 08:00-20:00 America/New_York Mon-Fri (Feb: EST, UTC-5, so
        13:00-01:00Z), day 12 h. critical 30 min calendar; high 2 bh; medium 2 bd; low 5 bd.
- `nx`  Neptune Extended, timezone UTC, no holiday country: 09:00-17:00Z Mon-Fri, day 8 h.
        critical 2 h calendar + updates every 2 h calendar; high 6 bh + updates every 1 bd.
- `nb`  Neptune Basic, timezone UTC: critical 8 bh, no timed updates; high 3 bd + updates every
        2 calendar days.
- `vp`  Vectorize Pro: 07:00-19:00 America/New_York (Feb: 12:00-00:00Z), day 12 h.
        urgent objective 4 bh / commitment 12 bh; normal 2 bd / 2 bd.
- `ve`  Vectorize Enterprise (uptime 99.9 from the order form): urgent 1 bh / 4 bh.
- `vs`  Vectorize Starter: no ticket clocks.
- `rs`  Rescale Production, Enterprise edition, no holiday country: 24x5 UTC (Mon 00:00 to
        Sat 00:00Z), day 24 h. Order form: urgent first_response 1 h + resolution 8 h;
        high 4 h + resolution 24 h; normal 8 h; low 1 day.
- `rsp` as `rs`, plus overrides.pause: waiting_on_customer pauses first_response only.

Calendar facts used: 2026-02-02 is a Monday; no US/CA federal holiday between 2026-02-02 and
2026-02-13 (Presidents' Day is Mon 16 Feb); US DST starts Sun 8 Mar 2026.
"""
from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone
from typing import Any, Iterable

from events.codec import DeadLetterReason, decode
from policies.catalog import default_catalog
from policies.contracts import Contract, parse_contracts
from policies.outputs import Output
from policies.processor import Processor, Settings
from streams.wire import to_bytes_via_model

UTC = timezone.utc
CATALOG = default_catalog()


def at(text: str) -> datetime:
    """An instant from RFC 3339 text (`Z` allowed)."""
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert t.tzinfo is not None, text
    return t.astimezone(UTC)


def z(t: datetime) -> str:
    """An instant as written on the wire (`2026-02-03T15:00:00Z`)."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- contracts

_RS_TARGETS = {
    "urgent": {"first_response": {"amount": 1, "unit": "hours", "clock": "business"},
               "resolution": {"amount": 8, "unit": "hours", "clock": "business"}},
    "high": {"first_response": {"amount": 4, "unit": "hours", "clock": "business"},
             "resolution": {"amount": 24, "unit": "hours", "clock": "business"}},
    "normal": {"first_response": {"amount": 8, "unit": "hours", "clock": "business"}},
    "low": {"first_response": {"amount": 1, "unit": "days", "clock": "business"}},
}

CONTRACTS: dict[str, dict[str, Any]] = {
    "nm": {"customer_id": "nm", "policy": "neural-magic", "plan": "enterprise",
           "effective_from": "2026-01-01T00:00:00Z"},
    "nx": {"customer_id": "nx", "policy": "neptune", "plan": "extended", "timezone": "UTC",
           "effective_from": "2026-01-01T00:00:00Z"},
    "nb": {"customer_id": "nb", "policy": "neptune", "plan": "basic", "timezone": "UTC",
           "effective_from": "2026-01-01T00:00:00Z"},
    "vp": {"customer_id": "vp", "policy": "vectorize", "plan": "pro",
           "services": [{"service_id": "vp-api", "monthly_fee": "1000.00", "currency": "USD"}],
           "effective_from": "2026-01-01T00:00:00Z"},
    "ve": {"customer_id": "ve", "policy": "vectorize", "plan": "enterprise",
           "services": [{"service_id": "ve-api", "monthly_fee": "3000.00", "currency": "USD"}],
           "overrides": {"uptime_commitment_percent": "99.9"},
           "effective_from": "2026-01-01T00:00:00Z"},
    "vs": {"customer_id": "vs", "policy": "vectorize", "plan": "starter",
           "services": [{"service_id": "vs-api", "monthly_fee": "0.00", "currency": "USD"}],
           "effective_from": "2026-01-01T00:00:00Z"},
    "rs": {"customer_id": "rs", "policy": "rescale", "plan": "production", "edition": "enterprise",
           "overrides": {"targets": _RS_TARGETS}, "effective_from": "2026-01-01T00:00:00Z"},
    "rsp": {"customer_id": "rsp", "policy": "rescale", "plan": "production", "edition": "enterprise",
            "overrides": {"targets": _RS_TARGETS,
                          "pause": {"statuses": ["waiting_on_customer"], "metrics": ["first_response"]}},
            "effective_from": "2026-01-01T00:00:00Z"},
}


def contracts(*names: str) -> list[Contract]:
    """The named reference contracts, validated and resolved by the real loader."""
    return parse_contracts({"contracts": [CONTRACTS[n] for n in names]}, CATALOG, source="tests")


def plan(name: str):
    """The ResolvedPlan of a reference contract."""
    return contracts(name)[0].plan


def contracts_yaml(*names: str) -> str:
    """The named reference contracts as a contracts YAML document (JSON is YAML)."""
    return json.dumps({"contracts": [CONTRACTS[n] for n in names]}, indent=1)


# --------------------------------------------------------------------------- input events

_ids = itertools.count(1)


def wire(type_: str, occurred_at: str, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """An input event as a wire JSON object."""
    return {"event_id": event_id or f"in-{next(_ids)}", "type": type_, "occurred_at": occurred_at, **fields}


def decoded(obj: dict[str, Any]):
    """Decode a wire object with the real codec; fail the test if it is a dead letter."""
    ev = decode(json.dumps(obj).encode())
    assert not isinstance(ev, DeadLetterReason), f"test input rejected: {ev}"
    return ev


def opened(ticket: str, customer: str, priority: str, t: str, *, environment: str | None = None,
           event_id: str | None = None):
    fields: dict[str, Any] = {"ticket_id": ticket, "customer_id": customer, "priority": priority}
    if environment is not None:
        fields["environment"] = environment
    return decoded(wire("ticket.opened", t, event_id, **fields))


def reply(ticket: str, t: str, *, author: str = "provider", public: bool = True, event_id: str | None = None):
    return decoded(wire("ticket.replied", t, event_id, ticket_id=ticket, author=author, public=public))


def change(ticket: str, priority: str, by: str, t: str, *, event_id: str | None = None):
    return decoded(wire("ticket.priority_changed", t, event_id, ticket_id=ticket, priority=priority, requested_by=by))


def status(ticket: str, value: str, t: str, *, event_id: str | None = None):
    return decoded(wire("ticket.status_changed", t, event_id, ticket_id=ticket, status=value))


def escalated(ticket: str, t: str, *, event_id: str | None = None):
    return decoded(wire("ticket.escalated", t, event_id, ticket_id=ticket, reason="customer asked"))


def resolved(ticket: str, t: str, *, event_id: str | None = None):
    return decoded(wire("ticket.resolved", t, event_id, ticket_id=ticket))


def reopened(ticket: str, t: str, *, event_id: str | None = None):
    return decoded(wire("ticket.reopened", t, event_id, ticket_id=ticket))


def closed(ticket: str, t: str, *, event_id: str | None = None):
    return decoded(wire("ticket.closed", t, event_id, ticket_id=ticket))


# --------------------------------------------------------------------------- outputs


def as_wire(out: Output) -> dict[str, Any]:
    """An output as its consumers see it (validated by the output models)."""
    return json.loads(to_bytes_via_model(out))


def feed_steps(proc: Processor, steps: Iterable[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Feed `steps` (wire events, or instants to move time to) to `proc`, in order: the outputs
    as wire JSON and the rejected events' dead-letter reasons."""
    out: list[dict[str, Any]] = []
    dead: list[str] = []
    for step in steps:
        if isinstance(step, datetime):
            out += [as_wire(o) for o in proc.advance_to(step)]
            continue
        more, rejected = proc.apply(decoded(step))
        out += [as_wire(o) for o in more]
        if rejected is not None:
            dead.append(rejected.reason)
    return out, dead


TICKET_OUTPUT_TYPES = frozenset({
    "sla.breached", "sla.met", "sla.at_risk", "sla.breach_retracted", "sla.met_retracted",
    "ticket.priority_change_rejected", "ticket.priority_adjusted", "ticket.priority_notice_retracted",
})


class Run:
    """A Processor over the named reference contracts, recording outputs as wire JSON.

    `feed` / `until` return (and `outputs` keeps) the ticket outputs only; month closes and
    attainment reports of the same run are kept in `other_outputs`.
    """

    def __init__(self, *names: str, thresholds: Iterable[float] = (0.5, 0.75, 0.9)):
        self.proc = Processor(CATALOG, settings=Settings(at_risk_thresholds=tuple(thresholds)))
        for c in contracts(*names):
            self.proc.install(c)
        self.outputs: list[dict[str, Any]] = []
        self.other_outputs: list[dict[str, Any]] = []
        self.rejected: list[Any] = []

    def _keep(self, outputs: list[Output]) -> list[dict[str, Any]]:
        fresh = []
        for o in outputs:
            (fresh if o.type in TICKET_OUTPUT_TYPES else self.other_outputs).append(as_wire(o))
        self.outputs += fresh
        return fresh

    def feed(self, *events: Any) -> list[dict[str, Any]]:
        """Apply events in the order given; returns the outputs they caused (wire JSON)."""
        fresh: list[dict[str, Any]] = []
        for ev in events:
            out, rejected = self.proc.apply(ev)
            fresh += self._keep(out)
            if rejected is not None:
                self.rejected.append(rejected)
        return fresh

    def until(self, t: str) -> list[dict[str, Any]]:
        return self._keep(self.proc.advance_to(at(t)))

    def of(self, type_: str, outputs: list[dict[str, Any]] | None = None, **match: Any) -> list[dict[str, Any]]:
        """Recorded (or given) outputs of `type_` whose fields equal `match`."""
        pool = self.outputs if outputs is None else outputs
        return [o for o in pool if o["type"] == type_ and all(o.get(k) == v for k, v in match.items())]

    def ticket_outputs(self, ticket: str) -> list[dict[str, Any]]:
        return [o for o in self.outputs if o.get("ticket_id") == ticket]


def brief(o: dict[str, Any]) -> tuple:
    """The fields a hand-computed expectation usually pins down, as a tuple for readable diffs."""
    keys = ("type", "occurred_at", "metric", "binding", "cycle", "priority", "started_at", "due_at")
    extra = ()
    if o["type"] == "sla.at_risk":
        extra = (o["threshold"],)
    elif o["type"] == "sla.met":
        extra = (o["elapsed_minutes"],)
    return tuple(o.get(k) for k in keys) + extra
