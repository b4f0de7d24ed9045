"""Kafka administration the worker and the gateway need at start: the bootstrap list of a
broker URL and creating topics. Product code, apart from the embedded test broker
(streams/testing/broker.py), so a production install imports nothing of it."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.kafka_config import KafkaSettings


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic (other than because it exists)."""


def bootstrap_servers(url: str) -> str:
    """`kafka://h1:p1;h2:p2` (Faust style) -> `h1:p1,h2:p2` (aiokafka style)."""
    hosts = []
    for part in url.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            hosts.append(part.rstrip("/"))
    if not hosts:
        raise ValueError(f"no broker address in {url!r}")
    return ",".join(hosts)


async def create_topics(url: str, names: Iterable[str], partitions: int,
                        config: Mapping[str, str] | None = None, *,
                        replication_factor: int = 1, kafka: "KafkaSettings | None" = None) -> list[str]:
    """Create topics that do not exist yet; return the names actually created.

    `url` is Faust style (`kafka://host:port`) or a plain bootstrap list; `kafka` the TLS/SASL
    settings (streams/kafka_config.py; None = PLAINTEXT). An existing topic (error 36) is not an
    error; its partition count is checked at the worker's start (kafka_config.check_copartitioned).
    Tansu accepts `cleanup.policy=compact` but does not compact.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from streams.kafka_config import aiokafka_kwargs

    names = list(dict.fromkeys(names))
    if not names:
        return []
    security = aiokafka_kwargs(kafka) if kafka is not None else {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(url), request_timeout_ms=10000, **security)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(n, partitions, replication_factor, topic_configs=dict(config or {}))
             for n in names])
        created, failures = [], []
        for topic_error in response.topic_errors:
            topic, code = topic_error[0], topic_error[1]
            message = topic_error[2] if len(topic_error) > 2 else None
            if code == 0:
                created.append(topic)
            elif code != 36:  # TOPIC_ALREADY_EXISTS
                failures.append(f"{topic}: error {code} {message or ''}".strip())
        if failures:
            raise TopicCreationError("create_topics failed: " + "; ".join(failures))
        return created
    finally:
        await admin.close()
