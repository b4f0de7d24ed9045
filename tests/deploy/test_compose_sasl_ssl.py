"""deploy/compose.sasl-ssl.yml read statically (no Docker daemon here): the clients' connection
settings are valid slaproc settings and agree with the broker's listener, certificate and secret;
deploy/kafka/make-certs.sh run for real makes a keystore whose certificate our client TLS context
accepts for the advertised host name."""
from __future__ import annotations

import os
import ssl
import subprocess

import pytest
import yaml

from streams.kafka_config import KafkaSettings
from tests.deploy.conftest import REPO

BASE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
OVERLAY = yaml.safe_load((REPO / "deploy" / "compose.sasl-ssl.yml").read_text())
CLIENTS = ("worker-1", "worker-2", "demo")


def test_overlay_only_touches_services_of_the_base_or_its_own_init_jobs():
    assert set(OVERLAY["services"]) - set(BASE["services"]) == {"certs-init", "scram-init"}
    assert "kafka-certs" in OVERLAY["volumes"] and "kafka_password" in OVERLAY["secrets"]
    for name, service in OVERLAY["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in OVERLAY["volumes"] or (REPO / source).exists(), f"{name}: {volume}"


@pytest.mark.parametrize("name", CLIENTS)
def test_clients_settings_are_valid_and_match_the_broker(name, tmp_path):
    env = OVERLAY["services"][name]["environment"]
    kafka_env = OVERLAY["services"]["kafka"]["environment"]
    # the files the containers would see, stood in for by local ones
    ca = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k"),
                    "-out", str(ca), "-days", "1", "-subj", "/CN=x"], check=True, capture_output=True)
    password = tmp_path / "pw"
    password.write_text("secret\n")
    local = {**env, "SLAPROC_KAFKA_SSL_CA_FILE": str(ca), "SLAPROC_KAFKA_SASL_PASSWORD_FILE": str(password)}
    settings = KafkaSettings.from_env(local)  # raises on any unknown or inconsistent setting
    assert settings.security_protocol == "SASL_SSL" and settings.ssl_check_hostname
    assert settings.sasl_mechanism in kafka_env["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")
    host_port = env["SLAPROC_BROKER"].removeprefix("kafka://")
    assert f"SASL_SSL://{host_port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert host_port.split(":")[0] == OVERLAY["services"]["certs-init"]["environment"]["BROKER_HOST"]
    assert env["SLAPROC_KAFKA_SASL_PASSWORD_FILE"] == "/run/secrets/kafka_password"
    assert OVERLAY["services"][name]["secrets"] == ["kafka_password"]
    assert f"--entity-name {env['SLAPROC_KAFKA_SASL_USERNAME']}" in OVERLAY["services"]["scram-init"]["command"][0]
    assert env["SLAPROC_KAFKA_SSL_CA_FILE"].startswith("/etc/slaproc/kafka/")
    assert "kafka-certs:/etc/slaproc/kafka:ro" in OVERLAY["services"][name]["volumes"]
    assert "SLAPROC_KAFKA_SASL_PASSWORD" not in env  # the secret comes as a file, never in the env


def test_make_certs_gives_a_certificate_the_client_accepts_for_the_advertised_host(tmp_path):
    env = {**os.environ, "CERTS_DIR": str(tmp_path), "BROKER_HOST": "kafka", "KEYSTORE_PASSWORD": "ks-pw"}
    run = subprocess.run(["sh", str(REPO / "deploy" / "kafka" / "make-certs.sh")], env=env, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    info = subprocess.run(["openssl", "pkcs12", "-in", str(tmp_path / "kafka.p12"), "-passin", "pass:ks-pw",
                           "-nokeys", "-info"], capture_output=True, text=True)
    assert info.returncode == 0 and "CN = kafka" in info.stdout + info.stderr
    again = subprocess.run(["sh", str(REPO / "deploy" / "kafka" / "make-certs.sh")], env=env, capture_output=True,
                           text=True)
    assert "certificates exist" in again.stdout  # idempotent: a restart keeps the CA the clients trust

    # a TLS handshake in memory: the broker's certificate against slaproc's client context
    client = KafkaSettings(security_protocol="SSL", ssl_ca_file=tmp_path / "ca.pem").ssl_context
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "kafka.pem", tmp_path / "kafka.key")

    def handshake(hostname: str) -> None:
        c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
        c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
        s = server.wrap_bio(s_in, s_out, server_side=True)
        for _ in range(10):
            for side, inbox, outbox, peer_in in ((c, c_in, c_out, s_in), (s, s_in, s_out, c_in)):
                try:
                    side.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                peer_in.write(outbox.read())
        c.do_handshake()

    handshake("kafka")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake("kafka.example.com")


