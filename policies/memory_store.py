"""`MemoryStore`: the processor's state in memory (replay, tools, tests), with the due index.

A module of its own, kept plain Python by the compiled build (setup_compiled.py): the shell
subclasses it (`streams/report/build.py` keeps closed tickets for a report), and an interpreted
class cannot subclass a compiled one.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime
from typing import Collection

from policies import downtime
from policies.digests import Digests
from policies.tickets import TicketState


@dataclass
class MemoryStore:
    """In-memory store with a due-index (a heap of (wake, ticket_id), stale entries skipped)."""

    tickets: dict[str, TicketState] = field(default_factory=dict)
    closed: dict[str, Collection[int]] = field(default_factory=dict)
    services: dict[str, downtime.ServiceState] = field(default_factory=dict)
    _heap: list[tuple[datetime, str]] = field(default_factory=list)
    _wake: dict[str, datetime] = field(default_factory=dict)

    def ticket(self, ticket_id: str) -> TicketState | None:
        return self.tickets.get(ticket_id)

    def save_ticket(self, state: TicketState) -> None:
        self.tickets[state.ticket_id] = state
        wake = state.next_wake
        if wake is None:
            self._wake.pop(state.ticket_id, None)
        elif self._wake.get(state.ticket_id) != wake:
            self._wake[state.ticket_id] = wake
            heapq.heappush(self._heap, (wake, state.ticket_id))

    def close_ticket(self, state: TicketState) -> None:
        self.tickets.pop(state.ticket_id, None)
        self._wake.pop(state.ticket_id, None)
        self.closed[state.ticket_id] = Digests(state.seen)  # the ids only (`seen` holds their contents too)

    def closed_digests(self, ticket_id: str) -> Collection[int] | None:
        return self.closed.get(ticket_id)

    def due_tickets(self, t: datetime) -> list[str]:
        """Tickets with a milestone strictly before `t`, each once, earliest first."""
        due: list[str] = []
        heap = self._heap
        while heap and heap[0][0] < t:
            wake, ticket_id = heapq.heappop(heap)
            if self._wake.get(ticket_id) == wake:
                del self._wake[ticket_id]
                due.append(ticket_id)
        return due

    def service(self, service_id: str) -> downtime.ServiceState | None:
        return self.services.get(service_id)

    def save_service(self, state: downtime.ServiceState) -> None:
        self.services[state.service_id] = state
