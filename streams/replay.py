"""`slaproc replay`: the core over a JSON-lines file, no broker (SPEC §9, §10).

A file is a batch: its lines are decoded, then the events are applied sorted by
(`occurred_at`, `event_id`) — stable, so equal keys keep their file order — whatever
order the file has. `contract.upserted` lines come first (in that order among
themselves) and move no time: contracts are configuration, installed as the stream's
contracts agent installs them from their own topic, whatever their timestamps say
(a contract recorded today for a backfill of last month still applies to last month:
terms start at their `effective_from`, undated ones at the file's first instant, never at
the line's record time; docs/decisions.md, "Contract history"). Events after the bound
(`--until`, else the wall clock + `max_future`, read by the CLI) are `future_timestamp`
dead letters. Time then advances to `--until` (or to the latest event applied). The
derived events are written ordered by `occurred_at`, then by key, then in the order they were derived —
byte-identical across runs. An exception on one event is a dead letter (`rejected`),
never the end of the run.
"""
from __future__ import annotations

import gc
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, TextIO

from pydantic_core import from_json

from events.codec import (DeadLetterReason, decode, decode_one_pass, dead_letter_event, one_pass_validator,
                          encode)
from policies.catalog import Catalog, default_catalog
from policies.contracts import (Contract, ContractError, contract_from_event, contract_warnings,
                                load_contracts_yaml)
from policies.outputs import Output, Rejected
from policies import uptime
from policies.downtime import MONITORING_TYPES
from policies.processor import TICKET_TYPES, Processor, Settings
from streams.wire import to_bytes

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
UTC = timezone.utc
_fromisoformat = datetime.fromisoformat


