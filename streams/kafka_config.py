"""Kafka connection settings (SPEC §12): the one place that knows TLS, SASL and OAuth.

Every Kafka client of slaproc gets its security parameters here: the worker's Faust app
(`faust_app_kwargs`), its offsets probe and admin client (`consumer_kwargs`, `admin_kwargs`),
`slaproc publish`, the demo's `--feed-only` producer and the test harness (`producer_kwargs`).
A new client (the webhook gateway) calls `KafkaSettings.from_env(os.environ)` once at start and
builds its producer with `AIOKafkaProducer(**producer_kwargs(broker_url, kafka))`.

    kafka = KafkaSettings.from_env(os.environ)          # raises KafkaConfigError, one line a problem
    info = await preflight(broker_url, kafka)            # TLS / SASL / reachability, one line on failure
    producer = AIOKafkaProducer(**producer_kwargs(broker_url, kafka))

Settings come from `SLAPROC_KAFKA_*` environment variables; flags override them (the commands
copy their flags into the mapping before calling `from_env`). Secrets (`SASL_PASSWORD`,
`SSL_KEY_PASSWORD`, `OAUTH_CLIENT_SECRET`) also have a `..._FILE` form and are held as `Secret`,
whose repr and str are masked. An unknown `SLAPROC_KAFKA_*` variable is an error (a typo would
otherwise silently connect without TLS), named with the closest known variable.

The `ssl.SSLContext` is built here (not by Faust's `SSLCredentials`, whose `cafile=` form fails
without a `purpose` in faust-streaming 0.15.3) and handed to Faust as `broker_credentials`, the
App setting its consumer, producer and topic-creating client all read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import json
import logging
import ssl
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider

__all__ = [
    "KafkaConfigError", "KafkaSettings", "Secret", "ClientCredentialsTokenProvider", "ClusterInfo",
    "ENV_VARS", "SECRET_VARS", "PROTOCOLS", "MECHANISMS",
    "aiokafka_kwargs", "faust_conf_security", "producer_kwargs", "consumer_kwargs", "admin_kwargs", "faust_app_kwargs",
    "preflight", "effective_replication_factor", "check_copartitioned",
]

log = logging.getLogger(__name__)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
_TLS = ("SSL", "SASL_SSL")
_SASL = ("SASL_PLAINTEXT", "SASL_SSL")


class KafkaConfigError(ValueError):
    """One or more settings are wrong; `problems` holds one line per problem, each naming its variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class Secret:
    """A string that never shows itself in repr/str/logs; `reveal()` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r} (use true or false)")


@dataclass(frozen=True)
class KafkaSettings:
    """How to reach and authenticate to the Kafka cluster (not where: that is SLAPROC_BROKER)."""

    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = None
    ssl_ca_file: Path | None = None           # None: the system's CA store
    ssl_cert_file: Path | None = None         # client certificate (mutual TLS); may hold the key too
    ssl_key_file: Path | None = None
    ssl_key_password: Secret | None = None
    ssl_check_hostname: bool = True
    oauth_token_url: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: Secret | None = None
    oauth_scope: str | None = None
    allow_plaintext_sasl: bool = False
    # Seconds the start-up check keeps trying a broker that refuses connections or does not answer.
    connect_timeout: float = field(default=30.0, compare=False)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise KafkaConfigError(problems)

    # --- validation ---------------------------------------------------------
    def problems(self) -> list[str]:
        """Every problem of these settings, one line each naming the variable (no secret values)."""
        p: list[str] = []
        v = ENV_VARS
        proto = self.security_protocol
        if proto not in PROTOCOLS:
            p.append(f"{v['security_protocol']}: unknown protocol {proto!r}; use one of {', '.join(PROTOCOLS)}")
            return p
        tls, sasl = proto in _TLS, proto in _SASL
        if sasl:
            mech = self.sasl_mechanism
            if mech is None:
                p.append(f"{v['sasl_mechanism']}: required with {proto}; use one of {', '.join(MECHANISMS)}")
            elif mech not in MECHANISMS:
                hint = " (GSSAPI/Kerberos is not supported)" if mech == "GSSAPI" else ""
                p.append(f"{v['sasl_mechanism']}: unknown mechanism {mech!r}; use one of {', '.join(MECHANISMS)}{hint}")
            elif mech == "OAUTHBEARER":
                for name in ("oauth_token_url", "oauth_client_id", "oauth_client_secret"):
                    if not getattr(self, name):
                        p.append(f"{v[name]}: required with SASL mechanism OAUTHBEARER")
                if self.oauth_token_url:
                    p.extend(_token_url_problems(self.oauth_token_url))
                for name in ("sasl_username", "sasl_password"):
                    if getattr(self, name):
                        p.append(f"{v[name]}: not used with OAUTHBEARER (the token comes from {v['oauth_token_url']})")
            else:
                for name in ("sasl_username", "sasl_password"):
                    if not getattr(self, name):
                        p.append(f"{v[name]}: required with SASL mechanism {mech}")
            if proto == "SASL_PLAINTEXT" and not self.allow_plaintext_sasl:
                p.append(f"{v['security_protocol']}: SASL_PLAINTEXT sends credentials unencrypted; use SASL_SSL, "
                         f"or set {v['allow_plaintext_sasl']}=true to allow it")
        else:
            for name in ("sasl_mechanism", "sasl_username", "sasl_password", "oauth_token_url",
                         "oauth_client_id", "oauth_client_secret", "oauth_scope"):
                if getattr(self, name):
                    p.append(f"{v[name]}: set, but {v['security_protocol']}={proto} does not use SASL "
                             f"(use SASL_SSL)")
        if not tls:
            for name in ("ssl_ca_file", "ssl_cert_file", "ssl_key_file", "ssl_key_password"):
                if getattr(self, name):
                    p.append(f"{v[name]}: set, but {v['security_protocol']}={proto} does not use TLS "
                             f"(use SSL or SASL_SSL)")
        else:
            if self.ssl_key_file and not self.ssl_cert_file:
                p.append(f"{v['ssl_key_file']}: set without {v['ssl_cert_file']} (the client certificate)")
            if self.ssl_key_password and not self.ssl_cert_file:
                p.append(f"{v['ssl_key_password']}: set without {v['ssl_cert_file']}")
            if not p:
                try:
                    self.ssl_context  # noqa: B018 (built now so that a bad file stops the start)
                except KafkaConfigError as exc:
                    p.extend(exc.problems)
        if self.connect_timeout <= 0:
            p.append(f"connect_timeout: must be > 0 s, got {self.connect_timeout}")
        return p

    # --- derived ------------------------------------------------------------
    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in _TLS

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in _SASL

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The client TLS context (None without TLS). Raises KafkaConfigError naming the file."""
        if not self.uses_tls:
            return None
        return build_ssl_context(self.ssl_ca_file, self.ssl_cert_file, self.ssl_key_file,
                                 self.ssl_key_password, self.ssl_check_hostname)

    @cached_property
    def token_provider(self) -> "ClientCredentialsTokenProvider | None":
        """One provider per settings object, so every client shares its cached token."""
        if self.sasl_mechanism != "OAUTHBEARER":
            return None
        assert self.oauth_token_url and self.oauth_client_id and self.oauth_client_secret
        return ClientCredentialsTokenProvider(self.oauth_token_url, self.oauth_client_id,
                                              self.oauth_client_secret, self.oauth_scope)

    def start_line(self, broker_url: str) -> str:
        """What a command prints once at start, after the start-up check: where and how it
        connects (`Kafka k1:9094,k2:9094: SASL_SSL, SCRAM-SHA-512 as slaproc, CA system store`)."""
        return f"Kafka {_servers(broker_url)}: {self.describe()}"

    def describe(self) -> str:
        """One line for the start-up log: protocol, mechanism, user, CA; never a secret."""
        parts = [self.security_protocol]
        if self.uses_sasl:
            who = self.oauth_client_id if self.sasl_mechanism == "OAUTHBEARER" else self.sasl_username
            parts.append(f"{self.sasl_mechanism} as {who}")
        if self.uses_tls:
            parts.append(f"CA {self.ssl_ca_file or 'system store'}")
            if self.ssl_cert_file:
                parts.append(f"client certificate {self.ssl_cert_file}")
            if not self.ssl_check_hostname:
                parts.append("hostname check OFF")
        return ", ".join(parts)

    # --- loading ------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> "KafkaSettings":
        """Settings from `environ` (`SLAPROC_KAFKA_*`, secrets also as `..._FILE`); `overrides`
        (field name -> value, flags) win when not None. Raises KafkaConfigError with every problem."""
        problems: list[str] = []
        known = set(ENV_VARS.values()) | {var + "_FILE" for var in SECRET_VARS.values()}
        for var in sorted(environ):
            if var.startswith(_PREFIX) and var not in known:
                close = difflib.get_close_matches(var, sorted(known), n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(sorted(ENV_VARS.values()))}"
                problems.append(f"{var}: unknown setting{hint}")
        values: dict[str, Any] = {}
        for name, var in ENV_VARS.items():
            raw = environ.get(var)
            if name in SECRET_VARS:
                file_raw = environ.get(var + "_FILE")
                # After a problem, a stand-in value keeps "required" from being reported as well.
                if raw and file_raw:
                    problems.append(f"{var}: set together with {var}_FILE; use one of them")
                    values[name] = Secret("<invalid>")
                    continue
                if file_raw and file_raw.strip():
                    try:
                        raw = Path(file_raw.strip()).read_text().rstrip("\r\n")
                    except OSError as exc:
                        problems.append(f"{var}_FILE: cannot read {file_raw.strip()}: {exc.strerror or exc}")
                        values[name] = Secret("<invalid>")
                        continue
                    if not raw:
                        problems.append(f"{var}_FILE: {file_raw.strip()} is empty")
                        values[name] = Secret("<invalid>")
                        continue
                    values[name] = Secret(raw)
                    continue
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = _PARSERS[name](raw)
            except ValueError as exc:
                problems.append(f"{var}: {exc}")
        for name, value in overrides.items():
            if name not in _FIELDS:
                raise TypeError(f"unknown Kafka setting {name!r}")
            if value is not None:
                values[name] = Secret(value) if name in SECRET_VARS and not isinstance(value, Secret) else value
        try:
            settings = cls(**values)
        except KafkaConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            raise KafkaConfigError(problems)
        return settings


