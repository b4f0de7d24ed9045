"""streams/kafka_config.py without a broker: settings from the environment, validation (one line per
problem naming the variable), secrets masked, aiokafka and Faust parameters, the OAuth token
provider against a local token endpoint, the replication cap and the co-partitioning check.

TLS and SASL against a live endpoint: tests/integration/test_kafka_tls.py.
"""
from __future__ import annotations

import asyncio
import base64
import json
import shutil
import ssl
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from streams import kafka_config as kc
from streams.kafka_config import KafkaConfigError, KafkaSettings, Secret
from streams.settings import SettingsError, WorkerSettings


def problems_of(env: dict[str, str]) -> list[str]:
    with pytest.raises(KafkaConfigError) as info:
        KafkaSettings.from_env(env)
    return info.value.problems


SCRAM = {"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAPROC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
         "SLAPROC_KAFKA_SASL_USERNAME": "svc-slaproc", "SLAPROC_KAFKA_SASL_PASSWORD": "s3cret-pw"}


# --- certificates (openssl CLI) --------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A throwaway CA, a client certificate signed by it (key encrypted with 'kpw'), and a second
    unrelated key (for the mismatch case)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl CLI missing (installed by .ci/run)")
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=client")
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "client.pem", "-days", "2")
    run("pkey", "-in", "client.key", "-aes256", "-passout", "pass:kpw", "-out", "client-enc.key")
    run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "other.key")
    (d / "garbage.pem").write_text("not a certificate\n")
    return {"ca": d / "ca.pem", "client": d / "client.pem", "client_enc": d / "client-enc.key",
            "other": d / "other.key", "garbage": d / "garbage.pem", "dir": d}


# --- loading and validation ------------------------------------------------------------------

def test_default_is_plaintext_and_needs_nothing():
    k = KafkaSettings.from_env({})
    assert k.security_protocol == "PLAINTEXT" and k.ssl_context is None
    assert kc.aiokafka_kwargs(k) == {"security_protocol": "PLAINTEXT"}
    assert kc.faust_app_kwargs(k) == {}


def test_scram_over_tls_from_env_with_system_ca():
    k = KafkaSettings.from_env({**SCRAM, "SLAPROC_KAFKA_SASL_MECHANISM": "scram-sha-512"})
    kw = kc.aiokafka_kwargs(k)
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_username"] == "svc-slaproc" and kw["sasl_plain_password"] == "s3cret-pw"
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.cert_store_stats()["x509_ca"] > 0 or ctx.get_ca_certs() is not None  # system store loaded


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_every_password_mechanism_maps_to_aiokafka(mechanism):
    k = KafkaSettings.from_env({**SCRAM, "SLAPROC_KAFKA_SASL_MECHANISM": mechanism})
    assert kc.aiokafka_kwargs(k)["sasl_mechanism"] == mechanism


def test_secrets_are_never_shown():
    k = KafkaSettings.from_env({**SCRAM, "SLAPROC_KAFKA_SSL_CHECK_HOSTNAME": "false"})
    for text in (repr(k), str(k), k.describe(), repr(WorkerSettings(kafka=k)), f"{k.sasl_password}"):
        assert "s3cret-pw" not in text
    assert "svc-slaproc" in k.describe() and "hostname check OFF" in k.describe()
    assert repr(Secret("x")) == "Secret('***')" and Secret("x").reveal() == "x"


