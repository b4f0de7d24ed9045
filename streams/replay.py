"""`slaproc replay`: the core over a JSON-lines file, no broker (SPEC §9).

Time advances to each event's `occurred_at` in file order and to `--until` at the end;
the derived events are written ordered by `occurred_at`, then by key, then in the
order they were derived — byte-identical across runs.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterable, TextIO

from events.codec import DeadLetterReason, decode, dead_letter_event, encode
from policies.catalog import Catalog, default_catalog
from policies.contracts import Contract, load_contracts_yaml
from policies.outputs import Output
from policies.processor import Processor, Settings
from streams.wire import to_bytes

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class ReplayResult:
    """Encoded outputs with their sort keys, and counters for the summary line."""

    records: list[tuple[datetime, str, int, bytes]] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    dead_letters: int = 0

    def sorted_lines(self) -> list[bytes]:
        self.records.sort(key=lambda r: (r[0], r[1], r[2]))
        return [r[3] for r in self.records]


class Replayer:
    """Feeds lines to a Processor and collects the encoded outputs."""

    def __init__(self, contracts: Iterable[Contract], catalog: Catalog | None = None,
                 settings: Settings = Settings()):
        self.processor = Processor(catalog or default_catalog(), settings=settings)
        for contract in contracts:
            self.processor.install(contract)
        self.result = ReplayResult()

    def _add(self, outputs: list[Output]) -> None:
        records = self.result.records
        for out in outputs:
            records.append((out.occurred_at, out.key, len(records), to_bytes(out)))

    def _dead_letter(self, source: str, raw: bytes, reason: DeadLetterReason) -> None:
        at = self.processor.now or EPOCH
        event = dead_letter_event(source, raw, reason, at)
        records = self.result.records
        records.append((at, "", len(records), encode(event)))
        self.result.dead_letters += 1

    def feed_line(self, raw: bytes, source: str) -> None:
        self.result.lines += 1
        decoded = decode(raw, source)
        if isinstance(decoded, DeadLetterReason):
            self._dead_letter(source, raw, decoded)
            return
        self.result.events += 1
        outputs, rejected = self.processor.apply(decoded)
        self._add(outputs)
        if rejected is not None:
            self._dead_letter(source, raw, DeadLetterReason(rejected.reason, rejected.message))

    def finish(self, until: datetime | None) -> ReplayResult:
        if until is not None:
            self._add(self.processor.advance_to(until))
        return self.result


def replay_file(events: Path, contracts: Path, until: datetime | None, out: BinaryIO,
                progress: TextIO | None = sys.stderr, settings: Settings = Settings()) -> ReplayResult:
    """Replay `events` under `contracts` and write the derived events to `out` as JSON lines."""
    catalog = default_catalog()
    replayer = Replayer(load_contracts_yaml(contracts, catalog), catalog, settings)
    name = events.name
    started = last = time.monotonic()
    size = events.stat().st_size
    with events.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            replayer.feed_line(raw, f"{name}:{lineno}")
            if progress is not None and lineno % 50_000 == 0 and time.monotonic() - last > 2:
                last = time.monotonic()
                rate = lineno / (last - started)
                progress.write(f"replay: {lineno:,} lines ({fh.tell() * 100 // max(size, 1)} %), {rate:,.0f} lines/s\n")
                progress.flush()
    result = replayer.finish(until)
    for line in result.sorted_lines():
        out.write(line)
        out.write(b"\n")
    out.flush()
    if progress is not None and result.lines >= 50_000:
        progress.write(f"replay: done, {result.lines:,} lines, {result.dead_letters:,} dead letters, "
                       f"{len(result.records):,} outputs in {time.monotonic() - started:.1f} s\n")
    return result
