"""State store for one partition's Processor, backed by Faust tables (or plain dicts).

The core's `Store` port (docs/design.md): ticket state by ticket_id, service state by
service_id, and a due-index `schedule(key, wake)` / `pop_due(t)`. Values are the
core's compact JSON strings (`to_json()`); objects with a `to_json()` method are
accepted and stored as that string.

Why explicit partitions: Faust's `table[key] = v` picks the changelog partition from
the *current event*, which is wrong when a partition's Processor writes while the
event in context belongs to another topic-partition (a contract update fanned out to
every processor, a tick). `FaustTableBackend` writes the local store and sends the
changelog record to the partition the Processor owns, always.

Due-index decision (docs/stream.md): persisted, one changelog record per key
(`due` table: key -> "<partition>|<wake ISO>"), and an in-memory heap per partition
rebuilt from that table when the partition's Processor is created (after Faust's
table recovery). A tick then costs O(due · log n), moving a wake is one record, and
the index needs no knowledge of the core's state format. Minute buckets were
rejected: a bucket value grows with every ticket due that minute and must be
rewritten whole on each change.
"""

from __future__ import annotations

import functools
import heapq
import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, Protocol

__all__ = [
    "DueIndex", "TableBackend", "DictTableBackend", "FaustTableBackend",
    "PartitionStore", "STATE_TABLES", "WAL_PREFIX", "entity_key", "meta_key",
]

#: Faust table names (also the changelog topic suffixes).
STATE_TABLES = ("tickets", "services", "misc", "due")

#: Keys of the `misc` table (`PartitionStore`; the query API's snapshot reads them too):
#: write-ahead chunks `wal<US><partition><US><i>`, other entity kinds `<kind><US><key>`, a
#: partition's own values `meta<US><partition><US><name>` (US: the ASCII unit separator).
WAL_PREFIX = "wal\x1f"


def entity_key(kind: str, key: str) -> str:
    return f"{kind}\x1f{key}"


def meta_key(partition: int, name: str) -> str:
    return f"meta\x1f{partition}\x1f{name}"


class DueIndex:
    """Min-heap of (wake, key) with lazy deletion; one wake per key. Not persisted itself."""

    __slots__ = ("_wake", "_heap")

    def __init__(self) -> None:
        self._wake: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []

    def __len__(self) -> int:
        return len(self._wake)

    def get(self, key: str) -> datetime | None:
        return self._wake.get(key)

    def keys(self) -> list[str]:
        """The keys with a wake, sorted."""
        return sorted(self._wake)

    def schedule(self, key: str, wake: datetime | None) -> None:
        """Set (or with None clear) the key's next wake."""
        if wake is None:
            self._wake.pop(key, None)
        else:
            self._wake[key] = wake
            heapq.heappush(self._heap, (wake, key))
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._wake):
            self._heap = [(w, k) for k, w in self._wake.items()]  # drop stale entries
            heapq.heapify(self._heap)

    def _drop_stale_top(self) -> None:
        heap, wake = self._heap, self._wake
        while heap and wake.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)

    def next_wake(self) -> datetime | None:
        self._drop_stale_top()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, t: datetime) -> list[str]:
        """Remove and return the keys with wake <= t, in (wake, key) order."""
        due = []
        heap, wake = self._heap, self._wake
        while heap and heap[0][0] <= t:
            w, key = heapq.heappop(heap)
            if wake.get(key) == w:
                del wake[key]
                due.append(key)
        return due


class TableBackend(Protocol):
    """Key-value tables whose writes name the partition that owns them."""

    def get(self, table: str, key: str) -> str | None: ...
    def set(self, table: str, partition: int, key: str, value: str | None) -> None: ...
    def items(self, table: str) -> Iterator[tuple[str, str]]: ...


