"""`slaproc gateway` settings: environment variables, flags as overrides (as the worker's).

Shared with the worker: SLAPROC_BROKER, SLAPROC_TOPIC_PREFIX, SLAPROC_PARTITIONS (used only
when the gateway creates a missing input topic), SLAPROC_REPLICATION_FACTOR (capped at the
broker count), SLAPROC_CREATE_TOPICS, SLAPROC_LOG_LEVEL, and the connection settings
SLAPROC_KAFKA_* (TLS, SASL: streams/kafka_config.py, as every Kafka client of the project).
The gateway's own are SLAPROC_GATEWAY_*; an unknown SLAPROC_GATEWAY_* variable is an
error naming the closest known one (a typo must not silently leave an endpoint open or off);
a misspelt shared one (SLAPROC_TOPIC_PREFX) is refused by the worker's rule
(streams.settings.misspelt_variables), so both commands accept and refuse the same names.
Each secret can also be read from a file: SLAPROC_GATEWAY_ZENDESK_SECRET_FILE=/run/secrets/zd.
"""
from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.kafka_config import KafkaConfigError, KafkaSettings
from streams.settings import (
    LOG_LEVELS, SettingsError, _parse_bool, misspelt_variables, parse_broker, parse_duration, parse_log_level)

__all__ = ["GatewaySettings", "GATEWAY_ENV_VARS", "SECRETS", "SettingsError"]

SECRETS = ("events_token", "alertmanager_token", "zendesk_secret", "jira_token")


