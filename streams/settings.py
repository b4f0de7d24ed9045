"""Worker settings: environment variables (and CLI flags as overrides) -> a frozen dataclass.

The environment is read here, in the shell, and nowhere in the core. Durations are
seconds (float); the env accepts `30`, `30s`, `500ms`, `2m`, `1h`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from policies.tickets import MAX_AT_RISK_THRESHOLDS
from streams.kafka_config import KafkaConfigError, KafkaSettings

__all__ = ["SettingsError", "WorkerSettings", "parse_duration", "ENV_VARS", "DEFAULT_APP_ID",
           "misspelt_variables"]

#: The app id when SLAPROC_APP_ID is not set, after the topic prefix (`WorkerSettings.app_id`).
DEFAULT_APP_ID = "slaproc"


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the variable."""


#: Kafka's legal topic characters (the app id names topics: `<app_id>-ticks`); a prefix may end in '.'.
_APP_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """`"30"`/`"30s"` -> 30.0, `"500ms"` -> 0.5, `"2m"` -> 120.0, `"1h"` -> 3600.0 (seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30, 30s, 500ms, 2m, 1h)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


#: The schemes Faust knows for a Kafka broker; TLS and SASL are SLAPROC_KAFKA_SECURITY_PROTOCOL's.
_BROKER_SCHEMES = ("kafka", "aiokafka")
_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def parse_broker(text: str) -> str:
    """SLAPROC_BROKER: `kafka://h1:9092;h2:9092` (or `h1:9092,h2:9092`), returned stripped.

    Raises ValueError for what would otherwise fail later with a traceback (no port, a port that
    is no number) or connect otherwise than meant: `SASL_SSL://host:9093` names the security
    protocol in the Java client's listener form, which Faust does not know and the aiokafka
    clients dropped (they connected PLAINTEXT). The protocol is SLAPROC_KAFKA_SECURITY_PROTOCOL's
    alone: one place decides TLS and SASL, and the message says how to write it."""
    text = text.strip()
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        scheme, sep, address = part.rpartition("://")
        if sep and scheme.lower() not in _BROKER_SCHEMES:
            if scheme.upper() in _SECURITY_PROTOCOLS:
                raise ValueError(f"{text!r}: the security protocol is no part of the address; write "
                                 f"kafka://{address} and set SLAPROC_KAFKA_SECURITY_PROTOCOL={scheme.upper()}")
            raise ValueError(f"{text!r}: unknown scheme {scheme!r}; write kafka://{address}")
        address = address.rstrip("/")
        if not address:
            raise ValueError(f"{text!r}: no broker address (write kafka://host:9092)")
        host, colon, port = address.rpartition(":")
        if not colon or not host:
            raise ValueError(f"{text!r}: no port; write host:PORT, e.g. kafka://{address}:9092")
        if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"{text!r}: the port {port!r} is not a number from 1 to 65535")
    return text


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def parse_log_level(text: str) -> str:
    """SLAPROC_LOG_LEVEL, any case -> lower case. A typo used to reach logging (the gateway's
    basicConfig raised a traceback) or mode's Worker: one line naming the levels instead."""
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown level {text.strip()!r}; use one of {', '.join(LOG_LEVELS)}")
    return level


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _parse_floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything the stream worker needs from its environment. Immutable."""

    broker: str = "kafka://localhost:9092"      # SLAPROC_BROKER (Faust URL; ';' separates hosts)
    # SLAPROC_APP_ID: consumer group and the names of the worker's own topics (`<app_id>-ticks`,
    # `<app_id>-attainment`, `<app_id>-<table>-changelog`), used as given. Unset (""): the topic
    # prefix + "slaproc", so that two deployments on one cluster with different prefixes (staging,
    # prod) never share a group or state (review topics F3); without a prefix, "slaproc" as before.
    app_id: str = ""
    topic_prefix: str = ""                      # SLAPROC_TOPIC_PREFIX, e.g. "staging." -> "staging.sla.breaches"
    partitions: int = 4                         # SLAPROC_PARTITIONS: of every co-partitioned topic
    tick_interval: float = 5.0                  # SLAPROC_TICK_INTERVAL (s): leader's tick period
    allowed_lateness: float = 30.0              # SLAPROC_ALLOWED_LATENESS (s): tick moves time to wall - this
    data_dir: Path = Path("./slaproc-data")     # SLAPROC_DATA_DIR: Faust's datadir (table stores)
    store: str = "memory://"                    # SLAPROC_STORE: Faust table store URL (memory:// only; see state_dir)
    # SLAPROC_STATE_DIR: persisted tables (streams/state_dir.py); a restart reads only the changelog's
    # tail. One directory per worker process (locked). None: tables in memory, rebuilt from the whole
    # changelog at every start (tests, the demo).
    state_dir: Path | None = None
    web_enabled: bool = True                    # SLAPROC_WEB_ENABLED: /metrics, probes, query API
    web_host: str = "127.0.0.1"                 # SLAPROC_WEB_HOST (0.0.0.0 in a container)
    web_port: int = 6066                        # SLAPROC_WEB_PORT
    # SLAPROC_WEB_ADVERTISED_HOST: the host the other workers forward queries to (the query API
    # routes a key to its partition's owner); "" = SLAPROC_WEB_HOST, or the host name when that is
    # a wildcard (0.0.0.0, ::), which no other worker can reach.
    web_advertised_host: str = ""
    api_cpu_share: float = 0.15                 # SLAPROC_API_CPU_SHARE: of the process's CPU, the most the query API thread takes
    api_max_connections: int = 64               # SLAPROC_API_MAX_CONNECTIONS: more get 503 + Retry-After
    batch_size: int = 500                       # SLAPROC_BATCH_SIZE: events per stream.take batch
    batch_within: float = 0.2                   # SLAPROC_BATCH_WITHIN (s): max wait to fill a batch
    # Consumer-group timings. Faust's defaults make a group join take 30 s or more on
    # Tansu; these bring it to a few seconds (docs/stream.md).
    broker_session_timeout: float = 6.0         # SLAPROC_BROKER_SESSION_TIMEOUT (s)
    broker_heartbeat_interval: float = 1.0      # SLAPROC_BROKER_HEARTBEAT_INTERVAL (s)
    broker_rebalance_timeout: float = 6.0       # SLAPROC_BROKER_REBALANCE_TIMEOUT (s)
    max_future: float = 3600.0                  # SLAPROC_MAX_FUTURE (s): events further ahead of the wall clock are dead letters (SPEC §10)
    health_interval: float = 2.0                # SLAPROC_HEALTH_INTERVAL (s): broker check, lag, readiness
    commit_interval: float = 2.8                # SLAPROC_COMMIT_INTERVAL (s): consumer offsets committed this often (Faust's default)
    group_instance_id: str = ""                 # SLAPROC_GROUP_INSTANCE_ID: static group membership (docs/operations.md); "" = dynamic
    create_topics: bool = True                  # SLAPROC_CREATE_TOPICS: create missing topics at start (streams/topic_configs.py)
    at_risk_thresholds: tuple[float, ...] = (0.5, 0.75, 0.9)  # SLAPROC_AT_RISK_THRESHOLDS "0.5,0.75,0.9"
    log_level: str = "info"                     # SLAPROC_LOG_LEVEL
    # --- production Kafka (SPEC §12) ---
    replication_factor: int = 3                 # SLAPROC_REPLICATION_FACTOR: every topic the worker creates
    # TLS/SASL: the SLAPROC_KAFKA_* variables, read and checked by streams/kafka_config.py.
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)

    def __post_init__(self) -> None:
        problems = []
        if not self.broker.strip():
            problems.append("SLAPROC_BROKER: empty")
        if not self.app_id.strip():
            object.__setattr__(self, "app_id", self.topic_prefix + DEFAULT_APP_ID)  # frozen: set once, here
        if not _APP_ID.match(self.app_id):
            problems.append(f"SLAPROC_APP_ID: {self.app_id!r} is not a Kafka topic/group name "
                            f"(letters, digits, '.', '_', '-'; with the prefix when derived from it)")
        if self.partitions < 1:
            problems.append(f"SLAPROC_PARTITIONS: must be >= 1, got {self.partitions}")
        if self.tick_interval <= 0:
            problems.append(f"SLAPROC_TICK_INTERVAL: must be > 0 s, got {self.tick_interval}")
        if self.allowed_lateness < 0:
            problems.append(f"SLAPROC_ALLOWED_LATENESS: must be >= 0 s, got {self.allowed_lateness}")
        if not 0 <= self.web_port <= 65535:
            problems.append(f"SLAPROC_WEB_PORT: not a port: {self.web_port}")
        elif self.web_port == 0 and self.web_enabled:
            # 0 binds a free port no one knows: Prometheus cannot scrape it and the other workers
            # would forward queries to port 0 (the port is advertised with the host, streams/web.py).
            problems.append("SLAPROC_WEB_PORT: 0 (any free port) cannot be scraped nor advertised to the other "
                            "workers; give a port from 1 to 65535, or set SLAPROC_WEB_ENABLED=false")
        if _is_wildcard(self.web_advertised_host):
            problems.append(f"SLAPROC_WEB_ADVERTISED_HOST: {self.web_advertised_host!r} is a wildcard address; the "
                            f"other workers would send queries there: give this worker's host name or address")
        if self.log_level not in LOG_LEVELS:
            problems.append(f"SLAPROC_LOG_LEVEL: unknown level {self.log_level!r}; use one of {', '.join(LOG_LEVELS)}")
        if not 0 < self.api_cpu_share <= 1:
            problems.append(f"SLAPROC_API_CPU_SHARE: must be > 0 and <= 1, got {self.api_cpu_share}")
        if self.api_max_connections < 1:
            problems.append(f"SLAPROC_API_MAX_CONNECTIONS: must be >= 1, got {self.api_max_connections}")
        if self.batch_size < 1:
            problems.append(f"SLAPROC_BATCH_SIZE: must be >= 1, got {self.batch_size}")
        if self.batch_within <= 0:
            problems.append(f"SLAPROC_BATCH_WITHIN: must be > 0 s, got {self.batch_within}")
        if self.max_future < 0:
            problems.append(f"SLAPROC_MAX_FUTURE: must be >= 0 s, got {self.max_future}")
        if self.health_interval <= 0:
            problems.append(f"SLAPROC_HEALTH_INTERVAL: must be > 0 s, got {self.health_interval}")
        if self.commit_interval <= 0:
            problems.append(f"SLAPROC_COMMIT_INTERVAL: must be > 0 s, got {self.commit_interval}")
        if not 0 < self.broker_heartbeat_interval < self.broker_session_timeout:
            problems.append("SLAPROC_BROKER_HEARTBEAT_INTERVAL: must be > 0 and below the session timeout")
        if any(not 0 < t < 1 for t in self.at_risk_thresholds):
            problems.append("SLAPROC_AT_RISK_THRESHOLDS: each must be strictly between 0 and 1")
        if len(set(self.at_risk_thresholds)) > MAX_AT_RISK_THRESHOLDS:
            problems.append(f"SLAPROC_AT_RISK_THRESHOLDS: at most {MAX_AT_RISK_THRESHOLDS} distinct thresholds, "
                            f"got {len(set(self.at_risk_thresholds))}")
        if self.replication_factor < 1:
            problems.append(f"SLAPROC_REPLICATION_FACTOR: must be >= 1, got {self.replication_factor}")
        if not self.store.startswith("memory:"):
            # Tried: Faust's RocksDB store asserts an event context on every write, and the state
            # backend (streams/store.py) writes outside one, so the agents crash on the first contract.
            problems.append(f"SLAPROC_STORE: {self.store!r} is not supported; use memory:// (to keep the tables "
                            f"across restarts, set SLAPROC_STATE_DIR)")
        if problems:
            raise SettingsError("; ".join(problems))

    def advertised_url(self, hostname: Callable[[], str] = socket.gethostname) -> str:
        """The query API's URL as the other workers reach it (Faust's canonical URL, sent to the
        group with the assignment and used to forward a key's query to its owner): the web port on
        SLAPROC_WEB_ADVERTISED_HOST, else on SLAPROC_WEB_HOST unless that binds every address, else
        on the host name (a container's: compose and Kubernetes resolve it). Never a wildcard."""
        host = self.web_advertised_host or ("" if _is_wildcard(self.web_host) else self.web_host) or hostname()
        if not host or _is_wildcard(host):
            raise SettingsError(f"SLAPROC_WEB_ADVERTISED_HOST: SLAPROC_WEB_HOST={self.web_host} binds every address "
                                f"and the machine has no host name to advertise; set it to this worker's address")
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 address in a URL
        return f"http://{host}:{self.web_port}"

    def topic(self, name: str) -> str:
        """Full topic name: `sla.breaches` -> prefix + `sla.breaches`."""
        return self.topic_prefix + name

    @property
    def app_id_derived(self) -> bool:
        """Whether the app id is the default one (prefix + "slaproc"), not an explicit SLAPROC_APP_ID."""
        return self.app_id == self.topic_prefix + DEFAULT_APP_ID

    def replace(self, **changes: Any) -> "WorkerSettings":
        """A copy with `changes`; keys whose value is None are ignored (flags not given). A derived
        app id follows a new topic prefix (an explicit one stays)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if "topic_prefix" in changes and "app_id" not in changes and self.app_id_derived:
            changes["app_id"] = ""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> "WorkerSettings":
        """Settings from `environ` (pass os.environ); `overrides` (CLI flags) win when not None.

        Unset or empty variables keep the defaults. Raises SettingsError naming the variable.
        """
        values: dict[str, Any] = {}
        problems = misspelt_variables(environ)
        for name, var in ENV_VARS.items():
            raw = environ.get(var)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = _PARSERS[name](raw)
            except ValueError as exc:
                problems.append(f"{var}: {exc}")
        try:
            values["kafka"] = KafkaSettings.from_env(environ)
        except KafkaConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            error = SettingsError("; ".join(problems))
            error.problems = problems  # one line each when printed (streams/worker.py)
            raise error
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        return cls(**values)


def _is_wildcard(host: str) -> bool:
    return host.strip().strip("[]") in ("0.0.0.0", "::", "*")


#: SLAPROC_* variables that are not worker settings (other commands, tests, the version check).
#: SLAPROC_KAFKA_* and SLAPROC_GATEWAY_* are checked by their own readers (streams/kafka_config.py,
#: streams/gateway/settings.py), which refuse any unknown name under their prefix.
_OTHER_PREFIXES = ("SLAPROC_KAFKA_", "SLAPROC_GATEWAY_", "SLAPROC_TEST_", "SLAPROC_SKIP_")
_OTHER_VARS = frozenset({"SLAPROC_ALLOW_UNTESTED_VERSIONS", "SLAPROC_NO_BROWSER"})


def misspelt_variables(environ: Mapping[str, str]) -> list[str]:
    """A SLAPROC_ variable that is no setting of any slaproc command but nearly one
    (SLAPROC_STATEDIR, SLAPROC_TOPIC_PREFX): an error, not a silent default (a worker meant to
    persist its tables would run without them; a gateway would write to unprefixed topics).

    One rule for every command that reads the shared variables (the worker and the gateway): a
    variable another command reads is not a typo (compose gives the gateway the workers'
    environment), so the known names are all of them."""
    from streams.gateway.settings import GATEWAY_ENV_VARS  # here: the gateway's settings import this module

    known = sorted(set(ENV_VARS.values()) | set(GATEWAY_ENV_VARS.values()) | _OTHER_VARS)
    problems = []
    for var in sorted(environ):
        if var.startswith("SLAPROC_") and var not in known and not var.startswith(_OTHER_PREFIXES):
            close = difflib.get_close_matches(var, known, n=1, cutoff=0.8)
            if close:
                problems.append(f"{var}: unknown setting; did you mean {close[0]}?")
    return problems


#: field name -> environment variable
ENV_VARS: dict[str, str] = {f.name: "SLAPROC_" + f.name.upper() for f in dataclasses.fields(WorkerSettings)
                             if f.name != "kafka"}  # kafka: many SLAPROC_KAFKA_* variables

_PARSERS: dict[str, Any] = {
    "broker": parse_broker,
    "app_id": str.strip,
    "topic_prefix": str.strip,
    "partitions": int,
    "tick_interval": parse_duration,
    "allowed_lateness": parse_duration,
    "data_dir": Path,
    "store": str.strip,
    "state_dir": lambda text: Path(text.strip()),
    "web_enabled": _parse_bool,
    "web_host": str.strip,
    "web_port": int,
    "web_advertised_host": str.strip,
    "api_cpu_share": float,
    "api_max_connections": int,
    "batch_size": int,
    "batch_within": parse_duration,
    "broker_session_timeout": parse_duration,
    "broker_heartbeat_interval": parse_duration,
    "broker_rebalance_timeout": parse_duration,
    "max_future": parse_duration,
    "health_interval": parse_duration,
    "commit_interval": parse_duration,
    "group_instance_id": str.strip,
    "create_topics": _parse_bool,
    "at_risk_thresholds": _parse_floats,
    "log_level": parse_log_level,
    "replication_factor": int,
}
assert set(_PARSERS) == set(ENV_VARS)