_PREFIX = "SLAPROC_KAFKA_"
_FIELDS = {f.name for f in dataclasses.fields(KafkaSettings)}

#: field name -> environment variable
ENV_VARS: dict[str, str] = {f.name: _PREFIX + f.name.upper() for f in dataclasses.fields(KafkaSettings)}
#: the secret fields (each also readable from the file its `..._FILE` variable names)
SECRET_VARS: dict[str, str] = {n: ENV_VARS[n] for n in ("sasl_password", "ssl_key_password", "oauth_client_secret")}


def _upper(text: str) -> str:
    return text.strip().upper()


def _positive_seconds(text: str) -> float:
    from streams.settings import parse_duration

    return parse_duration(text)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "security_protocol": _upper,
    "sasl_mechanism": _upper,
    "sasl_username": str.strip,
    "sasl_password": Secret,
    "ssl_ca_file": lambda t: Path(t.strip()),
    "ssl_cert_file": lambda t: Path(t.strip()),
    "ssl_key_file": lambda t: Path(t.strip()),
    "ssl_key_password": Secret,
    "ssl_check_hostname": _parse_bool,
    "oauth_token_url": str.strip,
    "oauth_client_id": str.strip,
    "oauth_client_secret": Secret,
    "oauth_scope": str.strip,
    "allow_plaintext_sasl": _parse_bool,
    "connect_timeout": _positive_seconds,
}
assert set(_PARSERS) == _FIELDS


