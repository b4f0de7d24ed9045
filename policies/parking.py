"""Parking (SPEC §10): events that arrive before the event that creates their entity.

A reply before its `ticket.opened`, an `outage.resolved` / `outage.classified` before the
outage's `outage.started` / `outage.reported`, a `maintenance.cancelled` before its
`maintenance.scheduled`: each is kept under its entity's key and applied when the entity
appears (by `Processor`), or expires to the dead letter (reason `orphan`) once its half's
time passes its `occurred_at` + the parking horizon. A parked event moves no time.

Events waiting for their contract (docs/decisions.md, "Contract wait") are parked here too: a
`ticket.opened` of a customer no contract names yet under the customer (`customer_key`), a
monitoring event of a service no contract names yet under the service (`service_key`). They are
applied when a contract naming them is installed (by `Processor`), or expire after the much shorter
contract wait to the dead letter with the reason they would have had at once (`unknown_customer`,
`unknown_service`). Help desks and alerting send events for customers and services nobody
contracts all the time: those wait in a room bounded in bytes (`contract_bytes`); an event that
does not fit is rejected at once, as before the rule.

Pure: the expiry instant is the event's own `occurred_at` + horizon (or contract wait), so the dead
letter is the same whatever tick found it expired (stream equals replay). Its dead letter is stamped
with the event's own `occurred_at`, as every rejected event is.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from events.codec import DeadLetterReason, dead_letter_event, decode, encode
from events.ids import dead_letter_event_id
from policies.outputs import Output
from policies.uptime import claim_deadline, month_of

TICKETS, MONITORING = "tickets", "monitoring"
_SEP = "\x1f"


def ticket_key(ticket_id: str) -> str:
    return f"t{_SEP}{ticket_id}"


def outage_key(service_id: str, outage_id: str) -> str:
    return f"o{_SEP}{service_id}{_SEP}{outage_id}"


def window_key(service_id: str, maintenance_id: str) -> str:
    return f"m{_SEP}{service_id}{_SEP}{maintenance_id}"


def customer_key(customer_id: str) -> str:
    """Where a `ticket.opened` waits for its customer's contract."""
    return f"c{_SEP}{customer_id}"


def service_key(service_id: str) -> str:
    """Where a monitoring event waits for a contract naming its service."""
    return f"s{_SEP}{service_id}"


def waits_for_contract(key: str) -> bool:
    return key[0] in "cs"


def contract_reason(key: str) -> str:
    """The dead-letter reason of an event that waited for a contract under `key`."""
    return "unknown_customer" if key[0] == "c" else "unknown_service"


def contract_subject(key: str) -> str:
    """The customer or service id a contract key waits for."""
    return key.split(_SEP, 1)[1]


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
    return TICKETS if key[0] in "tc" else MONITORING


def _order(ev: Any) -> tuple[datetime, str]:
    return ev.occurred_at, ev.event_id


FULL = "\x00full"  # `Parking.park`: no room left for events waiting for a contract

# Expired monitoring orphans remembered at most (`Parking.remembered`): the oldest go first. Orphans
# are rare (a producer that lost a start); the bound keeps a flood of them from growing the state,
# which the stream writes with every unit (the processor's snapshot): ~300 KB at most.
REMEMBER_AT_MOST = 1_000


def remembered_until(ev: Any) -> datetime:
    """Until when an expired monitoring orphan is remembered: its month's claim window. A start
    dated no later than it and read after that is `month_final` (SPEC §10) anyway."""
    return claim_deadline(month_of(ev.occurred_at))


_UNKNOWN = datetime.min.replace(tzinfo=timezone.utc)  # `_next_expiry` of a half not scanned since a load


