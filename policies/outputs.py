"""What the core emits, before it becomes a wire event.

The core hands the shell plain `Output` records; `events.codec` turns them into JSON.
Keeping them plain (no validation) keeps the replay hot path cheap.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from events.ids import output_event_id

__all__ = ["Output", "Rejected", "output_event_id"]


class Output(NamedTuple):
    """One derived event: its type, instant (UTC), topic key, deterministic id and SPEC §4 fields."""

    type: str
    occurred_at: datetime
    key: str
    event_id: str
    fields: dict[str, Any]


class Rejected(Exception):
    """An input the core cannot apply; the shell dead-letters it with `reason` and `message`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