def _token_url_problems(url: str) -> list[str]:
    var = ENV_VARS["oauth_token_url"]
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return [f"{var}: not an http(s) URL: {url!r}"]
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        return [f"{var}: plain http would send the client secret unencrypted; use https"]
    return []


def build_ssl_context(ca_file: Path | None, cert_file: Path | None, key_file: Path | None,
                      key_password: Secret | None, check_hostname: bool) -> ssl.SSLContext:
    """A client context: verify the broker against `ca_file` (or the system store), present
    `cert_file`/`key_file` when given (mutual TLS). Raises KafkaConfigError naming the setting."""
    v = ENV_VARS
    problems: list[str] = []
    for name, path in (("ssl_ca_file", ca_file), ("ssl_cert_file", cert_file), ("ssl_key_file", key_file)):
        if path is not None and not path.is_file():
            problems.append(f"{v[name]}: no such file: {path}")
    if problems:
        raise KafkaConfigError(problems)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (ssl.SSLError, ValueError) as exc:
            raise KafkaConfigError([f"{v['ssl_ca_file']}: {ca_file} holds no PEM CA certificate ({_ssl_reason(exc)})"]) from None
    context.check_hostname = check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    if cert_file is not None:
        password = key_password.reveal() if key_password else None
        try:
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None,
                                    password=(lambda: password or ""))
        except ssl.SSLError as exc:
            key_path = key_file or cert_file
            try:
                key_text = key_path.read_text(errors="replace")
            except OSError:
                key_text = ""
            encrypted = "ENCRYPTED" in key_text
            if "KEY_VALUES_MISMATCH" in str(exc).upper():
                problems.append(f"{v['ssl_key_file']}: the key does not belong to the certificate in {cert_file}")
            elif encrypted and password:
                problems.append(f"{v['ssl_key_password']}: wrong password for the key {key_path}")
            elif encrypted:
                problems.append(f"{v['ssl_key_password']}: the key {key_path} is encrypted; set it")
            elif "PRIVATE KEY" not in key_text:
                problems.append(f"{v['ssl_key_file']}: {key_path} holds no private key"
                                + ("" if key_file else f"; set {v['ssl_key_file']}"))
            else:
                problems.append(f"{v['ssl_cert_file']}: cannot load the client certificate/key ({_ssl_reason(exc)})")
            raise KafkaConfigError(problems) from None
    return context


