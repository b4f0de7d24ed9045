"""A worker's persisted tables (`SLAPROC_STATE_DIR`): a restart reads only the changelog's tail.

Without it, tables live in memory and a restarted worker rebuilds them from the whole changelog
history (Tansu does not compact; ~1,000 records/s through Faust's recovery path), so a worker
restarted often spends its life in recovery (issue 18 item 10, docs/stream.md). With it, every
changelog record the worker has seen *on the broker* is also in a local SQLite file with the
changelog offset it had, and Faust's recovery starts after that offset.

The one rule: **the file holds a prefix of the changelog**, never more, and its offset for a
changelog partition is that of the last record it holds. So:
- The worker's own writes go to the file only once the broker acknowledged their changelog
  record (`PersistedStore.changelog_acknowledged`, from `streams.store.FaustTableBackend`), never
  at `table[key] = v` time: a write the broker never got (kill -9 before the acknowledgement) is
  not in the file, exactly as it is not on the changelog. The unit that made it did not commit;
  its input comes again (docs/stream.md, "Write-ahead record").
- Records read by recovery or standby replication go to the file with their offsets
  (`apply_changelog_batch`).
- Rows and the partition's offset are written in one SQLite transaction: a kill -9 can stop the
  process before or after it, never inside it. Before, the file is one tail shorter, and recovery
  reads that tail again (a rewrite of the same keys with the same values, in the same order).
- Faust's own `set_persisted_offset` (its changelog callback, its commit bookkeeping) is ignored:
  it moves an offset without the data (Faust's RocksDB store wrote the data at `table[key] = v`).

Why not Faust's RocksDB store (`rocksdict`): it asserts an event context on every write and picks
the partition from the current event, and the state backend writes outside one, to the partition
it owns (streams/store.py); it also writes the store before the changelog has the record, which
breaks the prefix rule above. The memory store stays the working copy (reads are dict lookups);
SQLite (standard library) is the durable copy. docs/decisions.md has the choice.

Tables with a changelog listener (`on_changelog_event`: the contracts global table) are not given
this store: their listener must see every record at every start.

One directory belongs to one worker process: `StateDir.open` takes an exclusive lock on it
(`flock`, released by the kernel when the process dies, kill -9 included) and refuses a second
worker with `StateDirInUse`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Callable

from faust.stores import memory

from streams.settings import SettingsError

__all__ = ["STORE_URL", "StateDir", "StateDirInUse", "PersistedStore"]

log = logging.getLogger(__name__)

#: The Faust store URL of `PersistedStore` (entry point `faust.stores` in pyproject.toml).
STORE_URL = "slaproc-state://"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (topic, partition, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, last_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)) WITHOUT ROWID;
"""

#: (changelog partition, key, value or None for a delete, changelog offset)
Record = tuple[int, str, bytes | None, int]


class StateDirInUse(SettingsError):
    """Another process holds the state directory."""


