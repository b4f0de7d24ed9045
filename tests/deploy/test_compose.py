"""docker-compose.yml and the Kafka topic list, read statically (no Docker daemon):
services are buildable or pulled, ports are well formed, host mounts exist, depends_on
targets exist with valid conditions, topics match SPEC §1 and the workers' partitions,
and create-topics.sh turns topics.yml into the right kafka-topics.sh calls."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
TOPICS_YML = REPO / "deploy" / "kafka" / "topics.yml"
TOPICS = yaml.safe_load(TOPICS_YML.read_text())
CREATE_TOPICS = REPO / "deploy" / "kafka" / "create-topics.sh"

# docs/spec.md §1 "Topics": the product's topics and which are compacted.
SPEC_TOPICS = {"sla.contracts", "sla.ticket-events", "sla.monitoring-events", "sla.breaches",
               "sla.warnings", "sla.notices", "sla.refund-eligibility", "sla.dead-letter"}
SPEC_COMPACTED = {"sla.contracts"}
# The worker's own topics (streams/app.py: <app_id>-ticks, <app_id>-attainment), listed so that
# they exist when the worker is told not to create topics; create-topics.sh names them after the app id.
INTERNAL_TOPICS = {"<app_id>-ticks", "<app_id>-attainment"}
SPEC = REPO / "docs" / "spec.md"

PORT = re.compile(r"^(?:(?:\d{1,3}\.){3}\d{1,3}:)?(\d{1,5})(?::(\d{1,5}))?(?:/(?:tcp|udp))?$")


def test_every_service_has_an_image_or_a_build() -> None:
    for name, service in SERVICES.items():
        assert "image" in service or "build" in service, name
        if "build" in service:
            build = service["build"]
            assert (REPO / build["context"] / build["dockerfile"]).is_file(), name


def test_expected_services() -> None:
    assert {"kafka", "topic-init", "worker-1", "worker-2", "demo", "prometheus", "alertmanager",
            "grafana"} <= set(SERVICES)
    assert SERVICES["demo"]["profiles"] == ["demo"]
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_ports_are_well_formed(name: str) -> None:
    for spec in SERVICES[name].get("ports", []):
        match = PORT.match(str(spec))
        assert match, f"{name}: bad port {spec!r}"
        assert all(int(p) <= 65535 for p in match.groups() if p)
        assert str(spec).startswith("127.0.0.1:"), f"{name}: {spec} is published beyond loopback"


def test_published_host_ports_are_unique() -> None:
    published = [str(p).rsplit(":", 1)[0] for s in SERVICES.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published))


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_mounts_exist(name: str) -> None:
    for volume in SERVICES[name].get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith((".", "/")):
            assert (REPO / source).exists(), f"{name}: mounted host path {source} is not in the repo"
        else:
            assert source in COMPOSE["volumes"], f"{name}: named volume {source} not declared"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_depends_on_targets_exist(name: str) -> None:
    depends = SERVICES[name].get("depends_on", {})
    for target, rule in (depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)):
        assert target in SERVICES, f"{name} depends on unknown {target}"
        assert rule.get("condition", "service_started") in {
            "service_started", "service_healthy", "service_completed_successfully"}
        if rule.get("condition") == "service_healthy":
            assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health, it has none"


def test_long_running_services_restart_and_have_health_checks() -> None:
    for name, service in SERVICES.items():
        if name in {"topic-init", "demo"}:
            assert service["restart"] == "no"
            continue
        assert service["restart"] in {"unless-stopped", "always"}, name
        assert "healthcheck" in service, name


def test_workers_are_scraped_by_prometheus() -> None:
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "slaproc"]
    targets = {t for c in job["static_configs"] for t in c["targets"]}
    workers = {n for n in SERVICES if n.startswith("worker-")}
    assert targets == {f"{w}:{SERVICES[w]['environment']['SLAPROC_WEB_PORT']}" for w in workers}
    for w in workers:
        env = SERVICES[w]["environment"]
        assert env["SLAPROC_WEB_HOST"] == "0.0.0.0"
        assert env["SLAPROC_BROKER"] == "kafka://kafka:9092"


def test_topics_match_spec_section_1() -> None:
    names = {t["name"] for t in TOPICS["topics"]}
    assert names == SPEC_TOPICS | INTERNAL_TOPICS
    compacted = {t["name"] for t in TOPICS["topics"] if "compact" in t["config"]["cleanup.policy"]}
    assert compacted == SPEC_COMPACTED
    for topic in TOPICS["topics"]:
        config = topic["config"]
        if config["cleanup.policy"] == "delete":
            assert int(config["retention.ms"]) > 0, topic["name"]


def test_topics_match_the_spec() -> None:
    section = re.search(r"^## 1\. Topics\n(.*?)^## ", SPEC.read_text(), re.S | re.M).group(1)
    rows = re.findall(r"^\| `([a-z.\-]+)`( \(compacted\))? \|", section, re.M)
    assert {name for name, _ in rows} == SPEC_TOPICS
    assert {name for name, compacted in rows if compacted} == SPEC_COMPACTED


def test_partitions_equal_the_workers_setting() -> None:
    partitions = {t["name"]: t["partitions"] for t in TOPICS["topics"]}
    for worker in ("worker-1", "worker-2"):
        expected = int(SERVICES[worker]["environment"]["SLAPROC_PARTITIONS"])
        assert set(partitions.values()) == {expected}, partitions


FAKE_KAFKA = """#!/bin/sh
echo "$(basename "$0") $*" >> "$FAKE_LOG"
case "$*" in *--describe*)
  topic=$(echo "$*" | sed 's/.*--topic \\([^ ]*\\).*/\\1/')
  printf 'Topic: %s\\tTopicId: x\\tPartitionCount: %s\\tReplicationFactor: 1\\tConfigs: \\n' "$topic" "$FAKE_PARTITIONS"
  printf '\\tTopic: %s\\tPartition: 0\\tLeader: 1\\n' "$topic";;
