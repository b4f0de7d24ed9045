"""Parking (SPEC §10): events that arrive before the event that creates their entity.

A reply before its `ticket.opened`, an `outage.resolved` / `outage.classified` before the
outage's `outage.started` / `outage.reported`, a `maintenance.cancelled` before its
`maintenance.scheduled`: each is kept under its entity's key and applied when the entity
appears (by `Processor`), or expires to the dead letter (reason `orphan`) once its half's
time passes its `occurred_at` + the parking horizon. A parked event moves no time.

Pure: the expiry instant is the event's own `occurred_at` + horizon, so the dead letter
is the same whatever tick found it expired (stream equals replay). Its dead letter is stamped
with the event's own `occurred_at`, as every rejected event is.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from events.codec import DeadLetterReason, dead_letter_event, decode, encode
from events.ids import dead_letter_event_id
from policies.outputs import Output

TICKETS, MONITORING = "tickets", "monitoring"
_SEP = "\x1f"


def ticket_key(ticket_id: str) -> str:
    return f"t{_SEP}{ticket_id}"


def outage_key(service_id: str, outage_id: str) -> str:
    return f"o{_SEP}{service_id}{_SEP}{outage_id}"


def window_key(service_id: str, maintenance_id: str) -> str:
    return f"m{_SEP}{service_id}{_SEP}{maintenance_id}"


def creates_key(ev: Any) -> str | None:
    """The key of the entity `ev` creates (or may create), whose parked events can now apply."""
    t = ev.type
    if t == "ticket.opened":
        return ticket_key(ev.ticket_id)
    if t in ("outage.started", "outage.reported"):
        return outage_key(ev.service_id, ev.outage_id)
    if t == "maintenance.scheduled":
        return window_key(ev.service_id, ev.maintenance_id)
    return None


def half_of(key: str) -> str:
    return TICKETS if key.startswith("t") else MONITORING


def _order(ev: Any) -> tuple[datetime, str]:
    return ev.occurred_at, ev.event_id


class Parking:
    """Parked events by entity key. Small (events wait days at most), so scans are fine."""

    def __init__(self, horizon: timedelta) -> None:
        self.horizon = horizon
        self.events: dict[str, list[Any]] = {}
        self.expired = 0  # counter (metrics): parked events that expired to `orphan`
        self.parked = 0  # counter (metrics): events parked
        self.dirty = False
        self._next_expiry: datetime | None = None  # no event expires at or before it

    def __bool__(self) -> bool:
        return bool(self.events)

    def __len__(self) -> int:
        return sum(len(v) for v in self.events.values())

    def park(self, key: str, ev: Any) -> Any:
        """Park `ev` under `key`; None, or the event already parked there with the same id (a
        redelivery parks once: the caller tells a re-sent event from a conflicting one)."""
        waiting = self.events.setdefault(key, [])
        for parked in waiting:
            if parked.event_id == ev.event_id:
                return parked
        waiting.append(ev)
        self.parked += 1
        self.dirty = True
        expiry = ev.occurred_at + self.horizon
        if self._next_expiry is None or expiry < self._next_expiry:
            self._next_expiry = expiry
        return None

    def take(self, key: str) -> list[Any]:
        waiting = self.events.pop(key, [])
        if waiting:
            self.dirty = True
        return sorted(waiting, key=_order)

    def expire(self, half: str, t: datetime) -> list[Output]:
        """Dead letters (`orphan`) for the events of `half` whose parking horizon is over at `t`."""
        if not self.events or (self._next_expiry is not None and t <= self._next_expiry):
            return []
        out: list[Output] = []
        for key in sorted(self.events):
            if half_of(key) != half:
                continue
            waiting = self.events[key]
            keep = [ev for ev in waiting if ev.occurred_at + self.horizon >= t]
            if len(keep) == len(waiting):
                continue
            for ev in sorted((ev for ev in waiting if ev.occurred_at + self.horizon < t), key=_order):
                out.append(self.dead_letter(ev, "orphan", self.orphan_message(key, ev), ev.occurred_at))
                self.expired += 1
            self.dirty = True
            if keep:
                self.events[key] = keep
            else:
                del self.events[key]
        self._next_expiry = min((ev.occurred_at for w in self.events.values() for ev in w), default=None)
        if self._next_expiry is not None:
            self._next_expiry += self.horizon
        return out

    def drain(self) -> list[tuple[str, Any]]:
        """Every parked event with its key, taken out (replay: the batch is over, nothing more comes)."""
        rows = [(key, ev) for key in sorted(self.events) for ev in sorted(self.events[key], key=_order)]
        self.events = {}
        self.dirty = self.dirty or bool(rows)
        return rows

    def orphan_message(self, key: str, ev: Any) -> str:
        kind, *ids = key.split(_SEP)
        entity = {"t": f"ticket {ids[0]!r} was never opened",
                  "o": f"outage {ids[-1]!r} of service {ids[0]!r} never started nor reported",
                  "m": f"maintenance window {ids[-1]!r} of service {ids[0]!r} was never scheduled"}[kind]
        return (f"{ev.type}: {entity} (parked; an event for an entity that does not exist expires "
                f"{self.horizon} after its occurred_at)")

    @staticmethod
    def dead_letter(ev: Any, reason: str, message: str, at: datetime) -> Output:
        """The dead letter of a parked event, as a core output (the shell routes it like any other)."""
        raw = encode(ev)
        source = f"parked:{ev.event_id}"
        dl = dead_letter_event(source, raw, DeadLetterReason(reason, message), at)
        fields = dl.model_dump(exclude={"event_id", "type", "occurred_at", "schema_version"})
        return Output("dead_letter", at, "", dead_letter_event_id(source, raw), fields)

    # persistence (inside the processor's snapshot)
    def to_json(self) -> list[list[str]]:
        return [[key, encode(ev).decode()] for key in sorted(self.events) for ev in self.events[key]]

    def load(self, rows: list[list[str]]) -> None:
        self.events = {}
        for key, raw in rows:
            ev = decode(raw)
            if not isinstance(ev, DeadLetterReason):
                self.events.setdefault(key, []).append(ev)
        self.dirty = False
        self._next_expiry = None  # recomputed by the first expire() that scans

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))
