"""The worker's HTTP server in a thread of its own (its own asyncio loop), so that queries never
take the processing loop's time (issue 18 item 4: 2,000 requests in flight on the processing loop
cut processing from 1651 to 336 events/s).

What keeps the processing loop's share (docs/operations.md, "Query API"):
- The views read the published snapshot (`streams.snapshot`), never the live processors.
- `CpuPacer`: the answers computed here (`ApiServer.paced`: a view's local work, never a wait
  for another worker or for the processing loop) run one at a time, each once the API thread is back within
  `cpu_share` of the process's CPU (`time.thread_time` / `time.process_time`; `cpu_share` of the
  wall time while processing is idle); they wait on the loop. Threads share one GIL: a thread
  that is always runnable takes about half of it from the processing thread. The cheap paths
  (probes, refusals) are not paced, so they are answered at once; their CPU leaves the views
  less of the share (a client that ignores `Retry-After` is refused as fast as it asks).
- `_Admission`: reads a connection's first line itself. The probes (`/health`, `/ready`) are
  answered there at once, ahead of the requests waiting for a view. Past `max_connections` open
  connections, a query is answered `503` + `Retry-After` and closed, without running a view;
  the scrape (`/metrics`) is let through over the limit. A connection that has not sent its
  first line within `first_line_timeout` is closed, and at most `max_connections` x 4 may be
  waiting for theirs (silent clients must not take every file descriptor); an idle keep-alive
  connection is closed after `keepalive_timeout` (it holds one of the `max_connections`).
- `forward`: a query for a key another worker owns is forwarded there outside the pacing (two
  workers forwarding to each other must not wait on each other); an owner that does not answer
  gives `503` + `Retry-After`, as a rebalance does.
- `/metrics` asks the processing loop to refresh the scrape-time gauges at most once every
  `metrics_refresh_every` seconds (concurrent scrapes share one refresh), and renders the
  registry in this thread.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, web

__all__ = ["Answer", "ApiServer", "CpuPacer", "ROUTED_HEADER"]

log = logging.getLogger(__name__)

#: Set on a request one worker forwards to the key's owner: the owner answers it itself, even if
#: its routes (read at another instant of a rebalance) name a third worker; no request loops.
ROUTED_HEADER = "X-Slaproc-Routed"
#: Paths answered above the connection limit: cheap, and what probes and Prometheus need.
EXEMPT_PATHS = (b"/health", b"/ready", b"/metrics")


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, built without any web framework (the views are plain functions)."""

    status: int
    body: bytes
    content_type: str = "application/json"
    charset: str | None = "utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


def _response_bytes(answer: Answer) -> bytes:
    """A whole HTTP/1.1 response that closes its connection (the answers given without aiohttp)."""
    content_type = answer.content_type + (f"; charset={answer.charset}" if answer.charset else "")
    head = [f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}", f"Content-Type: {content_type}",
            *(f"{k}: {v}" for k, v in answer.headers.items()), f"Content-Length: {len(answer.body)}",
            "Connection: close"]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body


def _overloaded_bytes(retry_after: int) -> bytes:
    body = json.dumps({"error": "the query API is at its connection limit; retry later"}).encode()
    return _response_bytes(Answer(503, body, headers={"Retry-After": str(retry_after)}))


class CpuPacer:
    """Keep a thread's CPU to a share of what the process gets: `pace()` (called by that thread
    between two requests) sleeps as long as needed once it is over. Counts what it held back.

    While the process's other threads (the processing loop) are busy, the thread may use at most
    `share` of the process's CPU; the cap follows what the machine gives the process (on shared
    cores a cap in wall time would leave it a larger part). While they are idle (below `busy` of
    the wall time), it may use `share` of the wall time."""

    def __init__(self, share: float, window: float = 0.05, busy: float = 0.1, max_pause: float = 1.0, *,
                 clock: Callable[[], float] = time.monotonic, cpu: Callable[[], float] = time.thread_time,
                 process_cpu: Callable[[], float] = time.process_time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"CPU share must be in (0, 1], not {share}")
        self.share, self.window, self.busy, self.max_pause = share, window, busy, max_pause
        self.clock, self.cpu, self.process_cpu, self.sleep = clock, cpu, process_cpu, sleep
        self.slept = 0.0  # seconds paused in all
        self._t0: float | None = None  # the first `pause()` starts the first window, in the paced thread

    def _start(self) -> None:
        self._t0, self._cpu0, self._process0 = self.clock(), self.cpu(), self.process_cpu()

    def pace(self) -> None:
        """Sleep (this thread) as long as `pause()` says."""
        pause = self.pause()
        if pause > 0:
            self.sleep(pause)
            self.paused(pause)

    def paused(self, seconds: float) -> None:
        """The thread has paused `seconds` (slept, or awaited on its loop): a new window starts."""
        self.slept += seconds
        self._start()

    def pause(self) -> float:
        """Seconds to pause before using more CPU (0: none; a new window starts when it is over)."""
        if self.share >= 1:
            return 0.0
        if self._t0 is None:  # thread_time is per thread: measured from the paced thread only
            self._start()
            return 0.0
        elapsed = self.clock() - self._t0
        used = self.cpu() - self._cpu0
        others = max(0.0, self.process_cpu() - self._process0 - used)
        if others >= self.busy * elapsed and elapsed > 0:
            growth = self.share / (1 - self.share) * others / elapsed  # budget seconds per second
        else:
            growth = self.share
        budget = growth * elapsed
        if used > budget:
            return min((used - budget) / growth, self.max_pause)
        if elapsed >= self.window:
            self._start()
        return 0.0