def test_the_broker_has_what_the_apache_kafka_image_requires_for_ssl_and_sasl(tmp_path):
    """The image's start script (docker/resources/common-scripts/configure of apache/kafka) exits
    before the broker starts unless, with an SSL:// or SASL_SSL:// advertised listener, it finds
    KAFKA_SSL_KEYSTORE_FILENAME, KAFKA_SSL_KEYSTORE_CREDENTIALS and KAFKA_SSL_KEY_CREDENTIALS, files
    under /etc/kafka/secrets (it reads the passwords from the two credential files and sets the
    keystore location itself), and, with a SASL_ listener, KAFKA_OPTS (a JAAS login config)."""
    kafka = OVERLAY["services"]["kafka"]
    env = kafka["environment"]
    assert "SSL://" in env["KAFKA_ADVERTISED_LISTENERS"]
    [secrets_volume] = [v.split(":")[0] for v in kafka["volumes"] if v.split(":")[1] == "/etc/kafka/secrets"]
    assert secrets_volume in OVERLAY["volumes"]
    certs_init = OVERLAY["services"]["certs-init"]
    assert f"{secrets_volume}:{certs_init['environment']['CERTS_DIR']}" in certs_init["volumes"]
    run = subprocess.run(["sh", str(REPO / "deploy" / "kafka" / "make-certs.sh")], capture_output=True, text=True,
                         env={**os.environ, "CERTS_DIR": str(tmp_path), "BROKER_HOST": "kafka",
                              "KEYSTORE_PASSWORD": "ks-pw"})
    assert run.returncode == 0, run.stderr
    for var in ("KAFKA_SSL_KEYSTORE_FILENAME", "KAFKA_SSL_KEYSTORE_CREDENTIALS", "KAFKA_SSL_KEY_CREDENTIALS"):
        assert (tmp_path / env[var]).is_file(), f"{var}={env.get(var)}: make-certs.sh writes no such file"
    assert (tmp_path / env["KAFKA_SSL_KEYSTORE_CREDENTIALS"]).read_text() == "ks-pw"
    assert env["KAFKA_SSL_KEYSTORE_TYPE"] == "PKCS12" and env["KAFKA_SSL_KEYSTORE_FILENAME"].endswith(".p12")
    # the image computes these from the files: values set here would be overwritten, or leak the password
    for var in ("KAFKA_SSL_KEYSTORE_LOCATION", "KAFKA_SSL_KEYSTORE_PASSWORD", "KAFKA_SSL_KEY_PASSWORD"):
        assert var not in env
    # SASL: a JAAS login config for the broker, mounted from the repository
    assert "SASL_" in env["KAFKA_ADVERTISED_LISTENERS"]
    jaas = env["KAFKA_OPTS"].split("-Djava.security.auth.login.config=")[1].split()[0]
    [source] = [v.split(":")[0] for v in kafka["volumes"] if v.split(":")[1] == jaas]
    text = (REPO / source).read_text()
    assert "KafkaServer" in text and "org.apache.kafka.common.security.scram.ScramLoginModule required" in text


def _exported(text: str) -> set[str]:
    """The variable names a shell `export A=... B=...` line sets (in docs and comments)."""
    import re

    names: set[str] = set()
    for line in text.splitlines():
        line = line.lstrip("# ")
        if line.startswith("export "):
            names |= set(re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", line.removeprefix("export")))
    return names


def test_the_variables_the_docs_export_are_accepted_by_every_slaproc_command():
    """An operator exports what the docs say, then runs slaproc from that shell: a SLAPROC_KAFKA_*
    name the commands do not know stops every one of them (streams/kafka_config.py)."""
    from streams.gateway.settings import GATEWAY_ENV_VARS
    from streams.kafka_config import ENV_VARS as KAFKA_VARS, SECRET_VARS
    from streams.settings import ENV_VARS, misspelt_variables

    known = {*ENV_VARS.values(), *GATEWAY_ENV_VARS.values(), *KAFKA_VARS.values(),
             *(v + "_FILE" for v in SECRET_VARS.values())}
    for path in ("docs/kafka.md", "docs/operations.md", "deploy/compose.sasl-ssl.yml", "docker-compose.yml"):
        exported = _exported((REPO / path).read_text())
        ours = {name for name in exported if name.startswith("SLAPROC_")}
        assert ours <= known, f"{path} exports {sorted(ours - known)}, which slaproc refuses"
        assert misspelt_variables(dict.fromkeys(exported, "x")) == [], path
    assert "KAFKA_SCRAM_PASSWORD" in _exported((REPO / "docs/kafka.md").read_text())
