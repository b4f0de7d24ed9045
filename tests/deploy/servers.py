"""Run real Prometheus and Alertmanager servers for tests, on loopback ports.

    with WebhookReceiver() as hook, \\
         run_alertmanager(am_bin, am_config, tmp / "am") as am_url, \\
         run_prometheus(prom_bin, prom_config, tmp / "prom") as prom_url:
        ...
        hook.wait_for(lambda n: n.path == "/pager", timeout=30)

Each server gets a free 127.0.0.1 port, its own temporary config and storage directory,
and is terminated (then killed if needed) on exit. WebhookReceiver is an in-process
HTTP server recording Alertmanager's webhook notifications.
"""
from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Notification", "WebhookReceiver", "free_port", "run_prometheus", "run_alertmanager",
           "query", "http_json", "wait_until"]


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(url: str, data: Any = None, timeout: float = 5.0) -> Any:
    """GET (or POST `data` as JSON) and decode the JSON answer."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def query(prometheus_url: str, promql: str) -> list[dict]:
    """Instant query; the result vector (list of {metric, value})."""
    answer = http_json(f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except (OSError, urllib.error.URLError, AssertionError) as exc:
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                         + (f" (last error: {last_error})" if last_error else ""))


@dataclass(frozen=True)
class Notification:
    """One webhook POST: the URL path (the receiver, by our convention) and its JSON body."""
    path: str
    body: dict

    def alerts(self, alertname: str | None = None, status: str | None = None) -> list[dict]:
        return [a for a in self.body.get("alerts", [])
                if (alertname is None or a["labels"].get("alertname") == alertname)
                and (status is None or a["status"] == status)]


class WebhookReceiver:
    """In-process HTTP server on 127.0.0.1 that records every POSTed JSON body."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver._changed:
                    receiver.notifications.append(Notification(self.path, body))
                    receiver._changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, predicate: Callable[[Notification], bool], timeout: float) -> Notification:
        """The first notification (received so far or later) matching `predicate`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for n in self.notifications:
                    if predicate(n):
                        return n
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(n.path, [a["labels"].get("alertname") for a in n.alerts()])
                            for n in self.notifications]
                    raise AssertionError(f"no matching notification within {timeout} s; got {seen}")
                self._changed.wait(remaining)


@contextmanager
def _server(argv: list[str], ready_url: str, workdir: Path, name: str,
            timeout: float = 30.0) -> Iterator[None]:
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            def ready() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n"
                                       + log_path.read_text(errors="replace")[-3000:])
                with urllib.request.urlopen(ready_url, timeout=2) as response:
                    return response.status == 200
            wait_until(ready, timeout, f"{name} ready at {ready_url}")
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def run_prometheus(binary: str, config: dict, workdir: Path, port: int | None = None) -> Iterator[str]:
    """Prometheus with `config` (rule_files should be absolute) on `port` (default: a free
    one; pass it to let the config scrape Prometheus itself); yields its base URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = port or free_port()
    argv = [binary, f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    url = f"http://127.0.0.1:{port}"
    with _server(argv, f"{url}/-/ready", workdir, "prometheus"):
        yield url


@contextmanager
def run_alertmanager(binary: str, config: dict, workdir: Path, port: int | None = None) -> Iterator[str]:
    """Alertmanager with `config`, clustering off, on `port` (default: a free one); yields its base URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    port = port or free_port()
    argv = [binary, f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port on 0.0.0.0:9094
            "--log.level=warn"]
    url = f"http://127.0.0.1:{port}"
    with _server(argv, f"{url}/-/ready", workdir, "alertmanager"):
        yield url