@dataclass
class ReplayResult:
    """Encoded outputs with their sort keys, and counters for the summary line."""

    records: list[tuple[datetime, str, int, bytes]] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    dead_letters: int = 0
    jobs: int = 1  # processes that replayed the file (`replay_file(jobs=N)` may fall back to one)
    jobs_cpu: tuple[float, ...] = ()  # CPU seconds of each of those processes (benchmarks)
    # lines beyond the time bound (`future_timestamp`): how many, and the first sources (`name:lineno`),
    # for the tools that print no output events (report, explain-month) to name them on stderr
    future_lines: int = 0
    future_sources: list[str] = field(default_factory=list)

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
        self._pending: list[tuple[Any, ...]] = []
        self._undated: list[tuple[str, bytes, DeadLetterReason, int]] = []
        self._job: _Job | None = None  # one of `replay_file(jobs=N)`'s processes (see `_run_job`)
        self._seq = 0  # added to each record's index: the rank of the line being applied, shifted (jobs)
        self._batched = False  # `finish` has run: a second batch keeps every content digest

    def _add(self, outputs: list[Output]) -> None:
        records = self.result.records
        if self._job is not None:
            outputs = self._job.keep(outputs, records)
        seq = self._seq
        for out in outputs:
            records.append((out.occurred_at, out.key, seq | len(records), to_bytes(out)))

    def _dead_letter(self, source: str, raw: bytes, reason: DeadLetterReason, at: datetime | None = None) -> None:
        """`at`: the rejected event's own time (a line that did not decode: the time replay reached)."""
        if at is None:
            self._undated.append((source, raw, reason, self._undated_seq()))
            return
        event = dead_letter_event(source, raw, reason, at)
        records = self.result.records
        if self._job is not None and not self._job.keep_dead_letter(records, self._seq):
            return
        records.append((at, "", self._seq | len(records), encode(event)))
        self.result.dead_letters += 1
        if reason.code == "future_timestamp":
            self.result.future_lines += 1
            if len(self.result.future_sources) < 5:
                self.result.future_sources.append(source)

    def feed_file(self, events: Path, progress: Callable[[int, int], None] | None = None,
                  every: int = 50_000) -> None:
        """`feed_line` for every non-blank line of `events` (line ends stripped, source
        `name:lineno`). `progress(lines read, percent of the file)` every `every` lines, at most
        once per 2 s (long files: the reader is told the run is alive)."""
        name = events.name
        size = max(events.stat().st_size, 1)
        last = time.monotonic()
        with events.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                self.feed_line(raw, name, lineno)
                if progress is not None and lineno % every == 0 and time.monotonic() - last > 2:
                    last = time.monotonic()
                    progress(lineno, fh.tell() * 100 // size)

    def feed_line(self, raw: bytes, source: str, lineno: int | None = None) -> None:
        """Read one line's sort key; the line waits for `finish` (a file is a batch, applied sorted).

        Only the raw bytes and the key are kept (a decoded event is ~1 KB, a line ~200 bytes); the
        line is decoded in `finish`. The key comes from a plain JSON parse when the line has a
        plain RFC 3339 `occurred_at` and a string `event_id`, else from a full decode (which also
        dead-letters a bad line here). With `lineno`, `source` is the file's name and the line's
        source (`name:lineno`) is only built when a dead letter needs it.

        A pending line is one flat tuple (not a contract, occurred_at, event_id, arrival, one-pass
        validator or None, raw, source, lineno), sorted as it is: `arrival` is unique, so equal keys
        keep file order and the validator and raw bytes are never compared."""
        self.result.lines += 1
        # `_quick_key`, inline (once per line): a plain JSON parse for the key
        # The parse refuses NaN and Infinity as the full decode's does, so it also tells whether the line
        # can be decoded in one pass in `finish` (`one_pass_validator`: the validator, kept with the line).
        key: tuple[bool, datetime, str] | None
        validator = None
        try:
            try:
                obj = from_json(raw, allow_inf_nan=False)
                strict = True
            except ValueError:  # not JSON, or NaN / Infinity somewhere: the key as before, the full decode
                obj = from_json(raw)
                strict = False
            at = _fromisoformat(obj["occurred_at"])
            event_id = obj["event_id"]
            event_type = obj.get("type")
            if at.tzinfo is None or type(event_id) is not str or type(event_type) is not str:
                key = None
            else:
                key = (event_type != "contract.upserted", at if at.tzinfo is UTC else at.astimezone(UTC), event_id)
                if strict:
                    validator = one_pass_validator(raw, obj)
        except Exception:  # not plainly there (or out of range): the full decode says why
            key = None
        if key is None:
            decoded = decode(raw, source if lineno is None else f"{source}:{lineno}")
            if isinstance(decoded, DeadLetterReason):
                self._dead_letter(source if lineno is None else f"{source}:{lineno}", raw, decoded)
                return
            key = (decoded.type != "contract.upserted", decoded.occurred_at, decoded.event_id)
        pending = self._pending
        pending.append((key[0], key[1], key[2], len(pending), validator, raw, source, lineno))

    def _apply(self, event: Any, raw: bytes, source: str, bound: datetime | None) -> None:
        try:
            outputs, rejected = self.processor.apply(event, not_after=bound)
        except Exception as exc:  # a bug must not end the run: the event is a dead letter, the rest goes on
            outputs, rejected = [], Rejected("rejected", f"{type(exc).__name__}: {exc}")
        self._add(outputs)
        if rejected is not None:
            # at the event's own time (order-independent); beyond the bound, at the time reached (it
            # moves nothing; the bound may be the wall clock, which must not show in the output)
            at = (self._reached() or EPOCH) if rejected.reason == "future_timestamp" else event.occurred_at
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
        job = self._job
        pending, self._pending = self._pending, []
        engine = self.processor.tickets
        if job is None and not self._batched:
            # The batch is the whole input of this processor: an event id read once cannot come
            # again, so only the repeated ones keep a content digest (`TicketEngine.repeated_ids`).
            engine.repeated_ids = _repeated(line[2] for line in pending)
        self._batched = True
        pending.sort()
        pending.reverse()  # popped from the end: a line's bytes are freed once it is applied
        sources: dict[int, tuple[bytes, str]] = {}  # parked events -> their line (for an orphan dead letter)
        parking = self.processor.parking
        pop = pending.pop
        records = self.result.records
        apply = self.processor.apply
        result = self.result
        while pending:
            line = pop()
            raw, name, lineno = line[-3:]
            # the line's source (`name:lineno`) is built where a dead letter or parking needs it
            source = name if lineno is None else None
            if job is not None:
                self._seq = line[0] << 32  # the line's rank in the whole file
            # `decode`, its common case (once per line): a plain line in one pass (`feed_line` found
            # its validator), in range
            event = None
            validator = line[-4] if job is None else None
            if validator is not None:
                try:
                    event = decode_one_pass(raw, validator)
                except Exception:  # `decode` catches it again and names it
                    event = None
            if event is None:
                source = f"{name}:{lineno}" if source is None else source
                event = decode(raw, source)
            if isinstance(event, DeadLetterReason):
                self._dead_letter(source, raw, event)
                continue
            result.events += 1
            if job is None and event.type != "contract.upserted":
                # `_apply` and `_add`, inline (once per event; the jobs' path below keeps them)
                parked = parking.parked
                try:
                    outputs, rejected = apply(event, not_after=bound)
                except Exception as exc:  # a bug must not end the run: the event is a dead letter
                    outputs, rejected = [], Rejected("rejected", f"{type(exc).__name__}: {exc}")
                for out in outputs:
                    records.append((out.occurred_at, out.key, len(records), to_bytes(out)))
                if rejected is not None:
                    at = (self._reached() or EPOCH) if rejected.reason == "future_timestamp" else event.occurred_at
                    self._dead_letter(f"{name}:{lineno}" if source is None else source, raw,
                                      DeadLetterReason(rejected.reason, rejected.message), at)
                if parking.parked != parked:
                    sources[id(event)] = (raw, f"{name}:{lineno}" if source is None else source)
                continue
            source = f"{name}:{lineno}" if source is None else source
            if event.type == "contract.upserted":
                if job is not None:
                    job.in_contract = True  # every job applies it: its dead letter is written once
                self._configure(event, raw, source)
                if job is not None:
                    job.in_contract = False
                continue
            if job is not None:
                job.before(self.processor, event, bound)
            parked = parking.parked
            self._apply(event, raw, source, bound)
            if parking.parked != parked:
                sources[id(event)] = (raw, source)
            if job is not None:
                job.after(self.processor, event)
        # Events applied after the batch (none here: every caller replays one batch) keep their
        # content digests; one reusing an id the batch read once is ignored as a duplicate, whatever
        # its content (the batch's event has no content digest to compare).
        engine.repeated_ids = None
        if job is not None:
            job.synchronise(self.processor)
            job.finish(self.processor)
            self._seq = (job.lines + 1) << 32
        end = until if until is not None else self._reached()
        if end is not None:
            self._add(self.processor.advance_to(end))
        if job is not None:
            self._seq = (job.lines + 2) << 32
        # the batch is over: what is still parked waits for an entity (or a contract) that will not come
        for key, event in parking.drain():
            raw, source = sources.get(id(event), (b"", f"parked:{event.event_id}"))
            self._dead_letter(source, raw, DeadLetterReason(parking.reason_of(key), parking.expiry_message(key, event)),
                              event.occurred_at)
        undated, self._undated = self._undated, []
        for source, raw, reason, seq in undated:
            if job is not None:
                self._seq = seq
            self._dead_letter(source, raw, reason, self.processor.now or EPOCH)
        return self.result

    def _undated_seq(self) -> int:
        """Jobs: where `--jobs 1` writes a line that fails to decode while applied (last, at the time
        reached, after the lines that failed when read: `_run_job`), in the order applied."""
        job = self._job
        return 0 if job is None else (job.lines + 3 + (1 << 40) + (self._seq >> 32)) << 32

    def _reached(self) -> datetime | None:
        """The time the replay has reached (of the whole file when this is one of several jobs)."""
        if self._job is not None and self._job.reached is not None:
            return self._job.reached
        return self.processor.now


def _repeated(ids: Iterable[str]) -> set[str]:
    """The ids that occur more than once. A set of every id while it runs (references to the pending
    lines' strings: ~32 MB for a million lines), ~200 instructions an id where sorting them took ~2,500."""
    seen: set[str] = set()
    add = seen.add
    return {i for i in ids if i in seen or add(i)}


def future_summary(result: ReplayResult, bound: datetime | None) -> str | None:
    """One line naming the lines beyond `bound` (SPEC §10: `future_timestamp` dead letters), for a
    tool whose output is not the dead letters themselves (report, explain-month); None when none."""
    if not result.future_lines:
        return None
    n = result.future_lines
    named = ", ".join(result.future_sources) + (", ..." if n > len(result.future_sources) else "")
    after = f" after {bound.isoformat(timespec='seconds')}" if bound is not None else ""
    return (f"{n} line{'s' if n != 1 else ''}{after} {'are' if n != 1 else 'is a'} dead letter{'s' if n != 1 else ''} "
            f"(future_timestamp), not counted: {named}")


def _quick_key(raw: bytes, fields: dict[str, Any] | None = None) -> tuple[bool, datetime, str] | None:
    """(not a contract, occurred_at in UTC, event_id) of a line by a plain JSON parse, None when
    not plainly there. `fields`: the parsed object is put in it (`--jobs` routes by it)."""
    try:
        obj = from_json(raw)
        if fields is not None and isinstance(obj, dict):
            fields.update(obj)
        at = datetime.fromisoformat(obj["occurred_at"])
        event_id = obj["event_id"]
        if at.tzinfo is None or type(event_id) is not str or type(obj.get("type")) is not str:
            return None
        return obj["type"] != "contract.upserted", at.astimezone(timezone.utc), event_id
    except Exception:  # not plainly there (or out of range): the full decode says why
        return None


def replay_file(events: Path, contracts: Path, until: datetime | None, out: BinaryIO,
                progress: TextIO | None = sys.stderr, settings: Settings = Settings(),
                bound: datetime | None = None, catalog: Catalog | None = None, jobs: int = 1) -> ReplayResult:
    """Replay `events` under `contracts` and write the derived events to `out` as JSON lines.

    `bound` (SPEC §10): events after it are `future_timestamp` dead letters; default `until`.
    The CLI passes the wall clock + max_future when there is no `--until`. `catalog`: default the
    packaged one. `jobs` > 1: the file split by customer across that many processes, the same
    output (see `_Job`)."""
    catalog = catalog or default_catalog()
    loaded = load_contracts_yaml(contracts, catalog)
    for warning in contract_warnings(c.terms for c in loaded):  # shown even with -q: not progress
        sys.stderr.write(f"slaproc replay: warning: {warning}\n")
    started = time.monotonic()
    if jobs > 1:
        done = _replay_jobs(events, loaded, catalog, until, bound if bound is not None else until, settings, jobs)
        if done is not None:
            return _write(out, done[0], done[1], progress, started, f" ({jobs} jobs)")
        if progress is not None:
            progress.write("replay: --jobs: the customers' outcomes depend on each other's time here "
                           "(an event left parked, or the first month); replaying in one process\n")
    replayer = Replayer(loaded, catalog, settings)

    def report(lines: int, percent: int) -> None:
        assert progress is not None
        rate = lines / (time.monotonic() - started)
        progress.write(f"replay: {lines:,} lines ({percent} %), {rate:,.0f} lines/s\n")
        progress.flush()
    replayer.feed_file(events, report if progress is not None else None)
    result = replayer.finish(until, bound)
    return _write(out, result.sorted_lines(), result, progress, started, "")


def _write(out: BinaryIO, lines: list[bytes], result: ReplayResult, progress: TextIO | None, started: float,
           how: str) -> ReplayResult:
    for line in lines:
        out.write(line)
        out.write(b"\n")
    out.flush()
    if progress is not None and result.lines >= 50_000:
        progress.write(f"replay: done, {result.lines:,} lines, {result.dead_letters:,} dead letters, "
                       f"{len(lines):,} outputs in {time.monotonic() - started:.1f} s{how}\n")
    return result


# --------------------------------------------------------------------------- --jobs N
#
# The file is split by customer: a ticket's lines go with the customer of its `ticket.opened`, a
# service's monitoring lines with the customer owning the service, contract lines to every job
# (each job knows every contract, so ownership checks are the same; a job writes only the outputs
# of its own customers, and a contract line's dead letter only in job 0). The parent reads every
# line once for its sort key and its customer, ranks the lines in the order `--jobs 1` applies
# them, and each job applies its lines in that order. Each output record is sorted by
# (occurred_at, key, rank of the line that derived it, index), so the merged file is `--jobs 1`'s.
#
# What couples customers is the processor's time, which `--jobs 1` moves with every customer's
# events: the jobs agree on it where an output shows it (the first instant, which starts the
# contracts' months; the time reached, which dates `future_timestamp` dead letters and is the end
# without `--until`). Where the outcome could still differ — an event taken out of parking (in
# one process it may have expired first), or two dead letters of different jobs at the same
# instant not ordered by their lines — the parent replays the file in one process instead.


class _CustomerGroups:
    """Customers joined by the services they share (union-find); a group is named by its least
    customer id, so the split does not depend on the order the contracts were read in."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}
        self._first_subscriber: dict[str, str] = {}

    def group_of(self, customer: str) -> str:
        parent = self._parent
        root = customer
        while parent.get(root, root) != root:
            root = parent[root]
        while customer != root:  # path compression
            parent[customer], customer = root, parent.get(customer, customer)
        return root

    def subscribe(self, service_id: str, customer: str) -> None:
        first = self._first_subscriber.setdefault(service_id, customer)
        a, b = self.group_of(first), self.group_of(customer)
        if a != b:
            low, high = (a, b) if a < b else (b, a)
            self._parent[high] = low
        self._parent.setdefault(customer, customer)

    def owner_of_service(self, service_id: str) -> str | None:
        first = self._first_subscriber.get(service_id)
        return None if first is None else self.group_of(first)

    def members(self) -> list[tuple[str, str]]:
        return [(customer, self.group_of(customer)) for customer in list(self._parent)]


class _Job:
    """One job's side of `replay_file(jobs=N)`: the agreements with the parent, the output filter."""

    def __init__(self, index: int, lines: int, owners: dict[str, int], start: datetime | None, conn: Any):
        self.index = index
        self.lines = lines                  # lines of the whole file (the ranks are below it)
        self.owners = owners                # customer_id -> job
        self.start = start                  # the first instant `--jobs 1` would see (see `before`)
        self.conn = conn
        self.reached: datetime | None = None
        self.synchronised = False
        self.first_move: datetime | None = None
        self.in_contract = False
        self.unranked: list[int] = []       # records whose order is not the order of their lines
        self.unparked = False

    def keep(self, outputs: list[Output], records: list) -> list[Output]:
        kept = []
        for out in outputs:
            customer = out.fields.get("customer_id") if out.key else None
            if customer is not None and self.owners.get(customer, 0) != self.index:
                continue  # another job's customer (this job closes every customer's months)
            if customer is None and self.in_contract and self.index != 0:
                continue
            if not out.key:
                self.unranked.append(len(records) + len(kept))
            kept.append(out)
        return kept

    def keep_dead_letter(self, records: list, seq: int) -> bool:
        if self.in_contract and self.index != 0:
            return False
        if (self.lines + 1) << 32 <= seq < (self.lines + 3) << 32:  # the orphans left parked at the end
            self.unranked.append(len(records))
        return True

    def before(self, processor: Processor, event: Any, bound: datetime | None) -> None:
        if processor.now is None and self.start is not None:
            processor._first_instant(self.start)  # contracts start at the file's first instant, not this job's
        if bound is not None and event.occurred_at > bound:
            self.synchronise(processor)

    def after(self, processor: Processor, event: Any) -> None:
        if self.first_move is None and processor.now is not None:
            self.first_move = processor.now

    def synchronise(self, processor: Processor) -> None:
        """Once, when the lines within the bound are applied: the time every job reached, the latest."""
        if not self.synchronised:
            self.synchronised = True
            self.conn.send(processor.now)
            self.reached = self.conn.recv()

    def finish(self, processor: Processor) -> None:
        parking = processor.parking
        waiting = sum(len(events) for events in parking.events.values())
        # an expired orphan applied after all (`Parking.remembered`) was taken out of parking too
        self.unparked = parking.parked - parking.expired - waiting > 0 or parking.recalled > 0


def _run_job(index: int, lines: list[tuple[int, bytes, int]], unreadable: list[tuple[int, bytes]], total: int,
             name: str, contracts: list[Contract], catalog: Catalog, settings: Settings, until: datetime | None,
             bound: datetime | None, owners: dict[str, int], start: datetime | None, conn: Any) -> None:
    """A job's process: its lines (rank, raw, line number) applied in rank order; the records back."""
    replayer = Replayer(contracts, catalog, settings)
    job = replayer._job = _Job(index, total, owners, start, conn)
    replayer._pending = [(rank, raw, name, lineno) for rank, raw, lineno in lines]
    replayer.result.lines = len(lines) + len(unreadable)
    for lineno, raw in unreadable:  # job 0: the lines that do not decode, in file order, written first of the last
        source = f"{name}:{lineno}"
        reason = decode(raw, source)
        assert isinstance(reason, DeadLetterReason)
        replayer._undated.append((source, raw, reason, (total + 3 + lineno) << 32))
    result = replayer.finish(until, bound)
    conn.send((result.records, job.unranked, job.unparked, job.first_move, result.events, result.dead_letters,
               time.process_time()))
    conn.close()


def _facts(raw: bytes) -> tuple[tuple[bool, datetime, str] | None, dict[str, Any], bool]:
    """A line's sort key as `feed_line` reads it (None: it is dead-lettered when read), its routing
    fields, and whether every job applies it (a contract line that decodes)."""
    fields: dict[str, Any] = {}
    key = _quick_key(raw, fields)
    if key is not None:
        if key[0]:
            return key, fields, False
        event = decode(raw)  # a contract line: every job gets it if it decodes, else job 0 (its dead letter)
        return key, fields, not isinstance(event, DeadLetterReason)
    event = decode(raw)
    if isinstance(event, DeadLetterReason):
        return None, {}, False
    key = (event.type != "contract.upserted", event.occurred_at, event.event_id)
    return key, event.__dict__, not key[0]


def _replay_jobs(events: Path, contracts: list[Contract], catalog: Catalog, until: datetime | None,
                 bound: datetime | None, settings: Settings, jobs: int
                 ) -> tuple[list[bytes], ReplayResult] | None:
    """The sorted output lines of the file replayed by `jobs` processes, or None where one process must
    replay it (see the note above `_Job`)."""
    import multiprocessing

    name = events.name
    keyed: list[tuple[tuple[bool, datetime, str, int], bytes, dict[str, Any]]] = []
    everywhere: set[int] = set()  # line numbers of the contract lines every job applies
    unreadable: list[tuple[int, bytes]] = []
    with events.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            key, fields, every_job = _facts(raw)
            if key is None:
                unreadable.append((lineno, raw))
                continue
            keyed.append(((*key, lineno), raw, fields))
            if every_job:
                everywhere.add(lineno)
    keyed.sort(key=lambda k: k[0])
    total = len(keyed)
    # Who owns what: services from the contracts (file, then contract lines), tickets from their
    # first ticket.opened; a customer's lines all go to one job. Customers that list the same service
    # (SPEC §11, shared services) are one group, owned by one job: a service's monitoring lines go to
    # that job, whose ledger then closes every subscriber's months (split, a subscriber in another
    # job closed its months from an empty ledger: 0 min and no refund).
    groups = _CustomerGroups()
    for c in contracts:
        for svc in c.services:
            groups.subscribe(svc.service_id, c.customer_id)
    for key, _raw, fields in keyed:
        if not key[0] and isinstance(fields.get("customer_id"), str):
            for svc in fields.get("services") or ():
                sid = svc.get("service_id") if isinstance(svc, dict) else getattr(svc, "service_id", None)
                if isinstance(sid, str):
                    groups.subscribe(sid, fields["customer_id"])
    ticket_owner: dict[str, str] = {}
    customer_of: list[str | None] = []
    for key, _raw, fields in keyed:
        customer = None
        if not key[0]:
            pass
        elif fields.get("type") in MONITORING_TYPES and isinstance(fields.get("service_id"), str):
            customer = groups.owner_of_service(fields["service_id"])
        elif fields.get("type") in TICKET_TYPES and isinstance(fields.get("ticket_id"), str):
            ticket = fields["ticket_id"]
            if fields.get("type") == "ticket.opened" and isinstance(fields.get("customer_id"), str):
                ticket_owner.setdefault(ticket, groups.group_of(fields["customer_id"]))
        customer_of.append(customer)
    load: dict[str, int] = {}
    for i, (key, _raw, fields) in enumerate(keyed):
        if customer_of[i] is None and fields.get("type") in TICKET_TYPES and isinstance(fields.get("ticket_id"), str):
            customer_of[i] = ticket_owner.get(fields["ticket_id"], "\x00ticket:" + fields["ticket_id"])
        if customer_of[i] is not None:
            load[customer_of[i]] = load.get(customer_of[i], 0) + 1
    for c in contracts:
        load.setdefault(groups.group_of(c.customer_id), 0)
    owners: dict[str, int] = {}
    sizes = [0] * jobs
    for customer, count in sorted(load.items(), key=lambda kv: (-kv[1], kv[0])):  # largest first, least loaded job
        job = min(range(jobs), key=lambda j: (sizes[j], j))
        owners[customer] = job
        sizes[job] += count
    for customer, group in groups.members():  # every member of a group where the group is
        if group in owners:
            owners[customer] = owners[group]
    per_job: list[list[tuple[int, bytes, int]]] = [[] for _ in range(jobs)]
    for rank, (key, raw, _fields) in enumerate(keyed):
        if key[3] in everywhere:
            for lines in per_job:
                lines.append((rank, raw, key[3]))
        else:
            per_job[owners.get(customer_of[rank], 0) if customer_of[rank] is not None else 0].append((rank, raw, key[3]))
    start = next((k[1] for k, _r, _f in keyed if k[0] and (bound is None or k[1] <= bound)), None)
    contract_count = len(everywhere)  # every job counts them
    del keyed, customer_of

    context = multiprocessing.get_context("fork")  # the lines and contracts are inherited, not copied
    gc.freeze()  # ... and the jobs' collector leaves them alone (no scan, no copy-on-write of their pages)
    pipes, processes = [], []
    for index in range(jobs):
        parent, child = context.Pipe()
        process = context.Process(target=_run_job, daemon=True, args=(
            index, per_job[index], unreadable if index == 0 else [], total, name, contracts, catalog, settings,
            until, bound, owners, start, child))
        process.start()
        child.close()
        pipes.append(parent)
        processes.append(process)
    del per_job
    try:
        reached = [conn.recv() for conn in pipes]
        known = [t for t in reached if t is not None]
        for conn in pipes:
            conn.send(max(known) if known else None)
        results = [conn.recv() for conn in pipes]
    except (EOFError, OSError):  # a job died (its error is on stderr): the file is replayed in one process
        for process in processes:
            process.kill()
        return None
    finally:
        for process in processes:
            process.join()
        gc.unfreeze()
    first = [r[3] for r in results if r[3] is not None]
    if any(r[2] for r in results):
        return None  # an event taken out of parking: in one process it might have expired first
    if start is not None and (not first or uptime.month_of(min(first)) != uptime.month_of(start)):
        return None  # the contracts' first month would differ
    merged = [(r[0], r[1], r[2], index, n) for index, result in enumerate(results) for n, r in enumerate(result[0])]
    merged.sort(key=lambda m: (m[0], m[1], m[2]))
    unranked = {(index, n) for index, result in enumerate(results) for n in result[1]}
    for a, b in zip(merged, merged[1:]):
        if a[3] != b[3] and a[0] == b[0] and a[1] == b[1] and ((a[3], a[4]) in unranked or (b[3], b[4]) in unranked):
            return None  # same instant and key, from two jobs, not ordered by their lines
    summary = ReplayResult(lines=total + len(unreadable), dead_letters=sum(r[5] for r in results),
                           events=sum(r[4] for r in results) - (jobs - 1) * contract_count, jobs=jobs,
                           jobs_cpu=tuple(r[6] for r in results))
    return [results[m[3]][0][m[4]][3] for m in merged], summary