class DictTableBackend:
    """In-memory backend (tests, and anything that needs no changelog)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, str]] = {name: {} for name in STATE_TABLES}
        self.writes: list[tuple[str, int, str, str | None]] = []  # (table, partition, key, value)

    def get(self, table: str, key: str) -> str | None:
        return self.tables[table].get(key)

    def set(self, table: str, partition: int, key: str, value: str | None) -> None:
        self.writes.append((table, partition, key, value))
        if value is None:
            self.tables[table].pop(key, None)
        else:
            self.tables[table][key] = value

    def items(self, table: str) -> Iterator[tuple[str, str]]:
        return iter(list(self.tables[table].items()))


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


class FaustTableBackend:
    """Faust tables (key str, value raw UTF-8 bytes on the changelog).

    Reads bypass Faust's `__getitem__` (no defaults, no sensors); writes update the local
    store at once and queue the changelog record for the partition given, so they work outside
    stream iteration too. `send_queued()` (async, the shell) hands the queued records to the
    producer and returns their delivery futures: the shell awaits them before the input events
    that caused the writes can be acknowledged.

    Records go to the producer directly (`app.producer.send`), not through Faust's
    `send_changelog`: that path's buffer flush gives up after 0.1 s without sending
    (`ProducerBuffer.flush_atmost`; offsets were committed while changelog records were still
    in the buffer, and a `kill -9` lost the state), and its per-record machinery was the
    largest share of the worker's CPU (docs/benchmarks.md). Keys are JSON, as Faust's recovery
    expects for str keys (the tables' key serializer).
    """

    def __init__(self, tables: Mapping[str, Any], producer: Callable[[], Any] | None = None) -> None:
        self.tables = dict(tables)
        self._producer = producer
        self._queued: list[tuple[Any, str, bytes | None, int]] = []

    def get(self, table: str, key: str) -> str | None:
        value = self.tables[table].data.get(key)
        return None if value is None else _text(value)

    def set(self, table: str, partition: int, key: str, value: str | None) -> None:
        t = self.tables[table]
        if value is None:
            if key in t.data:
                del t.data[key]
            self._queued.append((t, key, None, partition))
        else:
            encoded = value.encode("utf-8")
            t.data[key] = encoded  # same type as what changelog recovery puts there
            self._queued.append((t, key, encoded, partition))

    async def send_queued(self) -> list[Any]:
        """Send the queued changelog records; their delivery futures (awaitable), in order."""
        queued, self._queued = self._queued, []
        if not queued:
            return []
        producer = self._producer() if self._producer is not None else None
        futures = []
        for t, key, value, partition in queued:
            if producer is None:  # no app producer (tests): Faust's own path
                futures.append(t.send_changelog(partition, key, value, value_serializer="raw"))
                continue
            # The key as JSON: what Faust's recovery decodes for a str-keyed table (its codec's
            # own encoding differs at most in escapes, which decode to the same str).
            future = await producer.send(t.changelog_topic.get_topic_name(), json.dumps(key).encode(),
                                         value, partition, None, None)
            # A persisted table (streams/state_dir.py) keeps a record once the broker has it, not before.
            acknowledged = getattr(t.data, "changelog_acknowledged", None)
            if acknowledged is not None:
                future.add_done_callback(functools.partial(acknowledged, partition, key, value))
            futures.append(future)
        return futures

    def items(self, table: str) -> Iterator[tuple[str, str]]:
        return ((k, _text(v)) for k, v in list(self.tables[table].data.items()) if v is not None)


_ABSENT = object()


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat()


class PartitionStore:
    """The core's Store port for one partition.

    Entity keys (ticket_id, service_id) are globally unique, so they are stored as is;
    the partition only routes the changelog. `meta` values are per partition.
    Unchanged values are not rewritten (no changelog record for a no-op put).

    Writes are staged (reads see them) and reach the tables only through `commit()` (or the
    shell's two-phase `write_ahead()` / `apply_staged()`), atomically: one unit of work
    changes several keys on several changelog topics (ticket states, due index, the
    processor's meta), and a crash between their acknowledgements used to leave some keys
    new and some old (replayed events were then de-duplicated by a new ticket state while
    the old meta never counted them). So all the staged writes first go out as one
    write-ahead record (chunked under `wal` keys of the `misc` table, same changelog
    partition), and only once the broker has it, the individual keys. A new store (after a
    restart or a rebalance) re-applies the newest *complete* write-ahead record: the
    individual writes of a unit may have been lost, its write-ahead record cannot have
    been (the shell acknowledges input only after it). An incomplete record is the unit
    that did not commit; the unit before it had all its keys acknowledged before that
    record was started (the shell waits for them), so nothing needs redoing.
    """

    #: Write-ahead chunk size in characters (ASCII JSON): below Kafka's 1 MB default message size.
    WAL_CHUNK = 256 * 1024

    def __init__(self, backend: TableBackend, partition: int, *,
                 loaders: Mapping[str, Callable[[str], Any]] | None = None) -> None:
        self.backend = backend
        self.partition = partition
        self.loaders = dict(loaders or {})  # kind -> from_json, to hand back objects
        self._staged: dict[tuple[str, str], str | None] = {}
        self._wal_seq = 0
        self._wal_chunks = 0  # chunks of the newest write-ahead record
        self._wal_stale = 0  # chunk keys beyond it still holding an older record
        self.recovered_writes = self._recover()
        self.due = DueIndex()
        prefix = f"{partition}|"
        for key, value in backend.items("due"):
            if value.startswith(prefix):
                self.due.schedule(key, datetime.fromisoformat(value[len(prefix):]))

    # --- staging and the write-ahead record -------------------------------------
    def _wal_key(self, i: int) -> str:
        return f"{WAL_PREFIX}{self.partition}\x1f{i}"

    def _get(self, table: str, key: str) -> str | None:
        staged = self._staged.get((table, key), _ABSENT)
        return self.backend.get(table, key) if staged is _ABSENT else staged

    def _stage(self, table: str, key: str, value: str | None) -> None:
        """Stage a write unless it is a no-op; a key staged back to its stored value is unstaged,
        so everything staged differs from the tables (`apply_staged` need not compare again)."""
        k = (table, key)
        staged = self._staged.get(k, _ABSENT)
        if staged is _ABSENT:
            if self.backend.get(table, key) != value:
                self._staged[k] = value
        elif staged != value:
            if self.backend.get(table, key) == value:
                del self._staged[k]
            else:
                self._staged[k] = value

    @property
    def staged(self) -> int:
        """Number of writes waiting for `commit()`."""
        return len(self._staged)

    def write_ahead(self) -> bool:
        """Phase 1: send the staged writes as one write-ahead record; False if nothing is staged.
        The caller waits for the broker's acknowledgement before `apply_staged()`."""
        if not self._staged:
            return False
        payload = json.dumps([[t, k, v] for (t, k), v in self._staged.items()], separators=(",", ":"))
        pieces = [payload[i:i + self.WAL_CHUNK] for i in range(0, len(payload), self.WAL_CHUNK)]
        self._wal_seq += 1
        for i, piece in enumerate(pieces):
            self.backend.set("misc", self.partition, self._wal_key(i),
                             f"{self._wal_seq}|{i}|{len(pieces)}|{piece}")
        self._wal_stale = max(self._wal_stale, self._wal_chunks)
        self._wal_chunks = len(pieces)
        return True

    def apply_staged(self) -> dict[tuple[str, str], str | None]:
        """Phase 2: write the staged keys themselves (after their write-ahead record is on the broker).
        Returns the writes ({(table, key): value}; None deleted), which the query API's snapshot takes."""
        backend, partition = self.backend, self.partition
        applied = self._staged
        for (table, key), value in applied.items():
            backend.set(table, partition, key, value)
        self._staged = {}  # a new dict: `applied` is handed to the caller as it is
        # Chunks an older, longer record left behind: dropped only now, the new record is complete.
        for i in range(self._wal_chunks, self._wal_stale):
            backend.set("misc", partition, self._wal_key(i), None)
        self._wal_stale = self._wal_chunks
        return applied

    def commit(self) -> None:
        """Both phases at once (backends whose writes are synchronous: tests, benchmarks)."""
        if self.write_ahead():
            self.apply_staged()

    def _recover(self) -> int:
        """Re-apply the newest complete write-ahead record; the number of keys it rewrote."""
        head = self.backend.get("misc", self._wal_key(0))
        if head is None:
            return 0
        seq, _, n, _ = head.split("|", 3)
        self._wal_seq, count = int(seq), int(n)
        pieces = []
        for i in range(count):
            chunk = head if i == 0 else self.backend.get("misc", self._wal_key(i))
            if chunk is None:
                break
            c_seq, c_i, _, piece = chunk.split("|", 3)
            if c_seq != seq or int(c_i) != i:
                break
            pieces.append(piece)
        i = count
        while self.backend.get("misc", self._wal_key(i)) is not None:
            i += 1
        self._wal_chunks, self._wal_stale = count, i
        if len(pieces) < count:
            return 0  # the unit that wrote it never committed; its predecessor is complete on the tables
        rewritten = 0
        for table, key, value in json.loads("".join(pieces)):
            if self.backend.get(table, key) != value:
                self.backend.set(table, self.partition, key, value)
                rewritten += 1
        return rewritten

    # --- entity state -------------------------------------------------------
    def _load(self, kind: str, value: str | None) -> Any:
        if value is None or kind not in self.loaders:
            return value
        return self.loaders[kind](value)

    def _put(self, table: str, key: str, state: Any) -> None:
        value = None if state is None else (state if isinstance(state, str) else state.to_json())
        self._stage(table, key, value)

    def get_ticket(self, ticket_id: str) -> Any:
        return self._load("ticket", self._get("tickets", ticket_id))

    def put_ticket(self, ticket_id: str, state: Any) -> None:
        """Store the ticket's state (JSON string or object with to_json()); None deletes."""
        self._put("tickets", ticket_id, state)

    def get_service(self, service_id: str) -> Any:
        return self._load("service", self._get("services", service_id))

    def put_service(self, service_id: str, state: Any) -> None:
        self._put("services", service_id, state)

    def get(self, kind: str, key: str) -> Any:
        """Any other entity kind (e.g. 'customer'), in the `misc` table."""
        return self._load(kind, self._get("misc", entity_key(kind, key)))

    def put(self, kind: str, key: str, state: Any) -> None:
        self._put("misc", entity_key(kind, key), state)

    def get_meta(self, name: str) -> str | None:
        """Per-partition value (e.g. the partition's time)."""
        return self._get("misc", meta_key(self.partition, name))

    def put_meta(self, name: str, value: str | None) -> None:
        self._put("misc", meta_key(self.partition, name), value)

    # --- due index ----------------------------------------------------------
    def schedule(self, key: str, wake: datetime | None) -> None:
        """Set the key's next wake (UTC-aware datetime), or clear it with None."""
        if self.due.get(key) == wake:
            return
        self.due.schedule(key, wake)
        self._stage("due", key, None if wake is None else f"{self.partition}|{_iso(wake)}")

    def pop_due(self, t: datetime) -> list[str]:
        """Remove and return the keys whose wake is <= t, in wake order (ties by key)."""
        keys = self.due.pop_due(t)
        for key in keys:
            self._stage("due", key, None)
        return keys

    def next_wake(self) -> datetime | None:
        return self.due.next_wake()
