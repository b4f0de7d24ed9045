"""`slaproc replay`: the core over a JSON-lines file, no broker (SPEC §9, §10).

A file is a batch: its lines are decoded, then the events are applied sorted by
(`occurred_at`, `event_id`) — stable, so equal keys keep their file order — whatever
order the file has. `contract.upserted` lines come first (in that order among
themselves) and move no time: contracts are configuration, installed as the stream's
contracts agent installs them from their own topic, whatever their timestamps say
(a contract recorded today for a backfill of last month still applies to last month). Events after the bound (`--until`, else the wall clock +
`max_future`, read by the CLI) are `future_timestamp` dead letters. Time then
advances to `--until` (or to the latest event applied). The derived events are
written ordered by `occurred_at`, then by key, then in the order they were derived —
byte-identical across runs. An exception on one event is a dead letter (`rejected`),
never the end of the run.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterable, TextIO

from pydantic_core import from_json

from events.codec import DeadLetterReason, decode, dead_letter_event, encode
from policies.catalog import Catalog, default_catalog
from policies.contracts import (Contract, ContractError, contract_from_event, contract_warnings,
                                load_contracts_yaml)
from policies.outputs import Output, Rejected
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
        self._pending: list[tuple[bool, datetime, str, int, bytes, str, int | None]] = []
        self._undated: list[tuple[str, bytes, DeadLetterReason]] = []

    def _add(self, outputs: list[Output]) -> None:
        records = self.result.records
        for out in outputs:
            records.append((out.occurred_at, out.key, len(records), to_bytes(out)))

    def _dead_letter(self, source: str, raw: bytes, reason: DeadLetterReason, at: datetime | None = None) -> None:
        """`at`: the rejected event's own time (a line that did not decode: the time replay reached)."""
        if at is None:
            self._undated.append((source, raw, reason))
            return
        event = dead_letter_event(source, raw, reason, at)
        records = self.result.records
        records.append((at, "", len(records), encode(event)))
        self.result.dead_letters += 1

    def feed_line(self, raw: bytes, source: str, lineno: int | None = None) -> None:
        """Read one line's sort key; the line waits for `finish` (a file is a batch, applied sorted).

        Only the raw bytes and the key are kept (a decoded event is ~1 KB, a line ~200 bytes); the
        line is decoded in `finish`. The key comes from a plain JSON parse when the line has a
        plain RFC 3339 `occurred_at` and a string `event_id`, else from a full decode (which also
        dead-letters a bad line here). With `lineno`, `source` is the file's name and the line's
        source (`name:lineno`) is only built when a dead letter needs it.

        A pending line is one flat tuple (not a contract, occurred_at, event_id, arrival, raw,
        source, lineno), sorted as it is: `arrival` is unique, so equal keys keep file order and
        the raw bytes are never compared."""
        self.result.lines += 1
        key = _quick_key(raw)
        if key is None:
            decoded = decode(raw, source if lineno is None else f"{source}:{lineno}")
            if isinstance(decoded, DeadLetterReason):
                self._dead_letter(source if lineno is None else f"{source}:{lineno}", raw, decoded)
                return
            key = (decoded.type != "contract.upserted", decoded.occurred_at, decoded.event_id)
        pending = self._pending
        pending.append((key[0], key[1], key[2], len(pending), raw, source, lineno))

    def _apply(self, event: Any, raw: bytes, source: str, bound: datetime | None) -> None:
        try:
            outputs, rejected = self.processor.apply(event, not_after=bound)
        except Exception as exc:  # a bug must not end the run: the event is a dead letter, the rest goes on
            outputs, rejected = [], Rejected("rejected", f"{type(exc).__name__}: {exc}")
        self._add(outputs)
        if rejected is not None:
            # at the event's own time (order-independent); beyond the bound, at the time reached (it
            # moves nothing; the bound may be the wall clock, which must not show in the output)
            at = (self.processor.now or EPOCH) if rejected.reason == "future_timestamp" else event.occurred_at
            self._dead_letter(source, raw, DeadLetterReason(rejected.reason, rejected.message), at)

    def _configure(self, event: Any, raw: bytes, source: str) -> None:
        """A contract line: installed without moving time, as the stream's contracts agent does."""
        try:
            self._add(self.processor.upsert_contract((contract_from_event(event, self.processor.catalog),
                                                      event.occurred_at)))
        except ContractError as err:
            self._dead_letter(source, raw, DeadLetterReason("invalid_contract", str(err)), event.occurred_at)
        except Rejected as rejected:
            self._dead_letter(source, raw, DeadLetterReason(rejected.reason, rejected.message), event.occurred_at)
        except Exception as exc:  # a bug must not end the run
            self._dead_letter(source, raw, DeadLetterReason("rejected", f"{type(exc).__name__}: {exc}"),
                              event.occurred_at)

    def finish(self, until: datetime | None, bound: datetime | None = None) -> ReplayResult:
        """Apply the events read, sorted; then advance to `until` (or to the latest event).
        `bound`: events after it are `future_timestamp` (default: `until`)."""
        bound = bound if bound is not None else until
        pending, self._pending = self._pending, []
        pending.sort()
        pending.reverse()  # popped from the end: a line's bytes are freed once it is applied
        sources: dict[int, tuple[bytes, str]] = {}  # parked events -> their line (for an orphan dead letter)
        parking = self.processor.parking
        pop = pending.pop
        while pending:
            *_key, raw, source, lineno = pop()
            if lineno is not None:
                source = f"{source}:{lineno}"
            event = decode(raw, source)
            if isinstance(event, DeadLetterReason):
                self._dead_letter(source, raw, event)
                continue
            self.result.events += 1
            if event.type == "contract.upserted":
                self._configure(event, raw, source)
                continue
            parked = parking.parked
            self._apply(event, raw, source, bound)
            if parking.parked != parked:
                sources[id(event)] = (raw, source)
        end = until if until is not None else self.processor.now
        if end is not None:
            self._add(self.processor.advance_to(end))
        # the batch is over: what is still parked waits for an entity that will not come
        for key, event in parking.drain():
            raw, source = sources.get(id(event), (b"", f"parked:{event.event_id}"))
            self._dead_letter(source, raw, DeadLetterReason("orphan", parking.orphan_message(key, event)),
                              event.occurred_at)
        undated, self._undated = self._undated, []
        for source, raw, reason in undated:
            self._dead_letter(source, raw, reason, self.processor.now or EPOCH)
        return self.result