esac
"""


def _run_create_topics(tmp_path: Path, partitions: int,
                       **extra_env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    sh = shutil.which("sh")
    assert sh, "no POSIX sh"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("kafka-topics.sh", "kafka-configs.sh"):
        (bin_dir / tool).write_text(FAKE_KAFKA)
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "calls.log"
    env = {k: v for k, v in os.environ.items() if k not in ("SLAPROC_APP_ID", "KAFKA_COMMAND_CONFIG")}
    env.update(KAFKA_BIN=str(bin_dir), FAKE_LOG=str(log), FAKE_PARTITIONS=str(partitions),
               SLAPROC_TOPIC_PREFIX="stg.", BOOTSTRAP_SERVER="broker:9092", **extra_env)
    result = subprocess.run([sh, str(CREATE_TOPICS)], env=env, capture_output=True, text=True, timeout=60)
    return result, log.read_text().splitlines() if log.exists() else []


def test_create_topics_script_creates_what_topics_yml_lists(tmp_path: Path) -> None:
    result, calls = _run_create_topics(tmp_path, partitions=12)
    assert result.returncode == 0, result.stderr
    creates = [c.split() for c in calls if c.startswith("kafka-topics.sh") and "--create" in c]
    assert len(creates) == len(TOPICS["topics"])
    for topic, argv in zip(TOPICS["topics"], creates):
        def flag(name: str, argv: list[str] = argv) -> list[str]:
            return [argv[i + 1] for i, a in enumerate(argv) if a == name]
        expected = topic["name"].replace("<app_id>", "stg.slaproc") if topic["name"].startswith("<app_id>") \
            else "stg." + topic["name"]
        assert flag("--topic") == [expected]
        assert flag("--partitions") == [str(topic["partitions"])]
        assert flag("--replication-factor") == [str(TOPICS["replication_factor"])]
        assert flag("--bootstrap-server") == ["broker:9092"]
        assert "--if-not-exists" in argv
        assert dict(kv.split("=", 1) for kv in flag("--config")) == \
            {k: str(v) for k, v in topic["config"].items()}
    alters = [c for c in calls if c.startswith("kafka-configs.sh")]
    assert len(alters) == len(TOPICS["topics"])  # existing topics converge to the file's config


def _created(calls: list[str]) -> set[str]:
    return {c.split()[c.split().index("--topic") + 1] for c in calls
            if c.startswith("kafka-topics.sh") and "--create" in c}


@pytest.mark.parametrize("env", [{}, {"SLAPROC_APP_ID": "sla-stg"}], ids=["default app id", "explicit app id"])
def test_create_topics_script_creates_the_topics_the_worker_uses(tmp_path: Path, env: dict[str, str]) -> None:
    """Review topics F2: the script's names are the worker's (same prefix and app id), its own
    ticks and attainment topics included (the script used to create `<prefix>slaproc-ticks` while
    the worker read `slaproc-ticks`, and no attainment topic)."""
    from streams.app import INPUT_TOPICS, OUTPUT_TOPICS
    from streams.settings import WorkerSettings

    result, calls = _run_create_topics(tmp_path, partitions=12, **env)
    assert result.returncode == 0, result.stderr
    settings = WorkerSettings.from_env({"SLAPROC_TOPIC_PREFIX": "stg.", **env})
    worker_topics = {settings.topic(n) for n in INPUT_TOPICS + OUTPUT_TOPICS}
    worker_topics |= {f"{settings.app_id}-ticks", f"{settings.app_id}-attainment"}
    assert _created(calls) == worker_topics


def test_create_topics_script_passes_a_command_config_to_every_tool(tmp_path: Path) -> None:
    """A TLS/SASL cluster: KAFKA_COMMAND_CONFIG (client properties) reaches every kafka-*.sh call."""
    properties = tmp_path / "client.properties"
    properties.write_text("security.protocol=SASL_SSL\n")
    result, calls = _run_create_topics(tmp_path, partitions=12, KAFKA_COMMAND_CONFIG=str(properties))
    assert result.returncode == 0, result.stderr
    assert calls and all(f"--command-config {properties}" in c for c in calls), calls
    missing, _ = _run_create_topics(tmp_path / "x", partitions=12, KAFKA_COMMAND_CONFIG=str(tmp_path / "none"))
    assert missing.returncode == 2 and "KAFKA_COMMAND_CONFIG" in missing.stderr


def test_create_topics_script_fails_on_a_partition_mismatch(tmp_path: Path) -> None:
    result, _ = _run_create_topics(tmp_path, partitions=4)
    assert result.returncode == 1
    assert "has 4 partitions, topics.yml says 12" in result.stderr


def test_dockerfile_installs_the_package_and_runs_the_worker() -> None:
    text = (REPO / "deploy" / "Dockerfile").read_text()
    assert text.startswith("# ") and "FROM python:3.11-slim" in text
    assert "pip install ." in text
    assert 'CMD ["slaproc", "worker"]' in text
    for line in re.findall(r"^COPY (\S+)", text, re.M):
        assert (REPO / line).exists(), f"Dockerfile copies missing {line}"


def _interpolated(env: dict[str, str]) -> dict[str, str]:
    """Compose's `${VAR:-default}` with nothing set in the shell: the default."""
    return {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}


