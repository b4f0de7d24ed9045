"""Configuration errors operators hit (deploy review): each wrong setting is one clear line naming
the variable, for the worker and the gateway alike, never a traceback or a silent default."""
from __future__ import annotations

import os
import re

import pytest

from streams.gateway.settings import GatewaySettings
from streams.settings import SettingsError, WorkerSettings


# --- F4: one rule for misspelt shared variables -------------------------------------------------
@pytest.mark.parametrize("typo, meant", [
    ("SLAPROC_TOPIC_PREFX", "SLAPROC_TOPIC_PREFIX"),
    ("SLAPROC_BROKERS", "SLAPROC_BROKER"),
    ("SLAPROC_PARTITION", "SLAPROC_PARTITIONS"),
    ("SLAPROC_LOGLEVEL", "SLAPROC_LOG_LEVEL"),
    ("SLAPROC_REPLICATON_FACTOR", "SLAPROC_REPLICATION_FACTOR"),
])
@pytest.mark.parametrize("settings", [WorkerSettings, GatewaySettings], ids=["worker", "gateway"])
def test_a_misspelt_shared_variable_is_refused_by_worker_and_gateway_alike(settings, typo, meant):
    with pytest.raises(SettingsError, match=f"{typo}: unknown setting; did you mean {meant}\\?"):
        settings.from_env({typo: "x"})


@pytest.mark.parametrize("settings", [WorkerSettings, GatewaySettings], ids=["worker", "gateway"])
def test_the_other_commands_variables_are_not_typos(settings):
    # compose gives the gateway the workers' shared environment, and CI sets the test variables
    env = {"SLAPROC_TICK_INTERVAL": "5s", "SLAPROC_WEB_HOST": "0.0.0.0", "SLAPROC_STATE_DIR": "/s",
           "SLAPROC_DATA_DIR": "/d", "SLAPROC_GATEWAY_PORT": "8090", "SLAPROC_TEST_BROKER": "x",
           "SLAPROC_ALLOW_UNTESTED_VERSIONS": "1", "SLAPROC_NO_BROWSER": "1"}
    settings.from_env(env)