def _quick_key(raw: bytes) -> tuple[bool, datetime, str] | None:
    """(not a contract, occurred_at in UTC, event_id) of a line by a plain JSON parse, None when
    not plainly there."""
    try:
        obj = from_json(raw)
        at = datetime.fromisoformat(obj["occurred_at"])
        event_id = obj["event_id"]
        if at.tzinfo is None or type(event_id) is not str or type(obj.get("type")) is not str:
            return None
        return obj["type"] != "contract.upserted", at.astimezone(timezone.utc), event_id
    except Exception:  # not plainly there (or out of range): the full decode says why
        return None


def replay_file(events: Path, contracts: Path, until: datetime | None, out: BinaryIO,
                progress: TextIO | None = sys.stderr, settings: Settings = Settings(),
                bound: datetime | None = None, catalog: Catalog | None = None) -> ReplayResult:
    """Replay `events` under `contracts` and write the derived events to `out` as JSON lines.

    `bound` (SPEC §10): events after it are `future_timestamp` dead letters; default `until`.
    The CLI passes the wall clock + max_future when there is no `--until`. `catalog`: default the
    packaged one."""
    catalog = catalog or default_catalog()
    loaded = load_contracts_yaml(contracts, catalog)
    for warning in contract_warnings(c.terms for c in loaded):  # shown even with -q: not progress
        sys.stderr.write(f"slaproc replay: warning: {warning}\n")
    replayer = Replayer(loaded, catalog, settings)
    name = events.name
    started = last = time.monotonic()
    size = events.stat().st_size
    with events.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            replayer.feed_line(raw, name, lineno)
            if progress is not None and lineno % 50_000 == 0 and time.monotonic() - last > 2:
                last = time.monotonic()
                rate = lineno / (last - started)
                progress.write(f"replay: {lineno:,} lines ({fh.tell() * 100 // max(size, 1)} %), {rate:,.0f} lines/s\n")
                progress.flush()
    result = replayer.finish(until, bound)
    for line in result.sorted_lines():
        out.write(line)
        out.write(b"\n")
    out.flush()
    if progress is not None and result.lines >= 50_000:
        progress.write(f"replay: done, {result.lines:,} lines, {result.dead_letters:,} dead letters, "
                       f"{len(result.records):,} outputs in {time.monotonic() - started:.1f} s\n")
    return result
