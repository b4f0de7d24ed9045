"""Run `slaproc gateway` as a child process (integration tests and bench/gateway.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from streams.testing.broker import _die_with_parent
from streams.testing.harness import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class GatewayProcess:
    """`python -m streams.cli gateway` on 127.0.0.1 with settings as environment variables."""

    broker_url: str
    prefix: str
    mapping: Path | None = None
    partitions: int = 3
    port: int = field(default_factory=free_port)
    secrets: dict[str, str] = field(default_factory=dict)   # e.g. {"SLAPROC_GATEWAY_ZENDESK_SECRET": "..."}
    extra_env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "GatewayProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLAPROC_GATEWAY_")}
        env.update({"SLAPROC_BROKER": self.broker_url, "SLAPROC_TOPIC_PREFIX": self.prefix,
                    "SLAPROC_PARTITIONS": str(self.partitions), "SLAPROC_GATEWAY_HOST": "127.0.0.1",
                    "SLAPROC_GATEWAY_PORT": str(self.port), "SLAPROC_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"})
        if self.mapping is not None:
            env["SLAPROC_GATEWAY_MAPPING"] = str(self.mapping)
        env.update(self.secrets)
        env.update(self.extra_env)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen([sys.executable, "-m", "streams.cli", "gateway"], env=env, cwd=REPO,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}: {self.logs()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if json.loads(r.read())["status"] == "ok":
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"gateway not healthy within {timeout} s: {self.logs()}")

    def logs(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-3000:]
        return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
