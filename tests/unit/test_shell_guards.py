"""Issue 18, the shell's pure pieces: the closed set of dead-letter reasons (code, docs, metric
label), record timestamps, the Kafka client's log filter, the month in a URL."""
from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from events.codec import DEAD_LETTER_REASONS as CODEC_REASONS
from policies.outputs import Rejected
from streams.app import DEAD_LETTER_REASONS, PROCESSING_ERROR, _reason, reason_code, record_seconds
from streams.health import RateLimitedLog, broker_reachable
from streams.web import _MONTH

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def test_the_documented_reasons_are_the_closed_set():
    text = OPERATIONS.read_text()
    section = text[text.index("### Dead-letter reasons"):text.index("## Alerts")]
    documented = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            documented |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    assert documented == DEAD_LETTER_REASONS
    assert CODEC_REASONS <= DEAD_LETTER_REASONS


def test_exception_text_never_becomes_a_reason():
    assert _reason(OverflowError("year 10000 is out of range")) == \
        "rejected: OverflowError: year 10000 is out of range"
    assert reason_code(_reason(OverflowError("year 10000 is out of range"))) == PROCESSING_ERROR
    assert _reason(ValueError("year 10000 is out of range")).startswith("rejected: ValueError: ")
    assert _reason(ValueError("unknown_type: 'x' on the contracts topic")) == "unknown_type: 'x' on the contracts topic"
    assert _reason(Rejected("invalid_contract", "service_id 's' already belongs to customer 'c'")) == \
        "invalid_contract: service_id 's' already belongs to customer 'c'"
    assert reason_code("Not A Code: x") == PROCESSING_ERROR
    assert reason_code("rejected: the fake core refuses 'boom'") == "rejected" == PROCESSING_ERROR
    assert reason_code("invalid_json") == PROCESSING_ERROR  # no message: not a `code: message` text


def test_record_timestamps_outside_the_range_are_the_epoch():
    assert record_seconds(1_772_000_000.5) == 1_772_000_000.5
    for absurd in (253_402_387_200.0, 2 ** 62 / 1000, -1.0, float("nan"), float("inf"), None, "x"):
        assert record_seconds(absurd) == 0.0


def test_the_kafka_client_log_is_rate_limited():
    now = [0.0]
    flt = RateLimitedLog(every=30.0, clock=lambda: now[0])

    def record(msg, level=logging.ERROR):
        return logging.LogRecord("aiokafka.conn", level, __file__, 1, msg, (), None)

    passed = []
    for i in range(115 * 10):  # ten seconds of a refused broker, as measured
        now[0] = i / 115
        r = record("Unable connect to node with id %s: %s")
        if flt.filter(r):
            passed.append(r)
    assert len(passed) == 1
    now[0] = 31.0
    r = record("Unable connect to node with id %s: %s")
    assert flt.filter(r) and "[1149 more like this in the last 30 s not logged]" in r.msg
    assert flt.filter(record("another message"))
    assert all(flt.filter(record("debug noise", logging.INFO)) for _ in range(5))


def test_a_refused_port_is_unreachable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        assert asyncio.run(broker_reachable(f"127.0.0.1:{port}", timeout=1.0)) is False


def test_a_month_in_a_url_is_ascii_digits_only():
    assert _MONTH.fullmatch("2026-03")
    for month in ("２０２６-０３", "٢٠٢٦-٠٣", "2026-3", "2026-03x", "+026-03"):
        assert not _MONTH.fullmatch(month), month


def test_a_silent_broker_is_unreachable_after_the_deadline():
    """A blackholed broker: the TCP handshake completes (the kernel's backlog), no answer comes."""
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # never accepted, never answered
        t0 = time.monotonic()
        assert asyncio.run(broker_reachable(f"127.0.0.1:{s.getsockname()[1]}", timeout=0.5)) is False
        assert time.monotonic() - t0 < 3


def test_a_kafka_broker_answering_api_versions_is_reachable():
    """The check's request is a valid ApiVersions v0 (a fake broker that checks the header answers)."""
    import struct

    async def main() -> bool:
        async def handle(reader, writer):
            size = struct.unpack(">i", await reader.readexactly(4))[0]
            body = await reader.readexactly(size)
            api_key, version, correlation = struct.unpack(">hhi", body[:8])
            assert (api_key, version) == (18, 0)
            writer.write(struct.pack(">iih", 6, correlation, 0))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await broker_reachable(f"unreachable.invalid:1,127.0.0.1:{port}", timeout=2.0)

    assert asyncio.run(main()) is True
