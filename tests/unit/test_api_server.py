"""The query API's server (streams.api_server): its own thread, its connection limit, its CPU pacing."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from streams.api_server import ROUTED_HEADER, Answer, ApiServer, CpuPacer
from streams.testing.harness import free_port


class FakeTime:
    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0  # the paced thread's
        self.others = 0.0  # the process's other threads'
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.wall += seconds

    def pacer(self, share: float) -> CpuPacer:
        pacer = CpuPacer(share, window=0.05, clock=lambda: self.wall, cpu=lambda: self.cpu,
                         process_cpu=lambda: self.cpu + self.others, sleep=self.sleep)
        pacer.pace()  # the first call starts the first window
        return pacer


def test_with_processing_idle_the_pacer_keeps_the_thread_to_its_share_of_the_wall_time():
    t = FakeTime()
    pacer = t.pacer(0.2)
    t.wall += 0.1
    t.cpu += 0.01  # 10 % of the time: no pause
    pacer.pace()
    assert t.slept == []
    t.wall += 0.01
    t.cpu += 0.01  # 0.01 s of CPU in 0.01 s: at 20 %, it must have taken 0.05 s
    pacer.pace()
    assert t.slept == [pytest.approx(0.04)]
    assert pacer.slept == pytest.approx(0.04)


def test_with_processing_busy_the_pacer_keeps_the_thread_to_its_share_of_the_process_cpu():
    t = FakeTime()
    pacer = t.pacer(0.2)
    # a machine that gives the process half a core: processing got 0.04 s in 0.1 s, the thread 0.02 s
    t.wall += 0.1
    t.others += 0.04
    t.cpu += 0.02
    pacer.pace()
    # 20 % of the process's CPU = 0.25 x the others' 0.04 s = 0.01 s; 0.01 s over, at 0.1 s of budget a second
    assert t.slept == [pytest.approx(0.1)]
    t.wall += 0.1
    t.others += 0.08
    t.cpu += 0.02  # 0.02 of 0.1 s: 20 % of the process's CPU, no pause
    pacer.pace()
    assert t.slept == [pytest.approx(0.1)]


def test_the_pacer_refuses_a_share_out_of_range():
    with pytest.raises(ValueError):
        CpuPacer(0.0)


def _get(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"{}")


def test_over_the_connection_limit_a_query_gets_503_with_retry_after_and_a_probe_still_passes():
    server = ApiServer("127.0.0.1", free_port(), max_connections=1, cpu_share=1.0)
    server.add_probe("/health", lambda: Answer(200, b'{"status":"ok"}'))
    server.add("/tickets/{ticket_id}", lambda request: Answer(200, b'{"ticket":true}'))
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        idle.sendall(b"GET /tickets/T0 HTTP/1.1\r\nHost: x\r\n")  # a request not finished: takes the one slot
        _wait(lambda: server.open_connections == 1)
        status, headers, body = _get(url + "/tickets/T1")
        assert status == 503 and headers["Retry-After"] == "1" and "limit" in body["error"]
        assert server.rejected == 1 and server.answered == 0  # refused before any view ran
        status, headers, body = _get(url + "/health")  # a probe is answered over the limit, without aiohttp
        assert (status, body) == (200, {"status": "ok"}) and headers["Content-Type"] == "application/json; charset=utf-8"
        assert server.answered == 0
        idle.close()
        _wait(lambda: server.open_connections == 0)
        status, _, body = _get(url + "/tickets/T1")
        assert (status, body) == (200, {"ticket": True})
    finally:
        server.stop()
    with pytest.raises(OSError):  # stopped: the port is closed
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def _wait(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_a_port_in_use_fails_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = ApiServer("127.0.0.1", taken.getsockname()[1])
        server.add_probe("/health", lambda: Answer(200, b"{}"))
        with pytest.raises(OSError):
            server.start()


def test_a_probe_is_answered_while_views_wait_for_their_cpu_share():
    def burn(request):
        end = time.thread_time() + 0.1  # 0.1 s of CPU: at a 1 % share, the next view waits (5 s at most)
        while time.thread_time() < end:
            pass
        return Answer(200, b'{"burnt":true}')

    server = ApiServer("127.0.0.1", free_port(), cpu_share=0.01)
    server.pacer.max_pause = 5.0  # a margin no scheduling delay of a busy machine reaches
    server.add("/burn", lambda request: server.paced(lambda: burn(request)))
    server.add_probe("/health", lambda: Answer(200, b'{"status":"ok"}'))
    server.start()
    url = f"http://127.0.0.1:{server.port}"
    order: list[str] = []
    try:
        assert _get(url + "/burn")[0] == 200
        order.append("burn")
        waiting = threading.Thread(target=lambda: (_get(url + "/burn"), order.append("burn")))
        waiting.start()
        time.sleep(0.2)  # the view is in, waiting for its share
        assert _get(url + "/health")[0] == 200
        order.append("health")
        waiting.join(30)
    finally:
        server.stop()
    assert order == ["burn", "health", "burn"], order  # the probe did not wait for the view
    assert server.pacer.slept > 0  # the views did wait


def _worker_pair(**options):
    """Two servers whose `/k/{key}` forwards to the other one (its paced local answer when the
    request was forwarded), as two workers do for keys the other holds."""
    servers = [ApiServer("127.0.0.1", free_port(), cpu_share=1.0, **options) for _ in range(2)]
    for me, other in ((servers[0], servers[1]), (servers[1], servers[0])):
        def view(request, me=me, other=other):
            if ROUTED_HEADER in request.headers:
                return me.paced(lambda: (time.sleep(0.3), Answer(200, json.dumps({"at": me.port}).encode()))[1])
            return me.forward(request, f"http://127.0.0.1:{other.port}")
        me.add("/k/{key}", view)
    for server in servers:
        server.start()
    return servers


def test_two_workers_forwarding_to_each_other_do_not_wait_on_each_other():
    """A forward is not paced: with the pacing held across it, A waiting for B's answer while B
    waits for A's held both until the forward timed out (10 s, then 504 on both)."""
    a, b = _worker_pair(forward_timeout=5.0)
    answers: dict[str, tuple] = {}
    try:
        threads = [threading.Thread(target=lambda s=s: answers.update({s.port: _get(f"http://127.0.0.1:{s.port}/k/x")}))
                   for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        a.stop()
        b.stop()
    assert answers[a.port][0] == answers[b.port][0] == 200
    assert answers[a.port][2] == {"at": b.port} and answers[b.port][2] == {"at": a.port}


def test_an_owner_that_does_not_answer_gives_503_with_retry_after():
    server = ApiServer("127.0.0.1", free_port(), cpu_share=1.0, forward_timeout=2.0)
    gone = free_port()  # nothing listens there
    server.add("/k/{key}", lambda request: server.forward(request, f"http://127.0.0.1:{gone}"))
    server.start()
    try:
        status, headers, body = _get(f"http://127.0.0.1:{server.port}/k/x")
    finally:
        server.stop()
    assert status == 503 and headers["Retry-After"] == "1" and str(gone) in body["error"]


def test_silent_connections_are_closed_and_bounded_and_idle_keep_alives_let_their_slot_go():
    server = ApiServer("127.0.0.1", free_port(), max_connections=1, cpu_share=1.0, first_line_timeout=0.5,
                       keepalive_timeout=0.5)
    server.add("/tickets/{ticket_id}", lambda request: Answer(200, b'{"ticket":true}'))
    server.start()
    silent = []
    try:
        silent = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(4)]
        _wait(lambda: server.waiting_connections == 4)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as fifth:  # past 4 x max_connections
            assert fifth.recv(100).startswith(b"HTTP/1.1 503")
        for conn in silent:
            assert conn.recv(100) == b""  # closed by the server, no first line came
        assert server.silent_closed == 4 and server.waiting_connections == 0
        kept = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        kept.sendall(b"GET /tickets/T1 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"200 OK" in kept.recv(1000)
        assert server.open_connections == 1  # a keep-alive connection holds the one slot ...
        _wait(lambda: server.open_connections == 0)  # ... until it has been idle keepalive_timeout
        kept.close()
    finally:
        for conn in silent:
            conn.close()
        server.stop()
