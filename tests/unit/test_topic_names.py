"""The names of every topic and of the consumer group a worker uses, from its settings (review
topics F3): two deployments on one cluster with different SLAPROC_TOPIC_PREFIX must share
nothing, not the input and output topics, not the consumer group, the changelogs, the ticks or the
attainment topic. The app is built (not started): the names are those it would use."""
from __future__ import annotations

import pytest

from streams.app import build_app
from streams.settings import SettingsError, WorkerSettings


def _names(settings: WorkerSettings) -> dict[str, object]:
    """Consumer group and every topic name the built app uses."""
    app = build_app(settings, web_enabled=False)
    worker = app.slaproc
    topics = {t.get_topic_name() for t in (*worker.input_topics.values(), *worker.output_topics.values())}
    internal = {worker.ticks_topic_name, worker.attainment_topic_name}
    internal |= {table.changelog_topic.get_topic_name() for table in app.tables.values()}
    return {"group": app.conf.id, "topics": topics, "internal": internal}


def test_without_prefix_or_app_id_the_names_are_unchanged():
    names = _names(WorkerSettings.from_env({}))
    assert names["group"] == "slaproc"
    assert "slaproc-ticks" in names["internal"] and "slaproc-tickets-changelog" in names["internal"]
    assert "sla.ticket-events" in names["topics"]


def test_two_prefixes_share_no_topic_and_no_group():
    staging = _names(WorkerSettings.from_env({"SLAPROC_TOPIC_PREFIX": "staging."}))
    prod = _names(WorkerSettings.from_env({"SLAPROC_TOPIC_PREFIX": "prod."}))
    assert staging["group"] == "staging.slaproc" and prod["group"] == "prod.slaproc"
    every = lambda n: n["topics"] | n["internal"]  # noqa: E731
    assert not every(staging) & every(prod)
    assert all(name.startswith("staging.") for name in every(staging))
    assert {"staging.slaproc-ticks", "staging.slaproc-attainment",
            "staging.slaproc-contracts-changelog"} <= staging["internal"]


def test_an_explicit_app_id_is_used_as_given():
    settings = WorkerSettings.from_env({"SLAPROC_TOPIC_PREFIX": "staging.", "SLAPROC_APP_ID": "sla-stg"})
    names = _names(settings)
    assert names["group"] == "sla-stg" and "sla-stg-ticks" in names["internal"]
    assert "staging.sla.breaches" in names["topics"]


def test_a_derived_app_id_follows_a_new_prefix_an_explicit_one_does_not():
    assert WorkerSettings().replace(topic_prefix="a.").app_id == "a.slaproc"
    assert WorkerSettings.from_env({}, topic_prefix="b.").app_id == "b.slaproc"  # a --topic-prefix flag
    assert WorkerSettings(app_id="mine").replace(topic_prefix="a.").app_id == "mine"


@pytest.mark.parametrize("env", [{"SLAPROC_APP_ID": "bad/id"}, {"SLAPROC_TOPIC_PREFIX": "has space "}])
def test_an_app_id_that_cannot_name_a_topic_is_refused(env):
    with pytest.raises(SettingsError, match="SLAPROC_APP_ID"):
        WorkerSettings.from_env(env)


# --- review topics F2: the configs the worker creates its topics with ---------------------------

def test_topics_yml_lists_the_configs_the_worker_creates_topics_with():
    """deploy/kafka/topics.yml (what create-topics.sh applies) and streams/topic_configs.py (what the
    worker creates topics with) are one table: same topics, same configs."""
    from pathlib import Path

    import yaml

    from streams.topic_configs import INTERNAL_TOPIC_CONFIGS, TOPIC_CONFIGS

    listed = yaml.safe_load((Path(__file__).parents[2] / "deploy" / "kafka" / "topics.yml").read_text())["topics"]
    from_file = {t["name"]: {k: str(v) for k, v in t["config"].items()} for t in listed}
    from_code = {**TOPIC_CONFIGS, **{"<app_id>" + suffix: c for suffix, c in INTERNAL_TOPIC_CONFIGS.items()}}
    assert from_file == from_code


def test_the_worker_creates_its_topics_with_their_retention(monkeypatch):
    """Every topic `declare_topics` creates gets its cleanup policy and retention, the inputs 400 days
    (they used to get the broker's default, 7 days on Kafka: replays need the history)."""
    import asyncio

    from streams import app as app_module
    from streams.app import INPUT_TOPICS, OUTPUT_TOPICS
    from streams.topic_configs import DAY_MS, INTERNAL_TOPIC_CONFIGS, TOPIC_CONFIGS

    created: dict[str, dict[str, str]] = {}

    async def create_topics(url, names, partitions, config=None, **kw):
        for name in names:
            created[name] = dict(config or {})
        return list(names)

    monkeypatch.setattr(app_module, "create_topics", create_topics)
    settings = WorkerSettings.from_env({"SLAPROC_TOPIC_PREFIX": "stg."})
    worker = build_app(settings, web_enabled=False).slaproc
    asyncio.run(worker.declare_topics())
    expected = {settings.topic(n): TOPIC_CONFIGS[n] for n in INPUT_TOPICS + OUTPUT_TOPICS}
    expected |= {"stg.slaproc-ticks": INTERNAL_TOPIC_CONFIGS["-ticks"],
                 "stg.slaproc-attainment": INTERNAL_TOPIC_CONFIGS["-attainment"]}
    assert created == expected
    assert created["stg.sla.ticket-events"]["retention.ms"] == str(400 * DAY_MS)
    assert created["stg.sla.monitoring-events"] == {"cleanup.policy": "delete", "retention.ms": str(400 * DAY_MS)}