def test_workers_settings_parse_and_each_keeps_its_tables_on_its_own_volume() -> None:
    """Every worker's environment is accepted by the worker (typos stop it at start), and each
    worker persists its tables (SLAPROC_STATE_DIR) on a named volume of its own, under a static
    member id of its own: two workers on one directory or one id would fence each other."""
    from streams.settings import WorkerSettings

    workers = sorted(n for n in SERVICES if n.startswith("worker-"))
    assert len(workers) >= 2
    state_volumes, member_ids = [], []
    for name in workers:
        settings = WorkerSettings.from_env(_interpolated(SERVICES[name]["environment"]))
        assert settings.state_dir is not None, f"{name}: SLAPROC_STATE_DIR unset (every restart re-reads the changelogs)"
        mounts = [m.split(":") for m in SERVICES[name]["volumes"]]
        [volume] = [src for src, target, *_ in mounts
                    if settings.state_dir == Path(target) or Path(target) in settings.state_dir.parents]
        assert volume in COMPOSE["volumes"], f"{name}: the state dir is not on a named volume"
        state_volumes.append(volume)
        assert settings.group_instance_id, name
        member_ids.append(settings.group_instance_id)
    assert len(set(state_volumes)) == len(workers), f"workers share a state volume: {state_volumes}"
    assert len(set(member_ids)) == len(workers), f"workers share a group instance id: {member_ids}"


def test_each_worker_advertises_a_host_the_other_reaches() -> None:
    """The query API forwards a key to the worker that owns it, at the URL that worker advertised
    to the group: its compose host name, never the 0.0.0.0 its web port binds."""
    from streams.settings import WorkerSettings

    for name in sorted(n for n in SERVICES if n.startswith("worker-")):
        settings = WorkerSettings.from_env(_interpolated(SERVICES[name]["environment"]))
        assert settings.web_host == "0.0.0.0"
        assert settings.advertised_url(hostname=lambda: "") == f"http://{SERVICES[name]['hostname']}:6066", name


def test_probe_timeouts_leave_room_for_the_measured_health_latency() -> None:
    """docs/operations.md measured /health at up to 4.1 s under a query flood: a probe that gives
    up sooner restarts a busy, healthy worker. The request's own timeout (urlopen's) must exceed
    it with room to spare, and compose's timeout must exceed that plus the interpreter's start."""
    import re

    measured_max = 4.1
    for name, service in SERVICES.items():
        test = " ".join(service.get("healthcheck", {}).get("test", []))
        found = re.search(r"urlopen\([^)]*timeout=(\d+(?:\.\d+)?)\)", test)
        if not found or "/health" not in test or not name.startswith(("worker-", "gateway")):
            continue
        request_timeout = float(found.group(1))
        compose_timeout = float(service["healthcheck"]["timeout"].removesuffix("s"))
        assert request_timeout >= 2 * measured_max - 0.5, f"{name}: urlopen timeout {request_timeout} s"
        assert compose_timeout >= request_timeout + 2, f"{name}: healthcheck timeout {compose_timeout} s"


def test_the_image_installs_the_pinned_versions() -> None:
    """The image gets the versions the tests ran with (constraints.txt, docs/decisions.md): a bare
    `pip install .` takes whatever is newest, and `slaproc worker` refuses untested Faust/aiokafka."""
    text = (REPO / "deploy" / "Dockerfile").read_text()
    installs = [line for line in text.splitlines() if "pip install" in line and not line.startswith("#")]
    assert installs
    [copy] = re.findall(r"^COPY .*\bconstraints\.txt\b.*$", text, re.M)
    copied_at = text.index(copy)
    for line in installs:
        assert "-c constraints.txt" in line, line
        assert text.index(line) > copied_at, "constraints.txt is copied after it is used"
