"""Suite-wide pytest configuration: the session's broker.

One embedded Tansu broker per test session (memory storage, free loopback port) for the
integration and the deploy tests alike, unless SLAPROC_TEST_BROKER names an external broker.
SLAPROC_SKIP_BROKER_TESTS=1 is the only way to skip the tests marked `broker`; a broker that
fails to start is a test failure. Tests isolate themselves with unique topic prefixes and app ids
(the `topic_prefix` fixture of tests/integration/conftest.py, `new_app` of the stream tests).

`make test` runs the suite on two pytest-xdist processes (`-n 2 --dist worksteal`): most integration
and deploy tests wait on brokers, workers and Prometheus (I/O, not CPU), so two of them overlap
on a 2-core machine. Each xdist process is a session of its own, with its own broker, its own
temporary directory and its own session fixtures (the 20k `mix` is made once per process);
ports are free ones picked per test. Not `--dist loadgroup`: with pytest 9.2, pytest-xdist
3.8.0 no longer tags a test's id with its group, so every test is scheduled on its own anyway.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from streams.testing.broker import EmbeddedBroker


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SLAPROC_SKIP_BROKER_TESTS") == "1":
        skip = pytest.mark.skip(reason="SLAPROC_SKIP_BROKER_TESTS=1")
        for item in items:
            if "broker" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """Faust-style URL (`kafka://host:port`) of the broker the tests use: SLAPROC_TEST_BROKER, or an
    embedded Tansu broker of this session (of this xdist process), stopped at its end."""
    if os.environ.get("SLAPROC_SKIP_BROKER_TESTS") == "1":
        pytest.skip("SLAPROC_SKIP_BROKER_TESTS=1")
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
