"""SASL against a real SASL server: Tansu 0.6.0 with `--authentication`, behind the TLS terminator
(SASL_SSL), and directly (SASL_PLAINTEXT).

What can be tested for real here, and what cannot: Tansu offers SCRAM-SHA-256 and SCRAM-SHA-512,
but its users live in the broker's storage and `tansu user create` is itself refused by an
authenticating broker before any login (AlterUserScramCredentials -> NotAuthenticated, the
connection is closed: the "early eof"); with memory storage a user cannot be created before
authentication is switched on. So no login can succeed here: these tests cover the SCRAM exchange
up to the server's refusal, the mechanism negotiation (PLAIN not offered) and the one-line errors.
A successful SASL login is covered only by the settings -> aiokafka/Faust parameter mapping
(tests/unit/test_kafka_config.py).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams.testing.harness import REPO
from tests.integration.netsupport import make_pki, tls_broker

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def sasl_tls(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    with tls_broker(pki, mtls=False, authentication=True) as b:
        yield b, pki


def worker_fails(url: str, env: dict[str, str], tmp_path: Path) -> tuple[str, float]:
    full = {**os.environ, "SLAPROC_BROKER": url, "SLAPROC_DATA_DIR": str(tmp_path / "data"), "SLAPROC_WEB_ENABLED": "false",
            "SLAPROC_KAFKA_CONNECT_TIMEOUT": "5", **env}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "streams.worker"], env=full, capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    return lines[0], time.monotonic() - started


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_over_tls_refused_login_is_one_line(mechanism, sasl_tls, tmp_path):
    broker, pki = sasl_tls
    env = {"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["ca"]),
           "SLAPROC_KAFKA_SASL_MECHANISM": mechanism, "SLAPROC_KAFKA_SASL_USERNAME": "alice",
           "SLAPROC_KAFKA_SASL_PASSWORD": "not-the-password"}
    line, elapsed = worker_fails(broker.url, env, tmp_path)
    print(f"\n{mechanism}: {elapsed:.1f} s: {line}")
    assert line.startswith(f"slaproc worker: SLAPROC_KAFKA_SASL_PASSWORD: localhost:{broker.port} refused "
                           f"{mechanism} authentication as 'alice'")
    assert "not-the-password" not in line and elapsed < 15


def test_mechanism_the_broker_does_not_offer_is_one_line(sasl_tls, tmp_path):
    broker, pki = sasl_tls
    env = {"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["ca"]),
           "SLAPROC_KAFKA_SASL_MECHANISM": "PLAIN", "SLAPROC_KAFKA_SASL_USERNAME": "alice",
           "SLAPROC_KAFKA_SASL_PASSWORD": "pw"}
    line, elapsed = worker_fails(broker.url, env, tmp_path)
    print(f"\nPLAIN: {elapsed:.1f} s: {line}")
    assert line.startswith(f"slaproc worker: SLAPROC_KAFKA_SASL_MECHANISM: localhost:{broker.port} closed the "
                           "connection during the SASL PLAIN handshake; does the cluster offer PLAIN?")
    assert elapsed < 15


def test_sasl_plaintext_needs_the_explicit_allowance_then_reaches_the_broker(sasl_tls, tmp_path):
    broker, _ = sasl_tls
    env = {"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "SLAPROC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
           "SLAPROC_KAFKA_SASL_USERNAME": "alice", "SLAPROC_KAFKA_SASL_PASSWORD": "pw"}
    line, _ = worker_fails(broker.plaintext_url, env, tmp_path)
    assert line.startswith("slaproc worker: SLAPROC_KAFKA_SECURITY_PROTOCOL: SASL_PLAINTEXT sends credentials "
                           "unencrypted")
    line, _ = worker_fails(broker.plaintext_url, {**env, "SLAPROC_KAFKA_ALLOW_PLAINTEXT_SASL": "true"}, tmp_path)
    assert line.startswith("slaproc worker: SLAPROC_KAFKA_SASL_PASSWORD: ") and "refused SCRAM-SHA-512" in line


def test_no_sasl_against_an_authenticating_broker_is_one_line(sasl_tls, tmp_path):
    broker, pki = sasl_tls
    env = {"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["ca"])}
    line, elapsed = worker_fails(broker.url, env, tmp_path)
    print(f"\nno SASL: {elapsed:.1f} s: {line}")
    assert line.startswith(f"slaproc worker: SLAPROC_KAFKA_SECURITY_PROTOCOL: localhost:{broker.port} answered, but "
                           "refused the cluster metadata to a client without SASL; does the cluster require "
                           "authentication (SASL_SSL)?") and elapsed < 15