class _Admission(asyncio.Protocol):
    """The aiohttp connection protocol behind a connection limit (see the module docstring)."""

    def __init__(self, server: "ApiServer") -> None:
        self.server = server
        self.inner: Any = None
        self.transport: Any = None
        self.head = b""
        self.counted = False
        self.waiting = False  # counted in `server.waiting_connections` (no first line yet)
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        server = self.server
        if server.waiting_connections >= server.max_connections * 4:
            server.rejected += 1
            transport.write(server._overloaded)
            transport.close()
            return
        server.waiting_connections += 1
        self.waiting = True
        self.timer = asyncio.get_running_loop().call_later(server.first_line_timeout, self._silent)

    def _silent(self) -> None:
        """No first line in time: closed (it would hold a file descriptor for ever)."""
        self.timer = None
        self.server.silent_closed += 1
        self.transport.close()

    def _first_line_read(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.waiting:
            self.waiting = False
            self.server.waiting_connections -= 1

    def _admit(self, data: bytes) -> None:
        self.server.open_connections += 1
        self.counted = True
        self.inner = self.server._protocol_factory()
        self.inner.connection_made(self.transport)
        self.inner.data_received(data)

    def data_received(self, data: bytes) -> None:
        if self.inner is not None:
            self.inner.data_received(data)
            return
        if self.transport.is_closing():
            return
        self.head += data
        if b"\n" not in self.head and len(self.head) < 4096:
            return
        self._first_line_read()
        parts = self.head.split(b"\n", 1)[0].split(b" ")
        path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
        probe = self.server._probes.get(path) if parts[0] == b"GET" else None
        if probe is not None:  # answered here, ahead of the requests waiting for a view
            self.transport.write(_response_bytes(probe()))
            self.transport.close()
        elif self.server.open_connections < self.server.max_connections or path in EXEMPT_PATHS:
            self._admit(self.head)
        else:
            self.server.rejected += 1
            self.transport.write(self.server._overloaded)
            self.transport.close()

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._first_line_read()
        if self.counted:
            self.server.open_connections -= 1
            self.counted = False
        if self.inner is not None:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.inner is not None:
            self.inner.resume_writing()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiServer:
    """HTTP on (`host`, `port`) from a daemon thread with its own event loop.

    `add(path, view)`: `view(request)` returns an `Answer` (or a coroutine of one); call before
    `start()`. `forward(request, owner_url)` proxies a request to another worker (a view returns
    its result). `call_on_processing_loop(fn)` runs `fn()` on the loop that called `start()`."""

    SHUTDOWN_TIMEOUT = 2.0  # seconds a request in progress may take to finish when the worker stops

    def __init__(self, host: str, port: int, *, max_connections: int = 64, cpu_share: float = 0.15,
                 retry_after: int = 1, forward_timeout: float = 10.0, first_line_timeout: float = 10.0,
                 keepalive_timeout: float = 5.0) -> None:
        self.host, self.port = host, port
        self.max_connections = max_connections
        self.first_line_timeout = first_line_timeout
        self.keepalive_timeout = keepalive_timeout
        self.waiting_connections = 0  # connected, first line not read yet
        self.silent_closed = 0  # connections closed for sending no first line in time
        self.pacer = CpuPacer(cpu_share)
        self.retry_after = retry_after
        self.forward_timeout = forward_timeout
        self._overloaded = _overloaded_bytes(retry_after)
        self._views: list[tuple[str, Callable[[web.Request], Any]]] = []
        self._probes: dict[bytes, Callable[[], Answer]] = {}
        self._view_turn = asyncio.Lock()  # bound to the server's loop at its first use
        self.open_connections = 0
        self.rejected = 0  # connections answered 503 at the limit
        self.answered = 0  # requests answered by a view
        self.loop: asyncio.AbstractEventLoop | None = None
        self.processing_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._startup_error: BaseException | None = None
        self._protocol_factory: Callable[[], Any] = lambda: None
        self._client: ClientSession | None = None

    def add(self, path: str, view: Callable[[web.Request], Any]) -> None:
        self._views.append((path, view))

    def add_probe(self, path: str, answer: Callable[[], Answer]) -> None:
        """A GET `path` answered as soon as its first line is read, before the connection limit and
        ahead of the requests waiting for a view (liveness and readiness: a flood of queries must
        not fail them); `answer()` must be cheap. Also served as a view (a keep-alive connection)."""
        self._probes[path.encode()] = answer
        self.add(path, lambda request: answer())

    # --- lifecycle -------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until the port is bound (raises what binding raised)."""
        try:
            self.processing_loop = asyncio.get_running_loop()
        except RuntimeError:
            self.processing_loop = None
        self._thread = threading.Thread(target=self._run, name="slaproc-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the query API did not start within {timeout:.0f} s")
        if self._startup_error is not None:
            raise self._startup_error

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopped = self.loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopped.set)
            except RuntimeError:  # the loop already closed
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        loop = self.loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        runner = None
        server = None
        try:
            app = web.Application()
            for path, view in self._views:
                app.router.add_get(path, self._handler(view))
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=self.SHUTDOWN_TIMEOUT,
                                   keepalive_timeout=self.keepalive_timeout)
            await runner.setup()
            assert runner.server is not None  # set up above
            self._protocol_factory = runner.server
            server = await asyncio.get_running_loop().create_server(
                lambda: _Admission(self), self.host, self.port, reuse_address=True, backlog=1024)
            self._client = ClientSession(timeout=ClientTimeout(total=self.forward_timeout))
        except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
            self._startup_error = exc
            self._ready.set()
            if runner is not None:
                await runner.cleanup()
            return
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            server.close()
            await self._client.close()
            await runner.cleanup()

    # --- requests --------------------------------------------------------------
    async def paced(self, compute: Callable[[], Answer]) -> Answer:
        """`compute()` (a view's local work: synchronous, CPU only) one at a time, once the thread is
        back within its CPU share. The wait is on the loop, not a sleep of the thread: meanwhile the
        loop still accepts connections, answers the probes, forwards and refuses what is past the
        limit (their CPU counts in the share, and leaves the views less of it). Never call it around
        an await on another worker or on the processing loop: a paced view waiting for a worker
        whose paced view waits for this one would hold both."""
        async with self._view_turn:
            pause = self.pacer.pause()
            if pause > 0:
                await asyncio.sleep(pause)
                self.pacer.paused(pause)
            return compute()

    def _handler(self, view: Callable[[web.Request], Any]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                answer = view(request)
                if asyncio.iscoroutine(answer):
                    answer = await answer
            finally:
                self.answered += 1
            if isinstance(answer, web.StreamResponse):
                return answer
            return web.Response(body=answer.body, status=answer.status, content_type=answer.content_type,
                                charset=answer.charset, headers=dict(answer.headers))
        return handle

    def unavailable(self, message: str) -> Answer:
        """503 + Retry-After: the answer exists, but not here and not now (rebalance, recovery)."""
        return Answer(503, json.dumps({"error": message}).encode(), headers={"Retry-After": str(self.retry_after)})

    async def forward(self, request: web.Request, owner_url: str) -> web.Response | Answer:
        """The owner's answer to this request, as it gave it (status, content type, body, its
        Retry-After); 503 + Retry-After when the owner does not answer in time."""
        assert self._client is not None
        url = owner_url.rstrip("/") + request.path_qs
        try:
            async with self._client.get(url, headers={ROUTED_HEADER: "1"}) as response:
                retry = response.headers.get("Retry-After")
                return web.Response(text=await response.text(), status=response.status,
                                    content_type=response.content_type,
                                    headers={"Retry-After": retry} if retry is not None else None)
        except (ClientError, asyncio.TimeoutError) as exc:
            return self.unavailable(f"the worker that holds this key ({owner_url}) did not answer "
                                    f"({type(exc).__name__}); try again later")

    async def call_on_processing_loop(self, fn: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Run `fn()` (synchronous, short) on the processing loop between two of its steps."""
        loop = self.processing_loop
        if loop is None or loop.is_closed():
            return fn()
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting API thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return await asyncio.wait_for(asyncio.wrap_future(done), timeout)


def same_url(a: str, b: str) -> bool:
    """Whether two worker URLs name the same server (host and port, as Faust's router compares)."""
    x, y = urlsplit(a), urlsplit(b)
    return ((x.hostname or "") == (y.hostname or "")) and (x.port or 80) == (y.port or 80)
