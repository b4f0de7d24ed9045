"""Upcasters: bring an input event written under an older schema to the current one.

The rule:
- Every input type has a CURRENT_VERSION (all 1 today). An event without
  `schema_version` is version 1 (SPEC §2).
- An upcaster is registered for `(type, from_version)` and turns a JSON object of
  that version into one of version `from_version + 1` (it sets `schema_version`).
  It gets its own copy of the object and returns a plain dict; it never validates:
  the model does that after the last step.
- `upcast` applies the steps one by one until CURRENT_VERSION. A version newer than
  the current one, or an older one with a missing step, is unsupported
  (`UnsupportedSchemaVersion`, dead-lettered as `unsupported_schema_version`).
- Changing an input model incompatibly means: bump its CURRENT_VERSION, register the
  upcaster from the previous version, and regenerate `schemas/` (`make schemas`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

CURRENT_VERSION: dict[str, int] = {
    "contract.upserted": 1,
    "ticket.opened": 1,
    "ticket.priority_changed": 1,
    "ticket.replied": 1,
    "ticket.status_changed": 1,
    "ticket.escalated": 1,
    "ticket.resolved": 1,
    "ticket.reopened": 1,
    "ticket.closed": 1,
    "outage.started": 1,
    "outage.reported": 1,
    "outage.resolved": 1,
    "outage.classified": 1,
    "maintenance.scheduled": 1,
    "maintenance.cancelled": 1,
}
"""Input event type -> the schema version the models in `events.models` describe."""

UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""(type, from_version) -> function from a version-`from_version` object to version + 1."""


class UnsupportedSchemaVersion(ValueError):
    """The event's schema_version is newer than this code, or no upcaster path exists."""


def upcaster(event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register the decorated function as the step from `from_version` to `from_version + 1`."""

    def register(step: Upcaster) -> Upcaster:
        key = (event_type, from_version)
        if key in UPCASTERS:
            raise ValueError(f"an upcaster for {event_type} from version {from_version} is already registered")
        UPCASTERS[key] = step
        return step

    return register


def upcast(event_type: str, version: int, obj: dict[str, Any]) -> dict[str, Any]:
    """Return `obj` (a `version` event of `event_type`) as an object of the current version.

    Returns `obj` itself when it is current; raises UnsupportedSchemaVersion otherwise.
    """
    current = CURRENT_VERSION[event_type]
    if version == current:
        return obj
    if version > current:
        raise UnsupportedSchemaVersion(
            f"schema_version {version} of {event_type} is newer than this processor supports ({current})"
        )
    while version < current:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise UnsupportedSchemaVersion(
                f"schema_version {version} of {event_type} cannot be upcast: no upcaster from version {version}"
            )
        obj = step(dict(obj))
        version += 1
        obj["schema_version"] = version
    return obj


@upcaster("ticket.replied", 0)
def _replied_is_public_to_public(obj: dict[str, Any]) -> dict[str, Any]:
    """Version 0 (the help-desk integration before schema 1) called `public` `is_public`."""
    if "is_public" in obj:
        value = obj.pop("is_public")
        obj.setdefault("public", value)
    return obj
