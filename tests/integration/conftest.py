"""Fixtures of the integration tests; the session's broker (`broker_url`) is in tests/conftest.py."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import pytest


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
