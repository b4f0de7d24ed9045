"""Suite-wide pytest configuration: the session's broker, and how `make test` spreads the tests over
pytest-xdist workers.

One embedded Tansu broker per test session (memory storage, free loopback port) for the
integration and the deploy tests alike, unless SLAPROC_TEST_BROKER names an external broker.
SLAPROC_SKIP_BROKER_TESTS=1 is the only way to skip the tests marked `broker`; a broker that
fails to start is a test failure. Tests isolate themselves with unique topic prefixes and app ids
(the `topic_prefix` fixture of tests/integration/conftest.py, `new_app` of the stream tests).

`make test` runs the suite on two xdist workers with `--dist loadgroup`: most integration and
deploy tests wait on brokers, workers and Prometheus (I/O, not CPU), so two of them overlap on a
2-core machine. Each xdist worker is its own pytest session with its own session fixtures (its
own embedded broker, its own temporary directory); ports are free ones picked per test, topic
prefixes and group ids are unique per test, so tests on different workers never share state.

What must not be split over workers is an expensive fixture shared by several tests: a worker
that ran one of them would build it again. `xdist_group` keeps those tests on one worker (a run
without xdist ignores the mark).
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from streams.testing.broker import EmbeddedBroker

#: Fixture scopes that outlive one test.
_SHARED_SCOPES = ("module", "class", "package")


def xdist_group_of(item: pytest.Item) -> str | None:
    """The xdist group a test belongs to, None for a test any worker may run alone.

    - the session's 20k `mix` (tests/integration/conftest.py; generating it and its replay takes
      a while): every test using it on one worker, whichever file it is in;
    - a fixture of module (class, package) scope, such as a Prometheus + Alertmanager + worker
      stack or a PKI: the module's tests together (per parameter of a parametrized one), so it is
      set up once.
    """
    definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    mix = definitions.get("mix")
    if mix and mix[-1].scope == "session":
        return "session-mix"
    shared = {name: defs[-1] for name, defs in definitions.items() if defs[-1].scope in _SHARED_SCOPES}
    if not shared:
        return None
    # A parametrized shared fixture is set up once per parameter: each parameter's tests may go to
    # a worker of their own (the two `live` stacks of test_live_worker.py run side by side). No
    # "]" or "@" in a group name: xdist finds the group after the last "@", if no "]" follows it.
    indices = getattr(getattr(item, "callspec", None), "indices", {})
    params = [f"{name}={indices[name]}" for name, fixture in sorted(shared.items())
              if fixture.params is not None and name in indices]
    return "::".join([item.nodeid.split("::", 1)[0], *params])


# tryfirst: xdist's own hook turns the marks into work units, so the marks must be on first.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_broker = os.environ.get("SLAPROC_SKIP_BROKER_TESTS") == "1"
    for item in items:
        if skip_broker and "broker" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="SLAPROC_SKIP_BROKER_TESTS=1"))
        group = xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """Faust-style URL (`kafka://host:port`) of the broker the tests use: SLAPROC_TEST_BROKER, or an
    embedded Tansu broker of this session (of this xdist worker), stopped at its end."""
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