@dataclass(frozen=True)
class GatewaySettings:
    broker: str = "kafka://localhost:9092"      # SLAPROC_BROKER
    topic_prefix: str = ""                      # SLAPROC_TOPIC_PREFIX (as the worker's)
    partitions: int = 4                         # SLAPROC_PARTITIONS: for input topics the gateway creates
    create_topics: bool = True                  # SLAPROC_CREATE_TOPICS
    replication_factor: int = 3                 # SLAPROC_REPLICATION_FACTOR: topics the gateway creates
    log_level: str = "info"                     # SLAPROC_LOG_LEVEL
    host: str = "127.0.0.1"                     # SLAPROC_GATEWAY_HOST (0.0.0.0 in a container)
    port: int = 8090                            # SLAPROC_GATEWAY_PORT
    mapping: Path | None = None                 # SLAPROC_GATEWAY_MAPPING: the mapping file (SPEC §13)
    max_body_bytes: int = 1024 * 1024           # SLAPROC_GATEWAY_MAX_BODY_BYTES: larger bodies get 413
    send_timeout: float = 10.0                  # SLAPROC_GATEWAY_SEND_TIMEOUT (s): broker acks within this, else 503
    zendesk_max_skew: float = 300.0             # SLAPROC_GATEWAY_ZENDESK_MAX_SKEW (s): signature timestamp age; 0 = off
    events_token: str | None = None             # SLAPROC_GATEWAY_EVENTS_TOKEN(_FILE): bearer token of /v1/events
    alertmanager_token: str | None = None       # SLAPROC_GATEWAY_ALERTMANAGER_TOKEN(_FILE): bearer token
    zendesk_secret: str | None = None           # SLAPROC_GATEWAY_ZENDESK_SECRET(_FILE): webhook signing secret
    jira_token: str | None = None               # SLAPROC_GATEWAY_JIRA_TOKEN(_FILE): shared secret
    # TLS/SASL: the SLAPROC_KAFKA_* variables, read and checked by streams/kafka_config.py.
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)

    def __post_init__(self) -> None:
        problems = []
        if not self.broker.strip():
            problems.append("SLAPROC_BROKER: empty")
        if self.partitions < 1:
            problems.append(f"SLAPROC_PARTITIONS: must be >= 1, got {self.partitions}")
        if self.replication_factor < 1:
            problems.append(f"SLAPROC_REPLICATION_FACTOR: must be >= 1, got {self.replication_factor}")
        if not 0 <= self.port <= 65535:
            problems.append(f"SLAPROC_GATEWAY_PORT: not a port: {self.port}")
        if self.log_level not in LOG_LEVELS:
            problems.append(f"SLAPROC_LOG_LEVEL: unknown level {self.log_level!r}; use one of {', '.join(LOG_LEVELS)}")
        if self.max_body_bytes < 1024:
            problems.append(f"SLAPROC_GATEWAY_MAX_BODY_BYTES: must be >= 1024, got {self.max_body_bytes}")
        if self.send_timeout <= 0:
            problems.append(f"SLAPROC_GATEWAY_SEND_TIMEOUT: must be > 0 s, got {self.send_timeout}")
        if self.zendesk_max_skew < 0:
            problems.append(f"SLAPROC_GATEWAY_ZENDESK_MAX_SKEW: must be >= 0 s, got {self.zendesk_max_skew}")
        for name in SECRETS:
            value = getattr(self, name)
            if value is not None and len(value) < 16:
                problems.append(f"{GATEWAY_ENV_VARS[name]}: too short (at least 16 characters)")
        if problems:
            raise SettingsError("; ".join(problems))

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def __repr__(self) -> str:  # never print a secret
        shown = {f.name: ("***" if f.name in SECRETS and getattr(self, f.name) else getattr(self, f.name))
                 for f in dataclasses.fields(self)}
        return "GatewaySettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> "GatewaySettings":
        """Settings from `environ`; `overrides` (flags) win when not None. Raises SettingsError naming the variable."""
        # the shared SLAPROC_* variables: the worker's rule (a near miss of a known name is an error)
        problems: list[str] = misspelt_variables(environ)
        known = set(GATEWAY_ENV_VARS.values()) | {GATEWAY_ENV_VARS[s] + "_FILE" for s in SECRETS}
        for var in sorted(environ):
            if var.startswith("SLAPROC_GATEWAY_") and var not in known:
                close = difflib.get_close_matches(var, sorted(known), n=1, cutoff=0.75)
                problems.append(f"{var}: unknown setting" + (f"; did you mean {close[0]}?" if close else ""))
        values: dict[str, Any] = {}
        try:
            values["kafka"] = KafkaSettings.from_env(environ)
        except KafkaConfigError as err:
            problems.append(str(err))
        for f in dataclasses.fields(cls):
            if f.name == "kafka":
                continue
            var = GATEWAY_ENV_VARS[f.name]
            raw = environ.get(var)
            if f.name in SECRETS:
                path = environ.get(var + "_FILE")
                if raw and path:
                    problems.append(f"{var}: set both {var} and {var}_FILE; keep one")
                    continue
                if path:
                    try:
                        raw = Path(path).read_text(encoding="utf-8").strip()
                    except OSError as exc:
                        problems.append(f"{var}_FILE: cannot read {path}: {exc.strerror}")
                        continue
            if raw is None or raw.strip() == "":
                continue
            try:
                values[f.name] = _PARSERS[f.name](raw)
            except ValueError as exc:
                problems.append(f"{var}: {exc}")
        if problems:
            raise SettingsError("; ".join(problems))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


_SHARED = {"broker", "topic_prefix", "partitions", "replication_factor", "create_topics", "log_level"}
GATEWAY_ENV_VARS: dict[str, str] = {
    f.name: ("SLAPROC_" if f.name in _SHARED else "SLAPROC_GATEWAY_") + f.name.upper()
    for f in dataclasses.fields(GatewaySettings) if f.name != "kafka"}  # kafka: SLAPROC_KAFKA_*

_PARSERS: dict[str, Any] = {
    "broker": parse_broker, "topic_prefix": str.strip, "partitions": int, "replication_factor": int,
    "create_topics": _parse_bool,
    "log_level": parse_log_level, "host": str.strip, "port": int, "mapping": Path, "max_body_bytes": int,
    "send_timeout": parse_duration, "zendesk_max_skew": parse_duration,
    "events_token": str.strip, "alertmanager_token": str.strip, "zendesk_secret": str.strip, "jira_token": str.strip,
}
assert set(_PARSERS) == set(GATEWAY_ENV_VARS)
