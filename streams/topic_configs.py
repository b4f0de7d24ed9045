"""The configuration of every topic slaproc's worker creates (cleanup policy, retention): one
table for the worker (`StreamWorker.declare_topics`) and for deploy/kafka/topics.yml, which
create-topics.sh applies; tests/unit/test_topic_names.py reads topics.yml and compares the two.

A topic the worker created got the broker's defaults before (7 days on Kafka): the input
topics are the event store (SPEC §5: replay and backfill read them), so 7 days silently cut
the history a replay or a new worker group needs (review topics F2). No imports: the names are
SPEC §1's (before the prefix) and the worker's own topics by their suffix after the app id.
"""
from __future__ import annotations

__all__ = ["DAY_MS", "TOPIC_CONFIGS", "INTERNAL_TOPIC_CONFIGS", "topic_config"]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

_DELETE = "delete"

#: SPEC §1 topic (no prefix) -> its topic configs (values as Kafka takes them: strings).
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    # The latest contract.upserted per key, kept forever (compacted).
    "sla.contracts": {"cleanup.policy": "compact", "min.compaction.lag.ms": str(HOUR_MS),
                      "segment.ms": str(DAY_MS)},
    # The event store: replays and backfills read them (docs/operations.md): 400 days.
    "sla.ticket-events": {"cleanup.policy": _DELETE, "retention.ms": str(400 * DAY_MS)},
    "sla.monitoring-events": {"cleanup.policy": _DELETE, "retention.ms": str(400 * DAY_MS)},
    # Outputs: deterministic event ids, regenerable by replay; 30 days for consumers.
    "sla.breaches": {"cleanup.policy": _DELETE, "retention.ms": str(30 * DAY_MS)},
    "sla.warnings": {"cleanup.policy": _DELETE, "retention.ms": str(30 * DAY_MS)},
    "sla.notices": {"cleanup.policy": _DELETE, "retention.ms": str(30 * DAY_MS)},
    # Refund eligibility is claimed within 30 days of the month's end: kept 90 days.
    "sla.refund-eligibility": {"cleanup.policy": _DELETE, "retention.ms": str(90 * DAY_MS)},
    "sla.dead-letter": {"cleanup.policy": _DELETE, "retention.ms": str(30 * DAY_MS)},
}

#: The worker's own topics, `<app_id><suffix>` -> configs. Ticks matter for a moment. An
#: attainment partial is read at once by the partition's owner and folded into the attainment
#: table (its changelog is the state); 30 days covers any outage of the workers (the partials are
#: written by the workers themselves, so none is written while they are all down).
INTERNAL_TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    "-ticks": {"cleanup.policy": _DELETE, "retention.ms": str(HOUR_MS)},
    "-attainment": {"cleanup.policy": _DELETE, "retention.ms": str(30 * DAY_MS)},
}


def topic_config(name: str) -> dict[str, str]:
    """A copy of the configs of a SPEC §1 topic (no prefix) or of an internal suffix (`-ticks`)."""
    table = INTERNAL_TOPIC_CONFIGS if name.startswith("-") else TOPIC_CONFIGS
    return dict(table[name])