class StateDir:
    """The state directory of one worker process: its lock and its SQLite file (one per app id)."""

    def __init__(self, path: Path, lock: Any, db: sqlite3.Connection) -> None:
        self.path = path
        self._lock = lock  # held open for the process's life: closing it releases the lock
        self.db = db
        self._pending: dict[str, list[Record]] = {}
        self._flush_scheduled = False
        #: Set when a write failed (disk full, I/O error): the file keeps the prefix it held, no
        #: later write is tried (one after a lost one would move the offset past it), and the
        #: worker goes on with its tables in memory; the next start reads the rest from the changelog.
        self.failed: str | None = None

    @classmethod
    def open(cls, path: Path, app_id: str) -> "StateDir":
        """Lock `path` for this process and open (or create) its file for `app_id`.
        Raises StateDirInUse when another worker holds it."""
        path = path.expanduser().resolve()
        try:
            path.mkdir(parents=True, exist_ok=True)
            lock = open(path / "LOCK", "a+")
        except OSError as exc:
            raise SettingsError(f"SLAPROC_STATE_DIR: {path}: cannot be used: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise StateDirInUse(f"SLAPROC_STATE_DIR: {path} is in use by another worker (pid {holder}); give each "
                                f"worker process a directory of its own") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        # Autocommit mode; every write below is one explicit transaction. WAL + synchronous=NORMAL:
        # a committed transaction survives the process being killed (it is in the OS's hands);
        # only a machine crash can lose the last ones, which the changelog still has.
        file = path / f"{app_id}.sqlite3"
        try:
            db = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            lock.close()
            raise SettingsError(f"SLAPROC_STATE_DIR: {file} cannot be used ({exc}); deleting it is safe: the next "
                                f"start rebuilds it from the changelogs") from exc
        return cls(path, lock, db)

    def close(self) -> None:
        self.flush()
        self.db.close()
        self._lock.close()

    # --- reads ---------------------------------------------------------------
    def offset(self, topic: str, partition: int) -> int | None:
        """The changelog offset of the last record held for the partition (None: none held)."""
        row = self.db.execute("SELECT last_offset FROM offsets WHERE topic = ? AND partition = ?",
                              (topic, partition)).fetchone()
        return None if row is None else int(row[0])

    def rows(self, topic: str, partition: int) -> Iterator[tuple[str, bytes]]:
        return iter(self.db.execute("SELECT key, value FROM rows WHERE topic = ? AND partition = ?",
                                    (topic, partition)).fetchall())

    # --- writes --------------------------------------------------------------
    def write(self, topic: str, records: Iterable[Record]) -> None:
        """Apply changelog records (in changelog order) and move each partition's offset, in one
        transaction. Within a batch only a key's last record counts, as on the changelog.

        Never raises: a failed write leaves the file as it was (the transaction is rolled back)
        and stops every later one (`failed`), so the file stays a prefix of the changelog."""
        if self.failed is not None:
            return
        try:
            self._write(topic, records)
        except (sqlite3.Error, OSError) as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            log.critical("SLAPROC_STATE_DIR %s: writing %s failed (%s); the worker goes on with its tables in "
                         "memory and writes nothing more there: the file keeps what it held, and the next start "
                         "reads the rest from the changelog. Free the space or fix the volume, then restart.",
                         self.path, topic, self.failed)

    def _write(self, topic: str, records: Iterable[Record]) -> None:
        final: dict[tuple[int, str], bytes | None] = {}
        offsets: dict[int, int] = {}
        for partition, key, value, offset in records:
            final[(partition, key)] = value
            offsets[partition] = max(offset, offsets.get(partition, offset))
        if not offsets:
            return
        with self.transaction() as db:
            db.executemany("DELETE FROM rows WHERE topic = ? AND partition = ? AND key = ?",
                           [(topic, p, k) for (p, k), v in final.items() if v is None])
            db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?)",
                           [(topic, p, k, v) for (p, k), v in final.items() if v is not None])
            db.executemany("INSERT INTO offsets VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                           "DO UPDATE SET last_offset = max(last_offset, excluded.last_offset)",
                           [(topic, p, o) for p, o in offsets.items()])

    def forget(self, topic: str) -> None:
        """Drop a changelog topic's rows and offsets, together: offsets left without their rows
        would make recovery skip records the file no longer holds."""
        with self.transaction() as db:
            db.execute("DELETE FROM rows WHERE topic = ?", (topic,))
            db.execute("DELETE FROM offsets WHERE topic = ?", (topic,))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One SQLite transaction (the connection is in autocommit mode): committed if the block
        returns, rolled back if it or the commit raises."""
        db = self.db
        db.execute("BEGIN")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL): keep the first error
                db.execute("ROLLBACK")
            raise

    def acknowledged(self, topic: str, record: Record) -> None:
        """A record of this worker's own, now on the broker: written at the end of the event loop's
        current step, with every other record acknowledged in it (one transaction, not one each)."""
        self._pending.setdefault(topic, []).append(record)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for topic, records in pending.items():
            self.write(topic, records)


class PersistedStore(memory.Store):
    """Faust's memory store, its changelog prefix kept in the app's `StateDir` (module docstring).

    Keys are str and values bytes (slaproc's tables: `key_type=str, value_type=bytes`).
    """

    def __init__(self, url: Any, app: Any, table: Any, **kwargs: Any) -> None:
        super().__init__(url, app, table, **kwargs)
        state = getattr(app, "slaproc_state_dir", None)
        if not isinstance(state, StateDir):
            raise SettingsError(f"table {self.table.name}: the {STORE_URL} store needs SLAPROC_STATE_DIR")
        self.state_dir: StateDir = state
        self._partition_of: dict[str, int] = {}  # key -> changelog partition, for keys on the changelog
        self._loaded: set[int] = set()  # partitions whose file rows are in memory

    @property
    def topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    # --- offsets: only ever moved together with the data --------------------
    def persisted_offset(self, tp: Any) -> int | None:
        return self.state_dir.offset(tp.topic, tp.partition)

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        """Ignored: Faust calls this without the data (module docstring)."""

    # --- partitions in and out ----------------------------------------------
    async def on_rebalance(self, assigned: set[Any], revoked: set[Any], newly_assigned: set[Any],
                           generation_id: int = 0) -> None:
        """Load the file's rows of every changelog partition assigned (active or standby) before
        Faust's recovery asks for its offset and reads the tail."""
        topics = self.table.changelog_topic.topics
        for tp in revoked:
            if tp.topic in topics:
                self._unload(tp.partition)
        for tp in assigned:
            if tp.topic in topics and tp.partition not in self._loaded:
                self._load(tp.partition)

    async def on_recovery_completed(self, active_tps: set[Any], standby_tps: set[Any]) -> None:
        """As the memory store: memory keeps the active partitions only (the file keeps all)."""
        active = {tp.partition for tp in active_tps if tp.topic == self.topic}
        for partition in self._loaded - active:
            self._unload(partition)

    def _load(self, partition: int) -> None:
        self._unload(partition)
        for key, value in self.state_dir.rows(self.topic, partition):
            self.data[key] = value
            self._partition_of[key] = partition
        self._loaded.add(partition)

    def _unload(self, partition: int) -> None:
        for key in [k for k, p in self._partition_of.items() if p == partition]:
            del self._partition_of[key]
            self.data.pop(key, None)
        self._loaded.discard(partition)

    # --- changelog records in ------------------------------------------------
    def apply_changelog_batch(self, batch: Iterable[Any], to_key: Callable[[Any], Any],
                              to_value: Callable[[Any], Any]) -> None:
        """Recovery and standby records: into memory, and into the file with their offsets."""
        records: list[Record] = []
        for event in batch:
            message = event.message
            key = to_key(event.key)
            value = None if message.value is None else to_value(event.value)
            if value is None:
                self.data.pop(key, None)
                self._partition_of.pop(key, None)
            else:
                self.data[key] = value
                self._partition_of[key] = message.partition
            records.append((message.partition, _text_key(key, self.table.name), _bytes_value(value, self.table.name),
                            message.offset))
        self.state_dir.write(self.topic, records)

    def changelog_acknowledged(self, partition: int, key: str, value: bytes | None, future: Any) -> None:
        """Done-callback of the delivery future of this worker's own changelog record."""
        if future.cancelled() or future.exception() is not None:
            return  # not on the changelog: not in the file either; its unit does not commit
        if value is None:
            self._partition_of.pop(key, None)
        else:
            self._partition_of[key] = partition
        self.state_dir.acknowledged(self.topic, (partition, _text_key(key, self.table.name),
                                             _bytes_value(value, self.table.name), future.result().offset))

    def reset_state(self) -> None:
        """Faust asks this when the local state cannot be trusted: forget every partition's rows."""
        self.state_dir.forget(self.topic)


def _text_key(key: Any, table: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"table {table}: the {STORE_URL} store holds str keys, got {type(key).__name__}")
    return key


def _bytes_value(value: Any, table: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"table {table}: the {STORE_URL} store holds bytes values, got {type(value).__name__}")
