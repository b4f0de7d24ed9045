"""Shared fixtures for the deployment tests (tests/deploy).

The Prometheus tools are system packages (CI installs `prometheus` and
`prometheus-alertmanager`, see .ci/run). Tests needing them fail loudly when they are
missing, unless SLAPROC_SKIP_PROMETHEUS_TESTS=1 says to skip them.

Tests marked `broker` (the live worker test) get the session's embedded Tansu broker
from `broker_url` (tests/conftest.py), the one the integration tests use;
SLAPROC_TEST_BROKER names an external broker instead, and SLAPROC_SKIP_BROKER_TESTS=1 is
the only way to skip them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def require_binary(name: str, *alternatives: str) -> str:
    """Absolute path of the first of `name`, `alternatives` on PATH.

    Skips only when SLAPROC_SKIP_PROMETHEUS_TESTS=1; otherwise a missing binary fails.
    """
    if os.environ.get("SLAPROC_SKIP_PROMETHEUS_TESTS") == "1":
        pytest.skip("SLAPROC_SKIP_PROMETHEUS_TESTS=1")
    path = next(filter(None, map(shutil.which, (name, *alternatives))), None)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install prometheus prometheus-alertmanager "
                    f"(or set SLAPROC_SKIP_PROMETHEUS_TESTS=1 to skip these tests)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_binary("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return require_binary("amtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return require_binary("prometheus")


@pytest.fixture(scope="session")
def alertmanager_bin() -> str:
    return require_binary("prometheus-alertmanager", "alertmanager")  # Debian's name first