class Parking:
    """Parked events by entity key. Small (events wait days at most), so scans are fine."""

    def __init__(self, horizon: timedelta, contract_wait: timedelta = timedelta(minutes=10),
                 contract_room: int = 256 * 1024) -> None:
        self.horizon = horizon
        self.contract_wait = contract_wait
        self.contract_room = contract_room  # bytes (encoded) of events waiting for a contract, at most
        self.events: dict[str, list[Any]] = {}
        self.expired = 0  # counter (metrics): parked events that expired (`orphan`, or a contract reason)
        self.parked = 0  # counter (metrics): events parked
        self.recalled = 0  # counter: remembered (expired) events taken out for their entity
        self.contract_bytes = 0  # encoded bytes of the events waiting for a contract now
        self.dirty = False
        # per half, no event of it expires at or before this (None: nothing parked in it). Per half: an
        # event of the lagging half must not make every step of the other half scan the parking.
        self._next_expiry: dict[str, datetime | None] = {TICKETS: None, MONITORING: None}
        # (key, event_id) -> the parked event encoded, made once (its snapshot text, its size)
        self._encoded: dict[tuple[str, str], str] = {}
        # Monitoring events that expired as orphans (their dead letter is out), kept by entity key
        # until their month's claim window closes (`remembered_until`): an outage whose start is
        # read later still still gets its `outage.resolved` (and its classification; a window its
        # cancellation). Forgotten at once, the resolve left the outage open, down in every month
        # since, until someone re-sent the dead letter: 995.00 USD a month of refund on Vectorize
        # Pro (review of 2026-12-06). Not for tickets: a ticket's orphans are replies to tickets
        # opened before the integration existed, every day; a ticket never refunds.
        self.remembered: dict[str, list[Any]] = {}
        self._remembered_until: datetime | None = None  # the earliest forget instant, None: none kept
        self._remembered_text: dict[tuple[str, str], str] = {}  # as `_encoded`, for the snapshot

    def wait_of(self, key: str) -> timedelta:
        """How long an event parked under `key` waits after its occurred_at."""
        return self.contract_wait if waits_for_contract(key) else self.horizon

    def contract_keys(self) -> list[str]:
        """The keys of events waiting for a contract, sorted."""
        return sorted(k for k in self.events if waits_for_contract(k))

    def __bool__(self) -> bool:
        return bool(self.events)

    def __len__(self) -> int:
        return sum(len(v) for v in self.events.values())

    def park(self, key: str, ev: Any) -> Any:
        """Park `ev` under `key`; None, or the event already parked there with the same id (a
        redelivery parks once: the caller tells a re-sent event from a conflicting one), or FULL
        when `ev` waits for a contract and the room for those has no space for it (not parked)."""
        waiting = self.events.get(key, ())
        for parked in waiting:
            if parked.event_id == ev.event_id:
                return parked
        text = encode(ev).decode()
        if waits_for_contract(key):
            size = len(text.encode())
            if self.contract_bytes + size > self.contract_room:
                return FULL
            self.contract_bytes += size
        self._encoded[(key, ev.event_id)] = text
        self.events.setdefault(key, []).append(ev)
        self.parked += 1
        self.dirty = True
        expiry = ev.occurred_at + self.wait_of(key)
        half = half_of(key)
        known = self._next_expiry[half]
        if known is None or expiry < known:
            self._next_expiry[half] = expiry
        return None

    def _forget(self, key: str, gone: list[Any]) -> None:
        """Drop the encoded text (and the room) of events taken out of `key`."""
        encoded = self._encoded
        freed = 0
        for ev in gone:
            text = encoded.pop((key, ev.event_id), None)
            if text is not None:
                freed += len(text.encode())
        if waits_for_contract(key):
            self.contract_bytes -= freed

    def take(self, key: str) -> list[Any]:
        waiting = self.events.pop(key, [])
        if waiting:
            self.dirty = True
            self._forget(key, waiting)
        return sorted(waiting, key=_order)

    def take_for_entity(self, key: str) -> tuple[list[Any], set[str]]:
        """What waits for the entity `key` now exists, taken out in (occurred_at, event_id) order:
        the parked events and the expired orphans remembered for it, applied as if they had waited
        (a resolve read more than the horizon before its outage's start ends the outage, as in the
        sorted order); with the ids of the remembered ones (their `orphan` dead letter is out: one
        rejected now gives no second). A remembered event parked again (re-sent) comes once."""
        waiting = self.take(key)
        late = self.remembered.pop(key, None)
        if not late:
            return waiting, set()
        self.dirty = True
        self.recalled += len(late)
        for ev in late:
            self._remembered_text.pop((key, ev.event_id), None)
        parked_ids = {ev.event_id for ev in waiting}
        late = [ev for ev in late if ev.event_id not in parked_ids]
        return sorted(waiting + late, key=_order), {ev.event_id for ev in late}

    def _remember(self, key: str, gone: list[Any]) -> None:
        if key[0] not in "om":
            return
        self.remembered.setdefault(key, []).extend(gone)
        for ev in gone:
            self._remembered_text[(key, ev.event_id)] = self._encoded.get((key, ev.event_id)) or encode(ev).decode()
            until = remembered_until(ev)
            if self._remembered_until is None or until < self._remembered_until:
                self._remembered_until = until
        count = sum(len(v) for v in self.remembered.values())
        if count > REMEMBER_AT_MOST:  # the oldest (by their own instant) go first
            kept = sorted(((k, ev) for k, evs in self.remembered.items() for ev in evs),
                          key=lambda row: (row[1].occurred_at, row[1].event_id))[count - REMEMBER_AT_MOST:]
            self.remembered = {}
            for k, ev in kept:
                self.remembered.setdefault(k, []).append(ev)
            self._keep_remembered_text()

    def _keep_remembered_text(self) -> None:
        """Drop the texts of remembered orphans no longer kept."""
        kept = {(k, ev.event_id) for k, evs in self.remembered.items() for ev in evs}
        self._remembered_text = {k: v for k, v in self._remembered_text.items() if k in kept}

    def _forget_remembered(self, t: datetime) -> None:
        """Drop the remembered orphans whose month's claim window closed before `t`."""
        until = self._remembered_until
        if until is None or t <= until:
            return
        self.remembered = {k: keep for k, evs in self.remembered.items()
                           if (keep := [ev for ev in evs if remembered_until(ev) >= t])}
        self._keep_remembered_text()
        self.dirty = True
        self._remembered_until = self._earliest_forget()

    def _earliest_forget(self) -> datetime | None:
        return min((remembered_until(ev) for evs in self.remembered.values() for ev in evs), default=None)

    def expire(self, half: str, t: datetime) -> list[Output]:
        """Dead letters for the events of `half` whose wait is over at `t`: `orphan` after the parking
        horizon, `unknown_customer` / `unknown_service` after the contract wait. Expired monitoring
        orphans are remembered (`remembered`)."""
        if half == MONITORING and self._remembered_until is not None:
            self._forget_remembered(t)
        known = self._next_expiry[half]
        if known is None or t <= known:
            return []
        out: list[Output] = []
        for key in sorted(self.events):
            if half_of(key) != half:
                continue
            waiting = self.events[key]
            wait = self.wait_of(key)
            keep = [ev for ev in waiting if ev.occurred_at + wait >= t]
            if len(keep) == len(waiting):
                continue
            gone = sorted((ev for ev in waiting if ev.occurred_at + wait < t), key=_order)
            for ev in gone:
                out.append(self.dead_letter(ev, self.reason_of(key), self.expiry_message(key, ev), ev.occurred_at))
                self.expired += 1
            if not waits_for_contract(key):
                self._remember(key, gone)  # before `_forget`: it takes their encoded text
            self._forget(key, gone)
            self.dirty = True
            if keep:
                self.events[key] = keep
            else:
                del self.events[key]
        self._next_expiry[half] = min((ev.occurred_at + self.wait_of(k) for k, w in self.events.items()
                                       if half_of(k) == half for ev in w), default=None)
        return out

    def drain(self) -> list[tuple[str, Any]]:
        """Every parked event with its key, taken out (replay: the batch is over, nothing more comes)."""
        rows = [(key, ev) for key in sorted(self.events) for ev in sorted(self.events[key], key=_order)]
        self.events = {}
        self._encoded = {}
        self.remembered = {}  # their dead letters are out
        self._remembered_until = None
        self._remembered_text = {}
        self.contract_bytes = 0
        self._next_expiry = {TICKETS: None, MONITORING: None}
        self.dirty = self.dirty or bool(rows)
        return rows

    @staticmethod
    def reason_of(key: str) -> str:
        """The dead-letter reason of an event parked under `key` that waited in vain."""
        return contract_reason(key) if waits_for_contract(key) else "orphan"

    def expiry_message(self, key: str, ev: Any) -> str:
        """The dead-letter message of an event parked under `key` that waited in vain."""
        if not waits_for_contract(key):
            return self.orphan_message(key, ev)
        subject = contract_subject(key)
        what = (f"customer_id {subject!r} has no contract" if key[0] == "c"
                else f"service_id {subject!r} is not in any contract")
        return (f"{what} (waited {self.contract_wait} after its occurred_at for a contract naming it: "
                f"docs/decisions.md, \"Contract wait\")")

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
        """Rows [key, event]; a remembered orphan's row has a third element, "expired"."""
        encoded = self._encoded
        return [[key, encoded.get((key, ev.event_id)) or encode(ev).decode()]
                for key in sorted(self.events) for ev in self.events[key]] + [
            [key, self._remembered_text.get((key, ev.event_id)) or encode(ev).decode(), "expired"]
            for key in sorted(self.remembered) for ev in self.remembered[key]]

    def load(self, rows: list[list[str]]) -> None:
        self.events = {}
        self._encoded = {}
        self.contract_bytes = 0
        self.remembered = {}
        self._remembered_text = {}
        for row in rows:
            key, raw = row[0], row[1]
            ev = decode(raw)
            if isinstance(ev, DeadLetterReason):
                continue
            if len(row) > 2:  # remembered (rows written before they existed have two elements)
                self.remembered.setdefault(key, []).append(ev)
                self._remembered_text[(key, ev.event_id)] = raw
                continue
            self.events.setdefault(key, []).append(ev)
            self._encoded[(key, ev.event_id)] = raw
            if waits_for_contract(key):
                self.contract_bytes += len(raw.encode())
        self._remembered_until = self._earliest_forget()
        self.dirty = False
        # recomputed by the first expire() of each half that has events (it scans)
        self._next_expiry = {half: _UNKNOWN if any(half_of(k) == half for k in self.events) else None
                             for half in (TICKETS, MONITORING)}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))
