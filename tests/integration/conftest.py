"""Fixtures for tests that need a Kafka-protocol broker.

One embedded Tansu broker per test session (memory storage, free loopback port),
unless SLAPROC_TEST_BROKER names an external broker. SLAPROC_SKIP_BROKER_TESTS=1 is
the only way to skip these tests; a broker that fails to start is a test failure.
Tests isolate themselves with a unique topic prefix (`topic_prefix` fixture).
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from streams.testing.broker import EmbeddedBroker


def pytest_collection_modifyitems(config, items):
    if os.environ.get("SLAPROC_SKIP_BROKER_TESTS") == "1":
        skip = pytest.mark.skip(reason="SLAPROC_SKIP_BROKER_TESTS=1")
        for item in items:
            if "broker" in item.keywords:
                item.add_marker(skip)


def session_broker():
    """Yield the URL of SLAPROC_TEST_BROKER, or of an embedded Tansu broker stopped afterwards
    (shared by the integration and deploy broker fixtures)."""
    external = os.environ.get("SLAPROC_TEST_BROKER")
    if external:
        yield external
        return
    broker = EmbeddedBroker()
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def broker_url():
    """Faust-style URL (`kafka://host:port`) of the broker the tests use."""
    yield from session_broker()


@pytest.fixture(scope="session")
def mix(tmp_path_factory) -> dict[str, Any]:
    """The 20k-event generated mix with its tick instant `at` (the session's start, to the second)
    and replay's outputs until then (test_stream_equals_replay.generated_mix): one for the session,
    shared by the stream-equals-replay, arrival-order and resilience tests."""
    from tests.integration.test_stream_equals_replay import generated_mix

    return generated_mix(tmp_path_factory.mktemp("mix"), datetime.now(timezone.utc).replace(microsecond=0))


@pytest.fixture
def topic_prefix() -> str:
    """A fresh topic prefix so tests sharing the session broker never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."