def test_slaproc_gateway_exits_2_naming_the_misspelt_variable(monkeypatch, capsys):
    from streams.cli import main

    for var in [v for v in os.environ if v.startswith("SLAPROC_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("SLAPROC_TOPIC_PREFX", "staging.")
    assert main(["gateway"]) == 2
    err = capsys.readouterr().err
    assert "SLAPROC_TOPIC_PREFX: unknown setting; did you mean SLAPROC_TOPIC_PREFIX?" in err
    assert "Traceback" not in err


# --- F6: a scheme in the broker URL --------------------------------------------------------------
@pytest.mark.parametrize("settings", [WorkerSettings, GatewaySettings], ids=["worker", "gateway"])
@pytest.mark.parametrize("broker, fragment", [
    ("SASL_SSL://host:9093", "SLAPROC_BROKER: 'SASL_SSL://host:9093': the security protocol is no part of the "
                             "address; write kafka://host:9093 and set SLAPROC_KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
    ("ssl://host:9093", "write kafka://host:9093 and set SLAPROC_KAFKA_SECURITY_PROTOCOL=SSL"),
    ("kafka://a:9092;SASL_PLAINTEXT://b:9092", "set SLAPROC_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT"),
    ("http://host:9092", "SLAPROC_BROKER: 'http://host:9092': unknown scheme 'http'; write kafka://host:9092"),
    ("kafka://host", "SLAPROC_BROKER: 'kafka://host': no port; write host:PORT, e.g. kafka://host:9092"),
    ("kafka://host:abc", "SLAPROC_BROKER: 'kafka://host:abc': the port 'abc' is not a number from 1 to 65535"),
    ("kafka://", "SLAPROC_BROKER: 'kafka://': no broker address"),
])
def test_a_broker_url_with_a_protocol_or_without_a_port_is_one_line(settings, broker, fragment):
    with pytest.raises(SettingsError) as caught:
        settings.from_env({"SLAPROC_BROKER": broker})
    assert fragment in str(caught.value)


@pytest.mark.parametrize("broker", ["kafka://h1:9093;h2:9093", "kafka://a:1;kafka://b:2", "h:9092,k:9093",
                                    "aiokafka://h:9092", "kafka://[::1]:9092"])
def test_the_broker_forms_in_use_are_accepted(broker):
    assert WorkerSettings.from_env({"SLAPROC_BROKER": broker}).broker == broker
    assert GatewaySettings.from_env({"SLAPROC_BROKER": broker}).broker == broker


@pytest.mark.parametrize("command", ["worker", "gateway"])
def test_the_commands_exit_2_with_one_line_for_a_protocol_in_the_broker_url(command, monkeypatch, capsys):
    from streams.cli import main

    for var in [v for v in os.environ if v.startswith("SLAPROC_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("SLAPROC_BROKER", "SASL_SSL://host:9093")
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert f"slaproc {command}: SLAPROC_BROKER: 'SASL_SSL://host:9093': the security protocol" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


# --- F13: log level and web port ------------------------------------------------------------------
@pytest.mark.parametrize("settings", [WorkerSettings, GatewaySettings], ids=["worker", "gateway"])
def test_an_unknown_log_level_is_refused_naming_the_levels(settings):
    with pytest.raises(SettingsError, match="SLAPROC_LOG_LEVEL: unknown level 'verbose'; use one of debug, info, "
                                            "warning, error, critical"):
        settings.from_env({"SLAPROC_LOG_LEVEL": "verbose"})


@pytest.mark.parametrize("settings", [WorkerSettings, GatewaySettings], ids=["worker", "gateway"])
def test_log_levels_are_read_in_any_case(settings):
    assert settings.from_env({"SLAPROC_LOG_LEVEL": " WARNING "}).log_level == "warning"
    assert settings.from_env({"SLAPROC_LOG_LEVEL": "Debug"}).log_level == "debug"


def test_web_port_0_is_refused_while_the_web_port_is_on():
    with pytest.raises(SettingsError, match="SLAPROC_WEB_PORT: 0 .*give a port from 1 to 65535"):
        WorkerSettings.from_env({"SLAPROC_WEB_PORT": "0"})
    with pytest.raises(SettingsError, match="SLAPROC_WEB_PORT: not a port: 70000"):
        WorkerSettings.from_env({"SLAPROC_WEB_PORT": "70000"})
    assert WorkerSettings.from_env({"SLAPROC_WEB_PORT": "0", "SLAPROC_WEB_ENABLED": "false"}).web_port == 0


# --- F1: the address advertised to the other workers ------------------------------------------------
def test_a_wildcard_web_host_is_advertised_as_the_host_name_or_the_advertised_host():
    wildcard = WorkerSettings(web_host="0.0.0.0", web_port=6066)
    assert wildcard.advertised_url(hostname=lambda: "worker-1") == "http://worker-1:6066"
    assert WorkerSettings(web_host="::", web_port=7).advertised_url(hostname=lambda: "w2") == "http://w2:7"
    named = WorkerSettings.from_env({"SLAPROC_WEB_HOST": "0.0.0.0", "SLAPROC_WEB_ADVERTISED_HOST": "10.0.0.5"})
    assert named.advertised_url(hostname=lambda: "ignored") == "http://10.0.0.5:6066"
    assert WorkerSettings(web_host="127.0.0.1").advertised_url() == "http://127.0.0.1:6066"
    assert WorkerSettings(web_advertised_host="fd00::5").advertised_url() == "http://[fd00::5]:6066"


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::", "[::]"])
def test_a_wildcard_is_never_advertised(wildcard):
    with pytest.raises(SettingsError, match=f"SLAPROC_WEB_ADVERTISED_HOST: {re.escape(repr(wildcard))} is a "
                                            "wildcard address"):
        WorkerSettings.from_env({"SLAPROC_WEB_ADVERTISED_HOST": wildcard})
    with pytest.raises(SettingsError, match="SLAPROC_WEB_ADVERTISED_HOST: .*no host name"):
        WorkerSettings(web_host="0.0.0.0").advertised_url(hostname=lambda: "")


def test_the_worker_app_advertises_the_reachable_url_to_the_group(tmp_path):
    from streams.worker import build_worker_app

    settings = WorkerSettings(broker="kafka://127.0.0.1:1", data_dir=tmp_path, web_host="0.0.0.0", web_port=6066,
                              web_advertised_host="worker-1")
    app = build_worker_app(settings)
    # what the partition assignor sends the group (faust.assignor.partition_assignor: _url)
    assert str(app.assignor._url) == "http://worker-1:6066"
    assert str(app.conf.canonical_url) == "http://worker-1:6066"


def test_a_worker_bound_to_every_address_does_not_advertise_0_0_0_0(tmp_path):
    import socket

    from streams.worker import build_worker_app

    app = build_worker_app(WorkerSettings(broker="kafka://127.0.0.1:1", data_dir=tmp_path, web_host="0.0.0.0"))
    assert str(app.assignor._url) == f"http://{socket.gethostname()}:6066"


# --- F12: the effective Kafka security settings, once at start --------------------------------------
SASL_ENV = {"SLAPROC_BROKER": "kafka://k1:9094;k2:9094", "SLAPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "SLAPROC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "SLAPROC_KAFKA_SASL_USERNAME": "slaproc",
            "SLAPROC_KAFKA_SASL_PASSWORD": "pw-never-shown"}
EXPECTED = "Kafka k1:9094,k2:9094: SASL_SSL, SCRAM-SHA-512 as slaproc, CA system store"


def _clean_env(monkeypatch, env):
    for var in [v for v in os.environ if v.startswith("SLAPROC_")]:
        monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)


def test_the_worker_says_once_how_it_connects_to_kafka(monkeypatch, capsys):
    from streams import worker
    from streams.cli import main

    _clean_env(monkeypatch, SASL_ENV)
    monkeypatch.setattr(worker, "check_cluster", lambda settings: settings)  # the cluster answered

    def stop(settings):
        raise SettingsError("stopped here")
    monkeypatch.setattr(worker, "build_worker_app", stop)
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert err.count("slaproc worker: Kafka ") == 1 and f"slaproc worker: {EXPECTED}\n" in err
    assert "pw-never-shown" not in err


def test_the_gateway_says_once_how_it_connects_to_kafka(monkeypatch, capsys):
    from streams import kafka_config
    from streams.cli import main
    from streams.gateway import server

    _clean_env(monkeypatch, {**SASL_ENV, "SLAPROC_CREATE_TOPICS": "false"})

    async def preflight(*args, **kwargs):
        return kafka_config.ClusterInfo(brokers=1, partitions={})

    class Sink:
        def __init__(self, *args, **kwargs):
            pass

        async def start(self):
            raise OSError("stopped here")
    monkeypatch.setattr(kafka_config, "preflight", preflight)
    monkeypatch.setattr(server, "KafkaSink", Sink)
    assert main(["gateway"]) == 1
    err = capsys.readouterr().err
    assert err.count("slaproc gateway: Kafka ") == 1 and f"slaproc gateway: {EXPECTED}\n" in err
    assert "pw-never-shown" not in err


# --- F7: the --kafka-* flags on slaproc gateway ----------------------------------------------------
def test_the_gateway_takes_the_kafka_flags_as_the_worker_does(tmp_path):
    from streams.cli import build_parser
    from streams.gateway.run import settings_from

    password = tmp_path / "pw"
    password.write_text("s3cret\n")
    args = build_parser().parse_args(["gateway", "--kafka-security-protocol", "SASL_SSL",
                                      "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-sasl-username", "gw",
                                      "--kafka-sasl-password-file", str(password)])
    kafka = settings_from(args, environ={"SLAPROC_KAFKA_SASL_PASSWORD": "from-env-loses"}).kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism, kafka.sasl_username) == ("SASL_SSL", "SCRAM-SHA-256", "gw")
    assert kafka.sasl_password is not None and kafka.sasl_password.reveal() == "s3cret"
    help_text = build_parser()._subparsers._group_actions[0].choices["gateway"].format_help()
    assert "--kafka-ssl-ca-file" in help_text and "--kafka-sasl-password " not in help_text  # secrets: files only


def test_the_demo_takes_the_kafka_flags(monkeypatch, capsys):
    from streams.cli import main

    _clean_env(monkeypatch, {})
    assert main(["demo", "--feed-only", "--kafka-security-protocol", "SASL_SSL"]) == 2
    err = capsys.readouterr().err
    assert "slaproc demo: " in err and "SLAPROC_KAFKA_SASL_MECHANISM: required with SASL_SSL" in err