def test_secret_from_file_and_not_both(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    env = {**SCRAM, "SLAPROC_KAFKA_SASL_PASSWORD_FILE": str(secret)}
    del env["SLAPROC_KAFKA_SASL_PASSWORD"]
    assert KafkaSettings.from_env(env).sasl_password.reveal() == "from-file"  # trailing newline dropped
    both = problems_of({**env, "SLAPROC_KAFKA_SASL_PASSWORD": "x"})
    assert both == ["SLAPROC_KAFKA_SASL_PASSWORD: set together with SLAPROC_KAFKA_SASL_PASSWORD_FILE; use one of them"]
    missing = problems_of({**env, "SLAPROC_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "nope")})
    assert len(missing) == 1 and missing[0].startswith("SLAPROC_KAFKA_SASL_PASSWORD_FILE: cannot read ")


def test_unknown_variable_is_rejected_with_the_closest_name():
    found = problems_of({"SLAPROC_KAFKA_SSL_CAFILE": "/x", "SLAPROC_KAFKA_SASL_PASWORD": "y"})
    assert "SLAPROC_KAFKA_SASL_PASWORD: unknown setting; did you mean SLAPROC_KAFKA_SASL_PASSWORD?" in found
    assert "SLAPROC_KAFKA_SSL_CAFILE: unknown setting; did you mean SLAPROC_KAFKA_SSL_CA_FILE?" in found
    assert all(p.startswith("SLAPROC_KAFKA_") for p in found)


def test_sasl_without_tls_is_refused_unless_allowed():
    env = {**SCRAM, "SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
    [line] = problems_of(env)
    assert line.startswith("SLAPROC_KAFKA_SECURITY_PROTOCOL: SASL_PLAINTEXT sends credentials unencrypted")
    assert "SLAPROC_KAFKA_ALLOW_PLAINTEXT_SASL=true" in line
    k = KafkaSettings.from_env({**env, "SLAPROC_KAFKA_ALLOW_PLAINTEXT_SASL": "true"})
    kw = kc.aiokafka_kwargs(k)
    assert kw["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in kw


@pytest.mark.parametrize("env, expected", [
    ({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "TLS"},
     ["SLAPROC_KAFKA_SECURITY_PROTOCOL: unknown protocol 'TLS'; use one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"]),
    ({**SCRAM, "SLAPROC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-1"},
     ["SLAPROC_KAFKA_SASL_MECHANISM: unknown mechanism 'SCRAM-SHA-1'; use one of PLAIN, SCRAM-SHA-256, "
      "SCRAM-SHA-512, OAUTHBEARER"]),
    ({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
     ["SLAPROC_KAFKA_SASL_MECHANISM: required with SASL_SSL; use one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, "
      "OAUTHBEARER"]),
    ({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAPROC_KAFKA_SASL_MECHANISM": "PLAIN"},
     ["SLAPROC_KAFKA_SASL_USERNAME: required with SASL mechanism PLAIN",
      "SLAPROC_KAFKA_SASL_PASSWORD: required with SASL mechanism PLAIN"]),
    ({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAPROC_KAFKA_SASL_MECHANISM": "OAUTHBEARER"},
     ["SLAPROC_KAFKA_OAUTH_TOKEN_URL: required with SASL mechanism OAUTHBEARER",
      "SLAPROC_KAFKA_OAUTH_CLIENT_ID: required with SASL mechanism OAUTHBEARER",
      "SLAPROC_KAFKA_OAUTH_CLIENT_SECRET: required with SASL mechanism OAUTHBEARER"]),
    ({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAPROC_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
      "SLAPROC_KAFKA_OAUTH_TOKEN_URL": "http://idp.example.com/token", "SLAPROC_KAFKA_OAUTH_CLIENT_ID": "c",
      "SLAPROC_KAFKA_OAUTH_CLIENT_SECRET": "s"},
     ["SLAPROC_KAFKA_OAUTH_TOKEN_URL: plain http would send the client secret unencrypted; use https"]),
    ({"SLAPROC_KAFKA_SASL_USERNAME": "u"},
     ["SLAPROC_KAFKA_SASL_USERNAME: set, but SLAPROC_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use SASL (use SASL_SSL)"]),
    ({"SLAPROC_KAFKA_SSL_CA_FILE": "/etc/ca.pem"},
     ["SLAPROC_KAFKA_SSL_CA_FILE: set, but SLAPROC_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS (use SSL or SASL_SSL)"]),
    ({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAPROC_KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"},
     ["SLAPROC_KAFKA_SSL_CA_FILE: no such file: /nonexistent/ca.pem"]),
    ({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAPROC_KAFKA_SSL_KEY_FILE": "/k.pem"},
     ["SLAPROC_KAFKA_SSL_KEY_FILE: set without SLAPROC_KAFKA_SSL_CERT_FILE (the client certificate)"]),
    ({"SLAPROC_KAFKA_SSL_CHECK_HOSTNAME": "maybe"},
     ["SLAPROC_KAFKA_SSL_CHECK_HOSTNAME: not a boolean: 'maybe' (use true or false)"]),
])
def test_each_problem_is_one_line_naming_its_variable(env, expected):
    assert problems_of(env) == expected


def test_ca_file_that_is_not_a_certificate(pki):
    [line] = problems_of({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["garbage"])})
    assert line.startswith(f"SLAPROC_KAFKA_SSL_CA_FILE: {pki['garbage']} holds no PEM CA certificate")


def test_client_certificate_with_encrypted_key(pki):
    env = {"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["ca"]),
           "SLAPROC_KAFKA_SSL_CERT_FILE": str(pki["client"]), "SLAPROC_KAFKA_SSL_KEY_FILE": str(pki["client_enc"])}
    k = KafkaSettings.from_env({**env, "SLAPROC_KAFKA_SSL_KEY_PASSWORD": "kpw"})
    assert isinstance(k.ssl_context, ssl.SSLContext)
    [wrong] = problems_of({**env, "SLAPROC_KAFKA_SSL_KEY_PASSWORD": "nope"})
    assert wrong.startswith("SLAPROC_KAFKA_SSL_KEY_PASSWORD: wrong password for the key") and "nope" not in wrong
    [unset] = problems_of(env)
    assert unset.startswith("SLAPROC_KAFKA_SSL_KEY_PASSWORD: the key") and "is encrypted; set it" in unset
    [mismatch] = problems_of({**env, "SLAPROC_KAFKA_SSL_KEY_FILE": str(pki["other"])})
    assert mismatch.startswith("SLAPROC_KAFKA_SSL_KEY_FILE: the key does not belong to the certificate")


def test_check_hostname_off_keeps_certificate_verification(pki):
    k = KafkaSettings.from_env({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["ca"]),
                                "SLAPROC_KAFKA_SSL_CHECK_HOSTNAME": "false"})
    assert k.ssl_context.check_hostname is False and k.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_worker_settings_carry_kafka_settings_and_report_every_problem():
    s = WorkerSettings.from_env({**SCRAM, "SLAPROC_REPLICATION_FACTOR": "5"})
    assert s.replication_factor == 5 and s.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert WorkerSettings().replication_factor == 3 and WorkerSettings().kafka == KafkaSettings()
    with pytest.raises(SettingsError) as info:
        WorkerSettings.from_env({"SLAPROC_PARTITIONS": "x", "SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    assert info.value.problems == [
        "SLAPROC_PARTITIONS: invalid literal for int() with base 10: 'x'",
        "SLAPROC_KAFKA_SASL_MECHANISM: required with SASL_SSL; use one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER",
    ]
    with pytest.raises(SettingsError, match="SLAPROC_REPLICATION_FACTOR: must be >= 1, got 0"):
        WorkerSettings.from_env({"SLAPROC_REPLICATION_FACTOR": "0"})


def test_only_the_memory_store_is_accepted():
    # rocksdb:// was tried (rocksdict 0.3.29): the first contract crashed the agent (Faust's RocksDB
    # store asserts an event context that streams/store.py's writes do not have), so it is refused.
    assert WorkerSettings.from_env({"SLAPROC_STORE": "memory://"}).store == "memory://"
    with pytest.raises(SettingsError, match=r"^SLAPROC_STORE: 'rocksdb://' is not supported; use memory://"):
        WorkerSettings.from_env({"SLAPROC_STORE": "rocksdb://"})


def test_worker_flags_override_the_environment(tmp_path):
    from streams.cli import build_parser
    from streams.worker import settings_from

    pw = tmp_path / "pw"
    pw.write_text("flag-pw")
    args = build_parser().parse_args(["worker", "--kafka-security-protocol", "SASL_SSL",
                                      "--kafka-sasl-mechanism", "PLAIN", "--kafka-sasl-password-file", str(pw),
                                      "--replication-factor", "2"])
    s = settings_from(args, {**SCRAM, "SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert s.kafka.security_protocol == "SASL_SSL" and s.kafka.sasl_mechanism == "PLAIN"
    assert s.kafka.sasl_password.reveal() == "flag-pw" and s.replication_factor == 2


# --- Faust: the credentials reach the clients Faust builds ------------------------------------

def faust_client_auth(kafka: KafkaSettings) -> tuple[dict, dict]:
    """Build the Faust app as the worker does and ask Faust's own aiokafka driver what its consumer
    and its producer would be given (faust silently ignores unknown App kwargs: this proves the
    setting arrives)."""
    import faust
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    app = faust.App("kc-test", broker="kafka://127.0.0.1:1", **kc.faust_app_kwargs(kafka))
    consumer = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    producer = app.producer
    return consumer, dict(producer._settings_auth())


def test_faust_gets_the_ssl_context(pki):
    k = KafkaSettings.from_env({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["ca"])})
    consumer, producer = faust_client_auth(k)
    for kw in (consumer, producer):
        assert kw["security_protocol"] == "SSL" and kw["ssl_context"] is k.ssl_context


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_faust_gets_sasl(mechanism):
    k = KafkaSettings.from_env({**SCRAM, "SLAPROC_KAFKA_SASL_MECHANISM": mechanism})
    consumer, producer = faust_client_auth(k)
    for kw in (consumer, producer):
        assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == mechanism
        assert kw["sasl_plain_username"] == "svc-slaproc" and kw["sasl_plain_password"] == "s3cret-pw"
        assert kw["ssl_context"] is k.ssl_context


def test_faust_gets_the_oauth_token_provider():
    k = KafkaSettings.from_env(OAUTH_ENV | {"SLAPROC_KAFKA_OAUTH_TOKEN_URL": "https://idp.example.com/token"})
    consumer, producer = faust_client_auth(k)
    for kw in (consumer, producer):
        assert kw["sasl_mechanism"] == "OAUTHBEARER" and kw["sasl_oauth_token_provider"] is k.token_provider
    assert kc.faust_conf_security(__import__("faust").App("x", **kc.faust_app_kwargs(k)).conf)["security_protocol"] == "SASL_SSL"


def test_built_app_uses_settings_for_credentials_and_replication(tmp_path, pki):
    from streams.app import build_app

    k = KafkaSettings.from_env({"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SSL", "SLAPROC_KAFKA_SSL_CA_FILE": str(pki["ca"])})
    app = build_app(WorkerSettings(broker="kafka://127.0.0.1:1", data_dir=tmp_path, web_enabled=False,
                                   replication_factor=2, kafka=k), core=object())
    assert app.conf.topic_replication_factor == 2
    assert app.conf.broker_credentials.context is k.ssl_context
    assert app.slaproc.offsets.security["ssl_context"] is k.ssl_context


# --- OAuth client credentials ----------------------------------------------------------------

OAUTH_ENV = {"SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "SLAPROC_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
             "SLAPROC_KAFKA_OAUTH_CLIENT_ID": "slaproc-svc", "SLAPROC_KAFKA_OAUTH_CLIENT_SECRET": "oauth-s3cret",
             "SLAPROC_KAFKA_OAUTH_SCOPE": "kafka"}


@pytest.fixture
def token_endpoint():
    """A local OAuth token endpoint (127.0.0.1): answers a client-credentials grant for
    slaproc-svc/oauth-s3cret with token-N (N counts requests), expires_in 120; 401 otherwise."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            auth = self.headers.get("Authorization", "")
            user, _, password = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            seen.append({"form": body, "user": user})
            if (user, password) != ("slaproc-svc", "oauth-s3cret"):
                self.send_response(401)
                self.end_headers()
                self.wfile.write(b'{"error":"invalid_client"}')
                return
            payload = json.dumps({"access_token": f"token-{len(seen)}", "expires_in": 120, "token_type": "bearer"})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload.encode())

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/token", seen
    finally:
        server.shutdown()
        server.server_close()


async def test_token_provider_fetches_once_and_refreshes_before_expiry(token_endpoint):
    url, seen = token_endpoint
    now = [1000.0]
    k = KafkaSettings.from_env({**OAUTH_ENV, "SLAPROC_KAFKA_OAUTH_TOKEN_URL": url})
    provider = k.token_provider
    provider._clock = lambda: now[0]
    assert kc.aiokafka_kwargs(k)["sasl_oauth_token_provider"] is provider
    assert await asyncio.gather(provider.token(), provider.token(), provider.token()) == ["token-1"] * 3
    assert len(seen) == 1 and seen[0]["form"] == {"grant_type": ["client_credentials"], "scope": ["kafka"]}
    assert seen[0]["user"] == "slaproc-svc" and "oauth-s3cret" not in repr(provider)
    now[0] += 59  # expires_in 120, refreshed 60 s before: still valid
    assert await provider.token() == "token-1"
    now[0] += 2
    assert await provider.token() == "token-2" and provider.fetches == 2


async def test_token_provider_error_names_the_setting_not_the_secret(token_endpoint):
    url, _ = token_endpoint
    k = KafkaSettings.from_env({**OAUTH_ENV, "SLAPROC_KAFKA_OAUTH_TOKEN_URL": url,
                                "SLAPROC_KAFKA_OAUTH_CLIENT_SECRET": "wrong-secret"})
    with pytest.raises(kc.OAuthError) as info:
        await k.token_provider.token()
    text = str(info.value)
    assert text.startswith("SLAPROC_KAFKA_OAUTH_CLIENT_SECRET: the token endpoint") and "HTTP 401" in text
    assert "wrong-secret" not in text
    unreachable = kc.ClientCredentialsTokenProvider("http://127.0.0.1:9/token", "c", Secret("s"), timeout=2)
    with pytest.raises(kc.OAuthError, match=r"^SLAPROC_KAFKA_OAUTH_TOKEN_URL: cannot reach"):
        await unreachable.token()


# --- replication factor and co-partitioning ----------------------------------------------------

@pytest.mark.parametrize("configured, brokers, factor, warns", [(3, 3, 3, False), (3, 5, 3, False),
                                                                 (3, 1, 1, True), (5, 3, 3, True), (1, 1, 1, False)])
def test_replication_factor_is_capped_at_the_broker_count(configured, brokers, factor, warns):
    got, warning = kc.effective_replication_factor(configured, brokers)
    assert got == factor and (warning is not None) == warns
    if warns:
        assert warning.startswith(f"SLAPROC_REPLICATION_FACTOR={configured} but the cluster has {brokers} broker")


def test_copartitioning_names_the_wrong_topic():
    assert kc.check_copartitioned({"p.sla.ticket-events": 4, "p.sla.monitoring-events": 4}, 4) == []
    [line] = kc.check_copartitioned({"p.sla.ticket-events": 4, "p.sla.monitoring-events": 6}, 4)
    assert line.startswith("SLAPROC_PARTITIONS: topic 'p.sla.monitoring-events' has 6 partitions, the worker uses 4")


async def test_preflight_unreachable_broker_is_one_line_after_the_timeout():
    k = KafkaSettings(connect_timeout=1.0)
    with pytest.raises(KafkaConfigError) as info:
        await kc.preflight("kafka://127.0.0.1:9", k, attempt_every=0.2)
    [line] = info.value.problems
    assert line.startswith("SLAPROC_BROKER: no broker of 127.0.0.1:9 answered within 1 s")
