"""Configuration errors operators hit (deploy review): each wrong setting is one clear line naming
the variable, for the worker and the gateway alike, never a traceback or a silent default."""
from __future__ import annotations

import os

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