def _ssl_reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    verify = getattr(exc, "verify_message", None)
    return str(verify or reason or exc)


# --- OAuth ------------------------------------------------------------------------------------
class ClientCredentialsTokenProvider(AbstractTokenProvider):
    """OAuth 2.0 client-credentials grant for SASL/OAUTHBEARER, the token cached until shortly
    before it expires. The HTTP request (stdlib urllib, client id/secret as HTTP Basic, RFC 6749
    §2.3.1) runs in the loop's default executor, so a slow token endpoint does not block the loop."""

    REFRESH_MARGIN = 60.0  # seconds before `expires_in` runs out that a new token is fetched

    def __init__(self, token_url: str, client_id: str, client_secret: Secret, scope: str | None = None, *,
                 timeout: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.timeout = timeout
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock: asyncio.Lock | None = None
        self.fetches = 0  # how many tokens were fetched (tests, metrics)

    def __repr__(self) -> str:
        return f"<ClientCredentialsTokenProvider {self.token_url} client_id={self.client_id}>"

    async def token(self) -> str:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at:
                loop = asyncio.get_running_loop()
                token, expires_in = await loop.run_in_executor(None, self._fetch)
                self._token = token
                margin = min(self.REFRESH_MARGIN, expires_in / 2)
                self._expires_at = self._clock() + expires_in - margin
            return self._token

    def _fetch(self) -> tuple[str, float]:
        """POST the grant; (access token, seconds it is valid). Raises OAuthError without the secret."""
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        import base64

        basic = base64.b64encode(
            f"{urllib.parse.quote(self.client_id, safe='')}:"
            f"{urllib.parse.quote(self._client_secret.reveal(), safe='')}".encode()).decode()
        request = urllib.request.Request(
            self.token_url, data=urllib.parse.urlencode(form).encode(), method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json",
                     "Authorization": f"Basic {basic}"})
        var = ENV_VARS["oauth_token_url"]
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip()
            who = ENV_VARS["oauth_client_secret"] if exc.code in (400, 401, 403) else var
            raise OAuthError(f"{who}: the token endpoint {self.token_url} answered HTTP {exc.code} "
                             f"for client {self.client_id}: {detail or exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise OAuthError(f"{var}: cannot reach {self.token_url}: {getattr(exc, 'reason', exc)}") from None
        try:
            data = json.loads(body)
            token = data["access_token"]
            expires_in = float(data.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise OAuthError(f"{var}: {self.token_url} did not answer with an access_token") from None
        self.fetches += 1
        return str(token), max(expires_in, 1.0)


class OAuthError(RuntimeError):
    """The token endpoint refused or could not be reached; the message names the setting."""


# --- client parameters ------------------------------------------------------------------------
def aiokafka_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    """The security parameters of any aiokafka client (producer, consumer, admin, create_conn)."""
    out: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.uses_tls:
        out["ssl_context"] = kafka.ssl_context
    if kafka.uses_sasl:
        out["sasl_mechanism"] = kafka.sasl_mechanism
        if kafka.sasl_mechanism == "OAUTHBEARER":
            out["sasl_oauth_token_provider"] = kafka.token_provider
        else:
            out["sasl_plain_username"] = kafka.sasl_username
            out["sasl_plain_password"] = kafka.sasl_password.reveal() if kafka.sasl_password else None
    return out


def _servers(broker_url: str) -> str:
    from streams.kafka_admin import bootstrap_servers

    return bootstrap_servers(broker_url)


def producer_kwargs(broker_url: str, kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """`AIOKafkaProducer(**producer_kwargs(url, kafka, linger_ms=5))`."""
    return {"bootstrap_servers": _servers(broker_url), **aiokafka_kwargs(kafka), **extra}


def consumer_kwargs(broker_url: str, kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """`AIOKafkaConsumer(*topics, **consumer_kwargs(url, kafka, group_id=None))`."""
    return {"bootstrap_servers": _servers(broker_url), **aiokafka_kwargs(kafka), **extra}


def admin_kwargs(broker_url: str, kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """`AIOKafkaAdminClient(**admin_kwargs(url, kafka))`."""
    return {"bootstrap_servers": _servers(broker_url), **aiokafka_kwargs(kafka), **extra}


def faust_app_kwargs(kafka: KafkaSettings | None) -> dict[str, Any]:
    """`faust.App(..., **faust_app_kwargs(kafka))`: `broker_credentials` for TLS/SASL, {} for PLAINTEXT.

    Faust hands `broker_credentials` to its consumer, producer and topic-creating client
    (faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth); tests check it arrives."""
    if kafka is None or kafka.security_protocol == "PLAINTEXT":
        return {}
    from faust.auth import OAuthCredentials, SASLCredentials, SSLCredentials

    if not kafka.uses_sasl:
        return {"broker_credentials": SSLCredentials(kafka.ssl_context)}
    if kafka.sasl_mechanism == "OAUTHBEARER":
        return {"broker_credentials": OAuthCredentials(oauth_cb=kafka.token_provider, ssl_context=kafka.ssl_context)}
    assert kafka.sasl_password is not None
    creds = SASLCredentials(username=kafka.sasl_username, password=kafka.sasl_password.reveal(),
                            ssl_context=kafka.ssl_context, mechanism=kafka.sasl_mechanism)
    return {"broker_credentials": creds}


def faust_conf_security(conf: Any) -> dict[str, Any]:
    """The aiokafka security parameters a Faust app's clients use (`app.conf`): for a client the
    shell opens next to Faust's own (the Tansu end-offsets probe)."""
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    return dict(credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context))


# --- start-up check ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterInfo:
    """What the start-up check learnt: broker count and the partition count of each existing topic."""

    brokers: int
    partitions: dict[str, int]


def _api_versions_request(correlation_id: int = 1) -> bytes:
    client_id = b"slaproc-preflight"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id  # ApiVersions v0
    return struct.pack(">i", len(body)) + body


class _Unanswered(Exception):
    """Connected, but the other side does not speak the expected protocol (TLS or Kafka)."""


class _ClosedAfterHandshake(_Unanswered):
    """The TLS handshake completed, then the server closed or reset the connection instead of
    answering: with TLS 1.3 that is how a server refuses the client certificate (or its absence)
    when its alert is lost to the reset."""


async def _probe(host: str, port: int, kafka: KafkaSettings, timeout: float) -> None:
    """Open one connection the way the clients will (TLS or not) and get an ApiVersions answer.

    Raises OSError / asyncio.TimeoutError while the TCP connection cannot be made (the broker may
    be starting), ssl.SSLError for a failed handshake, and _Unanswered once connected when the
    TLS handshake does not complete (a PLAINTEXT listener waits for more bytes) or the connection
    is closed or reset instead of a Kafka answer."""
    context = kafka.ssl_context
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        if context is not None:
            try:
                await asyncio.wait_for(writer.start_tls(context, server_hostname=host), timeout)
            except asyncio.TimeoutError:
                raise _Unanswered(f"no TLS handshake within {timeout:.0f} s") from None
            except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
                raise _Unanswered(f"the connection was closed during the TLS handshake ({exc})") from None
        try:
            writer.write(_api_versions_request())
            await asyncio.wait_for(writer.drain(), timeout)
            header = await asyncio.wait_for(reader.readexactly(8), timeout)
        except asyncio.TimeoutError:
            raise _Unanswered(f"no answer to a Kafka request within {timeout:.0f} s") from None
        except asyncio.IncompleteReadError:
            error = _ClosedAfterHandshake if context is not None else _Unanswered
            raise error("the connection was closed instead of an answer") from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            error = _ClosedAfterHandshake if context is not None else _Unanswered
            raise error(f"the connection was reset instead of an answer ({exc})") from None
        size, correlation = struct.unpack(">ii", header)
        if correlation != 1 or not 0 < size < 1 << 20:
            raise _Unanswered(f"not a Kafka answer (size {size}, correlation id {correlation})")
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except Exception:
            pass


def _tls_problem(address: str, host: str, kafka: KafkaSettings, exc: BaseException) -> str:
    v = ENV_VARS
    text = str(exc)
    upper = text.upper()
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or text
        if exc.verify_code == 62 or "hostname" in reason.lower() or "IP address mismatch" in reason:
            return (f"{v['ssl_check_hostname']}: the certificate of {address} is not valid for {host!r} ({reason}); "
                    f"use the host name the certificate names in SLAPROC_BROKER, or set {v['ssl_check_hostname']}=false")
        return (f"{v['ssl_ca_file']}: the certificate of {address} is not trusted ({reason}); "
                f"{'is ' + str(kafka.ssl_ca_file) + ' the CA that signed it?' if kafka.ssl_ca_file else 'set the CA that signed it'}")
    if any(s in upper for s in ("CERTIFICATE REQUIRED", "HANDSHAKE FAILURE", "BAD CERTIFICATE",
                                "UNKNOWN CA", "CERTIFICATE UNKNOWN", "ACCESS DENIED")):
        if kafka.ssl_cert_file is None:
            return (f"{v['ssl_cert_file']}: {address} requires a client certificate (mutual TLS) and closed the "
                    f"connection ({getattr(exc, 'reason', None) or text}); set {v['ssl_cert_file']} and {v['ssl_key_file']}")
        return (f"{v['ssl_cert_file']}: {address} rejected the client certificate {kafka.ssl_cert_file} "
                f"({getattr(exc, 'reason', None) or text})")
    if any(s in upper for s in ("WRONG_VERSION_NUMBER", "WRONG VERSION NUMBER", "RECORD_LAYER", "UNKNOWN_PROTOCOL",
                                "PACKET_LENGTH_TOO_LONG", "RECORD LAYER")):
        return (f"{v['security_protocol']}: {address} does not speak TLS ({getattr(exc, 'reason', None) or text}); "
                f"is it a PLAINTEXT listener?")
    return f"{v['security_protocol']}: TLS with {address} failed: {getattr(exc, 'reason', None) or text}"


def _sasl_problem(address: str, kafka: KafkaSettings, exc: BaseException) -> str:
    from aiokafka import errors

    v = ENV_VARS
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OAuthError):
        return text
    if isinstance(exc, errors.UnsupportedSaslMechanismError):
        return f"{v['sasl_mechanism']}: {address} does not offer {kafka.sasl_mechanism} ({text})"
    # aiokafka's SCRAM client reads the server-final message as `v=<verifier>`; a server that refuses
    # the user or password answers `e=<error>` instead, which aiokafka 0.14 reports as KeyError('v').
    refused_scram = isinstance(exc, KeyError) and exc.args == ("v",) and kafka.sasl_mechanism.startswith("SCRAM")
    if refused_scram:
        text = "the SCRAM exchange ended with an error instead of the server's signature"
    if refused_scram or isinstance(exc, (errors.SaslAuthenticationFailed, errors.AuthenticationFailedError,
                                         errors.IllegalSaslStateError)):
        who = v["oauth_client_id"] if kafka.sasl_mechanism == "OAUTHBEARER" else v["sasl_password"]
        user = kafka.oauth_client_id if kafka.sasl_mechanism == "OAUTHBEARER" else kafka.sasl_username
        return f"{who}: {address} refused {kafka.sasl_mechanism} authentication as {user!r} ({text})"
    if isinstance(exc, errors.KafkaConnectionError):
        return (f"{v['sasl_mechanism']}: {address} closed the connection during the SASL {kafka.sasl_mechanism} "
                f"handshake; does the cluster offer {kafka.sasl_mechanism}? ({text})")
    return f"{v['sasl_mechanism']}: SASL {kafka.sasl_mechanism} with {address} failed ({type(exc).__name__}: {text})"


_UNREACHABLE = (ConnectionError, asyncio.TimeoutError, TimeoutError, OSError)


async def preflight(broker_url: str, kafka: KafkaSettings, *, topics: list[str] | None = None,
                    timeout: float = 5.0, attempt_every: float = 1.0) -> ClusterInfo:
    """Connect once the way every client will, before anything else starts.

    Raises KafkaConfigError with one line naming the setting: TLS failures (untrusted CA, host
    name, client certificate required or rejected, a PLAINTEXT listener) and SASL failures
    (mechanism not offered, credentials refused) at once; a broker that refuses connections or
    does not answer after `kafka.connect_timeout` seconds (it may still be starting). Returns the
    broker count and the partition counts of `topics` that exist."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.conn import create_conn

    servers = _servers(broker_url)
    hosts = []
    for part in servers.split(","):
        host, _, port = part.rpartition(":")
        hosts.append((host.strip("[]"), int(port)))
    deadline = time.monotonic() + kafka.connect_timeout
    last: str = ""
    while True:
        reachable: tuple[str, int] | None = None
        for host, port in hosts:
            address = f"{host}:{port}"
            try:
                await _probe(host, port, kafka, timeout)
            except ssl.SSLError as exc:
                raise KafkaConfigError([_tls_problem(address, host, kafka, exc)]) from None
            except _ClosedAfterHandshake as exc:
                v = ENV_VARS
                if kafka.ssl_cert_file is None:
                    line = (f"{v['ssl_cert_file']}: {address} completed the TLS handshake, then {exc}; it probably "
                            f"requires a client certificate (mutual TLS): set {v['ssl_cert_file']} and "
                            f"{v['ssl_key_file']}")
                else:
                    line = (f"{v['ssl_cert_file']}: {address} completed the TLS handshake, then {exc}; it probably "
                            f"rejected the client certificate {kafka.ssl_cert_file}")
                raise KafkaConfigError([line]) from None
            except _Unanswered as exc:
                if kafka.uses_tls:
                    hint = "is it a PLAINTEXT listener (then use PLAINTEXT or SASL_PLAINTEXT)?"
                else:
                    hint = "is it a TLS listener (then use SSL or SASL_SSL)?"
                raise KafkaConfigError([f"{ENV_VARS['security_protocol']}: {address} accepted the connection but "
                                        f"{exc} with {kafka.security_protocol}; {hint}"]) from None
            except _UNREACHABLE as exc:
                last = f"{address}: {type(exc).__name__} {exc}".strip()
                continue
            reachable = (host, port)
            break
        if reachable is not None:
            break
        if time.monotonic() >= deadline:
            raise KafkaConfigError([f"SLAPROC_BROKER: no broker of {servers} answered within "
                                    f"{kafka.connect_timeout:.0f} s (last: {last})"])
        log.warning("Kafka not reachable yet (%s); retrying", last)
        await asyncio.sleep(attempt_every)
    host, port = reachable
    if kafka.uses_sasl:
        address = f"{host}:{port}"
        try:
            conn = await asyncio.wait_for(create_conn(host, port, request_timeout_ms=int(timeout * 1000),
                                                      **aiokafka_kwargs(kafka)), timeout * 2)
        except ssl.SSLError as exc:
            raise KafkaConfigError([_tls_problem(address, host, kafka, exc)]) from None
        except Exception as exc:
            raise KafkaConfigError([_sasl_problem(address, kafka, exc)]) from None
        conn.close()
    admin = AIOKafkaAdminClient(**admin_kwargs(broker_url, kafka, request_timeout_ms=int(timeout * 2000)))
    # aiokafka logs each failed attempt itself; the one line below says it all.
    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        partitions: dict[str, int] = {}
        if topics:
            existing = set(await admin.list_topics())
            wanted = [t for t in topics if t in existing]
            if wanted:
                for described in await admin.describe_topics(wanted):
                    if described.get("error_code", 0) == 0:
                        partitions[described["topic"]] = len(described["partitions"])
    except Exception as exc:
        if kafka.uses_sasl:
            line = f"SLAPROC_BROKER: {servers} answered, but the cluster metadata could not be read"
        else:
            line = (f"{ENV_VARS['security_protocol']}: {servers} answered, but refused the cluster metadata to a "
                    f"client without SASL; does the cluster require authentication (SASL_SSL)?")
        raise KafkaConfigError([f"{line} ({type(exc).__name__}: {exc})"]) from None
    finally:
        try:
            await admin.close()
        except Exception:
            pass
        aiokafka_log.setLevel(level)
    return ClusterInfo(brokers=len(cluster.get("brokers", [])) or 1, partitions=partitions)


def effective_replication_factor(configured: int, brokers: int) -> tuple[int, str | None]:
    """(replication factor to use, warning or None): `configured`, capped at the broker count."""
    if configured <= brokers:
        return configured, None
    return brokers, (f"SLAPROC_REPLICATION_FACTOR={configured} but the cluster has {brokers} broker"
                     f"{'s' if brokers != 1 else ''}: topics are created with replication factor {brokers}")


def check_copartitioned(partitions: Mapping[str, int], expected: int, var: str = "SLAPROC_PARTITIONS") -> list[str]:
    """One problem line per existing topic whose partition count is not `expected` (the input
    topics, the worker's internal topics and changelogs must be co-partitioned)."""
    return [f"{var}: topic {topic!r} has {count} partition{'s' if count != 1 else ''}, the worker uses "
            f"{expected}; co-partitioned topics must have equal counts (set {var}={count}, or recreate the topic)"
            for topic, count in sorted(partitions.items()) if count != expected]
